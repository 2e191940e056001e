"""The run report: what a call did, what it cost, and how sure we are.

Every verb produces one :class:`Report`. Get it with
:func:`thrifty_frames.last_report`, inside :func:`thrifty_frames.collect_reports`,
or from the :class:`~thrifty_frames.Result` of :func:`thrifty_frames.label`.
It prints as a short text table, renders as HTML in notebooks, and
:meth:`Report.plot` draws the proxy's scores with the cascade's thresholds and
the cost-quality curve (needs the ``plot`` extra).
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..exceptions import EmptyInputError, MissingDependencyError


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
    target, delta, metric
        The cascade's target: ``metric`` (``"accuracy"``, ``"precision"`` or
        ``"recall"``) against the LLM at least ``target`` with probability at
        least ``1 - delta``. ``None`` when no target was set.
    threshold
        The certified cascade: its thresholds (``conf_at`` on the top-class
        probability for accuracy; ``yes_at`` and ``no_below`` on P(yes) for
        precision and recall), the share of calibration rows it keeps, and the
        metric's estimate, 95% interval (``low``, ``high``) and one-sided
        ``1 - delta`` bound (``certified``) on the calibration rows.
    achieved
        The same figures for what the output actually delivers on the rows the
        cascade decided: equal to ``threshold`` unless a cap (or failed calls)
        left rows below the threshold with the proxy's answer, in which case
        they are computed at the widened thresholds and ``met`` may be False.
    below_target
        When rows kept the proxy's answer below the threshold: how many
        calibration rows fall in that band and the proxy's accuracy on them
        (estimate and 95% interval).
    calibration
        The calibration rows' scores (small arrays), for :meth:`plot`.
    truncated_texts
        Rows whose text was longer than the embedder's window (cut or pooled,
        per ``long_texts``).
    embedded_texts, embedding_cache_hits
        Embedder inputs computed in this run, and those read from the
        embedding cache instead (a pooled long text counts once per piece;
        precomputed ``embeddings=`` vectors count as neither).
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
    metric: str | None = None
    threshold: dict = field(default_factory=dict)
    achieved: dict = field(default_factory=dict)
    below_target: dict = field(default_factory=dict)
    calibration: Any = field(default=None, repr=False)
    decided_by: dict = field(default_factory=dict)
    truncated_texts: int = 0
    embedded_texts: int = 0
    embedding_cache_hits: int = 0
    seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def llm_labeled_rows(self) -> int:
        """Rows whose label is the LLM's (this run or cached)."""
        return int(self.decided_by.get("llm", 0) + self.decided_by.get("cache", 0))

    @property
    def proxy_rows(self) -> int:
        return int(
            self.decided_by.get("proxy", 0)
            + self.decided_by.get("proxy_below_target", 0)
        )

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds.values()))

    def to_dict(self) -> dict:
        cal = self.calibration
        self.calibration = None
        try:
            d = asdict(self)
        finally:
            self.calibration = cal
        d["calibration"] = (
            None
            if cal is None
            else {
                k: None if v is None else np.asarray(v).tolist()
                for k, v in vars(cal).items()
            }
        )
        d["llm_labeled_rows"] = self.llm_labeled_rows
        d["proxy_rows"] = self.proxy_rows
        return d

    # -- rendering -----------------------------------------------------------
    def _lines(self) -> list[tuple[str, str]]:
        out = [
            (
                "rows",
                f"{self.rows:,} ({self.null_rows:,} null, "
                f"{self.distinct_texts:,} distinct)",
            ),
            ("LLM", self.llm),
            ("embedder", self.embedder),
            (
                "texts embedded",
                f"{self.embedded_texts:,} (embedding cache hits "
                f"{self.embedding_cache_hits:,})",
            ),
            ("sampled for the LLM", f"{self.sample_rows:,} rows"),
            (
                "LLM calls made",
                f"{self.llm_calls:,} (cache hits {self.cache_hits:,}; "
                f"{self.prompt_tokens + self.completion_tokens:,} tokens; "
                f"${self.cost:.4f})",
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
            out.extend(self._cascade_lines())
        if self.viability_note:
            out.append(("note", self.viability_note))
        if self.truncated_texts:
            out.append(("long texts cut or pooled", f"{self.truncated_texts:,} rows"))
        for n in self.notes:
            out.append(("note", n))
        secs = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
        out.append(("seconds", f"{self.total_seconds:.2f} ({secs})"))
        return out

    def _cascade_lines(self) -> list[tuple[str, str]]:
        th, metric = self.threshold, self.metric or "accuracy"
        out = [
            (
                "target",
                f"{metric} >= {self.target:.2f} vs the LLM with probability >= "
                f"{1 - self.delta:.2f}",
            )
        ]
        if metric == "accuracy":
            rule = (
                f"keep the proxy where its top-class probability >= {th['conf_at']:.4f}"
            )
        else:
            rule = (
                f"keep 'yes' where P(yes) >= {th['yes_at']:.4f}, 'no' where P(yes) < "
                f"{th['no_below']:.4f}; ask the LLM in between"
            )
        out.append(
            ("threshold", f"{rule} (keeps {th['kept_share']:.0%} of calibration rows)")
        )
        if self.viable is False and not self.proxy_used:
            # The threshold's figures do not describe an output the proxy
            # took no part in.
            none = self.decided_by.get("none", 0)
            text = "proxy not used: every label is the LLM's own"
            if none:
                text += f"; {none:,} rows got no label"
            out.append((f"achieved {metric}", text))
        else:
            a = self.achieved or th
            verdict = "met" if a["met"] else "NOT met"
            out.append(
                (
                    f"achieved {metric}",
                    f"estimate {a['estimate']:.3f} "
                    f"(95% CI {a['low']:.3f}-{a['high']:.3f}); "
                    f">= {a['certified']:.3f} with probability {1 - self.delta:.2f}; "
                    f"target {verdict} (rows decided by the cascade, "
                    f"{th['calibration_rows']} calibration rows)",
                )
            )
        b = self.below_target
        if b:
            acc = "-" if b["accuracy"] is None else f"{b['accuracy']:.3f}"
            out.append(
                (
                    "below target",
                    f"{self.decided_by.get('proxy_below_target', 0):,} rows kept the "
                    f"proxy's answer below the threshold; its accuracy there: {acc} "
                    f"(95% CI {b['low']:.3f}-{b['high']:.3f}, "
                    f"{b['rows']} calibration rows)",
                )
            )
        return out

    def __str__(self) -> str:
        return render_text(f"thrifty-frames report: {self.verb}", self._lines())

    def _repr_html_(self) -> str:
        return render_html(f"thrifty-frames report: {self.verb}", self._lines())

    # -- plotting ------------------------------------------------------------
    def plot(self):
        """Draw the proxy's calibration scores and the cost-quality curve.

        The left panel is a histogram of the score the cascade thresholds
        (top-class probability for accuracy, P(yes) for precision and recall)
        on the calibration rows, split by whether the proxy agreed with the
        LLM (accuracy) or what the LLM answered (precision, recall), with the
        thresholds as vertical lines. The right panel is the cost-quality
        curve: for each threshold, the share of rows sent to the LLM against
        the metric's estimate and its certified lower bound; the chosen point
        is marked.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        MissingDependencyError
            When matplotlib is not installed.
        EmptyInputError
            When the run kept no calibration scores (``target=None``, or no
            proxy was trained).

        Examples
        --------
        >>> fig = tf.last_report().plot()  # doctest: +SKIP
        >>> fig.savefig("cascade.png")  # doctest: +SKIP
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            msg = (
                "Report.plot() needs matplotlib, which is not installed; install "
                "it with: pip install 'thrifty-frames[plot]'"
            )
            raise MissingDependencyError(msg) from exc
        cal = self.calibration
        if cal is None or not self.threshold:
            msg = (
                "this report holds no calibration scores to plot: the run had no "
                "target (target=None) or trained no proxy."
            )
            raise EmptyInputError(msg)
        from .._stages.evaluate import cost_quality_curve

        metric = self.metric or "accuracy"
        th = self.threshold
        fig = Figure(figsize=(10, 3.8))
        ax1, ax2 = fig.subplots(1, 2)
        bins = np.linspace(0.0, 1.0, 41)
        if metric == "accuracy":
            score, split, names = cal.conf, cal.correct, ("proxy = LLM", "proxy != LLM")
            lines = [th["conf_at"]]
            ax1.set_xlabel("proxy top-class probability")
        else:
            score, split, names = cal.p_yes, cal.positive, ("LLM yes", "LLM no")
            lines = [th["yes_at"], th["no_below"]]
            ax1.set_xlabel("proxy P(yes)")
        ax1.hist(
            [score[split], score[~split]], bins=bins, stacked=True, label=list(names)
        )
        for t in lines:
            if np.isfinite(t) and 0.0 < t <= 1.0:
                ax1.axvline(t, color="black", linestyle="--")
        ax1.set_ylabel("calibration rows")
        ax1.set_title("proxy scores and thresholds")
        ax1.legend(fontsize="small")

        sent, est, low = cost_quality_curve(cal, metric, self.target, self.delta)
        ax2.plot(sent, est, label=f"{metric} estimate")
        ax2.plot(sent, low, label=f"certified at {1 - self.delta:.2f}")
        ax2.axhline(self.target, color="grey", linestyle=":", label="target")
        chosen = 1.0 - th["kept_share"]
        ax2.plot([chosen], [th["certified"]], "o", color="black", label="chosen")
        ax2.set_xlabel("share of rows sent to the LLM")
        ax2.set_ylabel(metric + " vs the LLM")
        ax2.set_title("cost-quality curve (calibration rows)")
        ax2.legend(fontsize="small")
        fig.tight_layout()
        return fig


def render_text(head: str, lines: list[tuple[str, str]]) -> str:
    """A heading and aligned ``name  value`` lines, as reports print."""
    width = max(len(k) for k, _ in lines)
    return "\n".join([head] + [f"  {k.ljust(width)}  {v}" for k, v in lines])


def render_html(caption: str, lines: list[tuple[str, str]]) -> str:
    """The same lines as a small HTML table for notebooks."""
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in lines
    )
    return f"<table><caption>{html.escape(caption)}</caption>{rows}</table>"
