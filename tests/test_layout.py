"""Every key of the original layout, built and parsed back; host ids validated."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from speedlab.errors import InvalidHostId, LayoutError
from speedlab.layout import (
    GLOBAL_SUMMARY_YEARS_PREFIX,
    HOSTS_PREFIX,
    RAW_PARTITIONS,
    RUNS_PREFIX,
    STALE_PREFIX,
    Buckets,
    RawKey,
    SummaryKey,
    host_in_key,
    host_of_prefix,
    hour_in_key,
    parse_key,
    parse_raw_key,
    parse_stale_marker_key,
    parse_summary_key,
    raw_host_prefix,
    raw_hour_label,
    raw_key,
    raw_period_prefix,
    run_copy_key,
    stale_marker_key,
    summary_key,
    summary_prefix,
    validate_host_id,
)
from speedlab.periods import parse_period

UTC = timezone.utc


def test_raw_key_is_the_seeds_layout_in_ist():
    moment = datetime(2025, 12, 29, 8, 33, 12, tzinfo=UTC)  # 14:03 IST
    assert raw_key("home-primary", moment) == (
        "host=home-primary/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/test.json")


def test_raw_key_at_ist_new_year():
    assert raw_key("h1", datetime(2025, 12, 31, 18, 29, 59, tzinfo=UTC)).startswith(
        "host=h1/year=2025/month=202512/day=20251231/hour=2025123123/minute=45/")
    assert raw_key("h1", datetime(2025, 12, 31, 18, 30, 0, tzinfo=UTC)).startswith(
        "host=h1/year=2026/month=202601/day=20260101/hour=2026010100/minute=00/")


def test_parse_seed_raw_file_name():
    key = ("host=home-primary/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/"
           "speed_data_ookla_00_1735467234.json")
    parsed = parse_raw_key(key)
    assert parsed == RawKey("home-primary", datetime(2025, 12, 29, 14, 0),
                            "speed_data_ookla_00_1735467234.json", legacy=True, epoch_s=1735467234)
    assert parse_key(key) == parsed


def test_raw_key_round_trip():
    moment = datetime(2024, 2, 29, 23, 50, tzinfo=UTC)
    parsed = parse_raw_key(raw_key("office-main", moment))
    assert parsed.host_id == "office-main" and not parsed.legacy
    assert parsed.slot("Asia/Kolkata").isoformat() == "2024-03-01T05:15:00+05:30"


@pytest.mark.parametrize("key, message", [
    ("host=a/year=2025/month=202512/day=20251229/hour=2025122914/minute=07/test.json", "15-minute"),
    ("host=a/year=2025/month=202511/day=20251229/hour=2025122914/minute=00/test.json", "disagree"),
    ("host=a/year=2025/month=202502/day=20250230/hour=2025023014/minute=00/test.json", "not a real date"),
    ("host=a/year=2025/test.json", "not a raw result key"),
    ("host=a b/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/test.json", "invalid host id"),
])
def test_bad_raw_keys_are_refused_with_reason(key, message):
    with pytest.raises((LayoutError, InvalidHostId), match=message):
        parse_raw_key(key)


SUMMARY_CASES = [
    ("hourly", "2025122914", None,
     "aggregated/year=2025/month=202512/day=20251229/hour=2025122914/speed_test_summary.json"),
    ("hourly", "2025122914", "home-primary",
     "aggregated/host=home-primary/year=2025/month=202512/day=20251229/hour=2025122914/speed_test_summary.json"),
    ("daily", "20251229", None, "aggregated/year=2025/month=202512/day=20251229/speed_test_summary.json"),
    ("daily", "20251229", "office-main",
     "aggregated/host=office-main/year=2025/month=202512/day=20251229/speed_test_summary.json"),
    ("weekly", "2025W52", None, "aggregated/year=2025/week=2025W52/speed_test_summary.json"),
    ("weekly", "2025W52", "home-primary",
     "aggregated/host=home-primary/year=2025/week=2025W52/speed_test_summary.json"),
    ("weekly", "2025W01", None, "aggregated/year=2025/week=2025W01/speed_test_summary.json"),  # starts 2024-12-30
    ("weekly", "2020W53", None, "aggregated/year=2020/week=2020W53/speed_test_summary.json"),  # ends 2021-01-03
    ("monthly", "202512", None, "aggregated/year=2025/month=202512/speed_test_summary.json"),
    ("monthly", "202512", "backup-location",
     "aggregated/host=backup-location/year=2025/month=202512/speed_test_summary.json"),
    ("yearly", "2025", None, "aggregated/year=2025/speed_test_summary.json"),
    ("yearly", "2025", "home-primary", "aggregated/host=home-primary/year=2025/speed_test_summary.json"),
]


@pytest.mark.parametrize("tier, label, host, key", SUMMARY_CASES)
def test_summary_keys_built_and_parsed(tier, label, host, key):
    period = parse_period(tier, label)
    assert summary_key(period, host) == key
    parsed = parse_summary_key(key)
    assert parsed == SummaryKey(tier, label, host)
    assert parsed.period() == period
    assert parse_key(key) == parsed


def test_summary_folders_are_the_start_formatted_per_tier_over_years_and_zones():
    """Every period of 2020-2027 (ISO week 53 and the New Year in IST; DST in New York): the
    folders built from the label are the start's own formatting, as the seed built them."""
    from datetime import timedelta

    from speedlab.layout import summary_dir
    from speedlab.periods import TIERS, periods_between
    for zone in ("Asia/Kolkata", "America/New_York"):
        for tier in TIERS:
            step = {"hourly": timedelta(days=3, hours=5)}.get(tier)
            periods = periods_between(tier, datetime(2020, 1, 1, tzinfo=timezone.utc),
                                      datetime(2027, 12, 31, tzinfo=timezone.utc), zone)
            if step is not None:  # every 77th hour: ~750 hours across the years, each hour of the day
                periods = periods[::77]
            for period in periods:
                s = period.start
                year = s.isocalendar()[0] if tier == "weekly" else s.year
                expected = {"yearly": f"year={year}/", "weekly": f"year={year}/week={period.label}/",
                            "monthly": f"year={year}/month={s:%Y%m}/",
                            "daily": f"year={year}/month={s:%Y%m}/day={s:%Y%m%d}/",
                            "hourly": f"year={year}/month={s:%Y%m}/day={s:%Y%m%d}/hour={s:%Y%m%d%H}/"}[tier]
                assert summary_dir(period, "office-main") == "aggregated/host=office-main/" + expected


