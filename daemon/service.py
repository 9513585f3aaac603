"""The long-running service: one leader, a scheduler, and a clean stop.

APScheduler (3.11) fires the jobs; the daemon's own tables hold the progress, so the
scheduler keeps its jobs in memory. Jobs run one at a time on a single worker thread
(coalesced, one instance each): polling every registry on its own interval, processing
pending releases, the periodic drift check (:mod:`daemon.cycle.watch`), and housekeeping.
SIGTERM or SIGINT sets the stop event: the step in flight finishes (training saves its
resumable state and stops at once) and the service exits.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import signal
import threading
from datetime import timedelta

import uvicorn
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import delete

from adapters.alerts.base import Alert
from adapters.critic_stores import RegistryUnreachable
from daemon.composition import build_cycle, leader_lock
from daemon.cycle.starting import ensure_champion
from daemon.cycle.watch import watch
from daemon.demo import seed_demo_registry
from daemon.policy.registration import registry_problems
from daemon.serve.api import create_app
from daemon.settings import DaemonSettings
from daemon.state.lock import LockHeld
from daemon.state.tables import JobRun, ReleaseState, utcnow
from eliq.redaction import redact_url

log = logging.getLogger(__name__)
JOB_HISTORY = timedelta(days=30)
REGISTRY_MISMATCH = 3  # exit status: MLflow lacks what the state says it registered


class Service:
    def __init__(self, settings: DaemonSettings) -> None:
        self.settings = settings
        self.stop = threading.Event()
        if settings.registries is None:
            seed_demo_registry(settings.data_dir)
        self.cycle = build_cycle(settings, self.stop)
        self.ports = self.cycle.ports
        self.lock = leader_lock(self.ports.store)

    def handle_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        log.info(
            "received %s: finishing the current step, then stopping", signal.Signals(signum).name
        )
        self.stop.set()

    def wait_for_lock(self, retry_s: float = 5.0) -> bool:
        """Become the leader, waiting while another daemon is; False if stopped first."""
        while not self.stop.is_set():
            try:
                self.lock.acquire()
                return True
            except LockHeld as held:
                log.info("%s; standing by", held)
                self.stop.wait(retry_s)
        return False

    def once(self) -> int:
        """One full pass: poll every registry, process everything pending. Exit status 0
        when no release is left parked or failing."""
        if not self.wait_for_lock():
            return 1
        try:
            refused = self._refusal()
            if refused is not None:
                return refused
            self.start_with_a_champion()
            polled = self.poll_all()
            self.cycle.pipeline.process()
            self.watch()
            troubled = [
                r
                for r in self.ports.store.releases()
                if r.state == ReleaseState.parked or r.last_error
            ]
            for release in troubled:
                log.error("%s: %s (%s)", release.id, release.state, release.last_error)
            return 0 if polled and not troubled else 1
        finally:
            self.cycle.close()
            self.lock.release()

    def registry_agrees(self) -> bool:
        """True when MLflow holds every critic version the state says it registered; else
        the mismatch is logged and alerted, and the caller must not run the cycle (it would
        retune from, and promote over, versions that no longer exist)."""
        problems = registry_problems(self.ports)  # RegistryUnreachable: see the callers
        if not problems:
            return True
        for problem in problems:
            log.error("MLflow registry and state disagree: %s", problem)
        log.error(
            "refusing to run. If the MLflow store was lost, `eliq-daemon reregister` registers "
            "every critic version again from its release folder (move a corrupt store aside "
            "first); if the state is the stale one, point the daemon at the right database"
        )
        self.ports.alerter.send(
            Alert(
                title="MLflow registry does not match the daemon's state",
                summary="; ".join(problems)[:1000],
                severity="critical",
                kind="registry",
                dedup_key="registry-mismatch:"
                + hashlib.sha256("\n".join(problems).encode()).hexdigest()[:12],
                details={"problems": problems, "fix": "eliq-daemon reregister"},
            )
        )
        return False

    def _refusal(self) -> int | None:
        """``once``'s exit status when it must not run the cycle: MLflow lacks what the
        state says it registered, or does not answer at all."""
        try:
            return None if self.registry_agrees() else REGISTRY_MISMATCH
        except RegistryUnreachable as down:
            log.error("%s; nothing was done (run again when it answers)", down)
            return 1

    def wait_for_registry(self, retry_s: float = 30.0) -> bool:
        """The start-up check of :meth:`registry_agrees`, waiting out an MLflow that does not
        answer (a server restarting) instead of exiting; False on a mismatch or a stop."""
        while not self.stop.is_set():
            try:
                return self.registry_agrees()
            except RegistryUnreachable as down:
                log.warning("%s; checking again in %.0f s", down, retry_s)
                self.stop.wait(retry_s)
        return False

    def start_with_a_champion(self) -> None:
        """Register the critic the daemon starts from as the champion when there is none
        (:mod:`daemon.cycle.starting`); a failure is logged, and the next pass tries again."""
        try:
            ensure_champion(self.ports)
        except Exception:  # noqa: BLE001 - releases still advance, as they did without one
            log.exception("the starting critic could not be registered as the champion")

    def poll_all(self) -> bool:
        """Poll every registry; False if any poll failed."""
        return all([self.poll(name) for name in self.cycle.registries])

    def poll(self, registry: str) -> bool:
        try:
            self.cycle.discover(registry)
            return True
        except Exception:  # noqa: BLE001 - the cursor stays put; the next poll retries
            log.exception("polling %s failed", registry)
            return False

    def poll_then_process(self, registry: str) -> None:
        """What a registry's job does: new releases start their cycle at once, not at the
        next tick of the processing job."""
        if self.poll(registry):
            self.process()

    def process(self) -> None:
        """Advance pending releases; after progress, bring the leaderboard and the
        generator-shift check up to date at once (the watch is a no-op until a release
        finishes) rather than at the next watch tick."""
        if self.cycle.pipeline.process():
            self.watch()

    def watch(self) -> None:
        """The periodic drift check; a failure is logged and retried at the next tick."""
        where = self.ports.executor  # the champion's scoring runs there
        run = self.ports.store.add(JobRun(job="watch", executor=where.name, workers=where.workers))
        try:
            check = watch(self.ports)
            run.ok, run.detail = True, None if check is None else f"drift check {check.id}"
        except Exception as error:  # noqa: BLE001 - the job must not kill the scheduler
            log.exception("the periodic drift check failed")
            run.ok, run.detail = False, redact_url(f"{error}")[:2000]
        run.finished_at = utcnow()
        self.ports.store.save(run)

    def housekeeping(self) -> None:
        with self.ports.store.session() as session:
            session.exec(delete(JobRun).where(JobRun.started_at < utcnow() - JOB_HISTORY))
            session.commit()
        for scratch in (self.settings.data_dir / "releases").glob("*/.samples-*"):
            shutil.rmtree(scratch, ignore_errors=True)

    def serve_api(self) -> uvicorn.Server | None:
        """Start the status API on its own thread (standby replicas serve it too)."""
        if self.settings.api_port is None:
            return None
        config = uvicorn.Config(
            create_app(self.settings, self.ports.store, self.ports.critics),
            host=self.settings.api_host,
            port=self.settings.api_port,
            log_level="warning",
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # the service owns SIGTERM and SIGINT
        threading.Thread(target=server.run, name="status-api", daemon=True).start()
        log.info("status API on http://%s:%d", self.settings.api_host, self.settings.api_port)
        return server

    def run(self) -> int:
        """Serve until stopped."""
        api = self.serve_api()
        try:
            return self._lead()
        finally:
            self.cycle.close()
            if api is not None:
                api.should_exit = True

    def _lead(self) -> int:
        if not self.wait_for_lock():
            return 0
        if not self.wait_for_registry():
            self.lock.release()
            return 0 if self.stop.is_set() else REGISTRY_MISMATCH
        self.start_with_a_champion()
        # a tick that finds its job still running is skipped by design (one instance, one
        # worker): APScheduler logs each skip as a warning, every interval, for hours
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )
        now = utcnow()
        jobs = [
            (f"poll:{name}", self.poll_then_process, [name], spec.interval_s, now)
            for name, (spec, _) in self.cycle.registries.items()
        ]
        jobs += [
            ("process", self.process, [], self.settings.process_interval_s, now),
            ("watch", self.watch, [], self.settings.watch_interval_s, now),
            ("housekeeping", self.housekeeping, [], self.settings.housekeeping_interval_s, None),
        ]
        for job_id, function, args, seconds, first_run in jobs:
            options = {} if first_run is None else {"next_run_time": first_run}
            scheduler.add_job(
                function, "interval", args=args, seconds=seconds, id=job_id, **options
            )
        log.info(
            "eliq-daemon serving %s; MLflow at %s",
            self.settings.data_dir,
            redact_url(self.settings.tracking_uri),
        )
        scheduler.start()
        try:
            self.stop.wait()
        finally:
            scheduler.shutdown(wait=True)
            self.lock.release()
            log.info("eliq-daemon stopped")
        return 0
