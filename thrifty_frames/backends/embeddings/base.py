"""The embedder protocol.

An embedder maps a list of texts to a 2-D matrix, dense (``numpy.ndarray`` of
float32) or sparse (``scipy.sparse.csr_matrix``), one row per text, in order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp

Matrix = np.ndarray | sp.csr_matrix


class Embedder(ABC):
    """Base class of embedders.

    Subclasses set :attr:`id` (stable across processes; it keys the embedding
    cache together with :attr:`dim`) and implement :meth:`embed`.
    """

    id: str = "abstract"
    #: Output width, or None until known.
    dim: int | None = None
    #: False when computing a vector is cheaper than looking it up on disk.
    cacheable: bool = True
    #: Texts per call the embedding stage hands to :meth:`embed`.
    batch_size: int = 256
    #: Longest text, in characters, the embedder sees; longer ones are cut and
    #: counted in the report. None means no limit.
    max_chars: int | None = None

    @abstractmethod
    def embed(self, texts: list[str]) -> Matrix:
        """Embed ``texts`` and return one row per text."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"
