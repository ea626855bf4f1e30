"""Bad input through the real CLI entry point: exit code 2, exactly one line on stderr, no traceback, at once.

Every case goes through `bsbench.cli.main` in-process (the `bsbench` fixture)
under a deadline (SIGALRM), so a case that hangs fails instead of blocking the
suite. The classes follow issue 9 section 3: numbers (NaN, inf, zero, negative,
huge, wrong types, for every numeric flag of every command), spec files,
replay lines, JSON bombs in every file bsbench reads, output paths checked
before any work, and strings from records shown as written. Faults that need a
process of their own (signals, remote code, memory) are in test_faults.py.

Run: python -m pytest -q tests/test_bad_inputs.py
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import typing
from pathlib import Path

import pytest

from bsbench.record import save_record
from bsbench.schedulers.registry import all_schedulers

try:
    from record_factory import make_record
except ImportError:
    from tests.record_factory import make_record

DEADLINE_S = 60  # generous on a loaded 2-core machine; a parse-time refusal takes milliseconds
SYNTH = ("-w", "synthetic", "--input-len", "8", "--output-len", "2", "-n", "2")
RUN = ("run", *SYNTH, "--quiet")
BOMB = "[" * 100_000 + "]" * 100_000
GIANT_INT = "1" * 5000  # over Python's int-from-string digit limit


@pytest.fixture(autouse=True)
def _deadline():
    """A hung case (the old `--batch-timeout nan`) fails after DEADLINE_S instead of hanging the suite."""

    def expired(_signum, _frame):
        raise TimeoutError(f"the case did not end within {DEADLINE_S} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(DEADLINE_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _refused(result, *needles: str) -> str:
    """Exit 2, one line starting 'bsbench: error: ', no traceback; the line holds every needle."""
    assert result.code == 2, (result.code, result.out[-500:], result.err[-2000:])
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err[-2000:]
    assert lines[0].startswith("bsbench: error: ") and "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------------------- numbers: every numeric flag

NONFINITE = ["nan", "NaN", "inf", "-inf", "1e999"]
JUNK = ["abc", "", "1,5", "0x10"]
NEG, ZERO, FRACTION = ["-1"], ["0"], ["1.5"]
HUGE_INT = ["99999999999999999999"]
COUNT = NONFINITE + JUNK + NEG + ZERO + FRACTION + HUGE_INT + ["1e14", "true"]  # counts and lengths >= 1
BOUND = NONFINITE + JUNK + NEG + FRACTION + HUGE_INT  # token bounds >= 0
POSITIVE = NONFINITE + JUNK + NEG + ZERO + ["1e300"]
SHARE = NONFINITE + JUNK + NEG + ["1.5", "2"]
SLO = ["nan", "inf", "-inf", "1e999", "0", "-5", "abc", "5ms", "5..1", "nan..5", "5..inf", "1e400..1e401", "..5"]

WORKLOAD_FLAGS: dict[str, list[str]] = {
    "--num-requests": COUNT,
    "--seed": NONFINITE + JUNK + NEG + FRACTION + HUGE_INT,
    "--rate": ["nan", "NaN", "-inf", "0", "-1", "abc", "", "1e999x"],  # inf itself is legal: all at t = 0
    "--burstiness": POSITIVE,
    "--cv": POSITIVE,
    "--min-prompt-len": BOUND,
    "--min-output-len": BOUND,
    "--filter-max-prompt": BOUND,
    "--filter-max-output": BOUND,
    "--filter-max-total": BOUND,
    "--max-prompt-len": COUNT,
    "--max-output-len": COUNT,
    "--ttft-slo": SLO,
    "--tpot-slo": SLO,
    "--e2e-slo": SLO,
    "--online-share": SHARE,
    "--time-scale": POSITIVE,
    "--input-len": COUNT,
    "--output-len": COUNT,
    "--range-ratio": NONFINITE + JUNK + NEG + ["1", "1.5"],
    "--arrival": ["weibull", "", "POISSON"],
    "--filter": ["bogus", ""],
    "--length-dist": ["pareto", ""],
}
RUN_FLAGS: dict[str, list[str]] = {
    "--kv-memory": ["nan", "inf", "-1", "0", "abc", "", "1e29TiB", "100000000000000000000000000000TiB", "2048TiB",
                    "0.1"],
    "--block-size": COUNT,
    "--threads": COUNT,
    "--weights-seed": NONFINITE + JUNK + NEG + FRACTION + HUGE_INT,
    "--percentiles": ["nan", "inf", "50,nan", "0", "100", "abc", "", "-5", "50,,inf"],
    "--device": ["tpu"],
    "--dtype": ["float8"],
    "--weights": ["random"],
}


def _scheduler_numeric_flags() -> list[tuple[str, type]]:
    """Every float and int field of every registered policy's options: each becomes a flag."""
    found: dict[str, type] = {}
    for cls in all_schedulers().values():
        hints = typing.get_type_hints(cls.Options)
        for f in dataclasses.fields(cls.Options):
            if hints[f.name] in (int, float) and not f.metadata.get("choices"):
                found["--" + f.name.replace("_", "-")] = hints[f.name]
    return sorted(found.items())


