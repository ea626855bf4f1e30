"""The demo's experiment: the four single-instance policies side by side on one paper-scale simulated setting.

It is a sweep of one rate and one seed (`run_sweep`): every policy replays the identical ShareGPT request
list on Llama-2-13B on a simulated A100-40GB (the roofline cost model, a virtual clock), so the figures are
deterministic and paired. Records go to OUT/runs/ and the grid to OUT/sweep_summary.json; running the same
demo again reuses the finished records (a sweep resumes), and `bsbench compare OUT/runs` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bsbench.backends.config import RunConfig
from bsbench.backends.record_build import planned_record_config
from bsbench.backends.run import session_for
from bsbench.experiments.executors.engine_task import EngineTask
from bsbench.experiments.sweep import SweepPlan, SweepResult, run_sweep
from bsbench.experiments.sweep_progress import SweepWatch
from bsbench.progress import Progress
from bsbench.record import RecordConfig
from bsbench.workloads.build import load_workload

DEMO_SCHEDULERS = ("static", "continuous", "uellm", "bucket")


@dataclass(slots=True, frozen=True)
class DemoSetting:
    """What the demo runs. The defaults put the policies apart: at 2 req/s continuous batching keeps almost
    every request within its SLOs, bucket three in four, uellm a fifth and static (padded batches of 8) almost
    none; bucket falls behind the arrivals from about 3 req/s, continuous from about 4."""

    rate: float = 2.0
    num_requests: int = 400
    seed: int = 0
    workload: str = "sharegpt-vllm"
    model: str = "llama2-13b"
    gpu: str = "a100-40gb"
    ttft_slo_ms: float = 5_000.0
    e2e_slo_ms: float = 30_000.0

    def workload_overrides(self) -> dict[str, Any]:
        """load_workload's overrides of the demo (its rate and seed are the sweep's)."""
        return {"num_requests": self.num_requests, "rate": self.rate, "seed": self.seed,
                "ttft_slo": self.ttft_slo_ms, "e2e_slo": self.e2e_slo_ms}

    def run_config(self, out_dir: Path) -> RunConfig:
        return RunConfig(model=self.model, backend="sim", clock="virtual", gpu=self.gpu, out_dir=out_dir)


def run_demo(setting: DemoSetting, out_dir: Path, progress: Progress) -> SweepResult:
    """Run (or resume) the demo's four runs under OUT; their records are under OUT/runs."""
    config = setting.run_config(out_dir)
    session = session_for(config, progress)
    task = EngineTask(config, {name: {} for name in DEMO_SCHEDULERS}, setting.seed)
    plan = SweepPlan(list(DEMO_SCHEDULERS), [setting.rate], [setting.seed], backend=session.backend_id())

    def make_workload(rate: float, seed: int) -> Any:
        with progress.task("loading the workload"):
            return load_workload(setting.workload, {**setting.workload_overrides(), "rate": rate, "seed": seed})

    def config_of(name: str, workload: Any, rate: float, seed: int) -> RecordConfig:
        return planned_record_config(workload, task.config_for(name, seed), session)

    with progress.task(f"{session.timing_label()}: demo", total=plan.size, unit="runs") as shown:
        return run_sweep(
            plan,
            make_workload=make_workload,
            run_one=task,
            out_dir=out_dir,
            config_of=config_of,
            watch=SweepWatch(shown),
            extra_summary={"workload": setting.workload, "workload_overrides": setting.workload_overrides(),
                           "model": setting.model, "timing": session.timing_label(), "demo": True},
        )
