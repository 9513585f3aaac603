"""Tasks one after another in this process: today's daemon on one machine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


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

    def close(self) -> None:
        """Nothing to release."""
