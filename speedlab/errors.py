"""Every error speedlab raises on purpose derives from :class:`SpeedlabError`.

Messages name the object and the problem and say what to do next; the CLI prints them as
one line and exits non-zero.
"""

from __future__ import annotations


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
