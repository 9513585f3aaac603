"""Register: the retuned critic as a registry version (created only if missing), aliased
as the challenger."""

from __future__ import annotations

from adapters.critic_stores import CHALLENGER
from daemon.context import ReleaseContext, StepResult
from daemon.registration import register_version


def register(context: ReleaseContext) -> StepResult:
    version = context.store.critic_for(context.release.id)
    registered = register_version(context.ports, context.release, version)
    context.ports.critics.set_alias(CHALLENGER, registered.version)
    version.mlflow_version, version.run_id = registered.version, registered.run_id
    version.status = CHALLENGER
    return [version]
