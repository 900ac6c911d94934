"""Reading the job logs (the seed's ``tail_logs.py``): merge, filter, colour, follow.

Every speedlab job appends JSON lines to ``<state>/logs/<job>.jsonl`` through
:class:`speedlab.joblog.JobLog` (``<state>`` is :attr:`speedlab.config.Config.state_path`:
``<store>/_speedlab`` for a local store). This module is the reading side:

* :func:`parse_line`, :func:`parse_since`, :func:`keep_line`, :func:`format_line` are pure;
* :class:`LogFile` reads one file incrementally (offset, partial last line, truncation);
* :func:`tail` merges the selected files by time and, following, polls them for new lines;
  :func:`stream_logs` is :func:`tail` for a configuration, as ``speedlab logs`` prints it.

A malformed line never stops the reader: it comes back as a :class:`BadLine` naming the file,
the line number and the problem. Lines with ``event`` ``start``/``end`` (a run opening and
closing) are noise to most readers and are hidden unless ``events=True``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .errors import LogError, UnsupportedDate
from .joblog import JOBS, LEVELS
from .layout import printable
from .periods import get_zone, parse_timestamp

__all__ = ["BadLine", "LogError", "LogFile", "LogLine", "MAX_POLL_S", "TOOL_JOBS", "check_job",
           "check_level", "check_poll", "format_line", "keep_line", "log_dir", "parse_line",
           "parse_since", "read_logs", "stream_logs", "tail", "use_colour"]

UTC = timezone.utc
#: Jobs the operator tools themselves log as (``speedlab dedupe``).
TOOL_JOBS = ("dedupe",)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: The earliest ``--since``: no log line is older.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: The longest ``--poll`` interval [s].
MAX_POLL_S = 3600.0
_COLOURS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[32m", "debug": "\033[2m"}
_RESET = "\033[0m"
_CORE = ("time", "host", "job", "level", "run_id", "message", "event")


@dataclass(frozen=True)
class LogLine:
    """One parsed log line; ``fields`` holds the keys beyond the standard ones."""

    time: datetime
    job: str
    level: str
    message: str
    host: str | None = None
    run_id: str | None = None
    event: str | None = None
    fields: dict = field(default_factory=dict, compare=False)
    source: str = ""

    def to_dict(self) -> dict:
        """The line as its JSON object again."""
        data = {"time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "host": self.host, "job": self.job, "level": self.level, "run_id": self.run_id,
                "message": self.message}
        if self.event:
            data["event"] = self.event
        data.update(self.fields)
        return data


@dataclass(frozen=True)
class BadLine:
    """A line that is not a valid log object: where, and why."""

    source: str
    line_no: int
    reason: str

    def __str__(self) -> str:
        return f"logs: {self.source} line {self.line_no}: {self.reason} (line skipped)"


# --------------------------------------------------------------------------- pure

def parse_line(text: str, source: str = "", default_job: str | None = None) -> LogLine:
    """Parse one JSON log line.

    Raises
    ------
    ValueError
        If it is not a JSON object with a valid ``time`` and a ``message``.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if not isinstance(data.get("time"), str):
        raise ValueError("no 'time'")
    try:
        moment = parse_timestamp(data["time"])
    except ValueError as exc:
        raise ValueError(f"bad 'time': {exc}") from None
    if "message" not in data:
        raise ValueError("no 'message'")
    level = str(data.get("level") or "info").lower()
    extra = {k: v for k, v in data.items() if k not in _CORE}
    return LogLine(moment, str(data.get("job") or default_job or "?"),
                   level if level in LEVELS else "info", str(data["message"]), data.get("host"),
                   data.get("run_id"), data.get("event"), extra, source)


