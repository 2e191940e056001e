"""Where finished reports go: the last one per thread or task, and collectors."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from .report import Report

_last: contextvars.ContextVar[Report | None] = contextvars.ContextVar(
    "thrifty_last_report", default=None
)
_collectors: contextvars.ContextVar[tuple[list, ...]] = contextvars.ContextVar(
    "thrifty_collectors", default=()
)


def record(report: Report) -> None:
    _last.set(report)
    for sink in _collectors.get():
        sink.append(report)


def last_report() -> Report | None:
    """The report of the most recent verb run in this thread (or asyncio task).

    Examples
    --------
    >>> import thrifty_frames as tf
    >>> out = df.thrifty.filter("Is it positive?")  # doctest: +SKIP
    >>> print(tf.last_report())  # doctest: +SKIP
    """
    return _last.get()


@contextlib.contextmanager
def collect_reports() -> Iterator[list[Report]]:
    """Collect the reports of every verb run inside the ``with`` block.

    Examples
    --------
    >>> import thrifty_frames as tf
    >>> with tf.collect_reports() as reports:  # doctest: +SKIP
    ...     kept = df.thrifty.filter("Is it positive?")
    >>> reports[0].llm_calls  # doctest: +SKIP
    """
    sink: list[Report] = []
    token = _collectors.set(_collectors.get() + (sink,))
    try:
        yield sink
    finally:
        _collectors.reset(token)