SCHEDULER_FLAGS: dict[str, list[str]] = {
    flag: (NONFINITE + JUNK + ["1e300"]) if kind is float else (JUNK + ["nan", "inf", "1.5", "1e3"] + HUGE_INT)
    for flag, kind in _scheduler_numeric_flags()
}


def _cases(table: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(flag, value) for flag, values in table.items() for value in values]


@pytest.mark.parametrize("flag, value", _cases(WORKLOAD_FLAGS))
def test_run_workload_flag_refused(bsbench, tmp_path, flag, value):
    _refused(bsbench(*RUN, "--out", tmp_path, flag, value), flag)


@pytest.mark.parametrize("flag, value", _cases(RUN_FLAGS))
def test_run_engine_flag_refused(bsbench, tmp_path, flag, value):
    _refused(bsbench(*RUN, "--out", tmp_path, flag, value), flag)


@pytest.mark.parametrize("flag, value", _cases(SCHEDULER_FLAGS))
def test_scheduler_flag_refused_at_parse_time(bsbench, tmp_path, flag, value):
    # any scheduler: NaN, inf and non-numbers are refused before the flag is matched to a policy
    _refused(bsbench(*RUN, "--out", tmp_path, flag, value), flag)


@pytest.mark.parametrize("flag, value", [(f, v) for f, v in _cases(WORKLOAD_FLAGS) if f in (
    "--num-requests", "--seed", "--rate", "--e2e-slo", "--online-share", "--input-len", "--time-scale")])
def test_workload_show_flag_refused(bsbench, flag, value):
    _refused(bsbench("workload", "show", *SYNTH, flag, value), flag)


SWEEP = ("sweep", "--schedulers", "continuous", *SYNTH, "--quiet")


@pytest.mark.parametrize("args", [
    ["--rates", "nan"], ["--rates", "0"], ["--rates", "-1"], ["--rates", "abc"], ["--rates", ""], ["--rates", ","],
    ["--rates", "1:16:x1"], ["--rates", "16:1:x2"], ["--rates", "1:inf:x2"], ["--rates", "1:1000000:+0.001"],
    ["--rates", "nan:4:x2"], ["--rates", "1", "--repeats", "0"], ["--rates", "1", "--repeats", "-1"],
    ["--rates", "1", "--repeats", "nan"], ["--rates", "1", "--repeats", "1000000"],
    ["--rates", "1", "--attainment", "nan"], ["--rates", "1", "--attainment", "inf"],
    ["--rates", "1", "--attainment", "1.5"], ["--rates", "1", "--attainment", "-0.1"],
    ["--rates", "1", "--rate", "4"],
])
def test_sweep_numbers_refused(bsbench, tmp_path, args):
    _refused(bsbench(*SWEEP, "--out", tmp_path, *args))


CAPACITY = ("capacity", *SYNTH, "--quiet")


