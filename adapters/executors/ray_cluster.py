"""Tasks on Ray: a cluster at ``address`` (``auto``, ``ray://head:10001``), or with no
address a Ray instance started on this machine with ``workers`` CPUs, so that one machine
runs the same code path as a cluster.

Each item becomes one Ray task with one CPU (and ``gpus_per_worker`` GPUs when set). Ray
runs a task again when its worker process dies (``max_retries``); the results come back to
the caller, which alone writes them, so a task run twice leaves nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from eliq.redaction import redact_url

Item = TypeVar("Item")
Result = TypeVar("Result")
log = logging.getLogger(__name__)
POLL_S = 0.5  # how often a waiting map looks at the stop signal


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        gpus_per_worker: float = 0.0,
        max_retries: int = 3,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a Ray executor needs at least one worker, not {workers}")
        self.address = address
        self.workers = workers
        self.gpus_per_worker = gpus_per_worker
        self.max_retries = max_retries
        self._started = False

    def _connect(self) -> Any:
        """Ray, connected on first use: status and discovery never start a cluster."""
        import ray

        if not ray.is_initialized():
            where = "a local Ray instance" if self.address is None else redact_url(self.address)
            log.info("connecting to %s", where)
            if self.address is None:
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=self.address, log_to_driver=False)
            self._started = True
        return ray

    def map(
        self,
        task: Callable[[Item], Result],
        items: Sequence[Item],
        stopping: Callable[[], bool] | None = None,
    ) -> list[Result]:
        if not items:
            return []
        ray = self._connect()
        remote = ray.remote(
            num_cpus=1, num_gpus=self.gpus_per_worker, max_retries=self.max_retries
        )(task)
        pending = [remote.remote(item) for item in items]
        waiting = list(pending)
        while waiting:
            if stopping is not None and stopping():
                for ref in waiting:
                    ray.cancel(ref, force=True)
                raise InterruptedError("stopped while Ray tasks ran")
            _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=POLL_S)
        return ray.get(pending)

    def close(self) -> None:
        """Leave the cluster (and stop the instance this executor started)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
