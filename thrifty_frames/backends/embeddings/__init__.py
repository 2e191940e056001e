"""Embedders: the offline default, litellm models, sentence-transformers, callables.

Every embedder follows :class:`~thrifty_frames.backends.embeddings.base.Embedder`.
``embedder=`` accepts:

- ``None`` or ``"hashing"``: the offline default (hashed n-grams, no weights);
- ``"st:<model>"``: a sentence-transformers model (optional extra);
- any other string: a litellm embedding model, e.g.
  ``"openai/text-embedding-3-small"``;
- an ``Embedder``, a loaded ``SentenceTransformer``, or a callable mapping a
  list of texts to a 2-D array.
"""

from __future__ import annotations

import builtins

from ...exceptions import InvalidArgumentError
from .base import Embedder, Matrix

_ST_PREFIX = "st:"


def default_embedder() -> Embedder:
    """The embedded offline default (hashed n-grams, no model weights)."""
    from .hashing import HashingEmbedder

    return HashingEmbedder()


def _looks_like_sentence_transformer(obj: object) -> bool:
    return (
        type(obj).__name__ == "SentenceTransformer"
        and hasattr(obj, "encode")
        and hasattr(obj, "get_sentence_embedding_dimension")
    )


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
        if spec.startswith(_ST_PREFIX):
            from .sentence_transformers import SentenceTransformerEmbedder

            return SentenceTransformerEmbedder(spec[len(_ST_PREFIX) :])
        from .litellm_embedder import LiteLLMEmbedder

        return LiteLLMEmbedder(spec)
    if _looks_like_sentence_transformer(spec):
        from .sentence_transformers import SentenceTransformerEmbedder

        name = getattr(getattr(spec, "model_card_data", None), "base_model", None)
        if not name:
            msg = (
                "a loaded SentenceTransformer has no name to key the embedding cache; "
                "wrap it: embedder=SentenceTransformerEmbedder(model, id='st/<name>')."
            )
            raise InvalidArgumentError(msg)
        return SentenceTransformerEmbedder(spec, id=f"sentence-transformers/{name}")
    # Not the bare name: importing the submodule ``.callable`` shadows the builtin here.
    if builtins.callable(spec):
        from .callable import CallableEmbedder

        return CallableEmbedder(spec)
    msg = (
        "embedder must be None (offline default), a litellm embedding model string "
        "such as 'openai/text-embedding-3-small', 'st:<sentence-transformers model>', "
        f"an Embedder or a callable; got {type(spec).__name__}."
    )
    raise InvalidArgumentError(msg)


__all__ = ["Embedder", "Matrix", "default_embedder", "resolve_embedder"]
