"""Drift between score sets, decided by effect sizes with confidence intervals.

Two questions:

* **generator shift**: one critic scores the new release's samples and the earlier
  releases'; per axis, how far did the mean score move (new minus earlier, paired by prompt
  where the releases share prompts, as releases sampled on one prompt suite do)?
* **critic drift**: the critic a retune started from and the challenger score the same
  anchor images; per axis, do they still rank them alike (Spearman's correlation)? Raw
  scores of two critic versions are on their own scales, so only their order is compared.

Each is a bootstrap interval (:mod:`eliq.intervals`), and a check alerts only when the
whole interval lies beyond its tolerance (:class:`~daemon.settings.DriftSettings`): a
shift larger than ``shift_tolerance_sd`` standard deviations of the earlier scores, or a
rank agreement below ``min_rank_correlation``. With fewer than ``min_images`` on a side
the check is *inconclusive* and never alerts: a handful of images cannot support a claim
either way. ``bench/drift.py`` measures the false alarms and the power of these rules.

The scores, the decisions and a report are saved beside each check. The report comes from
a :class:`DriftSink` (Evidently's, :mod:`dashboards.evidently_reports`, in the daemon): means,
quartiles and the two-sample Kolmogorov-Smirnov p-value per axis, for the dashboards; the
p-value decides nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import Field

from eliq.compare import AXES, compare_axis
from eliq.config import StrictModel
from eliq.intervals import Interval, rank_agreement


class DriftSettings(StrictModel):
    """How drift is decided (daemon/policy/drift.py): each check is a percentile bootstrap
    interval, and it alerts only when the whole interval lies beyond its tolerance.
    ``bench/drift.py`` measures the false alarms and the power these defaults give."""

    anchor_images_per_release: int = Field(default=32, ge=1)
    anchor_folder: Path | None = Field(default=None, description="Extra anchor images.")
    min_images: int = Field(
        default=20,
        ge=2,
        description="Fewer images (or shared prompts) than this on a side: the check says "
        "'inconclusive (n=…)' and never alerts.",
    )
    confidence: float = Field(
        default=0.95, ge=0.5, lt=1.0, description="Level of every check's interval."
    )
    shift_tolerance_sd: float = Field(
        default=0.25,
        ge=0,
        description="Generator shift, per axis: the new release's mean score minus the "
        "earlier releases' (paired by prompt where they share prompts). Alerts when the "
        "interval lies beyond ± this many standard deviations of the earlier scores.",
    )
    min_rank_correlation: float = Field(
        default=0.8,
        ge=-1,
        le=1,
        description="Critic drift, per axis: Spearman's correlation between the critic a "
        "retune started from and the challenger on the anchor images. Alerts when the "
        "interval lies below this.",
    )


Status = Literal["alert", "ok", "inconclusive"]
Measure = Literal["shift", "agreement"]


@dataclass(frozen=True)
class AxisCheck:
    """One decision: one measure on one axis, with the words an alert or page shows."""

    axis: str
    measure: Measure
    status: Status
    n: int
    words: str
    interval: Interval | None = None
    tolerance: float | None = None
    direction: Literal["rose", "fell"] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "measure": self.measure,
            "status": self.status,
            "n": self.n,
            "words": self.words,
            "interval": None if self.interval is None else self.interval.to_json(),
            "tolerance": self.tolerance,
            "direction": self.direction,
        }


class ScoreReport(Protocol):
    """A rendered comparison of two score sets."""

    ks_p_values: dict[str, float]

    def save_html(self, path: Path) -> None: ...

    def as_dict(self) -> dict[str, Any]: ...


class DriftSink(Protocol):
    """Where checks' reports are rendered and published for the dashboards."""

    def report(
        self,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        axes: Sequence[str],
        tags: list[str],
        metadata: dict[str, str],
    ) -> ScoreReport: ...

    def publish(self, name: str, report: ScoreReport, generators: Iterable[str]) -> None: ...


@dataclass
class DriftResult:
    checks: list[AxisCheck]
    summary: dict[str, Any]
    report_html: Path
    report_json: Path
    report: ScoreReport | None = None

    @property
    def drifted(self) -> bool:
        return any(check.status == "alert" for check in self.checks)


def shift_checks(
    reference: pd.DataFrame, current: pd.DataFrame, settings: DriftSettings
) -> list[AxisCheck]:
    """Per axis, ``current``'s mean score minus ``reference``'s (frames with the axes'
    columns and ``prompt``), against ``±shift_tolerance_sd`` reference deviations."""
    checks = []
    for axis in AXES:
        n = _count(reference, axis), _count(current, axis)
        if min(n) == 0:
            continue
        comparison = compare_axis(reference, current, axis, settings.confidence)
        units = comparison.paired_prompts if comparison else 0
        if comparison is None or min(n) < settings.min_images or 0 < units < settings.min_images:
            size = f"n={min(n)}" if not units else f"{units} shared prompts"
            reason = f"{size}; a decision needs {settings.min_images}"
            checks.append(_inconclusive(axis, "shift", min(n), reason))
            continue
        interval = comparison.interval
        tolerance = settings.shift_tolerance_sd * float(np.std(reference[axis].dropna()))
        sizes = f"n={n[1]} vs {n[0]}" + (f", paired over {units} prompts" if units else "")
        if interval.excludes(tolerance):
            direction = "rose" if interval.estimate > 0 else "fell"
            words = (
                f"{axis} {direction} by {abs(interval.estimate):.3g} "
                f"[{_magnitude(interval, direction)}] ({sizes}; tolerance ±{tolerance:.3g})"
            )
            checks.append(
                AxisCheck(axis, "shift", "alert", min(n), words, interval, tolerance, direction)
            )
        else:
            words = f"{axis}: no shift beyond ±{tolerance:.3g}: {interval} ({sizes})"
            checks.append(AxisCheck(axis, "shift", "ok", min(n), words, interval, tolerance))
    return checks


