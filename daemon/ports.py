"""The daemon's ways out: the state, the critic store, Evidently, the alert channels and
the executor, with its settings and stop signal.

:mod:`daemon.composition` builds them and nothing else does; the cycle, the watch and the
policies are functions of them, and none holds or reaches into another object's parts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from adapters.critic_stores import CriticStore
from adapters.executors import Executor
from daemon.policy.alerting import Alerter
from daemon.policy.drift import DriftSink
from daemon.settings import DaemonSettings
from daemon.state.store import Store
from daemon.state.tables import ReleaseRecord
from daemon.state.workspace import ReleaseWorkspace


@dataclass(frozen=True)
class Ports:
    settings: DaemonSettings
    store: Store
    critics: CriticStore
    drift: DriftSink
    alerter: Alerter
    executor: Executor
    stop: threading.Event = field(default_factory=threading.Event)

    def workspace(self, release: ReleaseRecord) -> ReleaseWorkspace:
        return ReleaseWorkspace.of(self.settings.data_dir, release.id)
