"""Fit once, predict forever: FittedProxy, its file, drift checks and refits.

The LLM in these tests is a test double (not a language model): on SST-2,
IMDB and AG News rows it replays the data set's human gold label, which is
what a strong LLM answers on these tasks (see ../shared/data/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import fisher_exact

import thrifty_frames as tf
from thrifty_frames.backends.embeddings import default_embedder
from thrifty_frames.backends.embeddings.base import Embedder
from thrifty_frames.backends.embeddings.hashing import HashingEmbedder
from thrifty_frames.backends.llm.doubles import RuleLLMDouble
from thrifty_frames.exceptions import InvalidArgumentError, ProxyFileError
from thrifty_frames.fitted import FittedProxy, fit

from .conftest import sentiment_rule

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Is this movie review positive?"


def gold_replay(frames: list[pd.DataFrame], positive: set[str]) -> RuleLLMDouble:
    """A test double that answers "yes" where the gold label is positive."""
    gold = {}
    for df in frames:
        gold.update(zip(df["text"], df["label"], strict=True))
    return RuleLLMDouble(
        lambda t: "yes" if gold.get(t) in positive else "no", id="double/gold-replay"
    )


@pytest.fixture(scope="module")
def sst2() -> pd.DataFrame:
    from .conftest import SHARED_DATA

    path = SHARED_DATA / "sst2.parquet"
    if not path.exists():
        pytest.skip(f"real data sets not found at {SHARED_DATA}")
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def imdb() -> pd.DataFrame:
    from .conftest import SHARED_DATA

    path = SHARED_DATA / "imdb.parquet"
    if not path.exists():
        pytest.skip(f"real data sets not found at {SHARED_DATA}")
    return pd.read_parquet(path)


def sst2_train(sst2: pd.DataFrame, n: int = 4000) -> pd.DataFrame:
    return sst2[sst2["split"] == "train"].head(n).reset_index(drop=True)


def fit_sst2(
    sst2, proxy="lr", sample_size=1000, **kw
) -> tuple[FittedProxy, RuleLLMDouble]:
    llm = gold_replay([sst2], {"positive"})
    train = sst2_train(sst2)
    p = train.thrifty.fit(
        PROMPT,
        column="text",
        llm=llm,
        proxy=proxy,
        sample_size=sample_size,
        target=0.8,
        cache_dir=False,
        progress=False,
        **kw,
    )
    return p, llm


def test_public_api_exports_load_and_fitted_proxy():
    assert {"load", "FittedProxy"} <= set(tf.__all__)
    assert tf.load is tf.fitted.load
    assert tf.FittedProxy is FittedProxy


@pytest.mark.shared_data
@pytest.mark.slow
def test_round_trip_in_a_fresh_process_gives_identical_predictions(sst2, tmp_path):
    dev = sst2[sst2["split"] != "train"]["text"].tolist()
    expected = {}
    paths = {}
    for proxy, folder in (("lr", False), ("svc", True), ("lgbm", False)):
        p, llm = fit_sst2(sst2, proxy=proxy)
        assert llm.calls == 1000  # the sample only: fit labels nothing else
        res = p.predict(pa.array(dev))
        expected[proxy] = (res.labels.to_pylist(), res.score.to_pylist())
        paths[proxy] = str(p.save(tmp_path / f"{proxy}.proxy", folder=folder))
        assert (tmp_path / f"{proxy}.proxy").is_dir() == folder
    texts_file = tmp_path / "dev.json"
    texts_file.write_text(json.dumps(dev))
    script = textwrap.dedent(
        """
        import json, sys
        import pyarrow as pa
        import thrifty_frames as tf
        paths, texts_file, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
        texts = pa.array(json.load(open(texts_file)))
        got = {}
        for name, path in paths.items():
            p = tf.load(path)
            r = p.predict(texts)
            got[name] = [r.labels.to_pylist(), r.score.to_pylist(),
                         type(p.estimator).__module__ + "." + type(p.estimator).__name__]
        json.dump(got, open(out, "w"))
        """
    )
    out = tmp_path / "got.json"
    subprocess.run(
        [sys.executable, "-c", script, json.dumps(paths), str(texts_file), str(out)],
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    got = json.loads(out.read_text())
    for proxy, (labels, scores) in expected.items():
        assert got[proxy][0] == labels, proxy
        assert got[proxy][1] == scores, proxy  # bit-identical probabilities
        assert len(labels) == 2693
    assert got["lr"][2] == "sklearn.linear_model._logistic.LogisticRegression"
    assert got["svc"][2] == "sklearn.calibration.CalibratedClassifierCV"
    assert got["lgbm"][2] == "lightgbm.sklearn.LGBMClassifier"


@pytest.mark.shared_data
def test_certificate_records_what_the_proxy_was_trained_for(sst2, tmp_path):
    p, _ = fit_sst2(sst2)
    c = p.certificate
    assert c["prompt"] == PROMPT
    assert c["task"] == {"kind": "filter", "classes": ["yes", "no"], "fields": []}
    assert c["llm"] == "double/gold-replay"
    default = default_embedder()
    assert c["embedder"]["id"] == default.id and c["embedder"]["kind"] == "hashing"
    assert c["embedder"]["dim"] == default.dim == p.model_.n_features_in_
    assert c["library_version"] == tf.__version__
    assert c["target"] == 0.8 and c["delta"] == 0.05
    assert c["threshold"]["calibration_rows"] == 500
    assert 0.5 < c["threshold"]["conf_at"] < 1.0
    assert c["threshold"]["certified"] >= 0.8
    q = c["quality"]
    assert q["rows"] == 500 and q["low"] < q["accuracy"] < q["high"]
    assert c["training"]["rows"] == 1000
    assert c["training"]["train_rows"] == 500
    assert len(c["training"]["fingerprint"]) == 64
    assert datetime.fromisoformat(c["created_at"]).utcoffset().total_seconds() == 0
    # The same sample gives the same fingerprint; another seed gives another.
    again, _ = fit_sst2(sst2)
    other, _ = fit_sst2(sst2, seed=1)
    assert again.certificate["training"]["fingerprint"] == c["training"]["fingerprint"]
    assert other.certificate["training"]["fingerprint"] != c["training"]["fingerprint"]
    # What is saved is what is loaded.
    q2 = tf.load(p.save(tmp_path / "p.proxy"))
    assert q2.certificate == json.loads(json.dumps(c))
    assert q2.report.quality == p.report.quality
    assert q2.estimator.coef_.shape == (1, len(q2.columns))


def test_predict_arrow_is_elementwise_and_handles_nulls_and_empty(double_llm):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "great", "dull", "plot", "cast", "fun", "slow"]
    texts = [" ".join(rng.choice(words, 5)) + f" {i}" for i in range(600)]
    p = fit(
        texts,
        "Is it positive?",
        llm=double_llm(),
        sample_size=300,
        target=None,
        cache_dir=False,
        progress=False,
    )
    arr = pa.array(texts[:200] + [None] + texts[:50])
    whole = p.predict_arrow(arr)
    assert whole.type == pa.bool_() and len(whole) == 251
    assert whole[200].as_py() is None and whole.null_count == 1
    # Any split into batches gives the same per-row answers.
    parts = [p.predict_arrow(arr.slice(i, 37)) for i in range(0, 251, 37)]
    assert pa.concat_arrays(parts).equals(whole)
    assert whole.slice(201).equals(whole.slice(0, 50))
    # Every Arrow string flavour, chunked input and empty batches.
    for typ in (pa.large_string(), pa.string_view()):
        assert p.predict_arrow(arr.cast(typ)).equals(whole)
    assert p.predict_arrow(
        pa.chunked_array([arr.slice(0, 100), arr.slice(100)])
    ).equals(whole)
    assert len(p.predict_arrow(pa.array([], pa.string()))) == 0
    assert p.predict_arrow(pa.array([None, None], pa.string())).null_count == 2
    # The proxy learned the double's rule.
    truth = [sentiment_rule(t) == "yes" for t in texts[:200]]
    assert np.mean(np.array(whole.to_pylist()[:200]) == truth) >= 0.9
    prov = p.predict_arrow_provenance(arr)
    assert prov.type.names == ["label", "decided_by", "score"]
    assert prov.field("label").equals(whole)
    assert prov.is_null().to_pylist()[200]
    assert set(prov.field("decided_by").drop_null().to_pylist()) == {
        "proxy"
    }  # no target
    assert 0.5 <= min(prov.field("score").drop_null().to_pylist())


def test_pandas_fit_and_predict_verbs_make_no_llm_calls(double_llm):
    from .test_pandas_frontend import make_reviews, truth

    df = make_reviews(600)
    llm = double_llm()
    proxy = df.thrifty.fit(
        "Is it positive?",
        column="review",
        llm=llm,
        sample_size=300,
        cache_dir=False,
        progress=False,
    )
    assert llm.calls == 300
    assert tf.last_report().verb == "fit"
    new = make_reviews(500, seed=7)
    new.index = [f"r{i}" for i in range(500)][::-1]
    new.loc[new.index[3], "review"] = None
    out = new.thrifty.predict(proxy, into="positive", provenance=True)
    assert llm.calls == 300  # predicting asks nothing
    assert list(out.columns) == [
        "review",
        "stars",
        "positive",
        "positive_decided_by",
        "positive_score",
    ]
    assert out.index.equals(new.index)
    assert str(out["positive"].dtype) == "boolean"
    assert out["positive"].isna().sum() == 1 and pd.isna(out["positive"].iloc[3])
    ok = out["review"].notna().to_numpy()
    assert (out["positive"][ok].to_numpy(bool) == truth(new[ok])).mean() >= 0.95
    assert set(out["positive_decided_by"].dropna()) <= {"proxy", "proxy_below_target"}
    rep = tf.last_report()
    assert rep.verb == "predict" and rep.llm_calls == 0 and rep.rows == 500
    assert rep.decided_by["proxy"] + rep.decided_by["proxy_below_target"] == 499
    with pytest.raises(InvalidArgumentError, match="FittedProxy"):
        new.thrifty.predict("not a proxy")


def test_the_long_text_policy_and_vector_width_travel_with_the_proxy(double_llm, tmp_path):
    """A proxy fitted with long_texts="pool" embeds the same way when it
    predicts, checks and refits, after a save and load too; the file records
    the vectors' width, and an embedder of another width is refused."""
    from thrifty_frames.backends.embeddings.callable import CallableEmbedder

    def words(texts):
        """Counts of "good" and "bad" per text: a text's sentiment is at its end."""
        return np.array([[t.count("good"), t.count("bad")] for t in texts], dtype=np.float32)

    def longify(n, seed):
        rng = np.random.default_rng(seed)
        return pd.DataFrame(
            {"review": ["filler " * 20 + ("good" if g else "bad") + f" {i}"
                        for i, g in enumerate(rng.random(n) < 0.5)]}
        )

    emb = CallableEmbedder(words, id="words/v1", max_chars=80)
    llm = double_llm(lambda t: "yes" if "good" in t else "no")
    train, new = longify(800, 1), longify(400, 2)
    truth = new["review"].str.contains("good").to_numpy()
    proxy = train.thrifty.fit("Is it good?", column="review", llm=llm, embedder=emb,
                              long_texts="pool", sample_size=300, cache_dir=False,
                              progress=False)
    assert proxy.certificate["embedder"]["long_texts"] == "pool"
    assert proxy.certificate["embedder"]["dim"] == 2
    back = tf.load(proxy.save(tmp_path / "p.proxy"), embedder=emb)
    for p in (proxy, back):
        out = new.thrifty.predict(p, column="review", into="pred")
        # Truncating at 80 characters would cut the sentiment word off every text.
        assert (out["pred"].to_numpy(bool) == truth).all()
        assert tf.last_report().truncated_texts == 400
        assert p.check(new, budget=100, column="review", llm=llm, cache_dir=False).accuracy == 1.0
    wide = CallableEmbedder(lambda t: np.zeros((len(t), 3), np.float32), id="words/v1")
    with pytest.raises(InvalidArgumentError, match="3-dimensional vectors but the proxy"):
        tf.load(tmp_path / "p.proxy", embedder=wide).predict_arrow(pa.array(["good"]))


