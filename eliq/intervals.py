"""Effect sizes with confidence intervals: what every comparison of scores reports.

A difference of two means without its uncertainty cannot say whether a new release is
better, and a drift test's p-value says neither which way nor how far things moved. So each
comparison here returns an :class:`Interval`: the estimate and a percentile bootstrap
interval around it (resampling the images, or the pairs of images when the same ones are
scored twice). The bootstrap is vectorised (all resamples at once) and seeded, so the same
scores always give the same interval. Proportions use Wilson's interval (exact enough for
a few dozen pairs) and paired proportions McNemar's exact test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 4000


@dataclass(frozen=True)
class Interval:
    """An estimate with its two-sided confidence interval over ``n`` resampled units."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    def excludes(self, tolerance: float) -> bool:
        """Whether the whole interval lies beyond ``±tolerance`` (a shift larger than the
        tolerance, with confidence)."""
        return self.low > tolerance or self.high < -tolerance

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.estimate:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


Statistic = Callable[..., np.ndarray]
"""Takes one array per sample, each of shape (resamples, n), and returns (resamples,)."""


def bootstrap(
    samples: Sequence[np.ndarray],
    statistic: Statistic,
    paired: bool = False,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over ``samples``. ``paired``: the
    samples are aligned (row i of each belongs to one unit) and resampled together."""
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if any(len(a) < 2 for a in arrays):
        raise ValueError(f"a bootstrap needs at least 2 values per sample, got {_sizes(arrays)}")
    if paired and len({len(a) for a in arrays}) != 1:
        raise ValueError(f"paired samples differ in length: {_sizes(arrays)}")
    rng = np.random.default_rng(seed)
    if paired:
        index = rng.integers(0, len(arrays[0]), size=(resamples, len(arrays[0])))
        drawn = [a[index] for a in arrays]
    else:
        drawn = [a[rng.integers(0, len(a), size=(resamples, len(a)))] for a in arrays]
    estimate = float(statistic(*[a[None, :] for a in arrays])[0])
    values = statistic(*drawn)
    values = values[np.isfinite(values)]
    tail = (1 - confidence) / 2
    if len(values) == 0:
        low = high = float("nan")
    else:
        low, high = (float(v) for v in np.quantile(values, [tail, 1 - tail]))
    return Interval(estimate, low, high, min(len(a) for a in arrays), confidence)


def mean(values: np.ndarray, confidence: float = CONFIDENCE, seed: int = 0) -> Interval:
    """The mean of one sample (e.g. a release's scores)."""
    return bootstrap([values], lambda v: v.mean(axis=-1), confidence=confidence, seed=seed)


def mean_difference(
    a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE, seed: int = 0
) -> Interval:
    """Mean of ``b`` minus mean of ``a``, two independent samples."""
    return bootstrap([a, b], _difference_of_means, confidence=confidence, seed=seed)


def paired_mean_difference(
    a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE, seed: int = 0
) -> Interval:
    """Mean of ``b - a`` over aligned pairs (the same prompt, the same image)."""
    return bootstrap([a, b], _difference_of_means, paired=True, confidence=confidence, seed=seed)


def rank_agreement(
    x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE, seed: int = 0
) -> Interval:
    """Spearman's correlation between two scorings of the same items, resampling items."""
    return bootstrap([x, y], _spearman, paired=True, confidence=confidence, seed=seed)


def linear_agreement(
    x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE, seed: int = 0
) -> Interval:
    """Pearson's correlation between two scorings of the same items, resampling items."""
    return bootstrap([x, y], _pearson, paired=True, confidence=confidence, seed=seed)


def proportion(hits: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """A share of successes (e.g. pairs ranked right) with Wilson's interval."""
    if n < 1:
        raise ValueError("a proportion needs at least one trial")
    ci = stats.binomtest(hits, n).proportion_ci(confidence, method="wilson")
    return Interval(hits / n, float(ci.low), float(ci.high), n, confidence)


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Exact two-sided McNemar p-value: do ``a`` and ``b``, outcomes on the same trials,
    differ in their rate of success? Only the trials they disagree on count."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_b, only_a + only_b, 0.5).pvalue)


def _difference_of_means(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return b.mean(axis=-1) - a.mean(axis=-1)


def _spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Spearman: Pearson's correlation of average ranks (nan where one row is
    constant)."""
    return _pearson(stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1))


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation (nan where one row is constant)."""
    rx, ry = x - x.mean(axis=-1, keepdims=True), y - y.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((rx**2).sum(axis=-1) * (ry**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=-1) / denominator


def _sizes(arrays: list[np.ndarray]) -> list[int]:
    return [len(a) for a in arrays]
