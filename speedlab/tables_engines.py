"""Where other engines find the columnar tables (docs/query-engines.md): the path of a tier's
table and the polars ``storage_options`` that keep polars on the store's own endpoint.

The tables themselves are kept by :mod:`speedlab.tables_io`; this module only names them for
``pl.scan_parquet`` (or DuckDB, which takes the same path).
"""

from __future__ import annotations

from .errors import ConfigError
from .layout import RAW_TABLES_PREFIX, SUMMARY_TABLES_PREFIX, Buckets, tables_bucket
from .store_s3 import S3Store
from .storebase import Store

__all__ = ["storage_options", "table_glob"]


def storage_options(store: Store) -> dict[str, str]:
    """polars ``storage_options`` for reading an :class:`S3Store`'s tables (``{}`` for a local store).

    Only the keys that keep polars on the store's own endpoint: ``aws_endpoint_url``,
    ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``, ``aws_region``,
    ``aws_allow_http``. Never s3fs-style names (``key``/``secret``), which polars ignores and
    then goes looking for cloud metadata.

    Raises
    ------
    ConfigError
        For an S3 store without credentials (polars would look for them on the network).
    """
    inner = getattr(store, "inner", store)
    if not isinstance(inner, S3Store):
        return {}
    creds = inner.credentials()
    if creds is None:
        raise ConfigError("the S3 store has no credentials to give polars: set [s3] keys or AWS_ACCESS_KEY_ID/"
                          "AWS_SECRET_ACCESS_KEY")
    options = {"aws_access_key_id": creds[0], "aws_secret_access_key": creds[1],
               "aws_region": inner.client.meta.region_name or "us-east-1"}
    if creds[2]:
        options["aws_session_token"] = creds[2]
    if inner.endpoint_url:
        options["aws_endpoint_url"] = inner.endpoint_url
        options["aws_allow_http"] = "true" if inner.endpoint_url.startswith("http://") else "false"
    return options


def table_glob(store: Store, buckets: Buckets, tier: str) -> str:
    """The path of every Parquet object of ``tier``'s table (``raw`` or a summary tier) for
    ``pl.scan_parquet(..., hive_partitioning=True, storage_options=storage_options(store))``.
    One tier per scan: hourly and raw have a ``month=`` level the other tiers do not."""
    prefix = RAW_TABLES_PREFIX if tier == "raw" else f"{SUMMARY_TABLES_PREFIX}tier={tier}/"
    inner = getattr(store, "inner", store)
    if isinstance(inner, S3Store):
        root = f"s3://{tables_bucket(buckets)}"
    else:
        root = f"{getattr(inner, 'root', '.')}/{tables_bucket(buckets)}"
    return f"{root}/{prefix}**/*.parquet"
