"""Prometheus metrics of a served engine: bsbench's own names, and vLLM's for the subset bsbench measures, so
that vLLM's dashboards and scrapers read a `bsbench serve` as they read a vLLM server.

bsbench's names, read at scrape time from the online engine's stats:

    bsbench_requests_waiting                 gauge    submitted, not running (queued or preempted)
    bsbench_requests_running                 gauge    in the running batch
    bsbench_kv_cache_usage_ratio             gauge    KV blocks in use / all blocks
    bsbench_kv_blocks_used                   gauge
    bsbench_kv_blocks_total                  gauge
    bsbench_generation_tokens_total          counter  output tokens generated
    bsbench_generation_tokens_per_second     gauge    over the last RATE_WINDOW_S (sampled by the server, so
                                                      every scraper sees the same figure)
    bsbench_requests_submitted_total         counter
    bsbench_requests_ended_total{status,reason}  counter  completed / failed / rejected, by end kind
    bsbench_oom_events_total                 counter
    bsbench_preemptions_total                counter

vLLM's names (V1 engine), each with a `model_name` label, histograms with vLLM's bucket boundaries, observed
once per request as it ends (`ServeMetrics.observe_end`, on the engine's thread):

    vllm:time_to_first_token_seconds         histogram  arrival -> first token
    vllm:inter_token_latency_seconds         histogram  every gap between consecutive tokens
    vllm:e2e_request_latency_seconds         histogram  arrival -> end
    vllm:request_queue_time_seconds          histogram  arrival -> first scheduled
    vllm:request_prefill_time_seconds        histogram  first scheduled -> first token
    vllm:request_decode_time_seconds         histogram  first token -> end
    vllm:prompt_tokens_total                 counter    prompt tokens of the requests that reached a first token
    vllm:generation_tokens_total             counter    output tokens generated (live)
    vllm:request_success_total{finished_reason}  counter  completed requests
    vllm:num_requests_running, vllm:num_requests_waiting, vllm:kv_cache_usage_perc  gauges (0-1 for the last)

A registry per server, so two servers in one process keep apart.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.online import FINISHED_REASON, OnlineArrivals
from bsbench.engine.request_state import RequestState, Status

RATE_WINDOW_S = 10.0
# vLLM's bucket boundaries (vllm/v1/metrics/loggers.py)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
               80.0)
REQUEST_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                           240.0, 480.0, 960.0, 1920.0, 7680.0)
FINISHED_LENGTH = "length"  # bsbench serve generates max_tokens unless a stop ends it first (FINISHED_REASON)


class TokenRate:
    """Output tokens per second over the last `window_s`, from samples the server takes on its own schedule
    (`sample`), so that how often, or by whom, /metrics is scraped changes nothing."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def sample(self, tokens: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._samples.append((now, tokens))
            while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
                self._samples.popleft()

    def rate(self) -> float:
        with self._lock:
            if len(self._samples) < 2:
                return 0.0
            (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


class EngineCollector:
    """A prometheus-client collector over one online engine (its gauges and live counters)."""

    def __init__(self, arrivals: OnlineArrivals, blocks: BlockManager, model_name: str, rate: TokenRate) -> None:
        self.arrivals = arrivals
        self.blocks = blocks
        self.model_name = model_name
        self.rate = rate

    def collect(self) -> Iterator[Metric]:
        stats = self.arrivals.stats()
        used, total = self.blocks.num_used, self.blocks.num_blocks
        yield _gauge("bsbench_requests_waiting", "Requests submitted and not running (queued or preempted).",
                     stats.waiting)
        yield _gauge("bsbench_requests_running", "Requests in the running batch.", stats.running)
        yield _gauge("bsbench_kv_cache_usage_ratio", "KV cache blocks in use, as a share of all blocks.",
                     used / total)
        yield _gauge("bsbench_kv_blocks_used", "KV cache blocks in use.", used)
        yield _gauge("bsbench_kv_blocks_total", "KV cache blocks in all.", total)
        yield CounterMetricFamily("bsbench_generation_tokens", "Output tokens generated.", value=stats.tokens)
        yield _gauge("bsbench_generation_tokens_per_second",
                     f"Output tokens per second over the last {RATE_WINDOW_S:g} s.", self.rate.rate())
        yield CounterMetricFamily("bsbench_requests_submitted", "Requests submitted.", value=stats.submitted)
        ended = CounterMetricFamily("bsbench_requests_ended", "Requests ended, by final status and end reason.",
                                    labels=["status", "reason"])
        for (status, reason), count in sorted(stats.ended.items()):
            ended.add_metric([status, reason], count)
        yield ended
        yield CounterMetricFamily("bsbench_oom_events", "Out-of-memory events.", value=stats.oom_events)
        yield CounterMetricFamily("bsbench_preemptions", "Preemptions.", value=stats.preemptions)
        label = [self.model_name]
        for name, text, value in (
                ("vllm:num_requests_running", "Number of requests in model execution batches.", stats.running),
                ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", stats.waiting),
                ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", used / total)):
            gauge = GaugeMetricFamily(name, text, labels=["model_name"])
            gauge.add_metric(label, value)
            yield gauge
        tokens = CounterMetricFamily("vllm:generation_tokens", "Number of generation tokens processed.",
                                     labels=["model_name"])
        tokens.add_metric(label, stats.tokens)
        yield tokens


class ServeMetrics:
    """The metrics of one server: `registry` to expose, `observe_end` for the engine's `on_end`, `attach` once
    the engine exists, `sample` on the server's own clock (the token rate)."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.registry = CollectorRegistry(auto_describe=False)
        self.rate = TokenRate()

        def histogram(name: str, text: str, buckets: tuple[float, ...]) -> Any:
            return Histogram(name, text, ["model_name"], registry=self.registry, buckets=buckets).labels(model_name)

        self.ttft = histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                              TTFT_BUCKETS)
        self.itl = histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                             ITL_BUCKETS)
        self.e2e = histogram("vllm:e2e_request_latency_seconds",
                             "Histogram of e2e request latency in seconds.", REQUEST_LATENCY_BUCKETS)
        self.queue = histogram("vllm:request_queue_time_seconds",
                               "Histogram of time spent in WAITING phase for request.", REQUEST_LATENCY_BUCKETS)
        self.prefill = histogram("vllm:request_prefill_time_seconds",
                                 "Histogram of time spent in PREFILL phase for request.", REQUEST_LATENCY_BUCKETS)
        self.decode = histogram("vllm:request_decode_time_seconds",
                                "Histogram of time spent in DECODE phase for request.", REQUEST_LATENCY_BUCKETS)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", ["model_name"],
                                     registry=self.registry).labels(model_name)
        self.success = Counter("vllm:request_success", "Count of successfully processed requests.",
                               ["model_name", "finished_reason"], registry=self.registry)

    def attach(self, arrivals: OnlineArrivals, blocks: BlockManager) -> None:
        self.registry.register(EngineCollector(arrivals, blocks, self.model_name, self.rate))  # type: ignore[arg-type]

    def sample(self, arrivals: OnlineArrivals) -> None:
        self.rate.sample(arrivals.stats().tokens)

    def observe_end(self, state: RequestState) -> None:
        """One ended request's latencies (engine clock seconds). A request that never produced a token adds only
        its queueing (if it was scheduled) and its end-to-end time."""
        arrival, times, end = state.spec.arrival_s, state.token_times, state.finish_s
        if end is not None:
            self.e2e.observe(max(0.0, end - arrival))
        if state.first_scheduled_s is not None:
            self.queue.observe(max(0.0, state.first_scheduled_s - arrival))
        if times:
            self.ttft.observe(max(0.0, times[0] - arrival))
            self.prompt_tokens.inc(state.spec.prompt_len)
            if state.first_scheduled_s is not None:
                self.prefill.observe(max(0.0, times[0] - state.first_scheduled_s))
            if end is not None:
                self.decode.observe(max(0.0, end - times[0]))
            for a, b in zip(times, times[1:]):
                self.itl.observe(max(0.0, b - a))
        if state.status is Status.COMPLETED:
            self.success.labels(self.model_name, str(state.notes.get(FINISHED_REASON, FINISHED_LENGTH))).inc()


def _gauge(name: str, text: str, value: float) -> Any:
    return GaugeMetricFamily(name, text, value=value)
