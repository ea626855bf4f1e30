"""Shared fixtures for the workload tests: small dataset files the tests write, and a CLI runner with exit codes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from bsbench.cli import main


def conversation(i: int, prompt_words: int, reply_words: int, turns: int = 2) -> dict:
    """A ShareGPT record whose first prompt has ~prompt_words tokens and reply ~reply_words tokens."""
    conv = []
    for t in range(turns):
        role = "human" if t % 2 == 0 else "gpt"
        words = prompt_words if role == "human" else reply_words
        conv.append({"from": role, "value": " ".join(f"w{i}x{t}" if k == 0 else "hello" for k in range(words))})
    return {"id": f"c{i}", "conversations": conv}


@pytest.fixture
def sharegpt_records() -> list[dict]:
    return [conversation(i, 5 + (i * 7) % 60, 5 + (i * 11) % 80, turns=2 + i % 3) for i in range(60)]


@pytest.fixture
def sharegpt_json(tmp_path: Path, sharegpt_records: list[dict]) -> Path:
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(sharegpt_records, indent=1))
    return path


@pytest.fixture
def longbench_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "longbench" / "qasper.jsonl"
    path.parent.mkdir()
    rows = [{"input": f"question {i}?", "context": " ".join(["context"] * (200 + 50 * i)),
             "answers": [" ".join(["answer"] * (3 + i))], "length": 200 + 50 * i, "dataset": "qasper",
             "language": "en", "all_classes": None, "_id": f"id{i}"} for i in range(20)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def trace_csv(tmp_path: Path) -> Path:
    path = tmp_path / "trace.csv"
    lines = ["arrived_at,num_prefill_tokens,num_decode_tokens"]
    lines += [f"{10 + 0.5 * i},{16 + i},{4 + i % 5}" for i in range(40)]
    path.write_text("\n".join(lines) + "\n")
    return path


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def bsbench(capsys: pytest.CaptureFixture) -> callable:
    """Run `bsbench ARGS` through bsbench.cli.main (one-line errors, exit 2) and capture its output."""

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:  # main is a process's entry: after a real signal it leaves both ignored until the exit
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture(autouse=True)
def _workload_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own tokenised-sample cache: nothing is written under ~/.cache, no test sees another's."""
    monkeypatch.setenv("BSBENCH_WORKLOAD_CACHE", str(tmp_path / "workload-cache"))


@pytest.fixture(scope="session")
def sweep_report_page(tmp_path_factory) -> Path:
    """A sweep report.html built once from hand-made records (tests/report_pages.py): read it, do not change it."""
    from tests.report_pages import sweep_page

    return sweep_page(tmp_path_factory.mktemp("sweep-report"))
