"""Label stage: ask the LLM about distinct inputs, with cache, budget and retries.

Every distinct input (the rendered user message) is asked about at most once
per cache. Answers are written to the cache as they arrive, so a crash or
Ctrl-C loses nothing that was paid for. An answer outside the allowed labels
is retried once with a corrective message; if it is still outside, it is
recorded (and cached) as unparseable and its rows get no LLM label.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ..backends.llm.base import Completion, LabelRequest, LLMBackend
from ..cache import LabelCache, digest
from ..exceptions import BackendError, BudgetExceededError
from .._core.task import Task
from .parse import parse_answer

logger = logging.getLogger(__name__)

# Outcome of one distinct input.
OK = "llm"  # answered by the LLM in this run
CACHED = "cache"  # answered earlier, served from the cache
UNPARSEABLE = "unparseable"  # answered, but outside the labels twice
FAILED = "error"  # the backend failed after its retries
SKIPPED = "over_budget"  # not asked: a cap was reached


class TransientBackendError(BackendError):
    """A failure worth retrying (rate limit, 5xx, timeout, dropped connection).

    ``retry_after`` is the server's requested wait in seconds, when it gave one.
    """

    def __init__(self, msg: str, retry_after: float | None = None) -> None:
        super().__init__(msg)
        self.retry_after = retry_after


@dataclass
class Budget:
    """Hard caps on LLM calls and dollars, shared by every stage of one run.

    A call is reserved before it is made, so a cap is never exceeded, even with
    requests in flight. Costs are reserved at an upper estimate and settled at
    the actual figure afterwards.
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
    llm_calls: int = 0  # calls actually made, retries included
    retries_corrective: int = 0
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
    """Requests-per-minute and tokens-per-minute limits (sliding one-minute window)."""

    rpm: float | None = None
    tpm: float | None = None
    _events: list = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def acquire(self, tokens: int) -> None:
        if self.rpm is None and self.tpm is None:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                self._events = [(t, n) for t, n in self._events if now - t < 60.0]
                used_r = len(self._events)
                used_t = sum(n for _, n in self._events)
                ok_r = self.rpm is None or used_r + 1 <= self.rpm
                ok_t = self.tpm is None or used_t + tokens <= self.tpm or not used_r
                if ok_r and ok_t:
                    self._events.append((now, tokens))
                    return
                wait_for = 60.0 - (now - self._events[0][0]) + 0.01
            time.sleep(min(max(wait_for, 0.01), 5.0))


@dataclass
class LabelSettings:
    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    progress: bool | None = None  # None: only on a terminal or in a notebook
    rate: RateLimiter = field(default_factory=RateLimiter)


def cache_key(backend: LLMBackend, task: Task, text: str) -> str:
    return digest("label", backend.id, task.identity(), text)


def _call_with_retries(
    backend: LLMBackend, request: LabelRequest, settings: LabelSettings
) -> Completion:
    attempt = 0
    while True:
        settings.rate.acquire(backend.count_tokens(request.messages))
        try:
            return backend.complete(request)
        except TransientBackendError as exc:
            attempt += 1
            if attempt > settings.max_retries:
                raise
            delay = min(settings.backoff_max, settings.backoff_base * 2 ** (attempt - 1))
            delay = delay * (0.5 + random.random())  # jitter
            if exc.retry_after is not None:
                delay = max(delay, min(float(exc.retry_after), settings.backoff_max))
            logger.debug("transient LLM failure, retry %d in %.2fs", attempt, delay)
            time.sleep(delay)


def _progress(total: int, enabled: bool | None, desc: str):
    from .._core.progress import make_bar

    return make_bar(total, enabled, desc)


def label_distinct(
    texts: Sequence[str],
    task: Task,
    backend: LLMBackend,
    cache: LabelCache,
    budget: Budget,
    settings: LabelSettings,
    *,
    desc: str = "labeling",
) -> tuple[list[str | None], list[str], LabelStats]:
    """Label each distinct input once.

    Parameters
    ----------
    texts
        Distinct inputs (what goes into the user message), in priority order:
        when a cap stops the run, the earlier ones have been asked.

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
    todo: list[int] = []
    for i, k in enumerate(keys):
        rec = found.get(k)
        if rec is None:
            todo.append(i)
            continue
        stats.cache_hits += 1
        labels[i] = rec.get("label")
        outcomes[i] = CACHED if labels[i] is not None else UNPARSEABLE
        if labels[i] is None:
            stats.unparseable += 1
    if not todo:
        stats.seconds = time.perf_counter() - t0
        return labels, outcomes, stats

    lock = threading.Lock()
    stop = threading.Event()

    def ask(i: int) -> None:
        if stop.is_set():
            return
        text = texts[i]
        messages = task.messages(text)
        request = LabelRequest(messages, task.classes, text)
        answer, raw = None, None
        for round_ in range(2):
            est_tokens = backend.count_tokens(request.messages)
            estimate = backend.estimate_cost(est_tokens, 16)
            if not budget.reserve(estimate):
                with lock:
                    stats.over_budget += 1
                return
            try:
                comp = _call_with_retries(backend, request, settings)
            except BackendError:
                budget.settle(estimate, 0.0)
                with lock:
                    stats.failed += 1
                    stats.llm_calls += 1
                    outcomes[i] = FAILED
                return
            budget.settle(estimate, comp.cost)
            with lock:
                stats.llm_calls += 1
                stats.prompt_tokens += comp.prompt_tokens
                stats.completion_tokens += comp.completion_tokens
                stats.cost += comp.cost
            raw = comp.text
            answer = parse_answer(raw, task.classes)
            if answer is not None or round_ == 1:
                break
            with lock:
                stats.retries_corrective += 1
            request = LabelRequest(task.corrective(text, raw or ""), task.classes, text)
        cache.put(keys[i], {"label": answer})
        with lock:
            labels[i] = answer
            if answer is None:
                outcomes[i] = UNPARSEABLE
                stats.unparseable += 1
            else:
                outcomes[i] = OK

    bar = _progress(len(todo), settings.progress, desc)
    workers = max(1, int(backend.max_concurrency))
    try:
        if workers == 1:
            for i in todo:
                ask(i)
                bar.update(1)
                if budget.refused:
                    break
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="thrifty-llm") as pool:
                pending = set()
                it = iter(todo)
                for i in it:
                    pending.add(pool.submit(ask, i))
                    if len(pending) >= workers * 2:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in done:
                            f.result()
                            bar.update(1)
                        if budget.refused:
                            break
                for f in pending:
                    f.result()
                    bar.update(1)
    except BaseException:
        stop.set()  # KeyboardInterrupt: answers so far are already cached
        raise
    finally:
        bar.close()
    stats.over_budget = sum(1 for o in outcomes if o == SKIPPED)
    stats.seconds = time.perf_counter() - t0
    return labels, outcomes, stats


def check_budget_for_sample(budget: Budget, needed: int) -> None:
    """Raise early when a call cap cannot even cover the labeled sample."""
    if budget.max_calls is not None and budget.max_calls <= 0 < needed:
        msg = (
            "max_llm_calls is 0, so no row can be labeled; raise max_llm_calls or "
            "leave it as None."
        )
        raise BudgetExceededError(msg)
