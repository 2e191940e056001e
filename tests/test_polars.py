"""The Polars front end with the rule-based LLM test double (not a language model)."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import thrifty_frames as tf
from thrifty_frames._frontends.polars import ThriftyExpr
from thrifty_frames.exceptions import (
    ColumnNotFoundError,
    ColumnTypeError,
    EmptyInputError,
    InvalidArgumentError,
)

from .conftest import sentiment_rule

ADJ_POS = ["good", "great", "excellent", "wonderful", "fun"]
ADJ_NEG = ["bad", "awful", "boring", "terrible", "dull"]
NOUNS = ["movie", "plot", "cast", "ending", "soundtrack", "script", "pacing", "score"]
PROMPT = "Is it positive?"


def make_reviews(n: int, seed: int = 0) -> pl.DataFrame:
    """Short synthetic reviews whose sentiment the double's rule can read."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        adj = rng.choice(ADJ_POS if rng.random() < 0.5 else ADJ_NEG)
        noun, noun2 = rng.choice(NOUNS, size=2)
        rows.append(f"the {noun} was {adj} and the {noun2} too, review {i}")
    return pl.DataFrame({"review": rows, "stars": rng.integers(1, 6, size=n)})


def truth(texts) -> list[bool]:
    return [sentiment_rule(t) == "yes" for t in texts]


def topic_rule(text: str) -> str:
    return "pos" if sentiment_rule(text) == "yes" else "neg"


def opts(llm, **kw):
    return {"llm": llm, "sample_size": 150, "progress": False, **kw}


# -- the same verbs as pandas ----------------------------------------------------


PANDAS_VERBS = sorted(
    v for v in vars(type(pd.DataFrame().thrifty)) if not v.startswith("_")
)


def test_polars_frames_have_every_pandas_verb():
    for namespace in (pl.DataFrame, pl.LazyFrame):
        verbs = sorted(v for v in vars(namespace.thrifty) if not v.startswith("_"))
        assert verbs == PANDAS_VERBS
    assert {"filter", "mask", "classify", "label", "fit", "predict"} <= set(
        PANDAS_VERBS
    )


@pytest.mark.parametrize("namespace", [pl.DataFrame, pl.LazyFrame])
@pytest.mark.parametrize("verb", PANDAS_VERBS)
def test_verbs_have_the_pandas_signatures(namespace, verb):
    pandas_sig = inspect.signature(getattr(pd.DataFrame.thrifty, verb))
    polars_sig = inspect.signature(getattr(namespace.thrifty, verb))
    assert list(polars_sig.parameters.values()) == list(pandas_sig.parameters.values())


def test_expr_namespace_verbs():
    verbs = sorted(v for v in vars(ThriftyExpr) if not v.startswith("_"))
    assert verbs == ["classify", "filter", "label", "mask", "predict"]


# -- pl.DataFrame.thrifty --------------------------------------------------------


def test_filter_keeps_order_and_columns(double_llm):
    df = make_reviews(400)
    llm = double_llm()
    out = df.thrifty.filter(PROMPT, **opts(llm))
    assert out.columns == df.columns
    ids = [int(r.rsplit(" ", 1)[1]) for r in out["review"]]
    assert ids == sorted(ids)
    assert out.equals(df[ids])
    keep = np.zeros(len(df), dtype=bool)
    keep[ids] = True
    assert (keep == np.array(truth(df["review"]))).mean() >= 0.95
    rep = tf.last_report()
    assert rep.rows == 400
    assert rep.sample_rows == 150
    assert rep.llm_calls == llm.calls
    assert rep.proxy_used


def test_filter_provenance_columns(double_llm):
    df = make_reviews(300)
    out = df.thrifty.filter(PROMPT, provenance=True, **opts(double_llm()))
    assert out.columns == [*df.columns, "thrifty_decided_by", "thrifty_score"]
    assert out.schema["thrifty_decided_by"] == pl.String
    assert out.schema["thrifty_score"] == pl.Float64
    assert set(out["thrifty_decided_by"]) <= {
        "llm",
        "cache",
        "proxy",
        "proxy_below_target",
    }


def test_mask_is_a_boolean_series_per_row(double_llm):
    df = make_reviews(300)
    m = df.thrifty.mask(PROMPT, "review", **opts(double_llm()))
    assert isinstance(m, pl.Series)
    assert m.name == "thrifty_mask"
    assert m.dtype == pl.Boolean
    assert m.len() == 300
    assert (m.to_numpy() == np.array(truth(df["review"]))).mean() >= 0.95
    assert df.with_columns(m).columns == ["review", "stars", "thrifty_mask"]


