"""The pipeline: each release through its steps, one state at a time.

A step is a function ``(ReleaseContext) -> StepResult`` (:mod:`daemon.cycle.steps`): it
does its work (idempotently, in the release's own folder) and returns the rows that record
its result, to store and to remove; it never writes the state itself. The pipeline runs the
step that follows the release's state, then commits the step's rows and the next state in
one transaction, so a process killed at any point redoes at most the step it was in. A step
that raises is retried with exponential backoff; after ``max_attempts`` the release is
parked at that step with its error and an alert, until :meth:`Pipeline.retry`. Releases
advance strictly in discovery order, because each retune starts from the champion the
previous one left. Each run of a step is recorded with where it ran: the executor when the
step used it, else the daemon's own process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from adapters.alerts.base import Alert
from adapters.executors.local import LocalExecutor
from daemon.cycle.context import ReleaseContext, StepResult, Stopping
from daemon.ports import Ports
from daemon.state.tables import (
    NEXT_STEP,
    PIPELINE,
    JobRun,
    ReleaseRecord,
    ReleaseState,
    Step,
    utcnow,
)
from eliq.redaction import redact_url

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(days=1)  # the longest a failed step waits for its next try
StepFunction = Callable[[ReleaseContext], StepResult]


class Pipeline:
    def __init__(self, ports: Ports, steps: Mapping[Step, StepFunction]) -> None:
        self.ports = ports
        self.steps = dict(steps)
        self._context: ReleaseContext | None = None  # the release in flight, between steps
        self.store, self.alerter, self.stop = ports.store, ports.alerter, ports.stop
        self.max_attempts = ports.settings.max_attempts
        self.retry_backoff_s = ports.settings.retry_backoff_s

    def pending(self) -> list[ReleaseRecord]:
        waiting = [s for s in PIPELINE if s is not ReleaseState.done]
        return self.store.releases(waiting)

    def process(self) -> int:
        """Advance pending releases in order until none is due or the daemon is stopping.
        Returns how many steps completed."""
        completed = 0
        while not self.stop.is_set():
            pending = self.pending()
            if not pending:
                break
            release = pending[0]  # strictly in order: each retune starts from the last
            if release.next_attempt_at is not None and _aware(release.next_attempt_at) > utcnow():
                break
            if self.advance(release):
                completed += 1
        return completed

    def advance(self, release: ReleaseRecord) -> bool:
        """Run the step that follows ``release``'s state and commit it; True when it did."""
        step = NEXT_STEP[ReleaseState(release.state)]
        run = self.store.add(JobRun(job=f"{step}:{release.id}"))
        context = self._context_for(release)
        log.info("%s: %s", release.id, step)
        try:
            result = self.steps[step](context)
        except Stopping:
            self._finish(run, context, ok=False, detail="stopped")
            return False
        except Exception as error:  # noqa: BLE001 - any failure is recorded and retried
            log.exception("%s: %s failed", release.id, step)
            self._context = None  # a retry loads afresh what the steps share
            self._failed(release, step, error)
            self._finish(run, context, ok=False, detail=redact_url(f"{error}")[:2000])
            return False
        self._commit(release, result)
        self._finish(run, context, ok=True)
        return True

    def _context_for(self, release: ReleaseRecord) -> ReleaseContext:
        """The release's context, kept from its previous step while it advances, so the
        critics its steps share are loaded once."""
        if self._context is None or self._context.release.id != release.id:
            self._context = ReleaseContext(release, self.ports)
        self._context.release = release
        self._context.used_executor = False
        return self._context

    def _finish(self, run: JobRun, context: ReleaseContext, ok: bool, detail: str = "") -> None:
        where = self.ports.executor if context.used_executor else LocalExecutor
        run.executor, run.workers = where.name, where.workers
        run.finished_at, run.ok, run.detail = utcnow(), ok, detail or None
        self.store.save(run)

    def _commit(self, release: ReleaseRecord, result: StepResult) -> None:
        """Store the step's rows, remove the ones it replaced, and move the release to its
        next state: one transaction."""
        index = PIPELINE.index(ReleaseState(release.state))
        release.state = PIPELINE[index + 1]
        release.attempts, release.last_error, release.next_attempt_at = 0, None, None
        release.updated_at = utcnow()
        if release.state == ReleaseState.done:
            self._context = None
        self.store.commit(save=[*result.save, release], delete=result.delete)

    def _failed(self, release: ReleaseRecord, step: Step, error: Exception) -> None:
        release.attempts += 1
        release.last_error = redact_url(f"{step}: {type(error).__name__}: {error}")[:4000]
        release.updated_at = utcnow()
        if release.attempts >= self.max_attempts:
            release.state, release.parked_step = ReleaseState.parked, step
            self.store.save(release)
            self.alerter.send(
                Alert(
                    title=f"Release {release.id} parked",
                    summary=f"{step} failed {release.attempts} times: {release.last_error}",
                    severity="error",
                    kind="release",
                    # once per parking: a release retried and parked again is announced again
                    dedup_key=f"parked:{release.id}:{release.updated_at.isoformat()}",
                    details={"release": release.id, "step": step},
                )
            )
            return
        release.next_attempt_at = utcnow() + backoff(self.retry_backoff_s, release.attempts)
        self.store.save(release)

    def retry(self, release_id: str) -> None:
        """Put a parked release back at the step that failed (at sampling when that is not
        known: every step is idempotent, so starting over costs time, never results)."""
        release = self.store.release(release_id)
        if release.state != ReleaseState.parked:
            raise ValueError(f"{release_id} is {release.state}, not parked")
        step = Step(release.parked_step or Step.sample)
        release.state = next(state for state, next_step in NEXT_STEP.items() if next_step is step)
        release.attempts, release.next_attempt_at, release.parked_step = 0, None, None
        self.store.save(release)


def backoff(base_s: float, attempts: int) -> timedelta:
    """``base_s`` doubled for each failed attempt after the first, at most a day."""
    seconds = base_s * 2.0 ** min(attempts - 1, 64)  # a float: inf at worst, never an error
    return min(timedelta(seconds=min(seconds, MAX_BACKOFF.total_seconds())), MAX_BACKOFF)


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they are stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
