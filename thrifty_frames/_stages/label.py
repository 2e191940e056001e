"""Label stage: ask the LLM about distinct inputs, with cache, budget and retries.

Every distinct input (the rendered user message) is asked about at most once
per cache. Answers are written to the cache as they arrive, so a crash, a
Ctrl-C or a killed process loses nothing that was paid for, and a re-run makes
exactly the calls that are still missing.

Per distinct input, the outcome is one of:

``llm``
    answered in this run.
``cache``
    answered by an earlier run (or an identical input in this one).
``unparseable``
    the answer was outside the allowed labels, and so was the answer to one
    corrective follow-up. Cached as such, so it is never paid for twice.
``error``
    the provider refused the input, or transient failures (429, 5xx,
    timeouts, dropped connections) outlasted the retries. Not cached: a later
    run asks again.
``over_budget``
    not asked because ``max_llm_calls`` or ``max_cost`` would have been
    exceeded.

When a cap or a failure strikes between an unparseable answer and its
corrective follow-up, the first answer is cached and a later run makes only
the follow-up.

Every HTTP request counts as a call against ``max_llm_calls``, retries
included, and is reserved before it is sent, so the cap holds even with
requests in flight.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .._core.task import Task
from ..backends.llm.base import (
    Completion,
    InputRejectedError,
    LabelRequest,
    LLMBackend,
    TransientBackendError,
)
from ..cache import LabelCache, digest
from .parse import parse_answer

logger = logging.getLogger(__name__)

# Outcome of one distinct input (see the module docstring).
OK = "llm"
CACHED = "cache"
UNPARSEABLE = "unparseable"
FAILED = "error"
SKIPPED = "over_budget"

# Cache record states.
_DONE = "done"
_NEEDS_CORRECTION = "needs_correction"

__all__ = [
    "Budget",
    "LabelSettings",
    "LabelStats",
    "RateLimiter",
    "TransientBackendError",
    "cache_key",
    "label_distinct",
]


@dataclass
class Budget:
    """Hard caps on LLM calls and dollars, shared by every stage of one run.

    A call is reserved before it is made, so a cap is never exceeded, even with
    requests in flight. Costs are reserved at an upper estimate (the prompt
    plus the backend's ``answer_tokens``) and settled at the actual figure.
    """

    max_calls: int | None = None
    max_cost: float | None = None
    calls: int = 0
    cost: float = 0.0
    _reserved_cost: float = 0.0
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reserve(self, cost_estimate: float) -> bool:
        with self._lock:
            if self.max_calls is not None and self.calls >= self.max_calls:
                self.refused += 1
                return False
            spent = self.cost + self._reserved_cost + cost_estimate
            if self.max_cost is not None and spent > self.max_cost:
                self.refused += 1
                return False
            self.calls += 1
            self._reserved_cost += cost_estimate
            return True

    def settle(self, estimate: float, actual: float) -> None:
        with self._lock:
            self._reserved_cost -= estimate
            self.cost += actual

    @property
    def calls_left(self) -> int | None:
        if self.max_calls is None:
            return None
        return max(self.max_calls - self.calls, 0)


@dataclass
class LabelStats:
    """Counts for the report."""

    asked: int = 0  # distinct inputs looked at
    cache_hits: int = 0
    llm_calls: int = 0  # requests sent, corrective and transient retries included
    retries_corrective: int = 0
    retries_transient: int = 0
    unparseable: int = 0
    failed: int = 0
    over_budget: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    seconds: float = 0.0

    def add(self, other: LabelStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits (sliding one-minute
    window), plus a shared pause after a server's ``Retry-After``."""

    rpm: float | None = None
    tpm: float | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _events: list = field(default_factory=list, repr=False)
    _pause_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def pause(self, seconds: float) -> None:
        """Hold every worker back for ``seconds`` (the server asked for it)."""
        with self._lock:
            self._pause_until = max(self._pause_until, self.clock() + seconds)

    def acquire(self, tokens: int) -> None:
        while True:
            with self._lock:
                now = self.clock()
                wait_for = self._pause_until - now
                if wait_for <= 0 and self.rpm is None and self.tpm is None:
                    return
                if wait_for <= 0:
                    self._events = [(t, n) for t, n in self._events if now - t < 60.0]
                    used_r = len(self._events)
                    used_t = sum(n for _, n in self._events)
                    ok_r = self.rpm is None or used_r + 1 <= self.rpm
                    # A prompt larger than the whole tpm still goes, alone.
                    ok_t = self.tpm is None or used_t + tokens <= self.tpm or not used_r
                    if ok_r and ok_t:
                        self._events.append((now, tokens))
                        return
                    wait_for = 60.0 - (now - self._events[0][0]) + 0.01
            self.sleep(min(max(wait_for, 0.01), 5.0))


@dataclass
class LabelSettings:
    """How calls are retried, paced and shown.

    Transient failures are retried up to ``max_retries`` times, waiting
    ``backoff_base * 2**k`` seconds (capped at ``backoff_max``) times a random
    factor in [0.5, 1.5), and never less than the server's ``Retry-After``
    (itself capped at ``retry_after_max``).
    """

    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    progress: bool | None = None  # None: only on a terminal or in a notebook
    rate: RateLimiter = field(default_factory=RateLimiter)
    sleep: Callable[[float], None] = time.sleep

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay *= 0.5 + random.random()
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), self.retry_after_max))
        return delay