@pytest.mark.parametrize("flag, value", _cases({
    "--attainment": ["nan", "inf", "0", "-1", "1.5", "abc"],
    "--start-rate": ["nan", "inf", "-inf", "0", "-1", "abc", "1e300"],
    "--max-rate": ["nan", "inf", "0", "-1", "abc"],
    "--tolerance": ["nan", "inf", "0", "-1", "abc", "", "nan%", "inf%", "-5%", "0%", "%", "1e999"],
}))
def test_capacity_numbers_refused(bsbench, tmp_path, flag, value):
    _refused(bsbench(*CAPACITY, "--out", tmp_path, flag, value), flag.lstrip("-"))


@pytest.mark.parametrize("flag, value", _cases({
    "--tolerance": ["nan", "inf", "-1", "1", "150%", "abc", "nan%", ""],
    "--ratio-tolerance": ["nan", "inf", "-5%"],
    "--time-tolerance": ["nan", "-inf", "2"],
}))
def test_gate_numbers_refused(bsbench, tmp_path, flag, value):
    _refused(bsbench("gate", tmp_path / "nothing", "--baseline", tmp_path / "b.json", flag, value), "tolerance")


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "abc", "1e300"])
def test_profile_predictor_sigma_refused(bsbench, value):
    _refused(bsbench("profile-predictor", *SYNTH, "--predictor", "noisy", "--predictor-sigma", value),
             "--predictor-sigma")


@pytest.mark.parametrize("args, needle", [
    (["--rate", "1e-300"], "arrival time"),  # arrivals past any clock: time.sleep would overflow
    (["--arrival", "gamma", "--rate", "1", "--burstiness", "1e-300"], "--burstiness"),
    (["-w", "mixed:synthetic=nan"], "mixed share"),
    (["-w", "mixed:synthetic=inf"], "mixed share"),
    (["-w", "mixed:synthetic=-1"], "mixed share"),
    (["-w", "mixed:synthetic"], "needs a share"),
    (["--input-len", "1000000", "-n", "1000000"], "token limit"),
])
def test_numbers_that_reach_the_workload_builder_are_refused(bsbench, tmp_path, args, needle):
    _refused(bsbench(*RUN, "--out", tmp_path, *args), needle)


# ----------------------------------------------------------------------------- spec files: wrong types

BASE_SPEC = {"source": '"synthetic"', "input_len": "8", "output_len": "2", "num_requests": "2"}
TABLE, ARRAY = "{ a = 1 }", "[1, 2, 3]"
NUMBER_BAD = [TABLE, ARRAY, '"x"', "true", "nan", "inf", "-inf"]
SPEC_CASES: dict[str, list[str]] = {
    "num_requests": NUMBER_BAD + ['"ten"', "0", "-1", "1.5", "1e14"],
    "seed": NUMBER_BAD + ["-1", "1.5"],
    "rate": [TABLE, ARRAY, "true", "nan", "-inf", "0", "-1", '"fast"'],
    "arrival": [TABLE, "5", '"weibull"'],
    "burstiness": NUMBER_BAD + ["0", "-1"],
    "cv": NUMBER_BAD + ["0"],
    "dataset_path": [TABLE, "5", ARRAY, '""'],
    "tokenizer": [TABLE, "5", '""'],
    "filter": [TABLE, "5", '"bogus"'],
    "filter_min_prompt": NUMBER_BAD + ["-1"],
    "filter_max_total": NUMBER_BAD + ["-1"],
    "max_prompt_len": NUMBER_BAD + ["0"],
    "max_output_len": NUMBER_BAD + ["0"],
    "ttft_slo": [TABLE, "true", "nan", "inf", "0", '"abc"', ARRAY, "[5, 1]", '["a", "b"]', "[[1], [2]]"],
    "e2e_slo": [TABLE, "nan", "-5", '"5..1"'],
    "online_share": NUMBER_BAD + ["1.5", "-0.5"],
    "strict": ['"yes"', "1", TABLE],
    "oversample": ['"no"', "0"],
    "time_scale": NUMBER_BAD + ["0", "-1"],
    "input_len": NUMBER_BAD + ["0", "-1"],
    "output_len": NUMBER_BAD + ["0"],
    "length_dist": [TABLE, "5", '"pareto"'],
    "range_ratio": NUMBER_BAD + ["1", "-0.1"],
    "std_ratio": NUMBER_BAD + ["-1"],
    "zipf_a": NUMBER_BAD + ["1", "0.5"],
    "name": [TABLE, "5", ARRAY],
    "description": [TABLE, "5"],
    "source": [TABLE, "5", '""'],
    "components": ["5", '"x"', "[1]", "{ sharegpt = 5 }"],
    "bogus_key": ["1"],
}


