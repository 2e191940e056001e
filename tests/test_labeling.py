"""The label stage through the verbs: caps, unparseable answers, templates,
callables, the cache and the dry-run estimate.

The LLM here is :class:`RuleLLMDouble` (a rule, not a model) or the scripted
:class:`FakeOpenAIServer` (a test double of an OpenAI-compatible server).
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import thrifty_frames as tf
from thrifty_frames._core import pipeline
from thrifty_frames.backends.llm import TransientBackendError
from thrifty_frames.backends.llm.callable import CallableLLM
from thrifty_frames.backends.llm.fake_server import FakeOpenAIServer, Reply
from thrifty_frames.backends.llm.litellm_backend import LiteLLM
from thrifty_frames.cache import LabelCache

AG = ["World", "Sports", "Business", "Sci/Tech"]


def _reviews(n: int) -> pd.DataFrame:
    words = ["good", "great", "awful", "dull", "fun", "bad"]
    return pd.DataFrame({"t": [f"review {i} was {words[i % 6]}" for i in range(n)]})


# -- caps --------------------------------------------------------------------------


def test_max_llm_calls_50_on_a_1000_row_sample_makes_50_calls_and_says_so(
    double_llm, tmp_path
):
    df = _reviews(1000)
    llm = double_llm(max_concurrency=4)
    with pytest.warns(tf.BudgetExceededWarning, match="max_llm_calls=50") as rec:
        out = df.thrifty.label(
            "Is it positive?",
            llm=llm,
            sample_size=1000,
            max_llm_calls=50,
            cache_dir=tmp_path,
        )
    assert llm.calls == 50
    assert rec[0].filename == __file__  # the warning points at the user's line
    rep = out.report
    assert (rep.llm_calls, rep.over_budget) == (50, 950)
    assert rep.decided_by["llm"] == 50 and rep.decided_by["none"] == 950
    assert any("max_llm_calls=50 was reached" in n for n in rep.notes)
    how = out.decided_by.to_pylist()
    labels = out.labels.to_pylist()
    assert all(
        (lbl is None) == (h == "none") for lbl, h in zip(labels, how, strict=True)
    )

    # Raising the cap and re-running pays only for the rest.
    more = double_llm()
    out2 = df.thrifty.label(
        "Is it positive?", llm=more, sample_size=1000, cache_dir=tmp_path
    )
    assert more.calls == 950
    assert out2.report.cache_hits == 50


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_max_llm_calls_counts_every_request_the_server_sees(tmp_path, monkeypatch):
    """Retries after 429 are calls too: the server never sees more than the cap."""
    from thrifty_frames._stages.label import LabelSettings

    monkeypatch.setattr(LabelSettings, "backoff", lambda self, a, r: 0.0)

    def script(req):
        if req.attempt == 1 and len(req.text) % 3 == 0:
            return Reply(status=429)
        return Reply.json_label("yes" if "good" in req.text else "no")

    with FakeOpenAIServer(script) as srv:
        llm = LiteLLM("openai/some-model", api_base=srv.url, api_key="t", timeout=60)
        with pytest.warns(tf.BudgetExceededWarning):
            df = _reviews(1000)
            df.thrifty.mask(
                "Is it positive?",
                llm=llm,
                sample_size=1000,
                max_llm_calls=50,
                cache_dir=tmp_path,
            )
        assert srv.count == 50
        assert sum(r.attempt == 1 for r in srv.requests) < 50  # some were retries
    assert tf.last_report().llm_calls == 50


def test_max_llm_calls_with_a_proxy_returns_every_row_with_provenance(
    double_llm, tmp_path
):
    df = _reviews(1000)
    llm = double_llm()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = df.thrifty.classify(
            "Is it positive?",
            ["yes", "no"],
            llm=llm,
            sample_size=300,
            max_llm_calls=120,
            provenance=True,
            cache_dir=tmp_path,
        )
    assert llm.calls == 120
    assert any(issubclass(w.category, tf.BudgetExceededWarning) for w in rec)
    assert len(out) == 1000
    allowed = {"llm", "proxy", "proxy_below_target", "none"}
    assert set(out["label_decided_by"]) <= allowed
    assert (out["label_decided_by"] == "llm").sum() == 120


def test_max_cost_is_never_exceeded(double_llm, tmp_path):
    llm = double_llm(cost_per_call=0.01, max_concurrency=4)
    with pytest.warns(tf.BudgetExceededWarning, match="max_cost=0.205"):
        out = _reviews(100).thrifty.label(
            "Is it positive?",
            llm=llm,
            sample_size=100,
            max_cost=0.205,
            cache_dir=tmp_path,
        )
    assert llm.calls == 20
    assert out.report.cost == pytest.approx(0.20)


def test_a_cap_between_an_answer_and_its_correction_keeps_the_first_answer(
    double_llm, tmp_path
):
    def rule(text):
        return "hmm"  # never a label: every first answer needs a correction

    first = double_llm(rule, id="double/correction")
    with pytest.warns(tf.BudgetExceededWarning):
        _reviews(1).thrifty.label(
            "Is it positive?",
            llm=first,
            sample_size=2,
            max_llm_calls=1,
            cache_dir=tmp_path,
        )
    assert first.calls == 1

    seen = []

    def fixed(messages):
        seen.append(messages)
        return "yes"

    llm = CallableLLM(fixed, id="double/correction")
    out = _reviews(1).thrifty.label(
        "Is it positive?", llm=llm, sample_size=2, cache_dir=tmp_path
    )
    assert len(seen) == 1  # only the corrective follow-up was paid for
    assert seen[0][-2] == {"role": "assistant", "content": "hmm"}
    assert out.labels.to_pylist() == [True]


def test_a_failed_correction_keeps_the_first_answer_too(tmp_path):
    asked = []

    def breaks_on_followup(messages):
        asked.append(len(messages))
        if len(messages) > 2:
            raise ConnectionError("client gave up")
        return "hmm"

    df = pd.DataFrame({"t": ["a film"]})
    first = CallableLLM(breaks_on_followup, id="double/followup")
    with pytest.warns(tf.LLMCallFailedWarning):
        df.thrifty.mask("Is it positive?", llm=first, sample_size=2, cache_dir=tmp_path)
    assert asked == [2, 4]  # the question, then the follow-up that failed

    asked.clear()
    second = CallableLLM(lambda m: asked.append(len(m)) or "no", id="double/followup")
    out = df.thrifty.mask(
        "Is it positive?", llm=second, sample_size=2, cache_dir=tmp_path
    )
    assert asked == [4]  # only the follow-up
    assert out.tolist() == [False]


# -- unparseable answers ---------------------------------------------------------


def test_unparseable_answers_are_counted_cached_and_left_out_of_training(
    double_llm, tmp_path, monkeypatch
):
    df = _reviews(600)

    def rule(text):
        if text.endswith("dull"):
            return "it depends"  # outside the labels, every time
        return "yes" if any(w in text for w in ("good", "great", "fun")) else "no"

    trained_on = []
    real_train = pipeline.train_proxy

    def spy(X, y, *args, **kwargs):
        trained_on.append(len(y))
        return real_train(X, y, *args, **kwargs)

    monkeypatch.setattr(pipeline, "train_proxy", spy)
    llm = double_llm(rule)
    with pytest.warns(tf.UnparseableAnswerWarning):
        out = df.thrifty.label(
            "Is it positive?", llm=llm, sample_size=300, target=None, cache_dir=tmp_path
        )
    rep = out.report
    dull_in_sample = rep.unparseable
    assert dull_in_sample > 0
    assert llm.calls == 300 + dull_in_sample  # one corrective retry each
    assert trained_on == [300 - dull_in_sample]

    again = double_llm(rule)
    with pytest.warns(tf.UnparseableAnswerWarning):
        df.thrifty.label(
            "Is it positive?",
            llm=again,
            sample_size=300,
            target=None,
            cache_dir=tmp_path,
        )
    assert again.calls == 0  # unparseable answers are cached, not paid twice


def test_unparseable_rows_without_a_proxy_get_no_label(double_llm, tmp_path):
    df = pd.DataFrame({"t": ["fine", "meh", "fine"]})
    llm = double_llm(lambda t: "yes" if t == "fine" else "perhaps")
    with pytest.warns(tf.UnparseableAnswerWarning):
        out = df.thrifty.filter(
            "Is it positive?",
            llm=llm,
            sample_size=10,
            provenance=True,
            cache_dir=tmp_path,
        )
    assert list(out.index) == [0, 2]
    res = tf.last_report()
    assert res.unparseable == 1 and res.decided_by["none"] == 1
    assert llm.calls == 3  # "fine" once, "meh" twice


# -- distinct inputs, cache ------------------------------------------------------


def test_identical_texts_are_labeled_once(double_llm, tmp_path):
    df = pd.DataFrame({"t": ["good film", "bad film", None] * 40})
    llm = double_llm()
    out = df.thrifty.mask(
        "Is it positive?", llm=llm, sample_size=500, cache_dir=tmp_path
    )
    assert llm.calls == 2
    assert out.tolist() == [True, False, False] * 40


def test_a_changed_prompt_or_label_set_is_never_served_stale(double_llm, tmp_path):
    df = _reviews(10)
    a = double_llm(id="double/same")
    df.thrifty.mask("Is it positive?", llm=a, sample_size=10, cache_dir=tmp_path)
    b = double_llm(id="double/same")
    df.thrifty.mask("Is it negative?", llm=b, sample_size=10, cache_dir=tmp_path)
    c = double_llm(lambda t: "pos", id="double/same")
    df.thrifty.classify(
        "Is it positive?", ["pos", "neg"], llm=c, sample_size=10, cache_dir=tmp_path
    )
    assert (a.calls, b.calls, c.calls) == (10, 10, 10)


def test_cache_lookups_are_batched(tmp_path, monkeypatch):
    import diskcache

    cache = LabelCache(tmp_path)
    cache.put_many((f"k{i}", {"label": "yes", "status": "done"}) for i in range(1200))
    queries = []
    real = diskcache.Cache._sql

    def counting(self):
        execute = real.fget(self)

        def run(sql, *args, **kwargs):
            queries.append(sql)
            return execute(sql, *args, **kwargs)

        return run

    monkeypatch.setattr(diskcache.Cache, "_sql", property(counting))
    found = cache.get_many([f"k{i}" for i in range(1500)])
    assert len(found) == 1200
    assert len(queries) == 3  # 500 keys a query, not one query a key


# -- multi-column prompts ----------------------------------------------------------


@pytest.mark.shared_data
def test_template_over_title_and_description_on_ag_news(
    shared_data, double_llm, tmp_path
):
    df = pd.read_parquet(shared_data / "ag_news.parquet").head(300)
    template = "Title: {title}\nDescription: {description}\nWhich topic is this news?"
    gold = {
        template.format(title=t, description=d): y
        for t, d, y in zip(df["title"], df["description"], df["label"], strict=True)
    }
    llm = double_llm(lambda text: f'{{"label": "{gold[text]}"}}')
    out = df.thrifty.classify(
        template, AG, llm=llm, sample_size=300, cache_dir=tmp_path, into="topic"
    )
    assert (out["topic"].astype(str) == df["label"]).all()
    assert llm.calls == len(set(gold))
    assert all(s.startswith("Title: ") and "\nDescription: " in s for s in llm.seen)


@pytest.mark.shared_data
def test_unknown_placeholder_lists_the_columns(shared_data, double_llm):
    df = pd.read_parquet(shared_data / "ag_news.parquet").head(5)
    with pytest.raises(tf.ColumnNotFoundError, match="'summary'") as err:
        df.thrifty.classify(
            "Title: {title}\nSummary: {summary}", AG, llm=double_llm(), into="topic"
        )
    for col in ("title", "description", "text", "label"):
        assert repr(col) in str(err.value)


def test_into_never_replaces_a_column_of_the_frame(double_llm):
    """The data sets users bring often hold their own gold "label" column."""
    df = pd.DataFrame({"text": ["good", "bad"] * 10, "label": ["pos", "neg"] * 10})
    rule = lambda text: "positive" if "good" in text else "negative"  # noqa: E731
    with pytest.raises(tf.InvalidArgumentError, match="already has a column 'label'"):
        df.thrifty.classify("Which?", ["positive", "negative"], "text", llm=double_llm(rule))
    out = df.thrifty.classify(
        "Which?", ["positive", "negative"], "text", llm=double_llm(rule), into="pred",
        sample_size=20, cache_dir=False,
    )
    assert list(out.columns) == ["text", "label", "pred"]
    df["pred_score"] = 0.0
    with pytest.raises(tf.InvalidArgumentError, match="'pred_score'"):
        df.thrifty.classify("Which?", ["positive", "negative"], "text",
                            llm=double_llm(rule), into="pred", provenance=True)
    pl = pytest.importorskip("polars")
    with pytest.raises(tf.InvalidArgumentError, match="already has a column 'label'"):
        pl.from_pandas(df).lazy().thrifty.classify(
            "Which?", ["positive", "negative"], "text", llm=double_llm(rule)
        )


def test_template_works_on_polars_too(double_llm, tmp_path):
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"title": ["Win", "Chip"], "body": ["match won", "new cpu"]})
    llm = double_llm(lambda t: "Sports" if "match" in t else "Sci/Tech")
    out = df.thrifty.classify(
        "{title}: {body}", AG, llm=llm, sample_size=10, cache_dir=tmp_path
    )
    assert out["label"].to_list() == ["Sports", "Sci/Tech"]
    assert sorted(llm.seen) == ["Chip: new cpu", "Win: match won"]


# -- any callable as the LLM -------------------------------------------------------


def test_a_plain_function_is_the_llm(tmp_path):
    def my_llm(messages, choices):
        assert messages[-1]["role"] == "user"
        return choices[0] if "good" in messages[-1]["content"] else choices[1]

    out = _reviews(12).thrifty.classify(
        "Is it positive?",
        ["pos", "neg"],
        llm=my_llm,
        sample_size=20,
        cache_dir=tmp_path,
    )
    assert out["label"].tolist()[:3] == ["pos", "neg", "neg"]


def test_a_function_that_fails_on_one_input_marks_only_that_input(tmp_path):
    def flaky(messages):
        if "boom" in messages[-1]["content"]:
            raise ValueError("my client broke")
        return "yes"

    df = pd.DataFrame({"t": ["ok 1", "boom", "ok 2"]})
    with pytest.warns(tf.LLMCallFailedWarning):
        out = df.thrifty.mask(
            "Is it positive?", llm=flaky, sample_size=5, cache_dir=tmp_path
        )
    assert out.tolist() == [True, False, True]
    assert tf.last_report().failed == 1


def test_a_function_can_ask_for_retries(tmp_path, monkeypatch):
    from thrifty_frames._stages.label import LabelSettings

    monkeypatch.setattr(LabelSettings, "backoff", lambda self, a, r: 0.0)
    calls = []

    def limited(messages):
        calls.append(1)
        if len(calls) <= 2:
            raise TransientBackendError("slow down", retry_after=0.0)
        return "no"

    out = pd.DataFrame({"t": ["x"]}).thrifty.mask(
        "Is it positive?", llm=limited, sample_size=5, cache_dir=tmp_path
    )
    assert out.tolist() == [False] and len(calls) == 3
    assert tf.last_report().llm_calls == 3


# -- progress ----------------------------------------------------------------------


def test_progress_bar_on_request_and_off_when_not_a_terminal(
    double_llm, tmp_path, capsys
):
    df = _reviews(30)
    df.thrifty.mask(
        "Is it positive?", llm=double_llm(), sample_size=50, cache_dir=tmp_path
    )
    assert "label" not in capsys.readouterr().err  # pytest's stderr is not a TTY
    df.thrifty.mask(
        "Is it negative?",
        llm=double_llm(),
        sample_size=50,
        progress=True,
        cache_dir=tmp_path,
    )
    assert "label" in capsys.readouterr().err


# -- dry run -----------------------------------------------------------------------


def test_estimate_calls_no_llm_and_predicts_the_sample(double_llm, tmp_path):
    df = _reviews(1000)
    llm = double_llm(cost_per_call=0.001)
    est = df.thrifty.estimate(
        "Is it positive?", llm=llm, sample_size=200, cache_dir=tmp_path
    )
    assert isinstance(est, tf.Estimate)
    assert llm.calls == 0
    assert est.sample_calls == 200 and est.cached == 0
    assert est.rest_uncached == 800
    assert est.escalation_share == 0.9 and est.escalation_calls == 720
    assert (est.calls_min, est.calls, est.calls_max) == (200, 920, 1000)
    assert est.prompt_tokens > 0 and est.completion_tokens > 0
    assert est.cost == pytest.approx(0.001)  # the double's flat price, per estimate
    assert "no LLM was called" in str(est)

    # After a real run, the cache makes the sample free.
    df.thrifty.mask("Is it positive?", llm=llm, sample_size=200, cache_dir=tmp_path)
    again = df.thrifty.estimate(
        "Is it positive?",
        llm=llm,
        sample_size=200,
        cache_dir=tmp_path,
        escalation_share=0.1,
    )
    assert again.sample_calls == 0
    assert again.cached >= 200
    assert (
        again.calls == again.escalation_calls == round(0.1 * again.rest_uncached + 0.49)
    )


def test_estimate_respects_the_cap_and_the_price_map(tmp_path):
    df = _reviews(1000)
    llm = LiteLLM("openai/gpt-4o-mini", api_base="http://127.0.0.1:9/v1", api_key="t")
    est = df.thrifty.estimate(
        "Is it positive?",
        llm=llm,
        sample_size=1000,
        max_llm_calls=50,
        cache_dir=tmp_path,
    )
    assert est.calls == est.calls_max == 50
    assert any("max_llm_calls=50" in n for n in est.notes)
    per_call = est.cost / est.calls
    assert 0 < per_call < 1e-4  # gpt-4o-mini prices from litellm's bundled map


def test_estimate_rejects_a_bad_escalation_share(double_llm):
    with pytest.raises(tf.InvalidArgumentError, match="escalation_share"):
        _reviews(10).thrifty.estimate(
            "Is it positive?", llm=double_llm(), escalation_share=2
        )
