"""The status API from its own OpenAPI schema (schemathesis, a fixed budget of examples,
derandomized): against the real app on a real daemon state in SQLite, and on PostgreSQL,
where strings with NUL and ids beyond 32 bits used to be 500s. Every answer must be
documented, and no request may make the server fail."""

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from daemon.composition import build_app
from daemon.service import Service
from daemon.state.database import make_engine, migrate
from daemon.state.store import Store
from tests.daemon_helpers import fast_settings, write_release
from tests.postgres import fresh_database

pytestmark = pytest.mark.slow
EXAMPLES = settings(
    max_examples=25,
    derandomize=True,  # the same examples on every run and machine
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# a generated request the API rightly refuses is no failure; /readyz's documented 503 is the
# answer while a part is down (there is no MLflow store in the PostgreSQL app), not a crash
NOT_CHECKED = [schemathesis.checks.positive_data_acceptance]
READINESS_NOT_CHECKED = [*NOT_CHECKED, schemathesis.checks.not_a_server_error]


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory):
    """One release through the whole cycle: rows and reports to read."""
    root = tmp_path_factory.mktemp("schema")
    registry = root / "registry"
    write_release(registry, "painter-v1", ["astronaut.png", "chelsea.png", "coffee.png"])
    daemon = fast_settings(root, registry)
    assert Service(daemon).once() == 0
    return build_app(daemon)


@pytest.fixture(scope="module")
def postgres_app(tmp_path_factory):
    with fresh_database() as url:
        daemon = fast_settings(tmp_path_factory.mktemp("pg"), None, database_url=url)
        engine = make_engine(url)
        migrate(engine)
        yield build_app(daemon, Store(engine))
        engine.dispose()


def exercise(app) -> int:
    """Every operation of ``app``'s schema with ``EXAMPLES`` generated requests; returns how
    many operations ran. (schemathesis' pytest plugin does not run on pytest 9.2, so its
    strategies are driven by hypothesis directly.)"""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:
        excluded = READINESS_NOT_CHECKED if operation.path == "/readyz" else NOT_CHECKED
        checker(operation, excluded)()
    return len(operations)


def checker(operation, excluded):
    @given(case=operation.as_strategy())
    @EXAMPLES
    def check(case):
        case.call_and_validate(excluded_checks=excluded)

    return check


def test_every_endpoint_on_a_real_state(sqlite_app):
    assert exercise(sqlite_app) >= 10


def test_every_endpoint_on_postgresql(postgres_app):
    assert exercise(postgres_app) >= 10


def test_out_of_range_ids_and_odd_strings_are_4xx_on_postgresql(postgres_app):
    client = TestClient(postgres_app, raise_server_exceptions=False)
    for path in [
        "/reports/99999999999999999999999",
        "/api/drift-checks/99999999999999999999999/scores",
        "/api/evaluations?critic_version_id=99999999999999999999999",
        "/api/drift-checks?kind=%00",
        "/api/drift-checks?kind=critic%00",
    ]:
        assert client.get(path).status_code == 422, path
    assert client.get("/reports/7").status_code == 404
    assert client.get("/api/drift-checks?kind=watch").json() == []


def test_docs_are_served_without_a_cdn(sqlite_app):
    client = TestClient(sqlite_app)
    page = client.get("/docs").text
    assert "cdn." not in page and "unpkg" not in page and "jsdelivr" not in page
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/swagger/swagger-ui.css"):
        assert asset in page and client.get(asset).status_code == 200
    assert client.get("/redoc").status_code == 404
