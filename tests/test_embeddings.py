"""Embedders, precomputed vector columns and the long-text policy.

The LLM is the rule-based test double (not a language model); the litellm and
sentence-transformers embedders are exercised with stand-ins for the network
call and the model, so no test needs a network or model weights.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import thrifty_frames as tf
from thrifty_frames._core.pipeline import run_pipeline
from thrifty_frames._core.task import make_task
from thrifty_frames._stages.embed import PrecomputedVectors, embed_texts
from thrifty_frames.backends.embeddings import resolve_embedder
from thrifty_frames.backends.embeddings.callable import CallableEmbedder
from thrifty_frames.backends.embeddings.hashing import HashingEmbedder
from thrifty_frames.backends.embeddings.litellm_embedder import LiteLLMEmbedder
from thrifty_frames.config import make_options
from thrifty_frames.exceptions import (
    BackendError,
    ColumnNotFoundError,
    ColumnTypeError,
    InvalidArgumentError,
    MissingDependencyError,
)

from .conftest import sentiment_rule
from .test_pandas_frontend import make_reviews, truth


def _vectors(df: pd.DataFrame, dim: int = 8, seed: int = 1) -> np.ndarray:
    """Vectors that carry the double's answer in their first coordinate, plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.3, size=(len(df), dim)).astype(np.float32)
    X[:, 0] += np.where(truth(df), 1.0, -1.0)
    return X


@pytest.fixture
def no_default_embedder(monkeypatch):
    """Any call to the default embedder fails the test."""

    def boom(self, texts):
        raise AssertionError("the embedder was called despite embeddings=")

    monkeypatch.setattr(HashingEmbedder, "embed", boom)


# -- precomputed vectors, pandas ------------------------------------------------
@pytest.mark.parametrize("kind", ["lists", "numpy arrays", "arrow fixed_size_list"])
def test_pandas_precomputed_vectors_call_no_embedder(kind, double_llm, no_default_embedder):
    df = make_reviews(400)
    X = _vectors(df)
    if kind == "lists":
        df["vec"] = [list(map(float, r)) for r in X]
    elif kind == "numpy arrays":
        df["vec"] = pd.Series(list(X), index=df.index, dtype=object)
    else:
        arr = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])
        df["vec"] = pd.Series(arr, dtype=pd.ArrowDtype(arr.type), index=df.index)
    res = df.thrifty.label(
        "Is it positive?", column="review", embeddings="vec", llm=double_llm(),
        sample_size=150, cache_dir=False,
    )
    rep = res.report
    assert rep.embedder == "precomputed column 'vec' (8 dims)"
    assert rep.proxy_used
    assert rep.decided_by["proxy"] > 150
    assert (np.array(res.labels.to_pylist()) == truth(df)).mean() >= 0.97


def test_pandas_precomputed_vectors_allow_missing_vectors_on_null_texts(double_llm):
    df = make_reviews(300)
    vecs = list(_vectors(df))
    df.loc[df.index[::10], "review"] = None
    for i in range(0, len(df), 10):
        vecs[i] = None
    df["vec"] = pd.Series(vecs, index=df.index, dtype=object)
    res = df.thrifty.label(
        "Is it positive?", column="review", embeddings="vec", llm=double_llm(),
        sample_size=100, cache_dir=False,
    )
    assert res.report.null_rows == 30
    assert res.labels.null_count == 30


def test_ragged_vectors_give_an_error_naming_the_column(double_llm):
    df = make_reviews(50)
    vecs = [list(v) for v in _vectors(df, dim=4)]
    vecs[17] = vecs[17][:3]
    df["emb"] = vecs
    with pytest.raises(InvalidArgumentError) as err:
        df.thrifty.label("Is it positive?", column="review", embeddings="emb",
                         llm=double_llm(), sample_size=20, cache_dir=False)
    msg = str(err.value)
    assert "'emb'" in msg and "3 to 4" in msg and "position 17" in msg


