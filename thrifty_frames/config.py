"""Run options, their defaults, and their validation (done once, at the boundary)."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, fields
from typing import Any

from .backends.proxies.base import AUTO, PROXY_NAMES
from .exceptions import InvalidArgumentError

#: Rows labeled by the LLM before the proxy is trained.
DEFAULT_SAMPLE_SIZE = 500
#: Required accuracy of the output against the LLM (cascade target).
DEFAULT_TARGET = 0.9
#: Allowed probability that the target is missed.
DEFAULT_DELTA = 0.05
FALLBACKS = ("llm", "proxy")
#: What happens to a text longer than the embedder's ``max_chars``.
LONG_TEXT_POLICIES = ("truncate", "pool")
METRICS = ("accuracy", "precision", "recall")


@dataclass(frozen=True)
class Options:
    """Everything a verb accepts besides the prompt, classes and column.

    Attributes
    ----------
    llm
        ``None`` for the embedded offline model, a litellm model string such as
        ``"openai/gpt-4o-mini"``, an :class:`~thrifty_frames.backends.llm.base.LLMBackend`,
        or any callable taking the chat messages and returning the answer text.
    embedder
        ``None`` for the offline default (hashed word and character n-grams), a
        litellm embedding model string, an ``Embedder``, or a callable mapping a
        list of texts to a 2-D array.
    embeddings
        Name of a column of precomputed vectors (lists or arrays of floats, one
        per row, all the same length) to use instead of an embedder; no
        embedder is called. Rows that share a text use the first such row's
        vector. Leave ``embedder`` unset when using it.
    long_texts
        Texts longer than the embedder's ``max_chars`` (e.g. 8,000 characters
        for litellm models, the model window for sentence-transformers) are
        ``"truncate"`` (default): cut to ``max_chars``; or ``"pool"``: split
        into pieces of at most ``max_chars`` characters, each embedded, and
        their vectors averaged. Either way the number of affected rows is in
        the report (``truncated_texts``).
    proxy
        ``"lr"`` (default), ``"svc"`` or ``"lgbm"``; ``"auto"`` lets
        cross-validation on the labeled rows choose among the three (slower).
    sample_size
        Rows labeled by the LLM up front. At or above the number of non-null
        rows, every row is labeled by the LLM and no proxy is trained.
    seed
        Seeds the sample, the splits and the proxy.
    cache_dir
        Folder for the label cache; ``None`` uses the default location
        (``$THRIFTY_FRAMES_CACHE`` or ``~/.cache/thrifty-frames``), ``False``
        keeps labels in memory only.
    target, delta
        The cascade keeps the proxy's answer only where it is certified to meet
        ``target`` (in ``metric``) against the LLM with probability
        ``1 - delta``; other rows go to the LLM. ``target=None`` keeps every
        proxy answer (no LLM escalation, no guarantee). Defaults 0.9 and 0.05.
    metric
        What ``target`` is about: ``"accuracy"`` (default; filters and
        classify), ``"precision"`` or ``"recall"`` of the "yes" answers
        (filters only). The methods and their assumptions are described in
        :mod:`thrifty_frames._stages.evaluate`.
    calibration_share
        Share of the labeled sample held out to certify the threshold.
    max_llm_calls, max_cost
        Hard caps for the whole run (dollars from litellm's bundled price map),
        checked before each request is sent, retries included, so they are
        never exceeded. A run that reaches a cap does not raise: the verb
        returns every row, those the LLM was not asked about carrying the
        proxy's answer (``decided_by="proxy_below_target"``) or no label
        (``"none"``); the report counts them (``over_budget``) and a
        :class:`~thrifty_frames.BudgetExceededWarning` says so. Re-running with
        a higher cap pays only for what is missing. ``df.thrifty.estimate``
        predicts calls and cost without calling the LLM.
    fallback
        When the proxy is not viable: ``"llm"`` labels the remaining rows with
        the LLM (within the caps), ``"proxy"`` keeps the proxy's answers anyway
        when there is a proxy at all.
    rpm, tpm
        Requests and tokens per minute the LLM may be sent (a sliding
        one-minute window shared by the worker threads); ``None``: no limit.
    progress
        Progress bars: ``None`` shows them on a terminal or in a notebook.
    chunk_size
        Distinct texts embedded and predicted at a time, and escalated rows
        handed to the LLM stage at a time (default 2,048). Memory beyond the
        column itself is one chunk's vectors and working set plus about 60
        bytes a row, so a smaller chunk lowers the peak: the default
        embedder's word and character n-grams of 8,192 long reviews took
        about 0.5 GiB, of 2,048 about a quarter of that.
    """

    llm: Any = None
    embedder: Any = None
    proxy: str = "lr"
    sample_size: int = DEFAULT_SAMPLE_SIZE
    seed: int = 0
    cache_dir: Any = None
    target: float | None = DEFAULT_TARGET
    delta: float = DEFAULT_DELTA
    metric: str = "accuracy"
    calibration_share: float = 0.5
    max_llm_calls: int | None = None
    max_cost: float | None = None
    fallback: str = "llm"
    progress: bool | None = None
    chunk_size: int = 2048
    rpm: float | None = None
    tpm: float | None = None
    embeddings: str | None = None
    long_texts: str = "truncate"

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _int(name: str, value: Any, *, minimum: int, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{name} must be an integer >= {minimum}, got {value!r}."
        raise InvalidArgumentError(msg)
    if value < minimum:
        msg = f"{name} must be an integer >= {minimum}, got {value!r}."
        raise InvalidArgumentError(msg)
    return int(value)


def _share(name: str, value: Any, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{name} must be a number between {low} and {high}, got {value!r}."
        raise InvalidArgumentError(msg)
    v = float(value)
    if not (low < v < high) or math.isnan(v):
        msg = f"{name} must be strictly between {low} and {high}, got {value!r}."
        raise InvalidArgumentError(msg)
    return v


def make_options(**kwargs: Any) -> Options:
    """Validate keyword options and return an :class:`Options`.

    Unknown names raise an error that lists the accepted ones.
    """
    unknown = sorted(set(kwargs) - set(Options.names()))
    if unknown:
        msg = (
            f"unknown option(s) {unknown}; accepted options are "
            f"{sorted(Options.names())}."
        )
        raise InvalidArgumentError(msg)
    o = dict(kwargs)
    if "proxy" in o and o["proxy"] not in (*PROXY_NAMES, AUTO):
        msg = (
            f"proxy must be one of {list(PROXY_NAMES)}, got {o['proxy']!r}; "
            f"{AUTO!r} lets cross-validation choose among them."
        )
        raise InvalidArgumentError(msg)
    if "sample_size" in o:
        o["sample_size"] = _int("sample_size", o["sample_size"], minimum=2)
    if "seed" in o:
        o["seed"] = _int("seed", o["seed"], minimum=0)
    if "target" in o and o["target"] is not None:
        o["target"] = _share("target", o["target"], low=0.0, high=1.0)
    if "delta" in o:
        o["delta"] = _share("delta", o["delta"], low=0.0, high=1.0)
    if "calibration_share" in o:
        o["calibration_share"] = _share(
            "calibration_share", o["calibration_share"], low=0.0, high=1.0
        )
    if "max_llm_calls" in o:
        o["max_llm_calls"] = _int(
            "max_llm_calls", o["max_llm_calls"], minimum=0, allow_none=True
        )
    if "max_cost" in o and o["max_cost"] is not None:
        mc = o["max_cost"]
        if isinstance(mc, bool) or not isinstance(mc, numbers.Real) or mc < 0:
            msg = f"max_cost must be a number of dollars >= 0 or None, got {mc!r}."
            raise InvalidArgumentError(msg)
        o["max_cost"] = float(mc)
    if "metric" in o and o["metric"] not in METRICS:
        msg = f"metric must be one of {list(METRICS)}, got {o['metric']!r}."
        raise InvalidArgumentError(msg)
    if "fallback" in o and o["fallback"] not in FALLBACKS:
        msg = f"fallback must be one of {list(FALLBACKS)}, got {o['fallback']!r}."
        raise InvalidArgumentError(msg)
    if "chunk_size" in o:
        o["chunk_size"] = _int("chunk_size", o["chunk_size"], minimum=1)
    for rate in ("rpm", "tpm"):
        if rate in o and o[rate] is not None:
            v = o[rate]
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or v <= 0:
                msg = f"{rate} must be a positive number or None, got {v!r}."
                raise InvalidArgumentError(msg)
    if "cache_dir" in o and o["cache_dir"] not in (None, False):
        if not isinstance(o["cache_dir"], (str, os.PathLike)):
            msg = (
                "cache_dir must be a folder path, None (default location) or False "
                f"(no disk cache), got {type(o['cache_dir']).__name__}."
            )
            raise InvalidArgumentError(msg)
    if o.get("embeddings") is not None:
        if not isinstance(o["embeddings"], str) or not o["embeddings"]:
            msg = (
                "embeddings must be the name of a column of vectors (str) or None, "
                f"got {o['embeddings']!r}."
            )
            raise InvalidArgumentError(msg)
        if o.get("embedder") is not None:
            msg = (
                f"embeddings={o['embeddings']!r} uses precomputed vectors, so no "
                "embedder is called; pass embedder= or embeddings=, not both."
            )
            raise InvalidArgumentError(msg)
    if "long_texts" in o and o["long_texts"] not in LONG_TEXT_POLICIES:
        msg = (
            f"long_texts must be one of {list(LONG_TEXT_POLICIES)}, "
            f"got {o['long_texts']!r}."
        )
        raise InvalidArgumentError(msg)
    if "progress" in o and o["progress"] not in (None, True, False):
        raise InvalidArgumentError(f"progress must be True, False or None, got {o['progress']!r}.")
    return Options(**o)