@pytest.mark.parametrize("key, value", _cases(SPEC_CASES))
def test_spec_value_of_the_wrong_kind_names_file_and_key(bsbench, tmp_path, key, value):
    spec = {**BASE_SPEC, key: value}
    path = tmp_path / "bad.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in spec.items()))
    _refused(bsbench("workload", "show", path), str(path), key)


def test_spec_component_value_names_the_component(bsbench, tmp_path):
    path = tmp_path / "mix.toml"
    path.write_text('source = "mixed:synthetic=1"\nnum_requests = 2\n[components.synthetic]\ninput_len = "big"\n')
    _refused(bsbench("workload", "show", path), "[components.synthetic]", "input_len")


@pytest.mark.parametrize("content, needle", [
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested"),  # tomllib recursion
    ("source = \n", "not valid TOML"),
    (b"\xff\xfe source", "UTF-8"),
])
def test_spec_file_that_cannot_be_read(bsbench, tmp_path, content, needle):
    path = tmp_path / "odd.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    _refused(bsbench("workload", "show", path), needle)


def test_spec_with_a_byte_order_mark_is_read(bsbench, tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff".encode() + b'source = "synthetic"\ninput_len = 8\noutput_len = 2\nnum_requests = 3\n')
    result = bsbench("workload", "show", path)
    assert result.code == 0, result.err
    assert "3 requests" in result.out


def test_spec_zero_is_not_replaced_by_a_default(bsbench, tmp_path):
    # std_ratio = 0 used to become 0.25 (`x or default`): normal lengths with no spread are all the mean
    from bsbench.workloads.build import build_workload

    wl = build_workload("synthetic", input_len=40, output_len=5, num_requests=30, length_dist="normal", std_ratio=0)
    assert {r.prompt_len for r in wl.requests} == {40}


# ----------------------------------------------------------------------------- replay lines

GOOD_LINE = {"id": "r0", "prompt_ids": [5, 6, 7], "output_len": 3, "arrival_s": 0.0}
# JSON lines holding a wrong value: the whole file is refused (workloads/replay.py's rule)
BAD_VALUE_LINES: list[tuple[str, str]] = [
    (json.dumps({**GOOD_LINE, "slo": 5}), "slo"),
    (json.dumps({**GOOD_LINE, "slo": "fast"}), "slo"),
    (json.dumps({**GOOD_LINE, "slo": {"e2e_ms": "fast"}}), "slo.e2e_ms"),
    (json.dumps({**GOOD_LINE, "slo": {"e2e_ms": "500"}}), "slo.e2e_ms"),
    (json.dumps({**GOOD_LINE, "slo": {"e2e_ms": -5}}), "slo.e2e_ms"),
    (json.dumps({**GOOD_LINE, "slo": {"e2e_ms": True}}), "slo.e2e_ms"),
    (json.dumps({**GOOD_LINE, "slo": {"e2e_ms": [1]}}), "slo.e2e_ms"),
    (json.dumps({**GOOD_LINE, "slo": {"e2e": 5}}), "unknown slo key"),
    (json.dumps({**GOOD_LINE, "slo": {"ttft_ms": 1}}).replace("1}", "NaN}"), "slo.ttft_ms"),
    (json.dumps({**GOOD_LINE, "slo": {"tpot_ms": 1}}).replace("1}", "Infinity}"), "slo.tpot_ms"),
    (json.dumps(GOOD_LINE).replace("0.0", "NaN"), "arrival_s"),
    (json.dumps(GOOD_LINE).replace("0.0", "Infinity"), "arrival_s"),
    (json.dumps(GOOD_LINE).replace("0.0", "-1"), "arrival_s"),
    (json.dumps(GOOD_LINE).replace("0.0", "1e300"), "arrival_s"),
    (json.dumps(GOOD_LINE).replace("0.0", '"0"'), "arrival_s"),
    (json.dumps({**GOOD_LINE, "output_len": 0}), "output_len"),
    (json.dumps({**GOOD_LINE, "output_len": 1.5}), "output_len"),
    (json.dumps({**GOOD_LINE, "output_len": True}), "output_len"),
    (json.dumps({**GOOD_LINE, "output_len": "3"}), "output_len"),
    (json.dumps({**GOOD_LINE, "output_len": 10**12}), "output_len"),
    (json.dumps({**GOOD_LINE, "prompt_ids": []}), "prompt_ids"),
    (json.dumps({**GOOD_LINE, "prompt_ids": [-1]}), "prompt_ids"),
    (json.dumps({**GOOD_LINE, "prompt_ids": ["a"]}), "prompt_ids"),
    (json.dumps({**GOOD_LINE, "prompt_ids": [True]}), "prompt_ids"),
    (json.dumps({**GOOD_LINE, "prompt_ids": [1.5]}), "prompt_ids"),
    (json.dumps({**GOOD_LINE, "prompt_ids": 5}), "prompt_ids"),
    (json.dumps({**GOOD_LINE, "id": {"a": 1}}), "id"),
    (json.dumps({**GOOD_LINE, "id": ""}), "id"),
    (json.dumps({k: v for k, v in GOOD_LINE.items() if k != "arrival_s"}), "missing arrival_s"),
    (json.dumps({**GOOD_LINE, "priority": "urgent"}), "priority"),
    (json.dumps({**GOOD_LINE, "source": 5}), "source"),
    (json.dumps([GOOD_LINE]), "JSON object"),
    (json.dumps({**GOOD_LINE, "output_len": 1e9}), "output_len"),
]
# lines that are not JSON (damage): counted and skipped, fatal with --strict
UNPARSABLE_LINES: list[tuple[str, str]] = [
    ('{"id": "r0", "prompt_ids": [' + GIANT_INT + "]}", "digits"),
    ('{"a": ' * 50_000 + "1" + "}" * 50_000, "nested"),
    ("{not json", "property name"),
    (json.dumps(GOOD_LINE)[:-9], "line 2"),  # cut off mid-write
]
BAD_LINES = BAD_VALUE_LINES + UNPARSABLE_LINES


@pytest.mark.parametrize("line, needle", BAD_LINES)
def test_replay_line_refused_with_strict(bsbench, tmp_path, line, needle):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({**GOOD_LINE, "id": "ok"}) + "\n" + line + "\n")
    _refused(bsbench("workload", "show", path, "--strict"), "line 2", needle)


