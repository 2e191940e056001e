"""What the user asked for: a filter or a classification, and how to ask the LLM."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass

from ..exceptions import InvalidArgumentError

#: Bump when the wording of the messages below changes: it is part of every
#: cache key, so old answers are never served for a new wording.
TEMPLATE_VERSION = "msg-v1"

FILTER_CHOICES = ("yes", "no")

_SYSTEM = (
    "You are a careful data labeler. Read the input and answer the question "
    "with exactly one of the allowed labels, and nothing else."
)


@dataclass(frozen=True)
class Task:
    """A labeling task.

    Attributes
    ----------
    kind
        ``"filter"`` (a yes/no question) or ``"classify"``.
    prompt
        The question, or a template with ``{column}`` placeholders.
    classes
        The allowed labels; ``("yes", "no")`` for a filter.
    fields
        Column names the template refers to; empty for a plain prompt that is
        applied to one text column.
    """

    kind: str
    prompt: str
    classes: tuple[str, ...]
    fields: tuple[str, ...] = ()

    @property
    def question(self) -> str | None:
        """The question asked of one text column; None for a template."""
        return None if self.fields else self.prompt

    @property
    def is_filter(self) -> bool:
        return self.kind == "filter"

    def user_content(self, text: str) -> str:
        """The user message for one row.

        ``text`` is the row's text for a plain prompt, or the rendered template
        for a multi-column one.
        """
        allowed = json.dumps(list(self.classes), ensure_ascii=False)
        if self.fields:
            return f"{text}\n\nAllowed labels: {allowed}"
        return f"{self.prompt}\n\nInput:\n{text}\n\nAllowed labels: {allowed}"

    def messages(self, text: str) -> tuple[dict, ...]:
        return (
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": self.user_content(text)},
        )

    def corrective(self, text: str, bad_answer: str) -> tuple[dict, ...]:
        """Messages for the one retry after an answer outside the labels."""
        allowed = json.dumps(list(self.classes), ensure_ascii=False)
        return self.messages(text) + (
            {"role": "assistant", "content": bad_answer},
            {
                "role": "user",
                "content": "That is not one of the allowed labels. Reply with "
                f"exactly one of {allowed} and nothing else.",
            },
        )

    def identity(self) -> list:
        """Everything about the task that shapes an answer (for cache keys)."""
        return [TEMPLATE_VERSION, self.kind, self.prompt, list(self.classes)]


def template_fields(prompt: str) -> tuple[str, ...]:
    """Names of the ``{placeholders}`` in ``prompt``, in order, without repeats.

    Doubled braces (``{{`` and ``}}``) are literal braces, as in ``str.format``.
    """
    try:
        parsed = list(string.Formatter().parse(prompt))
    except ValueError as exc:
        msg = (
            f"prompt is not a valid template ({exc}); write literal braces as "
            "'{{' and '}}'."
        )
        raise InvalidArgumentError(msg) from None
    names: list[str] = []
    for _, field, spec, conv in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            msg = (
                "prompt has a positional placeholder '{}'; name the column instead, "
                "e.g. '{review}', or write literal braces as '{{' and '}}'."
            )
            raise InvalidArgumentError(msg)
        if spec or conv:
            msg = (
                f"prompt placeholder {{{field}}} has a format spec or conversion; "
                "use a bare column name such as '{review}'."
            )
            raise InvalidArgumentError(msg)
        if field not in names:
            names.append(field)
    return tuple(names)


def make_task(kind: str, prompt: object, classes: object = None) -> Task:
    """Validate the user's prompt and classes and build a :class:`Task`."""
    if not isinstance(prompt, str) or not prompt.strip():
        msg = (
            f"prompt must be a non-empty string, got {type(prompt).__name__}; "
            "pass the question to ask of each row, e.g. 'Is this review positive?'."
        )
        raise InvalidArgumentError(msg)
    fields = template_fields(prompt)
    if kind == "filter":
        return Task("filter", prompt, FILTER_CHOICES, fields)
    if classes is None or isinstance(classes, (str, bytes)):
        msg = (
            "classes must be a list of at least two label names, got "
            f"{type(classes).__name__}; e.g. classes=['World', 'Sports']."
        )
        raise InvalidArgumentError(msg)
    labels = [str(c) if not isinstance(c, str) else c for c in classes]
    if len(labels) < 2:
        msg = f"classes must hold at least two labels, got {len(labels)}."
        raise InvalidArgumentError(msg)
    stripped = [c.strip() for c in labels]
    if any(not c for c in stripped):
        raise InvalidArgumentError("classes must not contain empty labels.")
    if len({c.casefold() for c in stripped}) != len(stripped):
        msg = (
            "classes must be distinct (ignoring case and surrounding spaces); "
            "remove the repeated labels."
        )
        raise InvalidArgumentError(msg)
    return Task("classify", prompt, tuple(stripped), fields)
