"""Issue 28's fault suite: every hostile case of the issue, run once, and the totals printed.

    python benchmarks/fault_suite.py            # every case (about half a minute on 2 CPU cores)
    python benchmarks/fault_suite.py --quick    # without the one case that needs its own process (SIGINT x2)

Each case is a function that provokes one fault on 127.0.0.1 (a hostile client against an in-process
`bsbench serve`, a hostile server against the openai client, a bad key, a damaged file, a double Ctrl-C)
and returns what it saw. The totals: cases; those that ended as the issue asks (a typed failure reason, a
4xx, a one-line exit 2, a closed connection, a flagged row, a file set aside); records written where one
is due; canary secrets found in any output (stdout, stderr, every file written; must be 0); and whether the
server still serves (/health and a completion) after every serve case. The peers and fakes are the tests'
(tests/hostile_peer.py, tests/openai_fake.py, tests/serve_helpers.py): one implementation of each.
Exit code 0 when every total is as it must be, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bsbench.cli import main as cli_main  # noqa: E402
from bsbench.errors import BsbenchError  # noqa: E402
from bsbench.experiments.sweep import folder_records  # noqa: E402
from bsbench.openai_client import ClientOptions, run_openai  # noqa: E402
from bsbench.predictor import learned  # noqa: E402
from bsbench.record import read_record, save_record  # noqa: E402
from bsbench.serve.limits import ServeLimits  # noqa: E402
from bsbench.workloads.build import load_workload  # noqa: E402
from tests.hostile_peer import CannedPeer, gzip_bomb, response, sse_answer, text_chunk  # noqa: E402
from tests.hostile_peer import raw_exchange as raw  # noqa: E402
from tests.openai_fake import FakeServer  # noqa: E402
from tests.record_factory import make_record  # noqa: E402
from tests.run_process import start_run, wait_until_a_request_ends  # noqa: E402
from tests.serve_helpers import running_server  # noqa: E402

KEY_CANARY = "sk-CANARY7f3a9"
PASSWORD_CANARY = "PwCANARY51c2"
KEY_ENV = "BSBENCH_FAULT_SUITE_KEY"
LIMITS = ServeLimits(max_body_bytes=1 << 20, max_prompt_chars=200_000, body_timeout_s=2.0, header_timeout_s=0.5,
                     max_connections=12)


@dataclass(slots=True)
class Outcome:
    """What one case saw: `handled` (ended as the issue asks), `how` (one line), whether a record was due and
    written, and every text it produced (searched for the canaries)."""

    handled: bool
    how: str
    record_due: bool = False
    record_written: bool = False
    texts: tuple[str, ...] = ()


@dataclass(slots=True)
class Cli:
    code: int
    out: str
    err: str


def bsbench(*args: object) -> Cli:
    """`bsbench ARGS` in this process, its output captured (the handlers main leaves after a signal restored)."""
    out, err = io.StringIO(), io.StringIO()
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli_main([str(a) for a in args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    return Cli(code, out.getvalue(), err.getvalue())


def files_text(folder: Path) -> tuple[str, ...]:
    return tuple(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())


def refused(result: Cli, needle: str) -> Outcome:
    lines = result.err.strip().splitlines()
    ok = result.code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in result.err
    return Outcome(ok, f"exit {result.code}: {lines[0] if lines else '(empty stderr)'}", texts=(result.out, result.err))


@contextlib.contextmanager
def env(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


# --- 1. secrets ---------------------------------------------------------------------------------------------

def bad_key(value: str, what: str) -> Callable[[Path], Outcome]:
    def case(_tmp: Path) -> Outcome:
        with env(KEY_ENV, value):
            return refused(bsbench("run", "--backend", "openai", "--base-url", "http://127.0.0.1:9", "--api-key-env",
                                   KEY_ENV, "-w", "synthetic", "-n", 2), what)
    return case


def credentials_in_the_url(tmp: Path) -> Outcome:
    with env(KEY_ENV, KEY_CANARY), FakeServer(lifetime_s=30) as server:
        url = server.base_url.replace("http://", f"http://alice:{PASSWORD_CANARY}@")
        result = bsbench("run", "--backend", "openai", "--base-url", url, "--api-key-env", KEY_ENV, "-w", "synthetic",
                         "-n", 3, "--input-len", 8, "--output-len", 2, "--out", tmp)
    written = list(tmp.glob("*.json"))
    masked = bool(written) and read_record(written[0]).config.backend.base_url.startswith("http://***@")
    return Outcome(result.code == 0 and masked, f"exit {result.code}, base_url masked: {masked}", True, bool(written),
                   (result.out, result.err, *files_text(tmp)))


def discovery_failure_with_credentials(_tmp: Path) -> Outcome:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    url = f"http://alice:{PASSWORD_CANARY}@127.0.0.1:{port.getsockname()[1]}/v1"  # bound, never listening
    with env(KEY_ENV, KEY_CANARY):
        outcome = refused(bsbench("run", "--backend", "openai", "--base-url", url, "--api-key-env", KEY_ENV,
                                  "-w", "synthetic", "-n", 2), "cannot list the served models")
    port.close()
    return outcome


# --- 3. a hostile server against the client -----------------------------------------------------------------

def against(answer: bytes, expected: str, endpoint: str = "completions") -> Callable[[Path], Outcome]:
    def case(tmp: Path) -> Outcome:
        workload = load_workload("synthetic", {"input_len": 8, "output_len": 8, "seed": 1, "num_requests": 1,
                                               "rate": "inf"})
        with CannedPeer(answer) as peer:
            # no test request: the hostile answer is the run's (a failing test request stops before any record)
            options = ClientOptions(base_url=peer.url, served_model="m", endpoint=endpoint, api_key=KEY_CANARY,
                                    request_timeout_s=10, test_request=False)
            record = run_openai(workload, options, out_dir=tmp)
        (row,) = read_record(record.path).requests
        kind = row.reason.kind.value if row.reason is not None else None
        if expected == "usage-flagged":
            ok, how = "usage_rejected" in row.notes and row.num_output == 8, f"notes {sorted(row.notes)}"
        else:
            ok, how = kind == expected, f"{kind}: {row.reason.detail[:80] if row.reason else ''}"
        return Outcome(ok, how, True, record.path is not None and Path(record.path).exists(), files_text(tmp))
    return case


USAGE_LIE = {"id": "x", "choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": 10**9,
                                                  "total_tokens": 10**9 + 8}}
CLIENT_CASES: dict[str, Callable[[Path], Outcome]] = {
    "gzip bomb error body (48 MiB inflated)": against(gzip_bomb("500 Internal Server Error", 48 << 20), "http-error"),
    "endless SSE line (2 MiB)": against(response("200 OK", b"data: " + b"x" * (2 << 20),
                                                 {"Content-Type": "text/event-stream"}), "bad-response"),
    "chat delta that is a string": against(sse_answer({"choices": [{"index": 0, "delta": "a string"}]}),
                                           "bad-response", endpoint="chat"),
    "usage claiming 1e9 tokens after 8": against(
        sse_answer(*[text_chunk(f" t{i}", "length" if i == 7 else None) for i in range(8)], USAGE_LIE),
        "usage-flagged"),
    "307 redirect": against(response("307 Temporary Redirect", b"", {"Location": "http://127.0.0.1:9/x",
                                                                     "Content-Length": "0"}), "http-error"),
}


# --- 2. a hostile client against serve ----------------------------------------------------------------------



def status_of(answer: bytes) -> int:
    parts = answer.split(b"\r\n", 1)[0].split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def http_4xx(answer: bytes, expected: int) -> Outcome:
    status = status_of(answer)
    return Outcome(status == expected, f"HTTP {status}", texts=(answer.decode("utf-8", "replace"),))


def serve_cases(url: str) -> dict[str, Callable[[Path], Outcome]]:
    post = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    piece = b"x" * 65536
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(32))
    unknown = json.dumps({"prompt": [1, 2], "max_tokens": 1, "junk": "y" * (2 << 20)}).encode()

    def half_sent_header(_tmp: Path) -> Outcome:
        start = time.perf_counter()
        answer = raw(url, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
        waited = time.perf_counter() - start
        return Outcome(answer == b"" and waited < LIMITS.header_timeout_s + 1.5, f"closed after {waited:.2f} s")

    def connection_flood(_tmp: Path) -> Outcome:
        host, port = url.removeprefix("http://").split(":")
        slow = [socket.create_connection((host, int(port)), timeout=5) for _ in range(3 * LIMITS.max_connections)]
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            start = time.perf_counter()
            answer = raw(url, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            took_ms = (time.perf_counter() - start) * 1000
        finally:
            for sock in slow:
                sock.close()
        return Outcome(status_of(answer) == 200 and took_ms < 1000, f"/health {status_of(answer)} in {took_ms:.0f} ms "
                       f"beside {len(slow)} half-sent headers")

    return {
        "body announced over the limit": lambda _t: http_4xx(raw(url, post + b"Content-Length: 2097152\r\n\r\n"), 413),
        "chunked body over the limit": lambda _t: http_4xx(
            raw(url, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked), 413),
        "2 MiB body with an unknown field": lambda _t: http_4xx(
            raw(url, post + f"Content-Length: {len(unknown)}\r\n\r\n".encode() + unknown), 413),
        "text prompt over the prompt limit": lambda _t: http_4xx(raw(url, _json_post({"prompt": "a" * 300_000,
                                                                                      "max_tokens": 2})), 400),
        "lone surrogate in a prompt": lambda _t: http_4xx(raw(url, _json_post(None, b'{"prompt": "hi \\ud800"}')), 400),
        "half-sent header": half_sent_header,
        "connection flood past the cap": connection_flood,
    }


def _json_post(body: object, raw_body: bytes | None = None) -> bytes:
    data = raw_body if raw_body is not None else json.dumps(body).encode()
    return (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)


def still_serving(url: str, headers: dict[str, str] | None = None) -> bool:
    health = httpx.get(f"{url}/health", timeout=5)
    done = httpx.post(f"{url}/v1/completions", json={"prompt": [1, 2, 3], "max_tokens": 2}, timeout=30,
                      headers=headers or {})
    return health.status_code == 200 and done.status_code == 200


def auth_cases(url: str) -> dict[str, Callable[[Path], Outcome]]:
    def wrong_key(_tmp: Path) -> Outcome:
        reply = httpx.post(f"{url}/v1/completions", json={"prompt": [1, 2], "max_tokens": 1}, timeout=10,
                           headers={"Authorization": "Bearer sk-wrong"})
        return Outcome(reply.status_code == 401, f"HTTP {reply.status_code}", texts=(reply.text,))

    def no_key(_tmp: Path) -> Outcome:
        reply = httpx.get(f"{url}/v1/models", timeout=10)
        return Outcome(reply.status_code == 401, f"HTTP {reply.status_code}", texts=(reply.text,))

    return {"serve --api-key: a wrong key": wrong_key, "serve --api-key: no key": no_key}


# --- 4. the smaller points ----------------------------------------------------------------------------------

GOOD_LINE = {"id": "ok", "prompt_ids": [5, 6, 7], "output_len": 3, "arrival_s": 0.0}


def replay_value(extra: dict, needle: str) -> Callable[[Path], Outcome]:
    def case(tmp: Path) -> Outcome:
        path = tmp / "w.jsonl"
        path.write_text(json.dumps(GOOD_LINE) + "\n" + json.dumps({**GOOD_LINE, "id": "bad", **extra}) + "\n")
        return refused(bsbench("workload", "show", path), needle)
    return case


def truncated_sweep_record(tmp: Path) -> Outcome:
    runs = tmp / "runs"
    path = save_record(make_record("continuous"), runs)
    path.write_bytes(path.read_bytes()[:300])
    lines: list[str] = []
    folder_records(tmp, lines.append)
    aside = path.with_name(path.name + ".damaged")
    return Outcome(len(lines) == 1 and aside.exists() and not path.exists(), lines[0] if lines else "nothing reported")


def read_only_predictor_cache(tmp: Path) -> Outcome:
    blocker = tmp / "a-file"
    blocker.write_text("x")
    data = tmp / "d.json"
    data.write_text("[]")
    try:
        learned.load_or_train(data_path=str(data), cache_dir=str(blocker / "cache"))
    except BsbenchError as exc:
        return Outcome("not writable" in str(exc), f"BsbenchError: {exc}")
    return Outcome(False, "accepted")


def sigint_twice(tmp: Path) -> Outcome:
    proc = start_run("-w", "synthetic", "--input-len", "16", "--output-len", "4", "-n", "12", "--rate", "1",
                     "--arrival", "constant", "--out", tmp)
    wait_until_a_request_ends(proc, 12)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.45)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    written = list(tmp.glob("*.json"))
    ok = proc.returncode == 130 and "Traceback" not in err
    return Outcome(ok, f"exit {proc.returncode}, traceback: {'Traceback' in err}", True, len(written) == 1,
                   (out, err, *files_text(tmp)))


SMALL_CASES: dict[str, Callable[[Path], Outcome]] = {
    "key ending in a newline": bad_key(KEY_CANARY + "\n", "a newline"),
    "non-ASCII key": bad_key(KEY_CANARY + "é", "non-ASCII"),
    "URL credentials and a key in a run": credentials_in_the_url,
    "model discovery failing with URL credentials": discovery_failure_with_credentials,
    "replay: slo as a bare number": replay_value({"slo": 5000}, "slo"),
    "replay: e2e_ms as a string": replay_value({"slo": {"e2e_ms": "5000"}}, "slo.e2e_ms"),
    "replay: output_len 1e9": replay_value({"output_len": 1e9}, "output_len"),
    "truncated run file in a sweep folder": truncated_sweep_record,
    "unwritable predictor cache folder": read_only_predictor_cache,
}


# --- the run ------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Totals:
    cases: int = 0
    handled: int = 0
    records_due: int = 0
    records_written: int = 0
    canaries: int = 0
    serving: bool = True

    def add(self, name: str, outcome: Outcome) -> None:
        self.cases += 1
        self.handled += outcome.handled
        self.records_due += outcome.record_due
        self.records_written += outcome.record_due and outcome.record_written
        found = sum(c in text for text in outcome.texts for c in (KEY_CANARY, PASSWORD_CANARY))
        self.canaries += found
        mark = "ok  " if outcome.handled and not found else "FAIL"
        print(f"{mark} {name}: {outcome.how}" + (f" [{found} canaries found]" if found else ""), flush=True)

    def good(self) -> bool:
        return (self.handled == self.cases and self.records_written == self.records_due and self.canaries == 0
                and self.serving)


def run_cases(cases: dict[str, Callable[[Path], Outcome]], totals: Totals) -> None:
    for name, case in cases.items():
        with tempfile.TemporaryDirectory(prefix="bsbench-fault-") as folder:
            try:
                outcome = case(Path(folder))
            except Exception as exc:  # a case that crashed is a failed case, and the suite goes on
                outcome = Outcome(False, f"crashed: {type(exc).__name__}: {str(exc)[:120]}")
        totals.add(name, outcome)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the case that needs its own process (SIGINT x2)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    totals = Totals()
    run_cases(SMALL_CASES, totals)
    run_cases(CLIENT_CASES, totals)
    with running_server(limits=LIMITS) as served:
        run_cases(serve_cases(served.url), totals)
        totals.serving &= still_serving(served.url)
    with running_server(limits=LIMITS, api_key=KEY_CANARY) as served:
        run_cases(auth_cases(served.url), totals)
        totals.serving &= still_serving(served.url, {"Authorization": f"Bearer {KEY_CANARY}"})
    if not args.quick:
        run_cases({"SIGINT twice mid-run": sigint_twice}, totals)
    print(f"fault suite: {totals.cases} cases, {totals.handled} ended with a typed error or a 4xx "
          f"(or as the case asks), records written {totals.records_written}/{totals.records_due} where due, "
          f"{totals.canaries} canary secrets found in outputs, server still serving: "
          f"{'yes' if totals.serving else 'NO'} ({time.perf_counter() - start:.1f} s)")
    return 0 if totals.good() else 1


if __name__ == "__main__":
    sys.exit(main())
