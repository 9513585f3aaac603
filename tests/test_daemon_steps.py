"""The release cycle's steps as the database knows them: a fixed vocabulary, a parked
release that resumes where it failed, and the migration from method names in metadata."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from daemon.composition import build_cycle
from daemon.cycle.context import ReleaseContext, StepResult
from daemon.state.database import MIGRATIONS, make_engine, migrate
from daemon.state.tables import NEXT_STEP, PIPELINE, JobRun, ReleaseRecord, ReleaseState, Step
from tests.daemon_helpers import fast_settings
from tests.postgres import fresh_database


def test_the_stored_step_names_stay_what_they_are():
    """These strings are in operators' databases: changing one needs a migration."""
    assert [step.value for step in Step] == [
        "sample",
        "build_pairs",
        "retune",
        "register",
        "evaluate",
        "check_drift",
        "decide",
        "announce",
    ]
    assert list(NEXT_STEP) == PIPELINE[:-1] and list(NEXT_STEP.values()) == list(Step)


def release_row(release_id: str, state: ReleaseState, **fields) -> ReleaseRecord:
    return ReleaseRecord(
        id=release_id,
        registry_name="team",
        source="local",
        name="gen",
        appeared_at=datetime(2026, 12, 1, tzinfo=UTC),
        sequence=1,
        loader={"kind": "local"},
        state=state,
        **fields,
    )


def unreachable_store(_: ReleaseContext) -> None:
    """An evaluate step whose tracking server went away."""
    raise ConnectionError("the tracking server went away")


def test_a_parked_release_resumes_at_the_step_that_failed(tmp_path):
    cycle = build_cycle(fast_settings(tmp_path, tmp_path / "registry", max_attempts=1))
    release = cycle.ports.store.add(release_row("team:gen@1", ReleaseState.registered))
    cycle.pipeline.steps[Step.evaluate] = unreachable_store
    assert not cycle.pipeline.advance(release)
    parked = cycle.ports.store.release(release.id)
    assert parked.state == ReleaseState.parked and parked.parked_step == Step.evaluate
    assert "evaluate: ConnectionError" in parked.last_error
    (run,) = cycle.ports.store.rows(JobRun)
    assert run.job == "evaluate:team:gen@1" and run.ok is False

    cycle.pipeline.retry(release.id)
    back = cycle.ports.store.release(release.id)
    assert back.state == ReleaseState.registered and back.attempts == 0
    assert back.parked_step is None
    with pytest.raises(ValueError, match="not parked"):
        cycle.pipeline.retry(release.id)


def test_each_parking_of_a_release_is_announced(tmp_path):
    """Parked, retried, parked again, three times: three alerts, one per parking."""
    import json

    cycle = build_cycle(fast_settings(tmp_path, tmp_path / "registry", max_attempts=1))
    release = cycle.ports.store.add(release_row("team:gen@1", ReleaseState.registered))
    cycle.pipeline.steps[Step.evaluate] = unreachable_store
    for parking in range(3):
        if parking:
            cycle.pipeline.retry(release.id)
        assert not cycle.pipeline.advance(cycle.ports.store.release(release.id))
    alerts = [json.loads(line) for line in (tmp_path / "data" / "alerts.jsonl").open()]
    parked = [a for a in alerts if a["title"] == "Release team:gen@1 parked"]
    assert len(parked) == 3 and len({a["dedup_key"] for a in parked}) == 3


@pytest.mark.parametrize("attempts", [1, 42, 60, 10_000])
def test_many_attempts_wait_at_most_a_day_and_still_park(tmp_path, attempts):
    """``max_attempts`` past 41 at the default backoff overflowed a timedelta: the
    attempt was never saved and the release never parked."""
    from datetime import timedelta

    from daemon.cycle.pipeline import backoff

    assert backoff(60, attempts) <= timedelta(days=1)
    assert backoff(60, 1) == timedelta(seconds=60) and backoff(86400, 10_000) == timedelta(days=1)
    settings = fast_settings(
        tmp_path, tmp_path / "registry", max_attempts=attempts + 1, retry_backoff_s=60.0
    )
    cycle = build_cycle(settings)
    release = cycle.ports.store.add(
        release_row("team:gen@1", ReleaseState.registered, attempts=attempts - 1)
    )
    cycle.pipeline.steps[Step.evaluate] = unreachable_store
    assert not cycle.pipeline.advance(release)
    waiting = cycle.ports.store.release(release.id)
    assert waiting.attempts == attempts and waiting.next_attempt_at is not None
    assert not cycle.pipeline.advance(waiting)
    assert cycle.ports.store.release(release.id).state == ReleaseState.parked


def test_a_release_parked_where_no_step_is_known_starts_over(tmp_path):
    cycle = build_cycle(fast_settings(tmp_path, tmp_path / "registry"))
    cycle.ports.store.add(release_row("team:gen@1", ReleaseState.parked))
    cycle.pipeline.retry("team:gen@1")
    assert cycle.ports.store.release("team:gen@1").state == ReleaseState.discovered


