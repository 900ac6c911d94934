"""The one adapter between the library's reports and what shows them: the command line, the
HTTP API and the scheduled notebooks.

Library functions return reports: objects with ``to_dict()`` (plain, JSON-ready data) and
``to_text()`` (lines for people) and, where an answer can be bad, ``ok``; some also have
``to_warnings()`` (lines for stderr). Only this module turns them into

* an envelope, the seed's ``{"message": "ok", "mode": ..., "result": ...}`` (:func:`envelope`);
* the text or JSON a command prints (:func:`render`);
* an exit status (:func:`exit_code`, :func:`error_exit_code`).

It also runs the commands whose answer *is* an envelope, directly or through a scheduled
notebook (:func:`aggregate_command`, :func:`run_due_command`), and the health check as a
command (:func:`check_health`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

from .errors import LayoutError, SpeedlabError
from .text import rollup_line

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_CHECK_FAILED", "Report", "envelope", "render", "warnings",
           "exit_code", "error_exit_code", "aggregate_command", "run_due_command", "check_health"]

#: Exit statuses: done (healthy), a bad answer (unhealthy, a refused result, ...), and a check
#: that could not run (also a usage error, from argparse).
EXIT_OK, EXIT_FAILED, EXIT_CHECK_FAILED = 0, 1, 2
#: command -> exit status when it fails with a :class:`~speedlab.errors.SpeedlabError`, where
#: that is not :data:`EXIT_FAILED`: a health configuration error means the check could not run.
_ERROR_EXIT = {"health": EXIT_CHECK_FAILED}


@runtime_checkable
class Report(Protocol):
    """What a library entry point returns."""

    def to_dict(self) -> Any:
        """Plain data for ``--json``, the API and envelopes."""

    def to_text(self) -> str:
        """Lines for people (what the command prints without ``--json``)."""


def _plain(report: Any) -> Any:
    """A report's plain data; plain data (a dict, a list, ``None``) as it is."""
    return report.to_dict() if isinstance(report, Report) else report


def envelope(report: Any, mode: str, *, plan: Sequence[Mapping] | None = None) -> dict:
    """The seed's response shape ``{"message": "ok", "mode": mode, "result": ...}``.

    ``result`` is the report's :meth:`~Report.to_dict` (plain data and ``None`` as they are);
    with ``plan`` (run-due: what was found due and why) it gains a last key ``"plan"``.
    """
    result = _plain(report)
    if plan is not None:
        result = {**result, "plan": list(plan)}
    return {"message": "ok", "mode": mode, "result": result}


def _is_envelope(data: Any) -> bool:
    return isinstance(data, Mapping) and {"message", "mode", "result"} <= set(data)


def render(report: Any, as_json: bool) -> str:
    """What a command prints: the report's data as indented JSON, or its text.

    Plain data without a text form (``config show``, ``query``) is JSON either way; an envelope
    of a rollup reads ``run-due: 3 period(s) rolled up (hourly 2, daily 1); 0 bad object(s)
    skipped``.
    """
    if not as_json:
        if isinstance(report, Report):
            return report.to_text()
        if _is_envelope(report):
            return f"{report['mode']}: {rollup_line(report['result'] or {})}"
    return json.dumps(_plain(report), indent=2, default=str)


def warnings(report: Any) -> list[str]:
    """The report's lines for stderr (spool entries set aside, ...); none for most."""
    to_warnings = getattr(report, "to_warnings", None)
    return list(to_warnings()) if callable(to_warnings) else []


def exit_code(report: Any) -> int:
    """:data:`EXIT_OK` unless the report says it is not ``ok`` (:data:`EXIT_FAILED`)."""
    return EXIT_OK if getattr(report, "ok", True) else EXIT_FAILED


def error_exit_code(command: str) -> int:
    """The exit status of ``command`` failing with a :class:`~speedlab.errors.SpeedlabError`."""
    return _ERROR_EXIT.get(command, EXIT_FAILED)


# =========================================================================== commands

def _notebook_answer(run, mode: str) -> dict:
    """The envelope a notebook run showed (an empty one if it showed none), plus ``run``."""
    response = dict(run.result or envelope(None, mode))
    response["run"] = {"status": run.status, "notebook": run.output, "record": run.record}
    return response


def aggregate_command(config, mode: str | None = None, period: str | None = None,
                      host: str | None = None, *, via_notebook: bool = False,
                      backfill_range: Sequence[str] | None = None, now: datetime | None = None,
                      progress: bool = True, recompute: bool = False) -> dict:
    """Everything ``speedlab aggregate`` can do, answered as ``{"message", "mode", "result"}``.

    * ``backfill_range=(FROM, TO)``: :func:`~speedlab.rollup.backfill` (``mode`` is
      ``backfill``, the result its report; ``recompute``: every period rolled up, also
      those whose inputs are unchanged);
    * ``via_notebook``: run ``scheduled/rollup.ipynb`` through papermill; the response is
      the notebook's, plus ``run`` (status and where the executed notebook is kept);
    * otherwise :func:`~speedlab.rollup.aggregate`.

    Raises
    ------
    LayoutError
        Without a mode (and no backfill), or for a bad mode or period.
    NotebookRunFailed
        If the notebook run failed (its executed notebook is kept and named).
    """
    from .rollup import aggregate, backfill
    if backfill_range:
        first, last = backfill_range
        return envelope(backfill(config, first, last, progress=progress, now=now, recompute=recompute), "backfill")
    if mode is None:
        raise LayoutError("say which tier to roll up: --mode hourly|daily|weekly|monthly|yearly "
                          "(or --backfill FROM TO)")
    if via_notebook:
        from .notebook_runs import run_scheduled
        from .records import TierSummary
        run = run_scheduled(config, "rollup", {"mode": mode, "period": period or "", "host": host or "",
                                               "now": now.isoformat() if now else ""},
                            job=f"aggregate-{mode}")
        response = _notebook_answer(run, mode)
        if isinstance(response.get("result"), dict):  # notebooks store JSON with sorted keys
            response["result"] = TierSummary.from_dict(response["result"]).to_dict()
        return response
    return envelope(aggregate(config, mode, period, host, now=now), mode)


def run_due_command(config, now: datetime | None = None, *, via_notebook: bool = False) -> dict:
    """``speedlab scheduler run-due``: :func:`~speedlab.rollup.run_due` (or
    ``scheduled/run_due.ipynb`` through papermill, plus ``run``) answered as
    ``{"message": "ok", "mode": "run-due", "result": report}``, the report with its ``plan``."""
    if via_notebook:
        from .notebook_runs import run_scheduled
        return _notebook_answer(run_scheduled(config, "run_due", {"now": now.isoformat() if now else ""}),
                                "run-due")
    from .rollup import run_due
    report = run_due(config, now)
    return envelope(report, "run-due", plan=report.plan)


def check_health(config, *, now: datetime | None = None, send_alerts: bool = True):
    """``speedlab health``: :func:`~speedlab.health.run_health` at ``now`` (default the clock).

    Raises
    ------
    SpeedlabError
        When the check could not run (:func:`error_exit_code` is :data:`EXIT_CHECK_FAILED`);
        an unexpected failure is one too, named, so that a crash never reads as "unhealthy"
        to a monitor.
    """
    from .health import run_health
    try:
        return run_health(config, now=now or datetime.now(timezone.utc), send_alerts=send_alerts)
    except SpeedlabError:
        raise
    except Exception as exc:
        raise SpeedlabError(f"the health check crashed ({type(exc).__name__}: {exc}); "
                            "see the health job log") from exc
