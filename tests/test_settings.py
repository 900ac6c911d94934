"""Typed settings: every table checked at load, unknown keys refused with the section's name,
every documented key accepted; one way to hand a configuration to a child process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from speedlab.config import SECTIONS, load_config
from speedlab.errors import ConfigError
from speedlab.settings import DashboardSettings, InfraSettings

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_an_unknown_key_is_refused_at_load_naming_the_section_and_the_key(tmp_path, section):
    path = tmp_path / "speedlab.toml"
    path.write_text(f"[{section}]\nno_such_key = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert message.startswith(f"[{section}]: unknown key(s) no_such_key; known: ")
    assert "\n" not in message


def test_a_bad_heatmap_days_is_refused_at_load_not_in_the_page(tmp_path):
    path = tmp_path / "speedlab.toml"
    for value in ('"28"', "0", "1.5", "400", "true"):
        path.write_text(f"[dashboard]\nheatmap_days = {value}\n")
        with pytest.raises(ConfigError, match=r"^\[dashboard\] heatmap_days = .* must be a whole number of days "
                                              r"from 1 to 366$"):
            load_config(path, env={})
    path.write_text("[dashboard]\nheatmap_days = 7\ntitle = \"Home\"\n")
    assert load_config(path, env={}).dashboard == DashboardSettings(7, "Home")
    path.write_text("[dashboard]\ntitle = 3\n")
    with pytest.raises(ConfigError, match=r"\[dashboard\] title = 3 must be a quoted string"):
        load_config(path, env={})


def test_logs_is_no_longer_a_table(tmp_path):
    path = tmp_path / "speedlab.toml"
    path.write_text("[logs]\nlevel = \"debug\"\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) logs; known: "):
        load_config(path, env={})


def test_every_section_is_checked_when_a_config_is_built_in_code(tmp_path):
    with pytest.raises(ConfigError, match=r"\[aggregate\] max_workers = 0 is not valid"):
        load_config(env={}, store=str(tmp_path), sections={"aggregate": {"max_workers": 0}})
    with pytest.raises(ConfigError, match=r"unknown table\(s\) \[logs\]"):
        load_config(env={}, store=str(tmp_path), sections={"logs": {}})
    config = load_config(env={}, store=str(tmp_path))
    assert {name: type(getattr(config, name)) for name in SECTIONS} == SECTIONS  # defaults when absent


def test_infra_versioning_tiers_name_the_configured_buckets(tmp_path):
    path = tmp_path / "speedlab.toml"
    path.write_text('[buckets]\nhourly = "my-hourly"\n[infra]\nversioning = ["hourly"]\n')
    assert load_config(path, env={}).infra.versioning == ("my-hourly",)
    assert InfraSettings.from_table({"versioning": ["hourly"]}).versioning == ("vd-speed-test-hourly-prod",)


@pytest.mark.parametrize("doc", ["aggregation.md", "collector.md", "dashboard.md", "production.md"])
def test_every_documented_key_is_accepted(tmp_path, doc):
    blocks = re.findall(r"```toml\n(.*?)```", (DOCS / doc).read_text(encoding="utf-8"), re.S)
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"{i}.toml"
        path.write_text(block, encoding="utf-8")
        load_config(path, env={})


# ----------------------------------------------------------------------------- one way to a child

def test_child_env_is_read_back_as_the_same_configuration(tmp_path):
    (tmp_path / "data").mkdir()
    path = tmp_path / "speedlab.toml"
    path.write_text('timezone = "Europe/Berlin"\nhost_id = "office-main"\n[plan]\ndownload_mbps = 300\n'
                    '[aggregate]\nmax_workers = 3\n')
    config = load_config(path, env={}, store=str(tmp_path / "data"), host_id="home-primary",
                         state_dir=str(tmp_path / "state"))
    env = config.child_env()
    assert env["SPEEDLAB_CONFIG"] == str(path.resolve()) and env["SPEEDLAB_STORE"] == str(tmp_path / "data")
    child = load_config(env=env)
    for name in ("store", "timezone", "host_id", "plan", "below_expected_fraction", "state_path"):
        assert getattr(child, name) == getattr(config, name), name
    assert Path(child.source).resolve() == path.resolve() and child.aggregate.max_workers == 3


@pytest.mark.slow
def test_child_env_hands_store_url_credentials_as_variables_never_in_the_url(tmp_path):
    url = "s3://?endpoint_url=http://127.0.0.1:9&access_key_id=AKIAKEY&secret_access_key=url-secret"
    config = load_config(env={}, store=url, state_dir=str(tmp_path), s3={"region": "eu-west-1"})
    env = config.child_env()
    assert env["SPEEDLAB_STORE"] == "s3://?endpoint_url=http://127.0.0.1:9&region=eu-west-1"
    assert (env["SPEEDLAB_S3_ACCESS_KEY_ID"], env["SPEEDLAB_S3_SECRET_ACCESS_KEY"]) == ("AKIAKEY", "url-secret")
    child = load_config(env=env)
    assert (child.s3["access_key_id"], child.s3["secret_access_key"]) == ("AKIAKEY", "url-secret")
    assert child.open_store().url == config.open_store().url


def test_a_child_process_loads_the_same_configuration(tmp_path):
    (tmp_path / "data").mkdir()
    config = load_config(env={}, store=str(tmp_path / "data"), host_id="home-primary", timezone="Asia/Tokyo")
    code = ("from speedlab.config import load_config\n"
            "c = load_config()\n"
            "print(c.store, c.host_id, c.timezone, c.state_path)\n")
    out = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **config.child_env()},
                         cwd="/", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(tmp_path / "data"), "home-primary", "Asia/Tokyo", str(config.state_path)]


def test_a_store_says_whether_its_buckets_are_a_local_folder(tmp_path):
    from speedlab.store_s3 import S3Store
    (tmp_path / "data").mkdir()
    config = load_config(env={}, store=str(tmp_path / "data"))
    assert not config.remote_store and config.open_store().local_root == tmp_path / "data"
    remote = load_config(env={}, store="s3://?endpoint_url=http://127.0.0.1:9", state_dir=str(tmp_path))
    assert remote.remote_store and S3Store.local_root is None and remote.open_store().local_root is None
