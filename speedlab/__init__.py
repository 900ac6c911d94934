"""speedlab: is my internet as fast as I pay for, on every site I run, over days and years?

Modules (one home for each concern): :mod:`~speedlab.records` (typed results and summaries),
:mod:`~speedlab.layout` (every storage key), :mod:`~speedlab.periods` (IST days, ISO weeks),
:mod:`~speedlab.store` (local folder and S3 backends), :mod:`~speedlab.config`, and the
command line in :mod:`~speedlab.cli`. Importing speedlab has no side effects.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("speedlab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from .config import Config, load_config
from .errors import SpeedlabError
from .layout import Buckets, parse_key, raw_key, summary_key, validate_host_id
from .periods import Period, parse_period, period_of, previous_period
from .records import SpeedTestResult, TierSummary
from .store import LocalStore, S3Store, Store, open_store

__all__ = [
    "Buckets", "Config", "LocalStore", "Period", "S3Store", "SpeedTestResult", "SpeedlabError",
    "Store", "TierSummary", "__version__", "load_config", "open_store", "parse_key",
    "parse_period", "period_of", "previous_period", "raw_key", "summary_key", "validate_host_id",
]
