"""bsbench: benchmark and compare LLM batching schedulers on one shared model runner."""

__version__ = "0.1.0"
