"""Test doubles for the LLM. They are not language models.

:class:`RuleLLMDouble` answers by applying a Python rule to the row's text;
tests and examples use it to run the whole pipeline deterministically, with
no model and no network, while counting calls like a paid backend would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .base import Completion, LabelRequest, LLMBackend


class RuleLLMDouble(LLMBackend):
    """A test double: answers ``rule(text)`` for each request and counts calls.

    Parameters
    ----------
    rule
        Maps the row's input text to the answer string (it may return text
        outside the allowed labels to exercise parsing).
    id
        Cache identity.
    fail_after
        Raise ``KeyboardInterrupt`` on this call number (1-based), to simulate
        a user stopping a run halfway.
    """

    constrained = False

    def __init__(
        self,
        rule: Callable[[str], str],
        *,
        id: str = "double/rule",
        max_concurrency: int = 1,
        fail_after: int | None = None,
        cost_per_call: float = 0.0,
        record: bool = True,
    ) -> None:
        self.rule = rule
        self.record = record
        self.id = id
        self.max_concurrency = max_concurrency
        self.fail_after = fail_after
        self.cost_per_call = cost_per_call
        self.calls = 0
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def complete(self, request: LabelRequest) -> Completion:
        with self._lock:
            self.calls += 1
            n = self.calls
            if self.record:  # memory measurements turn the record off
                self.seen.append(request.text or "")
        if self.fail_after is not None and n >= self.fail_after:
            raise KeyboardInterrupt
        return Completion(
            text=self.rule(request.text or ""),
            prompt_tokens=self.count_tokens(request.messages),
            completion_tokens=1,
            cost=self.cost_per_call,
        )

    def estimate_cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self.cost_per_call
