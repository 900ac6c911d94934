"""The ``ookla`` engine: the official Speedtest CLI by Ookla (``speedtest --format=json``).

* :class:`OoklaCli` — runs ``speedtest --format=json --accept-license --accept-gdpr
  [--server-id ID]`` (the executable found on ``PATH``) as a child process, stopped by
  ``cancel()`` or after the collector's ``max_test_s``, and returns speedtest-cli's
  ``results.dict()`` shape, so :func:`speedlab.engine.measure` and
  :func:`~speedlab.engine.record_from_output` handle it like the default engine;
* pure functions: :func:`find_ookla` (which ``speedtest`` on a ``PATH`` is Ookla's),
  :func:`parse_ookla_output` (what the CLI printed -> its result object, or
  :class:`~speedlab.errors.EngineFailure`), :func:`results_from_ookla` (result object ->
  speedtest-cli's shape) and :func:`latency_fields` (result object -> the record's latency
  fields), :func:`classify_ookla_message` (an error line -> a failure kind).

The CLI's JSON counts ``bandwidth`` in BYTES per second (``x 8`` -> bit/s); ``ping.latency`` and
``ping.jitter`` are its idle round trip and jitter [ms]; ``download.latency.iqm`` and
``upload.latency.iqm`` the interquartile mean round trip under load [ms]; ``packetLoss`` [%]
is absent when it could not be measured. Errors come as
``{"type":"log","level":"error","message":...}`` lines (on stdout or stderr).

speedtest-cli (a speedlab dependency) installs a Python script of the same name,
``speedtest``; :func:`find_ookla` skips such scripts on ``PATH``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from typing import Any

from .errors import EngineFailure
from .ookla_json import LATENCY_PATHS, PING_PATH, ookla_value

__all__ = ["OoklaCli", "classify_ookla_message", "find_ookla", "latency_fields", "parse_ookla_output",
           "results_from_ookla"]

#: The executable's name (``speedtest.exe`` on Windows, found by :func:`shutil.which`).
EXECUTABLE = "speedtest"
#: Where to get it (said in the ``engine_missing`` record).
INSTALL_URL = "https://www.speedtest.net/apps/cli"
#: Characters of stdout/stderr kept in a failed record's ``engine_output``.
KEEP_CHARS = 2000

_KINDS = (  # (pattern in an error message, failure kind), first match wins
    (re.compile(r"time ?out|timed out", re.I), "timeout"),
    (re.compile(r"too many requests|limit reached", re.I), "http_429"),
    (re.compile(r"no servers|server.*not found|serverid|server id|NoServers", re.I), "no_server"),
    (re.compile(r"resolve host|HostNotFound|cannot open socket|connection refused|unreachable|"
                r"network is down|no route|couldn't connect|could not connect|cannot read from socket",
                re.I), "no_connectivity"),
    (re.compile(r"license|gdpr", re.I), "config_refused"),
)


# --------------------------------------------------------------------------- pure parts

def classify_ookla_message(message: str) -> str:
    """The failure kind for the Ookla CLI's error ``message`` (``engine_error`` if none fits)."""
    for pattern, kind in _KINDS:
        if pattern.search(message):
            return kind
    return "engine_error"