def test_classify_adds_an_enum_column_with_provenance(double_llm):
    df = make_reviews(300)
    out = df.thrifty.classify(
        "Which?",
        ["pos", "neg"],
        into="tone",
        provenance=True,
        **opts(double_llm(topic_rule)),
    )
    assert out.columns == [*df.columns, "tone", "tone_decided_by", "tone_score"]
    assert out.schema["tone"] == pl.Enum(["pos", "neg"])
    got = np.array(out["tone"].cast(pl.String).to_list())
    assert (got == np.array([topic_rule(t) for t in df["review"]])).mean() >= 0.95


def test_label_returns_the_core_result(double_llm):
    df = make_reviews(200)
    res = df.thrifty.label(PROMPT, **opts(double_llm()))
    assert isinstance(res, tf.Result)
    assert res.labels.type == pa.bool_()
    assert len(res.labels) == 200
    assert res.report.rows == 200


# -- pl.LazyFrame.thrifty: the LLM runs at collect, once ---------------------------


def test_lazy_plan_calls_the_llm_only_at_collect_and_only_once(double_llm):
    df = make_reviews(400)
    llm = double_llm()
    plan = df.lazy().thrifty.filter(PROMPT, provenance=True, **opts(llm))
    assert isinstance(plan, pl.LazyFrame)
    plan.explain()
    schema = plan.collect_schema()
    assert schema.names() == ["review", "stars", "thrifty_decided_by", "thrifty_score"]
    assert llm.calls == 0

    first = plan.collect()
    calls = llm.calls
    assert calls > 0
    assert tf.last_report().llm_calls == calls

    again = plan.collect()
    assert llm.calls == calls  # every answer came from the label cache
    assert tf.last_report().llm_calls == 0
    assert tf.last_report().cache_hits > 0
    assert again.drop("thrifty_decided_by").equals(first.drop("thrifty_decided_by"))
    eager = df.thrifty.filter(PROMPT, **opts(llm))
    assert first.drop("thrifty_decided_by", "thrifty_score").equals(eager)


def test_lazy_classify_and_mask_match_eager(double_llm):
    df = make_reviews(300)
    llm = double_llm(topic_rule)
    eager = df.thrifty.classify("Which?", ["pos", "neg"], **opts(llm))
    lazy = df.lazy().thrifty.classify("Which?", ["pos", "neg"], **opts(llm))
    assert lazy.collect_schema()["label"] == pl.Enum(["pos", "neg"])
    assert lazy.collect().equals(eager)

    llm = double_llm()
    m = df.lazy().thrifty.mask(PROMPT, **opts(llm)).collect()
    assert m.columns == ["thrifty_mask"]
    assert m["thrifty_mask"].equals(df.thrifty.mask(PROMPT, **opts(llm)))


def test_lazy_label_collects_only_what_it_reads(double_llm):
    df = make_reviews(200)
    res = df.lazy().thrifty.label(PROMPT, **opts(double_llm()))
    assert res.labels.equals(df.thrifty.label(PROMPT, **opts(double_llm())).labels)


def test_estimate_matches_pandas_and_calls_no_llm(double_llm):
    df = make_reviews(300)
    llm = double_llm()
    ref = df.to_pandas().thrifty.estimate(PROMPT, **opts(llm))
    eager = df.thrifty.estimate(PROMPT, **opts(llm))
    assert (eager.rows, eager.sample_rows, eager.calls) == (300, 150, ref.calls)
    ref = df.to_pandas().thrifty.estimate(PROMPT, escalation_share=0.25, **opts(llm))
    lazy = df.lazy().thrifty.estimate(PROMPT, escalation_share=0.25, **opts(llm))
    assert (lazy.calls, lazy.cost) == (ref.calls, ref.cost)
    assert llm.calls == 0


def test_lazy_checks_arguments_and_schema_when_the_plan_is_built():
    lf = make_reviews(10).lazy()
    with pytest.raises(
        InvalidArgumentError, match="sample_size must be an integer >= 2"
    ):
        lf.thrifty.filter(PROMPT, sample_size=1)
    with pytest.raises(ColumnNotFoundError, match="'nope' is not in the frame"):
        lf.thrifty.filter(PROMPT, column="nope")
    with pytest.raises(
        ColumnTypeError, match="column 'stars' has dtype Int64, not text"
    ):
        lf.thrifty.classify("Which?", ["a", "b"], column="stars")
    with pytest.raises(InvalidArgumentError, match="classes must hold at least two"):
        lf.thrifty.classify("Which?", ["a"])


