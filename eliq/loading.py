"""Images decoded, and their views made, in worker processes while the critic scores.

Done in the scoring process, decoding and view making add to every batch's time; done in
workers, they overlap with the critic's forward pass (``bench/score_files.py`` measures
both). Workers are spawned, not forked: the daemon runs threads (scheduler, API), and a
forked copy of a threaded process can deadlock. On a GPU the workers only decode: the
critic makes views on the device, where resizing is cheap.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from eliq.critic.views import make_views
from eliq.imageio import ImageLoadError, load_image


@dataclass(frozen=True)
class Loaded:
    """One input: its views ``(V, 3, S, S)`` (or, for a GPU critic, the decoded image), or
    why it could not be read."""

    index: int
    tensor: torch.Tensor | None
    error: str | None = None


def default_workers() -> int:
    """One worker per four cores, at most four: the critic's forward pass already uses
    every core, and on a 2-core machine a worker slowed ``eliq score`` from 19.6 to 17.2
    images/s (``bench/score_files.py``, README), so there it is none."""
    return min(4, (os.cpu_count() or 1) // 4)


class _Inputs(Dataset):
    def __init__(self, paths: Sequence[str | Path], views: tuple[int, int] | None) -> None:
        self.paths = list(paths)
        self.views = views

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Loaded:
        try:
            image = load_image(self.paths[index])
        except ImageLoadError as error:
            return Loaded(index, None, error.reason)
        return Loaded(index, image if self.views is None else make_views(image, *self.views))


def load_inputs(
    paths: Sequence[str | Path],
    batch_size: int,
    views: tuple[int, int] | None,
    workers: int | None = None,
) -> Iterator[list[Loaded]]:
    """Batches of :class:`Loaded`, in input order. ``views``: ``(size, crops)`` to make
    views in the workers, None to hand back decoded images; ``workers`` 0 loads in this
    process, None picks :func:`default_workers`."""
    workers = default_workers() if workers is None else workers
    loader = DataLoader(
        _Inputs(paths, views),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=list,
        multiprocessing_context="spawn" if workers else None,
        prefetch_factor=2 if workers else None,
    )
    yield from loader
