"""speedlab.unchanged: a bulk writer leaves out exactly the summaries whose stored bytes would not
change, judged by the table row's SHA-256 of its object, or, in a row written before the hash
existed, by the bytes rebuilt from the row; a row whose hash is wrong never hides a change."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import polars as pl
import pytest

from speedlab.layout import summary_key, summary_table_partition, tables_bucket
from speedlab.periods import parse_period
from speedlab.records import TierSummary
from speedlab.rollup import rollup
from speedlab.tables import SOURCE_SHA256, SUMMARY_TABLE, frame_from_parquet, frame_to_parquet
from speedlab.tables_io import check, rebuild
from speedlab.unchanged import StoredSummaries
from tests.helpers.data import IST, B, put, series

NOW = datetime(2026, 1, 20, tzinfo=IST)
DAY = parse_period("daily", "20251227", IST)


@pytest.fixture
def rolled(local_store, config_for):
    """A day of two hosts rolled up, its summary tables made from the objects."""
    for host in ("home-primary", "office-main"):
        for record in series(host, datetime(2025, 12, 27, 10, 0, tzinfo=IST), 12, every=timedelta(hours=1)):
            put(local_store, record)
    rollup(config_for(local_store), "daily", DAY, now=NOW)
    rebuild(local_store, B, tiers=["daily"])
    return local_store


def _stored_summary(store, host=None) -> TierSummary:
    return TierSummary.from_dict(json.loads(store.get(B.daily, summary_key(DAY, host))))


def _rewrite_table(store, change) -> None:
    key = summary_table_partition("daily", DAY.label).key
    frame = frame_from_parquet(store.get(tables_bucket(B), key), SUMMARY_TABLE, key)
    store.put(tables_bucket(B), key, frame_to_parquet(change(frame)))


@pytest.mark.parametrize("rows", ["with the hash", "from before the hash"])
def test_the_same_figures_are_not_written_and_other_figures_are(rolled, rows):
    if rows == "from before the hash":
        _rewrite_table(rolled, lambda frame: frame.drop(SOURCE_SHA256))
    stored = StoredSummaries(rolled, B)
    for host in (None, "office-main"):
        same = _stored_summary(rolled, host).with_fields(generated_at="2099-01-01T00:00:00+00:00")
        settled, body, sha = stored.settle(DAY, host, same)
        stored_bytes = rolled.get(B.daily, summary_key(DAY, host))
        assert body is None and settled.to_json().encode() == stored_bytes
        assert sha == hashlib.sha256(stored_bytes).hexdigest()
    assert stored.unchanged == 2
    other = _stored_summary(rolled, "home-primary").with_fields(avg_download=1.5)
    settled, body, sha = stored.settle(DAY, "home-primary", other)
    assert body == other.to_json().encode() and stored.unchanged == 2
    assert sha == hashlib.sha256(body).hexdigest()


def test_a_row_whose_hash_is_not_its_objects_writes_the_summary_and_fails_the_check(rolled):
    assert check(rolled, B, tiers=["daily"]).ok
    wrong = "0" * 64
    _rewrite_table(rolled, lambda frame: frame.with_columns(pl.lit(wrong).alias(SOURCE_SHA256)))
    _, body, _sha = StoredSummaries(rolled, B).settle(DAY, None, _stored_summary(rolled))
    assert body is not None                                     # never "unchanged" on a hash that differs
    audit = check(rolled, B, tiers=["daily"])
    assert not audit.ok and all(f"holds another {SOURCE_SHA256}" in why for _, why in audit.disagreements)
    assert len(audit.disagreements) == 3                        # all hosts, and each of the two hosts
    rebuild(rolled, B, tiers=["daily"])
    assert check(rolled, B, tiers=["daily"]).ok


def test_a_table_from_before_the_hash_checks_clean(rolled):
    _rewrite_table(rolled, lambda frame: frame.drop(SOURCE_SHA256))
    audit = check(rolled, B, tiers=["daily"])
    assert audit.ok and audit.rows == 3, audit.to_text()
