"""Configuration: defaults, file, environment, flags; secrets masked; bad values named."""

from __future__ import annotations

import json

import pytest

from speedlab.config import Plan, load_config
from speedlab.errors import ConfigError
from speedlab.store import LocalStore
from speedlab.store_s3 import S3Store

TOML = """
store = "s3://"
timezone = "Europe/London"
host_id = "office-main"

[s3]
endpoint_url = "http://127.0.0.1:9"
access_key_id = "AKIAEXAMPLE"
secret_access_key = "very-secret-value"

[buckets]
hourly = "my-hourly"

[plan]
download_mbps = 200
upload_mbps = 100
below_expected_fraction = 0.7

[plan.hosts.home-primary]
download_mbps = 50
upload_mbps = 10

[collector]
spool_max_entries = 100
"""


def test_defaults_need_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.store == "./speedlab-data" and config.timezone == "Asia/Kolkata"
    assert config.buckets.raw == "vd-speed-test" and config.below_expected_fraction == 0.8
    (tmp_path / "speedlab-data").mkdir()  # made by `speedlab up` (or mkdir); never by opening it
    assert isinstance(config.open_store(), LocalStore)
    assert config.open_store().root == tmp_path / "speedlab-data"
    assert config.state_path == tmp_path / "speedlab-data" / "_speedlab"


def test_file_then_environment_then_flags(tmp_path):
    path = tmp_path / "speedlab.toml"
    path.write_text(TOML)
    config = load_config(path, env={})
    assert config.timezone == "Europe/London" and config.host_id == "office-main"
    assert config.buckets.hourly == "my-hourly" and config.buckets.daily == "vd-speed-test"
    assert config.plan == Plan(200, 100) and config.below_expected_fraction == 0.7
    assert config.plan_for("home-primary") == Plan(50, 10)
    assert config.plan_for("office-main") == Plan(200, 100)
    assert config.collector.spool_max_entries == 100 and config.sections["collector"] == {"spool_max_entries": 100}
    store = config.open_store()
    assert isinstance(store, S3Store) and store.endpoint_url == "http://127.0.0.1:9"

    env = {"SPEEDLAB_CONFIG": str(path), "SPEEDLAB_TIMEZONE": "UTC", "SPEEDLAB_HOST_ID": "backup-location",
           "SPEEDLAB_PLAN_DOWNLOAD_MBPS": "300"}
    config = load_config(env=env)
    assert (config.timezone, config.host_id, config.plan.download_mbps) == ("UTC", "backup-location", 300)
    config = load_config(env=env, store=str(tmp_path / "data"), timezone="Asia/Tokyo")
    assert config.store == str(tmp_path / "data") and config.timezone == "Asia/Tokyo"


def test_show_masks_secrets(tmp_path):
    path = tmp_path / "speedlab.toml"
    path.write_text(TOML)
    shown = load_config(path, env={}).show()
    assert shown["s3"]["secret_access_key"] == "****"  # one rule: nothing of a secret is shown
    assert "very-secret-value" not in str(shown)
    assert shown["s3"]["access_key_id"] == "****"  # named like a key: masked by the same rule
    assert shown["buckets"]["hourly"] == "my-hourly"
    assert shown["s3"]["endpoint_url"] == "http://127.0.0.1:9"