def test_a_filter_before_the_step_narrows_what_it_labels(double_llm):
    df = make_reviews(400)
    llm = double_llm()
    with tf.collect_reports() as reports:
        out = (
            df.lazy()
            .filter(pl.col("stars") > 2)
            .thrifty.filter(PROMPT, **opts(llm))
            .collect()
        )
    narrowed = df.filter(pl.col("stars") > 2)
    assert [r.rows for r in reports] == [narrowed.height]
    assert out.equals(narrowed.thrifty.filter(PROMPT, **opts(llm)))


# -- pl.Expr.thrifty -------------------------------------------------------------


def test_expr_filter_with_the_streaming_engine_matches_eager(double_llm, tmp_path):
    df = make_reviews(600)
    path = tmp_path / "reviews.parquet"
    pq.write_table(df.to_arrow(), path, row_group_size=50)  # many small batches
    llm = double_llm()
    eager = df.thrifty.filter(PROMPT, **opts(llm))

    plan = pl.scan_parquet(path).filter(
        pl.col("review").thrifty.filter(PROMPT, **opts(llm))
    )
    with tf.collect_reports() as reports:
        streamed = plan.collect(engine="streaming")
    assert streamed.equals(eager)
    # One pipeline run over the whole column, not one per streaming batch.
    assert [r.rows for r in reports] == [600]
    assert [r.sample_rows for r in reports] == [150]


def test_expr_in_select_and_with_columns(double_llm):
    df = make_reviews(300)
    llm = double_llm(topic_rule)
    expr = pl.col("review").thrifty.classify("Which?", ["pos", "neg"], **opts(llm))
    out = df.with_columns(expr.alias("tone"))
    assert out.schema["tone"] == pl.Enum(["pos", "neg"])
    eager = df.thrifty.classify("Which?", ["pos", "neg"], into="tone", **opts(llm))
    assert out.equals(eager)
    # The output keeps the input's name, as Polars expressions do.
    assert df.lazy().select(expr).collect().columns == ["review"]


def test_expr_label_is_a_struct(double_llm):
    df = make_reviews(200)
    out = df.select(pl.col("review").thrifty.label(PROMPT, **opts(double_llm())))
    assert out.schema["review"] == pl.Struct(
        {"label": pl.Boolean, "decided_by": pl.String, "score": pl.Float64}
    )
    res = df.thrifty.label(PROMPT, **opts(double_llm()))
    assert out.unnest("review")["label"].to_arrow().equals(res.labels)


def test_expr_mask_is_filter():
    assert ThriftyExpr.mask is ThriftyExpr.filter


def test_expr_on_empty_input_returns_empty_without_calling_the_llm(double_llm):
    llm = double_llm()
    empty = pl.DataFrame({"review": []}, schema={"review": pl.String})
    out = empty.lazy().filter(pl.col("review").thrifty.filter(PROMPT, **opts(llm)))
    assert out.collect(engine="streaming").shape == (0, 1)
    sel = empty.select(pl.col("review").thrifty.classify("Which?", ["a", "b"], llm=llm))
    assert sel.schema["review"] == pl.Enum(["a", "b"])
    assert llm.calls == 0


def test_expr_template_reads_a_struct(double_llm):
    df = make_reviews(300).with_columns(title=pl.lit("A film"))
    prompt = "Title: {title}. Review: {review}. Positive?"
    llm = double_llm()
    eager = df.thrifty.mask(prompt, **opts(llm))
    expr = pl.struct("title", "review").thrifty.filter(prompt, **opts(llm))
    assert df.select(expr.alias("m"))["m"].equals(eager, check_names=False)
    lazy = df.lazy().thrifty.mask(prompt, **opts(llm)).collect()["thrifty_mask"]
    assert lazy.equals(eager)
    with pytest.raises(
        InvalidArgumentError, match=r"must be a struct of those columns"
    ):
        df.select(pl.col("review").thrifty.filter(prompt, **opts(llm)))


def test_expr_non_text_column_names_column_and_dtype():
    df = pl.DataFrame({"stars": [1, 2, 3]})
    with pytest.raises(
        ColumnTypeError, match="column 'stars' has dtype Int64, not text"
    ):
        df.select(pl.col("stars").thrifty.filter(PROMPT))


