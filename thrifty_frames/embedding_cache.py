"""Persistent store of embedding vectors, compact and batched.

Vectors are the expensive part of a large run, and the same texts come back
run after run, so a cacheable embedder (one whose vectors cost more to compute
than to read, see :attr:`Embedder.cacheable`) keeps them here.

Layout, per embedder id (the folder name is a digest of the id)::

    embeddings/<digest of embedder id>/
        index.sqlite       key (SHA-256 of the text, 16 bytes) + dim -> (shard, row)
        d384-00000.f32     raw little-endian float32 rows, appended
        d384-00001.f32     ...

A vector is keyed by the text actually embedded, the embedder id and the
number of dimensions. Shards are plain float32 arrays read with
:func:`numpy.memmap`: reading never unpickles anything, and a million 384-d
vectors take 1.5 GB on disk, not one SQLite row and pickle per vector.

Lookups are batched (one SQL query per few hundred keys, then one read per
shard). Writes append a batch to the current shard and record its rows in the
index inside one SQLite write transaction, which also serialises writers from
several processes. A run interrupted between the two leaves unindexed bytes at
the end of a shard, which later writers skip over.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

_CHUNK = 500  # keys per SQL query, under SQLite's parameter limit
#: A shard is closed once it holds this many bytes; the next batch opens a new one.
SHARD_BYTES = 256 * 2**20
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    key BLOB NOT NULL,
    dim INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    row INTEGER NOT NULL,
    PRIMARY KEY (key, dim)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shards (
    dim INTEGER PRIMARY KEY,
    current INTEGER NOT NULL
);
"""


