"""The status API over a real daemon state (two releases through the cycle), served by a
real uvicorn server on localhost; the page rendered in headless Chromium."""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from prometheus_client.parser import text_string_to_metric_families

from daemon.composition import build_app
from daemon.serve.status import collect_status
from daemon.service import Service
from daemon.settings import CriticStoreSpec
from tests.conftest import CHROMIUM
from tests.daemon_helpers import fast_settings, free_port, write_release

pytestmark = pytest.mark.slow
PROMETHEUS = shutil.which("prometheus")
PROMETHEUS_FILES = Path(__file__).resolve().parents[1] / "dashboards/prometheus"
ALERTS = {
    rule["alert"]
    for group in yaml.safe_load((PROMETHEUS_FILES / "alerts.yml").read_text())["groups"]
    for rule in group["rules"]
}


def serve(settings):
    """Start the API on a free port; returns its base URL and the server."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


@pytest.fixture(scope="module")
def daemon_state(tmp_path_factory):
    """Two releases through the whole cycle, the second retuned from the first's champion."""
    root = tmp_path_factory.mktemp("api")
    registry = root / "registry"
    settings = fast_settings(root, registry)
    write_release(registry, "painter-v1", ["astronaut.png", "chelsea.png", "coffee.png"])
    assert Service(settings).once() == 0
    write_release(registry, "painter-v2", ["rocket.jpg", "motorcycle_left.png", "coffee.png"])
    assert Service(settings).once() == 0
    return settings


@pytest.fixture(scope="module")
def api(daemon_state):
    url, server = serve(daemon_state)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client
    server.should_exit = True


def test_health_and_readiness(api, daemon_state):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "database": "ok", "mlflow": "ok"}


def test_readiness_fails_when_mlflow_is_unreachable(daemon_state):
    cut_off = daemon_state.model_copy(
        update={
            "critic_store": CriticStoreSpec(
                settings={"tracking_uri": f"http://127.0.0.1:{free_port()}"}
            )
        }
    )
    url, server = serve(cut_off)
    try:
        ready = httpx.get(f"{url}/readyz", timeout=30)
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False and body["database"] == "ok"
        assert "ConnectError" in body["mlflow"]
    finally:
        server.should_exit = True


def test_json_endpoints_match_the_daemon_state(api, daemon_state):
    status = collect_status(daemon_state)
    releases = api.get("/api/releases").json()
    assert [r["id"] for r in releases] == [r["id"] for r in status["releases"]]
    assert {r["state"] for r in releases} == {"done"}

    versions = api.get("/api/critic-versions").json()
    assert [v["store_version"] for v in versions] == ["1", "2", "3"]  # v1: the starting critic
    assert versions[0]["release_id"] is None and versions[0]["status"] == "retired"
    assert versions[2]["status"] == "champion" and versions[2]["parent_version"] == "2"
    assert versions[2]["gate"]["passed"] is True
    assert set(versions[2]["accuracy"]) == {
        "challenger_new",
        "baseline_new",
        "challenger_earlier",
        "baseline_earlier",
    }
    evaluations = api.get("/api/evaluations", params={"critic_version_id": versions[2]["id"]})
    assert len(evaluations.json()) == 4

    kinds = [c["kind"] for c in api.get("/api/drift-checks").json()]
    assert sorted(kinds) == ["critic", "critic", "generator", "watch"]
    (watch,) = api.get("/api/drift-checks", params={"kind": "watch"}).json()
    scores = api.get(f"/api/drift-checks/{watch['id']}/scores").json()
    assert len(scores["reference"]["quality"]) == 3 and len(scores["current"]["quality"]) == 3
    report = api.get(f"/reports/{watch['id']}")
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert api.get("/reports/9999").status_code == 404

    board = api.get("/api/leaderboard").json()
    assert [row["rank"] for row in board] == [1, 2]
    assert {row["release"] for row in board} == {r["id"] for r in releases}
    assert board[0]["quality"] >= board[1]["quality"]
    assert {row["critic_version"] for row in board} == {"3"}
    for row in board:
        assert row["quality_low"] <= row["quality"] <= row["quality_high"]
    a, b = board[1]["release"], board[0]["release"]
    comparison = api.get("/api/compare", params={"a": a, "b": b}).json()
    quality = comparison["quality"]
    assert quality["difference"] == pytest.approx(board[0]["quality"] - board[1]["quality"])
    assert quality["low"] <= quality["difference"] <= quality["high"]
    assert (quality["n_a"], quality["n_b"], quality["paired_prompts"]) == (3, 3, 0)
    assert comparison["text"].startswith(f"release {b} vs release {a}: quality +")
    missing = api.get("/api/compare", params={"a": a, "b": "nobody/none"})
    assert missing.status_code == 404 and "has not scored nobody/none" in missing.json()["detail"]
    history = api.get("/api/leaderboard/history").json()
    assert [(row["critic_version"], row["generator"]) for row in history] == [
        ("2", "painter-v1"),  # v1, the critic it started from, was retired before any scoring
        ("3", "painter-v1"),
        ("3", "painter-v2"),
    ]

    schema = api.get("/openapi.json").json()
    assert {"/healthz", "/readyz", "/api/releases", "/api/leaderboard", "/metrics"} <= set(
        schema["paths"]
    )


