"""Any function mapping a list of texts to a 2-D array, as the embedder."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ...exceptions import BackendError, InvalidArgumentError
from .base import Embedder, Matrix


class CallableEmbedder(Embedder):
    """Wrap ``fn(list_of_texts) -> array`` (dense or scipy sparse).

    Parameters
    ----------
    fn : callable
        Maps a list of texts to one row per text.
    id : str, optional
        Stable identity of the function's output; it keys the embedding cache
        and saved proxies. Give a new one whenever the output changes.
    batch_size : int, default 256
        Texts per call.
    cacheable : bool, optional
        Keep vectors in the embedding cache. Defaults to True when ``id`` is
        given and False otherwise: a name taken from the function alone
        (``callable/module.<lambda>``) cannot tell two functions apart, so
        caching under it could return another function's vectors.
    max_chars : int, optional
        Longest text passed to ``fn``; see ``long_texts``.

    Examples
    --------
    >>> import numpy as np
    >>> emb = CallableEmbedder(lambda ts: np.ones((len(ts), 3)), id="ones/v1")
    >>> emb.embed(["a", "b"]).shape, emb.dim, emb.cacheable
    ((2, 3), 3, True)
    """

    def __init__(
        self,
        fn: Callable,
        *,
        id: str | None = None,
        batch_size: int = 256,
        cacheable: bool | None = None,
        max_chars: int | None = None,
    ) -> None:
        if not callable(fn):
            msg = f"embedder must be callable, got {type(fn).__name__}."
            raise InvalidArgumentError(msg)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            msg = f"batch_size must be an integer >= 1, got {batch_size!r}."
            raise InvalidArgumentError(msg)
        self.fn = fn
        name = getattr(fn, "__qualname__", type(fn).__name__)
        self.id = id or f"callable/{getattr(fn, '__module__', '?')}.{name}"
        self.batch_size = batch_size
        self.cacheable = (id is not None) if cacheable is None else bool(cacheable)
        self.max_chars = max_chars

    def embed(self, texts: list[str]) -> Matrix:
        try:
            out = self.fn(list(texts))
        except Exception as exc:
            raise BackendError(f"the embedder function raised {type(exc).__name__}") from exc
        if sp.issparse(out):
            out = sp.csr_matrix(out, dtype=np.float32)
        else:
            out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2:
            msg = (
                f"the embedder function must return a 2-D array (one row per text), "
                f"got {out.ndim} dimension(s)."
            )
            raise BackendError(msg)
        if self.dim is None:
            self.dim = int(out.shape[1])
        elif out.shape[1] != self.dim:
            msg = (
                f"the embedder function returned {out.shape[1]} dimensions after "
                f"{self.dim} earlier; it must always return the same width."
            )
            raise BackendError(msg)
        return out
