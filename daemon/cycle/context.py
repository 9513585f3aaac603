"""What a step of a release's cycle is given and what it gives back.

A step (:mod:`daemon.cycle.steps`) is a function ``(ReleaseContext) -> StepResult``: the
context holds the release, the daemon's :class:`~daemon.ports.Ports` and what the steps of
one release share; the result, the rows the pipeline commits with the release's next state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from sqlmodel import SQLModel

from adapters.executors import Executor
from daemon.cycle import history
from daemon.ports import Ports
from daemon.settings import DaemonSettings
from daemon.state.store import Store
from daemon.state.tables import CriticVersion, ReleaseRecord
from daemon.state.workspace import ReleaseWorkspace
from daemon.tasks.per_process import release_all
from eliq.critic import Critic


class Stopping(Exception):
    """Raised by a step that gave up its work because the daemon was asked to stop."""


@dataclass(frozen=True)
class StepResult:
    """What a step leaves in the state: rows to store (new or changed) and rows to remove.
    The pipeline commits both with the release's next state in one transaction, so a step
    that is killed, or fails, has changed nothing."""

    save: Sequence[SQLModel] = ()
    delete: Sequence[SQLModel] = ()


class ReleaseContext:
    """One release on its way through the steps: the release as the pipeline last read it,
    the ports, and what the steps share, loaded once: the release's critic version, the
    retuned critic and the critic it started from."""

    def __init__(self, release: ReleaseRecord, ports: Ports) -> None:
        self.release = release
        self.ports = ports
        self.used_executor = False

    @property
    def settings(self) -> DaemonSettings:
        return self.ports.settings

    @property
    def store(self) -> Store:
        return self.ports.store

    @property
    def workspace(self) -> ReleaseWorkspace:
        return self.ports.workspace(self.release)

    @cached_property
    def version(self) -> CriticVersion:
        """The critic version the release's retune made (steps after ``retune``)."""
        version = self.store.critic_for(self.release.id)
        if version is None:
            raise LookupError(f"{self.release.id} has no retuned critic yet")
        return version

    @cached_property
    def challenger(self) -> Critic:
        """The release's retuned critic, loaded once for every step that scores with it."""
        return Critic.from_pretrained(self.version.checkpoint, self.settings.device)

    @cached_property
    def baseline(self) -> Critic:
        """The critic the release's retune started from."""
        return history.starting_critic(self.ports, self.version)

    @contextmanager
    def executor(self) -> Iterator[Executor]:
        """The executor, for the step's heavy work: the run is recorded as the executor's,
        a stop it reports becomes :class:`Stopping`, and what its tasks kept in this
        process is let go afterwards."""
        self.used_executor = True
        try:
            yield self.ports.executor
        except InterruptedError as stopped:
            raise Stopping from stopped
        finally:
            release_all()
