"""Shared fixtures. The default run needs no network and no API key.

The LLM in most tests is :class:`RuleLLMDouble`, a test double that answers
by a Python rule; tests marked ``slow`` run the real offline model.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_DATA = Path(
    os.environ.get("THRIFTY_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


@pytest.fixture
def shared_data() -> Path:
    """The folder of real labeled data sets; skips when absent (a user checkout)."""
    if not (SHARED_DATA / "imdb.parquet").exists():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (only CI and developers have ../shared/data)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own default label cache folder."""
    monkeypatch.setenv("THRIFTY_FRAMES_CACHE", str(tmp_path / "cache"))


POSITIVE_WORDS = ("good", "great", "love", "excellent", "wonderful", "best", "fun", "enjoy")


def sentiment_rule(text: str) -> str:
    """The double's rule for "Is it positive?": yes when a positive word occurs."""
    t = text.lower()
    return "yes" if any(w in t for w in POSITIVE_WORDS) else "no"


@pytest.fixture
def double_llm():
    """Factory for a rule-based LLM test double (not a language model)."""
    from thrifty_frames.backends.llm.doubles import RuleLLMDouble

    def make(rule=sentiment_rule, **kw):
        return RuleLLMDouble(rule, **kw)

    return make
