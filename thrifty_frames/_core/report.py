"""The run report: what a call did, what it cost, and how sure we are.

Every verb produces one :class:`Report`. Get it with
:func:`thrifty_frames.last_report`, inside :func:`thrifty_frames.collect_reports`,
or from the :class:`~thrifty_frames.Result` of :func:`thrifty_frames.label`.
It prints as a short text table and renders as HTML in notebooks.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field


@dataclass
class Report:
    """Figures of one run.

    Attributes
    ----------
    rows, null_rows, distinct_texts
        Input size; null texts are never sent anywhere and come back null.
    sample_rows
        Rows drawn for LLM labeling before the proxy was trained.
    llm_calls
        Calls actually made to the LLM in this run (cache hits excluded,
        corrective retries included).
    cache_hits
        Distinct inputs answered from the label cache.
    unparseable, failed, over_budget
        Distinct inputs whose answer was outside the labels twice, whose call
        failed after retries, or which a cap kept from being asked.
    decided_by
        Row counts per provenance: ``llm``, ``cache``, ``proxy``,
        ``proxy_below_target`` (the proxy's answer kept only because the LLM
        could not be asked), ``none`` (no label could be given).
    proxy_used
        Whether any row carries the proxy's answer.
    quality
        The proxy's accuracy against the LLM on held-out labeled rows, with a
        95% Clopper-Pearson interval and the number of rows behind it.
    threshold
        The cascade's confidence threshold, the certified accuracy lower bound
        and the share of calibration rows it keeps.
    seconds
        Wall time per stage.
    """

    verb: str = ""
    rows: int = 0
    null_rows: int = 0
    distinct_texts: int = 0
    sample_rows: int = 0
    llm_calls: int = 0
    cache_hits: int = 0
    unparseable: int = 0
    failed: int = 0
    over_budget: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    llm: str = ""
    embedder: str = ""
    proxy: str = ""
    proxy_params: dict = field(default_factory=dict)
    proxy_used: bool = False
    viable: bool | None = None
    viability_note: str | None = None
    quality: dict = field(default_factory=dict)
    target: float | None = None
    delta: float | None = None
    threshold: dict = field(default_factory=dict)
    decided_by: dict = field(default_factory=dict)
    truncated_texts: int = 0
    seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def llm_labeled_rows(self) -> int:
        """Rows whose label is the LLM's (this run or cached)."""
        return int(self.decided_by.get("llm", 0) + self.decided_by.get("cache", 0))

    @property
    def proxy_rows(self) -> int:
        return int(
            self.decided_by.get("proxy", 0) + self.decided_by.get("proxy_below_target", 0)
        )

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds.values()))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["llm_labeled_rows"] = self.llm_labeled_rows
        d["proxy_rows"] = self.proxy_rows
        return d

    # -- rendering -----------------------------------------------------------
    def _lines(self) -> list[tuple[str, str]]:
        out = [
            ("rows", f"{self.rows:,} ({self.null_rows:,} null, {self.distinct_texts:,} distinct)"),
            ("LLM", self.llm),
            ("embedder", self.embedder),
            ("sampled for the LLM", f"{self.sample_rows:,} rows"),
            (
                "LLM calls made",
                f"{self.llm_calls:,} (cache hits {self.cache_hits:,}; "
                f"{self.prompt_tokens + self.completion_tokens:,} tokens; ${self.cost:.4f})",
            ),
        ]
        if self.unparseable or self.failed or self.over_budget:
            out.append(
                (
                    "unanswered inputs",
                    f"unparseable {self.unparseable}, failed {self.failed}, "
                    f"over budget {self.over_budget}",
                )
            )
        dec = ", ".join(f"{k} {v:,}" for k, v in self.decided_by.items() if v)
        out.append(("rows decided by", dec or "-"))
        if self.proxy:
            used = "used" if self.proxy_used else "not used"
            params = ", ".join(f"{k}={v}" for k, v in self.proxy_params.items())
            out.append(("proxy", f"{self.proxy}({params}) {used}"))
        if self.quality:
            q = self.quality
            out.append(
                (
                    "proxy holdout accuracy",
                    f"{q['accuracy']:.3f} (95% CI {q['low']:.3f}-{q['high']:.3f}, "
                    f"{q['rows']} rows, {q['method']})",
                )
            )
        if self.target is not None and self.threshold:
            th = self.threshold
            out.append(
                (
                    "target",
                    f"accuracy >= {self.target:.2f} vs LLM with prob >= {1 - self.delta:.2f}",
                )
            )
            out.append(
                (
                    "threshold",
                    f"confidence >= {th['value']:.4f}; certified accuracy >= "
                    f"{th['accuracy_lower']:.3f}; keeps {th['kept_share']:.0%} of "
                    "calibration rows",
                )
            )
        if self.viability_note:
            out.append(("note", self.viability_note))
        if self.truncated_texts:
            out.append(("long texts cut", f"{self.truncated_texts:,}"))
        for n in self.notes:
            out.append(("note", n))
        secs = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
        out.append(("seconds", f"{self.total_seconds:.2f} ({secs})"))
        return out

    def __str__(self) -> str:
        lines = self._lines()
        width = max(len(k) for k, _ in lines)
        head = f"thrifty-frames report: {self.verb}"
        return "\n".join([head] + [f"  {k.ljust(width)}  {v}" for k, v in lines])

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._lines()
        )
        return (
            f"<table><caption>thrifty-frames report: {html.escape(self.verb)}"
            f"</caption>{rows}</table>"
        )
