"""The pair-building step's unit of work: one chunk of a release's positives made into
negatives, wherever the executor runs it.

A shard carries the factory's settings (never a loaded factory: each worker process builds
one per settings and keeps it) and a :class:`~eliq.pairs.factory.PairChunk`. The worker
writes the chunk's images into the release's pair set (content-named files, so a shard run
twice writes the same files again) and returns its manifest rows; the daemon writes the
parts in chunk order, so the pair set is the same files whatever ran the shards. Torch runs
on a fixed number of CPU threads per shard, as sampling does, so the images are the same
bytes in any process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daemon.tasks.per_process import kept
from eliq.config import ImageLimits, PairSettings
from eliq.devices import cpu_threads
from eliq.pairs.factory import ChunkResult, PairChunk, PairFactory


@dataclass(frozen=True)
class PairShard:
    settings: PairSettings
    limits: ImageLimits
    root: str
    chunk: PairChunk
    threads: int = 1


def build_pair_shard(shard: PairShard) -> ChunkResult:
    factory = pair_factory(shard.settings, shard.limits)
    with cpu_threads(shard.threads):
        return factory.build_chunk(shard.chunk, factory.writer(Path(shard.root)))


def pair_factory(settings: PairSettings, limits: ImageLimits) -> PairFactory:
    """The factory of these settings, built once per process."""
    return _factory(settings.model_dump_json(), limits.model_dump_json())


@kept(maxsize=1)
def _factory(settings: str, limits: str) -> PairFactory:
    return PairFactory(
        PairSettings.model_validate_json(settings), ImageLimits.model_validate_json(limits)
    )
