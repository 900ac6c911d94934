"""speedlab.infra: desired state, plan/apply against a real moto_server, IAM documents."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from speedlab.cli import main
from speedlab.errors import ConfigError
from speedlab.infra import (
    NONCURRENT_RULE_ID,
    RAW_RULE_ID,
    apply_infra,
    desired_state,
    iam_policy,
    plan_infra,
)
from speedlab.layout import Buckets
from speedlab.settings import InfraSettings
from speedlab.store_s3 import S3Store

MAIN = "vd-speed-test"
SUMMARY_BUCKETS = ["vd-speed-test-hourly-prod", "vd-speed-test-monthly-prod",
                   "vd-speed-test-weekly-prod", "vd-speed-test-yearly-prod"]
RAW_RULE = {"ID": RAW_RULE_ID, "Filter": {"Prefix": "host="}, "Status": "Enabled",
            "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
            "Expiration": {"Days": 400}}


@pytest.fixture
def empty_s3(moto_server):
    """An S3 store on a reset moto server with NO buckets."""
    moto_server.reset()
    return S3Store(endpoint_url=moto_server.endpoint_url, region="us-east-1",
                   access_key_id="testing", secret_access_key="testing")


def _rules(store, bucket):
    try:
        return store.client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
        return []


# ----------------------------------------------------------------------------- pure parts

def test_settings_defaults_and_errors():
    assert InfraSettings.from_table({}) == InfraSettings.from_table({"raw_transition_days": 30, "raw_expire_days": 0})
    s = InfraSettings.from_table({"raw_expire_days": 400, "versioning": ["raw", "weekly"]})
    assert s.raw_expire_days == 400 and s.versioning == (MAIN, "vd-speed-test-weekly-prod")
    assert InfraSettings.from_table({"versioning": True}).versioning == tuple(sorted([MAIN, *SUMMARY_BUCKETS]))
    for table, words in [({"raw_expire_days": 20}, "later than raw_transition_days"),
                         ({"raw_transition_days": 10}, "after 30 days at the earliest"),
                         ({"raw_storage_class": "COLD"}, "is not one of"),
                         ({"raw_expire_days": -1}, ">= 0"),
                         ({"raw_expire_days": True}, ">= 0"),
                         ({"versioning": ["nope"]}, "versioning names nope"),
                         ({"versioning": "yes"}, "must be true, false"),
                         ({"expire": 3}, "unknown key(s) expire")]:
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
            InfraSettings.from_table(table)
    # glacier classes have no minimum age; transition off allows any expiry
    assert InfraSettings.from_table({"raw_transition_days": 0, "raw_expire_days": 5}).raw_expire_days == 5
    settings = InfraSettings.from_table({"raw_storage_class": "glacier_ir", "raw_transition_days": 1})
    assert settings.raw_storage_class == "GLACIER_IR"


def test_desired_state_rules_only_on_raw_prefix():
    state = desired_state(Buckets(), InfraSettings.from_table({"raw_expire_days": 400, "versioning": ["hourly"]}))
    assert sorted(state) == sorted([MAIN, *SUMMARY_BUCKETS])
    assert state[MAIN].tiers == ("raw", "daily")
    assert state[MAIN].rules == (RAW_RULE,)
    assert state[MAIN].versioning == "Off"
    hourly = state["vd-speed-test-hourly-prod"]
    assert hourly.versioning == "Enabled"
    assert hourly.rules == ({"ID": NONCURRENT_RULE_ID, "Filter": {"Prefix": ""}, "Status": "Enabled",
                             "NoncurrentVersionExpiration": {"NoncurrentDays": 90}},)
    assert state["vd-speed-test-weekly-prod"].rules == ()  # summaries are kept
    # nothing configured to do with raw results: no raw rule at all
    none = desired_state(Buckets(), InfraSettings.from_table({"raw_transition_days": 0}))
    assert none[MAIN].rules == ()


# ----------------------------------------------------------------------------- against moto

def test_apply_creates_once_and_second_apply_changes_nothing(empty_s3, config_for):
    config = config_for(empty_s3, sections={"infra": {"raw_expire_days": 400}})
    plan = plan_infra(config)
    assert not plan.applied
    assert [(c.bucket, c.action) for c in plan.changes] == [
        (MAIN, "create_bucket"), (MAIN, "put_lifecycle"),
        *[(b, "create_bucket") for b in SUMMARY_BUCKETS]]
    assert not any(empty_s3.bucket_exists(b) for b in [MAIN, *SUMMARY_BUCKETS])  # plan only reads

    first = apply_infra(config)
    assert first.applied and first.message == "applied 6 change(s)"
    assert all(empty_s3.bucket_exists(b) for b in [MAIN, *SUMMARY_BUCKETS])
    assert _rules(empty_s3, MAIN) == [RAW_RULE]
    for bucket in SUMMARY_BUCKETS:
        assert _rules(empty_s3, bucket) == []
    assert any("128 KB" in note for note in first.notes)
    assert any("DELETED" in note for note in first.notes)

    second = apply_infra(config)
    assert second.changes == []
    assert second.message == "nothing to change: the store already matches the configuration"
    assert _rules(empty_s3, MAIN) == [RAW_RULE]


@pytest.mark.slow
def test_user_rules_are_kept_and_changed_settings_update_ours(empty_s3, config_for):
    empty_s3.create_bucket(MAIN)
    theirs = {"ID": "my-exports", "Filter": {"Prefix": "exports/"}, "Status": "Enabled",
              "Expiration": {"Days": 7}}
    empty_s3.client.put_bucket_lifecycle_configuration(Bucket=MAIN, LifecycleConfiguration={"Rules": [theirs]})
    apply_infra(config_for(empty_s3, sections={"infra": {"raw_expire_days": 400}}))
    assert sorted(_rules(empty_s3, MAIN), key=lambda r: r["ID"]) == [theirs, RAW_RULE]

    longer = config_for(empty_s3, sections={"infra": {"raw_expire_days": 800, "versioning": ["raw"]}})
    plan = plan_infra(longer)
    assert [(c.bucket, c.action) for c in plan.changes] == [(MAIN, "enable_versioning"), (MAIN, "put_lifecycle")]
    assert "delete after 800 d" in plan.changes[1].summary
    apply_infra(longer)
    rules = {r["ID"]: r for r in _rules(empty_s3, MAIN)}
    assert rules["my-exports"] == theirs
    assert rules[RAW_RULE_ID]["Expiration"] == {"Days": 800}
    assert rules[NONCURRENT_RULE_ID]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert empty_s3.client.get_bucket_versioning(Bucket=MAIN)["Status"] == "Enabled"
    assert apply_infra(longer).changes == []

    # switching everything off removes only speedlab's rules
    off = config_for(empty_s3, sections={"infra": {"raw_transition_days": 0, "noncurrent_expire_days": 0}})
    apply_infra(off)
    assert _rules(empty_s3, MAIN) == [theirs]
    assert empty_s3.client.get_bucket_versioning(Bucket=MAIN)["Status"] == "Enabled"  # never suspended


def test_local_store_only_creates_folders(local_store, config_for):
    config = config_for(local_store, sections={"infra": {"raw_expire_days": 400}})
    plan = plan_infra(config)
    assert plan.backend == "local"
    assert [c.action for c in plan.changes] == ["create_bucket"] * 5
    assert "local store has no storage classes" in plan.notes[0]
    apply_infra(config)
    assert sorted(p.name for p in local_store.root.iterdir() if not p.name.startswith("_")) == sorted(
        [MAIN, *SUMMARY_BUCKETS])
    again = apply_infra(config)
    assert again.changes == [] and again.message.startswith("nothing to change")


def test_cli_apply_creates_a_missing_local_store_folder_and_plan_refuses_it(tmp_path, capsys):
    store = tmp_path / "new-store"
    assert main(["infra", "plan", "--store", str(store)]) == 1  # a plan reads: a missing store is an error
    assert f"local store folder {store} does not exist" in capsys.readouterr().err and not store.exists()
    assert main(["infra", "apply", "--store", str(store), "--json"]) == 0  # apply makes the store
    assert (store / "vd-speed-test").is_dir() and (store / "_speedlab" / "logs" / "infra.jsonl").is_file()
    capsys.readouterr()
    assert main(["infra", "apply", "--store", str(tmp_path / "no-parent" / "store")]) == 1
    assert "its parent" in capsys.readouterr().err and not (tmp_path / "no-parent").exists()


def test_cli_plan_apply_json(empty_s3, config_for, tmp_path, capsys):
    cfg = tmp_path / "speedlab.toml"
    cfg.write_text(f'store = "s3://"\nstate_dir = "{tmp_path / "state"}"\n'
                   f'[s3]\nendpoint_url = "{empty_s3.endpoint_url}"\nregion = "us-east-1"\n'
                   'access_key_id = "testing"\nsecret_access_key = "testing"\n'
                   '[infra]\nraw_expire_days = 400\n')
    assert main(["infra", "apply", "--json", "--config", str(cfg)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["applied"] and len(first["changes"]) == 6
    assert main(["infra", "plan", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "nothing to change: the store already matches the configuration"
    log = (tmp_path / "state" / "logs" / "infra.jsonl").read_text().splitlines()
    assert json.loads(log[0])["event"] == "start" and json.loads(log[-1])["event"] == "end"
    assert sum("create bucket" in line for line in log) == 5


# ----------------------------------------------------------------------------- IAM

def test_collector_policy_is_exactly_its_own_prefix():
    doc = json.loads(json.dumps(iam_policy("collector", Buckets(), "office-main")))
    assert doc == {"Version": "2012-10-17", "Statement": [
        {"Sid": "WriteAndReadOwnResults", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
         "Resource": ["arn:aws:s3:::vd-speed-test/host=office-main/*"]},
        {"Sid": "ListOwnPrefixOnly", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": ["arn:aws:s3:::vd-speed-test"],
         "Condition": {"StringLike": {"s3:prefix": ["host=office-main/*"]}}}]}
    with pytest.raises(ConfigError, match="pass --host"):
        iam_policy("collector")
    with pytest.raises(ConfigError, match="invalid host id"):
        iam_policy("collector", host_id="../x")
    with pytest.raises(ConfigError, match="unknown role"):
        iam_policy("admin")


def test_aggregator_dashboard_and_infra_policies():
    buckets = Buckets().with_overrides({"hourly": "my-hourly"})
    agg = iam_policy("aggregator", buckets)
    by_sid = {s["Sid"]: s for s in agg["Statement"]}
    assert by_sid["ReadRawResults"]["Resource"] == ["arn:aws:s3:::vd-speed-test/host=*"]
    assert by_sid["ReadAndWriteSummaries"]["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert by_sid["ReadAndWriteSummaries"]["Resource"] == [
        f"arn:aws:s3:::{b}/aggregated/*" for b in sorted(["my-hourly", MAIN, *SUMMARY_BUCKETS[1:]])]
    dash = iam_policy("dashboard", buckets)
    actions = {a for s in dash["Statement"] for a in s["Action"]}
    assert actions == {"s3:ListBucket", "s3:GetObject"}  # read-only
    assert all("Delete" not in a for s in agg["Statement"] if s["Sid"] != "ActOnStaleMarks" for a in s["Action"])
    from speedlab import infra as infra_module
    from speedlab.layout import STALE_PREFIX
    assert infra_module.STALE_PREFIX == STALE_PREFIX  # the aggregator's marks are where it may write
    infra = iam_policy("infra")["Statement"][0]
    assert "s3:PutLifecycleConfiguration" in infra["Action"] and len(infra["Resource"]) == 5


@pytest.mark.slow
def test_cli_iam_policy_prints_json(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["infra", "iam-policy", "--host", "home-primary"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["Statement"][0]["Resource"] == ["arn:aws:s3:::vd-speed-test/host=home-primary/*"]
    assert main(["infra", "iam-policy", "--role", "collector"]) == 1
    assert "pass --host" in capsys.readouterr().err


def test_policies_pass_iam_validation(moto_server):
    """moto's IAM checks the policy grammar (Version, Effect, Action, ARN, condition operators)."""
    iam = boto3.client("iam", endpoint_url=moto_server.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    moto_server.reset()
    for role, host in [("collector", "home-primary"), ("aggregator", None), ("dashboard", None),
                       ("operator", None), ("infra", None)]:
        made = iam.create_policy(PolicyName=f"speedlab-{role}",
                                 PolicyDocument=json.dumps(iam_policy(role, Buckets(), host)))
        assert made["Policy"]["Arn"].endswith(f"policy/speedlab-{role}")
    with pytest.raises(ClientError, match="MalformedPolicyDocument"):  # the check can fail
        iam.create_policy(PolicyName="bad", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                     "Resource": ["vd-speed-test/*"]}]}))


