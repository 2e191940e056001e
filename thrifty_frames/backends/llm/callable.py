"""Any Python function as the LLM."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from ...exceptions import BackendError, InvalidArgumentError
from .base import Completion, InputRejectedError, LabelRequest, LLMBackend


class CallableLLM(LLMBackend):
    """Wrap ``fn(messages)`` or ``fn(messages, choices)`` returning the answer text.

    ``messages`` is a list of ``{"role", "content"}`` dicts; ``choices`` (passed
    when ``fn`` has a parameter of that name) is the list of allowed labels.

    Parameters
    ----------
    fn
        The function. An exception it raises marks that input as failed
        (outcome ``error``) and the run goes on; raise
        :class:`~thrifty_frames.backends.llm.base.TransientBackendError` to
        have the call retried with backoff, or another
        :class:`~thrifty_frames.exceptions.BackendError` to stop the run.
    id
        Cache identity. Defaults to the function's module and qualified name:
        give a new ``id`` when the function starts answering differently, or
        the cache will serve the old answers.
    max_concurrency
        How many calls may run at once on threads (1 for functions that are not
        thread-safe).
    """

    def __init__(
        self, fn: Callable, *, id: str | None = None, max_concurrency: int = 4
    ) -> None:
        if not callable(fn):
            raise InvalidArgumentError(
                f"llm must be callable, got {type(fn).__name__}."
            )
        self.fn = fn
        name = getattr(fn, "__qualname__", type(fn).__name__)
        self.id = id or f"callable/{getattr(fn, '__module__', '?')}.{name}"
        self.max_concurrency = max_concurrency
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        self._wants_choices = "choices" in params

    def complete(self, request: LabelRequest) -> Completion:
        messages = [dict(m) for m in request.messages]
        try:
            if self._wants_choices:
                out = self.fn(messages, choices=list(request.choices))
            else:
                out = self.fn(messages)
        except BackendError:
            raise
        except Exception as exc:  # the user's function failed on this input
            msg = f"the llm function raised {type(exc).__name__}"
            raise InputRejectedError(msg) from exc
        if out is not None and not isinstance(out, str):
            out = str(out)
        return Completion(text=out)