def test_predict_reads_a_cacheable_embedders_vectors_from_the_cache(double_llm, tmp_path):
    """A paid embedder is not called again for texts it already embedded."""
    from thrifty_frames.backends.embeddings.callable import CallableEmbedder

    from .conftest import sentiment_rule
    from .test_pandas_frontend import make_reviews

    seen: list[str] = []

    def emb(texts):
        seen.extend(texts)
        return np.array(
            [[sentiment_rule(t) == "yes", len(t) % 5] for t in texts], np.float32
        )

    embedder = CallableEmbedder(emb, id="paid/v1")
    df = make_reviews(300)
    proxy = df.thrifty.fit("Is it positive?", column="review", llm=double_llm(),
                           embedder=embedder, sample_size=100, cache_dir=tmp_path,
                           target=None, progress=False)
    assert proxy.cache_dir == tmp_path
    n_distinct = df["review"].dropna().nunique()
    seen.clear()
    df.thrifty.predict(proxy, column="review", into="pred")
    rep = tf.last_report()
    assert rep.distinct_texts == n_distinct
    assert rep.embedding_cache_hits + rep.embedded_texts == n_distinct
    assert len(seen) == rep.embedded_texts == n_distinct - 100  # the sample was cached
    seen.clear()
    back = tf.load(proxy.save(tmp_path / "p.proxy"), embedder=embedder)
    back.cache_dir = tmp_path
    df.thrifty.predict(back, column="review", into="pred")
    assert seen == [] and tf.last_report().embedding_cache_hits == n_distinct
    back.cache_dir = False
    df.thrifty.predict(back, column="review", into="pred")
    assert len(seen) == n_distinct