def test_missing_vector_where_there_is_text_is_an_error(double_llm):
    df = make_reviews(30)
    vecs = list(_vectors(df, dim=4))
    vecs[5] = None
    df["emb"] = pd.Series(vecs, dtype=object)
    with pytest.raises(InvalidArgumentError, match=r"'emb' has no vector in 1 rows.*position 5"):
        df.thrifty.label("Is it positive?", column="review", embeddings="emb",
                         llm=double_llm(), sample_size=10, cache_dir=False)


def test_non_vector_column_and_unknown_column_are_errors(double_llm):
    df = make_reviews(30)
    with pytest.raises(ColumnTypeError, match="embeddings column 'stars'"):
        df.thrifty.label("Is it positive?", column="review", embeddings="stars",
                         llm=double_llm(), sample_size=10, cache_dir=False)
    with pytest.raises(ColumnNotFoundError, match="'vec' is not in the frame"):
        df.thrifty.label("Is it positive?", column="review", embeddings="vec",
                         llm=double_llm(), sample_size=10, cache_dir=False)


def test_embeddings_and_embedder_together_are_refused():
    with pytest.raises(InvalidArgumentError, match="not both"):
        make_options(embeddings="vec", embedder="hashing")
    with pytest.raises(InvalidArgumentError, match="embeddings must be the name"):
        make_options(embeddings=3)


def test_vectors_with_nan_are_refused():
    arr = pa.array([[1.0, float("nan")], [0.0, 1.0]])
    with pytest.raises(InvalidArgumentError, match="'v' has NaN"):
        PrecomputedVectors(arr, "v")


@pytest.mark.parametrize("bad", [float("inf"), -float("inf"), 1e39])
def test_vectors_beyond_float32_are_refused_before_any_llm_call(bad, double_llm):
    """Vectors are read as float32: an infinity, or a float64 beyond float32's
    range, is refused up front, before the LLM is paid for the sample."""
    with pytest.raises(InvalidArgumentError, match="beyond float32's range"):
        PrecomputedVectors(pa.array([[1.0, bad], [0.0, 1.0]]), "v")
    df = pd.DataFrame({"t": ["a", "b"] * 20, "v": [[1.0, 0.0], [0.0, bad]] * 20})
    llm = double_llm()
    with pytest.raises(InvalidArgumentError, match="'v' has infinite"):
        df.thrifty.label("Is it positive?", column="t", embeddings="v", llm=llm,
                         sample_size=10, cache_dir=False)
    assert llm.calls == 0


def test_precomputed_vectors_read_only_the_rows_asked_for():
    arr = pa.array([[1, 2], [3, 4], [5, 6]], type=pa.list_(pa.int16()))
    pv = PrecomputedVectors(arr, "v")
    X, st = pv.rows(np.array([2, 0]))
    assert X.dtype == np.float32
    assert X.tolist() == [[5.0, 6.0], [1.0, 2.0]]
    assert pv.dim == 2 and st.texts == 2


# -- precomputed vectors, Polars --------------------------------------------------
@pytest.mark.parametrize("dtype", ["list", "array"])
def test_polars_vector_columns_at_the_core(dtype, double_llm, no_default_embedder):
    """Polars ``List`` and ``Array`` columns, as the Polars front end hands them over."""
    df = make_reviews(300)
    X = _vectors(df)
    schema = pl.List(pl.Float32) if dtype == "list" else pl.Array(pl.Float32, X.shape[1])
    frame = pl.DataFrame({"review": df["review"].tolist(), "vec": X.tolist()},
                         schema={"review": pl.String, "vec": schema})
    vectors = frame["vec"].to_arrow()
    assert pa.types.is_large_list(vectors.type) or pa.types.is_fixed_size_list(vectors.type)
    task = make_task("filter", "Is it positive?", None)
    opts = make_options(llm=double_llm(), embeddings="vec", sample_size=100, cache_dir=False,
                        progress=False)
    res = run_pipeline(frame["review"].to_arrow(), task, opts, "label", vectors=vectors)
    assert res.report.embedder == "precomputed column 'vec' (8 dims)"
    assert (np.array(res.labels.to_pylist()) == truth(df)).mean() >= 0.97


