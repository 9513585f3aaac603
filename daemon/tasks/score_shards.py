"""The watch job's unit of work: a critic version scoring a shard of images, wherever the
executor runs it.

A shard names its critic by checkpoint path (never a loaded model); each worker process
loads a critic once and keeps it for the shards that follow. Vision features come from the
shared feature cache (``data_dir/features``), so images a step already saw cost only the
critic's heads. Shards are whole scoring batches, so how a release is sharded does not
change its scores (a worker's thread count may move the last bits of a float); a shard
returns scores, and the daemon alone stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from daemon.tasks.per_process import kept
from eliq.critic import Critic
from eliq.evaluation import score_table
from eliq.prompts.record import prompt_or_none

BATCH = 16  # score_table's batch: shards are whole batches of it


@dataclass(frozen=True)
class ScoreShard:
    checkpoint: str
    device: str
    images: tuple[str, ...]
    prompts: tuple[str | None, ...]
    feature_cache: str | None = None


def shard_images(
    checkpoint: Path,
    device: str,
    frame: pd.DataFrame,
    batches: int,
    feature_cache: Path | None = None,
) -> list[ScoreShard]:
    """``frame``'s images (columns image, prompt) in shards of ``batches`` scoring batches."""
    size = batches * BATCH
    prompts = [prompt_or_none(p) for p in frame["prompt"]]
    images = [str(i) for i in frame["image"]]
    return [
        ScoreShard(
            str(checkpoint),
            device,
            tuple(images[start : start + size]),
            tuple(prompts[start : start + size]),
            None if feature_cache is None else str(feature_cache),
        )
        for start in range(0, len(images), size)
    ]


def score_shard(shard: ScoreShard) -> list[tuple[float, float | None]]:
    """Quality and alignment of each image of the shard, in order."""
    critic = _critic(shard.checkpoint, shard.device)
    features = critic.feature_cache(
        None if shard.feature_cache is None else Path(shard.feature_cache)
    )
    frame = pd.DataFrame({"image": list(shard.images), "prompt": list(shard.prompts)})
    scored = score_table(critic, frame, BATCH, progress=False, features=features)
    return [
        (float(quality), None if pd.isna(alignment) else float(alignment))
        for quality, alignment in zip(scored["quality"], scored["alignment"], strict=True)
    ]


@kept(maxsize=2)
def _critic(checkpoint: str, device: str) -> Critic:
    return Critic.from_pretrained(checkpoint, device)
