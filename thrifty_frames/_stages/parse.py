"""Turning an LLM's free text into one of the allowed labels, or nothing.

The rule is strict on purpose: an answer is mapped to a label only when it *is*
that label once wrapping is removed (code fences, JSON, quotes, trailing
punctuation, case, a leading "Answer:"-style prefix). Text that merely
mentions a label ("not positive") is never mapped by guesswork; it comes back
as ``None`` and the labeler retries it once with a corrective message.
"""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.S)
_EDGE = " \t\r\n\"'`*.,;:!?()[]{}<>"
_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0"}
_JSON_KEYS = ("label", "answer", "class", "category", "result", "output")


def _norm(s: str) -> str:
    return " ".join(s.strip(_EDGE).split()).casefold()


def _match(candidate: str, choices: tuple[str, ...]) -> str | None:
    want = _norm(candidate)
    if not want:
        return None
    for c in choices:
        if _norm(c) == want:
            return c
    # A label that itself ends in punctuation ("Other.") must still match exactly.
    for c in choices:
        if c.strip().casefold() == candidate.strip().casefold():
            return c
    if set(_norm(c) for c in choices) == {"yes", "no"}:
        if want in _TRUE:
            return next(c for c in choices if _norm(c) == "yes")
        if want in _FALSE:
            return next(c for c in choices if _norm(c) == "no")
    return None


def _from_json(text: str, choices: tuple[str, ...]) -> str | None:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    if isinstance(value, bool):
        return _match("yes" if value else "no", choices)
    if isinstance(value, (str, int, float)):
        return _match(str(value), choices)
    if isinstance(value, dict):
        for key in _JSON_KEYS:
            for k, v in value.items():
                if k.casefold() == key and isinstance(v, (str, bool, int, float)):
                    return _from_json(json.dumps(v), choices)
        if len(value) == 1:
            (v,) = value.values()
            if isinstance(v, (str, bool, int, float)):
                return _from_json(json.dumps(v), choices)
    if isinstance(value, list) and len(value) == 1:
        return _from_json(json.dumps(value[0]), choices)
    return None


def parse_answer(text: str | None, choices: tuple[str, ...]) -> str | None:
    """Map an answer to one of ``choices`` or return ``None``.

    Examples
    --------
    >>> parse_answer('```json\\n{"label": "Sci/Tech"}\\n```', ("World", "Sci/Tech"))
    'Sci/Tech'
    >>> parse_answer("The answer is: POSITIVE.", ("positive", "negative"))
    'positive'
    >>> parse_answer("not positive", ("positive", "negative")) is None
    True
    """
    if text is None:
        return None
    s = text.strip()
    m = _FENCE.match(s)
    if m:
        s = m.group(1).strip()
    hit = _from_json(s, choices) if s[:1] in "{[\"" else None
    if hit is None:
        hit = _match(s, choices)
    if hit is None:
        # A JSON object after some prose.
        brace = s.find("{")
        if brace > 0 and s.rstrip().endswith("}"):
            hit = _from_json(s[brace:], choices)
    if hit is None:
        # "Answer: X" / "The label is: X" -- take what follows the last colon
        # on the last non-empty line, only if that is a label by itself.
        lines = [ln for ln in s.splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        if ":" in last:
            tail = last.rsplit(":", 1)[1]
            hit = _match(tail, choices)
            if hit is None and ":" in "".join(choices):  # a label such as DESC:manner
                head, _, rest = last.partition(":")
                hit = _match(rest, choices)
        if hit is None and len(lines) > 1:
            hit = _match(last, choices)
    return hit