def test_polars_front_end_precomputed_vectors(double_llm, no_default_embedder):
    df = make_reviews(300)
    frame = pl.DataFrame({"review": df["review"].tolist(), "vec": _vectors(df).tolist()})
    if not hasattr(frame, "thrifty"):
        pytest.skip("the Polars front end is not registered in this build")
    out = frame.thrifty.classify(
        "Is it positive?", ["yes", "no"], column="review", embeddings="vec",
        llm=double_llm(), sample_size=100, cache_dir=False,
    )
    got = np.asarray(out["label"].to_list()) == "yes"
    assert (got == truth(df)).mean() >= 0.97
    assert tf.last_report().embedder == "precomputed column 'vec' (8 dims)"


def test_embeddings_option_on_a_bare_array_is_explained(double_llm):
    with pytest.raises(InvalidArgumentError, match="names a column of a DataFrame"):
        tf.label(["good", "bad", "fun"], "Is it positive?", embeddings="vec",
                 llm=double_llm(), sample_size=2, cache_dir=False)


# -- long texts ---------------------------------------------------------------
def _counting(dim: int = 3, **kw) -> CallableEmbedder:
    seen: list[str] = []

    def fn(texts):
        seen.extend(texts)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)[:, :dim]

    emb = CallableEmbedder(fn, id="count/v1", **kw)
    emb.seen = seen
    return emb


def test_long_texts_are_truncated_and_counted():
    emb = _counting(max_chars=10)
    X, st = embed_texts(["short", "a" * 25, "b" * 10], emb)
    assert emb.seen == ["short", "a" * 10, "b" * 10]
    assert st.truncated == 1 and st.long.tolist() == [1]
    assert X[1].tolist() == [10.0, 10.0, 1.0]


def test_long_texts_pooled_average_their_pieces():
    emb = _counting(max_chars=10)
    long = "aaaa aaaa bbbb bbbb cc"  # split at spaces: 'aaaa aaaa', ' bbbb', ...
    X, st = embed_texts(["short", long], emb, long_texts="pool")
    pieces = emb.seen[1:]
    assert "".join(pieces) == long and all(len(p) <= 10 for p in pieces)
    expected = np.mean([[len(p), p.count("a"), 1.0] for p in pieces], axis=0)
    np.testing.assert_allclose(X[1], expected, rtol=1e-6)
    assert X[0].tolist() == [5.0, 0.0, 1.0]
    assert st.truncated == 1


def test_pooling_works_for_sparse_embedders():
    emb = HashingEmbedder(n_features=2**10)
    emb.max_chars = 20
    X, st = embed_texts(["fine", "one two three four five six seven"], emb, long_texts="pool")
    assert X.shape == (2, emb.dim) and st.truncated == 1
    assert X[1].nnz > 0


@pytest.mark.parametrize("policy", ["truncate", "pool"])
def test_report_counts_rows_with_long_texts(policy, double_llm):
    df = make_reviews(200)
    df.loc[df.index[:30], "review"] = df["review"].iloc[:30] + " x" * 100
    df.loc[df.index[199], "review"] = df["review"].iloc[0]  # rows are counted, not texts
    emb = CallableEmbedder(lambda ts: np.array([[sentiment_rule(t) == "yes", 1.0] for t in ts]),
                           id="rule/v1", max_chars=120)
    with pytest.raises(InvalidArgumentError, match="long_texts must be one of"):
        make_options(long_texts="drop")
    res = df.thrifty.label("Is it positive?", column="review", llm=double_llm(),
                           embedder=emb, sample_size=60, cache_dir=False, long_texts=policy)
    assert res.report.truncated_texts == 31
    assert "long texts cut" in str(res.report)