def cache_key(backend: LLMBackend, task: Task, text: str) -> str:
    return digest("label", backend.id, task.identity(), text)


class _Refused(Exception):
    """A cap stopped the call before it was sent."""


class _Asker:
    """Asks about one input at a time; shared by the worker threads of a stage."""

    def __init__(
        self,
        task: Task,
        backend: LLMBackend,
        cache: LabelCache,
        budget: Budget,
        settings: LabelSettings,
        stats: LabelStats,
    ) -> None:
        self.task = task
        self.backend = backend
        self.cache = cache
        self.budget = budget
        self.settings = settings
        self.stats = stats
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def call(self, request: LabelRequest) -> Completion:
        """One answer, retrying transient failures; every request is budgeted.

        Raises :class:`_Refused` when a cap forbids the next request,
        :class:`InputRejectedError` or a spent :class:`TransientBackendError`
        when the input cannot be answered, and any other ``BackendError`` when
        the backend is unusable.
        """
        # The retry loop is written out rather than delegated (e.g. to
        # tenacity) because each attempt must pass the budget and the rate
        # limiter before it is sent, and Retry-After pauses every worker.
        tokens = self.backend.count_tokens(request.messages)
        estimate = self.backend.estimate_cost(tokens, self.backend.answer_tokens)
        attempt = 0
        while True:
            if self.stop.is_set() or not self.budget.reserve(estimate):
                raise _Refused
            self.settings.rate.acquire(tokens)
            try:
                comp = self.backend.complete(request)
            except TransientBackendError as exc:
                self.budget.settle(estimate, 0.0)
                attempt += 1
                with self.lock:
                    self.stats.llm_calls += 1
                if attempt > self.settings.max_retries:
                    raise
                with self.lock:
                    self.stats.retries_transient += 1
                delay = self.settings.backoff(attempt, exc.retry_after)
                if exc.retry_after is not None:
                    self.settings.rate.pause(delay)
                logger.debug("transient LLM failure, retry %d in %.2fs", attempt, delay)
                self.settings.sleep(delay)
                continue
            except BaseException:
                self.budget.settle(estimate, 0.0)
                with self.lock:
                    self.stats.llm_calls += 1
                raise
            self.budget.settle(estimate, comp.cost)
            with self.lock:
                self.stats.llm_calls += 1
                self.stats.prompt_tokens += comp.prompt_tokens
                self.stats.completion_tokens += comp.completion_tokens
                self.stats.cost += comp.cost
            return comp

    def ask(self, text: str, key: str, pending: str | None) -> tuple[str | None, str]:
        """Label one input; ``pending`` is a cached first answer awaiting correction."""
        task = self.task
        raw = pending
        try:
            if raw is None:
                request = LabelRequest(
                    task.messages(text), task.classes, text, task.question
                )
                raw = self.call(request).text
                answer = parse_answer(raw, task.classes)
                if answer is not None:
                    self.cache.put(key, {"label": answer, "status": _DONE})
                    return answer, OK
            with self.lock:
                self.stats.retries_corrective += 1
            request = LabelRequest(
                task.corrective(text, raw or ""), task.classes, text, task.question
            )
            try:
                fixed = self.call(request).text
            except (_Refused, InputRejectedError, TransientBackendError):
                # Keep the first answer, paid for: a later run sends only the
                # follow-up.
                record = {"label": None, "status": _NEEDS_CORRECTION, "answer": raw}
                self.cache.put(key, record)
                raise
        except _Refused:
            return None, SKIPPED
        except (InputRejectedError, TransientBackendError) as exc:
            logger.debug("LLM call failed for good: %s", exc)
            return None, FAILED
        answer = parse_answer(fixed, task.classes)
        self.cache.put(key, {"label": answer, "status": _DONE})
        return answer, OK if answer is not None else UNPARSEABLE


