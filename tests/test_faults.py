"""Faults beyond a bad flag: SIGTERM mid-run, a capacity search with a tiny tolerance, code shipped in a
checkpoint or tokenizer folder, a model too big for memory, an --out path full of markup. (An unwritable
predictor cache is refused: tests/test_predictor.py.)"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig

from bsbench.errors import BsbenchError
from bsbench.experiments.capacity import find_capacity
from bsbench.interrupts import EXIT_TERMINATED, Terminated, sigterm_as_interrupt
from bsbench.model.loader import load_model
from bsbench.record import EndKind, Outcome, read_record
from tests.run_process import start_run, wait_until_a_request_ends

SYNTH = ["-w", "synthetic", "--input-len", "8", "--output-len", "2", "-n", "2"]


def _bsbench_process(*args: str, cwd: Path | None = None, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bsbench", *map(str, args)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, **kwargs)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bsbench: error: ") and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


# ----------------------------------------------------------------------------- signals


def test_sigterm_mid_run_writes_an_incomplete_record_and_exits_143(tmp_path):
    """CI cancellation, docker stop and timeout send SIGTERM: the Ctrl-C path, record kept, exit 143."""
    proc = start_run("-w", "synthetic", "--input-len", "16", "--output-len", "4", "-n", "12",
                     "--rate", "1", "--arrival", "constant", "--out", tmp_path)
    wait_until_a_request_ends(proc, 12)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_TERMINATED == 143, err
    assert "Traceback" not in err
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 1, (out, err)
    record = read_record(files[0])
    assert record.complete is False
    summary = record.summary
    assert summary["completed"] + summary["failed"] + summary["rejected"] == summary["num_requests"] == 12
    assert summary["failed"] >= 1  # those still to come when the signal arrived
    assert {r.reason.kind for r in record.requests if r.status is Outcome.FAILED} == {EndKind.INTERRUPTED}


def test_sigterm_is_an_interrupt_once_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt() as seen:
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here, at once
        os.kill(os.getpid(), signal.SIGTERM)  # a second one while the record is written: ignored
        time.sleep(0.05)
    assert seen.terminated and seen.exit_code(130) == 143 and seen.exit_code(2) == 2
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_before_the_run_exits_143_with_one_line(bsbench, tmp_path, monkeypatch):
    def terminated_while_loading(*_args, **_kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    # Patched on the backend class, not a module's `open_session` name: `commands/run.py` binds that name at
    # import, so patching `bsbench.backends.run.open_session` missed the call once the command opened the
    # session itself (the run then finished: exit 0). Every path to the model load goes through this method.
    from bsbench.backends.real import RealBackend

    monkeypatch.setattr(RealBackend, "open_session", terminated_while_loading)
    result = bsbench("run", *SYNTH, "--quiet", "--out", tmp_path)
    assert result.code == 143
    assert result.err.strip() == "bsbench: terminated"


# ----------------------------------------------------------------------------- capacity


@pytest.mark.parametrize("tol, relative", [(1e-300, True), (1e-300, False), (5e-324, False)])
def test_bisection_with_a_tiny_tolerance_ends(tol, relative):
    """The midpoint of two adjacent floats is one of them: the search stops there instead of looping."""
    def expired(_signum, _frame):
        raise TimeoutError("the capacity search did not end")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(30)
    try:
        result = find_capacity(lambda rate: 1.0 if rate <= math.pi else 0.0, target=0.8, start_rate=1.0,
                               tol=tol, max_rate=64, relative=relative)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    lo, hi = result.bracket
    assert lo == result.rate <= math.pi < hi
    assert hi == math.nextafter(lo, math.inf)  # as narrow as floats allow
    rates = [p.rate for p in result.probes]
    assert len(rates) == len(set(rates)) < 100


# ----------------------------------------------------------------------------- code shipped with a checkpoint

_EVIL = """import pathlib
pathlib.Path({marker!r}).write_text("remote code ran")
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
class EvilConfig(LlamaConfig):
    model_type = "bsbench-evil"
class EvilModel(LlamaForCausalLM):
    config_class = EvilConfig
class EvilTokenizer(PreTrainedTokenizerFast):
    pass
