"""Where the daemon's heavy work runs, apart from what the work is (as prefect's and
dagster's task runners keep them apart).

An :class:`Executor` runs two shapes of work, each a plain importable function:

* ``map``: a task over a list of picklable items, results in the items' order (sampling
  shards);
* ``data_parallel``: one task in each of ``workers`` processes joined in a
  ``torch.distributed`` group, rank 0's result returned (a DDP retune).

``local`` runs them in the daemon's own process (the default, and what runs on a laptop:
a map one item after another, data-parallel work as a group of one); ``ray`` runs them as
Ray tasks and as a Ray Train ``TorchTrainer`` on a cluster, or on a Ray instance it starts
on this machine when given no address. The daemon stays the only writer of its state:
tasks return results, they never touch the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

Item = TypeVar("Item")
Argument = TypeVar("Argument")
Result = TypeVar("Result")
EXECUTORS = ("local", "ray")
StopSignal = Callable[[], bool]
DataParallelTask = Callable[[Argument, StopSignal], Result]
"""``task(argument, stopping)``: ``stopping()`` turns true (on every rank) when the caller
asks the work to stop; the task then saves what it must and returns."""


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

    def data_parallel(
        self,
        task: DataParallelTask[Argument, Result],
        argument: Argument,
        stopping: StopSignal | None = None,
    ) -> Result:
        """``task(argument, stopping)`` on every worker of one ``torch.distributed`` group;
        returns rank 0's result."""
        ...

    def close(self) -> None: ...


def create_executor(kind: str, /, **settings: Any) -> Executor:
    """``local`` or ``ray`` (``address``, ``workers``, ``gpus_per_worker``, ``storage_path``)."""
    if kind == "local":
        from adapters.executors.local import LocalExecutor

        return LocalExecutor()
    if kind == "ray":
        from adapters.executors.ray_cluster import RayExecutor

        return RayExecutor(**settings)
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
