"""Fit once on SST-2, save, reload, and check the certificate on IMDB.

Run from the repository root (the data sets live in ../shared/data):

    python examples/drift.py

The "LLM" here is a test double, not a language model: it replays each data
set's human gold label, which is what a strong LLM answers on these sentiment
tasks (published LLM accuracy on both is about 0.94-0.96). Swap in a real
model with ``llm="openai/gpt-4o-mini"`` (or any litellm model string).

What it shows:

1. ``df.thrifty.fit`` pays the LLM for a sample of SST-2 phrases only and
   returns a proxy with its certificate (holdout accuracy, the cascade's
   certified threshold and the share of rows it keeps).
2. ``proxy.save`` / ``thrifty_frames.load`` round-trip it through a file that
   holds JSON and NumPy arrays only.
3. ``proxy.check`` labels a few hundred fresh rows with the LLM and tests the
   certificate on them: on more SST-2 phrases (same distribution), and on IMDB
   reviews (long, HTML-laden film reviews instead of short phrases).
4. The same the other way round: a proxy fitted on IMDB reviews, checked on
   SST-2 phrases; then ``proxy.refit`` trains on the old rows plus the check's
   labels and certifies the new proxy on fresh rows, with no further LLM call.

What the check reports (measured with the default embedder, hashed word and
character n-grams): the SST-2 proxy is *more* accurate on IMDB reviews than
on SST-2 phrases (a long review carries many sentiment words, a phrase from
the treebank a few), so its accuracy certificate holds there; the loss it
shows on IMDB is in the share of rows it is confident about, which falls
significantly (0.58 -> 0.46), so about 120 more rows in 1,000 go to the LLM
than the certificate promised. The IMDB proxy checked on SST-2 phrases loses
accuracy (0.82 -> 0.65) and its certificate fails; the refit on the check's
labels restores a certificate for SST-2.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

import thrifty_frames as tf
from thrifty_frames.backends.llm.doubles import RuleLLMDouble

DATA = Path(
    os.environ.get(
        "THRIFTY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
PROMPT = "Is this movie review positive?"


def fit(frame: pd.DataFrame, llm, cache: Path):
    """Pay the LLM for a 2,000-row sample of ``frame`` and certify a proxy."""
    return frame.thrifty.fit(
        PROMPT,
        column="text",
        llm=llm,
        sample_size=2000,
        target=0.85,
        cache_dir=cache,
        progress=False,
    )


def verdict(name: str, check) -> str:
    """One line: what the check found against each part of the certificate."""
    accuracy = (
        "the accuracy certificate still holds"
        if check.holds and check.cascade_holds
        else "the accuracy certificate no longer holds"
    )
    kept = (
        "as certified"
        if check.confident_holds
        else f"about {check.extra_llm_per_1000:.0f} more LLM calls per 1,000 rows"
    )
    return (
        f"loss on {name}: {check.loss:+.3f} accuracy against the LLM "
        f"({check.accuracy:.3f} vs certified {check.certified_accuracy:.3f}); "
        f"cascade {check.metric} {check.cascade_accuracy:.3f} vs certified >= "
        f"{check.certified_cascade_lower:.3f}: {accuracy}; confident rows "
        f"{check.confident_share:.3f} vs certified "
        f"{check.certified_confident_share:.3f}: {kept}"
    )


def main() -> int:
    if not (DATA / "sst2.parquet").exists():
        print(f"the real data sets are not at {DATA}; set THRIFTY_SHARED_DATA")
        return 0
    sst2 = pd.read_parquet(DATA / "sst2.parquet")
    imdb = pd.read_parquet(DATA / "imdb.parquet")
    phrases = sst2[sst2["split"] == "train"].reset_index(drop=True)
    fit_on, fresh = phrases.iloc[:30_000], phrases.iloc[30_000:]
    reviews = imdb.sample(frac=1.0, random_state=0).reset_index(drop=True)

    gold = dict(zip(sst2["text"], sst2["label"] == "positive", strict=True))
    gold.update(zip(imdb["text"], imdb["label"] == "pos", strict=True))
    llm = RuleLLMDouble(  # a test double replaying gold labels, not an LLM
        lambda text: "yes" if gold.get(text) else "no", id="double/gold-replay"
    )
    cache = Path(tempfile.mkdtemp(prefix="thrifty-drift-"))

    def check(proxy, frame, **kw):
        return proxy.check(frame, budget=500, column="text", llm=llm, cache_dir=cache, **kw)

    proxy = fit(fit_on, llm, cache)
    print(proxy.report)
    path = proxy.save(cache / "sentiment.proxy")
    print(f"\nsaved to {path} ({path.stat().st_size / 1024:.0f} KiB)")

    proxy = tf.load(path)
    cert = proxy.certificate
    q, th = cert["quality"], cert["threshold"]
    print(
        f"certificate: holdout accuracy {q['accuracy']:.3f} "
        f"(95% CI {q['low']:.3f}-{q['high']:.3f}, {q['rows']} rows); cascade "
        f"accuracy >= {th['certified']:.3f} keeping {th['kept_share']:.0%} of rows; "
        f"training fingerprint {cert['training']['fingerprint'][:12]}..."
    )

    print("\n== check on fresh SST-2 phrases (same distribution)")
    print(check(proxy, fresh))
    print("\n== check on IMDB reviews (another distribution)")
    drift = check(proxy, imdb)
    print(drift)
    print("\n" + verdict("IMDB", drift))

    print("\n== the other way round: fit on IMDB reviews, check on SST-2 phrases")
    imdb_proxy = fit(reviews.iloc[:25_000], llm, cache)
    print("on other IMDB reviews:")
    print(check(imdb_proxy, reviews.iloc[25_000:]))
    shifted = check(imdb_proxy, fresh)
    print("on SST-2 phrases:")
    print(shifted)
    print("\n" + verdict("SST-2", shifted))

    print("\n== refit with the SST-2 check's labels, then check on other SST-2 rows")
    refit = imdb_proxy.refit(shifted)
    print(refit.report)
    unseen = fresh[~fresh["text"].isin(shifted.texts)]  # rows the refit never saw
    print(check(refit, unseen, seed=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