def test_check_reads_polars_categorical_and_enum_columns(double_llm):
    import polars as pl

    from .test_pandas_frontend import make_reviews

    df = make_reviews(400)
    llm = double_llm()
    proxy = df.thrifty.fit("Is it positive?", column="review", llm=llm, sample_size=200,
                           cache_dir=False, progress=False)
    fresh = pl.from_pandas(make_reviews(300, seed=3)[["review"]])
    plain = proxy.check(fresh, budget=100, column="review", llm=llm, cache_dir=False)
    for dtype in (pl.Categorical, pl.Enum(fresh["review"].unique().drop_nulls().sort())):
        got = proxy.check(fresh.with_columns(pl.col("review").cast(dtype)), budget=100,
                          column="review", llm=llm, cache_dir=False)
        assert got.rows == 100 and got.accuracy == plain.accuracy


@pytest.mark.shared_data
def test_classify_proxy_with_a_template_prompt_round_trips(shared_data, tmp_path):
    ag = pd.read_parquet(shared_data / "ag_news.parquet")
    classes = ["World", "Sports", "Business", "Sci/Tech"]
    prompt = "Topic of: {title} || {description}"
    gold = dict(
        zip(
            "Topic of: " + ag["title"] + " || " + ag["description"],
            ag["label"],
            strict=True,
        )
    )
    # A test double replaying AG News gold labels for the rendered template.
    llm = RuleLLMDouble(lambda t: gold[t], id="double/gold-replay")
    train, test = ag.iloc[:3000], ag.iloc[3000:3400]
    p = train.thrifty.fit(
        prompt,
        classes,
        llm=llm,
        sample_size=1200,
        target=None,
        cache_dir=False,
        progress=False,
    )
    assert p.task.fields == ("title", "description")
    out = test.thrifty.predict(p, into="topic")
    assert list(out["topic"].cat.categories) == classes
    assert (out["topic"].astype(str) == test["label"]).mean() >= 0.6
    q = tf.load(p.save(tmp_path / "ag.zip"))
    assert test.thrifty.predict(q, into="topic")["topic"].equals(out["topic"])
    # A classify proxy's Arrow labels are strings of its classes.
    got = q.predict(
        pa.table({"title": ["Stocks fall"], "description": ["Markets slide"]})
    )
    assert got.labels.type == pa.string() and got.labels[0].as_py() in classes