@pytest.mark.parametrize("line, needle", BAD_VALUE_LINES[:6])
def test_replay_with_only_bad_lines_is_refused_before_any_run(bsbench, tmp_path, line, needle):
    # the string SLO once ran to the end and then lost the record: now it never reaches the engine
    path = tmp_path / "w.jsonl"
    path.write_text(line + "\n")
    _refused(bsbench("run", "-w", path, "--quiet", "--out", tmp_path / "out"), "line 1", needle)


@pytest.mark.parametrize("line, needle", BAD_VALUE_LINES)
def test_replay_line_with_a_wrong_value_refuses_the_file(bsbench, tmp_path, line, needle):
    """Issue 28: `slo` as a bare number, `e2e_ms` as a string, `output_len` 1e9 among good lines once
    exited 0 (the line skipped and counted); a wrong value is a user error for the whole file."""
    path = tmp_path / "w.jsonl"
    good = [json.dumps({**GOOD_LINE, "id": f"r{i}", "arrival_s": 0.1 * i}) for i in range(3)]
    path.write_text("\n".join(good + [line]) + "\n")
    _refused(bsbench("workload", "show", path), f"{path} line 4", needle)


def test_replay_unparsable_lines_are_counted_and_skipped(bsbench, tmp_path):
    from bsbench.workloads.build import load_workload

    path = tmp_path / "w.jsonl"
    lines = [json.dumps({**GOOD_LINE, "id": f"r{i}", "arrival_s": 0.1 * i}) for i in range(3)]
    path.write_text("\n".join(lines + [line for line, _ in UNPARSABLE_LINES]) + "\n")
    result = bsbench("workload", "show", path)
    assert result.code == 0, result.err
    assert "3 requests" in result.out
    report = load_workload(str(path)).load_report
    assert report["kept"] == 3 and report["malformed"] == len(UNPARSABLE_LINES)