def test_config_show_masks_credentials_in_the_store_url_and_webhook_paths(tmp_path, capsys):
    from speedlab import cli
    path = tmp_path / "speedlab.toml"
    path.write_text('[alerts]\nwebhook_url = "https://hooks.example.com/services/T0/B0/hooksecretpath"\n'
                    'webhook_format = "slack"\n[alerts.email]\nsmtp_host = "smtp.example.com"\n'
                    'from = "a@example.com"\nto = "b@example.com"\npassword = "smtp-password"\n'
                    'password_env = "SMTP_PASSWORD_VAR"\n[api]\ntoken = "api-token-value-0123"\n')
    store = ("s3://?endpoint_url=http://127.0.0.1:9&access_key_id=AKIAURLKEY"
             "&secret_access_key=url-secret-value&session_token=url-session-token")
    assert cli.main(["config", "show", "--config", str(path), "--store", store]) == 0
    out = capsys.readouterr().out
    for secret in ("AKIAURLKEY", "url-secret-value", "url-session-token", "hooksecretpath",
                   "smtp-password", "api-token-value-0123"):
        assert secret not in out, secret
    shown = json.loads(out)
    assert shown["store"] == ("s3://?endpoint_url=http://127.0.0.1:9&access_key_id=****"
                              "&secret_access_key=****&session_token=****")
    assert shown["alerts"]["webhook_url"] == "https://hooks.example.com/****"
    assert shown["alerts"]["webhook_format"] == "slack"  # not a secret
    assert shown["alerts"]["email"]["password_env"] == "SMTP_PASSWORD_VAR"  # names a variable


def test_mask_secrets_is_one_rule_for_urls_names_and_known_values():
    from speedlab.masking import is_secret_name, mask_secrets, mask_url, split_credentials
    text = ("open s3://?region=eu&secret_access_key=abc%2Fdef&max_attempts=2 then "
            "https://user:pa55word@host.example/x?X-Amz-Signature=f00d&X-Amz-Credential=AKIA%2F1&mode=daily "
            "and GET /api/latest?token=tok-123456&host=h1")
    masked = mask_secrets(text)
    for secret in ("abc%2Fdef", "pa55word", "f00d", "AKIA%2F1", "tok-123456"):
        assert secret not in masked, secret
    assert "region=eu&secret_access_key=****&max_attempts=2" in masked
    assert "https://user:****@host.example/x?" in masked and "mode=daily" in masked
    assert "?token=****&host=h1" in masked
    assert mask_secrets("stored at key=host=h1/x.json", ["hunter22"]) == "stored at key=host=h1/x.json"
    assert mask_secrets('said "hunter22" twice: hunter22', ["hunter22"]) == 'said "****" twice: ****'
    assert mask_url("https://hooks.slack.com/services/T0/B0/XXXX") == "https://hooks.slack.com/****"
    assert mask_url("https://u:p@ntfy.example:8443") == "https://ntfy.example:8443"
    assert split_credentials("s3://?endpoint_url=http://127.0.0.1:9&access_key_id=A&secret_access_key=S") == (
        "s3://?endpoint_url=http://127.0.0.1:9", {"access_key_id": "A", "secret_access_key": "S"})
    assert [n for n in ("access_key_id", "api_key", "password", "password_env", "webhook_format", "region",
                        "endpoint_url", "host") if is_secret_name(n)] == ["access_key_id", "api_key", "password"]


def test_job_log_lines_are_masked_with_the_configurations_secrets(tmp_path):
    from speedlab.joblog import JobLog
    config = load_config(env={}, store=str(tmp_path), state_dir=str(tmp_path / "state"),
                         s3={"secret_access_key": "s3-secret-in-config"},
                         sections={"alerts": {"webhook_url": "https://hooks.example.com/T0/B0/hookpath"}})
    log = JobLog.for_config(config, "health")
    line = log.error("delivery to https://hooks.example.com/T0/B0/hookpath failed with s3-secret-in-config",
                     store="s3://?secret_access_key=url-secret&region=eu", key="host=h1/x.json")
    written = (tmp_path / "state" / "logs" / "health.jsonl").read_text()
    for secret in ("hookpath", "s3-secret-in-config", "url-secret"):
        assert secret not in written and secret not in str(line)
    assert line["message"] == "delivery to https://hooks.example.com/**** failed with ****"
    assert line["store"] == "s3://?secret_access_key=****&region=eu" and line["key"] == "host=h1/x.json"


