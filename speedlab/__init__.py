"""speedlab: is my internet as fast as I pay for, on every site I run, over days and years?

Modules (one home for each concern): :mod:`~speedlab.records` (typed results and summaries),
:mod:`~speedlab.layout` (every storage key), :mod:`~speedlab.periods` (IST days, ISO weeks),
:mod:`~speedlab.store` and :mod:`~speedlab.store_s3` (local folder and S3 backends), :mod:`~speedlab.config`, and the
command line in :mod:`~speedlab.cli`. Importing speedlab has no side effects.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("speedlab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from importlib import import_module as _import_module

from .config import Config, Plan, load_config
from .errors import (
    AlertDeliveryError,
    ApiError,
    BucketNotFound,
    ConfigError,
    CredentialsInvalid,
    CredentialsRefused,
    DemoError,
    EngineFailure,
    FutureDate,
    InfraError,
    InvalidHostId,
    InvalidRecord,
    LayoutError,
    LogError,
    NotebookRunFailed,
    ObjectNotFound,
    QueryError,
    ScheduleError,
    ServeError,
    SpeedlabError,
    SpoolError,
    StoreError,
    StoreUnavailable,
    TableError,
    TransferError,
    UnsupportedDate,
    UpError,
)
from .layout import Buckets, parse_key, raw_key, summary_key, validate_host_id
from .periods import Period, parse_period, period_of, previous_period
from .records import SpeedTestResult, TestError, TierSummary
from .store import LocalStore, open_store
from .store_s3 import S3Store
from .storebase import Store

#: What a notebook calls that lives in a module importing polars, the store's client or the
#: widgets: imported on first use (PEP 562), so ``import speedlab`` stays cheap. Name -> module.
_LAZY = {
    "rows": "query", "heatmap": "query", "headline": "rowbuild",
    "run_due": "rollup", "backfill": "rollup", "mark_stale": "stale",
    "collect_once": "collect", "find_duplicates": "dedupe", "run_health": "health",
    "import_file": "importing", "export_view": "export", "export_raw": "export",
}
#: Command modules reachable as ``speedlab.coverage.coverage(...)`` without importing them first.
#: Their entry functions (``coverage``, ``latest``, ``rollup``, ``aggregate``) are not exported
#: under the package: the name would mean the function or the module depending on import order.
_SUBMODULES = frozenset({"analysis", "coverage", "dashboard", "latest", "query", "rollup"})

__all__ = [
    "AlertDeliveryError", "ApiError", "BucketNotFound", "Buckets", "Config", "ConfigError",
    "CredentialsInvalid", "CredentialsRefused", "DemoError", "EngineFailure", "FutureDate", "InfraError",
    "InvalidHostId", "InvalidRecord", "LayoutError", "LocalStore", "LogError", "NotebookRunFailed",
    "ObjectNotFound", "Period", "Plan", "QueryError", "S3Store", "ScheduleError", "ServeError",
    "SpeedTestResult", "SpeedlabError", "SpoolError", "Store", "StoreError", "StoreUnavailable", "TableError",
    "TestError", "TierSummary", "TransferError", "UnsupportedDate", "UpError", "__version__", "backfill",
    "collect_once", "export_raw", "export_view", "find_duplicates", "headline", "heatmap", "import_file",
    "load_config", "mark_stale", "open_store", "parse_key", "parse_period", "period_of", "previous_period",
    "raw_key", "rows", "run_due", "run_health", "summary_key", "validate_host_id",
]


def __getattr__(name: str):
    """The lazy names of :data:`_LAZY` and the command modules of :data:`_SUBMODULES` (PEP 562)."""
    if name in _LAZY:
        value = getattr(_import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return _import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
