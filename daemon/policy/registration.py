"""Critic versions in the registry (the :class:`~adapters.critic_stores.CriticStore` port):
registered with what they were trained on, checked against the state, and registered again
from their release folders when the registry was lost."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from adapters.critic_stores import STARTING, RegisteredCritic, store_key
from daemon.policy.promotion import gate_tags
from daemon.ports import Ports
from daemon.state.tables import CriticStatus, CriticVersion, EvaluationRecord, ReleaseRecord
from eliq.critic import CriticConfig

log = logging.getLogger(__name__)


def register_version(
    ports: Ports, release: ReleaseRecord, version: CriticVersion
) -> RegisteredCritic:
    """The registry's version of ``version``'s checkpoint (created only if missing)."""
    return ports.critics.register(
        release.id,
        Path(version.checkpoint),
        tags={
            "eliq.generator": release.name,
            "eliq.pair_set_digest": ports.store.pair_set(release.id).digest,
            "eliq.parent_version": version.parent_version or "",
        },
        metrics={
            f"held_out_accuracy.{k}": v
            for k, v in version.training.get("held_out_accuracy", {}).items()
        },
        history=_training_history(Path(version.checkpoint)),
        params=_run_params(version),
    )


def register_starting(ports: Ports, checkpoint: Path, source: str) -> RegisteredCritic:
    """The registry's version of the critic the daemon started from (created only if
    missing), which no release was retuned into."""
    return ports.critics.register(
        STARTING,
        checkpoint,
        tags={"eliq.origin": source},
        metrics={},
        history=[],
        params={"starting.source": source},
    )


def registry_problems(ports: Ports) -> list[str]:
    """What the registry lacks of the critic versions the state says it registered."""
    return ports.critics.problems(ports.store.critic_versions())


def reregister(ports: Ports) -> list[CriticVersion]:
    """Register every critic version of the state again from its release folder, in
    order, with its evaluations and aliases: the way back after the MLflow store was
    lost. Versions still there are kept (registration is idempotent)."""
    store, critics = ports.store, ports.critics
    versions = [v for v in store.critic_versions() if v.store_version]
    lost = [v.checkpoint for v in versions if not Path(v.checkpoint, "config.json").is_file()]
    if lost:
        raise FileNotFoundError(f"critic checkpoints missing from the release folders: {lost}")
    for version in versions:
        before = version.store_version
        if version.release_id is None:
            source = version.training.get("source", "the critic the daemon started from")
            registered = register_starting(ports, Path(version.checkpoint), source)
        else:
            registered = register_version(ports, store.release(version.release_id), version)
        version.store_version = registered.version
        evaluations = store.rows(EvaluationRecord, critic_version_id=version.id)
        critics.record_metrics(version.store_version, evaluation_metrics(evaluations))
        if version.gate:
            critics.tag_version(version.store_version, gate_tags(version))
        if before != version.store_version:
            log.warning(
                "%s: critic v%s is now v%s",
                store_key(version.release_id),
                before,
                registered.version,
            )
        store.save(version)
    for version in versions:
        if version.status in (CriticStatus.champion, CriticStatus.challenger):
            critics.set_alias(version.status, version.store_version)
    return versions


def evaluation_metrics(rows: list[EvaluationRecord]) -> dict[str, float]:
    return {
        f"eval.{row.role}.{row.scope}.accuracy": row.accuracy
        for row in rows
        if row.accuracy is not None
    }


def _training_history(checkpoint: Path) -> list[dict]:
    state = checkpoint / "state" / "state.json"
    return json.loads(state.read_text())["history"] if state.is_file() else []


def _run_params(version: CriticVersion) -> dict[str, str]:
    """What the retune was run with, as the run's params: its settings, the pairs it saw
    and the LoRA of the critic it produced."""
    training = version.training
    params = {f"train.{key}": value for key, value in training.get("settings", {}).items()}
    params |= {
        "train.steps_run": training.get("steps"),
        "pairs.new": training.get("pairs"),
        "pairs.replay": training.get("replay_pairs"),
        "pairs.replay_releases": len(training.get("replay", [])),
    }
    config = CriticConfig.load(Path(version.checkpoint))
    for side, lora in (("vision", config.vision_lora), ("text", config.text_lora)):
        params[f"lora.{side}"] = f"rank {lora.rank}, alpha {lora.alpha}" if lora.enabled else "off"
    return {key: str(value) for key, value in params.items() if value is not None}
