"""The cascade through the pipeline: targets, viability, caps, report and plot.

The LLM is :class:`RuleLLMDouble`, a rule-based test double (not a language
model); the embedder is the offline hashing default unless a test counts calls.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest

import thrifty_frames as tf
from thrifty_frames import (
    BudgetExceededWarning,
    EmptyInputError,
    InvalidArgumentError,
    MissingDependencyError,
    ProxyNotViableWarning,
)
from thrifty_frames._stages.train import train_proxy
from thrifty_frames.backends.embeddings.hashing import HashingEmbedder
from thrifty_frames.config import make_options

WORDS = [
    "good",
    "great",
    "love",
    "bad",
    "awful",
    "meh",
    "film",
    "plot",
    "actor",
    "fine",
]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 6)) + f" r{i}" for i in range(n)]


def _positive(text: str) -> str:
    """Yes when at least two of the six words are positive ones."""
    return "yes" if sum(text.count(w) for w in ("good", "great", "love")) >= 2 else "no"


def _noisy(text: str) -> str:
    """:func:`_positive`, flipped on a fixed ~15% of texts (by hash)."""
    flip = hashlib.md5(text.encode()).digest()[0] < 40
    ans = _positive(text)
    return ({"yes": "no", "no": "yes"}[ans]) if flip else ans


class CountingEmbedder:
    """Wraps the hashing embedder and counts the texts it is asked to embed."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder(char_ngrams=None, n_features=2**10)
        self.texts = 0

    def __call__(self, texts):
        self.texts += len(texts)
        return self.inner.embed(list(texts)).toarray()


def _label(texts, rule, double_llm, **kw):
    kw.setdefault("cache_dir", False)
    kw.setdefault("progress", False)
    return tf.label(texts, "Is it positive?", llm=double_llm(rule), **kw)


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall"])
def test_filter_targets_are_met_and_reported(double_llm, metric):
    texts = _texts(3000)
    res = _label(texts, _positive, double_llm, metric=metric)
    truth = np.array([_positive(t) == "yes" for t in texts])
    out = np.array(res.labels.to_pylist())
    value = {
        "accuracy": (out == truth).mean(),
        "precision": truth[out].mean(),
        "recall": out[truth].mean(),
    }[metric]
    assert value >= 0.9
    rep = res.report
    assert rep.metric == metric and rep.target == 0.9 and rep.delta == 0.05
    th = rep.threshold
    assert th["met"] and th["certified"] >= 0.9
    assert th["low"] <= th["estimate"] <= th["high"]
    if metric == "precision":
        assert th["no_below"] == 0.5 and 0.5 <= th["yes_at"] <= 1.0
    if metric == "recall":
        assert th["yes_at"] == 0.5 and 0.0 <= th["no_below"] <= 0.5
    assert rep.decided_by["proxy"] > 1000  # the proxy does real work
    text = str(rep)
    assert f"{metric} >= 0.90" in text and "achieved" in text and "target met" in text
    html = rep._repr_html_()
    assert "<table>" in html and "threshold" in html


def test_classify_accuracy_target(double_llm):
    texts = _texts(2000, seed=1)

    def topic(t: str) -> str:
        first = t.split()[0]
        return {"good": "praise", "great": "praise", "bad": "blame"}.get(first, "other")

    res = tf.label(
        texts,
        "Which?",
        ["praise", "blame", "other"],
        llm=double_llm(topic),
        cache_dir=False,
        progress=False,
    )
    truth = np.array([topic(t) for t in texts])
    assert (np.array(res.labels.to_pylist()) == truth).mean() >= 0.9
    assert res.report.threshold["met"]


def test_metric_is_validated():
    with pytest.raises(InvalidArgumentError, match=r"metric must be one of .*'f1'"):
        make_options(metric="f1")
    with pytest.raises(
        InvalidArgumentError, match="metric='precision' applies to filters"
    ):
        tf.label(["a", "b", "c"], "Which?", ["x", "y"], metric="precision")


def test_target_none_keeps_every_proxy_answer(double_llm):
    llm = double_llm(_positive)
    res = tf.label(
        _texts(1500),
        "Is it positive?",
        llm=llm,
        target=None,
        cache_dir=False,
        progress=False,
    )
    assert res.report.llm_calls == 500  # the sample only: nothing escalated
    assert res.report.decided_by["proxy"] == 1000
    assert res.report.threshold == {} and res.report.metric is None


def test_one_class_sample_falls_back_before_embedding(double_llm):
    emb = CountingEmbedder()
    with pytest.warns(ProxyNotViableWarning, match="one class"):
        res = _label(
            _texts(300), lambda t: "no", double_llm, embedder=emb, sample_size=50
        )
    assert emb.texts == 0  # no proxy can be trained: nothing was embedded
    assert res.report.decided_by["llm"] == 300
    assert res.report.viable is False


def test_near_random_proxy_is_not_viable_before_embedding_the_rest(double_llm):
    def coin(t: str) -> str:
        return "yes" if hashlib.md5(t.encode()).digest()[0] % 2 else "no"

    emb = CountingEmbedder()
    with pytest.warns(ProxyNotViableWarning):
        res = _label(
            _texts(2000, seed=2), coin, double_llm, embedder=emb, sample_size=400
        )
    assert emb.texts == 400  # only the labeled rows were embedded
    assert res.report.decided_by["llm"] == 2000