@pytest.mark.parametrize("role, action, resource, allowed", [
    ("collector", "s3:PutObject", f"{MAIN}/host=office-main/year=2025/x/test.json", True),
    ("collector", "s3:GetObject", f"{MAIN}/host=office-main/year=2025/x/test.json", True),
    ("collector", "s3:PutObject", f"{MAIN}/host=home-primary/year=2025/x/test.json", False),
    ("collector", "s3:PutObject", f"{MAIN}/host=office-main-2/year=2025/x/test.json", False),
    ("collector", "s3:PutObject", f"{MAIN}/aggregated/year=2025/speed_test_summary.json", False),
    ("collector", "s3:DeleteObject", f"{MAIN}/host=office-main/year=2025/x/test.json", False),
    ("collector", "s3:ListBucket", MAIN, True),
    ("collector", "s3:ListBucket", "vd-speed-test-hourly-prod", False),
    ("aggregator", "s3:GetObject", f"{MAIN}/host=home-primary/year=2025/x/test.json", True),
    ("aggregator", "s3:PutObject", f"{MAIN}/host=home-primary/year=2025/x/test.json", False),
    ("aggregator", "s3:PutObject", "vd-speed-test-weekly-prod/aggregated/year=2025/week=2025W52/s.json", True),
    ("aggregator", "s3:DeleteObject", "vd-speed-test-weekly-prod/aggregated/year=2025/s.json", False),
    ("aggregator", "s3:DeleteObject", "vd-speed-test-hourly-prod/stale/hour=2025122914/all.json", True),
    ("aggregator", "s3:PutObject", "vd-speed-test-hourly-prod/runs/aggregate-daily/x.json", True),
    ("aggregator", "s3:DeleteObject", "vd-speed-test-hourly-prod/runs/aggregate-daily/x.json", False),
    ("operator", "s3:DeleteObject", f"{MAIN}/host=home-primary/year=2025/x/speed_data_ookla_00_1.json", True),
    ("operator", "s3:PutObject", f"{MAIN}/host=home-primary/year=2025/x/test.json", False),
    ("operator", "s3:PutObject", "vd-speed-test-hourly-prod/stale/hour=2025122914/all.json", True),
    ("dashboard", "s3:GetObject", "vd-speed-test-yearly-prod/aggregated/year=2025/s.json", True),
    ("dashboard", "s3:PutObject", "vd-speed-test-yearly-prod/aggregated/year=2025/s.json", False),
    ("infra", "s3:PutLifecycleConfiguration", MAIN, True),
    ("infra", "s3:GetObject", f"{MAIN}/host=home-primary/x.json", False),
])
def test_policy_evaluation(role, action, resource, allowed):
    """moto's policy evaluator on actions and resources (it does not evaluate StringLike)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    doc = IAMPolicy(json.dumps(iam_policy(role, Buckets(), "office-main" if role == "collector" else None)))
    result = doc.is_action_permitted(action, f"arn:aws:s3:::{resource}")
    assert (result == PermissionResult.PERMITTED) is allowed
