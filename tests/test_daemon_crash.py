"""Crash safety: ``eliq-daemon once`` killed with SIGKILL at random points of its cycles.
After every restart the cycle goes on; in the end no release is lost or processed twice and
MLflow holds exactly one critic version per release."""

import random
import signal
import subprocess
import sys

import httpx
import mlflow
import pytest

from daemon.serve.status import collect_status
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

pytestmark = pytest.mark.slow


def once(config, env, kill_after=None):
    with (config.parent / "once.log").open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daemon", "once", "--config", str(config)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        process.wait(timeout=kill_after)
        return process.returncode
    except subprocess.TimeoutExpired:
        process.kill()  # SIGKILL: no handler runs, nothing is flushed
        process.wait()
        return None


def test_sigkill_at_random_points_loses_and_repeats_nothing(tmp_path):
    registry = tmp_path / "registry"
    write_release(registry, "gen-v1", ["astronaut.png", "chelsea.png", "coffee.png"])
    write_release(registry, "gen-v2", ["rocket.jpg", "motorcycle_left.png", "coffee.png"])
    settings = fast_settings(tmp_path, registry)
    config = write_config(settings, tmp_path)
    env = DAEMON_ENV

    rng = random.Random(7)
    kills = 0
    for _ in range(12):
        status = once(config, env, kill_after=rng.uniform(6, 45))
        if status is None:
            kills += 1
        else:
            assert status == 0
            break
    else:
        assert once(config, env) == 0
    assert kills >= 2, "the random points all fell after the end; the test proved nothing"

    state = collect_status(settings)
    assert [r["state"] for r in state["releases"]] == ["done", "done"]
    assert len({r["id"] for r in state["releases"]}) == 2
    client = mlflow.MlflowClient(settings.tracking_uri, settings.tracking_uri)
    versions = client.search_model_versions(f"name = '{settings.model_name}'")
    per_release = sorted(v.tags["eliq.release"] for v in versions)  # and the starting critic
    assert per_release == sorted([*(r["id"] for r in state["releases"]), "starting"])
    assert len(state["critic_versions"]) == 3
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    assert champion.tags["eliq.release"] == state["releases"][1]["id"]


def test_sigterm_lets_the_step_in_flight_finish_and_the_next_start_resumes(tmp_path):
    registry = tmp_path / "registry"
    write_release(registry, "gen-v1", ["astronaut.png", "chelsea.png", "coffee.png"])
    settings = fast_settings(tmp_path, registry, api_port=free_port())
    config = write_config(settings, tmp_path)
    env = DAEMON_ENV
    log = tmp_path / "run.log"
    service = start_daemon(config, log)
    working = (settings.data_dir / "releases").is_dir  # it is working on the release
    wait_until(working, service, log)
    base = f"http://127.0.0.1:{settings.api_port}"
    wait_until(lambda: api_answers(base), service, log)  # ... and the API answers meanwhile
    assert httpx.get(f"{base}/healthz", timeout=60).json() == {"status": "ok"}
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=300) == 0
    printed = log.read_text()
    assert "finishing the current step" in printed and "eliq-daemon stopped" in printed

    (release,) = collect_status(settings, aliases=False)["releases"]
    assert release["state"] != "done" and release["attempts"] == 0 and not release["last_error"]
    assert once(config, env) == 0
    (release,) = collect_status(settings)["releases"]
    assert release["state"] == "done"