def test_week_key_uses_iso_week_year_not_calendar_year():
    week = parse_period("weekly", "2026W01")
    assert week.start.date().isoformat() == "2025-12-29"
    assert summary_key(week) == "aggregated/year=2026/week=2026W01/speed_test_summary.json"
    with pytest.raises(LayoutError, match="ISO week-year"):
        parse_summary_key("aggregated/year=2025/week=2026W01/speed_test_summary.json")


def test_default_buckets_are_the_seeds():
    b = Buckets()
    assert (b.raw, b.hourly, b.daily, b.weekly, b.monthly, b.yearly) == (
        "vd-speed-test", "vd-speed-test-hourly-prod", "vd-speed-test", "vd-speed-test-weekly-prod",
        "vd-speed-test-monthly-prod", "vd-speed-test-yearly-prod")
    assert b.with_overrides({"hourly": "my-hourly"}).for_tier("hourly") == "my-hourly"
    with pytest.raises(LayoutError, match="not a valid S3 bucket name"):
        b.with_overrides({"hourly": "Bad_Name"})
    with pytest.raises(LayoutError, match="unknown tier"):
        b.for_tier("minutely")


@pytest.mark.parametrize("host", ["home-primary", "office_main", "backup.location", "h1", "A" * 63])
def test_good_host_ids(host):
    assert validate_host_id(host) == host


@pytest.mark.parametrize("host, reason", [
    ("home/primary", "no '/'"), ("host=evil", "no '/', '='"), ("a..b", "'..'"),
    ("has space", "spaces"), ("", "1-63"), ("-leading", "starting with a letter or digit"),
    ("A" * 64, "1-63"), ("all", "reserved"), ("../etc", "'..'"),
])
def test_bad_host_ids_are_refused_with_clear_error(host, reason):
    with pytest.raises(InvalidHostId) as info:
        validate_host_id(host)
    assert repr(host) in str(info.value)
    assert reason in str(info.value)
    with pytest.raises(InvalidHostId):
        raw_key(host, datetime(2025, 1, 1, tzinfo=UTC))


