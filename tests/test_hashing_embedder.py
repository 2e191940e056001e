"""Tests of the hashing embedder: stateless, sparse float32, stable ids."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from thrifty_frames.backends.embeddings.base import Embedder
from thrifty_frames.backends.embeddings.hashing import (
    HashingEmbedder,
    strip_html_breaks,
)
from thrifty_frames.exceptions import InvalidArgumentError

TEXTS = [
    "A quietly moving film, beautifully shot.",
    "Dull. I left halfway through.",
    "Stocks rallied after the central bank held rates.",
]


@pytest.fixture(params=[{}, {"char_ngrams": (2, 5)}, {"alternate_sign": True}])
def settings(request) -> dict:
    return request.param


def test_is_an_embedder_that_is_not_cached() -> None:
    embedder = HashingEmbedder()
    assert isinstance(embedder, Embedder)
    assert embedder.cacheable is False


def test_same_text_same_vector_across_instances(settings: dict) -> None:
    first = HashingEmbedder(**settings).embed(TEXTS)
    second = HashingEmbedder(**settings).embed(list(reversed(TEXTS)))[::-1]

    assert (first != second).nnz == 0


def test_vector_does_not_depend_on_the_other_texts_in_the_batch() -> None:
    embedder = HashingEmbedder(char_ngrams=(2, 5))
    alone = embedder.embed([TEXTS[0]])
    in_batch = embedder.embed(TEXTS)[0]

    assert (alone != in_batch).nnz == 0


def test_output_is_sparse_float32_with_unit_rows(settings: dict) -> None:
    embedder = HashingEmbedder(**settings)
    matrix = embedder.embed(TEXTS)

    assert isinstance(matrix, sp.csr_matrix)
    assert matrix.dtype == np.float32
    assert matrix.shape == (len(TEXTS), embedder.dim)
    assert 0 < matrix.nnz < 0.01 * matrix.shape[0] * matrix.shape[1]
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1))).ravel()
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_dim_counts_every_block() -> None:
    assert HashingEmbedder(n_features=2**10).dim == 2**11
    assert HashingEmbedder(n_features=2**10, char_ngrams=None).dim == 2**10


def test_empty_string_gives_a_zero_row(settings: dict) -> None:
    matrix = HashingEmbedder(**settings).embed(["", TEXTS[0], "   "])

    assert matrix.shape[0] == 3
    assert matrix[0].nnz == 0
    assert matrix[2].nnz == 0
    assert matrix[1].nnz > 0


def test_empty_list_gives_an_empty_matrix() -> None:
    embedder = HashingEmbedder()
    matrix = embedder.embed([])

    assert matrix.shape == (0, embedder.dim)


def test_default_id_names_every_setting() -> None:
    assert HashingEmbedder().id == (
        "hashing/word1-2+char2-5/2^20/sublinear/unsigned/lower/v1"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"word_ngrams": (1, 1)},
        {"word_ngrams": None},
        {"char_ngrams": (3, 5)},
        {"char_ngrams": None},
        {"n_features": 2**18},
        {"n_features": 1000},
        {"alternate_sign": True},
        {"sublinear_tf": False},
        {"lowercase": False},
    ],
)
def test_id_changes_with_each_setting(change: dict) -> None:
    base = {"word_ngrams": (1, 2), "char_ngrams": (2, 5), "n_features": 2**20}
    assert HashingEmbedder(**{**base, **change}).id != HashingEmbedder(**base).id


def test_id_is_stable() -> None:
    assert HashingEmbedder(n_features=2**18).id == HashingEmbedder(n_features=2**18).id


@pytest.mark.parametrize(
    "text",
    ["one<br />two", "one<br/>two", "one<br>two", "one<BR />two", "one< br / >two"],
)
def test_strip_html_breaks(text: str) -> None:
    assert strip_html_breaks(text) == "one two"


def test_html_breaks_do_not_reach_the_vector() -> None:
    embedder = HashingEmbedder()
    with_breaks = embedder.embed(["Great film.<br /><br />Loved it."])
    without = embedder.embed(["Great film.  Loved it."])

    assert (with_breaks != without).nnz == 0


def test_other_markup_is_kept() -> None:
    assert strip_html_breaks("a <b>bold</b> move") == "a <b>bold</b> move"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"word_ngrams": None, "char_ngrams": None}, "both None"),
        ({"word_ngrams": (2, 1)}, "word_ngrams must be"),
        ({"char_ngrams": (0, 3)}, "char_ngrams must be"),
        ({"n_features": 0}, "n_features must be between"),
        ({"n_features": 2.0**10}, "n_features must be an int"),
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        HashingEmbedder(**kwargs)
