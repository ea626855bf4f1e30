"""The openai backend: replay a workload against an OpenAI-compatible server (vLLM, SGLang, bsbench serve).

The policy lives in the server; the client only replays. Contract:
- Open loop: request i leaves at its scheduled arrival (`RequestSpec.arrival_s` after the run's start) whatever
  the server is doing; `--max-concurrency N` makes it a closed loop (a request waits for one of N slots).
  A request that left more than LATE_THRESHOLD_S after its arrival is flagged `late` on its row, and the
  summary counts the client's lateness. TTFT and E2E count from the scheduled arrival, never from the send.
- Every request streams; each chunk carrying tokens gets a timestamp (one per token when the server returns
  token ids, else one per chunk). The output length comes from the server's `usage` when it reports it,
  else it is counted, and the row says which (`token_count_source`).
- Every submitted request ends completed or failed with a typed reason (record.reasons); a request whose
  server returned fewer tokens than asked fails as short-output (its tokens still count as generated).
  The record is written whatever happens to the server, and on Ctrl-C (then marked incomplete).

Files: options.py (settings, constants), body.py (request bodies), sse.py (stream events), exchange.py (one
request over HTTP), dispatch.py (the open loop), assemble.py (rows and the record), run.py (the entry point).
"""

from bsbench.openai_client.options import LATE_THRESHOLD_S, ClientOptions
from bsbench.openai_client.run import run_openai

__all__ = ["LATE_THRESHOLD_S", "ClientOptions", "run_openai"]
