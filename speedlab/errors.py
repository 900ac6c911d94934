"""Every error speedlab raises on purpose derives from :class:`SpeedlabError`.

Messages name the object and the problem and say what to do next; the CLI prints them as
one line and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Mapping


class SpeedlabError(Exception):
    """Raised when speedlab refuses or cannot do what was asked (base of all speedlab errors)."""


class ConfigError(SpeedlabError):
    """Raised when the configuration (file, environment or flags) is invalid."""


class InvalidHostId(SpeedlabError, ValueError):
    """Raised when a host id would not make a safe storage key."""


class InvalidRecord(SpeedlabError, ValueError):
    """Raised when a stored or produced JSON object does not meet the record schema."""


class LayoutError(SpeedlabError, ValueError):
    """Raised when a key or period label does not follow the storage layout."""


class UnsupportedDate(LayoutError):
    """Raised when a date, time or period lies outside the years speedlab handles (1970-9998)."""


class StoreError(SpeedlabError):
    """Raised when a store refuses an operation for a reason other than those below."""


class StoreUnavailable(StoreError):
    """Raised when a store cannot be reached (network down, server error, disk missing)."""


class ObjectNotFound(StoreError, KeyError):
    """Raised when a key does not exist in a store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "object not found"


class BucketNotFound(StoreError):
    """Raised when a bucket (or the local folder standing for it) does not exist."""


class CredentialsRefused(StoreError):
    """Raised when a store rejects the credentials or denies access."""


class CredentialsInvalid(CredentialsRefused):
    """Raised when a store accepts no request with these credentials (missing, unknown, expired, mis-signed)."""


class ScheduleError(SpeedlabError):
    """Raised when a scheduler entry cannot be rendered or installed."""


class SpoolError(SpeedlabError):
    """Raised when the collector's local spool folder cannot be read or written."""


class ServeError(SpeedlabError):
    """Raised when the dashboard server cannot start (its port is taken, Voilà fails)."""


class AlertDeliveryError(SpeedlabError):
    """Raised when a channel could not deliver an alert (the health check retries it next run)."""


class ApiError(SpeedlabError):
    """Raised when an API request cannot be answered; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


class EngineFailure(SpeedlabError):
    """Raised when a speed test did not produce a result: ``kind`` is the record's error kind."""

    def __init__(self, kind: str, message: str, output: dict | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.output = output


class FutureDate(SpeedlabError, ValueError):
    """Raised when a coverage check is asked about a day that has not started yet."""


class DemoError(SpeedlabError):
    """Raised when the demo folder cannot be used (it holds other data, or cannot be written)."""


class InfraError(SpeedlabError):
    """Raised when the desired infrastructure cannot be read, planned or applied."""


class LogError(SpeedlabError, ValueError):
    """Raised when a ``logs`` argument is malformed (``--since``, ``--level``, ``--job``) or its folder is missing."""


class NotebookRunFailed(SpeedlabError):
    """Raised when a scheduled notebook's run failed (its executed notebook is kept)."""


class QueryError(SpeedlabError, ValueError):
    """Raised when a dashboard query names an unknown mode, a bad number of periods or a bad host."""


class UpError(SpeedlabError):
    """Raised when ``speedlab up`` cannot start (the dashboard's port is taken, Voilà fails)."""


class TableError(SpeedlabError):
    """Raised when a columnar table cannot be decoded, or cannot be written because other writers keep winning."""


class TransferError(SpeedlabError, ValueError):
    """Raised when a file cannot be imported, or an export made, as a whole (unknown format, unreadable
    file, missing columns, nowhere to write)."""
