"""Accuracy and speed of the offline LLM backend on real labeled data.

Labels ``--rows`` seeded rows of SST-2 (dev split), IMDB (test split) and AG News
with :class:`thrifty_frames.backends.llm.local.LocalLLM`, compares the answers
with the human gold labels and prints one Markdown table row per configuration.
Gold labels here are the data sets' own, not an LLM stand-in.

Run from the repository root::

    python benchmarks/offline_llm.py --rows 100 --threads 1 --n-ctx 1024

``sst2_names`` asks the same SST-2 rows with the class names as choices instead
of yes/no, to show how much the caller's framing matters to this small model.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import pandas as pd

from thrifty_frames.backends.llm.base import LabelRequest
from thrifty_frames.backends.llm.local import LocalLLM

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SYSTEM = "You are a careful annotator. Reply with exactly one of the allowed labels."

# name -> (file, split, question, choices, answer -> gold label)
TASKS = {
    "sst2": (
        "sst2.parquet",
        "dev",
        "Is this review positive?",
        ("yes", "no"),
        {"yes": "positive", "no": "negative"},
    ),
    "sst2_names": (
        "sst2.parquet",
        "dev",
        "What is the sentiment of this review?",
        ("positive", "negative"),
        {},
    ),
    "imdb": (
        "imdb.parquet",
        "test",
        "Is this review positive?",
        ("yes", "no"),
        {"yes": "pos", "no": "neg"},
    ),
    "ag_news": (
        "ag_news.parquet",
        None,
        "Which topic is this news article about?",
        ("World", "Sports", "Business", "Sci/Tech"),
        {},
    ),
}


def load(task: str, rows: int, seed: int) -> pd.DataFrame:
    """Return ``rows`` seeded rows of a task's data set."""
    file, split, *_ = TASKS[task]
    frame = pd.read_parquet(DATA / file, columns=["text", "label", "split"])
    if split is not None:
        frame = frame[frame["split"] == split]
    return frame.sample(n=rows, random_state=seed)


def run(llm: LocalLLM, task: str, frame: pd.DataFrame) -> dict:
    """Label ``frame`` and return accuracy, time per row and answer counts."""
    _, _, question, choices, to_gold = TASKS[task]
    hits = cut = 0
    answers: dict[str, int] = {}
    start = time.perf_counter()
    for text, gold in zip(frame["text"], frame["label"], strict=True):
        messages = (
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{question}\n\nText:\n{text}"},
        )
        done = llm.complete(LabelRequest(messages=messages, choices=choices))
        answers[done.text] = answers.get(done.text, 0) + 1
        hits += to_gold.get(done.text, done.text) == gold
        cut += done.meta["truncated"]
    seconds = time.perf_counter() - start
    return {
        "accuracy": hits / len(frame),
        "s_per_row": seconds / len(frame),
        "answers": answers,
        "truncated": cut,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default="sst2,imdb,ag_news")
    parser.add_argument("--threads", default="1", help="comma-separated")
    parser.add_argument("--n-ctx", default="1024", help="comma-separated")
    parser.add_argument("--list-choices", default="off", help="off,on")
    args = parser.parse_args()

    print(
        "| data | rows | n_ctx | threads | list_choices | accuracy | s/row "
        "| truncated | answers |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    grid = itertools.product(
        args.tasks.split(","),
        [int(n) for n in args.n_ctx.split(",")],
        [int(t) for t in args.threads.split(",")],
        [flag == "on" for flag in args.list_choices.split(",")],
    )
    for task, n_ctx, threads, list_choices in grid:
        llm = LocalLLM(n_ctx=n_ctx, n_threads=threads, list_choices=list_choices)
        llm.complete(  # load and warm up outside the timing
            LabelRequest(({"role": "user", "content": "Hi"},), ("yes", "no"))
        )
        out = run(llm, task, load(task, args.rows, args.seed))
        shown = ", ".join(f"{k} {v}" for k, v in sorted(out["answers"].items()))
        print(
            f"| {task} | {args.rows} | {n_ctx} | {threads} | "
            f"{'on' if list_choices else 'off'} | {out['accuracy']:.2f} | "
            f"{out['s_per_row']:.2f} | {out['truncated']} | {shown} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
