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