@pytest.mark.shared_data
def test_check_measures_the_proxy_on_fresh_rows_and_refit_builds_on_it(
    sst2, imdb, tmp_path
):
    p, _ = fit_sst2(sst2)
    q = tf.load(p.save(tmp_path / "p.proxy"))
    cert = q.certificate["quality"]
    with pytest.raises(InvalidArgumentError, match="llm is required"):
        q.check(imdb, budget=10, column="text")
    llm = gold_replay([sst2, imdb], {"positive", "pos"})
    # Same distribution (SST-2 training phrases the proxy never saw): holds.
    held_out = sst2_train(sst2, 60000).iloc[30000:]
    same = q.check(held_out, budget=400, column="text", llm=llm)
    assert same.rows == 400 and same.llm_calls == 400
    assert same.holds and same.cascade_holds
    assert same.low <= cert["accuracy"] <= same.high
    # IMDB: the check's figures are the proxy's agreement with the LLM there.
    drift = q.check(imdb, budget=400, column="text", llm=llm, seed=1)
    gold = (imdb.set_index("text")["label"] == "pos").groupby(level=0).first()
    assert drift.labels.tolist() == [0 if gold[t] else 1 for t in drift.texts]
    agree = np.mean(
        np.array(q.predict_arrow(pa.array(drift.texts)).to_pylist())
        == gold[drift.texts].to_numpy()
    )
    assert drift.accuracy == pytest.approx(agree, abs=0.01)
    assert drift.loss == pytest.approx(cert["accuracy"] - drift.accuracy)
    assert drift.low < drift.accuracy < drift.high
    assert drift.holds == (drift.high >= cert["low"])
    # The cost side: the share of rows the cascade keeps, against the certificate's.
    assert same.confident_holds
    assert same.confident_low <= same.confident_share <= same.confident_high
    th = q.certificate["threshold"]
    m, m_kept = th["calibration_rows"], round(th["kept_share"] * th["calibration_rows"])
    kept = round(drift.confident_share * 400)
    p_less = fisher_exact([[kept, 400 - kept], [m_kept, m - m_kept]], "less")[1]
    assert drift.confident_holds == (p_less >= 0.05)
    assert drift.extra_llm_per_1000 == pytest.approx(
        1000 * (th["kept_share"] - drift.confident_share)
    )
    assert q.last_check is drift
    # Concept drift: the LLM now answers the other way (a double that negates
    # the gold label) on the same fresh SST-2 rows: a certain, significant loss.
    negated = gold_replay([sst2], {"negative"})
    negated.id = "double/gold-replay-negated"
    broken = q.check(held_out, budget=400, column="text", llm=negated)
    assert broken.accuracy == pytest.approx(1 - same.accuracy)
    assert not broken.holds and broken.high < cert["low"]
    assert not broken.cascade_holds
    # Which rows are confident depends on the texts only, not on the LLM.
    assert broken.confident_share == same.confident_share and broken.confident_holds
    assert "NO: significant loss" in str(broken)
    assert "certificate was made with 'double/gold-replay'" in broken.notes[0]
    # The label cache serves a repeated check for free.
    cache = tmp_path / "cache"
    first = q.check(imdb, budget=50, column="text", llm=llm, seed=2, cache_dir=cache)
    again = q.check(imdb, budget=50, column="text", llm=llm, seed=2, cache_dir=cache)
    assert first.llm_calls == 50 and again.llm_calls == 0 and again.cache_hits == 50
    assert again.accuracy == first.accuracy
    # Refit on the IMDB check's labels: a new proxy, certified on fresh IMDB rows.
    r = q.refit(drift)
    assert r is not q and q.certificate["training"]["rows"] == 1000
    t = r.certificate["training"]
    assert t["refit_of"] == q.certificate["training"]["fingerprint"]
    assert t["train_rows"] == 1000 + 200 and t["calibration_rows"] == 200
    assert r.certificate["quality"]["rows"] == 200
    assert r.certificate["quality"]["method"] == "fresh calibration rows (refit)"
    r2 = tf.load(r.save(tmp_path / "r.proxy"))
    texts = pa.array(imdb["text"].iloc[:300].tolist())
    assert r2.predict_arrow(texts).equals(r.predict_arrow(texts))