@contextmanager
def database(kind: str, tmp_path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
    else:
        with fresh_database() as url:
            yield url


def alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


RELEASES_0005 = sa.table(
    "releases",
    *map(sa.column, ("id", "registry_name", "source", "name", "sequence", "state", "attempts")),
    *(sa.column(name, sa.DateTime(timezone=True)) for name in ("appeared_at", "discovered_at")),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("loader", sa.JSON()),
    sa.column("meta", sa.JSON()),
)
RELEASES = sa.table(
    "releases", sa.column("id"), sa.column("parked_step"), sa.column("meta", sa.JSON())
)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_moves_parked_steps_out_of_the_metadata_and_back(kind, tmp_path):
    now = datetime(2026, 12, 1, tzinfo=UTC)
    old = [
        ("parked", {"parked_at_step": "retune", "kept": 1}),
        ("parked", {"parked_at_step": "a_method_since_renamed"}),
        ("paired", {}),
    ]
    with database(kind, tmp_path) as url:
        engine = make_engine(url)
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0005")
            connection.execute(
                sa.insert(RELEASES_0005),
                [
                    {
                        "id": f"r{index}",
                        "registry_name": "team",
                        "source": "local",
                        "name": "gen",
                        "sequence": index,
                        "state": state,
                        "attempts": 3,
                        "appeared_at": now,
                        "discovered_at": now,
                        "updated_at": now,
                        "loader": {},
                        "meta": meta,
                    }
                    for index, (state, meta) in enumerate(old)
                ],
            )
        migrate(engine)
        with engine.connect() as connection:
            rows = {r.id: (r.parked_step, r.meta) for r in connection.execute(sa.select(RELEASES))}
            assert not compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        assert rows == {"r0": ("retune", {"kept": 1}), "r1": (None, {}), "r2": (None, {})}

        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0005")
            restored = connection.execute(
                sa.select(RELEASES.c.meta).where(RELEASES.c.id == "r0")
            ).scalar_one()
        assert restored == {"kept": 1, "parked_at_step": "retune"}
        engine.dispose()


def test_the_pipeline_commits_a_steps_rows_with_the_next_state_and_stops_between_steps(tmp_path):
    """A step returns rows to store and to remove and never writes the state: the pipeline
    commits both with the next state in one transaction, and a stop asked during a step
    ends processing once it is committed."""
    cycle = build_cycle(fast_settings(tmp_path, tmp_path / "registry"))
    release = cycle.ports.store.add(release_row("team:gen@1", ReleaseState.registered))
    stale = cycle.ports.store.add(JobRun(job="an earlier run's row, replaced", ok=True))

    def evaluate(seen: ReleaseContext) -> StepResult:
        assert seen.release.state == ReleaseState.registered
        assert cycle.ports.store.rows(JobRun, job=stale.job)  # nothing removed before commit
        cycle.ports.stop.set()  # SIGTERM arrives while the step runs
        return StepResult(save=[JobRun(job="evaluated by the test", ok=True)], delete=[stale])

    cycle.pipeline.steps[Step.evaluate] = evaluate
    assert cycle.pipeline.process() == 1  # the step finished; the next one never started
    after = cycle.ports.store.release(release.id)
    assert after.state == PIPELINE[PIPELINE.index(ReleaseState.registered) + 1]
    jobs = {run.job: (run.ok, run.executor) for run in cycle.ports.store.rows(JobRun)}
    assert jobs == {"evaluated by the test": (True, None), "evaluate:team:gen@1": (True, "local")}


def test_a_failing_step_leaves_the_rows_it_would_have_replaced(tmp_path):
    cycle = build_cycle(fast_settings(tmp_path, tmp_path / "registry"))
    release = cycle.ports.store.add(release_row("team:gen@1", ReleaseState.registered))
    kept = cycle.ports.store.add(JobRun(job="an earlier run's row", ok=True))

    def evaluate(_: ReleaseContext) -> StepResult:
        StepResult(save=[JobRun(job="never stored")], delete=[kept])
        raise ConnectionError("the tracking server went away")

    cycle.pipeline.steps[Step.evaluate] = evaluate
    assert not cycle.pipeline.advance(release)
    assert {run.job for run in cycle.ports.store.rows(JobRun)} == {
        "an earlier run's row",
        "evaluate:team:gen@1",
    }


def test_status_prints_a_release_error_as_it_is_not_as_markup(tmp_path):
    """A release error holding ``[/oops]`` crashed ``eliq-daemon status`` (Rich markup)."""
    from typer.testing import CliRunner

    from daemon.cli import app
    from daemon.composition import open_state
    from tests.daemon_helpers import write_config

    settings = fast_settings(tmp_path, tmp_path / "registry")
    open_state(settings).add(
        release_row("team:[bold]gen@1", ReleaseState.parked, last_error="sample: [/oops] failed")
    )
    shown = CliRunner().invoke(
        app, ["status", "--config", str(write_config(settings, tmp_path))], env={"COLUMNS": "300"}
    )
    assert shown.exit_code == 0, shown.output
    assert "[/oops]" in shown.output and "team:[bold]gen@1" in shown.output