def _json_objects(text: str) -> list[dict]:
    """The JSON objects printed one a line in ``text`` (other lines, e.g. a license notice, skipped)."""
    found = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def _tail(text: str, chars: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= chars else "..." + text[-chars:]


def parse_ookla_output(stdout: str, stderr: str, returncode: int) -> dict:
    """The result object the Ookla CLI printed (pure).

    Parameters
    ----------
    stdout, stderr : str
        What the CLI printed (``--format=json``: one JSON object a line).
    returncode : int
        Its exit status.

    Returns
    -------
    dict
        The last ``{"type": "result", ...}`` object, when the CLI exited with 0.

    Raises
    ------
    EngineFailure
        ``{"type":"log","level":"error"}`` lines: their messages, kind from
        :func:`classify_ookla_message`; speedtest-cli's script answering instead
        (``unrecognized arguments``): ``engine_missing``; a non-zero exit or output without a
        result: ``engine_error`` with the status and the end of what was printed.
    """
    objects = _json_objects(stdout) + _json_objects(stderr)
    results = [o for o in objects if o.get("type") == "result"]
    if results and returncode == 0:
        return results[-1]
    kept = {"returncode": returncode, "stdout": (stdout or "")[-KEEP_CHARS:], "stderr": (stderr or "")[-KEEP_CHARS:]}
    errors = [str(o.get("message", "")).strip() for o in objects
              if o.get("type") == "log" and str(o.get("level", "")).lower() == "error"]
    if errors:
        message = "; ".join(dict.fromkeys(e for e in errors if e)) or "an error without a message"
        raise EngineFailure(classify_ookla_message(message), f"the Ookla Speedtest CLI reported: {message}", kept)
    if "unrecognized arguments" in (stderr or "") or "unrecognized arguments" in (stdout or ""):
        raise EngineFailure("engine_missing", "the 'speedtest' that ran is not the Ookla Speedtest CLI (it refused "
                            f"--format=json; speedtest-cli installs a script of that name): install Ookla's from "
                            f"{INSTALL_URL} and put it first on PATH", kept)
    if returncode != 0:
        raise EngineFailure("engine_error", f"the Ookla Speedtest CLI exited with status {returncode}: "
                            f"{_tail(stderr or stdout) or 'it printed nothing'}", kept)
    raise EngineFailure("engine_error", "the Ookla Speedtest CLI printed no result: "
                        f"{_tail(stdout or stderr) or 'it printed nothing'}", kept)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def results_from_ookla(result: dict) -> dict:
    """The Ookla CLI's result object in speedtest-cli's ``results.dict()`` shape (pure).

    ``download``/``upload`` [bit/s] = ``bandwidth`` [bytes/s] x 8; ``ping`` [ms] =
    ``ping.latency``; ``server`` {``id``, ``name`` = its ``location`` (a place, as
    speedtest-cli's name), ``sponsor`` = its ``name``, ``country``, ``host`` = ``host:port``};
    ``client`` {``ip`` = ``interface.externalIp``, ``isp``}; ``bytes_received``/``bytes_sent`` =
    the download's/upload's ``bytes``; ``share`` = ``result.url``; ``probes`` = the latency
    figures under their record names (:func:`latency_fields`: the entry
    :func:`~speedlab.engine.record_from_output` stores them from, as for speedlab's own probes);
    the whole result object under ``ookla``.

    Raises
    ------
    EngineFailure
        ``invalid_result`` when a direction's ``bandwidth`` is missing or not a number.
    """
    speeds = {}
    for direction in ("download", "upload"):
        bandwidth = _number((result.get(direction) or {}).get("bandwidth"))
        if bandwidth is None:
            raise EngineFailure("invalid_result", f"the Ookla result has no {direction}.bandwidth", {"ookla": result})
        speeds[direction] = bandwidth * 8
    server = result.get("server") or {}
    interface = result.get("interface") or {}
    host, port = _text(server.get("host")), server.get("port")
    return {
        **speeds,
        "ping": _number(ookla_value(result, PING_PATH)),
        "server": {"id": _text(server.get("id")), "name": _text(server.get("location")),
                   "sponsor": _text(server.get("name")), "country": _text(server.get("country")),
                   "host": f"{host}:{port}" if host and port else host},
        "client": {"ip": _text(interface.get("externalIp")), "isp": _text(result.get("isp"))},
        "bytes_received": (result.get("download") or {}).get("bytes"),
        "bytes_sent": (result.get("upload") or {}).get("bytes"),
        "timestamp": result.get("timestamp"),
        "share": (result.get("result") or {}).get("url"),
        "probes": latency_fields(result),
        "ookla": result,
    }


def latency_fields(result: dict) -> dict[str, float | None]:
    """The record's latency fields from the Ookla CLI's result object [ms, %] (pure; ``None`` when absent).

    ``latency_idle_ms`` = ``ping.latency``, ``jitter_ms`` = ``ping.jitter``,
    ``latency_download_ms``/``latency_upload_ms`` = ``download.latency.iqm``/``upload.latency.iqm``
    (the interquartile mean round trip during the transfer), ``packet_loss_pct`` = ``packetLoss``:
    :data:`speedlab.ookla_json.LATENCY_PATHS`, the table the importer's ``ookla`` format maps too.
    A value that is not a number is ``None`` as well.

    Raises
    ------
    ValueError
        When a step of a path holds something other than an object (``"ping": 5``).
    """
    return {name: _number(ookla_value(result, path)) for name, path in LATENCY_PATHS}


def _is_speedtest_cli_script(path: str) -> bool:
    """Whether ``path`` is speedtest-cli's ``speedtest`` entry point (a Python script importing it)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and b"python" in head.split(b"\n", 1)[0] and (
        b"from speedtest import" in head or b"import speedtest" in head)


def find_ookla(path: str | None = None) -> tuple[str | None, list[str]]:
    """The first ``speedtest`` on ``path`` (default ``$PATH``) that is not speedtest-cli's script.

    Returns
    -------
    (str or None, list of str)
        The executable (``None`` if there is none) and the speedtest-cli scripts skipped.
    """
    skipped: list[str] = []
    for folder in (os.environ.get("PATH", "") if path is None else path).split(os.pathsep):
        found = shutil.which(EXECUTABLE, path=folder) if folder else None
        if found is None:
            continue
        if _is_speedtest_cli_script(found):
            skipped.append(found)
            continue
        return found, skipped
    return None, skipped


# --------------------------------------------------------------------------- the engine (a child process)

class OoklaCli:
    """The ``ookla`` engine: one run of the official Speedtest CLI.

    Calling it runs ``speedtest --format=json --accept-license --accept-gdpr [--server-id
    ID]`` and returns :func:`results_from_ookla` of its result. It raises
    :class:`EngineFailure` (``engine_missing`` when there is no Ookla ``speedtest`` on
    ``PATH``; see :func:`parse_ookla_output` for the others).

    Parameters
    ----------
    server_id : int, optional
        Test against this speedtest.net server (``--server-id``); default: Ookla's choice.
    max_test_s : float
        Kill the CLI after this long [s] (``[collector] max_test_s``; the collector's own limit
        calls :meth:`cancel` at the same time).
    path : str, optional
        The folders to look in (default ``$PATH``).
    """

    name = "ookla"

    def __init__(self, server_id: int | None = None, max_test_s: float = 180.0, path: str | None = None) -> None:
        self.server_id = server_id
        self.max_test_s = max_test_s
        self.path = path
        self._process: subprocess.Popen | None = None
        self._cancelled = threading.Event()

    def command(self, executable: str) -> list[str]:
        """The command line run (``executable`` first)."""
        return [executable, "--format=json", "--accept-license", "--accept-gdpr",
                *([f"--server-id={self.server_id}"] if self.server_id is not None else [])]

    def cancel(self) -> None:
        """Stop a running test: kill the CLI (and what it started)."""
        self._cancelled.set()
        process = self._process
        if process is not None and process.poll() is None:
            _kill(process)

    def __call__(self) -> dict:
        executable, skipped = find_ookla(self.path)
        if executable is None:
            also = f" (skipped speedtest-cli's script {', '.join(skipped)})" if skipped else ""
            raise EngineFailure("engine_missing", f"the Ookla Speedtest CLI ('{EXECUTABLE}') is not on PATH{also}: "
                                f"install it from {INSTALL_URL}, or choose another engine ([collector] engine)")
        argv = self.command(executable)
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, encoding="utf-8", errors="replace",
                                       start_new_session=sys.platform != "win32")
        except OSError as exc:
            raise EngineFailure("engine_missing", f"cannot run {executable}: {exc}") from exc
        self._process = process
        if self._cancelled.is_set():  # cancelled while starting
            _kill(process)
        try:
            stdout, stderr = process.communicate(timeout=self.max_test_s)
        except subprocess.TimeoutExpired:
            _kill(process)
            stdout, stderr = process.communicate()
            raise EngineFailure("timeout", f"the Ookla Speedtest CLI did not finish within {self.max_test_s:g} s "
                                "([collector] max_test_s)", {"stdout": stdout[-KEEP_CHARS:],
                                                             "stderr": stderr[-KEEP_CHARS:]}) from None
        if self._cancelled.is_set():
            raise EngineFailure("timeout", "the Ookla Speedtest CLI was stopped (cancelled)")
        return results_from_ookla(parse_ookla_output(stdout, stderr, process.returncode))


def _kill(process: subprocess.Popen) -> None:
    """Kill ``process`` and its process group (POSIX), or the process (Windows)."""
    try:
        if sys.platform != "win32":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass
