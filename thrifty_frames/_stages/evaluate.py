"""Evaluate stage: how good is the proxy, and where can its answers be kept.

Two things are computed from LLM-labeled rows the proxy did not train on:

* the proxy's plain accuracy against the LLM, with an exact (Clopper-Pearson)
  confidence interval;
* a confidence threshold ``t`` for the cascade: rows whose top proxy
  probability is at least ``t`` keep the proxy's answer, the others go to the
  LLM.

The threshold guarantee
-----------------------
Let ``conf(x)`` be the proxy's top-class probability and ``err(t)`` the
probability that a random row has ``conf >= t`` *and* a proxy answer that
differs from the LLM's. Rows sent to the LLM agree with it by definition, so
the accuracy of the cascade's output against the LLM is ``1 - err(t)``. The
target ``acc`` is met when ``err(t) <= 1 - acc``.

``err(t)`` only grows as ``t`` falls. The calibration rows give, for each
candidate ``t`` (tested from the most confident down), the count ``k(t)`` of
rows that are kept and wrong; under ``H0: err(t) > 1 - acc`` that count is
stochastically at least ``Binomial(m, 1 - acc)``, so ``P(Bin(m, 1 - acc) <=
k(t))`` is a valid p-value. Testing in that fixed order and stopping at the
first ``p > delta`` controls the family-wise error at ``delta``
(fixed-sequence testing, as in Learn-then-Test). Hence, with probability at
least ``1 - delta`` over the draw of the calibration rows, the chosen ``t``
has ``err(t) <= 1 - acc``.

Assumptions: the calibration rows are drawn uniformly at random from the
rows being labeled (the sample stage does this) and were not used to train
the proxy; the LLM answers deterministically (temperature 0, cached). The
guarantee is on the expected accuracy over rows drawn like the frame's; the
realised accuracy on a finite frame scatters around it by sampling noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, binom


def clopper_pearson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided ``1 - alpha`` interval for a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    lo = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return (lo, hi)


@dataclass
class Threshold:
    """The cascade's learned threshold and what it is expected to deliver."""

    value: float  # keep the proxy's answer where conf >= value; inf keeps none
    target: float
    delta: float
    calibration_rows: int
    kept_share: float  # share of calibration rows the proxy keeps at this threshold
    kept_errors: int  # calibration rows kept and wrong
    error_upper: float  # 1 - delta upper bound on err(value)

    @property
    def accuracy_lower(self) -> float:
        """Lower bound (at 1 - delta) on the output's accuracy against the LLM."""
        return 1.0 - self.error_upper


def error_upper_bound(k: int, m: int, delta: float) -> float:
    """One-sided ``1 - delta`` upper bound on a rate with ``k`` events in ``m`` rows."""
    if m == 0:
        return 1.0
    if k >= m:
        return 1.0
    return float(beta.ppf(1 - delta, k + 1, m - k))


def accuracy_threshold(
    conf: np.ndarray, correct: np.ndarray, target: float, delta: float
) -> Threshold:
    """Smallest confidence threshold certified to meet ``target`` accuracy.

    Parameters
    ----------
    conf
        Top-class proxy probability of each calibration row.
    correct
        Whether the proxy's answer equals the LLM's on that row.
    target, delta
        Required accuracy against the LLM, and the allowed failure probability.
    """
    conf = np.asarray(conf, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    m = len(conf)
    eps = 1.0 - target
    order = np.argsort(-conf, kind="stable")
    c_sorted = conf[order]
    wrong_cum = np.cumsum(~correct[order])
    chosen = np.inf
    chosen_i = -1
    i = 0
    while i < m:
        # Rows tied in confidence enter together.
        j = i
        while j + 1 < m and c_sorted[j + 1] == c_sorted[i]:
            j += 1
        k = int(wrong_cum[j])
        p_value = float(binom.cdf(k, m, eps))
        if p_value > delta:
            break
        chosen, chosen_i = float(c_sorted[i]), j
        i = j + 1
    kept = chosen_i + 1
    k_kept = int(wrong_cum[chosen_i]) if kept else 0
    return Threshold(
        value=chosen,
        target=target,
        delta=delta,
        calibration_rows=m,
        kept_share=kept / m if m else 0.0,
        kept_errors=k_kept,
        error_upper=error_upper_bound(k_kept, m, delta),
    )


def bound_at(conf: np.ndarray, correct: np.ndarray, t: float, delta: float) -> float:
    """Upper bound on ``err(t)`` for a threshold chosen for another reason (a cap).

    This is a single test at a fixed ``t`` and does not carry the
    fixed-sequence guarantee when ``t`` itself was picked by looking at these
    rows; the report marks it as an estimate.
    """
    conf = np.asarray(conf)
    correct = np.asarray(correct, dtype=bool)
    k = int(((conf >= t) & ~correct).sum())
    return error_upper_bound(k, len(conf), delta)
