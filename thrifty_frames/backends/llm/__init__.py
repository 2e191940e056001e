"""LLM backends: the offline default, litellm models, callables, test doubles."""

from __future__ import annotations

import builtins

from ...exceptions import InvalidArgumentError
from .base import (
    Completion,
    InputRejectedError,
    LabelRequest,
    LLMBackend,
    TransientBackendError,
)


def default_local_llm() -> LLMBackend:
    """The embedded offline model (SmolLM2-135M-Instruct run in-process)."""
    from .local import LocalLLM

    return LocalLLM()


def resolve_llm(spec: object) -> LLMBackend:
    """Turn the user's ``llm=`` into a backend.

    ``None`` is the embedded offline model; a string is a litellm model; an
    ``LLMBackend`` is used as is; any other callable is wrapped.
    """
    if spec is None:
        return default_local_llm()
    if isinstance(spec, LLMBackend):
        return spec
    if isinstance(spec, str):
        if not spec.strip():
            raise InvalidArgumentError("llm must not be an empty string.")
        if spec in ("local", "offline"):
            return default_local_llm()
        from .litellm_backend import LiteLLM

        return LiteLLM(spec)
    # builtins.callable: importing the .callable submodule shadows the name here.
    if builtins.callable(spec):
        from .callable import CallableLLM

        return CallableLLM(spec)
    msg = (
        f"llm must be None (offline default), a litellm model string such as "
        f"'openai/gpt-4o-mini', an LLMBackend or a callable; got {type(spec).__name__}."
    )
    raise InvalidArgumentError(msg)


__all__ = [
    "Completion",
    "InputRejectedError",
    "LLMBackend",
    "LabelRequest",
    "TransientBackendError",
    "resolve_llm",
]
