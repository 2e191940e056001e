"""Embed stage: vectors for distinct texts, in batches, long texts cut and counted."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..backends.embeddings.base import Embedder, Matrix
from ..exceptions import BackendError

logger = logging.getLogger(__name__)


@dataclass
class EmbedStats:
    texts: int = 0
    truncated: int = 0
    seconds: float = 0.0

    def add(self, other: EmbedStats) -> None:
        self.texts += other.texts
        self.truncated += other.truncated
        self.seconds += other.seconds


def _stack(parts: list[Matrix]) -> Matrix:
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    if sp.issparse(parts[0]):
        return sp.vstack(parts, format="csr")
    return np.vstack(parts)


def embed_texts(
    texts: Sequence[str], embedder: Embedder, *, progress=None
) -> tuple[Matrix, EmbedStats]:
    """Embed ``texts`` in the embedder's batches.

    Texts longer than ``embedder.max_chars`` are cut to that length (the
    documented long-text policy) and counted in ``stats.truncated``.
    """
    t0 = time.perf_counter()
    stats = EmbedStats(texts=len(texts))
    limit = embedder.max_chars
    if limit is not None:
        cut = []
        for t in texts:
            if len(t) > limit:
                stats.truncated += 1
                t = t[:limit]
            cut.append(t)
        texts = cut
    parts: list[Matrix] = []
    step = max(1, int(embedder.batch_size))
    for start in range(0, len(texts), step):
        batch = list(texts[start : start + step])
        out = embedder.embed(batch)
        if out.shape[0] != len(batch):
            msg = (
                f"embedder {embedder.id!r} returned {out.shape[0]} vectors for "
                f"{len(batch)} texts; an embedder must return one row per text."
            )
            raise BackendError(msg)
        if not sp.issparse(out):
            out = np.asarray(out, dtype=np.float32)
        parts.append(out)
        if progress is not None:
            progress.update(len(batch))
    stats.seconds = time.perf_counter() - t0
    logger.debug("embedded %d texts in %.2fs", len(texts), stats.seconds)
    return _stack(parts), stats