def test_prometheus_metrics(api):
    response = api.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}

    def value(family, **labels):
        (sample,) = [
            s
            for s in families[family].samples
            if all(s.labels.get(k) == v for k, v in labels.items())
            and not s.name.endswith("_created")
        ]
        return sample.value

    assert value("eliq_releases_discovered") == 2
    assert value("eliq_releases_processed") == 2
    assert value("eliq_releases_failed") == 0
    assert value("eliq_releases", state="done") == 2
    retune = [
        s for s in families["eliq_step_duration_seconds"].samples if s.labels["step"] == "retune"
    ]
    counts = {s.name: s.value for s in retune}
    assert counts["eliq_step_duration_seconds_count"] == 2
    assert counts["eliq_step_duration_seconds_sum"] > 0
    assert value("eliq_champion_version") == 3  # v1: the critic it started from
    assert {s.labels["version"] for s in families["eliq_training_final_loss"].samples} == {
        "2",
        "3",
    }
    means = families["eliq_generator_mean_score"].samples
    assert len(means) == 4  # two releases, two axes
    assert {s.labels["axis"] for s in means} == {"quality", "alignment"}
    checks = [s for s in families["eliq_drift_checks"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in checks) == 4
    kinds = {s.labels["kind"] for s in families["eliq_drift_detected"].samples}
    assert kinds == {"critic", "generator", "watch"}
    sent = families["eliq_alerts_sent"].samples
    assert sent and all(s.labels["channel"].startswith("log") for s in sent)
    assert sum(s.value for s in sent if s.labels["outcome"] == "delivered") >= 2
    polls = families["eliq_registry_last_poll_timestamp_seconds"].samples
    assert [s.labels["registry"] for s in polls] == ["team"] and polls[0].value > 0
    assert value("eliq_registry_poll_interval_seconds", registry="team") == 3600.0
    assert value("eliq_critic_versions", status="champion") == 1
    assert value("eliq_critic_versions", status="held") == 0
    # the champion (v3) scored both releases' three samples in the watch, timed
    assert value("eliq_scoring_images") >= 6 and value("eliq_scoring_seconds") > 0


@pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus (make monitoring)")
def test_prometheus_scrapes_the_daemon_and_evaluates_its_alerts(api, tmp_path):
    """Debian's Prometheus on the project's own config and rules, pointed at the running
    API: every series the daemon exports arrives, and every alerting rule evaluates."""
    config = yaml.safe_load((PROMETHEUS_FILES / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_FILES / "alerts.yml")]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"{api.base_url.host}:{api.base_url.port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    exported = {
        sample.name
        for family in text_string_to_metric_families(api.get("/metrics").text)
        for sample in family.samples
    }
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as prometheus:
            names, rules = _wait_for_scrape_and_rules(prometheus, process, exported)
            # a healthy daemon, scraped, nothing parked, its registry just polled: these
            # rules' expressions, as Prometheus loaded them, select nothing now (an alert
            # may still be pending from an evaluation before the first scrape)
            healthy = {"EliqDaemonDown", "EliqReleaseParked", "EliqRegistryNotPolled"}
            selected = {
                rule["name"]: prometheus.get(
                    "/api/v1/query", params={"query": rule["query"]}
                ).json()["data"]["result"]
                for rule in rules
                if rule["name"] in healthy
            }
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert exported <= names, exported - names
    assert {"eliq_releases_processed_total", "eliq_scoring_images_total"} <= names
    assert {rule["name"] for rule in rules} == ALERTS
    assert all(rule["health"] == "ok" for rule in rules), rules
    assert selected == dict.fromkeys(healthy, []), selected


