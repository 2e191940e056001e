"""Distinct texts of a column, found without copying the column.

The pipeline works per distinct text (each is labeled, embedded and cached
once). ``pyarrow.compute.dictionary_encode`` would find them, but it copies
every distinct text into a new array: on a column of long documents that is
a second copy of the column, so memory grows with the text's size, not only
with the number of rows. Here each row gets a 128-bit key (two 64-bit Polars
hashes with different seeds, computed a slice at a time), keys are grouped
with NumPy, and a distinct text is represented by the index of the first row
that holds it. Every row is then compared, byte for byte, with its
representative, so a hash collision can never merge two different texts; if
one ever occurs the column is encoded exactly with ``dictionary_encode``.

Codes are numbered in order of first appearance, as ``dictionary_encode``
numbers them. Memory beyond the column itself: about 60 bytes a row while
grouping, 17 bytes a row afterwards (codes and the null mask), plus one
slice's copy.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

#: Rows hashed, compared or converted at a time: at most this many, and
#: fewer for long texts, so that one slice holds about SLICE_BYTES of text.
SLICE_ROWS = 65_536
SLICE_BYTES = 8 * 2**20
_SEEDS = (0x9E3779B97F4A7C15 % 2**63, 0x2545F4914F6CDD1D)


class DistinctTexts:
    """Codes per row (``-1`` for null) and a first row per distinct text.

    ``texts`` is any Arrow string-like array (``string``, ``large_string``,
    ``string_view``, chunked or not, or ``null``); it is kept by reference.
    """

    def __init__(self, texts: pa.Array | pa.ChunkedArray) -> None:
        self.texts = texts
        self._views: pl.Series | None = None
        n = len(texts)
        self.valid = np.zeros(n, dtype=bool)
        self.codes = np.full(n, -1, dtype=np.int64)
        self.first_row = np.zeros(0, dtype=np.int64)
        if n == 0 or pa.types.is_null(texts.type):
            return
        step = self._step = _slice_rows(texts)
        keys = np.empty((n, 2), dtype=np.uint64)
        for start in range(0, n, step):
            part = texts.slice(start, step)
            stop = start + len(part)
            self.valid[start:stop] = _valid(part)
            s = _series(part)
            keys[start:stop, 0] = s.hash(seed=_SEEDS[0]).to_numpy()
            keys[start:stop, 1] = s.hash(seed=_SEEDS[1]).to_numpy()
        rows = np.flatnonzero(self.valid)
        if len(rows) == 0:
            return
        packed = np.ascontiguousarray(keys[rows]).view("V16").ravel()
        del keys
        _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
        del packed
        # Renumber by first appearance.
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.first_row = rows[first[order]]
        self.codes[rows] = rank[np.ravel(inverse)]
        if not self._exact():
            self._encode_exactly()

    @property
    def n_distinct(self) -> int:
        return len(self.first_row)

    def take(self, codes: np.ndarray) -> pa.Array:
        """The distinct texts ``codes`` as a plain ``pa.string()`` array."""
        rows = self.first_row[np.asarray(codes, dtype=np.int64)]
        if pa.types.is_string_view(self.texts.type):
            # pyarrow has no take for views; Polars reads them without a copy.
            if self._views is None:
                self._views = pl.from_arrow(self.texts)
            return _plain(self._views.gather(rows).to_arrow())
        return _take(self.texts, rows)

    def strings(self, codes: np.ndarray) -> list[str]:
        """The distinct texts ``codes`` as Python strings."""
        return self.take(codes).to_pylist()

    # -- exactness -----------------------------------------------------------
    def _exact(self) -> bool:
        """Every row equals its code's first row (no two texts share a key).

        A first row is its own representative, so only repeated texts are
        compared: a column of distinct texts costs nothing here.
        """
        step = self._step
        for start in range(0, len(self.codes), step):
            codes = self.codes[start : start + step]
            rows = np.arange(start, start + len(codes))
            ok = (codes >= 0) & (self.first_row[np.maximum(codes, 0)] != rows)
            if not ok.any():
                continue
            local = np.flatnonzero(ok)
            mine = _plain(self.texts.slice(start, step))
            mine = mine.take(pa.array(local, type=pa.int64()))
            theirs = self.take(codes[ok])
            if not pc.all(pc.equal(mine, theirs)).as_py():
                return False
        return True

    def _encode_exactly(self) -> None:  # pragma: no cover - needs a 128-bit collision
        enc = pc.dictionary_encode(_plain(_combined(self.texts)))
        idx = enc.indices
        self.valid = idx.is_valid().to_numpy(zero_copy_only=False)
        codes = idx.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        self.codes = np.where(self.valid, codes, -1)
        rows = np.flatnonzero(self.valid)
        first = np.full(len(enc.dictionary), -1, dtype=np.int64)
        first[self.codes[rows[::-1]]] = rows[::-1]
        self.first_row = first


def _take(texts: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """``texts[rows]`` as ``pa.string()``; a chunked array is read chunk by
    chunk (pyarrow's own take on a chunked string array joins every chunk into
    one copy first)."""
    if not isinstance(texts, pa.ChunkedArray) or texts.num_chunks == 1:
        return _plain(_combined(texts).take(pa.array(rows, type=pa.int64())))
    starts = np.cumsum([0] + [len(c) for c in texts.chunks])
    which = np.searchsorted(starts, rows, side="right") - 1
    order = np.argsort(which, kind="stable")
    parts = []
    for c in np.unique(which):
        sel = order[which[order] == c]
        local = pa.array(rows[sel] - starts[c], type=pa.int64())
        parts.append(_plain(texts.chunk(int(c)).take(local)))
    if not parts:
        return pa.array([], type=pa.string())
    joined = pa.concat_arrays(parts)  # rows grouped by chunk; put them back in order
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return joined.take(pa.array(back, type=pa.int64()))


def _slice_rows(texts: pa.Array | pa.ChunkedArray) -> int:
    """Rows per slice: SLICE_ROWS, or fewer so a slice holds about SLICE_BYTES."""
    per_row = max(1.0, texts.nbytes / max(1, len(texts)))
    return int(min(SLICE_ROWS, max(256, SLICE_BYTES // per_row)))


def _combined(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def _plain(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``arr`` as ``pa.string()`` (a copy only when its type differs)."""
    arr = _combined(arr)
    if arr.type != pa.string():
        arr = pc.cast(arr, pa.string())
    return arr


def _valid(part: pa.Array | pa.ChunkedArray) -> np.ndarray:
    v = part.is_valid()
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks() if v.num_chunks else pa.array([], type=pa.bool_())
    return v.to_numpy(zero_copy_only=False)


def _series(part: pa.Array | pa.ChunkedArray) -> pl.Series:
    """One slice as a Polars string series (a bounded copy of that slice)."""
    s = pl.from_arrow(_combined(part))
    return s if s.dtype == pl.String else s.cast(pl.String)
