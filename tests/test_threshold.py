"""The cascade's threshold rules (``_stages/evaluate.py``) on synthetic scores.

Each rule is checked against a brute-force re-implementation written as plain
loops, and its coverage is checked statistically on populations whose true
rates are known in closed form.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from thrifty_frames._stages.evaluate import (
    BOUNDARY,
    Calibration,
    Cascade,
    _grid,
    certify,
    conformal_threshold,
    evaluate_at,
    singleton_keep,
    viability_reason,
)


def _calibrated(rng, m):
    """Binary proxy on [0.5, 1] whose confidence is its true accuracy."""
    conf = rng.uniform(0.5, 1.0, m).round(3)  # rounding makes ties
    correct = rng.random(m) < conf
    return conf, correct


def _brute_accuracy(conf, correct, target, delta):
    m = len(conf)
    chosen = np.inf
    for t in sorted(set(conf.tolist()), reverse=True):
        k = sum(1 for c, ok in zip(conf, correct, strict=True) if c >= t and not ok)
        if binom.cdf(k, m, 1 - target) > delta:
            break
        chosen = t
    return chosen


def _brute_precision(p, pos, target, delta):
    chosen = np.inf
    for t in sorted(_grid().tolist(), reverse=True):
        k = sum(1 for pi, yi in zip(p, pos, strict=True) if pi >= t and not yi)
        n = k + sum(1 for pi, yi in zip(p, pos, strict=True) if pi >= BOUNDARY and yi)
        pval = binom.cdf(k, n, 1 - target) if n else 1.0
        if pval > delta:
            break
        chosen = t
    return chosen


def _brute_recall(p, pos, target, delta):
    chosen = 0.0
    n = int(sum(pos))
    for t in sorted((1.0 - _grid()).tolist()):
        k = sum(1 for pi, yi in zip(p, pos, strict=True) if pi < t and yi)
        pval = binom.cdf(k, n, 1 - target) if n else 1.0
        if pval > delta:
            break
        chosen = t
    return chosen


@pytest.mark.parametrize("seed", range(8))
def test_accuracy_threshold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    conf, correct = _calibrated(rng, 200)
    for target in (0.8, 0.9, 0.95):
        cas = certify(Calibration(conf, correct), "accuracy", target, 0.05)
        assert cas.conf_at == _brute_accuracy(conf, correct, target, 0.05)
        kept = conf >= cas.conf_at
        assert cas.kept_share == pytest.approx(kept.mean())
        assert cas.events == int((kept & ~correct).sum())


@pytest.mark.parametrize("seed", range(5))
def test_precision_and_recall_thresholds_match_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    p = rng.random(300)
    pos = rng.random(300) < p
    cal = Calibration(np.maximum(p, 1 - p), (p >= 0.5) == pos, p, pos)
    for target in (0.85, 0.9):
        pr = certify(cal, "precision", target, 0.05)
        assert pr.yes_at == _brute_precision(p, pos, target, 0.05)
        assert pr.no_below == BOUNDARY
        rc = certify(cal, "recall", target, 0.05)
        assert rc.no_below == _brute_recall(p, pos, target, 0.05)
        assert rc.yes_at == BOUNDARY


def test_higher_target_keeps_fewer_rows():
    rng = np.random.default_rng(3)
    conf, correct = _calibrated(rng, 400)
    cal = Calibration(conf, correct)
    kept = [
        certify(cal, "accuracy", t, 0.05).kept_share for t in (0.8, 0.9, 0.95, 0.99)
    ]
    assert kept == sorted(kept, reverse=True)
    assert kept[0] > kept[-1]


def test_too_few_calibration_rows_certify_nothing_even_when_all_correct():
    # 0.9 ** 20 = 0.12 > 0.05: twenty clean rows cannot certify 90% accuracy,
    # while 0.9 ** 29 = 0.047 < 0.05: twenty-nine can.
    few = certify(
        Calibration(np.full(20, 0.99), np.ones(20, bool)), "accuracy", 0.9, 0.05
    )
    assert few.conf_at == np.inf and not few.keeps_any and not few.met
    enough = certify(
        Calibration(np.full(29, 0.99), np.ones(29, bool)), "accuracy", 0.9, 0.05
    )
    assert enough.conf_at == 0.99 and enough.kept_share == 1.0 and enough.met


def test_empty_calibration_keeps_nothing():
    cas = certify(Calibration(np.zeros(0), np.zeros(0, bool)), "accuracy", 0.9, 0.05)
    assert cas.conf_at == np.inf
    assert cas.certified == 0.0


def test_widened_cascade_is_evaluated_at_its_own_thresholds():
    rng = np.random.default_rng(5)
    conf, correct = _calibrated(rng, 300)
    cal = Calibration(conf, correct)
    cas = certify(cal, "accuracy", 0.9, 0.05)
    # A cap left the rows with confidence 0.6 and above unasked.
    wide = evaluate_at(cal, cas.widened(np.array([0.6, 0.7])))
    assert wide.conf_at == 0.6
    k = int(((conf >= 0.6) & ~correct).sum())
    assert wide.events == k and wide.trials == 300
    assert wide.estimate == pytest.approx(1 - k / 300)
    assert wide.certified < cas.certified
    assert wide.low <= wide.estimate <= wide.high


def test_conformal_threshold_matches_brute_force():
    rng = np.random.default_rng(11)
    p_label = rng.beta(5, 1, 250).round(2)
    tau = conformal_threshold(p_label, 0.9, 0.05)
    best = 0.0
    for t in sorted(set(np.nextafter(p_label, np.inf).tolist())):
        k = int((p_label < t).sum())
        if binom.cdf(k, 250, 0.1) > 0.05:
            break
        best = t
    assert tau == best
    P = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [0.1, 0.1, 0.8]])
    assert singleton_keep(P, 0.35).tolist() == [True, False, True]


# -- coverage ---------------------------------------------------------------
# Populations with known rates: conf ~ U(0.5, 1) with P(correct | conf) = conf
# gives err(t) = (1 - t)^2; P(yes) ~ U(0, 1) with P(LLM yes | p) = p gives
# precision(t) = 1 - A / (A + 0.375) with A = (1 - t)^2 / 2, recall(t) = 1 - t^2.


def _true_rate(metric: str, cas: Cascade) -> float:
    if metric == "accuracy":
        return 1.0 - (1.0 - min(cas.conf_at, 1.0)) ** 2 if cas.conf_at > 0.5 else 0.75
    if metric == "precision":
        a = (1.0 - min(cas.yes_at, 1.0)) ** 2 / 2
        return 1.0 - a / (a + 0.375)
    return 1.0 - cas.no_below**2


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall"])
def test_coverage_is_at_least_one_minus_delta(metric):
    target, delta, runs = 0.9, 0.1, 300
    rng = np.random.default_rng({"accuracy": 1, "precision": 2, "recall": 3}[metric])
    misses = kept = 0
    for _ in range(runs):
        if metric == "accuracy":
            conf, correct = _calibrated(rng, 250)
            cal = Calibration(conf, correct)
        else:
            p = rng.random(250)
            pos = rng.random(250) < p
            cal = Calibration(np.maximum(p, 1 - p), (p >= 0.5) == pos, p, pos)
        cas = certify(cal, metric, target, delta)
        misses += _true_rate(metric, cas) < target
        kept += cas.kept_share
    # P(Binomial(300, 0.1) > 45) < 0.01: a valid rule passes this almost surely.
    assert misses <= 45, f"{metric}: target missed in {misses} of {runs} runs"
    # ... and it is not valid by keeping nothing.
    assert kept / runs > 0.3


def test_viability_rejects_coin_flip_answers_that_fit_the_error_budget():
    from thrifty_frames._stages.evaluate import viability_reason

    rng = np.random.default_rng(21)
    # A coin-flip proxy whose confidence means nothing: keeping its top 15%
    # costs about 7.5% errors, within a 10% budget, so a threshold is certified.
    conf = rng.uniform(0.5, 1.0, 400)
    correct = rng.random(400) < 0.5
    cal = Calibration(conf, correct)
    cas = certify(cal, "accuracy", 0.9, 0.05)
    assert cas.keeps_any
    quality = {"accuracy": correct.mean(), "rows": 400}
    assert "not significantly more accurate" in viability_reason(cas, quality, 0.5, cal)
    # A proxy right on 99% of the rows it keeps is viable on the same data size.
    good = Calibration(conf, rng.random(400) < np.where(conf > 0.8, 0.99, 0.6))
    cas = certify(good, "accuracy", 0.9, 0.05)
    assert viability_reason(cas, quality, 0.5, good) is None


def test_a_precision_cascade_that_keeps_nothing_is_not_viable():
    """A precision cascade keeps the proxy's "no" answers (P(yes) < 0.5) and
    its "yes" answers above yes_at; when every calibration row is a doubtful
    "yes" and no yes_at is certified, the proxy would decide nothing."""
    rng = np.random.default_rng(0)
    p_yes = rng.uniform(0.5, 0.7, 300)
    positive = rng.random(300) < 0.66
    cal = Calibration(conf=p_yes, correct=positive, p_yes=p_yes, positive=positive)
    cas = Cascade("precision", 0.95, 0.05, 300, yes_at=np.inf, no_below=BOUNDARY)
    assert not cas.keep(cal.conf, cal.p_yes).any()
    reason = viability_reason(cas, {"accuracy": 0.66, "rows": 300}, 0.66, cal)
    assert reason is not None and "keeps none of the 300 calibration rows" in reason
