"""The real litellm path against a scripted OpenAI-compatible server on 127.0.0.1.

The server (:class:`FakeOpenAIServer`) is a test double, not a language model:
a Python script decides each reply, and the server counts every request. No
test here talks to the internet.
"""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest

import thrifty_frames as tf
from thrifty_frames._stages.label import LabelSettings
from thrifty_frames.backends.llm.fake_server import FakeOpenAIServer, Reply
from thrifty_frames.backends.llm.litellm_backend import LiteLLM

# litellm keeps an OpenAI client per worker thread and leaves closing their
# sockets to the garbage collector; that is litellm's housekeeping, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

AG = ["World", "Sports", "Business", "Sci/Tech"]

# Row text -> what the server does with it.
BEHAVIOURS = {
    "plain": lambda req: "World",
    "fenced": lambda req: '```json\n{"label": "Sports"}\n```',
    "prose": lambda req: "Sure, happy to help. The category is: Business",
    "wrong case": lambda req: "SCI/TECH",
    "trailing punctuation": lambda req: "Sports.",
    "out of set, then fixed": lambda req: "World" if req.corrective else "Politics",
    "out of set twice": lambda req: "Politics, mostly",
    "429 then ok": lambda req: (
        Reply(status=429, headers={"Retry-After": "1"})
        if req.attempt == 1
        else "Sports"
    ),
    "500 twice then ok": lambda req: (
        Reply(status=500) if req.attempt <= 2 else "Business"
    ),
    "slow then ok": lambda req: (
        Reply("World", delay=3.5) if req.attempt == 1 else "World"
    ),
    "dropped then ok": lambda req: Reply(drop=True) if req.attempt == 1 else "Sci/Tech",
    "always 503": lambda req: Reply(status=503),
}
EXPECTED = {
    "plain": ("World", "llm", 1),
    "fenced": ("Sports", "llm", 1),
    "prose": ("Business", "llm", 1),
    "wrong case": ("Sci/Tech", "llm", 1),
    "trailing punctuation": ("Sports", "llm", 1),
    "out of set, then fixed": ("World", "llm", 2),
    "out of set twice": (None, "none", 2),
    "429 then ok": ("Sports", "llm", 2),
    "500 twice then ok": ("Business", "llm", 3),
    "slow then ok": ("World", "llm", 2),
    "dropped then ok": ("Sci/Tech", "llm", 2),
    "always 503": (None, "none", 5),  # the first try and 4 retries
}


def script(req):
    return BEHAVIOURS[req.text](req)


@pytest.fixture
def fast_backoff(monkeypatch):
    """Shrink the exponential backoff so retries take milliseconds; a server's
    Retry-After is still honoured in full."""
    original = LabelSettings.backoff

    def quick(self, attempt, retry_after):
        self.backoff_base = 0.01
        return original(self, attempt, retry_after)

    monkeypatch.setattr(LabelSettings, "backoff", quick)


@pytest.fixture
def server():
    with FakeOpenAIServer(script) as srv:
        yield srv


def _llm(server, **kw):
    kw.setdefault("timeout", 2.5)
    return LiteLLM("openai/some-model", api_base=server.url, api_key="test", **kw)


def _per_text(server) -> dict[str, int]:
    counts: dict[str, int] = {}
    for req in server.requests:
        counts[req.text] = counts.get(req.text, 0) + 1
    return counts


def test_every_server_behaviour_gives_the_label_or_the_documented_outcome(
    server, fast_backoff, tmp_path
):
    df = pd.DataFrame({"t": list(BEHAVIOURS)})
    t0 = time.monotonic()
    with (
        pytest.warns(tf.UnparseableAnswerWarning),
        pytest.warns(tf.LLMCallFailedWarning),
    ):
        out = df.thrifty.classify(
            "Which topic?", AG, llm=_llm(server), provenance=True, cache_dir=tmp_path
        )
    took = time.monotonic() - t0
    got = {
        t: (None if pd.isna(lbl) else lbl, how)
        for t, lbl, how in zip(
            out["t"], out["label"], out["label_decided_by"], strict=True
        )
    }
    assert got == {t: (lbl, how) for t, (lbl, how, _) in EXPECTED.items()}
    assert _per_text(server) == {t: n for t, (_, _, n) in EXPECTED.items()}
    assert took >= 1.0  # the 429's Retry-After: 1 was honoured

    rep = tf.last_report()
    assert rep.llm_calls == server.count == sum(n for _, _, n in EXPECTED.values())
    assert (rep.unparseable, rep.failed, rep.over_budget) == (1, 1, 0)
    assert rep.prompt_tokens > 0 and rep.completion_tokens > 0
    assert rep.cost == 0.0  # "some-model" has no price in litellm's map
    corrective = [r for r in server.requests if r.corrective]
    assert {r.text for r in corrective} == {
        "out of set, then fixed",
        "out of set twice",
    }
    assert all("not one of the allowed labels" in r.user for r in corrective)

    # A re-run pays only for the failed input: the unparseable one is cached.
    before = server.count
    with (
        pytest.warns(tf.UnparseableAnswerWarning),
        pytest.warns(tf.LLMCallFailedWarning),
    ):
        df.thrifty.classify("Which topic?", AG, llm=_llm(server), cache_dir=tmp_path)
    assert server.count - before == 5
    assert {r.text for r in server.requests[before:]} == {"always 503"}


