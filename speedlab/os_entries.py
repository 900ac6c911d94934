"""Scheduler entries: render (pure) and install a job that runs every few minutes.

:func:`render_entries` turns *what to run* (``argv``) and *how often* (``every_minutes``,
``offset_minutes`` into each period) into the text of five scheduler definitions:

==================  ==========================================================================
key                 what it is
==================  ==========================================================================
``cron``            one crontab line, tagged ``# speedlab:NAME`` so an install can replace it
``systemd_service``  ``NAME.service`` (``Type=oneshot``)
``systemd_timer``   ``NAME.timer`` (``OnCalendar=``, ``Persistent=true``)
``windows_task_xml``  a Task Scheduler 1.2 definition for ``schtasks /Create /XML``
``schtasks``        the one-line ``schtasks /Create`` equivalent (cannot set StartWhenAvailable)
==================  ==========================================================================

``every_minutes`` must divide an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60) or be a
whole number of hours that divides a day (60, 120, 180, 240, 360, 480, 720, 1440); the
offset shifts every run by the same amount (``every_minutes=15, offset_minutes=3`` runs at
:03, :18, :33 and :48). Times are the scheduler's own clock (the host's local time). For
periods of up to an hour this does not matter: every real time zone is offset from UTC by a
multiple of 15 minutes, so :03 local is 3 minutes into a 15-minute slot in any zone.

**Windows and StartWhenAvailable.** The original system turned StartWhenAvailable off
because Task Scheduler's catch-up runs (after sleep or a reboot) wrote a second result into
an already filled 15-minute slot. speedlab's collector checks the slot before testing and
writes with a conditional put, so a catch-up run either fills a slot that would otherwise be
a gap or stops with "slot already filled": the XML turns StartWhenAvailable *on*, with
``MultipleInstancesPolicy=IgnoreNew`` so runs never pile up.

:func:`install_entries` writes the files and runs ``crontab``, ``systemctl`` or
``schtasks``; the command runner is injectable, so tests check the calls without touching
the machine's scheduler.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from .errors import ScheduleError
from .scheduler import RUN_DUE_EVERY_MINUTES, RUN_DUE_JOB

__all__ = ["PLATFORMS", "COLLECTOR_JOB", "collector_argv", "cron_tag", "default_offset_minutes",
           "install_entries", "merge_crontab", "native_platform", "render_entries",
           "run_due_entries", "schedule_collector",
           "speedlab_argv"]

#: ``--platform`` values and the entry keys each one needs.
PLATFORMS = {
    "cron": ("cron",),
    "systemd": ("systemd_service", "systemd_timer"),
    "windows": ("windows_task_xml", "schtasks"),
}
_MINUTE_STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
_HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12, 24)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


# --------------------------------------------------------------------------- pure rendering

def _check(name: str, argv: Sequence[str], every_minutes: int, offset_minutes: int) -> None:
    if not _NAME_RE.fullmatch(name or ""):
        raise ScheduleError(f"job name {name!r} is not usable as a unit/task name: use letters, "
                            "digits, '-', '_' or '.', e.g. 'speedlab-collect'")
    if not argv or not all(isinstance(a, str) and a for a in argv):
        raise ScheduleError(f"nothing to run: argv {list(argv)!r} must be non-empty strings")
    if any("\n" in a or "\r" in a for a in argv):
        raise ScheduleError("a scheduled command cannot contain line breaks")
    if isinstance(every_minutes, bool) or not isinstance(every_minutes, int) or not (
            every_minutes in _MINUTE_STEPS or (every_minutes % 60 == 0 and every_minutes // 60 in _HOUR_STEPS)):
        raise ScheduleError(
            f"every_minutes={every_minutes!r} cannot be scheduled evenly: use a divisor of 60 "
            f"({', '.join(map(str, _MINUTE_STEPS))}) or of a day in whole hours (120, 180, 240, 360, "
            "480, 720, 1440)")
    if isinstance(offset_minutes, bool) or not isinstance(offset_minutes, int) or not (
            0 <= offset_minutes < every_minutes):
        raise ScheduleError(f"offset_minutes={offset_minutes!r} must be a whole number from 0 to "
                            f"{every_minutes - 1} (it shifts each run within its {every_minutes}-minute period)")


def cron_tag(name: str) -> str:
    """The comment that marks a speedlab crontab line (``# speedlab:NAME``)."""
    return f"# speedlab:{name}"


def _cron_fields(every: int, offset: int) -> str:
    if every <= 60:
        minutes = ",".join(str(offset + k * every) for k in range(60 // every))
        return f"{minutes} * * * *"
    step_h = every // 60
    first_h, minute = divmod(offset, 60)
    hours = ",".join(str(first_h + k * step_h) for k in range(24 // step_h))
    return f"{minute} {hours} * * *"


def _on_calendar(every: int, offset: int) -> str:
    if every < 60:
        return f"*-*-* *:{offset:02d}/{every}:00"
    if every == 60:
        return f"*-*-* *:{offset:02d}:00"
    first_h, minute = divmod(offset, 60)
    if every == 1440:
        return f"*-*-* {first_h:02d}:{minute:02d}:00"
    return f"*-*-* {first_h:02d}/{every // 60}:{minute:02d}:00"


def _systemd_quote(arg: str) -> str:
    """One ``ExecStart=`` word: specifiers (``%``) and ``$`` escaped, quoted when needed."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", text) and text != ";":
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _windows_interval(every: int) -> str:
    if every == 1440:
        return "P1D"
    return f"PT{every // 60}H" if every % 60 == 0 else f"PT{every}M"


def _schtasks_schedule(every: int, offset: int) -> str:
    first_h, minute = divmod(offset, 60)
    start = f"/ST {first_h:02d}:{minute:02d}"
    if every < 60:
        return f"/SC MINUTE /MO {every} {start}"
    if every == 1440:
        return f"/SC DAILY {start}"
    return f"/SC HOURLY /MO {every // 60} {start}"


def render_entries(name: str, argv: list[str], every_minutes: int, offset_minutes: int = 0,
                   description: str = "") -> dict[str, str]:
    """Render the scheduler entries that run ``argv`` every ``every_minutes``.

    Parameters
    ----------
    name : str
        Job name: the systemd unit and Windows task name, and the crontab tag
        (``speedlab-collect``).
    argv : list of str
        The command, first word an absolute program path (schedulers have a minimal PATH),
        e.g. ``[sys.executable, "-m", "speedlab.cli", "collect", "--config", "/etc/speedlab.toml"]``.
    every_minutes : int
        The period [min]; see the module docstring for the allowed values.
    offset_minutes : int
        How far into each period a run starts [min], ``0 <= offset_minutes < every_minutes``.
    description : str
        One line for the unit's ``Description=`` and the task's description.

    Returns
    -------
    dict of str to str
        Keys ``cron``, ``systemd_service``, ``systemd_timer``, ``windows_task_xml``,
        ``schtasks``; each value is the full text to print or write.

    Raises
    ------
    ScheduleError
        For an unusable name, an empty command or a period/offset that cannot be scheduled.
    """
    _check(name, argv, every_minutes, offset_minutes)
    description = " ".join((description or f"speedlab job {name}").split())
    every, offset = every_minutes, offset_minutes
    command = shlex.join(argv).replace("%", r"\%")  # cron turns a bare % into a newline
    cron = f"{_cron_fields(every, offset)} {command} >/dev/null {cron_tag(name)}"

    service = "\n".join([
        "[Unit]",
        f"Description={description}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={' '.join(_systemd_quote(a) for a in argv)}",
        f"TimeoutStartSec={every}min",
        "",
    ])
    timer = "\n".join([
        "[Unit]",
        f"Description=Run {name} every {every} minutes ({offset} min into each period)",
        "",
        "[Timer]",
        f"OnCalendar={_on_calendar(every, offset)}",
        "AccuracySec=1s",
        "# Run once at boot/wake if a run was missed while the machine was off.",
        "Persistent=true",
        f"Unit={name}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])

    first_h, minute = divmod(offset, 60)
    arguments = subprocess.list2cmdline(list(argv[1:]))
    xml = "\n".join([
        '<?xml version="1.0" encoding="UTF-16"?>',
        '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">',
        "  <RegistrationInfo>",
        f"    <Description>{escape(description)}</Description>",
        f"    <URI>\\{escape(name)}</URI>",
        "  </RegistrationInfo>",
        "  <Triggers>",
        "    <TimeTrigger>",
        f"      <StartBoundary>2024-01-01T{first_h:02d}:{minute:02d}:00</StartBoundary>",
        "      <Repetition>",
        f"        <Interval>{_windows_interval(every)}</Interval>",
        "        <StopAtDurationEnd>false</StopAtDurationEnd>",
        "      </Repetition>",
        "      <Enabled>true</Enabled>",
        "    </TimeTrigger>",
        "  </Triggers>",
        "  <Principals>",
        '    <Principal id="Author">',
        "      <LogonType>InteractiveToken</LogonType>",
        "      <RunLevel>LeastPrivilege</RunLevel>",
        "    </Principal>",
        "  </Principals>",
        "  <Settings>",
        "    <!-- Runs never overlap: a new start while one is running is skipped. -->",
        "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>",
        "    <!-- StartWhenAvailable: run as soon as possible after a missed start (sleep, reboot).",
        "         The original collector turned this off because catch-up runs wrote duplicates",
        "         into a filled 15-minute slot; speedlab checks the slot first and writes",
        "         conditionally, so a catch-up run fills a gap or stops with 'slot already filled'. -->",
        "    <StartWhenAvailable>true</StartWhenAvailable>",
        "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>",
        "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>",
        "    <!-- Run even when Windows thinks the network is down: outages must be recorded. -->",
        "    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>",
        "    <IdleSettings>",
        "      <StopOnIdleEnd>false</StopOnIdleEnd>",
        "      <RestartOnIdle>false</RestartOnIdle>",
        "    </IdleSettings>",
        f"    <ExecutionTimeLimit>PT{every}M</ExecutionTimeLimit>",
        "    <Enabled>true</Enabled>",
        "  </Settings>",
        '  <Actions Context="Author">',
        "    <Exec>",
        f"      <Command>{escape(argv[0])}</Command>",
        *([f"      <Arguments>{escape(arguments)}</Arguments>"] if arguments else []),
        "    </Exec>",
        "  </Actions>",
        "</Task>",
        "",
    ])
    task_run = subprocess.list2cmdline(list(argv)).replace('"', '\\"')
    schtasks = (f'schtasks /Create /TN "{name}" {_schtasks_schedule(every, offset)} '
                f'/TR "{task_run}" /F')
    return {"cron": cron, "systemd_service": service, "systemd_timer": timer,
            "windows_task_xml": xml, "schtasks": schtasks}


def merge_crontab(existing: str, name: str, line: str) -> str:
    """Return ``existing`` crontab text with the line tagged for ``name`` replaced by ``line``.

    Lines of other jobs (and other users' comments) are kept in order; a missing final
    newline is added (cron ignores an unterminated last line).
    """
    tag = cron_tag(name)
    kept = [row for row in existing.splitlines() if not row.rstrip().endswith(tag)]
    return "\n".join([*kept, line]) + "\n"


# --------------------------------------------------------------------------- installing (I/O)

def native_platform(system: str | None = None, systemd_running: bool | None = None) -> str:
    """The scheduler to install into here: ``windows``, ``systemd`` (when systemd runs) or ``cron``."""
    system = system or sys.platform
    if system.startswith("win"):
        return "windows"
    if systemd_running is None:
        systemd_running = Path("/run/systemd/system").is_dir()
    return "systemd" if system.startswith("linux") and systemd_running else "cron"


Runner = Callable[..., subprocess.CompletedProcess]


def _run(run: Runner, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    try:
        return run(argv, capture_output=True, text=True, timeout=60, **kwargs)
    except FileNotFoundError:
        raise ScheduleError(f"{argv[0]} is not installed here: use 'speedlab schedule --platform ...' "
                            "without --install and add the printed entry by hand") from None
    except subprocess.TimeoutExpired:
        raise ScheduleError(f"{' '.join(argv)} did not finish within 60 s") from None


def _checked(run: Runner, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = _run(run, argv, **kwargs)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip().splitlines()
        raise ScheduleError(f"{' '.join(argv)} failed (exit {done.returncode}): "
                            f"{detail[-1] if detail else 'no message'}")
    return done


def install_entries(platform: str, name: str, entries: dict[str, str], *,
                    run: Runner = subprocess.run, unit_dir: str | os.PathLike | None = None,
                    system_wide: bool | None = None) -> list[str]:
    """Install rendered ``entries`` into ``platform``'s scheduler; return what was done.

    * ``cron``: reads ``crontab -l``, replaces the line tagged ``# speedlab:NAME`` (or adds
      it) and loads the result with ``crontab -``.
    * ``systemd``: writes ``NAME.service`` and ``NAME.timer`` into ``unit_dir`` (default
      ``/etc/systemd/system`` as root, else ``~/.config/systemd/user``), then
      ``systemctl [--user] daemon-reload`` and ``enable --now NAME.timer``.
    * ``windows``: writes ``NAME.xml`` (UTF-16) into ``unit_dir`` (default the current folder)
      and runs ``schtasks /Create /TN NAME /XML NAME.xml /F``.

    Raises
    ------
    ScheduleError
        For an unknown platform, a missing tool or a command that fails.
    """
    if platform not in PLATFORMS:
        raise ScheduleError(f"cannot install for platform {platform!r}: use one of {', '.join(PLATFORMS)}")
    done: list[str] = []
    if platform == "cron":
        current = _run(run, ["crontab", "-l"])
        if current.returncode != 0 and "no crontab" not in (current.stderr or "").lower():
            raise ScheduleError(f"crontab -l failed: {(current.stderr or '').strip() or 'no message'}")
        text = merge_crontab(current.stdout if current.returncode == 0 else "", name, entries["cron"])
        _checked(run, ["crontab", "-"], input=text)
        done.append(f"crontab: installed '{cron_tag(name)}' line")
        return done
    if platform == "systemd":
        if system_wide is None:
            system_wide = hasattr(os, "geteuid") and os.geteuid() == 0
        folder = Path(unit_dir) if unit_dir else (
            Path("/etc/systemd/system") if system_wide else Path.home() / ".config" / "systemd" / "user")
        scope = [] if system_wide else ["--user"]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.service").write_text(entries["systemd_service"], encoding="utf-8")
            (folder / f"{name}.timer").write_text(entries["systemd_timer"], encoding="utf-8")
        except OSError as exc:
            raise ScheduleError(f"cannot write units into {folder}: {exc.strerror}; run as root "
                                "or pass a writable folder") from None
        done.append(f"wrote {folder / (name + '.service')} and {folder / (name + '.timer')}")
        _checked(run, ["systemctl", *scope, "daemon-reload"])
        _checked(run, ["systemctl", *scope, "enable", "--now", f"{name}.timer"])
        done.append(f"systemctl {' '.join(scope + ['enable', '--now', name + '.timer'])}")
        if not system_wide:
            done.append("note: user timers run only while you are logged in unless "
                        "'loginctl enable-linger' is set for your user")
        return done
    folder = Path(unit_dir) if unit_dir else Path.cwd()
    xml_path = folder / f"{name}.xml"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        xml_path.write_text(entries["windows_task_xml"], encoding="utf-16")
    except OSError as exc:
        raise ScheduleError(f"cannot write {xml_path}: {exc.strerror}") from None
    done.append(f"wrote {xml_path}")
    _checked(run, ["schtasks", "/Create", "/TN", name, "/XML", str(xml_path), "/F"])
    done.append(f"schtasks: created task {name}")
    return done


# --------------------------------------------------------------------------- the collector's schedule

COLLECTOR_JOB = "speedlab-collect"


def default_offset_minutes(host_id: str) -> int:
    """A start offset of 2-10 minutes into the slot, fixed per host (hosts spread out, tests end in the slot)."""
    import zlib
    return 2 + zlib.crc32(host_id.encode("utf-8")) % 9


def collector_argv(config) -> list[str]:
    """The command a scheduler runs: this Python, ``-m speedlab.cli collect`` and the resolved settings.

    Schedulers start jobs with a bare environment and another working folder, so the store
    (absolute for a local folder; the S3 endpoint and region in the URL), the config file,
    the host id and the time zone are passed explicitly. Secrets are never put on the
    command line: S3 credentials come from the config file, a profile or the service's
    environment (see :func:`speedlab_argv`).
    """
    return speedlab_argv(config, "collect", "--host-id", config.host_id)


def speedlab_argv(config, *command: str) -> list[str]:
    """``python -m speedlab.cli COMMAND...`` plus the resolved ``--config``, ``--store`` and
    ``--timezone`` (see :func:`collector_argv`), for any job a scheduler runs: the
    :meth:`~speedlab.config.Config.child_env` variables of :data:`~speedlab.config.CHILD_FLAGS`.

    Raises
    ------
    ScheduleError
        When the store URL carries credentials: a crontab line, a systemd unit or a Windows
        task is readable by others (``crontab -l``, ``systemctl cat``, ``schtasks /Query``),
        so speedlab never writes a secret into one. Put them in ``[s3]`` of the config file
        (readable only by you), name a profile, or set ``SPEEDLAB_S3_ACCESS_KEY_ID`` /
        ``SPEEDLAB_S3_SECRET_ACCESS_KEY`` (or ``AWS_*``) in the job's environment.
    """
    from .config import CHILD_FLAGS
    from .masking import split_credentials
    env = config.child_env()
    credentials = split_credentials(config.store)[1]
    if credentials:
        raise ScheduleError(
            f"the store URL carries credentials ({', '.join(sorted(credentials))}), and a scheduler "
            "entry is readable by others, so speedlab does not write them into one: put them in [s3] "
            "of speedlab.toml (chmod 600) and pass --config, or use a profile ([s3] profile), or set "
            "SPEEDLAB_S3_ACCESS_KEY_ID/SPEEDLAB_S3_SECRET_ACCESS_KEY in the job's environment; then "
            f"give the store as {env['SPEEDLAB_STORE']}")
    argv = [sys.executable, "-m", "speedlab.cli", *command]
    for name, flag in CHILD_FLAGS.items():  # the config's child_env, as flags: an entry has no environment
        if name in env:
            argv += [flag, env[name]]
    return argv


def run_due_entries(config, every_minutes: int = RUN_DUE_EVERY_MINUTES, offset_minutes: int = 1) -> dict:
    """The cron line, systemd service + timer and Windows task that call ``speedlab scheduler
    run-due`` every ``every_minutes`` (``offset_minutes`` into each period: with the defaults
    at :01, :06, :11, ... so the hourly rollup due at :10 runs at :11).

    Returns
    -------
    dict
        ``name``, ``argv``, ``every_minutes``, ``offset_minutes`` and ``entries`` (the texts
        keyed ``cron``, ``systemd_service``, ``systemd_timer``, ``windows_task_xml``,
        ``schtasks``; see :func:`render_entries`).
    """
    argv = speedlab_argv(config, "scheduler", "run-due")
    entries = render_entries(RUN_DUE_JOB, argv, every_minutes, offset_minutes,
                             "speedlab scheduler: roll up every summary that is due "
                             "(hourly :10, daily 06:00, weekly Tue 02:00, monthly 1st 02:00, yearly 1 Jan 02:00)")
    return {"name": RUN_DUE_JOB, "argv": argv, "every_minutes": every_minutes,
            "offset_minutes": offset_minutes, "entries": entries}


def schedule_collector(config, *, platform: str = "all", offset_minutes: int | None = None,
                       install: bool = False, run: Runner = subprocess.run,
                       unit_dir: str | os.PathLike | None = None) -> dict:
    """Render (and with ``install``, install) the entries that run the collector every 15 minutes.

    Parameters
    ----------
    config : Config
    platform : str
        ``cron``, ``systemd``, ``windows`` or ``all`` (``all`` with ``install`` means this
        machine's scheduler, see :func:`native_platform`).
    offset_minutes : int, optional
        Minutes into each slot (0-14); default ``[collector] start_offset_minutes``, else a
        per-host value from :func:`default_offset_minutes`.

    Returns
    -------
    dict
        ``name``, ``argv``, ``every_minutes``, ``offset_minutes``, ``platform``, ``entries``
        (the chosen platform's texts) and ``installed`` (what was done).
    """
    if platform not in (*PLATFORMS, "all"):
        raise ScheduleError(f"unknown platform {platform!r}: use cron, systemd, windows or all")
    if offset_minutes is None:
        offset_minutes = config.collector.start_offset_minutes
    if offset_minutes is None:
        offset_minutes = default_offset_minutes(config.host_id)
    argv = collector_argv(config)
    entries = render_entries(COLLECTOR_JOB, argv, 15, offset_minutes,
                             f"speedlab collector: one speed test per 15-minute slot for {config.host_id}")
    target = native_platform() if install and platform == "all" else platform
    keys = [k for p, ks in PLATFORMS.items() if target in (p, "all") for k in ks]
    installed = install_entries(target, COLLECTOR_JOB, entries, run=run, unit_dir=unit_dir) if install else []
    return {"name": COLLECTOR_JOB, "argv": argv, "every_minutes": 15, "offset_minutes": offset_minutes,
            "platform": target, "entries": {k: entries[k] for k in keys}, "installed": installed}
