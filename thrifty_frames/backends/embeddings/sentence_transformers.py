"""sentence-transformers models as the embedder (optional extra).

Install without a CUDA build of torch (about 2.7 GB) by asking for the CPU
build of torch first, or in the same command::

    pip install torch==2.13.0 'thrifty-frames[sentence-transformers]'

or install torch from PyTorch's CPU-only wheel index first (the
``--index-url .../whl/cpu`` line of PyTorch's install page), then
``pip install 'thrifty-frames[sentence-transformers]'``. A plain
``pip install sentence-transformers`` on Linux pulls the CUDA build.
"""

from __future__ import annotations

import numpy as np

from ...exceptions import InvalidArgumentError, MissingDependencyError
from .base import Embedder

#: Characters per token assumed when turning a model's token window into
#: ``max_chars`` (English prose averages about four).
CHARS_PER_TOKEN = 4

_INSTALL = (
    "sentence-transformers is not installed; run: pip install torch==2.13.0 "
    "'thrifty-frames[sentence-transformers]' (asking for torch first keeps the "
    "CPU build; without it pip may fetch a 2.7 GB CUDA build)."
)


def import_sentence_transformers():
    """Import the optional package, or raise an error naming the pip command."""
    try:
        import sentence_transformers
    except ImportError as exc:
        raise MissingDependencyError(_INSTALL) from exc
    return sentence_transformers


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model, on CPU by default.

    Parameters
    ----------
    model : str or SentenceTransformer
        A model name or folder (loaded lazily, on first use), or a loaded
        ``SentenceTransformer``.
    device : str, default "cpu"
        Where the model runs.
    batch_size : int, default 64
        Texts per ``encode`` call.
    normalize : bool, default True
        Scale vectors to unit length.
    id : str, optional
        Cache identity; required when ``model`` is a loaded object.

    Notes
    -----
    The model itself truncates at its token window (``max_seq_length``);
    ``max_chars`` is that window times :data:`CHARS_PER_TOKEN`, so texts past
    it are counted in the report, and handled by ``long_texts``.

    Examples
    --------
    >>> emb = SentenceTransformerEmbedder("all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> emb.embed(["a fine film"]).shape  # doctest: +SKIP
    (1, 384)
    """

    batch_size = 64

    def __init__(
        self,
        model,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        normalize: bool = True,
        id: str | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            msg = f"batch_size must be an integer >= 1, got {batch_size!r}."
            raise InvalidArgumentError(msg)
        if not isinstance(model, str) and id is None:
            msg = (
                "id= is required when model is a loaded SentenceTransformer (it keys "
                "the embedding cache); pass e.g. id='st/all-MiniLM-L6-v2'."
            )
            raise InvalidArgumentError(msg)
        import_sentence_transformers()  # fail now, not at the first batch
        self.device = device
        self.batch_size = batch_size
        self.normalize = bool(normalize)
        self._model = None if isinstance(model, str) else model
        self.model_name = model if isinstance(model, str) else None
        norm = "norm" if self.normalize else "raw"
        self.id = id or f"sentence-transformers/{model}/{norm}"
        if self._model is not None:
            self._describe(self._model)

    def _describe(self, model) -> None:
        # TODO: count long texts in tokens with the model's tokenizer; the
        # character estimate misses texts dense in tokens (code, many numbers).
        self._dim = int(model.get_sentence_embedding_dimension())
        window = getattr(model, "max_seq_length", None)
        self._max_chars = int(window) * CHARS_PER_TOKEN if window else None

    @property
    def dim(self) -> int:
        """Output width (loads the model)."""
        _ = self.model
        return self._dim

    @property
    def max_chars(self) -> int | None:
        """The model's token window in characters (loads the model)."""
        _ = self.model
        return self._max_chars

    @property
    def model(self):
        """The loaded model (loaded on first access)."""
        if self._model is None:
            st = import_sentence_transformers()
            self._model = st.SentenceTransformer(self.model_name, device=self.device)
            self._describe(self._model)
        return self._model

    def load(self) -> SentenceTransformerEmbedder:
        """Load the model now (it sets :attr:`dim` and :attr:`max_chars`)."""
        _ = self.model
        return self

    def embed(self, texts: list[str]) -> np.ndarray:
        out = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)
