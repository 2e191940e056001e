"""The LLM backend protocol.

A backend answers one :class:`LabelRequest` at a time; the labeling stage runs
many at once on a thread pool (``max_concurrency``), parses the answers, and
owns caching, budgets and retries on unparseable answers. A backend only has to
turn messages into text, and say what the call cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ...exceptions import BackendError


class TransientBackendError(BackendError):
    """A failure worth retrying: rate limit (429), server error (5xx), timeout,
    dropped connection.

    The labeling stage retries it with exponential backoff and jitter, waiting
    at least ``retry_after`` seconds when the server asked for that. Raise it
    from your own ``llm=`` function to get the same retries.
    """

    def __init__(self, msg: str, retry_after: float | None = None) -> None:
        super().__init__(msg)
        self.retry_after = retry_after


class InputRejectedError(BackendError):
    """The provider refused this one input (too long, content policy, a 400).

    The input's rows get no LLM label (outcome ``error``) and the run goes on;
    nothing is cached, so a later run asks again. Any other
    :class:`~thrifty_frames.exceptions.BackendError` (bad key, unknown model)
    stops the run, keeping every answer already paid for in the cache.
    """


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
    #: The task's question when it is asked of one text column (None for a
    #: multi-column template, whose rendered text holds the question). Lets a
    #: backend phrase the request its own way, as the small offline model must.
    question: str | None = None


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
    #: Upper bound on answer tokens used to reserve a call's cost before it is
    #: made (a backend that caps its answers should set its cap here).
    answer_tokens: int = 32

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