def test_json_schema_is_requested_accepted_and_parsed(tmp_path):
    def schema_server(req):
        fmt = req.response_format
        assert fmt["type"] == "json_schema"
        enum = fmt["json_schema"]["schema"]["properties"]["label"]["enum"]
        assert enum == AG
        assert req.body["max_tokens"] == 256  # bounds the cost reserved per call
        assert req.body["temperature"] == 0
        return Reply.json_label("Sci/Tech" if "chip" in req.text else "Sports")

    df = pd.DataFrame({"t": ["new chip", "big match", "another chip"]})
    with FakeOpenAIServer(schema_server) as srv:
        llm = _llm(srv, structured=True)
        out = df.thrifty.classify("Which topic?", AG, llm=llm, cache_dir=tmp_path)
        assert srv.count == 3
    assert list(out["label"]) == ["Sci/Tech", "Sports", "Sci/Tech"]


def test_priced_model_asks_for_a_schema_by_itself_and_costs_from_local_prices(tmp_path):
    seen = []

    def srv_script(req):
        seen.append(req.response_format)
        return Reply.json_label("World")

    with FakeOpenAIServer(srv_script) as srv:
        llm = LiteLLM("openai/gpt-4o-mini", api_base=srv.url, api_key="test")
        df = pd.DataFrame({"t": ["a", "b"]})
        df.thrifty.classify("Which topic?", AG, llm=llm, cache_dir=tmp_path)
    assert all(f and f["type"] == "json_schema" for f in seen)
    rep = tf.last_report()
    assert rep.llm_calls == 2
    # gpt-4o-mini's bundled price: $0.15 / 1M prompt, $0.60 / 1M completion tokens.
    expected = rep.prompt_tokens * 0.15e-6 + rep.completion_tokens * 0.60e-6
    assert rep.cost == pytest.approx(expected, rel=1e-6)
    assert rep.cost > 0


def test_reasoning_models_get_no_answer_cap_but_a_large_cost_reserve():
    llm = LiteLLM("openai/o3-mini")
    assert llm.max_tokens is None and llm.answer_tokens == 4096
    assert LiteLLM("openai/gpt-4o-mini").max_tokens == 256
    assert LiteLLM("openai/gpt-4o-mini", max_tokens=50).answer_tokens == 50


def test_a_provider_that_rejects_the_schema_gets_plain_text_requests(
    tmp_path, fast_backoff
):
    def no_schema(req):
        if req.response_format is not None:
            return Reply(status=400)
        return "World"

    df = pd.DataFrame({"t": ["a", "b", "c"]})
    with FakeOpenAIServer(no_schema) as srv:
        llm = _llm(srv, structured=None)
        llm._structured = True  # as if litellm's model data claimed support
        out = df.thrifty.classify("Which topic?", AG, llm=llm, cache_dir=tmp_path)
        assert srv.count == 4  # one rejected request, then plain text only
        assert [r.response_format is None for r in srv.requests] == [
            False,
            True,
            True,
            True,
        ]
    assert list(out["label"]) == ["World"] * 3


def test_a_bad_key_stops_the_run_with_a_backend_error(tmp_path):
    df = pd.DataFrame({"t": [f"text {i}" for i in range(100)]})
    with FakeOpenAIServer(lambda req: Reply(status=401)) as srv:
        with pytest.raises(tf.BackendError, match="API key"):
            df.thrifty.classify("Which topic?", AG, llm=_llm(srv), cache_dir=tmp_path)
        assert srv.count == 1  # the first request goes alone and stops the run


