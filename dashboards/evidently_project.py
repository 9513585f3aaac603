"""The Evidently workspace the daemon fills: one project, its dashboard defined in code.

Every drift check becomes a snapshot in the project ``eliq`` (tagged with its kind and the
generator, named after the check so that a re-run replaces it), and the dashboard plots
them over time: drift p-values per kind and axis, the scores' quartiles per release, and
each generator's mean scores. A panel with fewer than two points says what it needs
instead of staying blank. ``evidently ui --workspace DATA_DIR/evidently`` shows it.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from evidently.core.report import Snapshot
from evidently.sdk.models import DashboardModel, DashboardPanelPlot, DashboardTabModel, PanelMetric
from evidently.sdk.panels import line_plot_panel
from evidently.ui.workspace import Workspace

PROJECT = "eliq"
KINDS = {
    "critic": "critic drift (retune start vs challenger, anchor images)",
    "generator": "generator shift (new release vs earlier, at its cycle)",
    "watch": "generator shift under the current champion (periodic check)",
}
AXES = ("quality", "alignment")
_IDS = uuid.UUID("6f1c3e0a-5d2b-4c7e-9a41-0e1f2a3b4c5d")


def dashboard(generators: Iterable[str] = (), runs: Iterable[str] = ()) -> DashboardModel:
    """The dashboard, as code: the same inputs always give the same panels and ids.
    ``runs`` (the project's run names, ``kind:...``) let a panel that cannot draw a line
    yet say what it needs instead of staying blank."""
    checks = Counter(name.split(":", 1)[0] for name in runs)
    drift = [
        _panel(
            f"Drift p-value: {description}",
            [
                PanelMetric(
                    legend=axis,
                    metric="ValueDrift",
                    metric_labels={"column": axis},
                    tags=[kind],
                )
                for axis in AXES
            ],
            "Two-sample Kolmogorov-Smirnov p-value, for reference: alerts are decided by "
            "effect sizes with intervals (daemon/policy/drift.py)." + _needs(kind, checks[kind]),
        )
        for kind, description in KINDS.items()
    ]
    distributions = [
        _panel(
            f"{axis.capitalize()} quartiles of each new release (champion's scores)",
            [
                PanelMetric(
                    legend=f"q{int(q * 100)}",
                    metric="QuantileValue",
                    metric_labels={"column": axis, "quantile": str(q)},
                    tags=["generator"],
                )
                for q in (0.25, 0.5, 0.75)
            ],
            "Score distribution per release, one point per release's cycle."
            + _needs("generator", checks["generator"]),
        )
        for axis in AXES
    ]
    means = [
        _panel(
            f"Mean {axis} per generator",
            [
                PanelMetric(
                    legend=name,
                    metric="MeanValue",
                    metric_labels={"column": axis},
                    tags=["watch", f"generator:{name}"],
                )
                for name in sorted(set(generators))
            ],
            "Each release's mean under the champion of the moment (periodic check)."
            + _needs("watch", checks["watch"]),
        )
        for axis in AXES
    ]
    tabs = {"Drift": drift, "Score distributions": distributions, "Generators": means}
    return DashboardModel(
        tabs=[
            DashboardTabModel(
                id=uuid.uuid5(_IDS, f"tab:{title}"), title=title, panels=[p.id for p in panels]
            )
            for title, panels in tabs.items()
        ],
        panels=[panel for panels in tabs.values() for panel in panels],
    )


def _needs(kind: str, count: int) -> str:
    """What a line of ``kind`` checks still needs: two points."""
    if count >= 2:
        return ""
    what = {
        "critic": "two releases",
        "generator": "three releases (the first shift is measured at the second)",
        "watch": "two periodic checks (the first runs once two releases are done)",
    }[kind]
    return f" Needs {what} to draw a line: {count} {kind} check{'s' * (count != 1)} so far."


def _panel(title: str, values: list[PanelMetric], description: str) -> DashboardPanelPlot:
    panel = line_plot_panel(title, values, description, size="half")
    panel.id = uuid.uuid5(_IDS, f"panel:{title}")
    return panel


def set_aside_torn_snapshots(path: Path) -> list[Path]:
    """Rename every snapshot file that is not whole JSON (a daemon killed while Evidently
    wrote it) to ``*.json.torn``: Evidently refuses to open a workspace holding one, and
    the check that wrote it writes its run again. Returns what was set aside."""
    torn = []
    for snapshot in sorted(Path(path).glob("*/snapshots/*.json")):
        try:
            json.loads(snapshot.read_bytes())
        except ValueError:  # empty, cut short, or not text
            aside = snapshot.with_name(snapshot.name + ".torn")
            snapshot.replace(aside)
            torn.append(aside)
    return torn


class DriftWorkspace:
    """The daemon's Evidently workspace (a local folder)."""

    def __init__(self, path: Path) -> None:
        set_aside_torn_snapshots(Path(path))
        self.workspace = Workspace.create(str(path))
        self.index = Path(path) / "eliq-runs.json"  # run name -> snapshot id
        found = self.workspace.search_project(PROJECT)
        self.project = (
            found[0]
            if found
            else self.workspace.create_project(
                PROJECT, description="eliq's drift checks: critic drift and generator shift"
            )
        )

    def add(self, name: str, snapshot: Snapshot, generators: Iterable[str]) -> None:
        """Add ``snapshot`` as run ``name`` (replacing one of that name) and refresh the
        dashboard for the generators known so far. Names are looked up in a small index
        beside the workspace, not by reading back every snapshot."""
        project_id = self.project.id
        index = json.loads(self.index.read_text()) if self.index.is_file() else {}
        if name in index and uuid.UUID(index[name]) in set(self.workspace.list_runs(project_id)):
            self.workspace.delete_run(project_id, index[name])
        index[name] = str(self.workspace.add_run(project_id, snapshot, name=name).id)
        scratch = self.index.with_suffix(".tmp")
        scratch.write_text(json.dumps(index, indent=1))
        scratch.replace(self.index)
        self.workspace.save_dashboard(project_id, dashboard(generators, index))

    def runs(self) -> list[str]:
        """The names of the runs in the project, oldest first."""
        project_id = self.project.id
        runs = [self.workspace.get_run(project_id, i) for i in self.workspace.list_runs(project_id)]
        return [r.name for r in sorted(runs, key=lambda r: r.timestamp)]
