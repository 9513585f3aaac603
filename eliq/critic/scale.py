"""A readable 0-100 scale for a critic's raw scores.

A raw score is an unbounded number (a log variance less an entropy, plus residuals) that
only compares images scored by one critic version. The scale maps it to the percentile
it would have among a fixed set of anchor images, the positives this critic version was
trained on: 50 is a typical training image, 0 lies at or below the worst of them, 100 at or
above the best. The map is piecewise linear between stored quantiles, so it is monotone in
the raw score and bounded, and it is saved with the checkpoint (``scale.json``), so the
same raw score means the same scaled score wherever that checkpoint is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

SCALE_FILE = "scale.json"
FORMAT = "eliq-scale-1"
PERCENTILES = np.linspace(0.0, 100.0, 101)


@dataclass(frozen=True)
class ScoreScale:
    """Per axis, the raw scores at the anchors' percentiles 0, 1, ..., 100 (None for an
    axis without anchors, e.g. alignment when no anchor had a prompt)."""

    quality: tuple[float, ...]
    alignment: tuple[float, ...] | None
    anchors: str
    """What the anchor images were (for people reading the checkpoint)."""

    @classmethod
    def fit(cls, quality: Sequence[float], alignment: Sequence[float], anchors: str) -> ScoreScale:
        """The scale of raw ``quality`` (and ``alignment``) scores of the anchor images."""
        return cls(_quantiles(quality, "quality"), _quantiles(alignment, None), anchors)

    def to_100(self, axis: str, raw: float) -> float | None:
        """``raw`` on the 0-100 scale of ``axis``; None where the axis has no scale."""
        knots = self._knots.get(axis)
        if knots is None:
            return None
        raw_points, percentiles = knots
        if len(raw_points) == 1:
            return 50.0 if raw == raw_points[0] else (0.0 if raw < raw_points[0] else 100.0)
        if raw <= raw_points[0] or raw >= raw_points[-1]:
            return float(percentiles[0] if raw <= raw_points[0] else percentiles[-1])
        high = int(np.searchsorted(raw_points, raw, side="right"))
        low = high - 1
        with np.errstate(over="ignore"):  # a gap of subnormal width overflows (np.interp: inf)
            fraction = (raw - raw_points[low]) / (raw_points[high] - raw_points[low])
        fraction = min(1.0, max(0.0, float(fraction)))
        return float(percentiles[low] + fraction * (percentiles[high] - percentiles[low]))

    @cached_property
    def _knots(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per axis, the distinct raw quantiles and their percentiles, made once per scale
        rather than per score: equal quantiles (ties among anchors) take their mean
        percentile, so the map stays a function of the raw score."""
        knots = {}
        for axis, points in (("quality", self.quality), ("alignment", self.alignment)):
            if points is not None:
                raw_points, where = np.unique(np.asarray(points), return_inverse=True)
                knots[axis] = raw_points, np.bincount(where, PERCENTILES) / np.bincount(where)
        return knots

    def save(self, folder: Path) -> None:
        payload = {
            "format": FORMAT,
            "anchors": self.anchors,
            "percentiles": PERCENTILES.tolist(),
            "quality": list(self.quality),
            "alignment": None if self.alignment is None else list(self.alignment),
        }
        (Path(folder) / SCALE_FILE).write_text(json.dumps(payload, indent=1))

    @classmethod
    def load(cls, folder: Path) -> ScoreScale | None:
        """The checkpoint's scale, or None for a checkpoint saved without one."""
        path = Path(folder) / SCALE_FILE
        if not path.is_file():
            return None
        try:
            payload = json.loads(path.read_text())
            if not isinstance(payload, dict) or payload.get("format") != FORMAT:
                raise ValueError(f"not an {FORMAT} file")
            alignment = payload["alignment"]
            return cls(
                _checked(payload["quality"]),
                None if alignment is None else _checked(alignment),
                str(payload.get("anchors", "")),
            )
        except (ValueError, TypeError, KeyError, RecursionError, UnicodeDecodeError) as error:
            why = f"no {error}" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"{path}: {why}") from None


def _quantiles(values: Sequence[float], required: str | None) -> tuple[float, ...] | None:
    finite = np.asarray([v for v in values if v is not None], dtype=float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        if required:
            raise ValueError(f"a score scale needs finite {required} scores of anchor images")
        return None
    return tuple(float(v) for v in np.percentile(finite, PERCENTILES))


def _checked(points: list[float]) -> tuple[float, ...]:
    values = np.asarray(points, dtype=float)
    if values.ndim != 1 or len(values) != len(PERCENTILES) or not np.isfinite(values).all():
        raise ValueError(f"expected {len(PERCENTILES)} finite quantiles per axis")
    if (np.diff(values) < 0).any():
        raise ValueError("quantiles must not decrease")
    return tuple(float(v) for v in values)
