"""A lost or corrupt MLflow store, and credentials in its URI, as a careless operator would
meet them: the daemon notices, says so, alerts and refuses to run until the registry is
rebuilt; no password reaches a log line, the page or ``status --json``."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from adapters.critic_stores import RegistryUnreachable
from adapters.critic_stores.mlflow import MlflowCriticStore
from adapters.critic_stores.mlflow_check import registry_problems
from daemon.cli import app as cli
from daemon.composition import build_app, build_cycle
from daemon.cycle.context import ReleaseContext
from daemon.service import REGISTRY_MISMATCH
from daemon.settings import CriticStoreSpec
from daemon.state.tables import CriticVersion, ReleaseState, Step
from tests.daemon_helpers import (
    DAEMON_ENV,
    api_answers,
    fast_settings,
    free_port,
    start_daemon,
    wait_until,
    write_config,
    write_release,
)
from tests.postgres import fresh_database

pytestmark = pytest.mark.slow


def alerts(settings) -> list[dict]:
    path = settings.data_dir / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def ready(settings):
    return TestClient(build_app(settings)).get("/readyz")


def daemon(config, *arguments):
    """``eliq-daemon ARGUMENTS`` in its own process, as an operator runs it (MLflow keeps one
    store per URI and process, so a store deleted under a process is not seen anew in it)."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", *arguments, "--config", str(config)],
        env=DAEMON_ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_lost_then_a_corrupt_mlflow_store_stops_the_daemon_until_it_is_rebuilt(tmp_path):
    registry = tmp_path / "registry"
    write_release(registry, "gen-v1", ["astronaut.png", "chelsea.png", "coffee.png"])
    settings = fast_settings(tmp_path, registry)
    config = write_config(settings, tmp_path)
    assert daemon(config, "once").returncode == 0
    store = settings.data_dir / "mlflow.db"
    starting, champion = json.loads(daemon(config, "status", "--json").stdout)["critic_versions"]
    assert champion["status"] == "champion" and champion["aliases"] == ["champion"]
    assert starting["release_id"] is None and starting["status"] == "retired"

    store.unlink()  # `rm data/mlflow.db`
    refused = daemon(config, "once")
    assert refused.returncode == REGISTRY_MISMATCH
    assert "mlflow.db is missing" in refused.stderr + refused.stdout
    assert not store.exists(), "checking must not create an empty store"
    (alert,) = [a for a in alerts(settings) if a["kind"] == "registry"]
    assert alert["severity"] == "critical" and "missing" in alert["summary"]
    assert "reregister" in json.dumps(alert["details"])
    shown = daemon(config, "status", "--json")
    problems = json.loads(shown.stdout)["registry_problems"]
    assert problems and "mlflow.db is missing" in problems[0] and "v1" in problems[0]
    readiness = ready(settings)
    assert readiness.status_code == 503 and "missing" in readiness.json()["mlflow"]
    shown = daemon(config, "status")
    assert shown.returncode == 1 and "reregister" in shown.stdout

    rebuilt = daemon(config, "reregister")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    client = mlflow.MlflowClient(settings.tracking_uri, settings.tracking_uri)
    version = client.get_model_version_by_alias(settings.model_name, "champion")
    assert version.tags["eliq.release"] == champion["release_id"]
    assert version.tags["eliq.gate.passed"] == "true"  # the gate outcome comes back too
    assert str(version.version) == champion["store_version"]
    first = client.get_model_version(settings.model_name, starting["store_version"])
    assert first.tags["eliq.release"] == "starting"  # the critic it started from, back too
    assert any(k.startswith("eval.challenger") for k in client.get_run(version.run_id).data.metrics)
    assert json.loads(daemon(config, "status", "--json").stdout)["registry_problems"] == []
    assert ready(settings).status_code == 200
    assert daemon(config, "once").returncode == 0

    store.write_bytes(b"this is not a database " * 400)  # overwritten with garbage
    assert daemon(config, "once").returncode == REGISTRY_MISMATCH
    shown = daemon(config, "status")
    assert shown.returncode == 1 and "cannot be read" in shown.stdout
    assert "Traceback" not in shown.stdout + shown.stderr
    readiness = ready(settings)
    assert readiness.status_code == 503 and readiness.json()["mlflow"] != "ok"


def test_status_reads_without_writing(tmp_path):
    settings = fast_settings(tmp_path, tmp_path / "registry")
    config = str(write_config(settings, tmp_path))
    shown = CliRunner().invoke(cli, ["status", "--json", "--config", config])
    assert shown.exit_code == 0 and json.loads(shown.output)["releases"] == []
    assert "no daemon state" in json.loads(shown.output)["note"]
    assert not settings.data_dir.exists()


