"""The pandas front end with the rule-based LLM test double (not a language model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import thrifty_frames as tf
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


def make_reviews(n: int, seed: int = 0) -> pd.DataFrame:
    """Short synthetic reviews whose sentiment the double's rule can read."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        pos = bool(rng.random() < 0.5)
        adj = rng.choice(ADJ_POS if pos else ADJ_NEG)
        noun, noun2 = rng.choice(NOUNS, size=2)
        rows.append(f"the {noun} was {adj} and the {noun2} too, review {i}")
    return pd.DataFrame({"review": rows, "stars": rng.integers(1, 6, size=n)})


def truth(df: pd.DataFrame, col: str = "review") -> np.ndarray:
    return np.array([sentiment_rule(t) == "yes" for t in df[col]])


def test_filter_keeps_index_order_and_columns_with_duplicated_string_index(double_llm):
    df = make_reviews(400)
    df.index = [f"k{i % 7}" for i in range(len(df))][::-1]  # duplicated, unsorted
    llm = double_llm()
    out = df.thrifty.filter("Is it positive?", llm=llm, sample_size=120, cache_dir=False)
    assert list(out.columns) == list(df.columns)
    # The kept rows are the original rows, in the original order, index intact.
    pos = [int(r.rsplit(" ", 1)[1]) for r in out["review"]]
    assert pos == sorted(pos)
    assert out.index.tolist() == df.index[pos].tolist()
    assert out.equals(df.iloc[pos])
    # The cascade's answers agree with the double on (nearly) every row.
    keep = np.zeros(len(df), dtype=bool)
    keep[pos] = True
    assert (keep == truth(df)).mean() >= 0.95
    rep = tf.last_report()
    assert rep.rows == 400
    assert rep.sample_rows == 120
    assert rep.llm_calls == llm.calls
    assert rep.proxy_used
    assert rep.decided_by["proxy"] > 0


def test_mask_is_aligned_boolean_series(double_llm):
    df = make_reviews(300)
    df.index = pd.Index(np.arange(300)[::-1] * 3)
    m = df.thrifty.mask("Is it positive?", "review", llm=double_llm(), sample_size=100)
    assert m.dtype == bool
    assert m.index.equals(df.index)
    assert (m.to_numpy() == truth(df)).all()


def test_classify_adds_column_and_provenance(double_llm):
    df = make_reviews(300)
    llm = double_llm(lambda t: "Positive" if sentiment_rule(t) == "yes" else "Negative")
    out = df.thrifty.classify(
        "What is the sentiment?",
        classes=["Positive", "Negative"],
        llm=llm,
        sample_size=100,
        into="sentiment",
        provenance=True,
    )
    assert out is not df and "sentiment" not in df.columns
    assert list(out.columns) == ["review", "stars", "sentiment", "sentiment_decided_by", "sentiment_score"]
    want = np.where(truth(df), "Positive", "Negative")
    assert (out["sentiment"].astype(str).to_numpy() == want).mean() >= 0.95
    assert list(out["sentiment"].cat.categories) == ["Positive", "Negative"]
    assert set(out["sentiment_decided_by"]) <= {"llm", "proxy", "cache", "proxy_below_target"}
    proxy_rows = out["sentiment_decided_by"] == "proxy"
    assert proxy_rows.any()
    cut = tf.last_report().threshold["value"]
    assert out.loc[proxy_rows, "sentiment_score"].between(cut, 1.0).all()
    assert out["sentiment_score"].notna().all()  # the proxy scored every row


def test_label_returns_result_with_report(double_llm):
    df = make_reviews(200)
    res = df.thrifty.label("Is it positive?", llm=double_llm(), sample_size=60)
    assert isinstance(res, tf.Result)
    assert np.mean(np.array(res.labels.to_pylist()) == truth(df)) >= 0.95
    assert res.report.verb == "label"
    assert len(res.decided_by) == 200


def test_nulls_and_empty_strings(double_llm):
    texts = ["great fun", None, "", "awful", None, "", "good", "bad"] * 10
    df = pd.DataFrame({"t": texts}, index=[f"i{i}" for i in range(len(texts))])
    llm = double_llm()
    with tf.collect_reports() as reports:
        m = df.thrifty.mask("Is it positive?", llm=llm, sample_size=60, cache_dir=False)
        kept = df.thrifty.filter("Is it positive?", llm=llm, sample_size=60, cache_dir=False)
    # Nulls are never sent anywhere; each distinct text is asked once per run.
    assert "" in llm.seen and all(s is not None for s in llm.seen)
    assert llm.calls == 5 * 2
    assert not m[df["t"].isna()].any()
    assert kept["t"].isna().sum() == 0
    assert sorted(set(kept["t"])) == ["good", "great fun"]
    assert reports[0].null_rows == 20
    assert reports[0].decided_by["none"] == 0


def test_nulls_in_the_middle_with_a_proxy(double_llm):
    df = make_reviews(400)
    df.loc[df.index[::9], "review"] = None
    res = df.thrifty.label("Is it positive?", llm=double_llm(), sample_size=150)
    labels = res.labels.to_pylist()
    how = res.decided_by.to_pylist()
    for i, t in enumerate(df["review"]):
        if pd.isna(t):
            assert labels[i] is None and how[i] is None
        else:
            assert labels[i] is not None and how[i] in {"llm", "proxy"}
    assert res.report.null_rows == len(df.index[::9])
    assert res.report.proxy_used


