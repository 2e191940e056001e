"""Any litellm embedding model as the embedder (``embedder="openai/text-embedding-3-small"``)."""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ...exceptions import BackendError, InvalidArgumentError
from .base import Embedder

logger = logging.getLogger(__name__)

_TRANSIENT_STATUS = (408, 409, 425, 429)


class LiteLLMEmbedder(Embedder):
    """An embedding model reached through litellm, batched, with retries.

    The embedding stage hands it ``batch_size * max_concurrency`` texts at a
    time; they go out as ``max_concurrency`` requests of at most
    ``batch_size`` texts each, in parallel. Rate limits, timeouts and 5xx
    answers are retried like LLM calls: exponential backoff with jitter, at
    least the provider's ``Retry-After``.

    Vectors are cacheable: with a disk cache (``cache_dir``), a text is never
    sent to the provider twice for the same model and dimensions.

    Parameters
    ----------
    model : str
        A litellm embedding model, e.g. ``"openai/text-embedding-3-small"``.
    batch_size : int, default 128
        Texts per request.
    max_concurrency : int, default 4
        Requests in flight at once.
    max_retries : int, default 4
        Retries of one request after a transient failure.
    rpm : float, optional
        Requests per minute allowed by the provider; None sets no limit.
    max_chars : int or None, default 8000
        Longer texts are cut (or pooled, see ``long_texts``) before sending;
        8,000 characters stay under the 8,192-token window of OpenAI's models
        for ordinary prose.
    timeout : float, default 60
        Seconds per request.
    **kwargs
        Passed to ``litellm.embedding`` (``api_base``, ``dimensions``, ...).
        ``dimensions`` and ``api_base`` are part of the cache identity.

    Examples
    --------
    >>> emb = LiteLLMEmbedder("openai/text-embedding-3-small", dimensions=256)
    >>> emb.id, emb.dim
    ('litellm/openai/text-embedding-3-small/d256', 256)
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 128,
        max_concurrency: int = 4,
        max_retries: int = 4,
        rpm: float | None = None,
        max_chars: int | None = 8000,
        timeout: float = 60.0,
        **kwargs,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("max_concurrency", max_concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"{name} must be an integer >= 1, got {value!r}."
                raise InvalidArgumentError(msg)
        self.model = model
        self.request_size = batch_size
        self.max_concurrency = max_concurrency
        self.batch_size = batch_size * max_concurrency
        self.max_retries = max_retries
        self.max_chars = max_chars
        self.timeout = timeout
        self.kwargs = kwargs
        self.backoff_base = 0.5
        self.backoff_max = 30.0
        self._sleep = time.sleep
        self._rate = None
        if rpm is not None:
            from ..._stages.label import RateLimiter

            self._rate = RateLimiter(rpm=rpm)
        dims = kwargs.get("dimensions")
        self.dim = int(dims) if dims else None
        base = kwargs.get("api_base") or kwargs.get("base_url")
        self.id = (
            f"litellm/{model}" + (f"/d{dims}" if dims else "") + (f"@{base}" if base else "")
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (one row each, in order) with as many requests as needed."""
        # Empty strings are rejected by several providers; embed a space instead.
        payload = [t if t.strip() else " " for t in texts]
        step = self.request_size
        batches = [payload[i : i + step] for i in range(0, len(payload), step)]
        if len(batches) <= 1 or self.max_concurrency == 1:
            parts = [self._request(b) for b in batches]
        else:
            with ThreadPoolExecutor(min(self.max_concurrency, len(batches))) as pool:
                parts = list(pool.map(self._request, batches))
        if not parts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        out = np.vstack(parts)
        if self.dim is None:
            self.dim = int(out.shape[1])
        elif out.shape[1] != self.dim:
            msg = (
                f"embedding model {self.model} returned {out.shape[1]} dimensions, "
                f"expected {self.dim}."
            )
            raise BackendError(msg)
        return out

    def _request(self, batch: list[str]) -> np.ndarray:
        from ..llm.litellm_backend import _retry_after, import_litellm

        litellm = import_litellm()
        attempt = 0
        while True:
            if self._rate is not None:
                self._rate.acquire(0)
            try:
                resp = litellm.embedding(
                    model=self.model, input=batch, timeout=self.timeout, **self.kwargs
                )
                break
            except Exception as exc:
                status = getattr(exc, "status_code", None)
                transient = status in _TRANSIENT_STATUS or (
                    isinstance(status, int) and status >= 500
                )
                attempt += 1
                if not transient or attempt > self.max_retries:
                    msg = (
                        f"embedding call to {self.model} failed: {type(exc).__name__} "
                        f"(status {status})"
                        + (f" after {attempt} attempts" if transient else "")
                    )
                    raise BackendError(msg) from None
                delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
                delay *= 0.5 + random.random()  # jitter
                ra = _retry_after(exc)
                if ra is not None:
                    delay = max(delay, min(ra, self.backoff_max))
                logger.debug("transient embedding failure, retry %d in %.2fs", attempt, delay)
                self._sleep(delay)
        data = sorted(resp.data, key=lambda d: d["index"] if isinstance(d, dict) else d.index)
        vecs = [d["embedding"] if isinstance(d, dict) else d.embedding for d in data]
        if len(vecs) != len(batch):
            msg = (
                f"embedding model {self.model} returned {len(vecs)} vectors for "
                f"{len(batch)} texts."
            )
            raise BackendError(msg)
        return np.asarray(vecs, dtype=np.float32)