def test_the_string_form_reads_litellm_environment(monkeypatch, tmp_path):
    with FakeOpenAIServer(lambda req: "Sports") as srv:
        monkeypatch.setenv("OPENAI_API_BASE", srv.url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        df = pd.DataFrame({"t": ["a", "b"]})
        out = df.thrifty.classify(
            "Which topic?", AG, llm="openai/some-model", cache_dir=tmp_path
        )
        assert srv.count == 2
    assert list(out["label"]) == ["Sports", "Sports"]


def test_runs_inside_a_running_event_loop(tmp_path):
    """Like a Jupyter cell: the verb is called while an asyncio loop runs."""
    df = pd.DataFrame({"t": [f"match {i}" for i in range(30)]})

    with FakeOpenAIServer(lambda req: "Sports") as srv:

        async def main():
            asyncio.get_running_loop()  # a loop is running here
            plain = df.thrifty.classify(
                "Which topic?", AG, llm=_llm(srv), cache_dir=tmp_path / "a"
            )
            # An async app keeps its loop free by handing the call to a thread.
            threaded = await asyncio.to_thread(
                df.thrifty.classify,
                "Which topic?",
                AG,
                llm=_llm(srv),
                cache_dir=tmp_path / "b",
            )
            return plain, threaded

        plain, threaded = asyncio.run(main())
        assert srv.count == 60
    assert list(plain["label"]) == ["Sports"] * 30
    assert list(threaded["label"]) == ["Sports"] * 30


class _FakeClock:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rpm_limit_spaces_requests():
    """With rpm=3, the fourth request waits for the one-minute window."""
    from thrifty_frames._stages.label import RateLimiter

    clock = _FakeClock()
    limiter = RateLimiter(rpm=3, sleep=clock.sleep, clock=clock)
    for _ in range(3):
        limiter.acquire(10)
    assert not clock.slept
    limiter.acquire(10)
    assert sum(clock.slept) == pytest.approx(60.0, abs=0.1)


def test_tpm_limit_counts_tokens():
    from thrifty_frames._stages.label import RateLimiter

    clock = _FakeClock()
    limiter = RateLimiter(tpm=100, sleep=clock.sleep, clock=clock)
    limiter.acquire(60)
    limiter.acquire(30)
    assert not clock.slept
    limiter.acquire(30)  # 120 > 100 tokens in the window: wait for it to slide
    assert sum(clock.slept) == pytest.approx(60.0, abs=0.1)


def test_retry_after_pauses_every_worker():
    from thrifty_frames._stages.label import RateLimiter

    clock = _FakeClock()
    limiter = RateLimiter(sleep=clock.sleep, clock=clock)
    limiter.pause(7.0)
    limiter.acquire(10)
    assert sum(clock.slept) == pytest.approx(7.0)


def test_backoff_is_exponential_with_jitter_and_honours_retry_after():
    s = LabelSettings(backoff_base=0.5, backoff_max=30.0)
    for attempt, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 30.0)]:
        delays = [s.backoff(attempt, None) for _ in range(200)]
        assert all(0.5 * nominal <= d < 1.5 * nominal for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert all(s.backoff(1, 7.0) >= 7.0 for _ in range(50))
    assert s.backoff(1, 10_000) <= s.retry_after_max * 1.0 + 1e-9


OFFLINE_CHILD = """
import os, socket
os.environ.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
tried = []
real_connect = socket.socket.connect

def guarded(self, address):
    tried.append(address)
    raise OSError("network disabled by the test")

def guarded_lookup(host, *args, **kwargs):
    tried.append(host)
    raise OSError("network disabled by the test")

socket.socket.connect = guarded
socket.getaddrinfo = guarded_lookup
from thrifty_frames.backends.llm.litellm_backend import LiteLLM
llm = LiteLLM("openai/gpt-4o-mini")
cost = llm.estimate_cost(1000, 10)
assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
assert cost > 0, cost
assert tried == [], tried
print("offline ok", cost)
"""


def test_prices_come_from_the_bundled_map_without_any_connection():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", OFFLINE_CHILD],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            k: v
            for k, v in __import__("os").environ.items()
            if k != "LITELLM_LOCAL_MODEL_COST_MAP"
        },
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "offline ok" in out.stdout
