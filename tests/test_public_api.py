"""The public API: what ``speedlab`` exports, every module's ``__all__``, errors in errors.py."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import types

import pytest

import speedlab
from speedlab import errors


def _modules() -> list[types.ModuleType]:
    names = [info.name for info in pkgutil.walk_packages(speedlab.__path__, "speedlab.")]
    return [importlib.import_module(name) for name in sorted(names)]


def _defined_here(module: types.ModuleType) -> dict[str, object]:
    """Public functions and classes ``module`` defines itself (not imported ones)."""
    return {name: value for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and getattr(value, "__module__", None) == module.__name__}


@pytest.mark.parametrize("name", speedlab.__all__)
def test_every_name_in_speedlab_all_resolves(name):
    assert getattr(speedlab, name) is not None


def test_speedlab_exports_what_a_notebook_calls():
    from speedlab import query, rollup, store
    assert speedlab.rows is query.rows and speedlab.run_due is rollup.run_due
    assert speedlab.open_store is store.open_store
    assert {"Config", "load_config", "SpeedTestResult", "TierSummary", "period_of", "parse_period",
            "SpeedlabError", "rows", "run_due", "backfill", "mark_stale"} <= set(speedlab.__all__)


def test_command_modules_are_reachable_as_attributes_and_stay_modules():
    for name in ("coverage", "latest", "rollup"):
        module = getattr(speedlab, name)
        assert isinstance(module, types.ModuleType) and callable(getattr(module, name))


def test_every_module_all_lists_only_names_the_module_has():
    drifted = {module.__name__: missing for module in _modules()
               if (missing := [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)])}
    assert drifted == {}


def test_every_module_all_lists_every_public_function_and_class_it_defines():
    unlisted = {module.__name__: sorted(set(_defined_here(module)) - set(module.__all__))
                for module in _modules() if hasattr(module, "__all__")}
    assert {name: names for name, names in unlisted.items() if names} == {}


def test_import_speedlab_imports_no_polars_ipywidgets_or_boto3():
    code = ("import sys, speedlab; "
            "print(sorted(m for m in ('polars', 'ipywidgets', 'boto3', 'altair') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_no_exception_class_is_defined_outside_errors_py():
    outside = [f"{module.__name__}.{name}" for module in _modules() if module is not errors
               for name, value in _defined_here(module).items()
               if inspect.isclass(value) and issubclass(value, BaseException)]
    assert outside == []


def test_every_error_derives_from_speedlab_error_says_when_it_is_raised_and_is_exported():
    classes = {name: value for name, value in _defined_here(errors).items() if inspect.isclass(value)}
    assert len(classes) >= 25
    for name, cls in classes.items():
        assert issubclass(cls, errors.SpeedlabError), name
        assert (cls.__doc__ or "").startswith("Raised when"), name
        assert getattr(speedlab, name) is cls and name in speedlab.__all__, name


@pytest.mark.parametrize(("module", "name"), [
    ("alerts", "AlertDeliveryError"), ("api", "ApiError"), ("collect", "EngineFailure"),
    ("coverage", "FutureDate"), ("demo", "DemoError"), ("infra", "InfraError"), ("logview", "LogError"),
    ("notebook_runs", "NotebookRunFailed"), ("query", "QueryError"), ("up", "UpError"),
])
def test_moved_errors_still_import_from_their_old_modules(module, name):
    assert getattr(importlib.import_module(f"speedlab.{module}"), name) is getattr(errors, name)