def test_s3_credentials_from_the_environment(tmp_path):
    config = load_config(env={"SPEEDLAB_S3_ACCESS_KEY_ID": "AKIAENV", "SPEEDLAB_S3_SECRET_ACCESS_KEY": "env-secret",
                              "SPEEDLAB_S3_SESSION_TOKEN": "env-session"}, store="s3://")
    assert config.s3 == {"access_key_id": "AKIAENV", "secret_access_key": "env-secret",
                         "session_token": "env-session"}
    assert {"AKIAENV", "env-secret", "env-session"} <= set(config.secrets)


@pytest.mark.parametrize("store", ["s3://my-bucket", "s3://my-bucket/prefix", "s3://my-bucket?region=eu-west-1",
                                   "s3:my-bucket"])
@pytest.mark.slow
def test_a_store_url_naming_a_bucket_is_refused(store, capsys):
    from speedlab import cli
    from speedlab.store import open_store
    with pytest.raises(ConfigError, match=r"names a bucket \('my-bucket"):
        load_config(env={}, store=store)
    with pytest.raises(ConfigError, match="bucket names come from \\[buckets\\]"):
        open_store(store)
    assert cli.main(["latest", "--store", store]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and 'raw = "my-bucket"' in err
    assert isinstance(load_config(env={}, store="s3:///?region=eu-west-1").open_store(), S3Store)


def test_a_missing_local_store_folder_is_refused_and_not_created(tmp_path):
    from speedlab.errors import StoreUnavailable
    config = load_config(env={}, store=str(tmp_path / "mistyped" / "deep"))
    with pytest.raises(StoreUnavailable, match="mistyped/deep does not exist"):
        config.open_store()
    with pytest.raises(StoreUnavailable, match="does not exist"):
        config.state_path  # noqa: B018 - the state folder is never placed inside a missing store
    assert config.show()["state_dir"] == str(tmp_path / "mistyped" / "deep" / "_speedlab")
    with pytest.raises(StoreUnavailable, match=r"its parent .*mistyped does not exist"):
        config.open_store(create=True)  # `up` / `infra apply` create the folder, never its parents
    assert not (tmp_path / "mistyped").exists()
    made = load_config(env={}, store=f"file://{tmp_path / 'new'}").open_store(create=True)
    assert made.root == tmp_path / "new" and made.root.is_dir()
    elsewhere = load_config(env={}, store=str(tmp_path / "mistyped"), state_dir=str(tmp_path / "state"))
    assert elsewhere.state_path == tmp_path / "state"  # a state_dir outside the store still resolves


@pytest.mark.parametrize("text, message", [
    ("timezone = 'Mars/Base'", "unknown time zone 'Mars/Base'"),
    ("host_id = 'bad/host'", "host_id: invalid host id 'bad/host'"),
    ("colour = 'blue'", "unknown key(s) colour"),
    ("[plan]\ndownload_mbps = -5", "download_mbps = -5 must be a positive number"),
    ("[plan]\nbelow_expected_fraction = 1.5", "below_expected_fraction = 1.5 must be in (0, 1]"),
    ("[buckets]\nhourly = 'UPPER'", "not a valid S3 bucket name"),
    ("[s3]\nkey = 'x'", "[s3]: unknown key(s) key"),
    ("store = ", "not valid TOML"),
    ("store = 5", "store = 5 must be a quoted string"),
    ("host_id = ['a']", "host_id = ['a'] must be a quoted string"),
    ("s3 = 'http://127.0.0.1:9'", "s3 = 'http://127.0.0.1:9' must be a table: write [s3]"),
    ("aggregate = 5", "aggregate = 5 must be a table"),
])
def test_bad_configuration_is_named(tmp_path, text, message):
    path = tmp_path / "speedlab.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert message in str(info.value)


def test_missing_config_file_and_bad_env_number(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="SPEEDLAB_PLAN_UPLOAD_MBPS='fast' is not a number"):
        load_config(env={"SPEEDLAB_PLAN_UPLOAD_MBPS": "fast"})
