"""The interval code against scipy's bootstrap and the textbook on known distributions."""

import numpy as np
import pytest
from scipy import stats

from eliq.intervals import (
    Interval,
    mcnemar,
    mean,
    mean_difference,
    paired_mean_difference,
    proportion,
    rank_agreement,
)


def _scipy_percentile(samples, statistic, paired=False):
    result = stats.bootstrap(
        samples,
        statistic,
        paired=paired,
        vectorized=True,
        n_resamples=20_000,
        method="percentile",
        random_state=np.random.default_rng(1),
    )
    return result.confidence_interval


@pytest.mark.parametrize("draw", ["normal", "exponential"])
def test_unpaired_difference_matches_scipys_percentile_bootstrap(draw):
    rng = np.random.default_rng(0)
    sample = getattr(rng, draw)
    a, b = sample(size=60), sample(size=45) + 0.5
    ours = mean_difference(a, b)
    theirs = _scipy_percentile((a, b), lambda x, y, axis=-1: y.mean(axis) - x.mean(axis))
    width = theirs.high - theirs.low
    assert ours.estimate == pytest.approx(b.mean() - a.mean())
    assert ours.low == pytest.approx(theirs.low, abs=0.05 * width)
    assert ours.high == pytest.approx(theirs.high, abs=0.05 * width)
    assert ours.n == 45
    one = mean(b)
    theirs = _scipy_percentile((b,), lambda x, axis=-1: x.mean(axis))
    assert one.estimate == pytest.approx(b.mean())
    assert one.low == pytest.approx(theirs.low, abs=0.05 * (theirs.high - theirs.low))


def test_paired_difference_and_rank_agreement_match_scipy():
    rng = np.random.default_rng(2)
    a = rng.normal(size=50)
    b = a + rng.normal(0.2, 0.3, size=50)
    ours = paired_mean_difference(a, b)
    theirs = _scipy_percentile((a, b), lambda x, y, axis=-1: (y - x).mean(axis), paired=True)
    width = theirs.high - theirs.low
    assert ours.low == pytest.approx(theirs.low, abs=0.05 * width)
    assert ours.high == pytest.approx(theirs.high, abs=0.05 * width)

    rho = rank_agreement(a, b)
    assert rho.estimate == pytest.approx(stats.spearmanr(a, b).statistic)
    spearman = stats.bootstrap(
        (a, b),
        lambda x, y: stats.spearmanr(x, y).statistic,
        paired=True,
        vectorized=False,
        n_resamples=4000,
        method="percentile",
        random_state=np.random.default_rng(1),
    ).confidence_interval
    width = spearman.high - spearman.low
    assert rho.low == pytest.approx(spearman.low, abs=0.1 * width)
    assert rho.high == pytest.approx(spearman.high, abs=0.1 * width)


def test_a_95_percent_interval_covers_the_true_difference_about_95_percent_of_the_time():
    """Known distributions, small samples (a release of 24 images): the coverage is near
    its nominal level, so alert rates computed from it mean what they say."""
    rng = np.random.default_rng(3)
    trials = 400
    unpaired = paired = 0
    for seed in range(trials):
        d = mean_difference(rng.normal(0, 1, 24), rng.normal(0.3, 1, 24), seed=seed)
        unpaired += d.low <= 0.3 <= d.high
        noise = rng.normal(0, 1, 24)
        d = paired_mean_difference(noise, noise + rng.normal(0.3, 0.5, 24), seed=seed)
        paired += d.low <= 0.3 <= d.high
    assert 0.90 <= unpaired / trials <= 0.98
    assert 0.90 <= paired / trials <= 0.98


def test_proportions_and_mcnemar_are_the_textbook_ones():
    interval = proportion(40, 50)
    wilson = stats.binomtest(40, 50).proportion_ci(0.95, method="wilson")
    assert (interval.estimate, interval.low, interval.high) == (0.8, wilson.low, wilson.high)
    # 10 pairs only the second critic gets right, 2 only the first: exact binomial on 12
    first = [True] * 30 + [True] * 2 + [False] * 10 + [False] * 8
    second = [True] * 30 + [False] * 2 + [True] * 10 + [False] * 8
    assert mcnemar(first, second) == pytest.approx(stats.binomtest(10, 12, 0.5).pvalue)
    assert mcnemar(first, first) == 1.0


def test_an_interval_says_when_it_lies_beyond_a_tolerance():
    assert Interval(0.5, 0.3, 0.7, 24).excludes(0.2)
    assert Interval(-0.5, -0.7, -0.3, 24).excludes(0.2)
    assert not Interval(0.3, 0.1, 0.5, 24).excludes(0.2)
    assert str(Interval(0.21, 0.12, 0.30, 24)) == "+0.210 [+0.120, +0.300]"
    with pytest.raises(ValueError, match="at least 2"):
        mean_difference(np.array([1.0]), np.array([1.0, 2.0]))
