"""Prometheus metrics of a served engine, read at scrape time from the online engine's stats (no polling).

    bsbench_requests_waiting                 gauge    submitted, not running (queued or preempted)
    bsbench_requests_running                 gauge    in the running batch
    bsbench_kv_cache_usage_ratio             gauge    KV blocks in use / all blocks
    bsbench_kv_blocks_used                   gauge
    bsbench_kv_blocks_total                  gauge
    bsbench_generation_tokens_total          counter  output tokens generated
    bsbench_generation_tokens_per_second     gauge    since the previous scrape (the first: since start)
    bsbench_requests_submitted_total         counter
    bsbench_requests_ended_total{status,reason}  counter  completed / failed / rejected, by end kind
    bsbench_oom_events_total                 counter
    bsbench_preemptions_total                counter

A registry per server (`metrics_registry`), so two servers in one process keep apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.online import OnlineArrivals


class EngineCollector:
    """A prometheus-client collector over one online engine."""

    def __init__(self, arrivals: OnlineArrivals, blocks: BlockManager) -> None:
        self.arrivals = arrivals
        self.blocks = blocks
        self._lock = threading.Lock()
        self._last = (time.monotonic(), 0)  # (time, tokens) at the previous scrape

    def collect(self) -> Iterator[Metric]:
        stats = self.arrivals.stats()
        used, total = self.blocks.num_used, self.blocks.num_blocks
        now = time.monotonic()
        with self._lock:
            then, tokens_then = self._last
            self._last = (now, stats.tokens)
        rate = (stats.tokens - tokens_then) / (now - then) if now > then else 0.0
        yield _gauge("bsbench_requests_waiting", "Requests submitted and not running (queued or preempted).",
                     stats.waiting)
        yield _gauge("bsbench_requests_running", "Requests in the running batch.", stats.running)
        yield _gauge("bsbench_kv_cache_usage_ratio", "KV cache blocks in use, as a share of all blocks.",
                     used / total)
        yield _gauge("bsbench_kv_blocks_used", "KV cache blocks in use.", used)
        yield _gauge("bsbench_kv_blocks_total", "KV cache blocks in all.", total)
        yield CounterMetricFamily("bsbench_generation_tokens", "Output tokens generated.", value=stats.tokens)
        yield _gauge("bsbench_generation_tokens_per_second", "Output tokens per second since the previous scrape.",
                     rate)
        yield CounterMetricFamily("bsbench_requests_submitted", "Requests submitted.", value=stats.submitted)
        ended = CounterMetricFamily("bsbench_requests_ended", "Requests ended, by final status and end reason.",
                                    labels=["status", "reason"])
        for (status, reason), count in sorted(stats.ended.items()):
            ended.add_metric([status, reason], count)
        yield ended
        yield CounterMetricFamily("bsbench_oom_events", "Out-of-memory events.", value=stats.oom_events)
        yield CounterMetricFamily("bsbench_preemptions", "Preemptions.", value=stats.preemptions)


def _gauge(name: str, text: str, value: float) -> Any:
    return GaugeMetricFamily(name, text, value=value)


def metrics_registry(arrivals: OnlineArrivals, blocks: BlockManager) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(arrivals, blocks))  # type: ignore[arg-type]
    return registry