def test_raw_period_prefixes():
    assert raw_period_prefix("h", parse_period("daily", "20251229")) == (
        "host=h/year=2025/month=202512/day=20251229/")
    assert raw_period_prefix("h", parse_period("weekly", "2025W52")) == "host=h/year=2025/"
    assert raw_period_prefix("h", parse_period("weekly", "2026W01")) == "host=h/"  # spans New Year
    assert raw_period_prefix("h", parse_period("yearly", "2025")) == "host=h/year=2025/"


def test_printable_escapes_control_characters_and_keeps_the_rest():
    from speedlab.layout import printable
    assert printable("host=h/minute=00/te\nst.json") == "host=h/minute=00/te\\nst.json"
    assert printable("a\r\x1b[31mb\tc\u2028") == "a\\r\\x1b[31mb\\tc\\u2028"
    assert printable("Büro Wi-Fi 5GHz (home)") == "Büro Wi-Fi 5GHz (home)"
    assert printable(None) == "None" and printable(4.5) == "4.5"


RAW = "host=home-primary/year=2025/month=202512/day=20251229/hour=2025122914/minute=00/test.json"


def test_hosts_prefix_lists_the_host_folders_and_host_of_prefix_reads_them_back():
    assert HOSTS_PREFIX == "host=" and raw_host_prefix("home-primary").startswith(HOSTS_PREFIX)
    assert host_of_prefix(raw_host_prefix("home-primary")) == "home-primary"
    assert host_of_prefix("host=../x/") == "../x"  # not validated: callers decide


def test_global_summary_years_prefix_holds_every_all_hosts_summary_and_no_per_host_one():
    assert GLOBAL_SUMMARY_YEARS_PREFIX == "aggregated/year="
    for tier, label in (("hourly", "2025122914"), ("daily", "20251229"), ("weekly", "2025W52"),
                        ("monthly", "202512"), ("yearly", "2025")):
        period = parse_period(tier, label)
        assert summary_key(period).startswith(GLOBAL_SUMMARY_YEARS_PREFIX)
        assert not summary_key(period, "home-primary").startswith(GLOBAL_SUMMARY_YEARS_PREFIX)
    assert summary_prefix() + "year=" == GLOBAL_SUMMARY_YEARS_PREFIX


def test_raw_partitions_walk_a_raw_key_folder_by_folder_down_to_its_hour_label():
    folders = RAW.removeprefix(raw_host_prefix("home-primary")).split("/")[:4]
    matches = [pattern.fullmatch(folder + "/") for pattern, folder in zip(RAW_PARTITIONS, folders, strict=True)]
    assert all(matches) and matches[-1] is not None and matches[-1].group(1) == "2025122914"
    assert RAW_PARTITIONS[0].fullmatch("minute=00/") is None


def test_host_in_key_reads_the_host_folder_also_of_keys_outside_the_layout():
    assert host_in_key(RAW) == "home-primary"
    assert host_in_key("host=home-primary/stray.json") == "home-primary"
    assert host_in_key("aggregated/year=2025/speed_test_summary.json") is None
    assert host_in_key("host=home-primary") is None  # no folder


def test_hour_in_key_and_raw_hour_label_read_the_hour_folder():
    assert hour_in_key(RAW) == raw_hour_label(RAW) == "2025122914"
    assert hour_in_key("host=a/year=2025/month=202512/") is None
    with pytest.raises(LayoutError, match="hour=YYYYMMDDHH"):
        raw_hour_label("host=a/year=2025/month=202512/x.json")


def test_stale_marker_keys_are_built_and_parsed_back():
    assert STALE_PREFIX == "stale/"
    assert stale_marker_key("2025122914", "home-primary") == "stale/hour=2025122914/home-primary.json"
    assert stale_marker_key("2025122914") == "stale/hour=2025122914/all.json"
    assert parse_stale_marker_key(stale_marker_key("2025122914", "home-primary")) == "2025122914"
    assert parse_stale_marker_key("stale/hour=2025123099/all.json") == "2025123099"  # not checked: the caller does
    assert parse_stale_marker_key("stale/notes.txt") is None
    assert parse_stale_marker_key("runs/stale/hour=2025122914/all.json") is None


def test_run_copy_keys_are_under_runs_in_the_hourly_bucket():
    assert RUNS_PREFIX == "runs/"
    assert run_copy_key("run_due", "run_due-1.json") == "runs/run_due/run_due-1.json"
