"""Structured job logs: every speedlab job writes JSON lines beside the store.

One file per job under ``<state>/logs/<job>.jsonl`` (``<state>`` is
:attr:`speedlab.config.Config.state_path`), one object per line::

    {"time": "2025-12-29T08:33:12.123Z", "host": "home-primary", "job": "collector",
     "level": "info", "run_id": "3f9c0a1b2c4d", "message": "stored result", "event": "end", ...}

``event`` is ``start`` or ``end`` for the lines that open and close a run (``speedlab logs``
filters them as noise unless asked), absent otherwise. Extra keyword fields are kept.
Writing a log line never raises: a job must not fail because its log cannot be written.
Every line is masked by :func:`speedlab.masking.mask_secrets` (credentials in URLs, webhook
paths, and the configuration's secret values) before it is kept, printed or written.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .masking import mask_data, mask_secrets

JOBS = ("collector", "aggregator", "dashboard", "scheduler", "health", "api")
LEVELS = ("debug", "info", "warning", "error")
_LOCK = threading.Lock()


class JobLog:
    """Append JSON log lines for one run of one job.

    Parameters
    ----------
    log_dir : str or Path or None
        The folder of ``<job>.jsonl`` files; ``None`` writes nothing (library use).
    job : str
        ``collector``, ``aggregator``, ``dashboard``, ... (a file name part).
    host_id : str or None
        The host the job runs on.
    echo : bool
        Also print ``level: message`` to stderr (the CLI does for warnings and errors).
    secrets : iterable of str
        Secret values to mask in every line (:attr:`speedlab.config.Config.secrets`).
    """

    def __init__(self, log_dir: str | os.PathLike | None, job: str, host_id: str | None = None,
                 run_id: str | None = None, echo: bool = False, secrets: Iterable[str] = ()) -> None:
        self.path = Path(log_dir) / f"{job}.jsonl" if log_dir else None
        self.job = job
        self.host_id = host_id
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.echo = echo
        self.secrets = tuple(secrets)
        self.lines: list[dict] = []  # what this run logged, for summaries and tests

    @classmethod
    def for_config(cls, config, job: str, echo: bool = False) -> JobLog:
        """A log in ``config.state_path / "logs"`` for ``config.host_id``."""
        return cls(Path(config.state_path) / "logs", job, config.host_id, echo=echo,
                   secrets=config.secrets)

    def log(self, level: str, message: str, **fields: Any) -> dict:
        """Write one line; return it as a dict."""
        now = datetime.now(timezone.utc)
        line = {"time": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                "host": self.host_id, "job": self.job, "level": level if level in LEVELS else "info",
                "run_id": self.run_id, "message": message}
        line.update({k: v for k, v in fields.items() if k not in line})
        line = mask_data(line, self.secrets)
        self.lines.append(line)
        if self.echo and level in ("warning", "error"):
            print(f"{level}: {message}", file=sys.stderr)
        if self.path is not None:
            try:
                text = mask_secrets(json.dumps(line, default=str), self.secrets) + "\n"
                with _LOCK:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with open(self.path, "a", encoding="utf-8") as handle:
                        handle.write(text)
            except OSError:
                pass
        return line

    def info(self, message: str, **fields: Any) -> dict:
        """An ``info`` line."""
        return self.log("info", message, **fields)

    def warning(self, message: str, **fields: Any) -> dict:
        """A ``warning`` line."""
        return self.log("warning", message, **fields)

    def error(self, message: str, **fields: Any) -> dict:
        """An ``error`` line."""
        return self.log("error", message, **fields)

    def start(self, message: str = "run started", **fields: Any) -> dict:
        """The line that opens a run (``event: start``)."""
        return self.log("info", message, event="start", **fields)

    def end(self, message: str = "run finished", level: str = "info", **fields: Any) -> dict:
        """The line that closes a run (``event: end``)."""
        return self.log(level, message, event="end", **fields)
