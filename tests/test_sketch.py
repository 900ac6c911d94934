"""The quantile sketch: its error bound, exact merging, its JSON form."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from speedlab.errors import InvalidRecord
from speedlab.sketch import DEFAULT_ALPHA, ZERO_THRESHOLD, QuantileSketch, rank_of

speeds = st.floats(min_value=0.0, max_value=100_000.0, allow_nan=False, allow_infinity=False)
BOUND = DEFAULT_ALPHA * (1 + 1e-9)  # the float rounding of log() may add an ulp


def true_quantile(values: list[float], q: float) -> float:
    return sorted(values)[rank_of(q, len(values))]


def test_rank_is_nearest_rank():
    assert rank_of(0.5, 4) == 1        # 2nd of 4
    assert rank_of(0.5, 5) == 2        # 3rd of 5
    assert rank_of(0.95, 20) == 18     # 19th of 20
    assert rank_of(0.95, 2) == 1       # the larger of two
    assert rank_of(0.0, 7) == 0
    assert rank_of(1.0, 7) == 6


@settings(max_examples=60, deadline=None)
@given(st.lists(speeds, min_size=1, max_size=300),
       st.sampled_from([0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0]))
def test_every_quantile_is_within_alpha_of_the_true_value(values, q):
    sketch = QuantileSketch.of(values)
    assert sketch.count == len(values)
    truth = true_quantile(values, q)
    estimate = sketch.quantile(q)
    # relative error alpha; values at or below ZERO_THRESHOLD are read back as 0
    assert abs(estimate - truth) <= BOUND * truth + (ZERO_THRESHOLD if truth <= ZERO_THRESHOLD else 0)
    clamped = sketch.quantile(q, min(values), max(values))
    assert min(values) <= clamped <= max(values)
    assert abs(clamped - truth) <= BOUND * truth + (ZERO_THRESHOLD if truth <= ZERO_THRESHOLD else 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(speeds, max_size=40), min_size=1, max_size=8))
def test_merging_pieces_gives_the_sketch_of_the_whole(pieces):
    merged = QuantileSketch.merge_all(QuantileSketch.of(p) for p in pieces)
    direct = QuantileSketch.of([v for p in pieces for v in p])
    assert merged.bins == direct.bins and merged.zero_count == direct.zero_count
    assert merged.count == sum(map(len, pieces))
    pairwise = QuantileSketch()
    for piece in reversed(pieces):
        pairwise = pairwise.merge(QuantileSketch.of(piece))
    assert pairwise.to_dict() == direct.to_dict()


def test_known_values_and_zero_bucket():
    sketch = QuantileSketch.of([0.0, 0.0, 10.0, 20.0, 30.0, None])
    assert sketch.count == 5 and sketch.zero_count == 2
    assert sketch.quantile(0.0) == 0.0
    assert sketch.quantile(0.4) == 0.0            # 2nd of 5
    assert sketch.quantile(0.5) == pytest.approx(10.0, rel=DEFAULT_ALPHA)
    assert sketch.quantile(1.0) == pytest.approx(30.0, rel=DEFAULT_ALPHA)
    assert QuantileSketch().quantile(0.5) is None
    assert QuantileSketch().mad() is None


def test_bucket_boundaries_follow_gamma():
    sketch = QuantileSketch(0.01)
    gamma = 1.01 / 0.99
    assert sketch.index(1.0) == 0
    assert sketch.index(gamma * 1.000001) == 2  # just above gamma**1 -> bucket 2
    assert sketch.value_of(0) == pytest.approx(2 / (gamma + 1))
    for x in (0.37, 1.0, 99.9, 187.4, 941.0, 60_000.0):
        assert abs(sketch.value_of(sketch.index(x)) - x) <= BOUND * x


def test_mad_of_known_values():
    # median (3rd of 6) 100; sorted |deviations| 0, 1, 1, 2, 2, 50 -> MAD (3rd of 6) = 1
    values = [98, 99, 100, 101, 102, 150]
    sketch = QuantileSketch.of(values)
    median = sketch.quantile(0.5)
    assert median == pytest.approx(100, rel=0.01)
    assert sketch.mad() == pytest.approx(1.0, abs=2.5)  # bucket centres: within ~1% of 100
    assert QuantileSketch.of([100.0] * 10).mad() == 0.0


def test_json_round_trip_is_compact_and_exact():
    sketch = QuantileSketch.of([1.5, 1.5, 2.0, 200.0, 0.0])
    data = sketch.to_dict()
    assert data["alpha"] == 0.01 and data["zero_count"] == 1
    assert data["index"] == sorted(data["index"]) and sum(data["counts"]) == 4
    again = QuantileSketch.from_dict(json.loads(json.dumps(data)))
    assert again.bins == sketch.bins and again.quantile(0.5) == sketch.quantile(0.5)
    assert len(json.dumps(QuantileSketch.of([100.0 + i % 5 for i in range(1000)]).to_dict())) < 150


@pytest.mark.parametrize("bad", [
    {"alpha": 0.01, "index": [1, 2], "counts": [1]},
    {"alpha": 0.01, "index": [1], "counts": [0]},
    {"alpha": 0.01, "index": [1, 1], "counts": [1, 1]},
    {"alpha": 2, "index": [], "counts": []},
    {"index": [], "counts": []},
    "not a dict",
])
def test_invalid_sketch_json_is_refused(bad):
    with pytest.raises(InvalidRecord, match=r"not a quantile sketch in s\.json"):
        QuantileSketch.from_dict(bad, "s.json")


def test_refuses_bad_values_and_mixed_alphas():
    with pytest.raises(ValueError, match="finite and >= 0"):
        QuantileSketch().add(-1.0)
    with pytest.raises(ValueError, match="finite"):
        QuantileSketch().add(math.nan)
    with pytest.raises(ValueError, match="same alpha"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))
    with pytest.raises(ValueError, match="between 0 and 1"):
        QuantileSketch(0.0)



def test_quantiles_at_once_are_the_buckets_of_the_nearest_rank_values():
    """Independent of the sketch's walk: the nearest-rank value of the sorted values, read back
    as its bucket's value (0 for the zero bucket), clamped into the given minimum and maximum."""
    import random
    rng = random.Random(7)
    qs = (0.0, 0.05, 0.5, 0.95, 1.0)
    for n in (1, 2, 5, 40, 333):
        values = sorted(0.0 if rng.random() < 0.1 else rng.uniform(0.5, 900.0) for _ in range(n))
        sketch = QuantileSketch.of(values)
        for low, high in ((None, None), (values[0] + 0.001, values[-1] - 0.001)):
            expected = []
            for q in qs:
                x = values[rank_of(q, n)]
                v = 0.0 if x <= ZERO_THRESHOLD else sketch.value_of(sketch.index(x))
                v = v if low is None else max(v, low)
                expected.append(v if high is None else min(v, high))
            assert sketch.quantiles(qs, low, high) == expected
            assert [sketch.quantile(q, low, high) for q in qs] == expected
    assert QuantileSketch().quantiles((0.5, 0.95)) == [None, None]
    with pytest.raises(ValueError, match="between 0 and 1"):
        QuantileSketch.of([1.0]).quantiles((0.5, 1.5))