def parse_since(text: str, now: datetime) -> datetime:
    """The moment ``text`` names: ``30m``, ``1h``, ``2d``, ``1w``, ``90s`` before ``now``, or an
    ISO 8601 time (with offset). A duration reaching before 1970 (``999999999d``) means from
    the start: 1970-01-01 UTC, before any log line.

    Raises
    ------
    LogError
        For anything else, or an ISO time outside the dates speedlab handles.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", str(text).lower())
    if match:
        try:
            return max(now - timedelta(**{_UNITS[match[2]]: int(match[1])}), _EPOCH)
        except OverflowError:  # further back than datetime reaches
            return _EPOCH
    try:
        return parse_timestamp(str(text))
    except UnsupportedDate as exc:
        raise LogError(f"--since {text!r}: {exc}") from None
    except ValueError:
        raise LogError(f"--since {text!r} is not understood: write a duration such as 30m, 1h, 2d "
                       "or an ISO time such as 2025-12-29T08:00:00Z") from None


def check_poll(poll_s: float) -> float:
    """``poll_s`` if it is a number of seconds above 0 and at most :data:`MAX_POLL_S`, else
    :class:`LogError` (``-1`` crashed ``time.sleep``)."""
    ok = isinstance(poll_s, (int, float)) and not isinstance(poll_s, bool) and 0 < poll_s <= MAX_POLL_S
    if not ok:  # NaN fails the comparison too
        raise LogError(f"--poll {poll_s!r} must be a number of seconds above 0 and at most {MAX_POLL_S:g}")
    return poll_s


def check_level(level: str) -> str:
    """``level`` if it is one of :data:`speedlab.joblog.LEVELS`, else :class:`LogError`."""
    if level not in LEVELS:
        raise LogError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    return level


def keep_line(line: LogLine, since: datetime | None, level: str = "debug", events: bool = False) -> bool:
    """Whether ``line`` passes the filters: not older than ``since``, at least ``level``, and
    not a start/end line unless ``events``."""
    if since is not None and line.time < since:
        return False
    if LEVELS.index(line.level) < LEVELS.index(level):
        return False
    return events or line.event not in ("start", "end")


def format_line(line: LogLine, colour: bool = False, tz=None) -> str:
    """One line for people: ``time job host LEVEL message key=value…``, coloured by level,
    the time in zone ``tz`` (a name or ZoneInfo; default UTC). Control characters in the
    message, job, host and fields are shown escaped (:func:`~speedlab.layout.printable`): a key
    holding a newline cannot forge a line."""
    zone = get_zone(tz) if isinstance(tz, str) else tz or UTC
    moment = line.time.astimezone(zone)
    extra = " ".join(printable(f"{k}={json.dumps(v) if not isinstance(v, str) else v}")
                     for k, v in line.fields.items())
    level = f"{line.level.upper():7}"
    if colour:
        level = f"{_COLOURS.get(line.level, '')}{level}{_RESET}"
    text = (f"{moment:%Y-%m-%d %H:%M:%S} {printable(line.job):10} {printable(line.host or '-'):14} {level} "
            f"{printable(line.message)}")
    if line.event:
        text += f" [{printable(line.event)}]"
    return f"{text}  {extra}" if extra else text


def use_colour(mode: str, stream) -> bool:
    """``always``, ``never``, or ``auto``: colour only when ``stream`` is a terminal."""
    if mode not in ("auto", "always", "never"):
        raise LogError(f"--color {mode!r}: use auto, always or never")
    if mode == "auto":
        return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
    return mode == "always"


# --------------------------------------------------------------------------- files

class LogFile:
    """One ``<job>.jsonl`` read incrementally: :meth:`read_new` returns what was appended
    since the last call (complete lines only; a partial last line waits for its newline).
    A file that shrank (truncated) or was replaced (rotated: a new inode) is read again from
    the start."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.job = self.path.stem
        self.offset = 0
        self.line_no = 0
        self._partial = b""
        self._inode: int | None = None

    def read_new(self) -> list[LogLine | BadLine]:
        """Parsed new lines (and :class:`BadLine` for malformed ones)."""
        try:
            stat = self.path.stat()
            size = stat.st_size
            if size < self.offset or stat.st_ino != self._inode:  # truncated, or a new file
                self.offset, self.line_no, self._partial = 0, 0, b""
                self._inode = stat.st_ino
            if size == self.offset:
                return []
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read(size - self.offset)
        except FileNotFoundError:
            return []
        except OSError as exc:
            return [BadLine(str(self.path), self.line_no, f"cannot read: {exc.strerror}")]
        self.offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        out: list[LogLine | BadLine] = []
        for raw in complete:
            self.line_no += 1
            if not raw.strip():
                continue
            try:
                out.append(parse_line(raw.decode("utf-8"), str(self.path), self.job))
            except (ValueError, UnicodeDecodeError) as exc:
                out.append(BadLine(str(self.path), self.line_no, str(exc)))
        return out


