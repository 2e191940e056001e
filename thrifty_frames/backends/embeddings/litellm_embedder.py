"""Any litellm embedding model as the embedder."""

from __future__ import annotations

import random
import time

import numpy as np

from ...exceptions import BackendError
from .base import Embedder


class LiteLLMEmbedder(Embedder):
    """An embedding model reached through litellm, batched, with retries.

    Parameters
    ----------
    model
        A litellm embedding model string, e.g. ``"openai/text-embedding-3-small"``.
    batch_size
        Texts per request.
    max_retries
        Retries with exponential backoff and jitter on rate limits, 5xx and
        timeouts; a ``Retry-After`` header is honoured.
    **kwargs
        Passed to ``litellm.embedding`` (``api_base``, ``dimensions``, ...).
    """

    def __init__(self, model: str, *, batch_size: int = 128, max_retries: int = 4,
                 max_chars: int | None = 8000, **kwargs) -> None:
        self.model = model
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.max_chars = max_chars
        self.kwargs = kwargs
        dims = kwargs.get("dimensions")
        self.id = f"litellm/{model}" + (f"/d{dims}" if dims else "")

    def embed(self, texts: list[str]) -> np.ndarray:
        from ..llm.litellm_backend import _retry_after, import_litellm

        litellm = import_litellm()
        # Empty strings are rejected by several providers; embed a space instead.
        payload = [t if t.strip() else " " for t in texts]
        attempt = 0
        while True:
            try:
                resp = litellm.embedding(model=self.model, input=payload, **self.kwargs)
                break
            except Exception as exc:
                status = getattr(exc, "status_code", None)
                transient = status in (408, 429) or (isinstance(status, int) and status >= 500)
                attempt += 1
                if not transient or attempt > self.max_retries:
                    msg = (
                        f"embedding call to {self.model} failed: {type(exc).__name__} "
                        f"(status {status})"
                    )
                    raise BackendError(msg) from None
                delay = min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random())
                ra = _retry_after(exc)
                if ra is not None:
                    delay = max(delay, min(ra, 30.0))
                time.sleep(delay)
        data = sorted(resp.data, key=lambda d: d["index"] if isinstance(d, dict) else d.index)
        vecs = [d["embedding"] if isinstance(d, dict) else d.embedding for d in data]
        out = np.asarray(vecs, dtype=np.float32)
        if self.dim is None:
            self.dim = int(out.shape[1])
        return out
