"""Evaluate stage: where can the proxy's answers be kept, and how sure are we.

The cascade keeps the proxy's answer on rows where it is confident and sends
the others to the LLM. This module learns where "confident" starts from
LLM-labeled calibration rows the proxy did not train on, so that the output
meets the user's target against the LLM with probability at least
``1 - delta``.

Targets (``metric``)
--------------------
``"accuracy"`` (default; filters and any number of classes)
    Keep the proxy's answer where its top-class probability ``conf`` is at
    least ``t``. Let ``err(t) = P(conf >= t and proxy != LLM)`` for a random
    row. Rows sent to the LLM agree with it by definition, so the output's
    accuracy against the LLM is ``1 - err(t)``; the target ``acc`` is met when
    ``err(t) <= 1 - acc``.
``"precision"`` (filters)
    Of the rows the output calls "yes", at least ``target`` are "yes" for the
    LLM. Keep "yes" where ``P(yes) >= t_hi``, keep "no" where ``P(yes) < 0.5``
    and ask the LLM about ``0.5 <= P(yes) < t_hi``: only the proxy's doubtful
    "yes" answers can hurt precision, so only they are checked.
``"recall"`` (filters)
    Of the rows the LLM calls "yes", at least ``target`` are "yes" in the
    output. Keep "no" where ``P(yes) < t_lo``, keep "yes" where
    ``P(yes) >= 0.5`` and ask the LLM about ``t_lo <= P(yes) < 0.5``.

Each target controls its own metric only: under a precision target the
proxy's "no" answers are kept unchecked, so recall can be low, and under a
recall target its "yes" answers are, so precision can be. Use accuracy when
both matter.

Defaults: ``metric="accuracy"``, ``target=0.9``, ``delta=0.05``,
``calibration_share=0.5`` of a 500-row labeled sample (so 250 calibration
rows); ``target=None`` keeps every proxy answer with no LLM escalation and no
guarantee. With ``m`` calibration rows and no errors at all, the smallest
certifiable error rate is about ``log(1 / delta) / m`` (29 clean rows for
``eps = 0.1``, ``delta = 0.05``), so small samples certify little.

The certificate
---------------
Each target is "a rate is at most ``eps = 1 - target``" where the rate is a
binomial proportion on the calibration rows:

* accuracy: ``k`` = rows kept and wrong, out of all ``m`` calibration rows;
* precision: ``k`` = rows kept as "yes" that the LLM calls "no", out of the
  ``n`` rows the output would call "yes" (kept "yes" rows plus LLM-"yes" rows
  with ``P(yes) >= 0.5``); given ``n``, ``k`` is ``Binomial(n, 1 -
  precision)``;
* recall: ``k`` = LLM-"yes" rows kept as "no", out of the ``n`` LLM-"yes"
  rows; given ``n``, ``k`` is ``Binomial(n, 1 - recall)``.

Under ``H0: rate > eps``, ``P(Binomial(n, eps) <= k)`` is a valid p-value.
Candidate thresholds are tested in a fixed order, from the one that keeps
least to the one that keeps most, stopping at the first ``p > delta``
(fixed-sequence testing, as in Learn-then-Test). This controls the
probability of certifying any threshold that misses the target at ``delta``.
For accuracy the candidates are the calibration scores themselves, which is
valid because ``err(t)`` is monotone in ``t``; for precision, whose rate is
not monotone in ``t_hi``, and for recall, the candidates are a fixed grid.

Conformal sets were measured as an alternative for classify (keep a row whose
split-conformal prediction set holds one class; :func:`conformal_threshold`).
Their certificate bounds the miscoverage ``P(p_LLM-label < tau)``, which also
counts rows that would be escalated anyway, so for thresholds above 0.5 it
never keeps more rows than the direct rule; it kept the same or fewer rows in
``benchmarks/results/coverage.md``; the direct rule is the one used.

Assumptions
-----------
* The calibration rows are drawn uniformly at random from the rows being
  labeled (the sample stage does this) and were not used to train the proxy.
* The LLM answers deterministically (temperature 0, cached); the target is
  agreement with the LLM, not with the truth.
* The guarantee is on the expected rate over rows drawn like the frame's; the
  realised rate on a finite frame scatters around it by sampling noise.
* Every row sent to the LLM gets an answer. When a cap (or a failed or
  unparseable call) leaves escalated rows with the proxy's answer, the
  certificate no longer covers the output; :func:`evaluate_at` then bounds
  the rate at the widened thresholds instead (the widening depends on the cap
  and on unlabeled rows only, not on calibration labels, so that single test
  is valid too).

Why the proxy is not refitted on the calibration rows
-----------------------------------------------------
A certificate holds for the model whose scores were checked on rows it never
saw. Refitting on every labeled row (training plus calibration) would decide
the rest with a different model, and its scores on the calibration rows are
in-sample, so the certificate would no longer apply. Cross-fitting (``K``
proxies, each certified on the fold it did not train on) stays valid only if
each proxy decides its own share of the rows and carries its own
certificate at ``delta / K`` on ``m / K`` rows (pooling out-of-fold scores
into one threshold is valid only up to a factor of about two in the error,
as for cross-conformal methods): with ``K = 2`` that trains on as many rows
as the 50/50 split and certifies on the same rows at half the ``delta``, and
with larger ``K`` each certificate rests on fewer rows. So with a target the
labeled sample is split (``calibration_share``), the calibration rows buy
the guarantee, and their own output is the LLM's answer; with
``target=None`` no certificate is claimed and the proxy is refitted on every
labeled row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, binom

METRICS = ("accuracy", "precision", "recall")
#: The proxy's own yes/no boundary on P(yes).
BOUNDARY = 0.5


def clopper_pearson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided ``1 - alpha`` interval for a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    lo = (
        0.0
        if successes == 0
        else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    )
    hi = (
        1.0
        if successes == n
        else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    )
    return (lo, hi)


def error_upper_bound(k: int, m: int, delta: float) -> float:
    """One-sided ``1 - delta`` upper bound on a rate with ``k`` events in ``m`` rows."""
    if m == 0 or k >= m:
        return 1.0
    return float(beta.ppf(1 - delta, k + 1, m - k))


def _grid() -> np.ndarray:
    """Fixed candidate thresholds on P(yes) in [0.5, 1], ascending, fine near 1."""
    lin = np.linspace(BOUNDARY, 1.0, 101)
    near = 1.0 - np.geomspace(1e-6, 0.05, 40)
    return np.unique(np.concatenate([lin, near]))


@dataclass
class Calibration:
    """Proxy scores and LLM answers on the calibration rows.

    ``p_yes`` and ``positive`` (the LLM said yes) are set for filters only.
    """

    conf: np.ndarray
    correct: np.ndarray
    p_yes: np.ndarray | None = None
    positive: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return len(self.conf)


@dataclass
class Cascade:
    """Where the proxy's answer is kept, and what that is expected to deliver.

    A row keeps the proxy's answer when ``conf >= conf_at`` (accuracy), or
    when ``p_yes >= yes_at`` or ``p_yes < no_below`` (precision, recall);
    every other row goes to the LLM. ``conf_at = inf``, ``yes_at = inf`` and
    ``no_below = 0`` keep nothing on their side.

    ``estimate`` is the metric's point estimate on the calibration rows with a
    two-sided 95% Clopper-Pearson interval ``(low, high)``; ``certified`` is
    its one-sided ``1 - delta`` lower bound. ``met`` says whether
    ``certified`` reaches ``target``.
    """

    metric: str
    target: float
    delta: float
    calibration_rows: int
    conf_at: float = np.inf
    yes_at: float = np.inf
    no_below: float = 0.0
    kept_share: float = 0.0
    events: int = 0  # calibration rows counted against the metric
    trials: int = 0  # calibration rows the metric's rate is over
    estimate: float = 1.0
    low: float = 0.0
    high: float = 1.0
    certified: float = 0.0

    @property
    def met(self) -> bool:
        return self.certified >= self.target - 1e-12

    @property
    def keeps_any(self) -> bool:
        if self.metric == "accuracy":
            return bool(np.isfinite(self.conf_at))
        return True  # one side is always kept

    def keep(self, conf: np.ndarray, p_yes: np.ndarray | None = None) -> np.ndarray:
        """Whether each row keeps the proxy's answer."""
        if self.metric == "accuracy":
            return np.asarray(conf) >= self.conf_at
        p = np.asarray(p_yes)
        return (p >= self.yes_at) | (p < self.no_below)

    def widened(self, conf: np.ndarray, p_yes: np.ndarray | None = None) -> Cascade:
        """The cascade that also keeps the given escalated rows (a cap was hit)."""
        if len(conf) == 0:
            return self
        out = Cascade(self.metric, self.target, self.delta, self.calibration_rows)
        out.conf_at, out.yes_at, out.no_below = self.conf_at, self.yes_at, self.no_below
        if self.metric == "accuracy":
            out.conf_at = min(self.conf_at, float(np.min(conf)))
            return out
        p = np.asarray(p_yes)
        up = p[p >= BOUNDARY]
        down = p[p < BOUNDARY]
        if len(up):
            out.yes_at = min(self.yes_at, float(up.min()))
        if len(down):
            out.no_below = max(self.no_below, float(np.nextafter(down.max(), np.inf)))
        return out

    def keep_all(self) -> Cascade:
        """The same target with every proxy answer kept (``fallback='proxy'``)."""
        if self.metric == "accuracy":
            return Cascade(
                self.metric, self.target, self.delta, self.calibration_rows, 0.0
            )
        return Cascade(
            self.metric,
            self.target,
            self.delta,
            self.calibration_rows,
            yes_at=BOUNDARY,
            no_below=BOUNDARY,
        )

    def as_dict(self) -> dict:
        return {
            "metric": self.metric,
            "value": self.conf_at,  # kept for readers of the accuracy threshold
            "conf_at": self.conf_at,
            "yes_at": self.yes_at,
            "no_below": self.no_below,
            "kept_share": self.kept_share,
            "calibration_rows": self.calibration_rows,
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "certified": self.certified,
            "met": self.met,
            "accuracy_lower": self.certified if self.metric == "accuracy" else None,
        }