@pytest.fixture
def proxy(double_llm):
    """A yes/no proxy fitted on 400 synthetic reviews."""
    return make_reviews(400, seed=1).thrifty.fit(PROMPT, **opts(double_llm()))


def test_fit_and_predict_match_pandas_and_make_no_llm_calls(proxy, double_llm):
    assert isinstance(proxy, tf.FittedProxy)
    new = make_reviews(300, seed=2)
    out = new.thrifty.predict(proxy, into="positive", provenance=True)
    assert out.columns == [
        *new.columns,
        "positive",
        "positive_decided_by",
        "positive_score",
    ]
    assert out.schema["positive"] == pl.Boolean
    ref = new.to_pandas().thrifty.predict(proxy, into="positive", provenance=True)
    assert out["positive"].to_list() == ref["positive"].tolist()
    assert out["positive_decided_by"].to_list() == ref["positive_decided_by"].tolist()
    assert (out["positive"].to_numpy() == np.array(truth(new["review"]))).mean() >= 0.9
    with pytest.raises(InvalidArgumentError, match="proxy must be a FittedProxy"):
        new.thrifty.predict("not a proxy")
    lazy_fit = (
        make_reviews(400, seed=1).lazy().thrifty.fit(PROMPT, **opts(double_llm()))
    )
    assert lazy_fit.predict_arrow(pa.array(new["review"].to_list())).equals(
        proxy.predict_arrow(pa.array(new["review"].to_list()))
    )


def test_predict_streams_batch_by_batch(proxy, tmp_path):
    new = make_reviews(3000, seed=3)
    path = tmp_path / "new.parquet"
    pq.write_table(new.to_arrow(), path, row_group_size=500)
    eager = new.thrifty.predict(proxy, into="positive")
    plan = pl.scan_parquet(path).thrifty.predict(proxy, into="positive")
    assert plan.collect(engine="streaming").equals(eager)
    expr = pl.col("review").thrifty.predict(proxy).alias("positive")
    assert (
        pl.scan_parquet(path)
        .with_columns(expr)
        .collect(engine="streaming")
        .equals(eager)
    )
    prov = pl.scan_parquet(path).thrifty.predict(proxy, into="p", provenance=True)
    assert prov.collect_schema().names()[-3:] == ["p", "p_decided_by", "p_score"]
    assert prov.collect(engine="streaming")["p"].equals(
        eager["positive"], check_names=False
    )
    with pytest.raises(InvalidArgumentError, match="proxy must be a FittedProxy"):
        pl.col("review").thrifty.predict(None)


def test_predict_with_a_classify_proxy_gives_an_enum(double_llm):
    df = make_reviews(400, seed=4)
    p = df.thrifty.fit("Which?", ["pos", "neg"], **opts(double_llm(topic_rule)))
    out = df.lazy().with_columns(pl.col("review").thrifty.predict(p).alias("tone"))
    assert out.collect_schema()["tone"] == pl.Enum(["pos", "neg"])
    got = out.collect(engine="streaming")["tone"].cast(pl.String).to_list()
    assert (
        got
        == df.to_pandas().thrifty.predict(p, into="tone")["tone"].astype(str).tolist()
    )


def test_precomputed_vectors_in_every_route(double_llm):
    df = make_reviews(300)
    vec = [[float(w in t) for w in (*ADJ_POS, *ADJ_NEG)] for t in df["review"]]
    df = df.with_columns(vec=pl.Series(vec, dtype=pl.Array(pl.Float64, 10)))
    llm = double_llm()
    o = opts(llm, embeddings="vec")
    eager = df.thrifty.mask(PROMPT, "review", **o)
    assert tf.last_report().embedder != tf.last_report().llm
    lazy = df.lazy().thrifty.mask(PROMPT, "review", **o).collect()["thrifty_mask"]
    expr = df.select(pl.col("review").thrifty.filter(PROMPT, **o))["review"]
    assert lazy.equals(eager)
    assert expr.equals(eager, check_names=False)
    plan = df.lazy().select(pl.col("review").thrifty.filter(PROMPT, **o))
    assert plan.collect_schema().names() == ["review"]


# -- column types real files produce -------------------------------------------


