"""Any litellm chat model as the LLM (``llm="openai/gpt-4o-mini"`` and so on)."""

from __future__ import annotations

import json
import logging
import os

from ...exceptions import BackendError, MissingDependencyError
from ..._stages.label import TransientBackendError
from .base import Completion, LabelRequest, LLMBackend

logger = logging.getLogger(__name__)


def import_litellm():
    """Import litellm without letting it fetch its price map from the web."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as exc:  # pragma: no cover - litellm is a core dependency
        msg = "litellm is not installed; run: pip install 'thrifty-frames'"
        raise MissingDependencyError(msg) from exc
    return litellm


def _retry_after(exc: Exception) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None) or {}
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class LiteLLM(LLMBackend):
    """A chat model reached through litellm.

    Parameters
    ----------
    model
        A litellm model string, e.g. ``"openai/gpt-4o-mini"``.
    max_concurrency
        Requests in flight at once.
    structured
        Ask for a JSON-schema answer (an enum of the labels) when litellm says
        the provider supports it; ``False`` asks for plain text. Answers are
        parsed strictly either way.
    timeout
        Seconds per request.
    **kwargs
        Passed to ``litellm.completion`` (``api_base``, ``api_key``, ...).
        They are not part of the cache key, except ``api_base``.
    """

    def __init__(
        self,
        model: str,
        *,
        max_concurrency: int = 8,
        structured: bool | None = None,
        timeout: float = 60.0,
        **kwargs,
    ) -> None:
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.kwargs = kwargs
        self._structured = structured
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

    def complete(self, request: LabelRequest) -> Completion:
        litellm = import_litellm()
        params = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "temperature": 0,
            "timeout": self.timeout,
            "num_retries": 0,
            **self.kwargs,
        }
        if self._use_schema():
            schema = {
                "type": "object",
                "properties": {"label": {"type": "string", "enum": list(request.choices)}},
                "required": ["label"],
                "additionalProperties": False,
            }
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "label", "schema": schema, "strict": True},
            }
        try:
            resp = litellm.completion(**params)
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            transient = (
                status in (408, 409, 425, 429)
                or (isinstance(status, int) and status >= 500)
                or isinstance(
                    exc,
                    (
                        litellm.RateLimitError,
                        litellm.Timeout,
                        litellm.APIConnectionError,
                        litellm.InternalServerError,
                        litellm.ServiceUnavailableError,
                    ),
                )
            )
            msg = f"LLM call to {self.model} failed: {type(exc).__name__} (status {status})"
            if transient:
                raise TransientBackendError(msg, _retry_after(exc)) from None
            raise BackendError(msg) from None
        try:
            text = resp.choices[0].message.content
        except (AttributeError, IndexError):
            text = None
        usage = getattr(resp, "usage", None)
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        try:
            cost = float(litellm.completion_cost(completion_response=resp) or 0.0)
        except Exception:
            cost = 0.0
        return Completion(text=text, prompt_tokens=pt, completion_tokens=ct, cost=cost)

    def estimate_cost(self, prompt_tokens: int, completion_tokens: int) -> float:
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
