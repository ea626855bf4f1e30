"""Will the model fit? Weights and KV cache estimated from the config before anything is allocated.

    weights = parameters (model_shape's count from the config) x dtype bytes
    KV      = the budget that will be allocated (--kv-memory, or the CPU default for this model)

compared with the memory available: on CPU the host's (MemAvailable, lowered
by a cgroup limit when the process runs in a container), on CUDA the device's
free memory (the default CUDA KV budget is what is left after the weights, so
only an explicit --kv-memory counts there). A model that does not fit is one
line naming the sizes, instead of the kernel's OOM killer or an allocator
traceback. Activations are not counted: the estimate refuses only what
cannot possibly fit.

The parameter count is `model_shape.ModelShape.num_params`: arithmetic over
the config, so even an absurd config is refused at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.units import format_bytes


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _host_available() -> int | None:
    """Bytes the host can still give this process: MemAvailable, lowered by a cgroup (v2 or v1) limit."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:
            found.append(max(limit - usage, 0))
    return min(found) if found else None


def available_memory(device: Any) -> tuple[int | None, str]:
    """(bytes available, what they are) for `device`; None when it cannot be known (the check is skipped)."""
    if str(device).startswith("cuda"):
        # lazy: torch is heavy
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free), f"free memory on {device}"
    return _host_available(), "available host memory"


def check_fits(name: str, params: int, dtype_bytes: int, device: Any, kv_bytes: int) -> None:
    """Raise a one-line BsbenchError when `params` weights + `kv_bytes` exceed the memory available on `device`."""
    weights = params * dtype_bytes
    need = weights + kv_bytes
    available, what = available_memory(device)
    if available is None or need <= available:
        return
    raise BsbenchError(
        f"model {name} does not fit: {format_bytes(weights)} of weights ({params / 1e9:.2f} B parameters x "
        f"{dtype_bytes} bytes) + {format_bytes(kv_bytes)} of KV cache = {format_bytes(need)}, but only "
        f"{format_bytes(available)} of {what}; use a smaller model, --dtype bfloat16, or a smaller --kv-memory"
    )