def _counts(cal: Calibration, cas: Cascade) -> tuple[int, int]:
    """(events, trials) of the metric's rate at ``cas``'s thresholds."""
    if cas.metric == "accuracy":
        k = int(((cal.conf >= cas.conf_at) & ~cal.correct).sum())
        return k, cal.rows
    p, pos = cal.p_yes, cal.positive
    if cas.metric == "precision":
        k = int(((p >= cas.yes_at) & ~pos).sum())
        return k, k + int(((p >= BOUNDARY) & pos).sum())
    k = int(((p < cas.no_below) & pos).sum())
    return k, int(pos.sum())


def evaluate_at(cal: Calibration, cas: Cascade) -> Cascade:
    """Fill in ``cas``'s estimate, interval and bound at its own thresholds.

    A single test at fixed thresholds: valid when the thresholds were not
    chosen by looking at the calibration labels (as after a cap widens them).
    """
    k, n = _counts(cal, cas)
    cas.events, cas.trials = k, n
    if cal.rows:
        cas.kept_share = float(cas.keep(cal.conf, cal.p_yes).mean())
    if n:
        cas.estimate = 1.0 - k / n
        lo, hi = clopper_pearson(k, n)
        cas.low, cas.high = 1.0 - hi, 1.0 - lo
    cas.certified = 1.0 - error_upper_bound(k, n, cas.delta)
    return cas


