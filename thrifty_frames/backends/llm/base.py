"""The LLM backend protocol.

A backend answers one :class:`LabelRequest` at a time; the labeling stage runs
many at once on a thread pool (``max_concurrency``), parses the answers, and
owns caching, budgets and retries on unparseable answers. A backend only has to
turn messages into text, and say what the call cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LabelRequest:
    """One question for the LLM.

    Attributes
    ----------
    messages
        Chat messages, ``{"role": ..., "content": ...}`` dicts.
    choices
        The exact answers allowed. A backend that can constrain decoding (a
        JSON-schema enum or a grammar) should restrict the answer to these.
    text
        The row's input as it appears inside the user message.
    """

    messages: tuple[dict, ...]
    choices: tuple[str, ...]
    #: The row's own input (text or rendered template), for backends that need
    #: to shorten it to fit a context window, and for test doubles.
    text: str | None = None


@dataclass
class Completion:
    """What a backend returned for one request."""

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    meta: dict = field(default_factory=dict)


class LLMBackend(ABC):
    """Base class of LLM backends.

    Subclasses set :attr:`id` (stable across processes: it is part of every
    cache key) and implement :meth:`complete`.
    """

    #: Stable identifier, part of the label cache key.
    id: str = "abstract"
    #: How many requests the labeling stage may run at once.
    max_concurrency: int = 1
    #: True when answers are guaranteed to be one of ``request.choices``.
    constrained: bool = False

    @abstractmethod
    def complete(self, request: LabelRequest) -> Completion:
        """Answer one request; raise :class:`~thrifty_frames.exceptions.BackendError`
        when the call failed after the backend's own retries."""

    def estimate_cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollar cost of a call of this size; local models cost nothing."""
        return 0.0

    def count_tokens(self, messages: tuple[dict, ...]) -> int:
        """Rough prompt size in tokens (about four characters a token)."""
        return sum(len(m.get("content") or "") for m in messages) // 4 + 4

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"