def agreement_checks(
    reference: pd.DataFrame, current: pd.DataFrame, settings: DriftSettings
) -> list[AxisCheck]:
    """Per axis, Spearman's correlation between two critics' scores of the same images
    (row i of both frames is one image), against ``min_rank_correlation``."""
    checks = []
    floor = settings.min_rank_correlation
    for axis in AXES:
        both = pd.concat([reference[axis], current[axis]], axis=1, keys=["a", "b"]).dropna()
        if both.empty:
            continue
        n = len(both)
        if n < settings.min_images:
            reason = f"n={n}; a decision needs {settings.min_images}"
            checks.append(_inconclusive(axis, "agreement", n, reason))
            continue
        interval = rank_agreement(both["a"].to_numpy(), both["b"].to_numpy(), settings.confidence)
        if not np.isfinite(interval.estimate):
            checks.append(_inconclusive(axis, "agreement", n, f"n={n}, constant scores"))
        elif interval.high < floor:
            words = (
                f"{axis} ranking changed: Spearman {interval.estimate:.2f} "
                f"[{interval.low:.2f}, {interval.high:.2f}] < {floor} (n={n} images)"
            )
            checks.append(AxisCheck(axis, "agreement", "alert", n, words, interval, floor))
        else:
            words = (
                f"{axis} ranking kept: Spearman {interval.estimate:.2f} "
                f"[{interval.low:.2f}, {interval.high:.2f}] (n={n}; alert below {floor})"
            )
            checks.append(AxisCheck(axis, "agreement", "ok", n, words, interval, floor))
    return checks


def save_check(
    sink: DriftSink,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    checks: list[AxisCheck],
    out: Path,
    tags: list[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> DriftResult:
    """The scores, the decisions and ``sink``'s report of one check, under ``out``.
    ``tags`` and ``metadata`` label the report on the dashboards."""
    axes = [a for a in AXES if _count(reference, a) >= 2 and _count(current, a) >= 2]
    report = None
    summary: dict[str, Any] = {
        "rule": "bootstrap interval beyond the tolerance (see daemon/policy/drift.py)",
        "reference_size": len(reference),
        "current_size": len(current),
        "checks": [check.to_json() for check in checks],
        "breaches": [check.words for check in checks if check.status == "alert"],
        "axes": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    html, payload = out / "report.html", out / "report.json"
    if axes:
        report = sink.report(reference, current, axes, tags or [], metadata or {})
        for axis, p_value in report.ks_p_values.items():
            summary["axes"][axis] = {
                "ks_p_value": p_value,
                "reference_mean": float(reference[axis].mean()),
                "current_mean": float(current[axis].mean()),
            }
        report.save_html(html)
    else:
        html.write_text("<p>Too few scores on both sides for a report.</p>", encoding="utf-8")
    rendered = report.as_dict() if report is not None else None
    payload.write_text(json.dumps({"summary": summary, "evidently": rendered}, indent=2))
    columns = [a for a in AXES if a in reference and a in current]
    sides = {"reference": reference, "current": current}
    pd.concat(
        [frame[columns].assign(side=side) for side, frame in sides.items()], ignore_index=True
    ).to_parquet(out / "scores.parquet")
    return DriftResult(checks, summary, html, payload, report)


def incident_topic(check: dict[str, Any]) -> str:
    """What repeated breaches of a check (as stored, :meth:`AxisCheck.to_json`) share:
    ``shift:quality:fell``, ``agreement:alignment`` (see :meth:`Alerter.breach`)."""
    return ":".join([check["measure"], check["axis"], *filter(None, [check.get("direction")])])


def read_scores(report_json: Path) -> pd.DataFrame:
    """The scores a check compared (columns side, quality, alignment), saved beside it."""
    return pd.read_parquet(Path(report_json).parent / "scores.parquet")


def _inconclusive(axis: str, measure: Measure, n: int, reason: str) -> AxisCheck:
    return AxisCheck(axis, measure, "inconclusive", n, f"{axis} {measure}: inconclusive ({reason})")


def _magnitude(interval: Interval, direction: str) -> str:
    """The interval of the size of a move, in the direction it went."""
    low, high = (
        (interval.low, interval.high) if direction == "rose" else (-interval.high, -interval.low)
    )
    return f"{low:.3g}, {high:.3g}"


def _count(frame: pd.DataFrame, axis: str) -> int:
    return int(frame[axis].notna().sum()) if axis in frame else 0