def text_key(text: str) -> bytes:
    """The cache key of one text: the first 16 bytes of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


class EmbeddingCache:
    """Vectors of one embedder, on disk.

    Parameters
    ----------
    directory
        The cache root (the same folder as the label cache); vectors go to
        ``<directory>/embeddings/<digest of embedder_id>/``.
    embedder_id
        The embedder's stable :attr:`~Embedder.id`.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> cache = EmbeddingCache(tempfile.mkdtemp(), "demo/embedder")
    >>> cache.put_many(["a", "b"], np.eye(2, dtype=np.float32))
    2
    >>> found = cache.get_many(["b", "c"], dim=2)
    >>> sorted(found), found[0].tolist()
    ([0], [0.0, 1.0])
    """

    def __init__(self, directory: str | os.PathLike, embedder_id: str) -> None:
        slot = hashlib.sha256(embedder_id.encode("utf-8")).hexdigest()[:24]
        self.directory = Path(directory) / "embeddings" / slot
        self.directory.mkdir(parents=True, exist_ok=True)
        self.embedder_id = embedder_id
        self._checked: set[int] = set()
        self._db = sqlite3.connect(
            str(self.directory / "index.sqlite"),
            timeout=60.0,
            isolation_level=None,  # explicit BEGIN / COMMIT below
            check_same_thread=False,
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        (self.directory / "embedder.txt").write_text(embedder_id + "\n", encoding="utf-8")

    # -- reading ---------------------------------------------------------------
    def known_dim(self) -> int | None:
        """The width stored for this embedder, when exactly one is stored."""
        dims = [d for (d,) in self._db.execute("SELECT dim FROM shards")]
        return dims[0] if len(dims) == 1 else None

    def get_many(self, texts: Sequence[str], dim: int) -> dict[int, np.ndarray]:
        """Vectors found for ``texts``: ``{position in texts: float32 vector}``.

        Parameters
        ----------
        texts
            Texts as they would be embedded.
        dim
            The embedder's width; vectors of another width are not returned.
        """
        keys = [text_key(t) for t in texts]
        where: dict[bytes, list[int]] = {}
        for i, k in enumerate(keys):
            where.setdefault(k, []).append(i)
        unique = list(where)
        hits_pos: list[int] = []
        hits_shard: list[int] = []
        hits_row: list[int] = []
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, shard, row FROM vectors WHERE dim = ? AND key IN ({marks})",
                [dim, *chunk],
            ).fetchall()
            for key, shard, row in rows:
                for pos in where[bytes(key)]:
                    hits_pos.append(pos)
                    hits_shard.append(shard)
                    hits_row.append(row)
        found: dict[int, np.ndarray] = {}
        if not hits_pos:
            return found
        pos_a = np.asarray(hits_pos)
        shard_a = np.asarray(hits_shard)
        row_a = np.asarray(hits_row)
        for shard in np.unique(shard_a):
            sel = shard_a == shard
            mat = self._shard_view(dim, int(shard))
            rows = row_a[sel]
            ok = rows < mat.shape[0]  # a shard cut short by hand: treat as misses
            vecs = np.array(mat[rows[ok]], dtype=np.float32)
            for p, v in zip(pos_a[sel][ok], vecs, strict=True):
                found[int(p)] = v
            del mat
        logger.debug("embedding cache: %d of %d texts found", len(found), len(texts))
        return found

    def _shard_path(self, dim: int, shard: int) -> Path:
        return self.directory / f"d{dim}-{shard:05d}.f32"

    def _shard_view(self, dim: int, shard: int) -> np.ndarray:
        path = self._shard_path(dim, shard)
        rows = path.stat().st_size // (4 * dim) if path.exists() else 0
        if rows == 0:
            return np.zeros((0, dim), dtype="<f4")
        return np.memmap(path, dtype="<f4", mode="r", shape=(rows, dim))

    # -- writing ---------------------------------------------------------------
    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> int:
        """Store one vector per text (texts already stored are skipped).

        Returns the number of vectors written.
        """
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            msg = (
                f"put_many needs one row per text: got {len(texts)} texts and an "
                f"array of shape {vectors.shape}."
            )
            raise ValueError(msg)
        dim = int(vectors.shape[1])
        keys = [text_key(t) for t in texts]
        first: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)  # identical texts are stored once
        self._db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
        try:
            if dim not in self._checked:  # once per open cache and width
                self._drop_stale(dim)
                self._checked.add(dim)
            present = set()
            unique = list(first)
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                present.update(
                    bytes(k)
                    for (k,) in self._db.execute(
                        f"SELECT key FROM vectors WHERE dim = ? AND key IN ({marks})",
                        [dim, *chunk],
                    )
                )
            new = [k for k in unique if k not in present]
            if new:
                self._append(dim, new, vectors[[first[k] for k in new]])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        logger.debug("embedding cache: wrote %d of %d vectors", len(new), len(texts))
        return len(new)

    def _drop_stale(self, dim: int) -> None:
        """Forget index entries whose rows are not (wholly) in their shard file.

        A shard cut short from outside (a bad copy, a full disk) leaves entries
        pointing past its end. Reads treat them as misses; if they stayed in
        the index, a later write would skip those texts as present and append
        other vectors where the entries point, so they are dropped first.
        """
        got = self._db.execute("SELECT current FROM shards WHERE dim = ?", [dim]).fetchone()
        for shard in range(0, (got[0] if got else 0) + 1):
            path = self._shard_path(dim, shard)
            whole = (path.stat().st_size if path.exists() else 0) // (4 * dim)
            self._db.execute(
                "DELETE FROM vectors WHERE dim = ? AND shard = ? AND row >= ?",
                [dim, shard, whole],
            )

    def _append(self, dim: int, keys: list[bytes], block: np.ndarray) -> None:
        row_bytes = 4 * dim
        got = self._db.execute("SELECT current FROM shards WHERE dim = ?", [dim]).fetchone()
        shard = got[0] if got else 0
        path = self._shard_path(dim, shard)
        size = path.stat().st_size if path.exists() else 0
        if size >= SHARD_BYTES:
            shard += 1
            path = self._shard_path(dim, shard)
            size = path.stat().st_size if path.exists() else 0
        with open(path, "ab") as fh:
            pad = (-size) % row_bytes  # a torn row from an interrupted writer
            if pad:
                fh.write(b"\0" * pad)
            start_row = (size + pad) // row_bytes
            fh.write(block.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        self._db.execute(
            "INSERT OR REPLACE INTO shards (dim, current) VALUES (?, ?)", [dim, shard]
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO vectors (key, dim, shard, row) VALUES (?, ?, ?, ?)",
            [(k, dim, shard, start_row + i) for i, k in enumerate(keys)],
        )

    # -- housekeeping ----------------------------------------------------------
    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def disk_bytes(self) -> int:
        """Bytes used on disk by the shards and the index."""
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
