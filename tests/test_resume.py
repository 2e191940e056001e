"""An interrupted run resumes with exactly the calls that are still missing.

Two ways to interrupt: a test double that raises ``KeyboardInterrupt`` midway
(as Ctrl-C does), and a child process labeling through litellm that is killed
with SIGKILL while the scripted server (a test double, not a model) counts
every request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pandas as pd
import pytest

import thrifty_frames as tf
from thrifty_frames.backends.llm.fake_server import FakeOpenAIServer, Reply
from thrifty_frames.backends.llm.litellm_backend import LiteLLM
from thrifty_frames.cache import LabelCache

pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning"
)  # see test_llm_server

N = 200
PROMPT = "Is this review positive?"


def _texts() -> list[str]:
    return [f"review {i}: {'good' if i % 3 else 'awful'} film" for i in range(N)]


def _answer(text: str) -> str:
    return "yes" if "good" in text else "no"


@pytest.mark.parametrize("workers", [1, 4])
def test_keyboard_interrupt_then_rerun_makes_only_the_missing_calls(
    double_llm, tmp_path, workers
):
    df = pd.DataFrame({"t": _texts()})
    opts = dict(sample_size=N, cache_dir=tmp_path, progress=False)
    first = double_llm(
        _answer, max_concurrency=workers, fail_after=N // 2 + 1, id="double/resume"
    )
    with pytest.raises(KeyboardInterrupt):
        df.thrifty.mask(PROMPT, llm=first, **opts)
    answered = N // 2  # calls 1..100 answered; every later call raised
    assert len(LabelCache(tmp_path)) == answered

    second = double_llm(_answer, max_concurrency=workers, id="double/resume")
    mask = df.thrifty.mask(PROMPT, llm=second, **opts)
    assert second.calls == N - answered
    assert set(second.seen).isdisjoint(first.seen[:answered])
    assert mask.tolist() == [_answer(t) == "yes" for t in _texts()]
    rep = tf.last_report()
    assert (rep.llm_calls, rep.cache_hits) == (N - answered, answered)
    assert rep.decided_by == {
        "llm": N - answered,
        "cache": answered,
        "proxy": 0,
        "proxy_below_target": 0,
        "none": 0,
    }

    third = double_llm(_answer, id="double/resume")
    df.thrifty.mask(PROMPT, llm=third, **opts)
    assert third.calls == 0


CHILD = textwrap.dedent(
    """
    import sys
    import pandas as pd
    import thrifty_frames  # noqa: F401
    from thrifty_frames.backends.llm.litellm_backend import LiteLLM

    url, cache, workers, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    texts = [f"review {i}: {'good' if i % 3 else 'awful'} film" for i in range(n)]
    llm = LiteLLM("openai/some-model", api_base=url, api_key="test",
                  max_concurrency=workers)
    pd.DataFrame({"t": texts}).thrifty.mask(
        "Is this review positive?", llm=llm, sample_size=n, cache_dir=cache
    )
    print("finished")  # never reached: the parent kills this process
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 8])
def test_killed_process_then_rerun_makes_exactly_the_remaining_calls(tmp_path, workers):
    stop_at = N // 2
    reached = threading.Event()
    release = threading.Event()
    phase = {"killing": True}

    def script(req):
        if phase["killing"] and len(server.requests) > stop_at:
            reached.set()
            release.wait(60)  # hold the request until the child is dead
            return Reply(drop=True)
        return Reply.json_label(_answer(req.text))

    with FakeOpenAIServer(script) as server:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                server.url,
                str(tmp_path),
                str(workers),
                str(N),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert reached.wait(180), child.stderr.read1().decode(errors="replace")
            child.kill()
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
            phase["killing"] = False
            release.set()
        sent_before_kill = server.count
        cached = len(LabelCache(tmp_path))
        if workers == 1:
            # One request at a time: request 101 arrived only after answer 100
            # was written to the cache.
            assert cached == stop_at
        else:
            assert stop_at - workers <= cached <= stop_at

        llm = LiteLLM("openai/some-model", api_base=server.url, api_key="test")
        mask = pd.DataFrame({"t": _texts()}).thrifty.mask(
            PROMPT, llm=llm, sample_size=N, cache_dir=tmp_path
        )
        rerun_calls = server.count - sent_before_kill
    assert rerun_calls == N - cached
    assert mask.tolist() == [_answer(t) == "yes" for t in _texts()]
    assert tf.last_report().cache_hits == cached
