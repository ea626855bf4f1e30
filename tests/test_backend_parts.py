"""One backend type: the factory is the only switch on --backend/--clock words, each kind opens its session and
owns its record part, and records written with the flat fields of schema versions 2-4 still read."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest

import bsbench
from bsbench.backends.cluster.backend import ClusterBackend
from bsbench.backends.config import RunConfig
from bsbench.backends.factory import backend_for
from bsbench.backends.real import RealBackend
from bsbench.backends.run import open_session, run_benchmark
from bsbench.backends.sim import SimulatedBackend
from bsbench.backends.virtual import VirtualTimeBackend
from bsbench.errors import BsbenchError
from bsbench.record import RecordConfig, read_record
from bsbench.record.backend_part import (
    ClusterPart,
    OpenAIPart,
    RealPart,
    SimPart,
    VirtualTimePart,
    part_from_flat,
    part_from_json,
)
from tests.record_factory import make_record


def _workload():
    from bsbench.workloads.build import load_workload

    return load_workload("smoke", {"num_requests": 3})


FLAT = {"scheduler": "continuous", "rate": 4.0, "model": "m", "device": "cpu"}


@pytest.mark.parametrize(("flat", "part", "backend_id"), [
    ({}, RealPart(), "real"),  # records from before the simulated backend: real, wall
    ({"backend": "real", "clock": "wall", "weights": "dummy", "weights_seed": 3}, RealPart("dummy", 3), "real"),
    ({"backend": "real", "clock": "virtual", "gpu": "a100-40gb", "cost_model": "uncalibrated", "weights": "dummy"},
     VirtualTimePart("a100-40gb", "uncalibrated", None, "dummy"), "real/virtual/a100-40gb/roofline"),
    ({"backend": "sim", "clock": "virtual", "gpu": "h100-sxm", "cost_model": "calibrated",
      "calibration_hash": "0123456789abcdef0123"},
     SimPart("h100-sxm", "calibrated", "0123456789abcdef0123"), "sim/virtual/h100-sxm/calibrated:0123456789abcdef"),
    ({"backend": "sim", "clock": "virtual", "gpu": "a100-40gb", "instances": "prefill=1,decode=2", "link": "pcie4-x16"},
     ClusterPart("a100-40gb", instances="prefill=1,decode=2", link="pcie4-x16"), "sim/virtual/a100-40gb/roofline"),
    ({"backend": "openai", "clock": "wall", "base_url": "http://h/v1", "served_model": "x", "endpoint": "chat"},
     OpenAIPart("http://h/v1", "x", "chat"), "openai"),
])
def test_flat_configs_of_older_records_become_typed_parts(flat, part, backend_id):
    config = RecordConfig.from_json({**FLAT, **flat})
    assert config.backend == part and config.backend_id() == backend_id
    assert not set(config.extra) & set(flat)  # the flat keys are the part's now, not unknown extras
    again = RecordConfig.from_json(json.loads(json.dumps(config.to_json())))
    assert again == config and again.to_json()["backend"]["kind"] == part.kind


def test_labels_say_what_produced_the_times():
    assert RealPart().timing_label() == "" and not RealPart().simulated
    assert SimPart("a100-40gb", "uncalibrated").timing_label() == \
        "simulated (sim, a100-40gb, uncalibrated cost model)"
    assert VirtualTimePart("a100-40gb", "uncalibrated").timing_label() == \
        "virtual time (real runner, tokens computed, a100-40gb, uncalibrated cost model)"
    assert OpenAIPart().times_text().startswith("measured (remote server")
    assert all(p.simulated for p in (SimPart(), ClusterPart(), VirtualTimePart()))


@pytest.mark.parametrize(("obj", "message"), [
    ({"kind": "quantum"}, "none of"),
    ({"kind": "sim", "base_url": "x"}, "unknown keys: base_url"),
    ({"kind": "sim", "gpu": 3}, "gpu must be a string"),
    ("sim", "must be an object"),
])
def test_bad_parts_are_refused(obj, message):
    with pytest.raises(ValueError, match=message):
        part_from_json(obj)


def test_bad_flat_fields_are_refused():
    with pytest.raises(ValueError, match="config.gpu must be a string"):
        part_from_flat({"backend": "sim", "gpu": 7})
    with pytest.raises(ValueError, match="none of real, sim, openai"):
        part_from_flat({"backend": "tpu"})


def test_a_version_4_record_reads_and_writes_back_as_version_5(tmp_path):
    record = make_record(backend=SimPart("a100-40gb", "uncalibrated").to_json())
    old = json.loads(json.dumps(record.to_json()))
    config = old["config"]
    del config["backend"]
    config.update(backend="sim", clock="virtual", gpu="a100-40gb", cost_model="uncalibrated")
    old["schema_version"] = 4
    path = tmp_path / "v4.json"
    path.write_text(json.dumps(old))
    back = read_record(path)
    assert back.config.backend == SimPart("a100-40gb", "uncalibrated") and back.schema_version == 4
    assert back.to_json()["config"]["backend"] == {"kind": "sim", "gpu": "a100-40gb", "cost_model": "uncalibrated"}


@pytest.mark.parametrize(("words", "kind"), [
    ({}, RealBackend),
    ({"clock": "virtual", "gpu": "a100-40gb"}, VirtualTimeBackend),
    ({"backend": "sim", "clock": "virtual", "gpu": "a100-40gb"}, SimulatedBackend),
    ({"backend": "sim", "clock": "virtual", "gpu": "a100-40gb", "scheduler": "distserve"}, ClusterBackend),
    ({"backend": "sim", "clock": "virtual", "gpu": "a100-40gb", "instances": "prefill=1,decode=1",
      "scheduler": "bucket"}, ClusterBackend),
])
def test_the_factory_picks_one_kind(words, kind):
    assert type(backend_for(RunConfig(**words))) is kind


def test_the_factory_refuses_what_no_backend_runs():
    with pytest.raises(BsbenchError, match="simulated backend only"):
        backend_for(RunConfig(scheduler="distserve"))
    with pytest.raises(BsbenchError, match="runs no session in this process"):
        backend_for(RunConfig(backend="openai"))


def test_each_simulated_kind_opens_a_session_that_carries_its_part():
    sim = open_session(RunConfig(backend="sim", clock="virtual", gpu="a100-40gb", model="llama2-13b"))
    assert sim.part == SimPart("a100-40gb", "roofline") and sim.describe().startswith("simulated a100-40gb")
    config = RunConfig(backend="sim", clock="virtual", gpu="a100-40gb", model="llama2-13b", scheduler="distserve",
                       link="pcie4-x16")
    cluster = open_session(config)
    assert cluster.part == sim.part and "KV over pcie4-x16" in cluster.describe()  # a session serves any scheduler
    record = run_benchmark(_workload(), config, progress=False, session=cluster, save=False)
    assert record.config.backend == ClusterPart("a100-40gb", "roofline", instances="prefill=1,decode=1",
                                                link="pcie4-x16")
    single = run_benchmark(_workload(), dataclasses.replace(config, scheduler="continuous", link=None),
                           progress=False, session=cluster, save=False)
    assert single.config.backend == sim.part


def test_the_real_kinds_open_a_session_that_carries_their_part():
    real = open_session(RunConfig(model="tiny", device="cpu", weights_seed=2))
    assert real.part == RealPart("dummy", 2) and real.describe() == "cpu" and not real.part.simulated
    virtual = open_session(RunConfig(model="tiny", device="cpu", clock="virtual", gpu="a100-40gb"))
    assert virtual.part == VirtualTimePart("a100-40gb", "roofline", None, "dummy", 0)
    assert "virtual clock" in virtual.describe() and virtual.clock is not None


# the strings the user types to choose a backend; only the factory and words.py may compare them
_WORDS = {"real", "sim", "openai", "wall", "virtual"}
_ALLOWED = {"backends/factory.py", "backends/words.py", "record/backend_part.py"}


def test_no_string_switch_on_backend_or_clock_outside_the_factory():
    package = Path(bsbench.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        where = str(path.relative_to(package))
        if where in _ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                names = {ast.unparse(s) for s in sides}
                consts = {s.value for s in sides if isinstance(s, ast.Constant)}
                consts |= {e.value for s in sides if isinstance(s, (ast.Tuple, ast.List, ast.Set))
                           for e in s.elts if isinstance(e, ast.Constant)}
                if consts & _WORDS and any("backend" in n or "clock" in n for n in names):
                    found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
