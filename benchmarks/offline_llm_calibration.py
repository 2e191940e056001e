"""How the offline model answers with contextual calibration (prompt version 3).

Asks LocalLLM (calibrate=True) on 30 synthetic reviews written by
thrifty_frames.datasets.make_reviews and 30 real SST-2 rows, with the plain
one-turn prompt "<question>\\n\\nText: <text>" the backend now builds, and
prints accuracy against the known sentiment and the answer counts.

    python benchmarks/offline_llm_calibration.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from thrifty_frames.backends.llm.base import LabelRequest
from thrifty_frames.backends.llm.local import LocalLLM
from thrifty_frames.datasets import make_reviews

SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2.parquet"


def evaluate(llm, texts, gold, question, choices):
    answers = []
    for text in texts:
        msgs = ({"role": "user", "content": f"{question}\n\nText: {text}"},)
        req = LabelRequest(msgs, choices, text, question)
        answers.append(llm.complete(req).text)
    acc = float(np.mean(np.asarray(answers) == np.asarray(gold)))
    return round(acc, 3), pd.Series(answers).value_counts().to_dict()


def main() -> None:
    llm = LocalLLM(calibrate=True)
    syn = make_reviews(30, seed=5)
    sst = pd.read_parquet(SST2).sample(30, random_state=2)
    yes_no, names = ("yes", "no"), ("positive", "negative")
    q_yes = "Is this review positive?"
    q_names = "Is the sentiment of this review positive or negative?"
    rows = [
        ("synthetic", "yes/no", evaluate(llm, syn.review, np.where(syn.positive, "yes", "no"), q_yes, yes_no)),
        ("synthetic", "class names", evaluate(llm, syn.review, np.where(syn.positive, *names), q_names, names)),
        ("SST-2", "yes/no", evaluate(llm, sst.text, np.where(sst.label == "positive", "yes", "no"), q_yes, yes_no)),
        ("SST-2", "class names", evaluate(llm, sst.text, sst.label, q_names, names)),
    ]
    print("| data | choices | accuracy | answers |\n|---|---|---|---|")
    for data, kind, (acc, counts) in rows:
        print(f"| {data} (30 rows) | {kind} | {acc} | {counts} |")


if __name__ == "__main__":
    main()
