"""Embedders: the offline default, litellm models, callables."""

from __future__ import annotations

from ...exceptions import InvalidArgumentError
from .base import Embedder, Matrix


def default_embedder() -> Embedder:
    """The embedded offline default (hashed n-grams, no model weights)."""
    from .hashing import HashingEmbedder

    return HashingEmbedder()


def resolve_embedder(spec: object) -> Embedder:
    """Turn the user's ``embedder=`` into an :class:`Embedder`."""
    if spec is None:
        return default_embedder()
    if isinstance(spec, Embedder):
        return spec
    if isinstance(spec, str):
        if spec in ("hashing", "local", "offline"):
            return default_embedder()
        if not spec.strip():
            raise InvalidArgumentError("embedder must not be an empty string.")
        from .litellm_embedder import LiteLLMEmbedder

        return LiteLLMEmbedder(spec)
    if callable(spec):
        from .callable import CallableEmbedder

        return CallableEmbedder(spec)
    msg = (
        "embedder must be None (offline default), a litellm embedding model string "
        "such as 'openai/text-embedding-3-small', an Embedder or a callable; got "
        f"{type(spec).__name__}."
    )
    raise InvalidArgumentError(msg)


__all__ = ["Embedder", "Matrix", "default_embedder", "resolve_embedder"]