def _wait_for_scrape_and_rules(prometheus, process, exported, wait_s=120.0):
    """Metric names Prometheus holds once it has scraped every exported series and
    evaluated every rule at least once; and the rules."""
    deadline = time.monotonic() + wait_s
    while True:
        assert process.poll() is None, "prometheus exited (see prometheus.log)"
        names, groups = set(), []
        try:
            if prometheus.get("/-/ready").status_code == 200:  # before: 503, in plain text
                names = set(prometheus.get("/api/v1/label/__name__/values").json()["data"])
                groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
        except httpx.TransportError:
            pass  # not listening yet
        rules = [rule for group in groups for rule in group["rules"]]
        if exported <= names and rules and all(r["health"] != "unknown" for r in rules):
            return names, rules
        assert time.monotonic() < deadline, f"no complete scrape in {wait_s:.0f} s"
        time.sleep(0.5)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make browser)")
def test_the_page_in_headless_chromium(api, daemon_state, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("ELIQ_TEST_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    release = collect_status(daemon_state, aliases=False)["releases"][1]["id"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{api.base_url}/", wait_until="networkidle")
        page.wait_for_selector("#rank-quality .main-svg", timeout=120_000)
        assert release in page.locator("#leaderboard").inner_text()
        charts = page.locator(".js-plotly-plot")
        assert charts.count() >= 9  # 6 leaderboard, gates, distributions per kind
        assert page.locator("#history-quality .scatterlayer .trace").count() == 2
        bars = page.locator("#rank-quality .bars .point")
        assert bars.count() == 2  # one bar per release
        board = api.get("/api/leaderboard").json()
        widths = {
            row["release"]: box["width"]
            for row, box in zip(
                sorted(board, key=lambda r: r["quality"]),  # plotted bottom up, best on top
                [bars.nth(i).bounding_box() for i in range(2)],
                strict=True,
            )
        }
        best = max(board, key=lambda r: r["quality"])["release"]
        assert widths[best] == max(widths.values()), widths  # longer is better
        page.hover("#rank-quality .nsewdrag")  # the toolbar shows on hover, right of the title
        title = page.locator("#rank-quality .gtitle").bounding_box()
        toolbar = page.locator("#rank-quality .modebar").bounding_box()
        assert (
            title["x"] + title["width"] <= toolbar["x"]
            or title["y"] >= toolbar["y"] + toolbar["height"]
        ), (title, toolbar)
        effects = page.locator("#effects")  # every check of this small state: inconclusive
        assert "each was inconclusive (a decision needs 20 images)" in effects.inner_text()
        ticks = page.locator("#time-quality .xtick text").all_text_contents()
        assert ticks and all(not tick.startswith("20") for tick in ticks), ticks  # dates, read
        assert "v2" in page.locator("#versions").inner_text()
        page.click("#compare button")
        # the page's policy allows no eval, so no wait_for_function: a locator assertion
        expect(page.locator("#comparison")).to_contain_text(" vs release ", timeout=120_000)
        assert not errors, errors
        page.screenshot(path=str(shots / "status-page.png"), full_page=True)
        browser.close()
    png = (shots / "status-page.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_evidently_ui_serves_the_drift_history(daemon_state, tmp_path):
    """``evidently ui`` on the daemon's workspace: the project, a snapshot per drift check,
    and the dashboard's series."""
    port = free_port()
    evidently = Path(sys.executable).parent / "evidently"
    log = (tmp_path / "evidently.log").open("w")
    server = subprocess.Popen(
        [
            str(evidently),
            "ui",
            "--workspace",
            str(daemon_state.data_dir / "evidently"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "evidently.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "evidently ui did not come up"
            try:
                projects = client.get("/api/projects")
                if projects.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        (project,) = [p for p in projects.json() if p["name"] == "eliq"]
        snapshots = client.get(f"/api/projects/{project['id']}/snapshots").json()
        assert len(snapshots) == 4  # critic x2, generator, watch
        series = client.post(
            f"/api/v2/snapshots/{project['id']}/data_series_batch",
            json={
                "series_filter": [
                    {
                        "tags": ["critic"],
                        "metadata": {},
                        "metric": "evidently:metric_v2:ValueDrift",
                        "metric_labels": {"column": "quality"},
                    }
                ]
            },
        )
        assert series.status_code in (200, 201), series.text
        (line,) = series.json()["series"]
        assert len(line["values"]) == 2 and all(0 <= v <= 1 for v in line["values"])
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_a_fresh_daemon_is_ready_before_its_first_registration(tmp_path):
    """The embedded MLflow store is created by the first registration: its absence before
    then is not a failure, a missing data folder is."""
    from fastapi.testclient import TestClient

    from daemon.state.database import make_engine, migrate
    from daemon.state.store import Store

    settings = fast_settings(tmp_path, tmp_path / "registry")
    engine = make_engine(settings.state_url)
    migrate(engine)
    with TestClient(build_app(settings, Store(engine))) as api:
        assert api.get("/readyz").json() == {"ready": True, "database": "ok", "mlflow": "ok"}
        assert api.get("/api/leaderboard").json() == []
        assert "No champion has scored a release yet" in api.get("/").text
    elsewhere = settings.model_copy(
        update={
            "critic_store": CriticStoreSpec(
                settings={"tracking_uri": f"sqlite:///{tmp_path / 'missing' / 'mlflow.db'}"}
            )
        }
    )
    with TestClient(build_app(elsewhere, Store(engine))) as api:
        ready = api.get("/readyz")
        assert ready.status_code == 503 and "no folder" in ready.json()["mlflow"]


PLANTED = "</script><script>window.planted = 1; alert(2)</script><img src=x onerror=alert(3)>"


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make browser)")
def test_markup_in_the_state_runs_nothing_on_the_page(tmp_path):
    """A release id and a gate's words holding a script (a local registry's split column
    plants such an id) are shown as text: nothing of them runs, and the page says so in its
    Content-Security-Policy too."""
    from playwright.sync_api import sync_playwright

    from daemon.composition import open_state
    from daemon.state.tables import CriticVersion, ReleaseRecord, utcnow

    settings = fast_settings(tmp_path, tmp_path / "registry")
    store = open_state(settings)
    store.add(
        ReleaseRecord(
            id=PLANTED,
            registry_name="team",
            source="local",
            name=PLANTED,
            sequence=1,
            appeared_at=utcnow(),
            loader={"kind": "outputs", "ref": "."},
            last_error=PLANTED,
        )
    )
    store.add(
        CriticVersion(
            release_id=PLANTED,
            checkpoint=str(tmp_path),
            store_version="1",
            status="held",
            gate={"passed": False, "why": f"held: {PLANTED}", "reasons": [PLANTED]},
        )
    )
    url, server = serve(settings)
    try:
        answer = httpx.get(f"{url}/", timeout=30)
        assert answer.status_code == 200
        policy = answer.headers["content-security-policy"]
        assert (
            "script-src 'self' 'nonce-" in policy
            and "unsafe-inline" not in policy.split("style-src")[0]
        )
        assert PLANTED not in answer.text  # escaped everywhere it is shown
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            dialogs, errors = [], []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{url}/", wait_until="networkidle")
            assert page.evaluate("window.planted") is None
            assert dialogs == []
            assert PLANTED in page.locator("#releases").inner_text()  # shown, as text
            data = page.evaluate("JSON.parse(document.getElementById('data').textContent)")
            assert data["versions"][0]["release_id"] == PLANTED  # the data arrives intact
            assert data["versions"][0]["gate"]["why"] == f"held: {PLANTED}"
            assert not errors, errors  # the page's own script still runs under the policy
            browser.close()
    finally:
        server.should_exit = True