def _progress(total: int, enabled: bool | None, desc: str):
    from .._core.progress import make_bar

    return make_bar(total, enabled, desc)


def _exhausted(budget: Budget) -> bool:
    """No call may be made any more: the call cap is used up, or a cap has
    refused a call (then no later call of the run is made either, whatever it
    would cost, so the inputs asked stay a prefix of the priority order)."""
    return budget.calls_left == 0 or budget.refused > 0


def label_distinct(
    texts: Sequence[str],
    task: Task,
    backend: LLMBackend,
    cache: LabelCache,
    budget: Budget,
    settings: LabelSettings,
    *,
    desc: str = "labeling",
    bar=None,
) -> tuple[list[str | None], list[str], LabelStats]:
    """Label each distinct input once.

    Parameters
    ----------
    texts
        Distinct inputs (what goes into the user message), in priority order:
        when a cap stops the run, the earlier ones have been asked.
    bar
        A progress bar shared by several calls (one per chunk), counting
        inputs: cache hits and answers both advance it, and it is left open.
        None: this call makes its own bar over the inputs it must ask.

    Returns
    -------
    labels, outcomes, stats
        One label (or None) and one outcome code per input.
    """
    t0 = time.perf_counter()
    stats = LabelStats(asked=len(texts))
    labels: list[str | None] = [None] * len(texts)
    outcomes: list[str] = [SKIPPED] * len(texts)
    keys = [cache_key(backend, task, t) for t in texts]
    found = cache.get_many(keys)
    todo: list[tuple[int, str | None]] = []
    for i, k in enumerate(keys):
        rec = found.get(k)
        if rec is None:
            todo.append((i, None))
        elif rec.get("status") == _NEEDS_CORRECTION:
            todo.append((i, rec.get("answer") or ""))
        else:
            stats.cache_hits += 1
            labels[i] = rec.get("label")
            outcomes[i] = CACHED if labels[i] is not None else UNPARSEABLE
    own_bar = bar is None
    if not own_bar:
        bar.update(stats.cache_hits)
    if todo and not _exhausted(budget):
        asker = _Asker(task, backend, cache, budget, settings, stats)

        def one(item: tuple[int, str | None]) -> None:
            i, pending = item
            labels[i], outcomes[i] = asker.ask(texts[i], keys[i], pending)

        if own_bar:
            bar = _progress(len(todo), settings.progress, desc)
        try:
            workers = max(1, int(backend.max_concurrency))
            _run_all(todo, one, workers, budget, bar, asker.stop)
        finally:
            if own_bar:
                bar.close()
    stats.unparseable = outcomes.count(UNPARSEABLE)
    stats.failed = outcomes.count(FAILED)
    stats.over_budget = outcomes.count(SKIPPED)
    stats.seconds = time.perf_counter() - t0
    logger.debug(
        "%s: %d inputs, %d cache hits, %d calls",
        desc,
        len(texts),
        stats.cache_hits,
        stats.llm_calls,
    )
    return labels, outcomes, stats


def _run_all(
    todo, one, workers: int, budget: Budget, bar, stop: threading.Event
) -> None:
    """Run ``one`` over ``todo``, ``workers`` at a time, until done or refused.

    On any exception (a fatal backend error, KeyboardInterrupt) no new request
    starts, requests in flight finish and are cached, and the exception goes on.
    """
    refused_before = budget.refused

    def refused() -> bool:
        return budget.refused > refused_before

    if workers == 1:
        for item in todo:
            one(item)
            bar.update(1)
            if refused():
                break
        return
    # The first input goes alone: a bad key or model fails once rather than once
    # per worker, a provider that rejects the JSON schema is found out before
    # the others ask, and the client libraries build their HTTP client once.
    items = iter(todo)
    one(next(items))
    bar.update(1)
    if refused():
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="thrifty-llm")
    pending: set[Future] = set()
    try:
        while True:
            while len(pending) < workers * 2 and not refused():
                item = next(items, None)
                if item is None:
                    break
                pending.add(pool.submit(one, item))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()
                bar.update(1)
    except BaseException:
        stop.set()
        for f in pending:
            f.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
