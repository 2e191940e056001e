"""The error tree of thrifty-frames.

Every error derives from :class:`ThriftyError`. Where a builtin exception fits,
the subclass inherits it too, so ``except KeyError`` still catches a missing
column::

    ThriftyError
    +-- ColumnNotFoundError      (also KeyError)
    +-- ColumnTypeError          (also TypeError)
    +-- InvalidArgumentError     (also ValueError)
    +-- EmptyInputError          (also ValueError)
    +-- MissingDependencyError   (also ImportError)
    +-- BackendError             (also RuntimeError)
    |   +-- OfflineModelNotFoundError
    +-- BudgetExceededError      (also RuntimeError)
    +-- ProxyFileError           (also ValueError)
    +-- NotFittedError           (also AttributeError)

Messages name the argument or column, what was received, and how to fix it.
They never carry prompt text, row text or secrets.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BudgetExceededError",
    "ColumnNotFoundError",
    "ColumnTypeError",
    "EmptyInputError",
    "InvalidArgumentError",
    "MissingDependencyError",
    "NotFittedError",
    "OfflineModelNotFoundError",
    "ProxyFileError",
    "ThriftyError",
    "ThriftyWarning",
    "UnparseableAnswerWarning",
    "ProxyNotViableWarning",
    "BudgetExceededWarning",
    "LLMCallFailedWarning",
]


class ThriftyError(Exception):
    """Base class of every error raised by thrifty-frames."""


class ColumnNotFoundError(ThriftyError, KeyError):
    """A column named by the caller is not in the frame."""

    def __init__(self, column: str, available: list[str], hint: str = "") -> None:
        shown = ", ".join(repr(c) for c in available[:30])
        if len(available) > 30:
            shown += f", ... ({len(available)} in all)"
        msg = f"column {column!r} is not in the frame; available columns: [{shown}]."
        if hint:
            msg += f" {hint}"
        self.column = column
        self.available = list(available)
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class ColumnTypeError(ThriftyError, TypeError):
    """A column has a type the verb cannot use."""


class InvalidArgumentError(ThriftyError, ValueError):
    """An argument has a value outside what the verb accepts."""


class EmptyInputError(ThriftyError, ValueError):
    """The frame or column holds no rows to work on."""


class MissingDependencyError(ThriftyError, ImportError):
    """An optional dependency is not installed; the message names the install command."""


class BackendError(ThriftyError, RuntimeError):
    """An LLM or embedding backend failed in a way retries did not cure."""


class OfflineModelNotFoundError(BackendError):
    """The embedded offline LLM's weights are not installed."""


class BudgetExceededError(ThriftyError, RuntimeError):
    """A hard cap (``max_llm_calls`` or ``max_cost``) stopped the run."""


class ProxyFileError(ThriftyError, ValueError):
    """A saved proxy file is corrupted, truncated, unsafe or from an incompatible version."""


class NotFittedError(ThriftyError, AttributeError):
    """A proxy was used before ``fit``."""


class ThriftyWarning(UserWarning):
    """Base class of the warnings thrifty-frames emits."""


class UnparseableAnswerWarning(ThriftyWarning):
    """Some LLM answers were outside the allowed labels even after a corrective retry."""


class ProxyNotViableWarning(ThriftyWarning):
    """The proxy could not be trusted, so the run fell back as configured."""


class BudgetExceededWarning(ThriftyWarning):
    """A cap (``max_llm_calls`` or ``max_cost``) kept some inputs from the LLM.

    The verb still returns every row: rows the LLM was not asked about carry the
    proxy's answer (``decided_by="proxy_below_target"``) when there is one, and
    otherwise no label (``decided_by="none"``). Turn it into an error with
    ``warnings.simplefilter("error", BudgetExceededWarning)``.
    """


class LLMCallFailedWarning(ThriftyWarning):
    """Some LLM calls failed after their retries (or the provider refused the
    input); those inputs were not cached, so a re-run asks them again."""