@pytest.mark.shared_data
def test_save_without_training_rows_still_predicts_and_refits(sst2, tmp_path):
    p, _ = fit_sst2(sst2)
    slim = p.save(tmp_path / "slim.proxy", training=False)
    full = p.save(tmp_path / "full.proxy")
    assert slim.stat().st_size < full.stat().st_size
    q = tf.load(slim)
    texts = pa.array(sst2["text"].iloc[-500:].tolist())
    assert q.predict_arrow(texts).equals(p.predict_arrow(texts))
    llm = gold_replay([sst2], {"positive"})
    q.check(sst2.iloc[-2000:], budget=300, column="text", llm=llm)
    r = q.refit()
    assert r.certificate["training"]["train_rows"] == 150  # the fresh rows only


def test_refit_without_a_check_is_an_error(double_llm):
    from .test_pandas_frontend import make_reviews

    p = make_reviews(300).thrifty.fit(
        "Is it positive?",
        llm=double_llm(),
        sample_size=200,
        cache_dir=False,
        progress=False,
        target=None,
    )
    with pytest.raises(InvalidArgumentError, match="check"):
        p.refit()


# -- load errors ------------------------------------------------------------------
@pytest.fixture
def small_proxy(double_llm) -> FittedProxy:
    from .test_pandas_frontend import make_reviews

    return make_reviews(400).thrifty.fit(
        "Is it positive?",
        llm=double_llm(),
        sample_size=200,
        cache_dir=False,
        progress=False,
        target=None,
    )


