"""Register: the retuned critic as a store version (created only if missing), aliased as
the challenger."""

from __future__ import annotations

from adapters.critic_stores import CHALLENGER
from daemon.cycle.context import ReleaseContext, StepResult
from daemon.policy.registration import register_version
from daemon.state.tables import CriticStatus


def register(context: ReleaseContext) -> StepResult:
    version = context.version
    registered = register_version(context.ports, context.release, version)
    context.ports.critics.set_alias(CHALLENGER, registered.version)
    version.store_version = registered.version
    version.status = CriticStatus.challenger
    return StepResult(save=[version])
