"""The one progress implementation: lines in non-terminal output, silence when asked, sane rates."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from bsbench.backends.run import _engine_progress
from bsbench.predictor.learned import Example, TrainConfig, source_examples, train
from bsbench.progress import INTERVAL_ENV, Progress, rate_text
from bsbench.workloads.tokenizer import load_tokenizer


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def _plain(interval_s: float = 0.0) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress(interval_s=interval_s, terminal=False, stream=stream), stream


def test_non_terminal_output_gets_one_line_per_due_update_and_a_last_line():
    progress, stream = _plain(interval_s=0.0)
    with progress.task("running", total=3, unit="requests") as task:
        for done in (1, 2, 3):
            task.update(done, detail=f"{done} tok/s")
    lines = _lines(stream)
    assert lines[:3] == [f"running: {d}/3 requests, {d} tok/s, 0 s" for d in (1, 2, 3)]
    assert lines[3].startswith("running: 3/3 requests, 3 tok/s, done in ") and len(lines) == 4


def test_lines_are_rate_limited_to_the_interval():
    progress, stream = _plain(interval_s=60.0)
    with progress.task("running", total=1000, unit="requests") as task:
        for done in range(1000):
            task.update(done)
    assert _lines(stream) == []  # far shorter than the interval and than the 2 s worth reporting


def test_a_task_that_never_updates_still_reports_from_the_timer():
    progress, stream = _plain(interval_s=0.05)
    with progress.task("loading model tiny"):
        time.sleep(0.5)
    lines = _lines(stream)
    assert len(lines) >= 3, lines  # timer lines, then the last one
    assert all(line.startswith("loading model tiny: ") for line in lines)
    assert lines[-1].startswith("loading model tiny: done in ")


def test_a_task_ended_by_an_error_writes_no_last_line():
    progress, stream = _plain(interval_s=0.0)
    with pytest.raises(ValueError), progress.task("loading model x"):
        raise ValueError("no such model")
    assert _lines(stream) == []


def test_disabled_progress_writes_nothing():
    stream = io.StringIO()
    progress = Progress(enabled=False, interval_s=0.0, terminal=False, stream=stream)
    with progress.task("running", total=2, unit="requests") as task:
        task.update(1)
        task.advance()
        time.sleep(0.05)
    assert stream.getvalue() == "" and task.done == 2


def test_a_terminal_gets_a_transient_display_not_log_lines():
    stream = io.StringIO()
    progress = Progress(interval_s=0.0, terminal=True, stream=stream)
    with progress.task("running", total=2, unit="requests") as task:
        task.update(1)
    assert "running: 1/2" not in stream.getvalue()  # no log-style line: rich drew (and removed) a bar
    assert progress._live is None  # the display is stopped with the last task


def test_rates_over_a_too_short_window_are_not_shown():
    assert rate_text(1, 1e-9, "tok/s") == ""
    assert rate_text(100, 0.5, "tok/s") == ""
    assert rate_text(100, 2.0, "tok/s") == "50 tok/s"


def test_the_first_engine_update_shows_no_absurd_token_rate():
    """The run bar's first update showed 1,000,000,000 tok/s (a division by a 1e-9 floor)."""
    progress, stream = _plain(interval_s=0.0)
    with progress.task("continuous @ inf req/s", total=10, unit="requests") as task:
        _engine_progress(task)(0, 10, 1)
        first = _lines(stream)[0]
        task._start -= 4.0  # as if the run had been going for 4 s
        _engine_progress(task)(2, 10, 400)
    assert first == "continuous @ inf req/s: 0/10 requests, 0 s"
    assert "100 tok/s" in _lines(stream)[1]


def test_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "0.25")
    assert Progress().interval_s == 0.25
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    assert Progress().interval_s == 5.0


def test_predictor_training_reports_its_epochs():
    examples = [Example(tuple(range(4 + i % 7, 12 + i % 9)), 8 + 40 * (i % 5)) for i in range(60)]
    cfg = TrainConfig(epochs=3, folds=2, buckets=256, dim=4, hidden=8, batch_size=16)
    progress, stream = _plain(interval_s=0.0)
    train(examples, cfg, seed=0, progress=progress)
    lines = _lines(stream)
    label = "learned predictor: training on 60 records (2 folds)"
    assert [line.split(", ")[0] for line in lines[:6]] == [f"{label}: {k}/6 epochs" for k in range(1, 7)]
    assert lines[-1].startswith(f"{label}: 6/6 epochs, held-out evaluation, done in ")


def test_predictor_data_tokenising_reports_records(sharegpt_json):
    progress, stream = _plain(interval_s=0.0)
    examples, counts = source_examples(str(sharegpt_json), load_tokenizer(None), TrainConfig(), progress)
    lines = _lines(stream)
    assert lines[-1].startswith("learned predictor: tokenising its training data: 60/60 records, done in ")
    assert counts["kept"] == len(examples) > 0


def test_run_prints_progress_lines_when_stderr_is_not_a_terminal(bsbench, tmp_path: Path, monkeypatch):
    """In process (the bsbench fixture captures stderr: not a terminal), which sees what a subprocess's pipe
    would without paying a second interpreter's torch import."""
    monkeypatch.setenv(INTERVAL_ENV, "0")
    args = ["run", "-w", "smoke", "-n", "4", "--max-output-len", "4", "--threads", "1", "--out", tmp_path]
    shown = bsbench(*args)
    assert shown.code == 0, shown.err
    err = shown.err.splitlines()
    assert any(line.startswith("loading the workload: done in ") for line in err), err
    assert any(line.startswith("loading model tiny: done in ") for line in err), err
    assert any(line.startswith("continuous @ inf req/s: 4/4 requests") and "done in" in line for line in err), err
    quiet = bsbench(*args, "--quiet")
    assert quiet.code == 0 and quiet.err == ""