def _rewrite_manifest(folder: Path, change) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    change(m)
    (folder / "manifest.json").write_text(json.dumps(m))


def test_newer_format_version_is_refused_with_an_upgrade_hint(small_proxy, tmp_path):
    folder = small_proxy.save(tmp_path / "p", folder=True)
    _rewrite_manifest(
        folder, lambda m: m.update(format_version=99, library_version="9.0")
    )
    with pytest.raises(ProxyFileError, match=r"format version 99.*pip install -U"):
        tf.load(folder)


def test_truncated_and_corrupted_files_are_refused(small_proxy, tmp_path):
    path = small_proxy.save(tmp_path / "p.proxy")
    data = path.read_bytes()
    cut = tmp_path / "cut.proxy"
    for n in (len(data) // 2, len(data) - 10, 3):
        cut.write_bytes(data[:n])
        with pytest.raises(ProxyFileError, match="truncated|not a thrifty-frames"):
            tf.load(cut)
    folder = small_proxy.save(tmp_path / "f", folder=True)
    coef = folder / "est_coef.npy"
    raw = bytearray(coef.read_bytes())
    raw[-3] ^= 0xFF  # one flipped bit pattern in a coefficient
    coef.write_bytes(bytes(raw))
    with pytest.raises(ProxyFileError, match="checksum; the file is corrupted"):
        tf.load(folder)
    coef.write_bytes(bytes(raw[:-8]))
    with pytest.raises(ProxyFileError, match="truncated|corrupted"):
        tf.load(folder)
    coef.unlink()
    with pytest.raises(ProxyFileError, match="missing; the file is truncated"):
        tf.load(folder)
    with pytest.raises(ProxyFileError, match="does not exist"):
        tf.load(tmp_path / "nope.proxy")


def test_save_never_clobbers_a_foreign_folder(small_proxy, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ProxyFileError, match="does not hold a saved proxy"):
        small_proxy.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    # Overwriting a saved proxy is fine, folder or file.
    small_proxy.save(tmp_path / "p", folder=True)
    small_proxy.save(tmp_path / "p", folder=True)
    small_proxy.save(tmp_path / "p")
    assert tf.load(tmp_path / "p").certificate == small_proxy.certificate


class _CountingEmbedder(Embedder):
    """A custom embedder that the file cannot rebuild (bag of two words)."""

    id = "custom/two-words"
    dim = 2

    def embed(self, texts):
        return np.array(
            [[t.count("good") + t.count("great"), t.count("bad")] for t in texts],
            dtype=np.float32,
        )


def test_an_embedder_that_cannot_be_rebuilt_needs_embedder_on_load(
    double_llm, tmp_path
):
    from .test_pandas_frontend import make_reviews

    df = make_reviews(300)
    p = df.thrifty.fit(
        "Is it positive?",
        llm=double_llm(),
        sample_size=200,
        embedder=_CountingEmbedder(),
        cache_dir=False,
        progress=False,
        target=None,
    )
    path = p.save(tmp_path / "c.proxy")
    with pytest.raises(ProxyFileError, match=r"custom/two-words.*embedder=\.\.\."):
        tf.load(path)
    q = tf.load(path, embedder=_CountingEmbedder())
    assert q.predict(df).labels.equals(p.predict(df).labels)
    with pytest.raises(InvalidArgumentError, match="trained on vectors"):
        tf.load(path, embedder="hashing")


def test_a_changed_hashing_embedder_version_is_refused(small_proxy, tmp_path):
    folder = small_proxy.save(tmp_path / "p", folder=True)
    cert = json.loads((folder / "certificate.json").read_text())
    cert["embedder"]["id"] = cert["embedder"]["id"].replace("/v1", "/v0")
    blob = json.dumps(cert).encode()
    (folder / "certificate.json").write_bytes(blob)
    import hashlib

    def fix(m):
        m["members"]["certificate.json"] = {
            "sha256": hashlib.sha256(blob).hexdigest(),
            "bytes": len(blob),
        }

    _rewrite_manifest(folder, fix)
    with pytest.raises(ProxyFileError, match="its vectors differ; refit"):
        tf.load(folder)


@pytest.mark.shared_data
@pytest.mark.slow
def test_streaming_sink_parquet_memory_stays_well_under_the_data_size(sst2, tmp_path):
    """6 million rows streamed through the proxy with bounded memory.

    The child process measures its own peak resident memory (VmHWM, reset
    after warm-up via /proc/self/clear_refs) while Polars streams the Parquet
    file through ``pl.col("text").thrifty.predict(proxy)`` into
    ``sink_parquet``.
    """
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to measure peak memory")
    # Word n-grams only: the default's character n-grams would triple the time.
    p, _ = fit_sst2(sst2, embedder=HashingEmbedder(word_ngrams=(1, 2)))
    proxy_path = p.save(tmp_path / "p.proxy")
    texts = pa.array(sst2["text"].tolist())
    n = 6_000_000
    idx = np.random.default_rng(0).integers(0, len(texts), n)
    table = pa.table({"id": np.arange(n), "text": texts.take(pa.array(idx))})
    in_memory = table.nbytes  # about 380 MiB
    src, dst = tmp_path / "big.parquet", tmp_path / "out.parquet"
    # Polars' streaming engine reads and buffers whole row groups, and reads
    # ahead while a slow step (the proxy) holds the line: 10,000-row groups (in
    # and out) and a read-ahead of 2 row groups keep its own buffers small.
    # With 100,000-row groups and the default read-ahead its buffering alone
    # grew the process by about 170 MiB on a plain scan -> sink, and by about
    # 320-370 MiB with the proxy, for 1 to 6 million rows: bounded, but not
    # small next to this file. The proxy itself needs about 12 MiB per batch.
    pq.write_table(table, src, row_group_size=10_000)
    del table
    script = textwrap.dedent(STREAM_CHILD)
    res = subprocess.run(
        [sys.executable, "-c", script, str(proxy_path), str(src), str(dst)],
        env={**os.environ, "POLARS_ROW_GROUP_PREFETCH_SIZE": "2"},
        check=True,
        cwd=ROOT,
        timeout=1800,
        capture_output=True,
        text=True,
    )
    fig = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"\nstreaming: {fig} in-memory size of the input {in_memory / 2**20:.0f} MiB")
    out = pq.read_table(dst)
    assert out.num_rows == n
    assert out.column("positive").null_count == 0
    check = out.slice(4_000_000, 3000)
    assert (
        check.column("positive")
        .combine_chunks()
        .equals(p.predict_arrow(check.column("text")))
    )
    # The file was never held whole: the process grew by well under half the
    # input's in-memory size. Measured: 112 MiB of 381 MiB (0.29) with the
    # machine's two cores busy with other jobs. The growth is bounded, not
    # proportional to the file: about 57 MiB is Polars' own scan -> sink
    # buffering (the same with no proxy step), the rest one chunk of the
    # proxy's work (FittedProxy scores 2,048 distinct texts at a time, one
    # chunk at a time in the process, whichever Polars thread calls it).
    assert fig["peak_growth"] < 0.5 * in_memory, (fig, in_memory)


STREAM_CHILD = """
import json, sys, time
import polars as pl
import pyarrow as pa
import thrifty_frames as tf

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

proxy = tf.load(sys.argv[1])
src, dst = sys.argv[2], sys.argv[3]
expr = pl.col("text").thrifty.predict(proxy).alias("positive")
route = "pl.col(...).thrifty.predict"
# Warm up: load every code path once, then reset the high-water mark.
pl.DataFrame({"text": ["warm up"]}).with_columns(expr)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
base = status("VmRSS:")
t0 = time.perf_counter()
pl.scan_parquet(src).with_columns(expr).sink_parquet(dst, row_group_size=10_000)
seconds = time.perf_counter() - t0
peak = status("VmHWM:")
print(json.dumps({"route": route, "baseline_rss": base, "peak_rss": peak,
                  "peak_growth": peak - base, "seconds": round(seconds, 1)}))
"""
