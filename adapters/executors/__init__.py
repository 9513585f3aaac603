"""Where the daemon's heavy work runs, apart from what the work is (as prefect's and
dagster's task runners keep them apart).

An :class:`Executor` maps a task, a plain importable function, over a list of picklable
items and returns the results in the items' order. ``local`` runs them one after another
in the daemon's own process (the default, and what runs on a laptop); ``ray`` runs them as
Ray tasks on a cluster, or on a Ray instance it starts on this machine when given no
address. The daemon stays the only writer of its state: tasks return results, they never
touch the database or the release folders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
EXECUTORS = ("local", "ray")


class Executor(Protocol):
    name: str
    workers: int

    def map(
        self,
        task: Callable[[Item], Result],
        items: Sequence[Item],
        stopping: Callable[[], bool] | None = None,
    ) -> list[Result]:
        """``task`` over ``items``, results in order. When ``stopping()`` turns true the
        work not yet done is given up and :class:`InterruptedError` raised."""
        ...

    def close(self) -> None: ...


def create_executor(kind: str, /, **settings: Any) -> Executor:
    """``local`` or ``ray`` (``address``, ``workers``, ``gpus_per_worker``)."""
    if kind == "local":
        from adapters.executors.local import LocalExecutor

        return LocalExecutor()
    if kind == "ray":
        from adapters.executors.ray_cluster import RayExecutor

        return RayExecutor(**settings)
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
