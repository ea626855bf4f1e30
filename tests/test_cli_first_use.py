"""What a new user meets first: fast start-up, errors before banners, honest data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "pandas", "datasets", "matplotlib")


def _modules_after(*argv: str) -> set[str]:
    """The heavy modules imported by `bsbench ARGV` in a fresh interpreter."""
    code = ("import sys\nfrom bsbench.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print('heavy:', *(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    last = done.stderr.strip().splitlines()[-1].split()
    assert last[0] == "heavy:", done.stderr
    return set(last[1:])


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["sweep", "--help"], ["compare", "--help"],
                                  ["profile-predictor", "--help"], ["run", "--scheduler", "nope"]])
def test_help_and_early_errors_import_no_heavy_library(argv):
    assert _modules_after(*argv) == set()


def test_workload_show_needs_neither_torch_nor_pandas():
    assert _modules_after("workload", "show", "smoke") == set()


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "nope"], "unknown scheduler 'nope'"),
    (["--scheduler", "static", "--max-num-seqs", "4"], "--max-num-seqs does not apply to scheduler 'static'"),
    (["--workload", "synthetic", "--input-len", "5000", "--output-len", "8", "-n", "2"], "context of 4096"),
])
def test_errors_come_before_the_run_banner(bsbench, tmp_path, args, message):
    """Not --quiet: the banner (stdout) used to be printed before the scheduler was even looked up."""
    result = bsbench("run", "-w", "smoke", "-n", "2", "--out", tmp_path, *args)
    assert result.code == 2
    assert result.out == ""
    assert message in result.err.strip().splitlines()[-1]
    assert not any(tmp_path.iterdir())


def test_workload_show_says_the_default_longbench_data_is_sharegpt_derived(bsbench):
    result = bsbench("workload", "show", "longbench", "-n", "2")
    assert result.code == 0, result.err
    text = " ".join(result.out.split())
    assert "ShareGPT conversations, NOT LongBench itself" in text
    assert "data: " in text and "longbench-sample.jsonl" in text
