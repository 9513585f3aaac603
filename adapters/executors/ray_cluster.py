"""Tasks on Ray: a cluster at ``address`` (``auto``, ``ray://head:10001``), or with no
address a Ray instance started on this machine with ``workers`` CPUs, so that one machine
runs the same code path as a cluster.

Each item of a ``map`` becomes one Ray task with one CPU (and ``gpus_per_worker`` GPUs when
set). Ray runs a task again when its worker process dies (``max_retries``); the results come
back to the caller, which alone writes them, so a task run twice leaves nothing twice.

``data_parallel`` runs a Ray Train ``TorchTrainer`` of ``workers`` workers (gloo on CPUs,
NCCL on GPUs). A small actor carries the stop signal to the workers and rank 0's result
back; a worker lost mid-run restarts the group (``max_retries`` times), and the task
resumes from what it saved. Ray Train keeps its run folders at ``storage_path`` (a folder
every node sees, or a cloud URI; None: Ray's default, ``~/ray_results``).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from adapters.executors import Argument, DataParallelTask, Item, Result, StopSignal
from eliq.redaction import redact_url

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
        storage_path: str | None = None,
        connect_timeout_s: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a Ray executor needs at least one worker, not {workers}")
        self.address = address
        self.workers = workers
        self.gpus_per_worker = gpus_per_worker
        self.max_retries = max_retries
        self.storage_path = storage_path
        self.connect_timeout_s = connect_timeout_s
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
                self._reachable()
                ray.init(address=self.address, log_to_driver=False)
            self._started = True
        return ray

    def _reachable(self) -> None:
        """Raise :class:`ConnectionError` unless the cluster's address takes a connection
        within ``connect_timeout_s``: ``ray.init`` itself retries an unreachable GCS with
        no deadline, which would hold a step forever instead of failing it (the pipeline
        then retries it with backoff and parks it)."""
        if self.address == "auto":
            return  # a cluster on this machine, found through Ray's own files
        where = self.address.removeprefix("ray://").rsplit("/", 1)[0]
        host, _, port = where.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        try:
            socket.create_connection((host, int(port)), timeout=self.connect_timeout_s).close()
        except (OSError, ValueError) as error:
            raise ConnectionError(
                f"the Ray cluster at {redact_url(self.address)} does not answer "
                f"within {self.connect_timeout_s:g} s: {error}"
            ) from None

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

    def data_parallel(
        self,
        task: DataParallelTask[Argument, Result],
        argument: Argument,
        stopping: StopSignal | None = None,
    ) -> Result:
        ray = self._connect()
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        control = ray.remote(num_cpus=0)(_RunControl).remote()
        resources = {"CPU": 1.0} | ({"GPU": self.gpus_per_worker} if self.gpus_per_worker else {})
        trainer = TorchTrainer(
            _rank,
            train_loop_config={"task": task, "argument": argument, "control": control},
            torch_config=TorchConfig(backend="nccl" if self.gpus_per_worker else "gloo"),
            scaling_config=ScalingConfig(
                num_workers=self.workers,
                use_gpu=self.gpus_per_worker > 0,
                resources_per_worker=resources,
            ),
            run_config=RunConfig(
                storage_path=self.storage_path,
                failure_config=FailureConfig(max_failures=self.max_retries),
            ),
        )
        failure: list[BaseException] = []

        def fit() -> None:
            try:
                trainer.fit()
            except BaseException as error:  # noqa: BLE001 - handed to the caller below
                failure.append(error)

        asked = False

        def pass_on_a_stop() -> None:
            nonlocal asked
            if not asked and stopping is not None and stopping():
                ray.get(control.stop.remote())  # the workers save and return
                asked = True

        pass_on_a_stop()  # asked before the start: the workers see it at their first step
        runner = threading.Thread(target=fit, name="ray-train", daemon=True)
        runner.start()
        try:
            while runner.is_alive():
                pass_on_a_stop()
                runner.join(POLL_S)
            if failure:
                raise failure[0]
            return ray.get(control.result.remote())
        finally:
            ray.kill(control)  # an actor is a process: one per run would pile up

    def close(self) -> None:
        """Leave the cluster (and stop the instance this executor started)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


class _RunControl:
    """The stop signal the workers poll, and rank 0's result."""

    def __init__(self) -> None:
        self._stop = False
        self._result: Any = None

    def stop(self) -> None:
        self._stop = True

    def stopping(self) -> bool:
        return self._stop

    def finish(self, result: Any) -> None:
        self._result = result

    def result(self) -> Any:
        return self._result


def _rank(config: dict[str, Any]) -> None:
    """One Ray Train worker: the task, with the stop signal polled from the control actor."""
    import ray
    import ray.train

    control = config["control"]
    result = config["task"](config["argument"], lambda: ray.get(control.stopping.remote()))
    if ray.train.get_context().get_world_rank() == 0:
        ray.get(control.finish.remote(result))
