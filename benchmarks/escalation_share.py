"""How large a share of the not-sampled rows the cascade sends to the LLM.

The dry-run estimate (``df.thrifty.estimate``) cannot know this share before any
label exists, so it assumes one; this script measures it on four real data
sets (5,000 rows each, seed 0, default hashing embedder and lr proxy,
target=0.9) at sample_size 300 and 500. The LLM is RuleLLMDouble replaying the
human gold labels (a test double, not a model).

    python benchmarks/escalation_share.py
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import pandas as pd

import thrifty_frames as tf
from thrifty_frames.backends.llm.doubles import RuleLLMDouble

warnings.simplefilter("ignore")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
cases = [
    (
        "imdb",
        "Is this movie review positive?",
        None,
        lambda y: "yes" if y == "pos" else "no",
    ),
    (
        "sst2",
        "Is this sentence positive?",
        None,
        lambda y: "yes" if y == "positive" else "no",
    ),
    (
        "ag_news",
        "Which topic?",
        ["World", "Sports", "Business", "Sci/Tech"],
        lambda y: y,
    ),
    ("sms_spam", "Is this SMS spam?", None, lambda y: "yes" if y == "spam" else "no"),
]
for name, prompt, classes, mp in cases:
    df = pd.read_parquet(DATA / f"{name}.parquet", columns=["text", "label"])
    df = df.sample(n=5000, random_state=0)
    answers = {t: mp(y) for t, y in zip(df.text, df.label, strict=True)}
    for ss in (300, 500):
        llm = RuleLLMDouble(answers.__getitem__, id=f"d/{name}")
        with tempfile.TemporaryDirectory() as c:
            est = df.thrifty.estimate(
                prompt, classes, column="text", llm=llm, sample_size=ss, cache_dir=c
            )
            df.thrifty.label(
                prompt,
                classes,
                column="text",
                llm=llm,
                sample_size=ss,
                cache_dir=c,
                progress=False,
            )
        rep = tf.last_report()
        print(
            name,
            ss,
            "rest",
            est.rest_uncached,
            "escalated",
            rep.llm_calls - est.sample_calls,
            f"share {(rep.llm_calls - est.sample_calls) / est.rest_uncached:.3f}",
            "viable",
            rep.viable,
            flush=True,
        )
