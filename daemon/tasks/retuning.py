"""The retune step's unit of work: one critic retune, run wherever the executor runs it.

On the local executor it is the single-process recipe; on Ray it runs in every worker of a
DDP group (:mod:`eliq.train.distributed`), rank 0 writing the critic into the release's
folder, which the workers reach at the same path (a shared volume). Its result is plain
data for the daemon, which alone records it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adapters.executors import StopSignal
from eliq.critic import CriticConfig
from eliq.train import TrainingStopped, TrainSettings, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetuneJob:
    """What a retune needs, as paths and settings (never a loaded model)."""

    pairs: Path
    out: Path
    settings: TrainSettings
    init: Path | None = None
    replay: tuple[Path, ...] = ()
    config: CriticConfig | None = None
    feature_cache: Path | None = None


@dataclass(frozen=True)
class RetuneOutcome:
    """What a retune did, for the daemon to record; ``stopped`` says why it gave up when
    asked to stop (its state is saved, so the next run resumes)."""

    steps: int = 0
    skipped_steps: int = 0
    cut_short_by_time_budget: bool = False
    held_out_accuracy: float | None = None
    final_loss: float | None = None
    processes: int = 1
    stopped: str | None = None

    def record(self) -> dict[str, Any]:
        """The outcome as the critic version's ``training`` column keeps it."""
        return {k: v for k, v in asdict(self).items() if k != "stopped"}


def run_retune(job: RetuneJob, stopping: StopSignal) -> RetuneOutcome:
    """Retune from ``job``, wherever the executor runs it."""
    try:
        result = train(
            [job.pairs],
            job.out,
            job.settings,
            init=job.init,
            replay=job.replay,
            config=job.config,
            progress=False,
            stop=stopping,
            feature_cache=job.feature_cache,
        )
    except TrainingStopped as stopped:
        return RetuneOutcome(stopped=str(stopped))
    return RetuneOutcome(
        steps=result.steps,
        skipped_steps=result.skipped_steps,
        cut_short_by_time_budget=result.cut_short,
        held_out_accuracy=result.held_out_accuracy,
        final_loss=result.history[-1]["loss"] if result.history else None,
        processes=result.processes,
    )
