"""Embed stage: vectors for distinct texts, or from a column of precomputed vectors.

Texts are embedded in the embedder's batches. Identical inputs are embedded
once. A cacheable embedder's vectors are looked up in, and written to, the
:class:`~thrifty_frames.embedding_cache.EmbeddingCache` batch by batch, so an
interrupted run keeps what it computed.

Long texts (the policy is documented on ``Options.long_texts``): a text longer
than the embedder's ``max_chars`` is either cut to that length
(``"truncate"``, the default) or split into pieces of at most ``max_chars``
characters, at whitespace where possible, whose vectors are averaged
(``"pool"``). Either way the text is counted, never handled silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from ..backends.embeddings.base import Embedder, Matrix
from ..exceptions import BackendError, ColumnTypeError, InvalidArgumentError

logger = logging.getLogger(__name__)

LONG_TEXT_POLICIES = ("truncate", "pool")


@dataclass
class EmbedStats:
    """Counts of one or more embedding calls.

    ``long`` holds the positions (in the call's ``texts``) of texts longer
    than ``max_chars``; it is not summed by :meth:`add`.
    """

    texts: int = 0
    truncated: int = 0
    cache_hits: int = 0
    cache_writes: int = 0
    embedded: int = 0
    seconds: float = 0.0
    long: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def add(self, other: EmbedStats) -> None:
        self.texts += other.texts
        self.truncated += other.truncated
        self.cache_hits += other.cache_hits
        self.cache_writes += other.cache_writes
        self.embedded += other.embedded
        self.seconds += other.seconds


#: Largest finite float32: precomputed vectors are read as float32.
_F32_MAX = float(np.finfo(np.float32).max)


def _split(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at whitespace where possible."""
    pieces = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        space = text.rfind(" ", start + limit // 2, end)
        if space > start:
            end = space
        pieces.append(text[start:end])
        start = end
    pieces.append(text[start:])
    return pieces


def _prepare(
    texts: Sequence[str], limit: int | None, policy: str
) -> tuple[list[str], np.ndarray | None, np.ndarray]:
    """The inputs the embedder sees, which text each belongs to, and long ones."""
    if limit is None:
        return list(texts), None, np.zeros(0, dtype=np.int64)
    long_pos = [i for i, t in enumerate(texts) if len(t) > limit]
    if not long_pos:
        return list(texts), None, np.zeros(0, dtype=np.int64)
    if policy == "truncate":
        inputs = list(texts)
        for i in long_pos:
            inputs[i] = inputs[i][:limit]
        return inputs, None, np.asarray(long_pos, dtype=np.int64)
    inputs, owner = [], []
    for i, t in enumerate(texts):
        pieces = _split(t, limit) if len(t) > limit else [t]
        inputs.extend(pieces)
        owner.extend([i] * len(pieces))
    return inputs, np.asarray(owner, dtype=np.int64), np.asarray(long_pos, dtype=np.int64)


def _check_batch(out: Matrix, n: int, embedder: Embedder) -> Matrix:
    if out.shape[0] != n:
        msg = (
            f"embedder {embedder.id!r} returned {out.shape[0]} vectors for "
            f"{n} texts; an embedder must return one row per text."
        )
        raise BackendError(msg)
    if sp.issparse(out):
        return sp.csr_matrix(out, dtype=np.float32)
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 2:
        msg = f"embedder {embedder.id!r} returned a {out.ndim}-D array; it must be 2-D."
        raise BackendError(msg)
    return out


def _embed_unique(
    inputs: list[str], embedder: Embedder, cache, stats: EmbedStats, progress
) -> Matrix:
    """One row per input (inputs are distinct), from the cache or the embedder."""
    n = len(inputs)
    use_cache = cache is not None and embedder.cacheable
    hits: dict[int, np.ndarray] = {}
    if use_cache:
        dim = embedder.dim or cache.known_dim()
        if dim is not None:
            hits = cache.get_many(inputs, dim)
    stats.cache_hits += len(hits)
    if progress is not None and hits:
        progress.update(len(hits))
    todo = [i for i in range(n) if i not in hits] if hits else range(n)
    parts: list[Matrix] = []
    step = max(1, int(embedder.batch_size))
    for start in range(0, len(todo), step):
        idx = todo[start : start + step]
        batch = [inputs[i] for i in idx]
        out = _check_batch(embedder.embed(batch), len(batch), embedder)
        stats.embedded += len(batch)
        if use_cache and not sp.issparse(out):
            stats.cache_writes += cache.put_many(batch, out)
        parts.append(out)
        if progress is not None:
            progress.update(len(batch))
    if not hits:
        if not parts:
            return np.zeros((0, embedder.dim or 0), dtype=np.float32)
        if sp.issparse(parts[0]):
            return sp.vstack(parts, format="csr")
        return parts[0] if len(parts) == 1 else np.vstack(parts)
    dim = len(next(iter(hits.values())))
    X = np.empty((n, dim), dtype=np.float32)
    for i, v in hits.items():
        X[i] = v
    if parts:
        if any(sp.issparse(p) for p in parts) or any(p.shape[1] != dim for p in parts):
            msg = (
                f"embedder {embedder.id!r} returned vectors unlike its cached ones "
                "(sparse, or another width); give it a new id when its output changes."
            )
            raise BackendError(msg)
        X[np.asarray(todo, dtype=np.int64)] = np.vstack(parts)
    return X


def embed_texts(
    texts: Sequence[str],
    embedder: Embedder,
    *,
    cache=None,
    long_texts: str = "truncate",
    progress=None,
) -> tuple[Matrix, EmbedStats]:
    """Embed ``texts``, one row per text, in order.

    Parameters
    ----------
    texts
        The texts (distinct or not; identical inputs are embedded once).
    embedder
        Any :class:`~thrifty_frames.backends.embeddings.base.Embedder`.
    cache
        An :class:`~thrifty_frames.embedding_cache.EmbeddingCache` for this
        embedder, used only when ``embedder.cacheable`` and its vectors are
        dense; ``None`` embeds everything.
    long_texts
        ``"truncate"`` or ``"pool"`` (see the module docstring).
    progress
        Anything with ``update(n)``.

    Returns
    -------
    matrix, stats
        A float32 matrix (dense or CSR) and the counts of this call.
    """
    t0 = time.perf_counter()
    stats = EmbedStats(texts=len(texts))
    inputs, owner, long_pos = _prepare(texts, embedder.max_chars, long_texts)
    stats.truncated = len(long_pos)
    stats.long = long_pos

    # Identical inputs (duplicates, or texts equal once cut) are embedded once.
    first: dict[str, int] = {}
    inverse = np.fromiter(
        (first.setdefault(t, len(first)) for t in inputs), dtype=np.int64, count=len(inputs)
    )
    distinct = list(first) if len(first) < len(inputs) else inputs
    X = _embed_unique(distinct, embedder, cache, stats, progress)
    if len(distinct) < len(inputs):
        X = X[inverse]
    if owner is not None:  # mean of each long text's pieces
        counts = np.bincount(owner, minlength=len(texts)).astype(np.float32)
        pool = sp.csr_matrix(
            (1.0 / counts[owner], (owner, np.arange(len(owner)))),
            shape=(len(texts), len(owner)),
            dtype=np.float32,
        )
        X = pool @ X
        X = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X)
    stats.seconds = time.perf_counter() - t0
    logger.debug(
        "embedded %d texts (%d computed, %d from cache) in %.2fs",
        len(texts),
        stats.embedded,
        stats.cache_hits,
        stats.seconds,
    )
    return X, stats


class PrecomputedVectors:
    """A frame column of vectors used in place of an embedder.

    Accepts Arrow ``list``, ``large_list`` or ``fixed_size_list`` of numbers
    (what pandas columns of lists or NumPy arrays and Polars ``List`` or
    ``Array`` columns become). Every row whose text is used must have a vector
    of the same length, with no missing or NaN entries. Rows are converted to a
    float32 matrix chunk by chunk, so the whole column is never copied at once.

    Parameters
    ----------
    values
        The column, as Arrow.
    column
        Its name, for error messages.
    needed
        Boolean mask of the rows that will be read (rows with a text); a
        missing vector elsewhere is allowed.
    """

    def __init__(
        self, values: pa.Array | pa.ChunkedArray, column: str, needed: np.ndarray | None = None
    ) -> None:
        if isinstance(values, pa.ChunkedArray):
            values = (
                values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
            )
        t = values.type
        if pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
            values = values.cast(pa.large_list(t.value_type))
            t = values.type
        is_list = (
            pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
        )
        if not is_list or not (
            pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)
        ):
            msg = (
                f"embeddings column {column!r} has type {t}, not a column of numeric "
                "vectors; pass a column holding one list or array of floats per row."
            )
            raise ColumnTypeError(msg)
        self.column = column
        self.values = values
        n = len(values)
        if needed is None:
            needed = np.ones(n, dtype=bool)
        missing = needed & ~values.is_valid().to_numpy(zero_copy_only=False)
        if missing.any():
            first = int(np.flatnonzero(missing)[0])
            msg = (
                f"embeddings column {column!r} has no vector in {int(missing.sum()):,} "
                f"rows that have a text (first at position {first}); fill them or "
                "drop those rows."
            )
            raise InvalidArgumentError(msg)
        if pa.types.is_fixed_size_list(t):
            self.dim = t.list_size
        else:
            lengths = pc.list_value_length(values).fill_null(-1)
            lengths = lengths.to_numpy(zero_copy_only=False)[needed]
            if len(lengths) == 0:
                self.dim = 0
            else:
                lo, hi = int(lengths.min()), int(lengths.max())
                if lo != hi:
                    common = int(np.bincount(lengths).argmax())
                    odd = int(np.flatnonzero(needed)[np.flatnonzero(lengths != common)[0]])
                    msg = (
                        f"embeddings column {column!r} holds vectors of different "
                        f"lengths ({lo} to {hi}; most have {common}, the row at "
                        f"position {odd} does not); every vector must have the same "
                        "number of dimensions."
                    )
                    raise InvalidArgumentError(msg)
                self.dim = lo
        if self.dim == 0 and needed.any():
            msg = f"embeddings column {column!r} holds empty vectors; it needs numbers."
            raise InvalidArgumentError(msg)
        flat = pc.list_flatten(values)
        if flat.null_count:
            msg = (
                f"embeddings column {column!r} has missing numbers inside its vectors; "
                "fill them (e.g. with 0) first."
            )
            raise InvalidArgumentError(msg)
        if pa.types.is_floating(flat.type) and pc.any(pc.is_nan(flat)).as_py():
            msg = (
                f"embeddings column {column!r} has NaN inside its vectors; replace "
                "them first."
            )
            raise InvalidArgumentError(msg)
        if pa.types.is_floating(flat.type) or pa.types.is_integer(flat.type):
            # Vectors are used as float32: infinities and anything beyond its
            # range would reach the proxy as infinities, after the LLM was paid.
            too_big = pc.greater(pc.abs_checked(pc.cast(flat, pa.float64())), _F32_MAX)
            if pc.any(too_big).as_py():
                msg = (
                    f"embeddings column {column!r} has infinite numbers, or numbers "
                    "beyond float32's range (about 3.4e38), inside its vectors; "
                    "replace or rescale them first."
                )
                raise InvalidArgumentError(msg)

    def rows(self, rows: np.ndarray) -> tuple[np.ndarray, EmbedStats]:
        """The vectors of ``rows`` as a float32 matrix, and counts for the report."""
        t0 = time.perf_counter()
        picked = self.values.take(pa.array(np.asarray(rows, dtype=np.int64)))
        flat = pc.list_flatten(picked).to_numpy(zero_copy_only=False)
        X = np.asarray(flat, dtype=np.float32).reshape(len(rows), self.dim)
        return X, EmbedStats(texts=len(rows), seconds=time.perf_counter() - t0)
