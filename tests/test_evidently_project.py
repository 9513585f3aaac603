"""The Evidently workspace the daemon fills: a re-run of a drift check replaces its run."""

import numpy as np
import pandas as pd

from daemon.policy.drift import DriftSettings, save_check, shift_checks
from dashboards.evidently_project import DriftWorkspace, dashboard
from dashboards.evidently_reports import EvidentlyDriftSink


def test_a_rerun_replaces_its_run_and_the_dashboard_follows_the_generators(tmp_path):
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"quality": rng.random(40), "alignment": rng.random(40)})
    current = reference + 0.5
    checks = shift_checks(reference, current, DriftSettings())
    sink = EvidentlyDriftSink(tmp_path / "evidently")
    result = save_check(sink, reference, current, checks, tmp_path / "check", tags=["watch"])
    sink.publish("watch:gen-v2", result.report, ["gen"])
    sink.publish("watch:gen-v2", result.report, ["gen"])  # a re-run after a crash
    sink.publish("critic:gen-v2", result.report, ["gen", "other"])

    reopened = DriftWorkspace(tmp_path / "evidently")
    assert reopened.project.id == DriftWorkspace(tmp_path / "evidently").project.id  # found again
    assert sorted(reopened.runs()) == ["critic:gen-v2", "watch:gen-v2"]
    board = reopened.workspace.get_dashboard(reopened.project.id)
    assert board == dashboard(["gen", "other"], reopened.runs())
    means = [p for p in board.panels if p.title == "Mean quality per generator"]
    assert [v.legend for v in means[0].values] == ["gen", "other"]
    # one point draws no line: each panel says what it needs instead of staying blank
    assert means[0].subtitle.endswith(
        "Needs two periodic checks (the first runs once two releases are done) to draw a "
        "line: 1 watch check so far."
    )
    assert "Needs" not in dashboard(["gen"], ["watch:a", "watch:b"]).panels[2].subtitle


def test_a_snapshot_torn_by_a_killed_daemon_is_set_aside_and_written_again(tmp_path):
    """A SIGKILL while Evidently wrote a snapshot left an empty file, and Evidently then
    refused to open the workspace: every later drift check failed and parked its release."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"quality": rng.random(40), "alignment": rng.random(40)})
    checks = shift_checks(reference, reference + 0.5, DriftSettings())
    sink = EvidentlyDriftSink(tmp_path / "evidently")
    result = save_check(sink, reference, reference + 0.5, checks, tmp_path / "check", ["watch"])
    sink.publish("watch:gen-v2", result.report, ["gen"])
    (snapshot,) = (tmp_path / "evidently").glob("*/snapshots/*.json")
    snapshot.write_bytes(b"")  # killed mid-write

    reopened = DriftWorkspace(tmp_path / "evidently")
    assert snapshot.with_name(snapshot.name + ".torn").is_file() and not snapshot.exists()
    reopened.add("watch:gen-v2", result.report.snapshot, ["gen"])
    assert DriftWorkspace(tmp_path / "evidently").runs() == ["watch:gen-v2"]