def test_sample_covering_every_row_labels_all_with_llm(double_llm):
    df = make_reviews(50)
    llm = double_llm()
    res = df.thrifty.label("Is it positive?", llm=llm, sample_size=50)
    assert res.labels.to_pylist() == truth(df).tolist()
    assert set(res.decided_by.to_pylist()) == {"llm"}
    assert res.report.proxy_used is False
    assert "no proxy" in res.report.viability_note
    assert llm.calls == 50


def test_one_class_sample_falls_back_to_llm_with_warning(double_llm):
    df = make_reviews(200)
    llm = double_llm(lambda t: "no")  # every answer is the same class
    with pytest.warns(tf.ProxyNotViableWarning, match="one class"):
        res = df.thrifty.label("Is it positive?", llm=llm, sample_size=40)
    assert res.labels.to_pylist() == [False] * 200
    assert res.report.viable is False
    assert res.report.proxy_used is False
    assert llm.calls == 200


def test_second_identical_call_makes_no_llm_calls(double_llm, tmp_path):
    df = make_reviews(300)
    llm = double_llm()
    first = df.thrifty.mask("Is it positive?", llm=llm, sample_size=100, cache_dir=tmp_path)
    calls = llm.calls
    assert calls > 0
    again = df.thrifty.mask("Is it positive?", llm=llm, sample_size=100, cache_dir=tmp_path)
    assert llm.calls == calls
    assert again.equals(first)
    rep = tf.last_report()
    assert rep.llm_calls == 0
    assert rep.cache_hits > 0
    assert rep.decided_by["llm"] == 0 and rep.decided_by["cache"] > 0


def test_cache_key_changes_with_prompt_classes_and_model(double_llm, tmp_path):
    df = make_reviews(40)
    llm = double_llm()
    df.thrifty.mask("Is it positive?", llm=llm, sample_size=40, cache_dir=tmp_path)
    assert llm.calls == 40
    df.thrifty.mask("Is it negative?", llm=llm, sample_size=40, cache_dir=tmp_path)
    assert llm.calls == 80  # new prompt: nothing stale served
    other = double_llm(id="double/other-model")
    df.thrifty.mask("Is it positive?", llm=other, sample_size=40, cache_dir=tmp_path)
    assert other.calls == 40
    cls = double_llm(lambda t: "a")
    df.thrifty.classify("Which?", ["a", "b"], llm=cls, sample_size=40, cache_dir=tmp_path)
    df.thrifty.classify("Which?", ["a", "b", "c"], llm=cls, sample_size=40, cache_dir=tmp_path)
    assert cls.calls == 80


@pytest.mark.parametrize("proxy", ["lr", "svc", "lgbm"])
def test_every_proxy_runs(double_llm, proxy):
    df = make_reviews(400, seed=3)
    res = df.thrifty.label("Is it positive?", llm=double_llm(), sample_size=160, proxy=proxy)
    agree = np.mean(np.array(res.labels.to_pylist()) == truth(df))
    assert agree >= 0.9
    assert res.report.proxy == proxy


# -- errors -------------------------------------------------------------------


def test_missing_column_lists_available():
    df = make_reviews(5)
    with pytest.raises(ColumnNotFoundError, match=r"'body'.*\['review', 'stars'\]") as e:
        df.thrifty.filter("Is it positive?", column="body")
    assert isinstance(e.value, KeyError)


def test_non_string_column_names_dtype():
    df = make_reviews(5)
    with pytest.raises(ColumnTypeError, match=r"'stars' has dtype int64"):
        df.thrifty.filter("Is it positive?", column="stars")


def test_ambiguous_column_lists_candidates():
    df = make_reviews(5).assign(title="x")
    with pytest.raises(InvalidArgumentError, match=r"\['review', 'title'\].*column="):
        df.thrifty.filter("Is it positive?")


def test_unknown_proxy():
    df = make_reviews(5)
    with pytest.raises(InvalidArgumentError, match=r"proxy must be one of \['lr', 'svc', 'lgbm'\], got 'xgb'"):
        df.thrifty.filter("Is it positive?", proxy="xgb")


def test_empty_frame():
    df = make_reviews(5).iloc[:0]
    with pytest.raises(EmptyInputError, match="empty"):
        df.thrifty.filter("Is it positive?", column="review")


@pytest.mark.parametrize("bad", [0, 1, -5, 2.5, "100", True])
def test_bad_sample_size(bad):
    df = make_reviews(5)
    with pytest.raises(InvalidArgumentError, match=r"sample_size must be an integer >= 2"):
        df.thrifty.filter("Is it positive?", sample_size=bad)


def test_unknown_option_lists_accepted():
    df = make_reviews(5)
    with pytest.raises(InvalidArgumentError, match=r"unknown option\(s\) \['sampel_size'\]"):
        df.thrifty.filter("Is it positive?", sampel_size=10)


def test_object_column_with_numbers_is_rejected():
    df = pd.DataFrame({"t": ["a", 3, "b"] * 40})
    with pytest.raises(ColumnTypeError, match="'t'"):
        df.thrifty.filter("Is it positive?", column="t")


def test_classify_needs_classes():
    df = make_reviews(5)
    with pytest.raises(InvalidArgumentError, match="classes must be a list"):
        df.thrifty.classify("Which?", classes="ab")


def test_all_null_column_makes_no_calls(double_llm):
    df = pd.DataFrame({"t": pd.Series([None] * 6, dtype="str"), "n": range(6)})
    llm = double_llm()
    out = df.thrifty.classify("Which?", ["a", "b"], "t", llm=llm)
    assert out["label"].isna().all()
    assert df.thrifty.filter("Is it positive?", "t", llm=llm).empty
    assert "every text is null" in tf.last_report().notes[0]
    assert llm.calls == 0
