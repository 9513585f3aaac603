"""Retune: an incremental LoRA retune from the champion, replaying earlier releases' pairs,
run data-parallel where the executor runs it (:mod:`daemon.tasks.retuning`). A stop leaves the
training state saved; the next run resumes it."""

from __future__ import annotations

import logging
from pathlib import Path

from daemon.cycle import history
from daemon.cycle.context import ReleaseContext, StepResult, Stopping
from daemon.state.tables import CriticVersion
from daemon.tasks.retuning import RetuneJob, run_retune

log = logging.getLogger(__name__)


def retune(context: ReleaseContext) -> StepResult:
    release, ports, store = context.release, context.ports, context.store
    retune_settings = context.settings.retune
    replay_releases = retune_settings.replay_releases
    champion = store.champion()
    init = Path(champion.checkpoint) if champion else retune_settings.initial_checkpoint
    config = history.critic_config(ports) if init is None else None
    earlier = history.earlier(ports, release)
    replayed = earlier[-replay_releases:] if replay_releases else []
    new = ports.store.pair_set(release.id)
    replayed_sets = [ports.store.pair_set(r.id) for r in replayed]
    replay = [Path(pair_set.path) for pair_set in replayed_sets]
    out = context.workspace.critic
    settings = retune_settings.train
    job = RetuneJob(
        Path(new.path),
        out,
        settings,
        init=init,
        replay=tuple(replay),
        config=config,
        feature_cache=history.feature_folder(ports),
    )
    with context.executor() as executor:
        outcome = executor.data_parallel(run_retune, job, ports.stop.is_set)
    if outcome.stopped:  # its state is saved: the next run resumes
        log.info("%s: retune %s", release.id, outcome.stopped)
        raise Stopping
    if outcome.cut_short_by_time_budget:
        log.warning(
            "%s: the retune's time budget (%.0f s) stopped it after %d of %d steps",
            release.id,
            settings.time_budget_s,
            outcome.steps,
            settings.steps,
        )
    version = store.critic_for(release.id) or CriticVersion(
        release_id=release.id, checkpoint=str(out)
    )
    version.parent_version = champion.store_version if champion else None
    version.training = {
        **outcome.record(),
        "init": str(init) if init else None,
        "replay": [str(p) for p in replay],
        "settings": settings.model_dump(
            mode="json", include={"steps", "batch_pairs", "learning_rate", "seed"}
        ),
        "pairs": new.pairs,
        "replay_pairs": sum(pair_set.pairs for pair_set in replayed_sets),
    }
    return StepResult(save=[version])
