"""The status API: a read-only HTTP view of the daemon, served inside ``eliq-daemon run``.

``/healthz`` (the process answers), ``/readyz`` (database and MLflow reachable), JSON for
releases, critic versions, evaluations, drift checks and the leaderboard, ``/metrics`` for
Prometheus, the Evidently reports, and ``/``: a page for people with the generators ranked
by the champion critic, each critic version's gate and the latest drift, as charts.
Everything is read from the database per request (see :mod:`daemon.serve.readmodel`).
"""

from __future__ import annotations

import secrets
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import plotly
from annotated_types import Interval
from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from swagger_ui_bundle import swagger_ui_path

from adapters.critic_stores import CriticStore
from daemon.policy.drift import read_scores
from daemon.serve import readmodel
from daemon.serve.prometheus import registry_for
from daemon.settings import DaemonSettings
from daemon.state.store import Store
from daemon.state.tables import DriftCheck, EvaluationRecord, ReleaseRecord
from eliq.compare import AXES
from eliq.redaction import redact_url

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
# the page's data goes through Jinja's ``tojson``, which escapes <, >, & and ' so that data
# (a release id, a gate's words) can never close the <script> block it sits in
TEMPLATES.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# a row id as the database stores it (a 32-bit integer): anything else is a 422, not a 500
RowId = Annotated[int, Interval(ge=1, le=2**31 - 1)]
DriftKind = Literal["critic", "generator", "watch"]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such drift check."}}


class LeaderboardRow(BaseModel):
    rank: int
    generator: str
    release: str
    appeared_at: datetime | None
    discovered_at: datetime
    images: int
    quality: float
    quality_std: float
    alignment: float | None
    alignment_std: float | None
    quality_low: float | None
    quality_high: float | None
    alignment_low: float | None
    alignment_high: float | None
    critic_version: str | None


class AxisDifference(BaseModel):
    difference: float
    low: float
    high: float
    confidence: float
    n_a: int
    n_b: int
    paired_prompts: int


class ReleaseComparison(BaseModel):
    a: str
    b: str
    critic_version: str | None
    text: str
    quality: AxisDifference | None
    alignment: AxisDifference | None


class HistoryRow(BaseModel):
    critic_version: str | None
    decided_at: datetime | None
    generator: str
    release: str
    quality: float
    alignment: float | None


class CriticVersionView(BaseModel):
    id: int
    release_id: str | None
    store_version: str | None
    parent_version: str | None
    status: str
    gate: dict[str, Any]
    training: dict[str, Any]
    accuracy: dict[str, float | None]
    created_at: datetime
    decided_at: datetime | None


class Readiness(BaseModel):
    ready: bool
    database: str
    mlflow: str


