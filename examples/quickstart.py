"""Quickstart: filter a frame of reviews with the embedded offline LLM.

No API key, no network: the LLM is a small local model that runs in-process,
and the embedder hashes words and character n-grams. The data are written by
the project itself.

The offline model (135M parameters) cannot answer yes/no questions (it says
"no" to nearly everything; see benchmarks/results/offline_llm.md), but it can
choose between class names. So the quickstart asks for the sentiment with
``classify`` and keeps the positive rows. With a hosted LLM the same job is
one call: ``df.thrifty.filter("Is this review positive?", llm="openai/gpt-4o-mini")``.

    python examples/quickstart.py
"""

from __future__ import annotations

import argparse
import time

import thrifty_frames as tf
from thrifty_frames.datasets import make_reviews


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=800)
    ap.add_argument("--sample-size", type=int, default=200)
    ap.add_argument("--cache-dir", default=None, help="label cache folder (default: user cache)")
    args = ap.parse_args()

    df = make_reviews(args.rows, seed=0, null_share=0.02)
    print(f"{len(df)} reviews, for example:\n  {df.review.iloc[0]}\n  {df.review.iloc[1]}\n")

    t0 = time.perf_counter()
    out = df.thrifty.classify(
        "Is the sentiment of this review positive or negative?",
        classes=["positive", "negative"],
        column="review",
        into="sentiment",
        sample_size=args.sample_size,
        cache_dir=args.cache_dir,
        provenance=True,
    )
    liked = out[out.sentiment == "positive"]
    wall = time.perf_counter() - t0
    report = tf.last_report()
    print(report)
    print()
    cols = ["review", "sentiment", "sentiment_decided_by", "sentiment_score"]
    print(out[cols].head(8).to_string(max_colwidth=60))
    print()
    agree = (df.index.isin(liked.index) == df.positive)[df.review.notna()].mean()
    print(f"kept {len(liked)} of {len(df)} rows in {wall:.1f}s; "
          f"{report.proxy_rows} rows decided by the proxy, {report.llm_calls} LLM calls")
    print(f"agreement with the sentiment the texts were written with: {agree:.3f}")


if __name__ == "__main__":
    main()