def _first_failure(k: np.ndarray, n: np.ndarray, eps: float, delta: float) -> int:
    """Index of the first candidate whose p-value exceeds ``delta`` (len if none)."""
    p = np.where(n > 0, binom.cdf(k, np.maximum(n, 1), eps), 1.0)
    bad = np.flatnonzero(p > delta)
    return int(bad[0]) if len(bad) else len(k)


def certify(cal: Calibration, metric: str, target: float, delta: float) -> Cascade:
    """The cascade that keeps most while certified to meet ``target``.

    Parameters
    ----------
    cal
        Scores and LLM answers on the calibration rows.
    metric
        ``"accuracy"``, ``"precision"`` or ``"recall"`` (the last two for
        filters, with ``cal.p_yes`` and ``cal.positive`` set).
    target, delta
        The required metric against the LLM, and the allowed probability of
        missing it.

    Returns
    -------
    Cascade
        Thresholds, kept share, and the metric's estimate, interval and
        certified bound on the calibration rows.
    """
    eps = 1.0 - target
    cas = Cascade(metric, target, delta, cal.rows)
    if metric == "accuracy":
        conf = np.asarray(cal.conf, dtype=np.float64)
        order = np.argsort(-conf, kind="stable")
        c_sorted = conf[order]
        wrong_cum = np.cumsum(~cal.correct[order])
        # Rows tied in confidence enter together: test at the last of each tie.
        last = np.flatnonzero(np.append(c_sorted[1:] != c_sorted[:-1], True))
        last = last[: len(conf)]  # no candidates at all without calibration rows
        k = wrong_cum[last]
        stop = _first_failure(k, np.full(len(k), cal.rows), eps, delta)
        if stop > 0:
            cas.conf_at = float(c_sorted[last[stop - 1]])
    elif metric == "precision":
        cas.no_below = BOUNDARY
        grid = _grid()[::-1]  # from keeping least "yes" to keeping most
        p, pos = cal.p_yes, cal.positive
        keep_yes = p[None, :] >= grid[:, None]
        k = (keep_yes & ~pos).sum(axis=1)
        n = k + int(((p >= BOUNDARY) & pos).sum())
        stop = _first_failure(k, n, eps, delta)
        if stop > 0:
            cas.yes_at = float(grid[stop - 1])
    elif metric == "recall":
        cas.yes_at = BOUNDARY
        grid = 1.0 - _grid()[::-1]  # 0 ... 0.5: from keeping least "no" to most
        p, pos = cal.p_yes, cal.positive
        k = ((p[None, :] < grid[:, None]) & pos).sum(axis=1)
        stop = _first_failure(k, np.full(len(k), int(pos.sum())), eps, delta)
        if stop > 0:
            cas.no_below = float(grid[stop - 1])
    else:  # pragma: no cover - validated at the boundary
        raise ValueError(metric)
    return evaluate_at(cal, cas)


