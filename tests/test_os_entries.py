"""Scheduler entries: exact text for cron, systemd and Windows, validation, installing."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from speedlab.errors import ScheduleError
from speedlab.os_entries import install_entries, merge_crontab, native_platform, render_entries

ARGV = ["/usr/bin/python3", "-m", "speedlab.cli", "collect", "--store", "/data/my store"]
NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


@pytest.fixture
def entries():
    return render_entries("speedlab-collect", ARGV, 15, 3, "speedlab collector")


def test_cron_line_runs_at_the_offset_in_every_slot(entries):
    assert entries["cron"] == ("3,18,33,48 * * * * /usr/bin/python3 -m speedlab.cli collect "
                               "--store '/data/my store' >/dev/null # speedlab:speedlab-collect")
    command = entries["cron"].split(" * * * * ", 1)[1].split(" >/dev/null")[0]
    assert shlex.split(command) == ARGV


def test_cron_escapes_percent_signs():
    line = render_entries("job", ["/bin/echo", "50%"], 15)["cron"]
    assert line.startswith("0,15,30,45 * * * * /bin/echo 50\\% ")


def test_cron_fields_for_hourly_and_longer_periods():
    assert render_entries("a", ["/x"], 60, 10)["cron"].startswith("10 * * * * /x")
    assert render_entries("a", ["/x"], 360, 130)["cron"].startswith("10 2,8,14,20 * * * /x")
    assert render_entries("a", ["/x"], 1440, 130)["cron"].startswith("10 2 * * * /x")
    assert render_entries("a", ["/x"], 5, 2)["cron"].startswith(
        "2,7,12,17,22,27,32,37,42,47,52,57 * * * * /x")


def test_systemd_units(entries):
    assert entries["systemd_service"].splitlines() == [
        "[Unit]", "Description=speedlab collector", "Wants=network-online.target",
        "After=network-online.target", "", "[Service]", "Type=oneshot",
        'ExecStart=/usr/bin/python3 -m speedlab.cli collect --store "/data/my store"',
        "TimeoutStartSec=15min"]
    timer = entries["systemd_timer"].splitlines()
    assert "OnCalendar=*-*-* *:03/15:00" in timer
    assert "Persistent=true" in timer and "Unit=speedlab-collect.service" in timer
    assert timer[-1] == "WantedBy=timers.target"


def test_systemd_quoting_of_specifiers_and_dollars():
    service = render_entries("job", ["/bin/x", "100%", "$HOME", 'a"b'], 15)["systemd_service"]
    assert 'ExecStart=/bin/x 100%% "$$HOME" "a\\"b"' in service


@pytest.mark.parametrize("every, offset, calendar, minutes", [
    (15, 3, "*-*-* *:03/15:00", {3, 18, 33, 48}),
    (60, 10, "*-*-* *:10:00", {10}),
    (5, 0, "*-*-* *:00/5:00", set(range(0, 60, 5))),
])
def test_on_calendar_is_valid_for_systemd(every, offset, calendar, minutes):
    timer = render_entries("job", ["/x"], every, offset)["systemd_timer"]
    assert f"OnCalendar={calendar}" in timer
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    out = subprocess.run(["systemd-analyze", "calendar", "--iterations=4", calendar],
                         capture_output=True, text=True, timeout=30, env={"TZ": "UTC"})
    assert out.returncode == 0, out.stderr
    elapses = [line.split()[-2] for line in out.stdout.splitlines()
               if "lapse:" in line or "Iter." in line]
    assert len(elapses) == 4
    assert {int(t.split(":")[1]) for t in elapses} <= minutes


def test_windows_task_xml(entries):
    xml = entries["windows_task_xml"]
    root = ET.fromstring(xml.replace('encoding="UTF-16"', 'encoding="UTF-8"').encode())
    trigger = root.find("t:Triggers/t:TimeTrigger", NS)
    assert trigger.find("t:StartBoundary", NS).text == "2024-01-01T00:03:00"
    assert trigger.find("t:Repetition/t:Interval", NS).text == "PT15M"
    settings = root.find("t:Settings", NS)
    assert settings.find("t:StartWhenAvailable", NS).text == "true"
    assert settings.find("t:MultipleInstancesPolicy", NS).text == "IgnoreNew"
    assert settings.find("t:RunOnlyIfNetworkAvailable", NS).text == "false"
    assert root.find("t:Actions/t:Exec/t:Command", NS).text == "/usr/bin/python3"
    assert root.find("t:Actions/t:Exec/t:Arguments", NS).text == \
        '-m speedlab.cli collect --store "/data/my store"'
    assert "catch-up runs wrote duplicates" in xml  # StartWhenAvailable is explained


def test_windows_xml_escapes_markup():
    xml = render_entries("job", ["C:\\bin\\x.exe", "a&b<c"], 15, 0, "R&D <lab>")["windows_task_xml"]
    root = ET.fromstring(xml.replace('encoding="UTF-16"', 'encoding="UTF-8"').encode())
    assert root.find("t:RegistrationInfo/t:Description", NS).text == "R&D <lab>"
    assert root.find("t:Actions/t:Exec/t:Arguments", NS).text == "a&b<c"


def test_schtasks_line(entries):
    assert entries["schtasks"] == (
        'schtasks /Create /TN "speedlab-collect" /SC MINUTE /MO 15 /ST 00:03 '
        '/TR "/usr/bin/python3 -m speedlab.cli collect --store \\"/data/my store\\"" /F')
    assert "/SC HOURLY /MO 6 /ST 02:10" in render_entries("a", ["/x"], 360, 130)["schtasks"]
    assert "/SC DAILY /ST 02:10" in render_entries("a", ["/x"], 1440, 130)["schtasks"]


@pytest.mark.parametrize("kwargs, words", [
    ({"every_minutes": 7}, "cannot be scheduled evenly"),
    ({"every_minutes": 90}, "cannot be scheduled evenly"),
    ({"offset_minutes": 15}, "from 0 to 14"),
    ({"offset_minutes": -1}, "from 0 to 14"),
    ({"name": "bad name"}, "not usable"),
    ({"argv": []}, "nothing to run"),
])
def test_invalid_requests_say_what_to_do(kwargs, words):
    args = {"name": "job", "argv": ["/x"], "every_minutes": 15, "offset_minutes": 0, **kwargs}
    with pytest.raises(ScheduleError, match=words):
        render_entries(**args)


def test_merge_crontab_replaces_only_our_line():
    existing = "MAILTO=me\n0 1 * * * backup # mine\n1 * * * * old # speedlab:speedlab-collect\n"
    merged = merge_crontab(existing, "speedlab-collect", "3 * * * * new # speedlab:speedlab-collect")
    assert merged == "MAILTO=me\n0 1 * * * backup # mine\n3 * * * * new # speedlab:speedlab-collect\n"
    assert merge_crontab("", "j", "x # speedlab:j") == "x # speedlab:j\n"


class FakeRunner:
    """Records commands; answers ``crontab -l`` with a canned crontab."""

    def __init__(self, crontab: str | None = "", fail: str | None = None):
        self.calls: list[tuple[list[str], str | None]] = []
        self.crontab = crontab
        self.fail = fail

    def __call__(self, argv, capture_output=True, text=True, timeout=None, input=None):
        self.calls.append((list(argv), input))
        if self.fail and argv[0] == self.fail:
            return subprocess.CompletedProcess(argv, 1, "", "permission denied")
        if argv[:2] == ["crontab", "-l"]:
            if self.crontab is None:
                return subprocess.CompletedProcess(argv, 1, "", "no crontab for root")
            return subprocess.CompletedProcess(argv, 0, self.crontab, "")
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_install_cron_keeps_other_lines(entries):
    runner = FakeRunner(crontab="0 1 * * * backup\n")
    install_entries("cron", "speedlab-collect", entries, run=runner)
    assert runner.calls[1] == (["crontab", "-"], "0 1 * * * backup\n" + entries["cron"] + "\n")
    empty = FakeRunner(crontab=None)
    install_entries("cron", "speedlab-collect", entries, run=empty)
    assert empty.calls[1][1] == entries["cron"] + "\n"


def test_install_systemd_user_units(entries, tmp_path):
    runner = FakeRunner()
    done = install_entries("systemd", "speedlab-collect", entries, run=runner, unit_dir=tmp_path,
                           system_wide=False)
    assert (tmp_path / "speedlab-collect.service").read_text() == entries["systemd_service"]
    assert (tmp_path / "speedlab-collect.timer").read_text() == entries["systemd_timer"]
    assert [c[0] for c in runner.calls] == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "speedlab-collect.timer"]]
    assert any("enable-linger" in line for line in done)


def test_install_windows_writes_utf16_xml(entries, tmp_path):
    runner = FakeRunner()
    install_entries("windows", "speedlab-collect", entries, run=runner, unit_dir=tmp_path)
    xml_path = tmp_path / "speedlab-collect.xml"
    assert xml_path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")  # BOM: schtasks wants UTF-16
    assert xml_path.read_text(encoding="utf-16") == entries["windows_task_xml"]
    assert runner.calls == [(["schtasks", "/Create", "/TN", "speedlab-collect", "/XML",
                              str(xml_path), "/F"], None)]


def test_install_failure_is_a_clear_error(entries, tmp_path):
    with pytest.raises(ScheduleError, match=r"systemctl --user daemon-reload failed.*permission denied"):
        install_entries("systemd", "speedlab-collect", entries, run=FakeRunner(fail="systemctl"),
                        unit_dir=tmp_path, system_wide=False)

    def missing(argv, **kwargs):
        raise FileNotFoundError(argv[0])
    with pytest.raises(ScheduleError, match="crontab is not installed"):
        install_entries("cron", "speedlab-collect", entries, run=missing)


def test_native_platform():
    assert native_platform("win32") == "windows"
    assert native_platform("linux", systemd_running=True) == "systemd"
    assert native_platform("linux", systemd_running=False) == "cron"
    assert native_platform("darwin") == "cron"


# ----------------------------------------------------------------------------- the collector's entries
from speedlab import cli  # noqa: E402
from speedlab.config import load_config  # noqa: E402
from speedlab.os_entries import collector_argv, default_offset_minutes, schedule_collector  # noqa: E402


def test_collector_argv_carries_resolved_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    config = load_config(env={}, store="data", host_id="home-primary", timezone="Europe/Berlin")
    assert collector_argv(config)[1:] == ["-m", "speedlab.cli", "collect", "--host-id", "home-primary",
                                          "--store", str(tmp_path / "data"), "--timezone", "Europe/Berlin"]
    s3 = load_config(env={}, store="s3://", host_id="h1",
                     s3={"endpoint_url": "http://127.0.0.1:9000", "region": "eu-west-1",
                         "secret_access_key": "never-on-a-command-line"})
    argv = collector_argv(s3)
    assert argv[argv.index("--store") + 1] == "s3://?endpoint_url=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1"
    assert not any("never-on-a-command-line" in a for a in argv)


def test_the_scheduled_command_runs(tmp_path):
    (tmp_path / "data").mkdir()
    config = load_config(env={}, store=str(tmp_path / "data"), host_id="home-primary")
    argv = collector_argv(config) + ["--flush", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    assert '"remaining": 0' in done.stdout


def test_offset_defaults(tmp_path):
    offsets = {default_offset_minutes(f"host-{i}") for i in range(200)}
    assert offsets == set(range(2, 11))
    assert default_offset_minutes("home-primary") == default_offset_minutes("home-primary")
    config = load_config(env={}, store=str(tmp_path), host_id="home-primary")
    assert schedule_collector(config)["offset_minutes"] == default_offset_minutes("home-primary")
    pinned = load_config(env={}, store=str(tmp_path), host_id="home-primary",
                         sections={"collector": {"start_offset_minutes": 7}})
    assert schedule_collector(pinned)["offset_minutes"] == 7
    assert schedule_collector(pinned, offset_minutes=0)["offset_minutes"] == 0
    with pytest.raises(ScheduleError, match="from 0 to 14"):
        schedule_collector(pinned, offset_minutes=20)


def test_schedule_collector_installs_the_chosen_platform(tmp_path):
    (tmp_path / "data").mkdir()
    config = load_config(env={}, store=str(tmp_path / "data"), host_id="home-primary")
    runner = FakeRunner(crontab="")
    result = schedule_collector(config, platform="cron", offset_minutes=4, install=True, run=runner)
    assert result["platform"] == "cron" and list(result["entries"]) == ["cron"]
    assert runner.calls[1][1].startswith("4,19,34,49 * * * * ")
    assert runner.calls[1][1].rstrip().endswith("# speedlab:speedlab-collect")


def test_cli_schedule_prints_all_three_platforms(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    status = cli.main(["schedule", "--store", str(tmp_path / "data"), "--offset-minutes", "4",
                       "--timezone", "Asia/Kolkata"])
    out = capsys.readouterr().out
    assert status == 0
    cron = next(line for line in out.splitlines() if line.startswith("4,19,34,49 * * * * "))
    assert "-m speedlab.cli collect --host-id " in cron and f"--store {tmp_path / 'data'} " in cron
    assert "OnCalendar=*-*-* *:04/15:00" in out and "Type=oneshot" in out
    assert "<StartWhenAvailable>true</StartWhenAvailable>" in out
    assert "<StartBoundary>2024-01-01T00:04:00</StartBoundary>" in out
    assert '/SC MINUTE /MO 15 /ST 00:04' in out


@pytest.mark.parametrize("platform, present, absent", [
    ("cron", "4,19,34,49 * * * *", "OnCalendar"),
    ("systemd", "OnCalendar=*-*-* *:04/15:00", "StartWhenAvailable"),
    ("windows", "<Interval>PT15M</Interval>", "OnCalendar"),
])
def test_cli_schedule_one_platform_json(tmp_path, capsys, platform, present, absent):
    assert cli.main(["schedule", "--platform", platform, "--offset-minutes", "4", "--json",
                     "--store", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    text = "\n".join(result["entries"].values())
    assert present in text and absent not in text and result["every_minutes"] == 15


def test_cli_schedule_bad_offset_is_one_line(tmp_path, capsys):
    assert cli.main(["schedule", "--offset-minutes", "15", "--store", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("speedlab schedule: error: offset_minutes=15")


SECRET_STORE = ("s3://?endpoint_url=http://127.0.0.1:9000&access_key_id=AKIAEXAMPLEKEYID"
                "&secret_access_key=never-in-a-crontab")


@pytest.mark.parametrize("command", [["schedule"], ["schedule", "--platform", "systemd", "--json"],
                                     ["scheduler", "print"]])
def test_scheduler_entries_refuse_a_store_url_with_credentials(command, capsys):
    assert cli.main([*command, "--store", SECRET_STORE]) == 1
    captured = capsys.readouterr()
    assert "never-in-a-crontab" not in captured.out + captured.err
    assert "AKIAEXAMPLEKEYID" not in captured.out + captured.err
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "carries credentials (access_key_id, secret_access_key)" in captured.err
    assert "SPEEDLAB_S3_SECRET_ACCESS_KEY" in captured.err


def test_scheduler_entries_refuse_a_missing_local_store_folder(tmp_path, capsys):
    assert cli.main(["schedule", "--store", str(tmp_path / "mistyped")]) == 1
    assert "mistyped does not exist" in capsys.readouterr().err
    assert not (tmp_path / "mistyped").exists()