"""


def _small_llama(**extra) -> dict:
    config = LlamaConfig(vocab_size=32000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256).to_dict()
    config.update(extra)
    return config


def _evil_folder(tmp_path: Path, config: dict | None = None, tokenizer_config: dict | None = None) -> tuple[Path, Path]:
    folder, marker = tmp_path / "ckpt", tmp_path / "MARKER"
    folder.mkdir()
    (folder / "evil.py").write_text(_EVIL.format(marker=str(marker)))
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    if tokenizer_config is not None:
        shipped = Path(__file__).resolve().parents[1] / "bsbench" / "data" / "tokenizer" / "tokenizer.json"
        (folder / "tokenizer.json").write_bytes(shipped.read_bytes())
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder, marker


AUTO_MAP = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}


def test_checkpoint_with_custom_code_is_refused_without_running_or_asking(tmp_path):
    folder, marker = _evil_folder(tmp_path, _small_llama(model_type="bsbench-evil", auto_map=AUTO_MAP))
    proc = _bsbench_process("run", *SYNTH, "--quiet", "--model", folder, "--weights", "dummy", "--out", tmp_path,
                            env={"HF_MODULES_CACHE": str(tmp_path / "modules")})
    _out, err = proc.communicate(input="y\ny\ny\n", timeout=180)  # a prompt would read "y" and run the code
    assert not marker.exists()
    assert proc.returncode == 2
    assert "bsbench-evil" in _one_line(err)
    assert "Do you wish to run the custom code" not in err


def test_supported_checkpoint_with_an_auto_map_loads_the_standard_class(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder, marker = _evil_folder(tmp_path, _small_llama(auto_map=AUTO_MAP))
    model, info = load_model(str(folder), "dummy", "cpu", "float32")
    assert type(model).__name__ == "LlamaForCausalLM" and info.num_layers == 2
    assert not marker.exists()


def test_tokenizer_with_custom_code_is_not_run_nor_asked_about(tmp_path):
    folder, marker = _evil_folder(tmp_path, tokenizer_config={
        "tokenizer_class": "EvilTokenizer", "auto_map": {"AutoTokenizer": ["evil.EvilTokenizer", None]}})
    proc = _bsbench_process("workload", "show", *SYNTH, "--tokenizer", folder,
                            env={"HF_MODULES_CACHE": str(tmp_path / "modules")})
    _out, err = proc.communicate(input="y\ny\ny\n", timeout=180)
    assert not marker.exists()
    assert "Do you wish to run the custom code" not in err
    if proc.returncode != 0:  # refused (the class is unknown without its code): one line
        assert proc.returncode == 2
        _one_line(err)


# ----------------------------------------------------------------------------- models that do not fit


# the parameter count behind the estimate is model_shape's, checked against built models in test_sim_model_shape


def test_model_too_big_for_host_memory_is_refused_before_allocation(bsbench, tmp_path, monkeypatch):
    """llama2-7b in fp32 (25.1 GiB of weights + 16 GiB default KV) on a host with 20 GiB available."""
    monkeypatch.setattr("bsbench.model.memory_fit._host_available", lambda: 20 << 30)

    class NoAllocation:
        @staticmethod
        def from_config(*_args, **_kwargs):
            raise AssertionError("weights were allocated before the memory check")

    monkeypatch.setattr("bsbench.model.loader.AutoModelForCausalLM", NoAllocation)
    result = bsbench("run", *SYNTH, "--quiet", "--out", tmp_path, "--model", "llama2-7b", "--device", "cpu")
    assert result.code == 2, result.err
    line = _one_line(result.err)
    assert "llama2-7b" in line and "25.1 GiB of weights" in line and "16.0 GiB of KV" in line and "20.0 GiB" in line
    with pytest.raises(AssertionError, match="weights were allocated"):  # 12.6 GiB + 1 GiB fits: it goes on
        bsbench("run", *SYNTH, "--quiet", "--out", tmp_path, "--model", "llama2-7b", "--device", "cpu",
                "--dtype", "bfloat16", "--kv-memory", "1GiB")


def test_kv_budget_beyond_any_memory_is_refused(bsbench, tmp_path):
    result = bsbench("run", *SYNTH, "--quiet", "--out", tmp_path, "--device", "cpu", "--kv-memory", "900TiB")
    assert result.code == 2
    assert "900.0 TiB of KV cache" in _one_line(result.err)


def test_absurd_checkpoint_config_is_refused_in_a_fresh_process(tmp_path):
    folder = tmp_path / "huge"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_small_llama(hidden_size=1 << 40, num_attention_heads=1 << 10)))
    proc = _bsbench_process("run", *SYNTH, "--quiet", "--model", folder, "--weights", "dummy", "--device", "cpu",
                            "--out", tmp_path)
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == 2
    assert "does not fit" in _one_line(err)


def test_malformed_sizes_in_a_checkpoint_config_are_one_line(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_small_llama(num_hidden_layers="many")))
    with pytest.raises(BsbenchError):
        load_model(str(folder), "dummy", "cpu")


@pytest.mark.gpu
def test_model_too_big_for_the_gpu_is_refused():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(BsbenchError, match="free memory on cuda"):
        load_model("llama2-13b", "dummy", "cuda", "float32", kv_bytes=200 << 30)


# ----------------------------------------------------------------------------- an --out path full of markup


def test_out_path_with_markup_runs_and_prints_it_as_written(bsbench, tmp_path):
    out = tmp_path / "[/x]" / "[bold]runs"
    result = bsbench("run", *SYNTH, "--quiet", "--out", out)
    assert result.code == 0, result.err
    files = list(out.glob("*.json"))
    assert len(files) == 1
    assert f"record: {files[0]}" in result.out.replace("\n", "")
