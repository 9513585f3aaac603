"""What a task loads, kept once per process: a worker that runs several shards of one
release loads its generator, pair factory or critic once. The daemon's own process runs
tasks too (the local executor), so after a step it lets go of them all
(:func:`release_all`), and a model is never held between releases."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

Loader = TypeVar("Loader", bound=Callable[..., Any])
_KEPT: list[Any] = []


def kept(maxsize: int = 1) -> Callable[[Loader], Loader]:
    """Keep the last ``maxsize`` results of a loader of hashable arguments in this process."""

    def keep(load: Loader) -> Loader:
        cached = functools.lru_cache(maxsize=maxsize)(load)
        _KEPT.append(cached)
        return cached  # type: ignore[return-value]

    return keep


def release_all() -> None:
    """Drop everything this process kept (the daemon, after a step or the watch)."""
    for cached in _KEPT:
        cached.cache_clear()