@pytest.fixture
def reference(double_llm):
    """Labels of 300 reviews (with nulls in the middle) read as plain String."""
    df = make_reviews(300).with_columns(
        review=pl.when(pl.int_range(pl.len()) % 7 == 3)
        .then(None)
        .otherwise(pl.col("review"))
    )
    return df, df.thrifty.label(PROMPT, column="review", **opts(double_llm()))


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda s: s.cast(pl.Categorical), id="categorical"),
        pytest.param(
            lambda s: s.cast(pl.Enum(s.drop_nulls().unique().sort())), id="enum"
        ),
        pytest.param(
            lambda s: pl.Series(s.name, s.to_arrow().cast(pa.large_string())),
            id="large_string",
        ),
    ],
)
def test_text_column_types_give_the_same_labels(reference, convert, double_llm):
    df, ref = reference
    typed = df.with_columns(convert(df["review"]))
    assert typed.schema["review"] != pl.Int64
    res = typed.thrifty.label(PROMPT, **opts(double_llm()))
    assert res.labels.equals(ref.labels)
    assert res.labels.null_count == 43  # the nulls in the middle stay null
    lazy = (
        typed.lazy()
        .thrifty.mask(PROMPT, **opts(double_llm()))
        .collect()["thrifty_mask"]
    )
    assert lazy.to_arrow().equals(ref.labels.fill_null(False))


def test_nulls_in_the_middle_keep_their_rows(reference, double_llm):
    df, ref = reference
    m = df.thrifty.mask(PROMPT, **opts(double_llm()))
    assert not m.filter(df["review"].is_null()).any()
    out = df.thrifty.classify("Which?", ["pos", "neg"], **opts(double_llm(topic_rule)))
    assert out.filter(pl.col("review").is_null())["label"].null_count() == 43
    assert out.filter(pl.col("review").is_not_null())["label"].null_count() == 0


@pytest.mark.parametrize("dtype", [pl.Null, pl.String], ids=["Null", "String"])
def test_all_null_column(dtype, double_llm):
    df = pl.DataFrame(
        {"review": [None] * 5, "n": range(5)}, schema={"review": dtype, "n": pl.Int64}
    )
    llm = double_llm()
    out = df.thrifty.classify("Which?", ["a", "b"], "review", **opts(llm))
    assert out["label"].null_count() == 5
    assert df.thrifty.filter(PROMPT, "review", **opts(llm)).height == 0
    assert "every text is null" in tf.last_report().notes[0]
    lazy = df.lazy().thrifty.filter(PROMPT, "review", **opts(llm)).collect()
    assert lazy.height == 0
    assert llm.calls == 0


def test_a_null_dtype_column_is_not_guessed_as_text():
    df = pl.DataFrame({"empty": [None, None], "n": [1, 2]})
    with pytest.raises(ColumnTypeError, match="needs exactly one text column"):
        df.thrifty.filter(PROMPT)


def test_non_text_column_names_column_and_dtype():
    df = pl.DataFrame({"review": ["a", "b"], "stars": [1.5, 2.0]})
    with pytest.raises(
        ColumnTypeError, match="column 'stars' has dtype Float64, not text"
    ):
        df.thrifty.filter(PROMPT, column="stars")
    with pytest.raises(
        ColumnTypeError, match="column 'stars' has dtype Float64, not text"
    ):
        df.lazy().thrifty.filter(PROMPT, column="stars")


def test_empty_frame():
    df = pl.DataFrame({"review": []}, schema={"review": pl.String})
    with pytest.raises(EmptyInputError, match="the frame is empty"):
        df.thrifty.filter(PROMPT)
    # A lazy plan over an empty source collects to an empty frame.
    out = df.lazy().thrifty.classify("Which?", ["a", "b"]).collect()
    assert out.shape == (0, 2)
    assert out.schema["label"] == pl.Enum(["a", "b"])


def test_into_must_be_a_name():
    with pytest.raises(
        InvalidArgumentError, match="into must be a non-empty column name"
    ):
        make_reviews(5).lazy().thrifty.classify("Which?", ["a", "b"], into="")


# -- real files ---------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::thrifty_frames.ProxyNotViableWarning")
def test_scan_parquet_on_a_real_file(shared_data, double_llm):
    path = shared_data / "imdb.parquet"
    llm = double_llm()
    plan = (
        pl.scan_parquet(path).slice(0, 400).thrifty.filter(PROMPT, "text", **opts(llm))
    )
    assert llm.calls == 0
    out = plan.collect(engine="streaming")
    eager = (
        pl.read_parquet(path).slice(0, 400).thrifty.filter(PROMPT, "text", **opts(llm))
    )
    assert out.equals(eager)
    assert 0 < out.height < 400
    assert out.columns == ["text", "label", "split", "rating"]