def test_replay_with_a_hostile_sidecar_still_loads(bsbench, tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps(GOOD_LINE) + "\n")
    Path(str(path) + ".meta.json").write_text('{"name": ' + BOMB[:20000] + "}")
    result = bsbench("workload", "show", path)
    assert result.code == 0, result.err


# ----------------------------------------------------------------------------- JSON bombs in every file read


def _bomb_file(tmp_path: Path, name: str, text: str = BOMB) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text", [BOMB, '{"a": ' * 3000 + "1" + "}" * 3000, "[" + GIANT_INT + "]",
                                  '{"schema_version": 1, "requests": ' + "[" * 900 + "]" * 900 + "}"])
def test_compare_and_gate_refuse_bombs(bsbench, tmp_path, text):
    path = _bomb_file(tmp_path, "rec.json", text)
    _refused(bsbench("compare", path), str(path))
    _refused(bsbench("gate", path, "--baseline", tmp_path / "b.json"), str(path))
    good = tmp_path / "good"
    save_record(make_record("continuous"), good)
    _refused(bsbench("gate", good, "--baseline", path), str(path))


def test_bomb_inside_a_folder_of_records_is_skipped_with_a_note(bsbench, tmp_path):
    save_record(make_record("continuous"), tmp_path)
    _bomb_file(tmp_path, "zz-bomb.json")
    result = bsbench("compare", tmp_path)
    assert result.code == 0, result.err
    assert "zz-bomb.json" in result.err and "nested" in result.err


@pytest.mark.parametrize("source, name", [("sharegpt", "sg.json"), ("sharegpt", "sg.jsonl"),
                                          ("longbench", "lb.jsonl"), ("longbench", "lb.json")])
def test_dataset_made_only_of_a_bomb_is_refused(bsbench, tmp_path, source, name):
    path = _bomb_file(tmp_path, name, "[" + BOMB + "]" if name.endswith(".json") else BOMB + "\n")
    _refused(bsbench("workload", "show", source, "--dataset-path", path), "nested")


def test_longbench_bomb_line_is_skipped_not_a_crash(bsbench, tmp_path, longbench_jsonl):
    # LongBench used to go through pyarrow first, which segfaulted on such a line
    with longbench_jsonl.open("a") as handle:
        handle.write('{"input": ' * 50_000 + '"q"' + "}" * 50_000 + "\n")
    result = bsbench("workload", "show", "longbench", "--dataset-path", longbench_jsonl, "-n", "3",
                     "--filter", "none")
    assert result.code == 0, result.err
    assert "malformed (skipped)" in result.out


def test_sharegpt_with_a_byte_order_mark_has_records(bsbench, tmp_path, sharegpt_records):
    path = tmp_path / "bom.json"
    path.write_bytes("\ufeff".encode() + json.dumps(sharegpt_records).encode())
    result = bsbench("workload", "show", "sharegpt", "--dataset-path", path, "-n", "5", "--filter", "none")
    assert result.code == 0, result.err
    assert "5 requests" in result.out


