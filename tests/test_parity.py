"""Every front end gives the same labels, row for row, on real data.

The LLM is the rule-based test double (not a language model) replaying the data
set's gold labels; the embedder is the offline default.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

import thrifty_frames as tf
from thrifty_frames._core.inputs import as_string_array
from thrifty_frames._frontends.pandas import _PandasFrame
from thrifty_frames._frontends.polars import _PolarsFrame

ROWS = 600


def gold_double(double_llm, frame: pl.DataFrame, answer):
    gold = dict(zip(frame["text"], frame["label"], strict=True))
    return double_llm(lambda text: answer(gold[text]))


def every_route(df: pl.DataFrame, prompt: str, classes, opts) -> dict[str, pa.Array]:
    """Labels and provenance from pandas, Polars eager, Polars lazy and Expr."""
    cls = list(classes) if classes else None
    out = {"pandas": df.to_pandas().thrifty.label(prompt, cls, "text", **opts)}
    out["polars eager"] = df.thrifty.label(prompt, cls, "text", **opts)
    lf = df.lazy()
    if cls is None:
        lazy = lf.thrifty.filter(prompt, "text", provenance=True, **opts).collect()
        kept = set(lazy["text"])
        eager_mask = out["polars eager"].labels.fill_null(False)
        assert [t in kept for t in df["text"]] == eager_mask.to_pylist()
    else:
        lazy = lf.thrifty.classify(
            prompt, cls, "text", provenance=True, into="answer", **opts
        ).collect()
        out["polars lazy"] = lazy["answer"].cast(pl.String).to_arrow()
    expr = lf.select(pl.col("text").thrifty.label(prompt, cls, **opts)).collect()
    out["expr"] = expr.unnest("text")
    return out


def labels_of(value) -> list:
    if isinstance(value, tf.Result):
        return value.labels.to_pylist()
    if isinstance(value, pl.DataFrame):  # the Expr route's unnested struct
        label = value["label"]
        return (label if label.dtype == pl.Boolean else label.cast(pl.String)).to_list()
    return value.to_pylist()


@pytest.mark.shared_data
def test_imdb_filter_is_the_same_in_every_route(shared_data, double_llm):
    df = pl.read_parquet(shared_data / "imdb.parquet", columns=["text", "label"])
    df = df.sample(ROWS, seed=7)
    llm = gold_double(double_llm, df, lambda g: "yes" if g == "pos" else "no")
    opts = {"llm": llm, "sample_size": 300, "seed": 3, "target": 0.8, "progress": False}
    routes = every_route(df, "Is this review positive?", None, opts)
    reference = labels_of(routes["pandas"])
    assert routes["pandas"].report.decided_by["proxy"] > 0  # the proxy did decide rows
    for name, value in routes.items():
        assert labels_of(value) == reference, name
    # The first route paid the LLM; the others read the same answers from the cache.
    decided = routes["pandas"].decided_by.to_pylist()
    llm_or_cache = {"llm", "cache"}

    def same_decider(got: list) -> bool:
        return all(
            a == b or {a, b} <= llm_or_cache for a, b in zip(got, decided, strict=True)
        )

    assert same_decider(routes["polars eager"].decided_by.to_pylist())
    assert same_decider(routes["expr"]["decided_by"].to_list())


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore::thrifty_frames.ProxyNotViableWarning")
def test_ag_news_classify_is_the_same_in_every_route(shared_data, double_llm):
    df = pl.read_parquet(shared_data / "ag_news.parquet", columns=["text", "label"])
    df = df.sample(ROWS, seed=11)
    classes = ["World", "Sports", "Business", "Sci/Tech"]
    llm = gold_double(double_llm, df, lambda g: g)
    opts = {"llm": llm, "sample_size": 300, "seed": 5, "progress": False}
    routes = every_route(df, "What is the topic of this news story?", classes, opts)
    reference = labels_of(routes["pandas"])
    assert set(reference) <= set(classes)
    for name, value in routes.items():
        assert labels_of(value) == reference, name


@pytest.mark.shared_data
def test_pandas_and_polars_read_the_same_texts(shared_data):
    df = pl.read_parquet(shared_data / "sms_spam.parquet").head(300)
    a = as_string_array(_PandasFrame(df.to_pandas()).arrow("text"), "text", "str")
    b = as_string_array(_PolarsFrame(df).arrow("text"), "text", "String")
    assert a.equals(b)
