"""`bsbench serve`: one in-process policy behind an OpenAI-compatible HTTP server (starlette + uvicorn).

The online engine (engine/online.py) runs the policy, block manager and model runner on the
wall clock; `app.py` turns HTTP requests into its submissions and its token deliveries into
responses; `metrics.py` exposes its counters to Prometheus.
"""
