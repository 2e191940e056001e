"""Any litellm chat model as the LLM (``llm="openai/gpt-4o-mini"`` and so on).

Prices come from litellm's bundled price map only: the
``LITELLM_LOCAL_MODEL_COST_MAP`` switch is set before litellm is imported, so
the map is never fetched from the web. A model missing from the map (a local
server, a fine-tune) costs 0.
"""

from __future__ import annotations

import json
import logging
import os

from ...exceptions import BackendError, MissingDependencyError
from .base import (
    Completion,
    InputRejectedError,
    LabelRequest,
    LLMBackend,
    TransientBackendError,
)

logger = logging.getLogger(__name__)

_TRANSIENT_STATUS = (408, 409, 425, 429)


def import_litellm():
    """Import litellm without letting it fetch its price map from the web."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as exc:  # pragma: no cover - litellm is a core dependency
        msg = "litellm is not installed; run: pip install 'thrifty-frames'"
        raise MissingDependencyError(msg) from exc
    # litellm print()s a help banner on every failed call (a retried 429
    # included); the failure itself reaches the user through our report.
    litellm.suppress_debug_info = True
    return litellm


def _retry_after(exc: Exception) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None) or {}
    ms = headers.get("retry-after-ms")
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        if ms is not None:
            return float(ms) / 1000.0
        return None if value is None else max(float(value), 0.0)
    except (TypeError, ValueError):
        return None  # an HTTP date: fall back to our own backoff


def _is_reasoning(model: str) -> bool:
    """Whether litellm's model data marks ``model`` as a reasoning model, whose
    hidden reasoning tokens count against ``max_tokens``."""
    try:
        return bool(import_litellm().supports_reasoning(model=model))
    except Exception:
        return False


def _classify_error(litellm, exc: Exception) -> str:
    """``"transient"``, ``"input"`` (this input was refused) or ``"fatal"``."""
    status = getattr(exc, "status_code", None)
    transient_types = (
        litellm.RateLimitError,
        litellm.Timeout,
        litellm.APIConnectionError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
    )
    if isinstance(exc, transient_types) or status in _TRANSIENT_STATUS:
        return "transient"
    if isinstance(status, int) and status >= 500:
        return "transient"
    input_types = (
        litellm.ContextWindowExceededError,
        litellm.ContentPolicyViolationError,
        litellm.BadRequestError,
        litellm.UnprocessableEntityError,
    )
    if isinstance(exc, input_types) or status in (400, 413, 422):
        return "input"
    return "fatal"


class LiteLLM(LLMBackend):
    """A chat model reached through litellm.

    Parameters
    ----------
    model
        A litellm model string, e.g. ``"openai/gpt-4o-mini"``. With the plain
        string form (``llm="openai/gpt-4o-mini"``) litellm reads the endpoint
        and key from its usual environment variables (``OPENAI_API_KEY``,
        ``OPENAI_API_BASE``, ...).
    max_concurrency
        Requests in flight at once.
    structured
        Ask for a JSON-schema answer (``{"label": <one of the labels>}``).
        ``None`` asks when litellm's model data says the provider supports it;
        if the provider then rejects the schema, later requests go without it.
        Answers are parsed strictly either way.
    timeout
        Seconds per request; a request that takes longer is retried.
    max_tokens
        Cap on answer tokens, sent with every request. It also bounds the cost
        reserved per call, which is what keeps ``max_cost`` exact. ``"auto"``
        sends 256, or nothing for reasoning models (their hidden reasoning
        tokens count against the cap); ``None`` sends nothing.
    **kwargs
        Passed to ``litellm.completion`` (``api_base``, ``api_key``, ...).
        Only ``api_base`` is part of the cache key.

    Examples
    --------
    >>> llm = LiteLLM("openai/my-model", api_base="http://127.0.0.1:8000/v1",
    ...               api_key="none")  # doctest: +SKIP
    >>> df.thrifty.filter("Is it positive?", llm=llm)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str,
        *,
        max_concurrency: int = 8,
        structured: bool | None = None,
        timeout: float = 60.0,
        max_tokens: int | None | str = "auto",
        **kwargs,
    ) -> None:
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        reasoning = _is_reasoning(model)
        if max_tokens == "auto":
            max_tokens = None if reasoning else 256
        self.max_tokens = max_tokens
        # TODO: without max_tokens nothing bounds an answer, so a reasoning model
        # that thinks longer than this reserve can overshoot max_cost by the
        # difference, for each call in flight when the cap is reached.
        self.answer_tokens = max_tokens or (4096 if reasoning else 256)
        self.kwargs = kwargs
        self._structured = structured
        self._schema_confirmed = structured is True
        base = kwargs.get("api_base") or kwargs.get("base_url")
        self.id = f"litellm/{model}" + (f"@{base}" if base else "")

    def _use_schema(self) -> bool:
        if self._structured is not None:
            return self._structured
        litellm = import_litellm()
        try:
            self._structured = bool(litellm.supports_response_schema(model=self.model))
        except Exception:
            self._structured = False
        return self._structured

    def _params(self, request: LabelRequest, schema: bool) -> dict:
        params = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "temperature": 0,
            "timeout": self.timeout,
            "num_retries": 0,  # the labeling stage retries, and counts every request
            "max_retries": 0,
            **self.kwargs,
        }
        if self.max_tokens is not None:
            params.setdefault("max_tokens", self.max_tokens)
        if schema:
            label = {"type": "string", "enum": list(request.choices)}
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "label",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "properties": {"label": label},
                        "required": ["label"],
                        "additionalProperties": False,
                    },
                },
            }
        return params

    def complete(self, request: LabelRequest) -> Completion:
        litellm = import_litellm()
        schema = self._use_schema()
        try:
            resp = litellm.completion(**self._params(request, schema))
        except Exception as exc:
            kind = _classify_error(litellm, exc)
            status = getattr(exc, "status_code", None)
            msg = f"LLM call to {self.model} failed: {type(exc).__name__} (status {status})"
            if kind == "input" and schema and not self._schema_confirmed:
                # The provider may not take response_format after all: drop it
                # and let the labeling stage retry (a budgeted request).
                logger.info(
                    "%s rejected the JSON schema; asking for plain text", self.model
                )
                self._structured = False
                raise TransientBackendError(msg, 0.0) from None
            if kind == "transient":
                raise TransientBackendError(msg, _retry_after(exc)) from None
            if kind == "input":
                raise InputRejectedError(msg) from None
            raise BackendError(
                msg + "; check the model name, api_base and API key."
            ) from None
        if schema:
            self._schema_confirmed = True
        try:
            text = resp.choices[0].message.content
        except (AttributeError, IndexError):
            text = None
        usage = getattr(resp, "usage", None)
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        return Completion(
            text=text,
            prompt_tokens=pt,
            completion_tokens=ct,
            cost=self.estimate_cost(pt, ct),
        )

    def estimate_cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars from litellm's bundled price map; 0 for an unpriced model."""
        litellm = import_litellm()
        try:
            p, c = litellm.cost_per_token(
                model=self.model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
            return float(p + c)
        except Exception:
            return 0.0

    def count_tokens(self, messages: tuple[dict, ...]) -> int:
        litellm = import_litellm()
        try:
            return int(litellm.token_counter(model=self.model, messages=list(messages)))
        except Exception:
            return super().count_tokens(messages)


def schema_answer(text: str | None) -> str | None:
    """The ``label`` field of a JSON answer, or the text unchanged."""
    if not text:
        return text
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if isinstance(obj, dict) and isinstance(obj.get("label"), str):
        return obj["label"]
    return text
