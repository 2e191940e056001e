"""Dry-run estimate next to the actual calls, tokens and cost of the IMDB example.

Runs the settings of ``examples/imdb.py`` (5,000 reviews, sample_size=300,
target=0.9, seed 0) through the real litellm path, priced as
``openai/gpt-4o-mini`` from litellm's bundled price map. The "LLM" is
:class:`FakeOpenAIServer` on 127.0.0.1 replaying the human gold labels as its
answers (a stand-in, not a model: real LLMs agree with IMDB gold about 95% of
the time), so calls are real requests, tokens are counted with gpt-4o-mini's
tokenizer, and the cost is what those tokens would cost at gpt-4o-mini prices.

    python benchmarks/llm_cost_imdb.py [--rows 5000] [--out benchmarks/results/llm_cost_imdb.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

import thrifty_frames as tf
from thrifty_frames.backends.llm.fake_server import FakeOpenAIServer, Reply
from thrifty_frames.backends.llm.litellm_backend import LiteLLM, import_litellm

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb.parquet"
PROMPT = "Is this movie review positive?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--sample-size", type=int, default=300)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    df = pd.read_parquet(DATA, columns=["text", "label"])
    df = df.sample(n=args.rows, random_state=0)
    gold = dict(zip(df["text"], df["label"], strict=True))

    def replay(req):
        return Reply.json_label("yes" if gold[req.text] == "pos" else "no")

    opts = dict(column="text", sample_size=args.sample_size, target=0.9, seed=0)
    litellm = import_litellm()

    def usage(body, content):  # what OpenAI would bill: gpt-4o-mini's tokenizer
        pt = litellm.token_counter(model="gpt-4o-mini", messages=body["messages"])
        return pt, litellm.token_counter(model="gpt-4o-mini", text=content or "")

    server = FakeOpenAIServer(replay, usage)
    with server, tempfile.TemporaryDirectory() as cache:
        llm = LiteLLM("openai/gpt-4o-mini", api_base=server.url, api_key="none")
        est = df.thrifty.estimate(PROMPT, llm=llm, cache_dir=cache, **opts)
        assert server.count == 0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df.thrifty.filter(PROMPT, llm=llm, cache_dir=cache, **opts)
        seconds = time.perf_counter() - t0
        requests = server.count
        rep = tf.last_report()
        rest = est.rest_uncached
        escalated = rep.llm_calls - est.sample_calls
        # The same estimate told the share that happened: what is left is the
        # token and price model.
        with tempfile.TemporaryDirectory() as empty:
            told = df.thrifty.estimate(
                PROMPT,
                llm=llm,
                cache_dir=empty,
                escalation_share=escalated / rest,
                **opts,
            )
    rows = [
        (
            "LLM calls",
            f"{est.calls:,} ({est.calls_min:,}-{est.calls_max:,})",
            f"{rep.llm_calls:,} (server counted {requests:,})",
        ),
        (
            "escalated share of the rest",
            f"{est.escalation_share:.0%} (assumed)",
            f"{escalated / rest:.1%} ({escalated:,} of {rest:,})" if rest else "-",
        ),
        ("prompt tokens", f"{est.prompt_tokens:,}", f"{rep.prompt_tokens:,}"),
        (
            "completion tokens",
            f"{est.completion_tokens:,}",
            f"{rep.completion_tokens:,}",
        ),
        (
            "cost (gpt-4o-mini prices)",
            f"${est.cost:.4f} (${est.cost_min:.4f}-${est.cost_max:.4f})",
            f"${rep.cost:.4f}",
        ),
        (
            "estimate told the actual share",
            f"{told.calls:,} calls, {told.prompt_tokens:,} + "
            f"{told.completion_tokens:,} tokens, ${told.cost:.4f}",
            "",
        ),
    ]
    lines = [
        f"IMDB, {args.rows:,} reviews, sample_size={args.sample_size}, target=0.9, "
        f"seed 0; labeling took {seconds:.1f} s",
        "",
        "| | dry-run estimate | actual run |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"Rows decided by: {rep.decided_by}",
    ]
    text = "\n".join(lines)
    print(text)
    print()
    print(est)
    print(rep)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        header = (
            "# Dry-run estimate vs actual (IMDB example settings)\n\n"
            "Measured with `python benchmarks/llm_cost_imdb.py --out "
            f"{args.out}`. The LLM is a local fake server replaying the human "
            "gold labels (a stand-in, not a model); tokens are what litellm "
            "reported for real HTTP requests, priced as openai/gpt-4o-mini from "
            "litellm's bundled price map.\n\n"
        )
        args.out.write_text(header + text + "\n")


if __name__ == "__main__":
    main()
