"""Tasks one after another in this process: the daemon on one machine. Data-parallel work
runs as a group of one, which is the single-process recipe."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adapters.executors import Argument, DataParallelTask, Item, Result, StopSignal


class LocalExecutor:
    name = "local"
    workers = 1

    def map(
        self,
        task: Callable[[Item], Result],
        items: Sequence[Item],
        stopping: Callable[[], bool] | None = None,
    ) -> list[Result]:
        results = []
        for item in items:
            if stopping is not None and stopping():
                raise InterruptedError("stopped between tasks")
            results.append(task(item))
        return results

    def data_parallel(
        self,
        task: DataParallelTask[Argument, Result],
        argument: Argument,
        stopping: StopSignal | None = None,
    ) -> Result:
        return task(argument, stopping or _never)

    def close(self) -> None:
        """Nothing to release."""


def _never() -> bool:
    return False
