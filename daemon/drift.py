"""Drift between score distributions, as Evidently reports saved in HTML and JSON.

Two questions, one mechanism (:func:`compare_scores`):

* **critic drift**: champion and challenger score the same fixed anchor images; do the new
  critic's scores differ in distribution (two-sample Kolmogorov-Smirnov test per axis) or in
  order (Spearman correlation between the two critics' scores of each image)?
* **generator shift**: one critic scores the new release's samples and the earlier
  releases'; has the new release moved the distribution (the quality ceiling moved)?
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import Report
from evidently.core.report import Snapshot
from evidently.metrics import MeanValue, QuantileValue, ValueDrift
from scipy.stats import spearmanr

AXES = ("quality", "alignment")
TEST = "ks"  # two-sample Kolmogorov-Smirnov; the p-value is the drift score


@dataclass
class DriftResult:
    drifted: bool
    summary: dict[str, Any]
    report_html: Path
    report_json: Path
    breaches: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None


def read_scores(report_json: Path) -> pd.DataFrame:
    """The scores a check compared (columns side, quality, alignment), saved beside it."""
    return pd.read_parquet(Path(report_json).parent / "scores.parquet")


def compare_scores(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    out: Path,
    p_value: float,
    min_rank_correlation: float | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> DriftResult:
    """Drift of ``current`` scores from ``reference`` per axis (columns ``quality`` and
    ``alignment``; an axis with fewer than two values on either side is skipped). With
    ``min_rank_correlation``, the two frames hold the same images in the same order, and
    their Spearman correlation must reach it. The report also holds the current scores'
    mean and quartiles (what the Evidently dashboards plot over time); ``tags`` and
    ``metadata`` label its snapshot there."""
    axes = [
        a
        for a in AXES
        if a in reference
        and a in current
        and reference[a].notna().sum() >= 2
        and current[a].notna().sum() >= 2
    ]
    if not axes:
        raise ValueError("no axis has scores on both sides to compare")
    report = Report(
        [ValueDrift(column=a, method=TEST, threshold=p_value) for a in axes]
        + [MeanValue(column=a) for a in axes]
        + [QuantileValue(column=a, quantile=q) for a in axes for q in (0.25, 0.5, 0.75)]
    )
    snapshot = report.run(
        current[axes].dropna(how="all"),
        reference[axes].dropna(how="all"),
        tags=tags or [],
        metadata=metadata or {},
    )
    values = {
        m["config"]["column"]: float(m["value"])
        for m in snapshot.dict()["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }
    summary: dict[str, Any] = {
        "test": "two-sample Kolmogorov-Smirnov (Evidently ValueDrift, method 'ks')",
        "threshold_p_value": p_value,
        "reference_size": len(reference),
        "current_size": len(current),
        "axes": {},
    }
    breaches = []
    for axis in axes:
        entry = {
            "p_value": values[axis],
            "drifted": values[axis] < p_value,
            "reference_mean": float(reference[axis].mean()),
            "current_mean": float(current[axis].mean()),
        }
        if entry["drifted"]:
            breaches.append(f"{axis} distribution (KS p={values[axis]:.3g} < {p_value})")
        if min_rank_correlation is not None:
            rho = spearmanr(reference[axis], current[axis], nan_policy="omit").statistic
            rho = None if rho is None or math.isnan(rho) else float(rho)
            entry["spearman"] = rho
            if rho is not None and rho < min_rank_correlation:
                breaches.append(f"{axis} ranking (Spearman {rho:.3f} < {min_rank_correlation})")
        summary["axes"][axis] = entry
    out.mkdir(parents=True, exist_ok=True)
    html, payload = out / "report.html", out / "report.json"
    snapshot.save_html(str(html))
    payload.write_text(json.dumps({"summary": summary, "evidently": snapshot.dict()}, indent=2))
    sides = {"reference": reference, "current": current}
    pd.concat(
        [frame[axes].assign(side=side) for side, frame in sides.items()], ignore_index=True
    ).to_parquet(out / "scores.parquet")
    return DriftResult(bool(breaches), summary, html, payload, breaches, snapshot)
