"""Choosing the torch device (the same code runs on a GPU when there is one) and, where
bytes must agree across processes, its CPU threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was requested but CUDA is not available")
    return device


def one_image_at_a_time(device: torch.device) -> bool:
    """Whether images go through the vision side one at a time, their views cut where they
    are decoded: on a CPU, one image's views and their activations stay in the caches (the
    backbone ran 32 images 2.7x faster one by one than in one call, the statistics 2x),
    and loader workers cut views beside the scoring; a GPU takes the whole batch at once
    and cuts the views itself, where the resizing is fast."""
    return device.type == "cpu"


@contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """Torch's CPU threads set to ``count`` for a block, then restored. How threads split a
    float sum changes its last bit, so work whose output bytes must be the same in any
    process (a daemon's, a Ray worker's) runs on a fixed count."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
