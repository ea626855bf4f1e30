"""The Ray executor (optional extra: pip install -e '.[ray]'): one Ray task per run key, on a local Ray instance
or the cluster at --ray-address (auto | HOST:PORT).

Each task asks for one GPU (num_gpus=1) when the runs are real-backend runs on CUDA, else for one CPU. Before
anything is submitted the cluster's resources are read: a GPU run on a cluster with no GPU is a one-line error,
never a task waiting forever. Ray's own retries are off (max_retries=0): slots.run_on_slots retries once and
counts it, as for the process pool. The workers need bsbench importable (installed on every node); records
come back to the driver as task results, so no shared filesystem is needed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.experiments.executors.base import Finished, Outcomes, RunOne, RunTask, Watch, execute
from bsbench.experiments.executors.slots import run_on_slots

INSTALL = "pip install -e '.[ray]'"


def _ray() -> Any:
    try:
        # lazy: ray is heavy
        import ray
    except ImportError:
        raise BsbenchError(f"--executor ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


@dataclass(slots=True)
class RayPool:
    """slots.Pool over Ray tasks; `resources` is what one task asks for."""

    resources: dict[str, float]
    _remote: Any = None
    _submitted: set[Any] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._remote = _ray().remote(execute).options(max_retries=0, **self.resources)

    def submit(self, run_one: RunOne, task: RunTask) -> Hashable:
        ref = self._remote.remote(run_one, task)
        self._submitted.add(ref)
        return ref

    def wait_any(self, handles: Sequence[Hashable]) -> list[Hashable]:
        ready, _ = _ray().wait(list(handles), num_returns=1)
        return list(ready)

    def result(self, handle: Hashable) -> Finished:
        ray = _ray()
        self._submitted.discard(handle)
        try:
            return ray.get(handle)
        except ray.exceptions.RayTaskError as exc:  # the run's own exception, wrapped: raise the original
            cause = getattr(exc, "cause", None)
            raise (cause if isinstance(cause, Exception) else exc) from None

    def crashed(self, exc: BaseException) -> str | None:
        ray = _ray()
        dead = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OwnerDiedError)
        return "the Ray worker died mid-run" if isinstance(exc, dead) else None

    def rebuild(self, handles: Sequence[Hashable]) -> None:
        pass  # Ray starts new workers itself

    def stop(self) -> None:
        ray = _ray()
        for ref in self._submitted:
            ray.cancel(ref, force=True)
        self._submitted.clear()

    def close(self) -> None:
        pass


@dataclass(slots=True)
class RayExecutor:
    workers: int
    resources: dict[str, float]
    name: str = "ray"

    @classmethod
    def connect(cls, address: str | None, workers: int | None, gpu_tasks: bool) -> RayExecutor:
        """Join the cluster at `address` (None: start a local instance), check it can run a task, and size the
        slots: `workers`, else the cluster's GPUs (gpu_tasks) or CPUs."""
        ray = _ray()
        try:
            if not ray.is_initialized():
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            available = ray.cluster_resources()
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BsbenchError(f"cannot reach the Ray cluster at {address or 'a new local instance'}: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        need = "GPU" if gpu_tasks else "CPU"
        have = int(available.get(need, 0))
        if have < 1:
            raise BsbenchError(f"the Ray cluster at {address or 'localhost'} has no {need}; these runs need one "
                               f"{need} per task" + (" (use --device cpu or the sim backend)" if gpu_tasks else ""))
        return cls(workers or have, {"num_gpus": 1} if gpu_tasks else {"num_cpus": 1})

    def run(self, tasks: Sequence[RunTask], run_one: RunOne, watch: Watch | None = None) -> Outcomes:
        return run_on_slots(RayPool(self.resources), self.workers, tasks, run_one, watch)

    def close(self) -> None:
        pass  # the Ray instance outlives the command only when it was joined (--ray-address); a local one ends with it