def log_dir(config) -> Path:
    """The folder of the job logs for ``config``.

    Raises
    ------
    LogError
        When it is inside a local store folder that does not exist (a wrong ``--store``).
    """
    path = Path(config.state_path) / "logs"
    if not config.remote_store:
        store = config.open_store()
        if store.local_root is not None and not store.local_root.is_dir():
            raise LogError(f"local store folder {store.root} does not exist, so it has no logs: "
                           "check --store / SPEEDLAB_STORE")
    return path


def _job_files(folder: Path, job: str) -> list[Path]:
    if job == "all":
        return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    return [folder / f"{job}.jsonl"]


def check_job(folder: Path, job: str) -> str:
    """``job`` if it is ``all``, a known job or one with a log file here, else :class:`LogError`."""
    known = set(JOBS) | set(TOOL_JOBS) | {p.stem for p in _job_files(folder, "all")}
    if job != "all" and job not in known:
        raise LogError(f"unknown job {job!r}: use all or one of {', '.join(sorted(known))}")
    return job


def _poll(folder: Path, job: str, files: dict[Path, LogFile]) -> list[LogLine | BadLine]:
    """Read what was appended to the job's files (adding files that appeared): malformed
    lines first, then the good ones merged by time."""
    for path in _job_files(folder, job):
        files.setdefault(path, LogFile(path))
    lines: list[LogLine] = []
    bad: list[BadLine] = []
    for log in files.values():
        for item in log.read_new():
            if isinstance(item, BadLine):
                bad.append(item)
            else:
                lines.append(item)
    lines.sort(key=lambda line: line.time)  # stable: a file's own order survives equal times
    return [*bad, *lines]


def tail(folder: str | os.PathLike, job: str = "all", since: datetime | None = None,
         level: str = "info", events: bool = False, follow: bool = False, poll_s: float = 0.5,
         should_stop: Callable[[], bool] = lambda: False,
         sleep: Callable[[float], None] = time.sleep) -> Iterator[LogLine | BadLine]:
    """The log lines of ``job`` (``all``: every job) in ``folder`` that pass the filters.

    First everything already written (merged by time, not older than ``since``); then, with
    ``follow``, every line appended later, polling every ``poll_s`` [s] until
    ``should_stop()``. Files that appear later (a job logging for the first time) are picked
    up. Malformed lines come back as :class:`BadLine`, whatever their age.
    """
    folder = Path(folder)
    check_level(level)
    check_job(folder, job)
    files: dict[Path, LogFile] = {}
    for item in _poll(folder, job, files):
        if isinstance(item, BadLine) or keep_line(item, since, level, events):
            yield item
    while follow and not should_stop():
        sleep(poll_s)
        for item in _poll(folder, job, files):
            if isinstance(item, BadLine) or keep_line(item, None, level, events):
                yield item


def read_logs(folder: str | os.PathLike, job: str = "all", since: datetime | None = None,
              level: str = "info", events: bool = False) -> list[LogLine | BadLine]:
    """Everything :func:`tail` shows without following, as a list."""
    return list(tail(folder, job, since, level, events))


def stream_logs(config, job: str = "all", since: str = "1h", level: str = "info",
                events: bool = False, follow: bool = False, poll_s: float = 0.5,
                now: datetime | None = None, should_stop: Callable[[], bool] = lambda: False
                ) -> Iterator[LogLine | BadLine]:
    """What ``speedlab logs`` shows: :func:`tail` over the logs of ``config``.

    Parameters
    ----------
    config : speedlab.config.Config
        Where the logs are (:func:`log_dir`).
    job : str
        ``all`` or one job (``collector``, ``aggregator``, ``dashboard``, ``dedupe``, …).
    since : str
        ``30m``, ``1h``, ``2d``… before ``now``, or an ISO time.
    level : str
        The lowest level shown (``debug`` < ``info`` < ``warning`` < ``error``).
    events : bool
        Also show the start/end lines of each run.
    follow : bool
        Keep polling for new lines until ``should_stop()`` (or Ctrl-C).

    poll_s : float
        ``follow``: seconds between looks for new lines, above 0 and at most
        :data:`MAX_POLL_S`.

    Raises
    ------
    LogError
        For a malformed ``since``, ``level``, ``job`` or ``poll_s``, or a local store that does
        not exist.
    """
    check_poll(poll_s)
    moment = parse_since(since, now or datetime.now(UTC))
    check_level(level)
    folder = log_dir(config)
    check_job(folder, job)
    return tail(folder, job, moment, level, events, follow, poll_s, should_stop)
