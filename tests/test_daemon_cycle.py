"""The daemon's cycle end to end: real local registry, real MLflow (SQLite), real Evidently
reports, alerts to a real webhook receiver on localhost."""

import base64
import hmac
import json
import logging
import math
import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from werkzeug import Response

from adapters.alerts.webhook import signature
from daemon.composition import build_cycle, build_ports
from daemon.cycle.watch import watch
from daemon.policy.gate import GateSettings
from daemon.policy.promotion import promote_by_hand
from daemon.serve.status import collect_status
from daemon.service import Service
from daemon.settings import AlertSpec
from daemon.state.tables import DriftCheck, ReleaseScore, ReleaseState
from dashboards.evidently_project import DriftWorkspace, dashboard
from eliq.train.data import load_pairs, split_held_out
from tests.daemon_helpers import fast_settings, write_release
from tests.postgres import fresh_database

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver(httpserver, monkeypatch):
    monkeypatch.setenv("ELIQ_WEBHOOK_SECRET", "s3cret")
    received = []
    httpserver.expect_request("/alerts", method="POST").respond_with_handler(
        lambda r: received.append(r) or Response("", status=204)
    )
    return httpserver.url_for("/alerts"), received


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """The daemon's state in its embedded SQLite, or in PostgreSQL on localhost."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_database() as url:
        yield url


def test_a_new_release_leaves_a_promoted_critic_a_drift_report_and_an_alert(
    tmp_path, receiver, database_url
):
    url, received = receiver
    registry = tmp_path / "registry"
    write_release(registry, "gen-v1")
    alerts = [AlertSpec(kind="log"), AlertSpec(kind="webhook", settings={"endpoint": url})]
    settings = fast_settings(tmp_path, registry, alerts=alerts, database_url=database_url)

    assert Service(settings).once() == 0

    status = collect_status(settings)
    (release,) = status["releases"]
    assert release["state"] == ReleaseState.done and release["name"] == "gen-v1"
    starting, version = status["critic_versions"]  # the critic it started from, then its retune
    assert starting["release_id"] is None and starting["status"] == "retired"
    assert version["status"] == "champion" and version["aliases"] == ["champion"]
    assert version["gate"]["passed"] and version["parent_version"] == starting["store_version"]

    client = mlflow.MlflowClient(settings.tracking_uri, settings.tracking_uri)
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    assert str(champion.version) == version["store_version"]
    assert champion.tags["eliq.release"] == release["id"]
    assert len(champion.tags["eliq.pair_set_digest"]) == 16
    assert champion.tags["eliq.gate.passed"] == "true"  # the gate's outcome, on the version
    assert champion.tags["eliq.status"] == "champion"
    assert champion.tags["eliq.gate.why"] == version["gate"]["why"]
    run = client.get_run(champion.run_id)
    assert any(k.startswith("eval.challenger.new") for k in run.data.metrics)
    assert any(k.startswith("train_rank") for k in run.data.metrics)
    params = run.data.params  # how it was trained
    assert params["train.steps"] == str(settings.retune.train.steps)
    assert params["train.seed"] == "0" and params["pairs.replay"] == "0"
    assert int(params["pairs.new"]) == version["training"]["pairs"] > 0
    assert params["lora.vision"].startswith("rank ")
    artifacts = {a.path for a in client.list_artifacts(champion.run_id, "drift/critic")}
    assert artifacts == {
        "drift/critic/report.html",
        "drift/critic/report.json",
        "drift/critic/scores.parquet",
    }

    # the registered model serves: load it through MLflow's pyfunc flavour and score
    mlflow.set_tracking_uri(settings.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    image = next((registry / "gen-v1").glob("*.png"))
    encoded = base64.b64encode(image.read_bytes()).decode()
    scores = model.predict(pd.DataFrame({"image": [encoded], "prompt": ["a cat"]}))
    assert list(scores.columns) == [
        "quality",
        "alignment",
        "quality_scaled",
        "alignment_scaled",
        "error",
    ]
    assert scores[["quality", "alignment"]].notna().all().all() and scores["error"][0] is None
    # ... with the library it was trained with, and pinned requirements
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{settings.model_name}@champion"))
    assert (folder / "code" / "eliq" / "critic" / "critic.py").is_file()
    example = json.loads((folder / "serving_input_example.json").read_text())
    assert model.predict(pd.DataFrame(**example["dataframe_split"]))["error"][0] is None
    requirements = (folder / "requirements.txt").read_text()
    assert "torch==" in requirements and "\neliq\n" not in requirements

    report = json.loads(release_drift(settings, "critic").read_text())
    checks = report["summary"]["checks"]  # four anchor images support no claim of drift
    assert [(c["axis"], c["status"]) for c in checks] == [
        ("quality", "inconclusive"),
        ("alignment", "inconclusive"),
    ]
    assert "inconclusive (n=4" in checks[0]["words"]
    assert set(report["summary"]["axes"]) == {"quality", "alignment"}  # the KS p-values, kept

    (request,) = received  # one alert: the promotion; an inconclusive check sends none
    body = request.get_data()
    expected = signature("s3cret", request.headers["X-Eliq-Timestamp"], body)
    assert hmac.compare_digest(request.headers["X-Eliq-Signature"], expected)
    alert = json.loads(body)
    assert alert["kind"] == "release" and "promoted" in alert["title"]
    assert alert["details"]["version"] == version["store_version"]

    # a second pass finds nothing new and sends nothing again
    assert Service(settings).once() == 0
    assert len(collect_status(settings)["critic_versions"]) == 2
    assert len(received) == 1


def release_drift(settings, kind):
    (path,) = (settings.data_dir / "releases").glob(f"*/drift/{kind}/report.json")
    return path


def test_a_second_release_retunes_from_the_champion_and_checks_both_drifts(tmp_path, caplog):
    registry = tmp_path / "registry"
    write_release(registry, "gen-v1", ["astronaut.png", "chelsea.png", "coffee.png"])
    settings = fast_settings(tmp_path, registry)
    assert Service(settings).once() == 0
    write_release(registry, "gen-v2", ["rocket.jpg", "motorcycle_left.png", "coffee.png"])
    # an operator holds out more from now on: the first release keeps the split it recorded
    train = settings.retune.train.model_copy(update={"held_out_fraction": 0.6})
    later = settings.model_copy(
        update={"retune": settings.retune.model_copy(update={"train": train})}
    )
    with caplog.at_level(logging.INFO, logger="daemon.cycle.steps"):
        assert Service(later).once() == 0
    records = {
        r.parent: json.loads(r.read_text())
        for r in (settings.data_dir / "releases").glob("*/pairs/held_out.json")
    }
    assert sorted(record["fraction"] for record in records.values()) == [0.2, 0.6]
    first = next(root for root, record in records.items() if record["fraction"] == 0.2)
    unrecorded = load_pairs([first], "x").drop(columns="held_out")
    rehashed = set(split_held_out(unrecorded, 0.6, 0)[1]["positive_id"])
    assert rehashed != set(records[first]["positives"])  # so the record is what holds below
    # the champion ranked the first release's held-out pairs in its own cycle: not again
    evaluated = [m for m in caplog.messages if m.startswith("gen-v2") and m.endswith("scored now")]
    assert len(evaluated) == 4 and "baseline on earlier pairs" in evaluated[3]
    assert evaluated[3].endswith(" 0 scored now"), evaluated
    assert all(not m.endswith(" 0 scored now") for m in evaluated[:3]), evaluated

    status = collect_status(settings)
    assert [r["state"] for r in status["releases"]] == ["done", "done"]
    starting, first, second = status["critic_versions"]
    assert first["parent_version"] == starting["store_version"] and starting["status"] == "retired"
    assert second["parent_version"] == first["store_version"]
    assert second["training"]["init"] == first["checkpoint"]
    assert second["training"]["replay"]  # the first release's pairs were replayed
    assert (second["status"], first["status"]) == ("champion", "retired")
    assert second["aliases"] == ["champion"]
    assert set(second["gate"]["checks"]) == {"accuracy_on_new", "gain_on_new", "forgetting"}
    assert second["gate"]["checks"]["forgetting"] is not None
    kinds = sorted(p.parent.name for p in (settings.data_dir / "releases").glob("*/drift/*/*.json"))
    assert kinds == ["critic", "critic", "generator", f"watch-v{second['store_version']}"]

    # the periodic check: every release scored by the current champion, once
    cycle = build_cycle(settings)
    scores = cycle.ports.store.rows(ReleaseScore)
    assert len(scores) == 3  # v1 under the first champion; v1 and v2 under the second
    under_second = [s for s in scores if s.critic_version_id == second["id"]]
    assert sorted(s.release_id for s in under_second) == sorted(r["id"] for r in status["releases"])
    assert all(s.images == 3 and math.isfinite(s.quality_mean) for s in under_second)
    (check,) = cycle.ports.store.rows(DriftCheck, kind="watch")
    assert check.release_id == status["releases"][1]["id"]
    assert check.summary["critic_version"] == second["store_version"]
    assert watch(cycle.ports) is None  # nothing new: no second check, no rescoring
    assert len(cycle.ports.store.rows(ReleaseScore)) == 3

    # every drift check is a run in the Evidently workspace, under the dashboard
    workspace = DriftWorkspace(settings.data_dir / "evidently")
    first_id, second_id = (r["id"] for r in status["releases"])
    assert sorted(workspace.runs()) == sorted(
        [
            f"critic:{first_id}",
            f"critic:{second_id}",
            f"generator:{second_id}",
            f"watch:{second_id}:v{second['store_version']}",
        ]
    )
    board = workspace.workspace.get_dashboard(workspace.project.id)
    assert board == dashboard({r["name"] for r in status["releases"]}, workspace.runs())
    assert {t.title for t in board.tabs} == {"Drift", "Score distributions", "Generators"}


def test_manual_mode_holds_the_challenger_until_promoted_and_announces_the_promotion(tmp_path):
    registry = tmp_path / "registry"
    write_release(registry, "gen-v1", ["astronaut.png", "chelsea.png", "coffee.png"])
    gate = GateSettings(mode="manual", min_gain=-1, min_pairs=1, min_accuracy=0)
    settings = fast_settings(tmp_path, registry, gate=gate)
    assert Service(settings).once() == 0
    starting, version = collect_status(settings)["critic_versions"]
    assert starting["status"] == "champion" and starting["aliases"] == ["champion"]
    assert version["status"] == "held" and version["aliases"] == ["challenger"]
    automatic = version["gate"]["why"]
    client = mlflow.MlflowClient(settings.tracking_uri, settings.tracking_uri)
    held = client.get_model_version(settings.model_name, version["store_version"])
    assert held.tags["eliq.status"] == "held" and held.tags["eliq.gate.why"] == automatic

    promote_by_hand(build_ports(settings), version["store_version"], by="ops-on-call")
    promoted = client.get_model_version(settings.model_name, version["store_version"])
    assert promoted.tags["eliq.status"] == "champion"
    assert promoted.tags["eliq.promoted_by"] == "ops-on-call"
    starting, version = collect_status(settings)["critic_versions"]
    assert version["status"] == "champion" and version["aliases"] == ["champion"]
    assert starting["status"] == "retired" and starting["aliases"] == []
    manual = version["gate"]["manual"]
    assert manual["by"] == "ops-on-call" and manual["overrode"] == automatic
    assert version["gate"]["why"].startswith("promoted by ops-on-call")
    alerts = [json.loads(line) for line in (settings.data_dir / "alerts.jsonl").open()]
    assert (
        alerts[-1]["title"]
        == f"Critic v{version['store_version']} promoted to champion by ops-on-call"
    )


def test_a_failing_step_is_retried_then_parked_with_an_alert(tmp_path):
    registry = tmp_path / "registry"
    release = write_release(registry, "broken", ["chelsea.png"])
    for image in release.glob("*.png"):
        image.write_bytes(b"not an image")  # every sample fails to decode
    settings = fast_settings(tmp_path, registry, max_attempts=2)
    assert Service(settings).once() == 1
    (row,) = collect_status(settings)["releases"]
    assert row["state"] == "parked" and row["attempts"] == 2
    assert "no images" in row["last_error"]
    alerts = [json.loads(line) for line in (settings.data_dir / "alerts.jsonl").open()]
    assert [a["kind"] for a in alerts] == ["release"] and alerts[0]["severity"] == "error"


def test_status_json_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from daemon.cli import app

    env = {"ELIQ_DATA_DIR": str(tmp_path / "data"), "ELIQ_REGISTRIES": "[]"}
    result = CliRunner().invoke(app, ["status", "--json"], env={**os.environ, **env})
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["releases"] == [] and payload["mlflow_tracking_uri"].startswith("sqlite:///")


def test_an_unreachable_ray_cluster_fails_the_step_and_parks(tmp_path):
    """``executor: {kind: ray, address: 127.0.0.1:<nothing>}``: each try fails within the
    connect deadline, is recorded, and the release parks (ray.init alone retried forever)."""
    from daemon.settings import ExecutorSettings
    from tests.daemon_helpers import free_port

    registry = tmp_path / "registry"
    write_release(registry, "painter-v1", ["chelsea.png", "coffee.png"])
    executor = ExecutorSettings(kind="ray", address=f"127.0.0.1:{free_port()}", connect_timeout_s=2)
    settings = fast_settings(tmp_path, registry, max_attempts=2, executor=executor)
    assert Service(settings).once() == 1
    (row,) = collect_status(settings)["releases"]
    assert row["state"] == "parked" and row["attempts"] == 2
    assert "ConnectionError: the Ray cluster at 127.0.0.1:" in row["last_error"]
    assert "does not answer within 2 s" in row["last_error"]


def test_the_first_run_on_the_embedded_defaults_ends_with_a_champion(tmp_path):
    """`eliq-daemon once` from an empty data directory, nothing configured (what `make run`
    does first): the critic it starts from is the champion in MLflow, the demo release's
    challenger is decided on enough held-out pairs, and the champion scored the release.
    Only the retune's step count is lowered (from 120), to keep the suite's time: what is
    checked here (the champion, the held-out pairs, the watch) does not depend on it."""
    import subprocess
    import sys

    from mlflow import MlflowClient

    from daemon.composition import read_state
    from daemon.serve.readmodel import leaderboard
    from daemon.settings import DaemonSettings

    data = tmp_path / "data"
    daemon = str(Path(sys.executable).with_name("eliq-daemon"))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ELIQ_DATA_DIR": str(data),
        "ELIQ_RETUNE__TRAIN__STEPS": "24",
    }
    done = subprocess.run(
        [daemon, "once"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    uri = f"sqlite:///{data / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("eliq-critic", "champion")
    settings = DaemonSettings(data_dir=data)  # the defaults the daemon ran on
    status = collect_status(settings)
    (release,) = status["releases"]
    assert release["state"] == "done"
    starting, challenger = status["critic_versions"]
    assert starting["release_id"] is None and starting["store_version"] == "1"
    assert challenger["release_id"] == release["id"] and challenger["parent_version"] == "1"
    assert "too few held-out pairs" not in challenger["gate"]["why"], challenger["gate"]
    assert challenger["gate"]["checks"]["accuracy_on_new"]["n"] >= 30
    crowned = next(v for v in status["critic_versions"] if v["status"] == "champion")
    assert str(champion.version) == crowned["store_version"] and "champion" in crowned["aliases"]
    # the watch scored the release under that champion: the leaderboard has its row
    assert [row["release"] for row in leaderboard(read_state(settings))] == [release["id"]]
