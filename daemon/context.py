"""What a unit of the daemon's work is given: the ports, and for a release's step the
release.

:class:`Ports` are the daemon's ways out (the state, MLflow, Evidently, the alert channels,
the executor) with its settings and stop signal; :mod:`daemon.composition` builds them and
nothing else does. A step of a release's cycle (:mod:`daemon.steps`) is a function
``(ReleaseContext) -> rows``, the watch a function of the ports; neither holds or reaches
into another object's parts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.critic_stores import CriticStore
from adapters.executors import Executor
from daemon.alerting import Alerter
from daemon.drift import DriftSink
from daemon.settings import DaemonSettings
from daemon.state import ReleaseRecord, Store
from daemon.workspace import ReleaseWorkspace

StepResult = Sequence[Any]
"""The rows a step returns: the pipeline stores them with the release's next state."""


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


@dataclass(frozen=True)
class ReleaseContext:
    """One release at one step: the release as the pipeline read it, and the ports."""

    release: ReleaseRecord
    ports: Ports

    @property
    def workspace(self) -> ReleaseWorkspace:
        return self.ports.workspace(self.release)

    @property
    def settings(self) -> DaemonSettings:
        return self.ports.settings

    @property
    def store(self) -> Store:
        return self.ports.store
