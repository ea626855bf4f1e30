"""bsbench: benchmark and compare LLM batching schedulers on one shared model runner."""

import os

# Arrow's default allocator (mimalloc) keeps what it freed: writing a 10k-request record's Parquet rows held
# 60 MB more at the run's peak than the C allocator, which gives buffers back (benchmarks/record_scale.py).
# Arrow reads this once, when it loads, and bsbench writes each record once: allocation speed does not matter.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

__version__ = "0.1.0"