def conformal_threshold(p_label: np.ndarray, target: float, delta: float) -> float:
    """Largest ``tau`` whose prediction sets ``{c: p_c >= tau}`` are certified.

    ``p_label`` is the proxy's probability of the LLM's label on each
    calibration row. The miscoverage ``P(p_label < tau)`` is bounded by
    ``1 - target`` with probability ``1 - delta`` (a PAC, training-conditional
    split-conformal rule, tested by the same binomial test in increasing
    ``tau``). Every ``tau`` below the returned one is certified too, since
    miscoverage grows with ``tau``. Kept for comparison; see the module notes.
    """
    p = np.sort(np.asarray(p_label, dtype=np.float64))
    m = len(p)
    if m == 0:
        return 0.0
    # Candidate tau just above each calibration value: k(tau) = rows below it.
    cand = np.nextafter(p, np.inf)
    k = np.searchsorted(p, cand, side="left")
    stop = _first_failure(k, np.full(m, m), 1.0 - target, delta)
    return 0.0 if stop == 0 else float(cand[stop - 1])


def singleton_keep(P: np.ndarray, tau: float) -> np.ndarray:
    """Rows whose conformal set ``{c: p_c >= tau}`` holds exactly one class."""
    return (np.asarray(P) >= tau).sum(axis=1) == 1


def best_singleton_tau(P: np.ndarray, tau_max: float) -> float:
    """Among certified ``tau <= tau_max``, the one giving most singleton sets.

    Uses scores only (no labels), so any certified ``tau`` may be picked.
    """
    cands = np.unique(np.concatenate([[tau_max], np.asarray(P).ravel()]))
    cands = cands[cands <= tau_max]
    if len(cands) > 400:
        cands = np.quantile(cands, np.linspace(0, 1, 400))
    counts = [int(singleton_keep(P, t).sum()) for t in cands]
    return float(cands[int(np.argmax(counts))])


# Kept for callers of the first version of this module.
def accuracy_threshold(
    conf: np.ndarray, correct: np.ndarray, target: float, delta: float
):
    """Certified accuracy cascade on top-class confidence (see :func:`certify`)."""
    cal = Calibration(
        np.asarray(conf, dtype=np.float64), np.asarray(correct, dtype=bool)
    )
    return certify(cal, "accuracy", target, delta)


