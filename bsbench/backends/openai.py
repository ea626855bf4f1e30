"""The `openai` backend: a remote OpenAI-compatible server decides and runs the steps with its own policy;
this process replays the workload open-loop (bsbench/openai_client) and times every token on its own clock.

Its session is opened per run by `openai_client.run_openai`: the served model asked of /v1/models (unless
given), the test request (strict again when the server refuses the vLLM-only fields), then the warm-up
requests. Its record part is `OpenAIPart`: the base URL (never the API key), the
served model and the endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bsbench.openai_client import ClientOptions, run_openai
from bsbench.progress import Progress
from bsbench.record import RunRecord
from bsbench.workloads.workload import Workload


@dataclass(slots=True)
class OpenAIBackend:
    options: ClientOptions
    kind: ClassVar[str] = "openai"

    def describe(self) -> str:
        how = f"at most {self.options.max_concurrency} in flight" if self.options.max_concurrency else "open loop"
        return f"{self.options.shown_url}, {how}, /v1/{self.options.endpoint}"

    def run(self, workload: Workload, *, out_dir: Path, record_tokens: bool, percentiles: tuple[float, ...],
            repeat: int, base_seed: int | None, progress: Progress,
            notify: Callable[[str], None] | None = None) -> RunRecord:
        """One replay of `workload`, its record saved in `out_dir` (InterruptedRun after a Ctrl-C); `notify`
        hears what changed before the run (the strict fallback)."""
        return run_openai(workload, self.options, out_dir=out_dir, record_tokens=record_tokens,
                          percentiles=percentiles, repeat=repeat, base_seed=base_seed, progress=progress,
                          notify=notify)