def test_model_config_bomb_is_refused(bsbench, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    _bomb_file(folder, "config.json")
    _refused(bsbench(*RUN, "--out", tmp_path, "--model", folder, "--weights", "dummy"), "config.json")


# ----------------------------------------------------------------------------- output paths, before any work


@pytest.fixture
def forbid_work(monkeypatch):
    """Loading a workload, a model or records before the output check is the bug: make it fail loudly."""

    def started(*_args, **_kwargs):
        raise AssertionError("work started before the output path was checked")

    # their home modules (for lazy imports) and every command module that binds the name at import
    for target in ("bsbench.workloads.build.load_workload", "bsbench.backends.run.open_session",
                   "bsbench.record.read_records", "bsbench.record.io.read_records",
                   "bsbench.commands.run.open_session", "bsbench.commands.run.load_workload",
                   "bsbench.commands._workload_options.load_workload", "bsbench.commands.workload.load_workload",
                   *(f"bsbench.commands.{name}.read_records" for name in ("capacity", "compare", "demo", "gate",
                                                                          "sweep"))):
        monkeypatch.setattr(target, started)


def _read_only_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "afile"
    path.write_text("x")
    return path


WRITERS = {
    "run --out": lambda out: (*RUN, "--out", out),
    "sweep --out": lambda out: (*SWEEP, "--rates", "1", "--out", out),
    "capacity --out": lambda out: (*CAPACITY, "--out", out),
    "compare --plots": lambda out: ("compare", "records", "--plots", out),
}
FILE_WRITERS = {
    "gate --update --baseline": lambda out: ("gate", "records", "--baseline", out, "--update"),
    "compare --html": lambda out: ("compare", "records", "--html", out),
    "workload show --save": lambda out: ("workload", "show", *SYNTH, "--save", out),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("where", ["read-only", "under a file", "is a file", "deep under a file"])
def test_output_folder_checked_before_any_work(bsbench, tmp_path, forbid_work, writer, where):
    out = {"read-only": lambda: _read_only_dir(tmp_path) / "sub",
           "under a file": lambda: _file(tmp_path) / "sub",
           "is a file": lambda: _file(tmp_path),
           "deep under a file": lambda: _file(tmp_path) / "a" / "b" / "c"}[where]()
    _refused(bsbench(*WRITERS[writer](out)), writer.split()[-1])


@pytest.mark.parametrize("writer", sorted(FILE_WRITERS))
@pytest.mark.parametrize("where", ["read-only folder", "under a file", "is a folder", "read-only file"])
def test_output_file_checked_before_any_work(bsbench, tmp_path, forbid_work, writer, where):
    def read_only_file() -> Path:
        path = tmp_path / "ro.jsonl"
        path.write_text("x")
        path.chmod(0o444)
        return path

    def folder() -> Path:
        path = tmp_path / "dir.jsonl"
        path.mkdir()
        return path

    out = {"read-only folder": lambda: _read_only_dir(tmp_path) / "x.jsonl",
           "under a file": lambda: _file(tmp_path) / "x.jsonl",
           "is a folder": folder,
           "read-only file": read_only_file}[where]()
    _refused(bsbench(*FILE_WRITERS[writer](out)), writer.split()[-1])


def test_relative_model_path_with_a_slash_is_not_a_hub_id(bsbench, tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    _refused(bsbench(*RUN, "--model", "models/x"), "no such model folder", "models/x")
    _refused(bsbench(*RUN, "--model", "./nowhere/x"), "no such model folder")
    _refused(bsbench("workload", "show", *SYNTH, "--tokenizer", "models/tok"), "tokenizer not found")


# ----------------------------------------------------------------------------- strings shown as written

HOSTILE = ["[/x]", "[bold]x", "a\x1b]0;pwned\x07b", "=cmd|' /C calc'!A0", "x\x1b[2Jy"]


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_compare_shows_scheduler_names_as_written(bsbench, tmp_path, name, fmt):
    save_record(make_record(name), tmp_path)
    save_record(make_record("continuous"), tmp_path)
    result = bsbench("compare", tmp_path, "--format", fmt)
    assert result.code == 0, result.err
    assert "\x1b" not in result.out + result.err  # no terminal control sequence from a record gets through
    if fmt == "table" and name.startswith("["):
        assert name in result.out
    if fmt == "csv" and name.startswith("="):
        assert "'=cmd" in result.out and ",=cmd" not in result.out


def test_gate_and_html_show_scheduler_names_as_written(bsbench, tmp_path):
    runs = tmp_path / "runs"
    save_record(make_record("[/x]"), runs)
    save_record(make_record("continuous"), runs)
    assert bsbench("gate", runs, "--baseline", tmp_path / "b.json", "--update").code == 0
    result = bsbench("gate", runs, "--baseline", tmp_path / "b.json", "--show-all")
    assert result.code == 0, result.err
    assert "[/x]" in result.out
    assert bsbench("compare", runs, "--html", tmp_path / "r.html").code == 0


def test_workload_name_and_error_paths_shown_as_written(bsbench, tmp_path):
    spec = tmp_path / "[bold]x[red]y.toml"
    spec.write_text('source = "synthetic"\ninput_len = 8\noutput_len = 2\nnum_requests = 2\n')
    result = bsbench("workload", "show", spec)
    assert result.code == 0, result.err
    assert "[bold]x[red]y" in result.out
    line = _refused(bsbench("workload", "show", tmp_path / "a\x1b]0;pwned\x07.jsonl"))
    assert "\x1b" not in line and "\\x1b" in line


def test_no_numeric_flag_escapes_the_validation_layer():
    """Every number-typed option of every command goes through a value rule (values.py), not click's bare
    INT/FLOAT or ranges, which let NaN through (click.FloatRange(0, 1) accepts 'nan')."""
    import click

    from bsbench.cli import cli

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")
        else:
            for param in command.params:
                yield path, param

    bare = [f"{path} {param.opts[0]}" for path, param in walk(cli, "bsbench")
            if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType))]
    assert bare == []


def test_numeric_flags_still_accept_good_values(bsbench, tmp_path):
    """The layer refuses nonsense, not legitimate extremes: rate inf, share 0 and 1, a zero filter bound."""
    result = bsbench("workload", "show", *SYNTH, "--rate", "inf", "--online-share", "0", "--min-prompt-len", "0",
                     "--e2e-slo", "150000..300000", "--seed", "0")
    assert result.code == 0, result.err
    assert bsbench("workload", "show", *SYNTH, "--online-share", "1", "--rate", "0.001").code == 0


def test_the_output_check_creates_nothing(bsbench, tmp_path):
    target = tmp_path / "new" / "deeper"
    _refused(bsbench("run", "-w", tmp_path / "missing.jsonl", "--out", target), "not found")
    assert os.listdir(tmp_path) == []


EXECUTOR_CASES = [
    (("--executor", "ray"), "pip install -e '.[ray]'"),
    (("--workers", "2"), "needs --executor process or ray"),
    (("--executor", "process", "--workers", "0"), "--workers must be an integer >= 1"),
    (("--executor", "process", "--workers", "x"), "--workers must be an integer"),
    (("--executor", "process", "--ray-address", "auto"), "--ray-address applies to --executor ray"),
    (("--executor", "dask"), "--executor"),
]


@pytest.mark.parametrize("command", ["sweep", "capacity"])
@pytest.mark.parametrize(("args", "needle"), EXECUTOR_CASES, ids=[" ".join(a) for a, _ in EXECUTOR_CASES])
def test_executor_flags_refused(bsbench, tmp_path, command, args, needle):
    if args == ("--executor", "ray") and importlib.util.find_spec("ray") is not None:
        pytest.skip("Ray is installed: --executor ray is legal here")
    extra = ("--schedulers", "static", "--rates", "2") if command == "sweep" else ()
    _refused(bsbench(command, *SYNTH, *extra, "--backend", "sim", "--model", "llama2-13b", "--gpu", "a100-40gb",
                     "--out", tmp_path / "out", *args), needle)
    assert not (tmp_path / "out" / "runs").exists() or not any((tmp_path / "out" / "runs").iterdir())

