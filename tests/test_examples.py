"""The drift demo runs end to end and reports what the check finds.

The LLM in the demo is a test double replaying gold labels (not a model).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.shared_data
@pytest.mark.slow
def test_drift_demo_reports_the_losses(shared_data):
    out = subprocess.run(
        [sys.executable, "examples/drift.py"],
        cwd=ROOT,
        env={**os.environ, "THRIFTY_SHARED_DATA": str(shared_data)},
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    ).stdout
    imdb = re.search(r"^loss on IMDB: .*$", out, re.M).group(0)
    sst2 = re.search(r"^loss on SST-2: .*$", out, re.M).group(0)
    # SST-2 proxy on IMDB: accuracy holds, but fewer rows are confident.
    assert "the accuracy certificate still holds" in imdb
    assert "more LLM calls per 1,000 rows" in imdb
    # IMDB proxy on SST-2 phrases: a significant accuracy loss.
    loss = float(re.search(r"loss on SST-2: ([+-][0-9.]+)", sst2).group(1))
    assert loss > 0.1
    assert "the accuracy certificate no longer holds" in sst2
    assert "NO: significant loss" in out
