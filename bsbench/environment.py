"""What a run ran on: versions, platform, device name, and GPU memory/utilisation via NVML.

Nothing here fails: without a GPU, without torch or without NVML the GPU keys
are simply absent. `device_name` is the name reports and gates compare
("NVIDIA H100 80GB HBM3", or the CPU model for CPU runs).
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from importlib import metadata
from typing import Any

PACKAGES = ("bsbench", "torch", "transformers", "tokenizers", "numpy", "pandas", "datasets",
            "click", "rich", "matplotlib", "nvidia-ml-py")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _cuda_index(device: str) -> int | None:
    """'cuda' -> 0, 'cuda:1' -> 1, anything else -> None."""
    if not device.startswith("cuda"):
        return None
    _, _, idx = device.partition(":")
    return int(idx) if idx.isdigit() else 0


def _nvml_index(cuda_index: int) -> int:
    """Map a CUDA ordinal to an NVML index through CUDA_VISIBLE_DEVICES when it lists integers."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    parts = [p.strip() for p in visible.split(",") if p.strip()]
    if parts and all(p.isdigit() for p in parts) and cuda_index < len(parts):
        return int(parts[cuda_index])
    return cuda_index


def _nvml_handle(cuda_index: int) -> Any | None:
    """An initialised NVML handle for the device, or None when NVML is unavailable."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(_nvml_index(cuda_index))
    except Exception:  # no library, no driver, no such device: no GPU keys
        return None


def _to_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _torch_gpu(cuda_index: int) -> dict[str, Any]:
    try:
        # lazy: torch is heavy
        import torch

        if not torch.cuda.is_available():
            return {}
        props = torch.cuda.get_device_properties(cuda_index)
        return {
            "gpu_name": torch.cuda.get_device_name(cuda_index),
            "gpu_memory_total_bytes": int(props.total_memory),
            "cuda_version": torch.version.cuda,
            "gpu_capability": f"{props.major}.{props.minor}",
        }
    except Exception:
        return {}


def _nvml_gpu(cuda_index: int) -> dict[str, Any]:
    handle = _nvml_handle(cuda_index)
    if handle is None:
        return {}
    import pynvml  # type: ignore[import-not-found]

    out: dict[str, Any] = {}
    try:
        out["gpu_name"] = _to_str(pynvml.nvmlDeviceGetName(handle))
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        out["gpu_memory_total_bytes"] = int(mem.total)
        out["gpu_memory_used_bytes"] = int(mem.used)
        out["gpu_utilization_pct"] = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        out["gpu_driver_version"] = _to_str(pynvml.nvmlSystemGetDriverVersion())
    except Exception:
        pass
    return out


def capture_environment(device: str) -> dict[str, Any]:
    """Versions, platform and device description for the run record. Never raises."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "cpu_name": cpu_name(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "device": device,
    }
    index = _cuda_index(device)
    if index is None:
        env["device_name"] = env["cpu_name"]
        return env
    gpu = _torch_gpu(index)
    gpu.update({k: v for k, v in _nvml_gpu(index).items() if v is not None})
    env.update(gpu)
    env["device_name"] = gpu.get("gpu_name", device)
    return env


class GpuSampler:
    """Samples GPU utilisation and memory in a daemon thread while a run goes on.

    `start()` begins sampling every `interval_s`; `stop()` ends it and returns
    {gpu_util_mean_pct, gpu_util_max_pct, gpu_mem_used_mean_bytes,
    gpu_mem_used_max_bytes, gpu_samples, gpu_sample_interval_s}. Without NVML or
    for a non-CUDA device it is a no-op and `stop()` returns {}.
    """

    def __init__(self, device: str = "cuda", interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        index = _cuda_index(device)
        self._handle = _nvml_handle(index) if index is not None else None
        self._util: list[float] = []
        self._mem: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._handle is not None

    def _sample(self) -> None:
        import pynvml  # type: ignore[import-not-found]

        try:
            self._util.append(float(pynvml.nvmlDeviceGetUtilizationRates(self._handle).gpu))
            self._mem.append(int(pynvml.nvmlDeviceGetMemoryInfo(self._handle).used))
        except Exception:
            pass

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def start(self) -> GpuSampler:
        if self._handle is not None and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="bsbench-gpu-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        if self._thread is None:
            return {}
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._thread = None
        if not self._util and not self._mem:
            return {}
        out: dict[str, Any] = {"gpu_samples": len(self._util), "gpu_sample_interval_s": self.interval_s}
        if self._util:
            out["gpu_util_mean_pct"] = sum(self._util) / len(self._util)
            out["gpu_util_max_pct"] = max(self._util)
        if self._mem:
            out["gpu_mem_used_mean_bytes"] = sum(self._mem) / len(self._mem)
            out["gpu_mem_used_max_bytes"] = max(self._mem)
        return out
