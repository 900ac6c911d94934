"""Configuration: defaults, file, environment, flags; secrets masked; bad values named."""

from __future__ import annotations

import pytest

from speedlab.config import Plan, load_config
from speedlab.errors import ConfigError
from speedlab.store import LocalStore, S3Store

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
    assert config.section("collector") == {"spool_max_entries": 100}
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
    assert shown["s3"]["secret_access_key"] == "ve****"
    assert "very-secret-value" not in str(shown)
    assert shown["s3"]["access_key_id"] == "AKIAEXAMPLE"  # an id, not a secret
    assert shown["buckets"]["hourly"] == "my-hourly"


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
