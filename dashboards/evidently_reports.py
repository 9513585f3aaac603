"""Drift checks on Evidently: a report per check, and the workspace the dashboards read.

:class:`EvidentlyDriftSink` is the daemon's ``DriftSink``: it renders two score sets as an
Evidently report (per axis: means, quartiles and the two-sample Kolmogorov-Smirnov p-value,
which decides nothing; the daemon's own intervals decide) and publishes it as a run of the
workspace's project (:class:`~dashboards.evidently_project.DriftWorkspace`), opened on
first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import Report
from evidently.core.report import Snapshot
from evidently.metrics import MeanValue, QuantileValue, ValueDrift

from dashboards.evidently_project import DriftWorkspace


@dataclass(frozen=True)
class ScoreReport:
    """One check's report: the snapshot and what the daemon keeps of it."""

    snapshot: Snapshot
    ks_p_values: dict[str, float]

    def save_html(self, path: Path) -> None:
        self.snapshot.save_html(str(path))

    def as_dict(self) -> dict[str, Any]:
        return self.snapshot.dict()


class EvidentlyDriftSink:
    def __init__(self, workspace: Path) -> None:
        self.path = workspace
        self._workspace: DriftWorkspace | None = None

    def report(
        self,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        axes: Sequence[str],
        tags: list[str],
        metadata: dict[str, str],
    ) -> ScoreReport:
        """``current`` against ``reference`` on the score columns ``axes``."""
        report = Report(
            [ValueDrift(column=a, method="ks") for a in axes]
            + [MeanValue(column=a) for a in axes]
            + [QuantileValue(column=a, quantile=q) for a in axes for q in (0.25, 0.5, 0.75)]
        )
        snapshot = report.run(
            current[list(axes)].dropna(how="all"),
            reference[list(axes)].dropna(how="all"),
            tags=tags,
            metadata=metadata,
        )
        p_values = {
            metric["config"]["column"]: float(metric["value"])
            for metric in snapshot.dict()["metrics"]
            if metric["config"]["type"].endswith("ValueDrift")
        }
        return ScoreReport(snapshot, p_values)

    def publish(self, name: str, report: ScoreReport, generators: Iterable[str]) -> None:
        """Add ``report`` as run ``name`` of the workspace (a re-run replaces it)."""
        if self._workspace is None:
            self._workspace = DriftWorkspace(self.path)
        self._workspace.add(name, report.snapshot, generators)