def test_a_password_in_the_tracking_uri_never_reaches_a_log_the_page_or_status(tmp_path):
    secret = "PW-s3cret-4242"
    (tmp_path / "registry").mkdir()
    with fresh_database() as url:  # trust authentication: the password is carried, not checked
        tracking = url.replace("://postgres@", f"://postgres:{secret}@", 1)
        assert secret in tracking
        settings = fast_settings(
            tmp_path,
            tmp_path / "registry",
            critic_store=CriticStoreSpec(settings={"tracking_uri": tracking}),
            api_port=free_port(),
        )
        config = write_config(settings, tmp_path)
        log = tmp_path / "run.log"
        service = start_daemon(config, log)
        try:
            base = f"http://127.0.0.1:{settings.api_port}"
            wait_until(lambda: "eliq-daemon serving" in log.read_text(), service, log)
            wait_until(lambda: api_answers(base), service, log)  # its own thread, maybe later
            page = httpx.get(f"{base}/", timeout=300).text  # a loaded machine is slow
            readiness = httpx.get(f"{base}/readyz", timeout=300).text
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=300)
        status = subprocess.run(
            [sys.executable, "-m", "daemon", "status", "--json", "--config", str(config)],
            env=DAEMON_ENV,
            capture_output=True,
            text=True,
            timeout=600,
        )
    printed = log.read_text()
    # a database as tracking URI: the client writes the artifacts, under the data directory
    assert list((settings.data_dir / "mlartifacts").rglob("MLmodel"))
    # nothing at MLflow's process-wide defaults in the daemon's working folder: artifacts
    # (./mlruns), or a store (./mlflow.db) that registering through models:/<id> would open
    assert not Path("mlruns").exists() and not Path("mlflow.db").exists()
    assert "MLflow at postgresql+psycopg://postgres:***@" in printed
    assert "postgres:***@" in page and "postgres:***@" in status.stdout
    for shown in (printed, page, readiness, status.stdout, status.stderr):
        assert secret not in shown


def test_an_embedded_store_is_created_whole_or_not_at_all(tmp_path, monkeypatch):
    """A daemon killed while MLflow builds its tables used to leave a store no later start
    could open ("table webhooks already exists"): it is now built aside and renamed."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def killed(*_):
        raise KeyboardInterrupt  # the process dies after the tables, before the rename

    monkeypatch.setattr("adapters.critic_stores.mlflow.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        MlflowCriticStore(uri, "eliq-critic", "eliq-critic", tmp_path / "artifacts").aliases()
    assert not (tmp_path / "mlflow.db").exists()
    monkeypatch.undo()
    registry = MlflowCriticStore(uri, "eliq-critic", "eliq-critic", tmp_path / "artifacts")
    assert registry.client.get_registered_model("eliq-critic").name == "eliq-critic"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_an_error_that_quotes_a_connection_string_is_stored_and_alerted_masked(tmp_path):
    registry = tmp_path / "registry"
    write_release(registry, "gen-v1", ["coffee.png"])
    cycle = build_cycle(fast_settings(tmp_path, registry, max_attempts=1))
    assert cycle.discover("team") == 1

    def sample(_: ReleaseContext):
        raise RuntimeError("could not reach postgresql://eliq:hunter2@db:5432/eliq")

    cycle.pipeline.steps[Step.sample] = sample
    (release,) = cycle.pipeline.pending()
    assert not cycle.pipeline.advance(release)
    parked = cycle.ports.store.release(release.id)
    assert parked.state == ReleaseState.parked
    assert "hunter2" not in parked.last_error and "eliq:***@db" in parked.last_error
    (alert,) = alerts(cycle.ports.settings)
    assert "hunter2" not in json.dumps(alert) and "eliq:***@db" in alert["summary"]


def test_an_mlflow_that_does_not_answer_is_an_outage_not_a_lost_registry(tmp_path):
    version = CriticVersion(release_id="gen-v1@1", checkpoint="x", store_version="1")
    for uri in (f"http://127.0.0.1:{free_port()}", "postgresql+psycopg://u@127.0.0.1:1/db"):
        with pytest.raises(RegistryUnreachable, match="does not answer"):
            registry_problems(uri, "eliq-critic", [version])
    assert registry_problems(f"http://127.0.0.1:{free_port()}", "eliq-critic", []) == []