def test_two_row_sample(double_llm):
    with pytest.warns(ProxyNotViableWarning):
        res = _label(_texts(10), _positive, double_llm, sample_size=2)
    assert res.report.sample_rows == 2
    assert res.labels.null_count == 0
    assert res.report.decided_by["llm"] == 10


def test_class_seen_once_is_kept_by_the_proxy():
    X = HashingEmbedder(char_ngrams=None, n_features=2**12).embed(_texts(41, seed=4))
    y = np.array([0] * 20 + [1] * 20 + [2])
    for name in ("lr", "svc"):
        tr = train_proxy(X, y, name, seed=0)
        assert tr.model is not None, name
        assert list(tr.model.classes_) == [0, 1, 2]
        assert tr.cv_rows == 40  # the singleton class is left out of CV only


@pytest.mark.slow
def test_auto_proxy_chooses_a_model_by_cv_with_a_class_seen_once():
    X = HashingEmbedder(char_ngrams=None, n_features=2**12).embed(_texts(41, seed=4))
    y = np.array([0] * 20 + [1] * 20 + [2])
    tr = train_proxy(X, y, "auto", seed=0)
    assert list(tr.model.classes_) == [0, 1, 2]
    assert tr.params["model"] in ("lr", "svc", "lgbm")
    assert tr.cv_rows == 40


def test_class_seen_once_through_the_pipeline(double_llm):
    texts = _texts(600, seed=5)
    rare = texts[7]

    def rule(t: str) -> str:
        return "rare" if t == rare else ("pos" if _positive(t) == "yes" else "neg")

    res = tf.label(
        texts,
        "Which?",
        ["pos", "neg", "rare"],
        llm=double_llm(rule),
        sample_size=600 - 1,
        cache_dir=False,
        progress=False,
    )
    assert res.labels.null_count == 0


def test_cap_leaves_rows_below_target_and_says_by_how_much(double_llm):
    texts = _texts(3000, seed=6)
    # The sample takes 500 calls; one more is all the escalation gets.
    with pytest.warns(BudgetExceededWarning, match="max_llm_calls=501"):
        res = _label(texts, _noisy, double_llm, target=0.8, max_llm_calls=501)
    rep = res.report
    assert rep.llm_calls <= 501
    below = rep.decided_by["proxy_below_target"]
    assert below > 0
    prov = res.decided_by.to_pylist()
    assert prov.count("proxy_below_target") == below
    # The achieved figures are at the widened thresholds, below the certified ones.
    assert rep.achieved["conf_at"] < rep.threshold["conf_at"]
    assert rep.achieved["certified"] < rep.threshold["certified"]
    assert rep.threshold["met"] and not rep.achieved["met"]
    assert rep.achieved["certified"] < 0.8
    band = rep.below_target
    assert band["rows"] > 0 and band["accuracy"] < 0.8
    text = str(rep)
    assert "below target" in text and "proxy_below_target" in text and "NOT met" in text


def test_plot_draws_scores_and_cost_quality_curve(double_llm):
    pytest.importorskip("matplotlib")
    res = _label(_texts(1500, seed=7), _positive, double_llm, metric="recall")
    fig = res.report.plot()
    ax1, ax2 = fig.axes
    assert ax1.get_xlabel() == "proxy P(yes)"
    assert ax2.get_xlabel() == "share of rows sent to the LLM"
    assert len(ax2.lines) >= 3


def test_plot_without_matplotlib_names_the_extra(double_llm, monkeypatch):
    res = _label(_texts(1500, seed=8), _positive, double_llm)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(
        MissingDependencyError, match=r"pip install 'thrifty-frames\[plot\]'"
    ):
        res.report.plot()


def test_plot_without_calibration_scores_says_why(double_llm):
    res = _label(_texts(800, seed=9), _positive, double_llm, target=None)
    with pytest.raises(EmptyInputError, match="target=None"):
        res.report.plot()


def test_report_to_dict_holds_plain_calibration_lists(double_llm):
    res = _label(_texts(1200, seed=10), _positive, double_llm)
    d = res.report.to_dict()
    assert isinstance(d["calibration"]["conf"], list)
    assert len(d["calibration"]["conf"]) == d["threshold"]["calibration_rows"] == 250


def test_fallback_proxy_reports_what_keeping_every_answer_delivers(double_llm):
    def coin(t: str) -> str:
        return "yes" if hashlib.md5(t.encode()).digest()[0] % 2 else "no"

    with pytest.warns(ProxyNotViableWarning, match="fallback='proxy'"):
        res = _label(_texts(1500, seed=11), coin, double_llm, fallback="proxy")
    rep = res.report
    assert rep.decided_by["proxy"] == 1000
    assert rep.achieved["kept_share"] == 1.0
    assert not rep.achieved["met"] and rep.achieved["estimate"] < 0.7
    assert "target NOT met" in str(rep)
