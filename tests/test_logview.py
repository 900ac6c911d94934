"""``logs``: merging, filtering, colouring and following the JSON-lines job logs."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from speedlab.joblog import JobLog
from speedlab.logview import (
    BadLine,
    LogError,
    LogFile,
    LogLine,
    format_line,
    keep_line,
    log_dir,
    parse_line,
    parse_since,
    read_logs,
    stream_logs,
    tail,
    use_colour,
)

NOW = datetime(2025, 12, 29, 9, 0, tzinfo=timezone.utc)


def _line(minutes_ago: float, job: str, level: str = "info", message: str = "m", **extra) -> str:
    moment = NOW - timedelta(minutes=minutes_ago)
    return json.dumps({"time": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "host": "home-primary",
                       "job": job, "level": level, "run_id": "r1", "message": message, **extra})


def _write(folder: Path, job: str, *lines: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job}.jsonl"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return path


def test_parse_line_and_its_errors():
    line = parse_line(_line(0, "collector", "warning", "slow", key="k1", download_mbps=1.5))
    assert ((line.time, line.job, line.level, line.message, line.host)
            == (NOW, "collector", "warning", "slow", "home-primary"))
    assert line.fields == {"key": "k1", "download_mbps": 1.5}
    assert line.to_dict()["time"] == "2025-12-29T09:00:00Z"
    for text, reason in (("{oops", "not JSON"), ("[1]", "not a JSON object"),
                         ('{"message": "x"}', "no 'time'"), ('{"time": "yesterday", "message": "x"}', "bad 'time'"),
                         ('{"time": "2025-12-29T09:00:00Z"}', "no 'message'")):
        with pytest.raises(ValueError, match=reason):
            parse_line(text)
    loud = parse_line('{"time": "2025-12-29T09:00:00Z", "message": "x", "level": "LOUD"}', default_job="api")
    assert loud.job == "api"


def test_parse_since():
    assert parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_since("1h", NOW) == NOW - timedelta(hours=1)
    assert parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert parse_since("2025-12-29T08:00:00Z", NOW) == NOW - timedelta(hours=1)
    for bad in ("1y", "soon", "-5m", ""):
        with pytest.raises(LogError, match=r"--since .* is not understood"):
            parse_since(bad, NOW)


def test_merge_filters_noise_levels_age_and_reports_bad_lines(tmp_path):
    _write(tmp_path, "collector", _line(50, "collector", message="run started", event="start"),
           _line(40, "collector", message="stored result"), "{half a line",
           _line(10, "collector", "error", "upload failed"),
           _line(9, "collector", message="run finished", event="end"))
    _write(tmp_path, "aggregator", _line(90, "aggregator", message="too old"),
           _line(30, "aggregator", "warning", "late data"), _line(20, "aggregator", "debug", "details"))
    items = read_logs(tmp_path, "all", since=NOW - timedelta(hours=1))
    assert isinstance(items[0], BadLine) and items[0].line_no == 3 and "not JSON" in str(items[0])
    assert str(items[0]).endswith("collector.jsonl line 3: not JSON (Expecting property name enclosed "
                                  "in double quotes at column 2) (line skipped)")
    assert [i.message for i in items[1:]] == ["stored result", "late data", "upload failed"]
    with_events = read_logs(tmp_path, "collector", since=None, level="debug", events=True)
    assert [i.message for i in with_events if isinstance(i, LogLine)] == [
        "run started", "stored result", "upload failed", "run finished"]
    assert [i.message for i in read_logs(tmp_path, "aggregator", level="debug")] == ["too old", "late data", "details"]
    assert [i.message for i in read_logs(tmp_path, "all", level="warning") if isinstance(i, LogLine)] == [
        "late data", "upload failed"]
    with pytest.raises(LogError, match="unknown job 'colector'"):
        read_logs(tmp_path, "colector")
    with pytest.raises(LogError, match="unknown level 'loud'"):
        read_logs(tmp_path, "all", level="loud")


def test_keep_line_rules():
    line = parse_line(_line(5, "dashboard", "warning"))
    assert keep_line(line, NOW - timedelta(minutes=10), "info")
    assert not keep_line(line, NOW - timedelta(minutes=1), "info")
    assert not keep_line(line, None, "error")
    start = parse_line(_line(5, "dashboard", event="start"))
    assert not keep_line(start, None) and keep_line(start, None, events=True)


def test_colours_only_when_asked_or_on_a_terminal():
    error = parse_line(_line(0, "collector", "error", "boom", key="k"))
    assert format_line(error, colour=True, tz="Asia/Kolkata") == (
        "2025-12-29 14:30:00 collector  home-primary   \033[31mERROR  \033[0m boom  key=k")
    assert format_line(error) == "2025-12-29 09:00:00 collector  home-primary   ERROR   boom  key=k"
    assert "\033[33m" in format_line(parse_line(_line(0, "c", "warning")), colour=True)
    assert "\033[32m" in format_line(parse_line(_line(0, "c", "info")), colour=True)

    class Tty(io.StringIO):
        def isatty(self):
            return True
    assert use_colour("auto", io.StringIO()) is False
    assert use_colour("always", io.StringIO()) is True and use_colour("never", Tty()) is False
    with pytest.raises(LogError):
        use_colour("sometimes", io.StringIO())


def test_logfile_waits_for_the_newline_and_rereads_after_truncation(tmp_path):
    path = tmp_path / "api.jsonl"
    full = _line(0, "api", message="whole")
    path.write_text(full[:20])
    log = LogFile(path)
    assert log.read_new() == []
    with open(path, "a") as handle:
        handle.write(full[20:] + "\n")
    assert [i.message for i in log.read_new()] == ["whole"]
    path.write_text(_line(0, "api", message="cut") + "\n")       # shorter: truncated and rewritten
    assert [i.message for i in log.read_new()] == ["cut"]
    fresh = tmp_path / "new.jsonl"
    fresh.write_text(_line(0, "api", message="rotated, longer than before") + "\n")
    fresh.replace(path)                                           # rotated: a new file, longer
    assert [i.message for i in log.read_new()] == ["rotated, longer than before"]


def test_follow_picks_up_a_line_written_after_it_started(tmp_path):
    _write(tmp_path, "collector", _line(1, "collector", message="before"))
    stop = threading.Event()
    seen: list = []

    def run():
        for item in tail(tmp_path, "all", follow=True, poll_s=0.02, should_stop=stop.is_set):
            seen.append(item)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [i.message for i in seen] == ["before"]
        log = JobLog(tmp_path, "aggregator", "home-primary")      # a job logging for the first time
        log.warning("late data arrived")
        log.end()                                                 # noise: not shown
        _write(tmp_path, "collector", "not json either")
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert [getattr(i, "message", None) for i in seen] == ["before", None, "late data arrived"]
    assert isinstance(seen[1], BadLine) and seen[1].line_no == 2


def test_stream_logs_uses_the_configs_log_folder(store, config_for):
    config = config_for(store)
    JobLog.for_config(config, "collector").error("no connectivity")
    items = list(stream_logs(config, "collector", "30m"))
    assert [(i.job, i.level, i.message) for i in items] == [("collector", "error", "no connectivity")]
    assert log_dir(config) == Path(config.state_path) / "logs"
    with pytest.raises(LogError, match="--since"):
        stream_logs(config, since="later")


def test_since_beyond_1970_means_from_the_start_and_a_bad_poll_is_a_log_error(local_store, config_for):
    start = datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert parse_since("999999999d", NOW) == start        # OverflowError before
    assert parse_since("100000w", NOW) == start
    with pytest.raises(LogError, match="outside the dates speedlab handles"):
        parse_since("0001-01-01T00:00:00Z", NOW)
    config = config_for(local_store)
    for poll in (-1, 0, float("nan"), float("inf"), 1e9):
        with pytest.raises(LogError, match=r"--poll .* must be a number of seconds above 0"):
            stream_logs(config, follow=True, poll_s=poll)