# -- built-in embedders ---------------------------------------------------------
class _RateLimited(Exception):
    status_code = 429

    def __init__(self, retry_after: str) -> None:
        super().__init__("rate limited")
        self.response = types.SimpleNamespace(headers={"retry-after": retry_after})


def test_litellm_embedder_batches_in_parallel_and_honours_retry_after(monkeypatch):
    import litellm

    calls: list[int] = []
    failed = {"once": False}

    def fake_embedding(model, input, **kw):
        if not failed["once"]:
            failed["once"] = True
            raise _RateLimited("7")
        calls.append(len(input))
        data = [{"index": i, "embedding": [float(len(t)), 1.0]} for i, t in enumerate(input)]
        return types.SimpleNamespace(data=data[::-1])  # out of order on purpose

    monkeypatch.setattr(litellm, "embedding", fake_embedding)
    emb = LiteLLMEmbedder("openai/text-embedding-3-small", batch_size=3, max_concurrency=2)
    slept: list[float] = []
    emb._sleep = slept.append
    assert emb.batch_size == 6 and emb.cacheable
    X = emb.embed(["a", "bb", "", "dddd", "eeeee"])
    assert sorted(calls) == [2, 3]
    assert X[:, 0].tolist() == [1.0, 2.0, 1.0, 4.0, 5.0]  # "" went out as " "
    assert slept and slept[0] >= 7.0
    assert emb.dim == 2


def test_litellm_embedder_gives_up_on_a_permanent_error(monkeypatch):
    import litellm

    class Unauthorized(Exception):
        status_code = 401

    def fake_embedding(model, input, **kw):
        raise Unauthorized("no key")

    monkeypatch.setattr(litellm, "embedding", fake_embedding)
    emb = LiteLLMEmbedder("openai/text-embedding-3-small", dimensions=64)
    assert emb.id == "litellm/openai/text-embedding-3-small/d64" and emb.dim == 64
    with pytest.raises(BackendError, match="status 401"):
        emb.embed(["a"])


def test_sentence_transformers_missing_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    from thrifty_frames.backends.embeddings.sentence_transformers import (
        SentenceTransformerEmbedder,
    )

    with pytest.raises(MissingDependencyError, match=r"pip install torch==2\.13\.0"):
        SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    with pytest.raises(ImportError):
        resolve_embedder("st:all-MiniLM-L6-v2")


def test_sentence_transformers_wrapper_with_a_stand_in_model(monkeypatch):
    class SentenceTransformer:
        """A stand-in with the two methods the wrapper uses (not a model)."""

        max_seq_length = 8

        def __init__(self, name, device="cpu"):
            self.name, self.device = name, device

        def get_sentence_embedding_dimension(self):
            return 4

        def encode(self, texts, batch_size, convert_to_numpy, normalize_embeddings,
                   show_progress_bar):
            return np.tile(np.arange(4, dtype=np.float64), (len(texts), 1))

    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = SentenceTransformer
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    emb = resolve_embedder("st:tiny-model")
    assert emb.id == "sentence-transformers/tiny-model/norm"
    assert emb.max_chars == 32 and emb.dim == 4 and emb.model.device == "cpu"
    X, st = embed_texts(["x" * 40, "y"], emb)
    assert X.shape == (2, 4) and X.dtype == np.float32 and st.truncated == 1


def test_resolve_embedder_choices():
    assert isinstance(resolve_embedder(None), HashingEmbedder)
    assert isinstance(resolve_embedder("hashing"), HashingEmbedder)
    assert isinstance(resolve_embedder("openai/text-embedding-3-small"), LiteLLMEmbedder)
    anon = resolve_embedder(lambda ts: np.zeros((len(ts), 2)))
    assert isinstance(anon, CallableEmbedder) and not anon.cacheable
    assert CallableEmbedder(lambda ts: ts, id="mine/v1").cacheable
    with pytest.raises(InvalidArgumentError):
        resolve_embedder(3)
