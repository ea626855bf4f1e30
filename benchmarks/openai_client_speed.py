"""Can the openai backend's client keep an open loop at 200+ req/s? (issue 14)

    python benchmarks/openai_client_speed.py                      # 2,000 requests at 250 req/s, PASS/MISS vs 200
    python benchmarks/openai_client_speed.py -n 500 --rate 400

A stub OpenAI-compatible server (starlette + uvicorn) runs in a child process on 127.0.0.1 and streams every
completion at once (a few tokens, a usage chunk, [DONE]), so the figure is the client's own: the same
`run_openai` that `bsbench run --backend openai` uses replays a synthetic workload at --rate (constant
arrivals) and the script prints the achieved dispatch rate ((n - 1) / (last send - first send)), the client's
lateness (p50 / p99 / max and how many left more than LATE_THRESHOLD_S late), and PASS/MISS: the dispatch rate
is at least the 200 req/s target and every request completed. The load average is printed beside it: the
client and the stub share the machine's cores with whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import tempfile
import time
from pathlib import Path

TARGET_RATE = 200.0


def serve(port: int, tokens: int) -> None:
    """The stub server (child process): every completion streams `tokens` chunks at once."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    chunk = "data: " + json.dumps({"choices": [{"index": 0, "text": " x", "finish_reason": None}]}) + "\n\n"
    last = "data: " + json.dumps({"choices": [{"index": 0, "text": " x", "finish_reason": "length"}]}) + "\n\n"

    async def complete(request):
        body = await request.json()
        n = int(body.get("max_tokens", tokens))
        usage = json.dumps({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": n}})
        text = chunk * (n - 1) + last + f"data: {usage}\n\ndata: [DONE]\n\n"
        return StreamingResponse(iter([text.encode()]), media_type="text/event-stream")

    async def models(request):
        return JSONResponse({"data": [{"id": "stub"}]})

    app = Starlette(routes=[Route("/v1/completions", complete, methods=["POST"]), Route("/v1/models", models)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the stub server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--num-requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=250.0)
    parser.add_argument("--output-len", type=int, default=4)
    args = parser.parse_args()

    from bsbench.openai_client import LATE_THRESHOLD_S, ClientOptions, run_openai
    from bsbench.workloads.build import load_workload

    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port, args.output_len), daemon=True)
    server.start()
    try:
        wait_for(port)
        workload = load_workload("synthetic", {"num_requests": args.num_requests, "rate": args.rate,
                                               "arrival": "constant", "input_len": 16,
                                               "output_len": args.output_len, "seed": 0})
        load = os.getloadavg()
        with tempfile.TemporaryDirectory() as out:
            record = run_openai(workload, ClientOptions(f"http://127.0.0.1:{port}", served_model="stub",
                                                        warmup_requests=5), out_dir=Path(out))
    finally:
        server.terminate()
        server.join(5)
    sent = sorted(r.sent_s for r in record.requests if r.sent_s is not None)
    dispatch = (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else float("inf")
    s = record.summary
    ok = dispatch >= TARGET_RATE and s["completed"] == args.num_requests
    print(f"requests {args.num_requests} at {args.rate:g} req/s (constant arrivals), output {args.output_len} tokens; "
          f"load average before {load[0]:.2f}")
    print(f"completed {s['completed']} / failed {s['failed']}; run {s['duration_s']:.2f} s")
    print(f"achieved dispatch rate {dispatch:,.1f} req/s")
    print(f"lateness median {s['median_lateness_ms']:.3f} ms, p99 {s['p99_lateness_ms']:.3f} ms, max "
          f"{s['max_lateness_ms']:.3f} ms; {s['late_requests']} left more than {LATE_THRESHOLD_S * 1000:g} ms late")
    print(f"{'PASS' if ok else 'MISS'}: dispatch rate {dispatch:,.1f} vs target {TARGET_RATE:g} req/s"
          + ("" if s["completed"] == args.num_requests else " (not every request completed)"))


if __name__ == "__main__":
    main()
