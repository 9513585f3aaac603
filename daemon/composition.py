"""The composition root: the one module that builds the daemon's database, MLflow,
Evidently, alerting and executor objects from its settings and hands them to the code that
uses them through ports (:class:`~adapters.critic_stores.CriticStore`,
:class:`~daemon.policy.drift.DriftSink`, :class:`~daemon.policy.alerting.Alerter`,
:class:`~adapters.executors.Executor`). Nothing else under ``daemon/`` constructs them
(tests/test_layering.py reads the sources to hold that), so a test or another deployment
swaps any of them here, in one place.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from adapters import create_alert_channel, create_critic_store, create_registry
from adapters.alerts.base import AlertChannel
from adapters.critic_stores import CriticStore
from adapters.executors import Executor, create_executor
from adapters.registries.base import Registry
from daemon.policy.alerting import Alerter
from daemon.settings import AlertSpec, DaemonSettings, RegistrySpec
from daemon.state.database import make_engine, migrate, read_only_engine
from daemon.state.lock import LeaderLock
from daemon.state.store import Store

if TYPE_CHECKING:  # the cycle, the API and Evidently load when built: `status` stays light
    from daemon.cycle.discovery import Cycle
    from daemon.ports import Ports


def open_state(settings: DaemonSettings) -> Store:
    """The daemon's state, migrated to the newest schema (created when missing)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.state_url)
    migrate(engine)
    return Store(engine)


def read_state(settings: DaemonSettings) -> Store:
    """The state for readers: nothing created, migrated or written (raises
    :class:`~daemon.state.StateNotReady` when it cannot be read as it is)."""
    return Store(read_only_engine(settings.state_url))


def critic_store(settings: DaemonSettings) -> CriticStore:
    """The critic store ``settings.critic_store`` names (MLflow's registry by default,
    connected on first use)."""
    spec = settings.critic_store
    return create_critic_store(spec.kind, **settings.critic_store_settings())


def make_executor(settings: DaemonSettings) -> Executor:
    executor = settings.executor
    if executor.kind == "local":
        return create_executor("local")
    where = executor.model_dump(exclude={"kind", "cpu_threads"})  # threads: per task
    where["storage_path"] = executor.storage_path or str((settings.data_dir / "ray").resolve())
    return create_executor(executor.kind, **where)


def build_channels(settings: DaemonSettings) -> list[tuple[AlertSpec, AlertChannel]]:
    """The alert channels ``settings.alerts`` name (a log channel writes beside the state)."""
    channels = []
    for spec in settings.alerts:
        options = dict(spec.settings)
        if spec.kind == "log":
            options.setdefault("path", str(settings.data_dir / "alerts.jsonl"))
        channels.append((spec, create_alert_channel(spec.kind, **options)))
    return channels


def build_ports(
    settings: DaemonSettings,
    stop: threading.Event | None = None,
    executor: Executor | None = None,
) -> Ports:
    """The state, MLflow, the Evidently workspace, the alert channels and the executor of
    ``settings`` (``executor`` in its place when given)."""
    from daemon.ports import Ports
    from dashboards.evidently_reports import EvidentlyDriftSink

    store = open_state(settings)
    return Ports(
        settings,
        store,
        critics=critic_store(settings),
        drift=EvidentlyDriftSink(settings.evidently_path),
        alerter=Alerter(store, build_channels(settings)),
        executor=executor or make_executor(settings),
        stop=stop or threading.Event(),
    )


def build_registries(settings: DaemonSettings) -> dict[str, tuple[RegistrySpec, Registry]]:
    """Each registry of ``settings`` with its adapter, by name."""
    return {
        spec.name: (spec, create_registry(spec.kind, **spec.settings))
        for spec in settings.registry_specs()
    }


def build_cycle(
    settings: DaemonSettings,
    stop: threading.Event | None = None,
    executor: Executor | None = None,
) -> Cycle:
    """The cycle on :func:`build_ports` and :func:`build_registries`."""
    from daemon.cycle.discovery import Cycle

    return Cycle(build_ports(settings, stop, executor), build_registries(settings))


def leader_lock(store: Store) -> LeaderLock:
    return LeaderLock(store.engine)


def build_app(settings: DaemonSettings, store: Store | None = None):
    """The status API on the state (``store``, or the one ``settings`` name, migrated)."""
    from daemon.serve.api import create_app

    return create_app(settings, store or open_state(settings), critic_store(settings))
