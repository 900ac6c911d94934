"""speedlab.frames: a list column built from its flat values is polars' own column, exactly."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from speedlab.frames import series_of

I64 = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)


def polars_own(name, values, dtype) -> pl.Series:
    return pl.Series(name, values, dtype=dtype)


def same(a: pl.Series, b: pl.Series) -> None:
    assert (a.name, a.dtype, a.len(), a.null_count()) == (b.name, b.dtype, b.len(), b.null_count())
    assert a.to_list() == b.to_list()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | st.lists(I64, max_size=6), max_size=80))
def test_int_lists_as_polars_makes_them(values):
    same(series_of("index", values, pl.List(pl.Int64)), polars_own("index", values, pl.List(pl.Int64)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | st.lists(st.text(max_size=5), max_size=4), max_size=80))
def test_string_lists_as_polars_makes_them(values):
    same(series_of("hosts", values, pl.List(pl.String)), polars_own("hosts", values, pl.List(pl.String)))


EDGES = [[], [None] * 70, [[]] * 70, [None, []] * 40, [[1, 2], [3], None, [], [5, 5, 5]] * 20]


@pytest.mark.parametrize("values", EDGES)
def test_edges_nulls_and_empty_lists_stay_apart(values):
    made = series_of("counts", values, pl.List(pl.Int64))
    same(made, polars_own("counts", values, pl.List(pl.Int64)))
    assert [v is None for v in made.to_list()] == [v is None for v in values]


def test_other_types_are_polars_own_constructor():
    by_host = [[{"host": "home", "count": 3}], None, []]
    dtype = pl.List(pl.Struct({"host": pl.String, "count": pl.Int64}))
    same(series_of("records_by_host", by_host, dtype), polars_own("records_by_host", by_host, dtype))
    same(series_of("avg", [1.5, None], pl.Float64), polars_own("avg", [1.5, None], pl.Float64))


def test_a_value_of_the_wrong_type_is_refused_as_polars_refuses_it():
    with pytest.raises((TypeError, pl.exceptions.PolarsError)):
        pl.Series("index", [[1], ["x"]], dtype=pl.List(pl.Int64))
    with pytest.raises((TypeError, pl.exceptions.PolarsError)):
        series_of("index", [[1], ["x"]], pl.List(pl.Int64))
