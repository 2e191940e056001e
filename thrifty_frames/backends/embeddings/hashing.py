"""The offline default embedder: hashed word and character n-grams.

:class:`HashingEmbedder` needs no model weights, no network and no fitting. A
text always maps to the same sparse vector, in any process, so proxies trained
on its vectors can be saved and applied to new data later. The choice of
settings is justified by ``benchmarks/results/embedders.md``.

Each block of features (word n-grams, character n-grams) is hashed into its own
``n_features`` columns, term counts are damped to ``1 + log(count)`` and the
block is scaled to unit length; with two blocks each is then multiplied by
``1 / sqrt(2)`` so that every non-empty row has unit length.
"""

from __future__ import annotations

import math
import re

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from thrifty_frames.backends.embeddings.base import Embedder
from thrifty_frames.exceptions import InvalidArgumentError

__all__ = ["HashingEmbedder"]

# Raw HTML line breaks (``<br />``, ``<BR>``, ``<br/>``) as found in scraped
# reviews; left in, they hash into the spurious tokens "br" and "<br".
_HTML_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)

# Bump when a change alters the vector of any text under the same settings.
_VERSION = "v1"


def strip_html_breaks(text: str) -> str:
    """Replace HTML line breaks in ``text`` with a space.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        ``text`` with every ``<br>``, ``<br/>`` or ``<br />`` (any case)
        replaced by one space.

    Examples
    --------
    >>> strip_html_breaks("Great film.<br /><br />Loved it.")
    'Great film.  Loved it.'
    """
    if "<" not in text:
        return text
    return _HTML_BREAK.sub(" ", text)


class HashingEmbedder(Embedder):
    """Embed texts as hashed, sublinear, L2-normalised n-gram counts.

    Stateless: nothing is learned from the corpus, so the same text gives the
    same vector in every instance built with the same settings.

    Parameters
    ----------
    word_ngrams : tuple of (int, int) or None, default (1, 2)
        Smallest and largest word n-gram to hash; None leaves words out.
    char_ngrams : tuple of (int, int) or None, default (2, 5)
        Smallest and largest character n-gram, taken inside word boundaries
        (scikit-learn's ``char_wb``); None leaves characters out.
    n_features : int, default 2**20
        Columns per block. The output has ``n_features`` columns per block.
    alternate_sign : bool, default False
        Give each hashed feature a sign drawn from its hash, so collisions
        tend to cancel instead of adding up.
    sublinear_tf : bool, default True
        Replace a count ``c`` by ``1 + log(c)``.
    lowercase : bool, default True
        Lower-case texts before hashing.

    Attributes
    ----------
    id : str
        Every setting, e.g.
        ``"hashing/word1-2+char2-5/2^20/sublinear/unsigned/lower/v1"``.
    dim : int
        Number of output columns.

    Examples
    --------
    >>> emb = HashingEmbedder()
    >>> X = emb.embed(["A fine film.", ""])
    >>> X.shape == (2, emb.dim), X.dtype.name, X[1].nnz
    (True, 'float32', 0)
    """

    cacheable = False
    batch_size = 2048

    def __init__(
        self,
        *,
        word_ngrams: tuple[int, int] | None = (1, 2),
        char_ngrams: tuple[int, int] | None = (2, 5),
        n_features: int = 2**20,
        alternate_sign: bool = False,
        sublinear_tf: bool = True,
        lowercase: bool = True,
    ) -> None:
        word_ngrams = _check_ngrams("word_ngrams", word_ngrams)
        char_ngrams = _check_ngrams("char_ngrams", char_ngrams)
        if word_ngrams is None and char_ngrams is None:
            msg = (
                "word_ngrams and char_ngrams are both None; set at least one, "
                "e.g. word_ngrams=(1, 2)."
            )
            raise InvalidArgumentError(msg)
        if isinstance(n_features, bool) or not isinstance(n_features, int):
            msg = f"n_features must be an int, got {type(n_features).__name__}."
            raise InvalidArgumentError(msg)
        if not 1 <= n_features <= 2**31 - 1:
            msg = f"n_features must be between 1 and 2**31 - 1, got {n_features}."
            raise InvalidArgumentError(msg)

        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.n_features = n_features
        self.alternate_sign = bool(alternate_sign)
        self.sublinear_tf = bool(sublinear_tf)
        self.lowercase = bool(lowercase)

        self._vectorizers = [
            HashingVectorizer(
                analyzer=analyzer,
                ngram_range=ngrams,
                n_features=n_features,
                alternate_sign=self.alternate_sign,
                lowercase=self.lowercase,
                norm=None,
                dtype=np.float32,
            )
            for analyzer, ngrams in (("word", word_ngrams), ("char_wb", char_ngrams))
            if ngrams is not None
        ]
        self.dim = n_features * len(self._vectorizers)
        self.id = self._make_id()

    def embed(self, texts: list[str]) -> sp.csr_matrix:
        """Embed ``texts``, one row per text, in order.

        Parameters
        ----------
        texts : list of str
            Texts to embed; an empty string gives a row of zeros.

        Returns
        -------
        scipy.sparse.csr_matrix
            Shape ``(len(texts), dim)``, dtype float32.
        """
        if not texts:
            return sp.csr_matrix((0, self.dim), dtype=np.float32)
        cleaned = [strip_html_breaks(text) for text in texts]
        scale = 1.0 / math.sqrt(len(self._vectorizers))
        blocks = []
        for vectorizer in self._vectorizers:
            block = vectorizer.transform(cleaned).tocsr()
            block.eliminate_zeros()  # signed collisions can cancel to 0
            if self.sublinear_tf:
                magnitude = np.abs(block.data)
                block.data = np.sign(block.data) * (1.0 + np.log(magnitude))
            block = normalize(block, norm="l2", copy=False)
            if scale != 1.0:
                block.data *= scale
            blocks.append(block)

        matrix = blocks[0] if len(blocks) == 1 else sp.hstack(blocks, format="csr")
        return sp.csr_matrix(matrix, dtype=np.float32)

    def _make_id(self) -> str:
        parts = []
        if self.word_ngrams is not None:
            parts.append("word{}-{}".format(*self.word_ngrams))
        if self.char_ngrams is not None:
            parts.append("char{}-{}".format(*self.char_ngrams))
        exponent = self.n_features.bit_length() - 1
        if self.n_features == 2**exponent:
            size = f"2^{exponent}"
        else:
            size = str(self.n_features)
        weighting = "sublinear" if self.sublinear_tf else "rawtf"
        sign = "signed" if self.alternate_sign else "unsigned"
        case = "lower" if self.lowercase else "cased"
        return "/".join(
            ["hashing", "+".join(parts), size, weighting, sign, case, _VERSION]
        )


def _check_ngrams(name: str, value: tuple[int, int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
        and 1 <= value[0] <= value[1]
    )
    if not ok:
        msg = (
            f"{name} must be None or a pair (low, high) of ints with "
            f"1 <= low <= high, got {value!r}."
        )
        raise InvalidArgumentError(msg)
    return (value[0], value[1])
