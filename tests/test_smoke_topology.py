"""compose.yaml's topology without Docker: PostgreSQL on localhost, a real ``mlflow server``
process on its own PostgreSQL database (artifacts served through it), and the daemon
pointed at both for one cycle; the new model version is read back over MLflow's REST API."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from daemon.composition import build_app
from daemon.settings import CriticStoreSpec
from tests.daemon_helpers import fast_settings, free_port, write_release
from tests.postgres import fresh_database

pytestmark = pytest.mark.slow
MLFLOW = Path(sys.executable).parent / "mlflow"


@pytest.fixture
def mlflow_server(tmp_path):
    """A tracking server on a fresh PostgreSQL database, serving its artifacts."""
    with fresh_database() as backend:
        port = free_port()
        log = (tmp_path / "mlflow.log").open("w")
        server = subprocess.Popen(
            [
                str(MLFLOW),
                "server",
                "--host=127.0.0.1",
                f"--port={port}",
                f"--backend-store-uri={backend}",
                f"--artifacts-destination={tmp_path / 'mlartifacts'}",
                "--serve-artifacts",
                "--workers=1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while True:
            assert server.poll() is None, (tmp_path / "mlflow.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not come up"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        try:
            yield url, tmp_path / "mlartifacts"
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()


def test_one_cycle_against_mlflow_server_and_postgresql(tmp_path, mlflow_server):
    url, artifacts = mlflow_server
    registry = tmp_path / "registry"
    release = "studio-v1"
    write_release(registry, release, ["astronaut.png", "chelsea.png", "coffee.png"])
    with fresh_database() as state:
        settings = fast_settings(
            tmp_path,
            registry,
            database_url=state,
            critic_store=CriticStoreSpec(settings={"tracking_uri": url}),
        )
        config = tmp_path / "daemon.yaml"
        config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
        once = subprocess.run(
            [sys.executable, "-m", "daemon", "once", "--config", str(config)],
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert once.returncode == 0, once.stdout[-3000:] + once.stderr[-3000:]

        with TestClient(build_app(settings)) as api:
            assert api.get("/readyz").json() == {"ready": True, "database": "ok", "mlflow": "ok"}
            (row,) = api.get("/api/releases").json()
            assert row["state"] == "done"

    rest = httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=30)
    champion = rest.get(
        "/registered-models/alias", params={"name": settings.model_name, "alias": "champion"}
    )
    assert champion.status_code == 200, champion.text
    version = champion.json()["model_version"]
    tags = {t["key"]: t["value"] for t in version["tags"]}
    assert tags["eliq.release"] == row["id"] and tags["eliq.pair_set_digest"]
    found = rest.get(
        "/model-versions/search", params={"filter": f"name='{settings.model_name}'"}
    ).json()
    releases = sorted(
        {t["key"]: t["value"] for t in v["tags"]}["eliq.release"] for v in found["model_versions"]
    )
    assert releases == sorted([row["id"], "starting"])  # the critic it started from, then one

    run = rest.get("/runs/get", params={"run_id": version["run_id"]}).json()["run"]
    metrics = {m["key"] for m in run["data"]["metrics"]}
    assert "eval.challenger.new.accuracy" in metrics
    listed = rest.get("/artifacts/list", params={"run_id": version["run_id"], "path": "drift"})
    assert {f["path"] for f in listed.json()["files"]} >= {"drift/critic"}
    # the artifacts went through the server into its destination folder
    assert any(artifacts.rglob("report.html"))