def calibration_of(
    P: np.ndarray, classes: np.ndarray, y: np.ndarray, yes: int | None
) -> tuple[Calibration, dict]:
    """Calibration arrays and the proxy's plain holdout accuracy.

    ``P`` holds the proxy's probabilities on the calibration rows (columns in
    ``classes`` order), ``y`` the LLM's labels, ``yes`` the label index of
    "yes" for a filter (``None`` for classify).
    """
    classes = np.asarray(classes)
    pred = classes[P.argmax(axis=1)]
    correct = pred == y
    cal = Calibration(P.max(axis=1).astype(np.float64), correct)
    if yes is not None:
        col = np.flatnonzero(classes == yes)
        cal.p_yes = P[:, col[0]] if len(col) else np.zeros(len(y))
        cal.positive = np.asarray(y) == yes
    k = int(correct.sum())
    lo, hi = clopper_pearson(k, len(correct))
    quality = {
        "accuracy": k / len(correct) if len(correct) else 0.0,
        "low": lo,
        "high": hi,
        "rows": len(correct),
        "method": "calibration holdout",
    }
    return cal, quality


def viability_reason(
    cascade: Cascade,
    quality: dict,
    majority_rate: float,
    cal: Calibration | None = None,
) -> str | None:
    """Why the proxy is not worth using, or ``None`` when it is.

    Not viable: for an accuracy target, no threshold is certified; the
    cascade keeps none of the calibration rows' answers; or the answers the
    cascade would keep (its calibration rows above the
    thresholds, or all of them without ``cal``) are not significantly more
    accurate than always answering the commonest training label (the lower
    end of their 95% interval does not exceed that rate). The second test
    matters because an overall target can be met by keeping a few coin-flip
    answers whose errors fit in the budget; such a proxy is not worth
    trusting. Falling back to the LLM only removes kept rows, so it never
    weakens the certificate.
    """
    if not cascade.keeps_any:
        return (
            f"no confidence threshold is certified to reach accuracy "
            f"{cascade.target:.2f} on {cascade.calibration_rows} calibration rows "
            f"(holdout accuracy {quality['accuracy']:.3f})"
        )
    if cal is not None:
        kept = cascade.keep(cal.conf, cal.p_yes)
        n, k = int(kept.sum()), int(cal.correct[kept].sum())
        what = "the answers it would keep"
        if n == 0 and cal.rows:
            # Possible for precision and recall, whose cascade always keeps one
            # side of 0.5: the proxy would decide nothing, so say so.
            return (
                f"the certified cascade keeps none of the {cal.rows} calibration "
                f"rows' answers ({cascade.metric} target {cascade.target:.2f})"
            )
    else:
        n, k = int(quality["rows"]), round(quality["accuracy"] * quality["rows"])
        what = "its holdout answers"
    if n and clopper_pearson(k, n)[0] <= majority_rate:
        return (
            f"{what} ({k} of {n} calibration rows right) are not significantly more "
            f"accurate than always answering the commonest label ({majority_rate:.3f})"
        )
    return None


def band_quality(cal: Calibration, certified: Cascade, widened: Cascade) -> dict:
    """Proxy accuracy on calibration rows kept only because of a cap.

    These are the rows the certified cascade escalates but the widened one
    keeps: an estimate of how good the ``proxy_below_target`` answers are.
    """
    band = widened.keep(cal.conf, cal.p_yes) & ~certified.keep(cal.conf, cal.p_yes)
    n = int(band.sum())
    k = int(cal.correct[band].sum())
    lo, hi = clopper_pearson(k, n)
    return {"rows": n, "accuracy": k / n if n else None, "low": lo, "high": hi}


def cost_quality_curve(
    cal: Calibration, metric: str, target: float, delta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share sent to the LLM, metric estimate and one-test bound, per threshold.

    Each point is :func:`evaluate_at` at one candidate threshold; the bounds
    are pointwise (not the fixed-sequence certificate), for drawing.
    """
    if metric == "accuracy":
        cands = np.unique(np.append(cal.conf, np.inf))[::-1]
        make = [dict(conf_at=float(t)) for t in cands]
    elif metric == "precision":
        make = [
            dict(yes_at=float(t), no_below=BOUNDARY)
            for t in np.append(np.inf, _grid()[::-1])
        ]
    else:
        make = [dict(yes_at=BOUNDARY, no_below=float(t)) for t in 1.0 - _grid()[::-1]]
    sent, est, low = [], [], []
    for kw in make:
        c = evaluate_at(cal, Cascade(metric, target, delta, cal.rows, **kw))
        sent.append(1.0 - c.kept_share)
        est.append(c.estimate)
        low.append(c.certified)
    return np.array(sent), np.array(est), np.array(low)
