"""Running the ``scheduled/`` notebooks with papermill; the executed notebook is the run's record.

A run executes a notebook in-process with :func:`papermill.execute_notebook` (a fresh
kernel; ~1 s of start-up), passing the resolved store, time zone and config file as
parameters (:func:`notebook_parameters`, from :meth:`speedlab.config.Config.child_env`), and keeps:

* ``<state>/runs/<job>/<job>-<UTC time>-<id>.ipynb`` — the executed notebook, outputs
  included (a failed run keeps it too: papermill marks the failing cell and records the
  exception in ``metadata.papermill.exception``);
* ``<state>/runs/<job>/<job>-<UTC time>-<id>.json`` — the run's record: ``job``,
  ``notebook``, ``status`` (``ok`` or ``failed``), ``started_at``, ``finished_at``,
  ``seconds``, ``parameters``, ``output`` (the notebook's path), ``error`` and ``result``
  (what the notebook reported with :func:`show_result`). ``speedlab health`` reads these.
* with ``[aggregate] runs_in_store = true`` also a copy of both under ``runs/<job>/`` in
  the hourly bucket, so runs on several machines can be inspected in one place.

``<state>`` is :attr:`speedlab.config.Config.state_path`. Start and end go to the job log.
Credentials never become parameters (the executed notebook, the record and the job log would
keep them): the kernel reads the same config file, and S3 credentials that came with the
store URL or ``[s3]`` reach it as ``SPEEDLAB_S3_ACCESS_KEY_ID`` /
``SPEEDLAB_S3_SECRET_ACCESS_KEY`` / ``SPEEDLAB_S3_SESSION_TOKEN`` in its environment. What
is kept (record, job log, executed notebook) is masked by :mod:`speedlab.masking`.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .bundled import scheduled_notebook
from .config import CHILD_CREDENTIALS, CHILD_PARAMETERS
from .errors import ConfigError, NotebookRunFailed
from .joblog import JobLog
from .layout import run_copy_key
from .masking import mask_data, mask_secrets, split_credentials

__all__ = ["RESULT_MIME", "NotebookRun", "NotebookRunFailed",
           "notebook_parameters", "run_notebook", "run_scheduled", "show_result",
           "kernel_credentials"]

#: The MIME type a notebook's result is displayed under, so the runner can find it again.
RESULT_MIME = "application/vnd.speedlab.result+json"
UTC = timezone.utc


@dataclass
class NotebookRun:
    """The outcome of one notebook run (see the module docstring for the record's fields)."""

    job: str
    notebook: str
    status: str
    started_at: str
    finished_at: str
    seconds: float
    parameters: dict
    output: str
    record: str
    error: str | None = None
    result: Any = None
    store_keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every cell ran."""
        return self.status == "ok"

    def to_dict(self) -> dict:
        """The run's record as plain data."""
        return {"job": self.job, "notebook": self.notebook, "status": self.status,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "seconds": round(self.seconds, 3), "parameters": self.parameters,
                "output": self.output, "record": self.record, "error": self.error,
                "result": self.result, "store_keys": self.store_keys}


def show_result(data: Any) -> None:
    """Display ``data`` in a notebook so that :func:`run_notebook` can read it back (and a
    person sees it as JSON)."""
    from IPython.display import display
    display({RESULT_MIME: data, "text/plain": json.dumps(data, indent=1, default=str)[:5000]},
            raw=True)


def _result_of(path: Path) -> Any:
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = None
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            if RESULT_MIME in data:
                found = data[RESULT_MIME]
    return found


def notebook_parameters(config) -> dict:
    """The store, time zone, config file and state folder a scheduled notebook needs, as
    papermill parameters: the :meth:`~speedlab.config.Config.child_env` variables of
    :data:`~speedlab.config.CHILD_PARAMETERS` (no secrets: credentials reach the kernel through
    its environment, see :func:`kernel_credentials`)."""
    env = config.child_env()
    return {name: env.get(variable, "") for variable, name in CHILD_PARAMETERS.items()}


_ENV_LOCK = threading.Lock()


def kernel_credentials(config, parameters: dict) -> tuple[dict, dict[str, str]]:
    """``parameters`` without credentials in their ``store``, and the environment variables
    (``SPEEDLAB_S3_*``) that hand the kernel the credentials of the configuration
    (:meth:`~speedlab.config.Config.child_env`'s :data:`~speedlab.config.CHILD_CREDENTIALS`)
    and of the ``store`` parameter instead."""
    env = config.child_env()
    found = {name: env[name] for name in CHILD_CREDENTIALS if env.get(name)}
    parameters = dict(parameters)
    if isinstance(parameters.get("store"), str):
        parameters["store"], given = split_credentials(parameters["store"])
        found.update({f"SPEEDLAB_S3_{k.upper()}": v for k, v in given.items() if v})
    return parameters, found


@contextmanager
def _kernel_environment(variables: dict[str, str]):
    """Set ``variables`` in this process's environment while a kernel starts (it inherits
    them), then restore it."""
    if not variables:
        yield
        return
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _mask_notebook(path: Path, secrets) -> None:
    """Mask secrets that a cell printed into the executed notebook (a traceback quoting a URL)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return
    masked = mask_secrets(text, secrets)
    if masked != text:
        path.write_text(masked, encoding="utf-8")


def run_notebook(config, notebook: str | Path, parameters: dict, *, job: str,
                 kernel_name: str = "python3", raise_on_failure: bool = False,
                 log: JobLog | None = None) -> NotebookRun:
    """Execute ``notebook`` with ``parameters`` and keep the executed copy as the run's record.

    Parameters
    ----------
    config : Config
        Decides where runs are kept (``config.state_path / "runs"``) and, with
        ``[aggregate] runs_in_store``, copies them into the store.
    job : str
        The run's name (``aggregate-daily``), used for file names, the record and the log.
    raise_on_failure : bool
        Raise :class:`NotebookRunFailed` (after keeping everything) instead of returning a
        failed run.

    Returns
    -------
    NotebookRun
        ``status`` ``ok`` or ``failed``; ``output`` is the executed notebook's path.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = Path(notebook)
    log = log or JobLog.for_config(config, "aggregator")
    parameters, environment = kernel_credentials(config, parameters)
    secrets = [*config.secrets, *environment.values()]
    shown = mask_data(parameters, secrets)
    folder = Path(config.state_path) / "runs" / job
    folder.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    stem = f"{job}-{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    output, record = folder / f"{stem}.ipynb", folder / f"{stem}.json"
    log.start(f"notebook run {job} started", notebook=str(notebook), output=str(output),
              parameters=shown)
    clock = time.perf_counter()
    status, error = "ok", None
    try:
        with _kernel_environment(environment):
            papermill.execute_notebook(str(notebook), str(output), parameters=parameters,
                                       kernel_name=kernel_name, progress_bar=False,
                                       cwd=str(notebook.parent) if notebook.parent.is_dir() else None,
                                       # the kernel's own chatter ("running over TCP without
                                       # encryption" at start, "KeyboardInterrupt caught in
                                       # kernel" at an ERROR level when papermill shuts it down
                                       # after a successful run) is noise in every scheduled
                                       # run's output; cell errors still reach the notebook
                                       # and PapermillExecutionError
                                       extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except PapermillExecutionError as exc:
        status, error = "failed", f"{exc.ename}: {exc.evalue}".strip()
    except Exception as exc:  # no kernel, unreadable notebook...: still a failed run, recorded
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    finished = datetime.now(UTC)
    error = mask_secrets(error, secrets) if error else error
    if output.exists():
        _mask_notebook(output, secrets)
    run = NotebookRun(job, str(notebook), status, started.isoformat(timespec="seconds"),
                      finished.isoformat(timespec="seconds"), time.perf_counter() - clock,
                      shown, str(output), str(record), error,
                      _result_of(output) if output.exists() else None)
    if config.aggregate.runs_in_store:
        run.store_keys = _copy_to_store(config, job, stem, output, run)
    record.write_text(json.dumps(run.to_dict(), indent=1, default=str), encoding="utf-8")
    if run.ok:
        log.end(f"notebook run {job} finished", notebook=str(notebook), output=str(output),
                seconds=round(run.seconds, 3))
    else:
        log.end(f"notebook run {job} failed: {error}; executed notebook kept at {output}",
                level="error", notebook=str(notebook), output=str(output), error=error)
        if raise_on_failure:
            raise NotebookRunFailed(f"{notebook.name} failed ({error}); the executed notebook is "
                                    f"kept at {output}: open it to see the failing cell")
    return run


def _copy_to_store(config, job: str, stem: str, output: Path, run: NotebookRun) -> list[str]:
    store = config.open_store()
    keys = []
    for name, data in ((f"{stem}.ipynb", output.read_bytes() if output.exists() else None),
                       (f"{stem}.json", json.dumps(run.to_dict(), default=str).encode())):
        if data is None:
            continue
        key = run_copy_key(job, name)
        store.put(config.buckets.hourly, key, data)
        keys.append(key)
    return keys


def run_scheduled(config, name: str, parameters: dict, *, job: str | None = None,
                  raise_on_failure: bool = True) -> NotebookRun:
    """Run ``scheduled/<name>.ipynb`` with the config's store/zone/config file plus ``parameters``.

    Raises
    ------
    NotebookRunFailed
        If the notebook does not exist, or (with ``raise_on_failure``) if the run failed.
    """
    try:
        notebook = scheduled_notebook(name)
    except ConfigError as exc:
        raise NotebookRunFailed(str(exc)) from exc
    return run_notebook(config, notebook, {**notebook_parameters(config), **parameters},
                        job=job or name, raise_on_failure=raise_on_failure)