def create_app(settings: DaemonSettings, store: Store, critics: CriticStore) -> FastAPI:
    """The API over the daemon's state (migrated by the daemon) and its critic store
    (:mod:`daemon.composition` builds both)."""
    metrics = registry_for(store, {r.name: r.interval_s for r in settings.registry_specs()})
    app = FastAPI(
        title="eliq-daemon",
        summary="Status of eliq's continual-learning critic daemon (read-only).",
        version="1",
        docs_url=None,  # FastAPI's own pages load Swagger UI and ReDoc from a CDN
        redoc_url=None,
    )
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI from the installed ``swagger-ui-bundle`` package: works offline."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="eliq-daemon API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A part is not ready."}},
    )
    def readyz() -> JSONResponse:
        database = _check(lambda: _ping_database(store))
        mlflow = _check(critics.ping)
        if mlflow == "ok" and database == "ok":
            mlflow = _check(lambda: _agrees(critics, store))
        ready = database == "ok" and mlflow == "ok"
        body = Readiness(ready=ready, database=database, mlflow=mlflow)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get("/api/releases", tags=["state"], response_model=list[ReleaseRecord])
    def releases() -> list[ReleaseRecord]:
        return store.releases()

    @app.get("/api/critic-versions", tags=["state"], response_model=list[CriticVersionView])
    def critic_versions() -> list[dict[str, Any]]:
        return readmodel.critic_versions(store)

    @app.get("/api/evaluations", tags=["state"], response_model=list[EvaluationRecord])
    def evaluations(critic_version_id: RowId | None = None) -> list[EvaluationRecord]:
        where = {} if critic_version_id is None else {"critic_version_id": critic_version_id}
        return store.rows(EvaluationRecord, **where)

    @app.get("/api/drift-checks", tags=["state"], response_model=list[DriftCheck])
    def drift_checks(kind: DriftKind | None = None) -> list[DriftCheck]:
        return readmodel.drift_checks(store, kind)

    @app.get("/api/drift-checks/{check_id}/scores", tags=["state"], responses=NOT_FOUND)
    def drift_scores(check_id: RowId) -> dict[str, dict[str, list[float | None]]]:
        """The scores a drift check compared, per side (reference, current) and axis."""
        try:
            frame = read_scores(_check_row(store, check_id).report_json)
        except FileNotFoundError as missing:  # a check from before scores were kept
            raise HTTPException(404, f"drift check {check_id} kept no scores") from missing
        return {
            side: {
                axis: [None if v != v else v for v in part[axis].tolist()]
                for axis in AXES
                if axis in part.columns
            }
            for side, part in frame.groupby("side")
        }

    @app.get("/api/leaderboard", tags=["state"], response_model=list[LeaderboardRow])
    def leaderboard() -> list[dict[str, Any]]:
        return readmodel.leaderboard(store)

    @app.get(
        "/api/compare",
        tags=["state"],
        response_model=ReleaseComparison,
        responses={404: {"description": "The champion has not scored one of them."}},
    )
    def compare(a: str, b: str) -> dict[str, Any]:
        """Release ``b`` vs release ``a`` under the champion: per axis, B minus A with its
        confidence interval (paired by prompt where the releases share prompts)."""
        try:
            return readmodel.compare_releases(store, a, b)
        except KeyError as missing:
            raise HTTPException(404, str(missing.args[0])) from None

    @app.get("/api/leaderboard/history", tags=["state"], response_model=list[HistoryRow])
    def leaderboard_history() -> list[dict[str, Any]]:
        """Each release's means under each champion that scored it, oldest version first."""
        return readmodel.leaderboard_history(store)

    @app.get(
        "/reports/{check_id}", tags=["reports"], response_class=FileResponse, responses=NOT_FOUND
    )
    def report(check_id: RowId) -> FileResponse:
        """A drift check's Evidently report (HTML)."""
        return FileResponse(_check_row(store, check_id).report_html, media_type="text/html")

    @app.get("/metrics", tags=["health"], response_class=Response)
    def prometheus() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request) -> HTMLResponse:
        checks = [c.model_dump(mode="json") for c in readmodel.drift_checks(store)]
        latest = {c["kind"]: c for c in checks}  # the last of each kind
        distributions = {}
        for kind, check in latest.items():
            with suppress(HTTPException):
                distributions[kind] = drift_scores(check["id"])
        data = {
            "leaderboard": readmodel.leaderboard(store),
            "history": readmodel.leaderboard_history(store),
            "versions": readmodel.critic_versions(store),
            "checks": checks,
            "latest": distributions,
            "min_images": settings.drift.min_images,
        }
        nonce = secrets.token_urlsafe(16)
        context = {
            "data": data,
            "nonce": nonce,
            "releases": store.releases(),
            "versions": data["versions"],
            "leaderboard": data["leaderboard"],
            "latest": latest,
            "tracking_uri": redact_url(settings.tracking_uri),
            "database": redact_url(settings.state_url),
            "model_name": settings.model_name,
        }
        page = TEMPLATES.TemplateResponse(request, "status.html", context)
        page.headers["Content-Security-Policy"] = page_policy(nonce)
        return page

    return app


def page_policy(nonce: str) -> str:
    """The page's Content-Security-Policy: scripts only from this server or the page's own
    block (by ``nonce``), so markup that slips into the page still runs nothing."""
    return (
        f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _check_row(store: Store, check_id: int) -> DriftCheck:
    rows = store.rows(DriftCheck, id=check_id)
    if not rows or not rows[0].report_json:
        raise HTTPException(404, f"no drift check {check_id}")
    return rows[0]


def _agrees(critics: CriticStore, store: Store) -> None:
    """Raise when MLflow lacks what the state says it registered."""
    problems = critics.problems(store.critic_versions())
    if problems:
        raise LookupError("; ".join(problems))


def _check(probe) -> str:
    try:
        probe()
        return "ok"
    except Exception as error:  # noqa: BLE001 - the readiness answer names any failure
        return redact_url(f"{type(error).__name__}: {error}")[:500]


def _ping_database(store: Store) -> None:
    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
