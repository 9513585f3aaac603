"""The sampling step's unit of work: one shard of the prompt suite rendered by a release's
generator, wherever the executor runs it.

Images are named by their prompt's index in the suite and their seed, not by the order they
arrived in, so a release's samples are the same files however the suite was sharded and in
whatever order the shards finished. A shard returns pixels, not files: the daemon writes
them, so a shard run twice (a worker lost and retried) leaves nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters import create_generator
from daemon.tasks.per_process import kept
from eliq.devices import cpu_threads


@dataclass(frozen=True)
class SampleShard:
    """What a worker needs to render some prompts: the generator by name and settings
    (never a loaded model), and each prompt's index in the suite with its seed."""

    kind: str
    ref: str
    options: dict[str, Any] = field(hash=False)
    indices: tuple[int, ...]
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    threads: int = 1


@dataclass(frozen=True)
class RenderedImage:
    index: int
    prompt: str
    seed: int
    pixels: np.ndarray  # (H, W, 3) uint8, RGB

    @property
    def name(self) -> str:
        return f"{self.index:05d}-s{self.seed}.png"


def shard_suite(
    kind: str,
    ref: str,
    options: dict[str, Any],
    prompts: Sequence[str],
    seed: int,
    size: int,
    threads: int = 1,
) -> list[SampleShard]:
    """The suite's first prompts in shards of ``size``; prompt ``i`` gets seed ``seed + i``."""
    return [
        SampleShard(
            kind,
            ref,
            options,
            tuple(range(start, min(start + size, len(prompts)))),
            tuple(prompts[start : start + size]),
            tuple(seed + i for i in range(start, min(start + size, len(prompts)))),
            threads,
        )
        for start in range(0, len(prompts), size)
    ]


def render_shard(shard: SampleShard) -> list[RenderedImage]:
    """The shard's images, each with its prompt's index and seed. Rendered on a fixed
    number of CPU threads: how threads split a float sum changes the last bit, and so a
    pixel here and there, between a daemon's process and a Ray worker's."""
    generator = _generator(shard.kind, shard.ref, json.dumps(shard.options, sort_keys=True))
    index_of = dict(zip(shard.seeds, shard.indices, strict=True))
    with cpu_threads(shard.threads):
        return [
            RenderedImage(index_of[seed], prompt, seed, np.asarray(image.convert("RGB")))
            for prompt, seed, image in generator.sample(list(shard.prompts), list(shard.seeds))
        ]


@kept(maxsize=1)
def _generator(kind: str, ref: str, options: str) -> Any:
    """One generator per process and release: a worker that renders several shards of one
    release loads its model once."""
    return create_generator(kind, ref=ref, **json.loads(options))
