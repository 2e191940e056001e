"""Distinct texts found in place: the same codes as dictionary_encode, no copy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import thrifty_frames._core.distinct as distinct
from thrifty_frames._core.distinct import DistinctTexts

VALUES = ["a", None, "b", "a", "", None, "b", "a long text " * 20, "", "é", "a"]


def _expected(values):
    enc = pc.dictionary_encode(pa.array(values, type=pa.string()))
    valid = enc.indices.is_valid().to_numpy(zero_copy_only=False)
    codes = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return np.where(valid, codes, -1), enc.dictionary.to_pylist()


def _arrays(values):
    half = len(values) // 2
    return {
        "string": pa.array(values, type=pa.string()),
        "large_string": pa.array(values, type=pa.large_string()),
        "string_view": pa.array(values, type=pa.string_view()),
        "chunked": pa.chunked_array(
            [pa.array(values[:half], type=pa.string()), pa.array(values[half:], type=pa.string())]
        ),
        "chunked_views": pa.chunked_array(
            [
                pa.array(values[:half], type=pa.string_view()),
                pa.array(values[half:], type=pa.string_view()),
            ]
        ),
    }


@pytest.mark.parametrize("kind", list(_arrays(VALUES)))
@pytest.mark.parametrize("slice_rows", [3, 65_536])
def test_codes_match_dictionary_encode(kind, slice_rows, monkeypatch):
    monkeypatch.setattr(distinct, "SLICE_ROWS", slice_rows)
    codes, uniques = _expected(VALUES)
    d = DistinctTexts(_arrays(VALUES)[kind])
    assert d.codes.tolist() == codes.tolist()
    assert d.valid.tolist() == [v is not None for v in VALUES]
    assert d.n_distinct == len(uniques) == 5
    assert d.strings(np.arange(d.n_distinct)) == uniques
    assert d.strings(np.array([2, 0, 2])) == ["", "a", ""]
    assert d.first_row.tolist() == [0, 2, 4, 7, 9]


def test_a_hash_collision_falls_back_to_exact_encoding(monkeypatch):
    """Every text given the same hash: the byte check notices, codes stay exact."""

    def constant(self, seed=0):
        return pl.Series(np.zeros(len(self), dtype=np.uint64))

    monkeypatch.setattr(pl.Series, "hash", constant)
    codes, uniques = _expected(VALUES)
    d = DistinctTexts(pa.array(VALUES, type=pa.large_string()))
    assert d.codes.tolist() == codes.tolist()
    assert d.strings(np.arange(d.n_distinct)) == uniques


def test_null_and_empty_columns():
    assert DistinctTexts(pa.nulls(4)).codes.tolist() == [-1] * 4
    assert DistinctTexts(pa.array([None, None], type=pa.string())).n_distinct == 0
    assert DistinctTexts(pa.array([], type=pa.string())).n_distinct == 0


def test_many_rows_agree_with_dictionary_encode():
    rng = np.random.default_rng(0)
    values = [f"text {i}" for i in rng.integers(0, 5_000, size=50_000)]
    codes, uniques = _expected(values)
    d = DistinctTexts(pa.array(values, type=pa.large_string()))
    assert (d.codes == codes).all()
    assert d.strings(np.arange(d.n_distinct)) == uniques


def test_the_column_is_not_copied(monkeypatch):
    """No Arrow copy of the column: Arrow's memory pool grows by far less
    than the column's size while its distinct texts are found."""
    monkeypatch.setattr(distinct, "SLICE_ROWS", 5_000)
    values = [f"{i % 40_000:06d} " + "x" * 500 for i in range(60_000)]
    arr = pa.array(values, type=pa.large_string())
    del values
    pool = pa.default_memory_pool()
    before, peak_before = pool.bytes_allocated(), pool.max_memory()
    d = DistinctTexts(arr)
    grown = pool.max_memory() - max(peak_before, before)
    assert d.n_distinct == 40_000
    # Slices of 5,000 rows are copied one at a time (measured: 4.6 MB in all);
    # dictionary_encode allocates 54 MB here (the distinct texts, 21 MB, and
    # its hash table), more than the 31 MB column itself.
    assert grown < arr.nbytes / 4, (grown, arr.nbytes)


def test_pandas_str_column_runs_through_the_pipeline(double_llm):
    df = pd.DataFrame({"review": ["good film", "bad film", None, "good film"] * 30})
    res = df.thrifty.label("Is it positive?", column="review", llm=double_llm(),
                           sample_size=500, cache_dir=False)
    assert res.report.distinct_texts == 2
    assert res.labels.to_pylist()[:4] == [True, False, None, True]


def test_chunked_columns_are_read_chunk_by_chunk(monkeypatch):
    """Reading a few texts of a chunked column copies those texts, not the column."""
    chunks = [pa.array([f"{c}-{i} " + "y" * 400 for i in range(2_000)]) for c in range(10)]
    arr = pa.chunked_array(chunks)
    d = DistinctTexts(arr)
    pool = pa.default_memory_pool()
    peak_before = pool.max_memory()
    rows = np.array([19_999, 0, 7_123, 2_000, 1_999])
    got = d.strings(d.codes[rows])
    assert got == [arr[int(r)].as_py() for r in rows]
    assert pool.max_memory() - peak_before < arr.nbytes / 10


def test_pandas_picks_a_string_view_column_by_itself(double_llm):
    df = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "t": pd.Series(["good", "bad", None], dtype=pd.ArrowDtype(pa.string_view())),
        }
    )
    res = df.thrifty.label("Is it positive?", llm=double_llm(), sample_size=10,
                           cache_dir=False)
    assert res.labels.to_pylist() == [True, False, None]
