"""Parameters both reproductions share: the stand-in data sets and the scale of the runs."""

from __future__ import annotations

import os

from bsbench.backends.words import is_simulated
from bsbench.experiments.reproduce.params import Param
from bsbench.workloads.specs import packaged_spec_dir

REAL_NOTE = ("--backend real: the tiny model on this machine's device, at a small scale: only the DIRECTION of "
             "each figure means anything; scale, model and device differ from the paper")


def data_params(backend: str) -> list[Param]:
    """The offline stand-ins of Alpaca, LongBench and Mixed (see stand_ins.py); on the real runner, short answers."""
    real = not is_simulated(backend)
    return [
        Param("alpaca_min_prompt", 28, "Alpaca is not available offline: ShareGPT first turns (packaged file) with a "
                                       "prompt of 28..256 tokens stand in; this band gives a mean of about 84 prompt "
                                       "tokens, Alpaca's (BucketServe), with real text lengths"),
        Param("alpaca_max_prompt", 256, "upper end of the band above"),
        Param("alpaca_max_output", 32 if real else 256,
              "answers capped at 256 tokens: Alpaca answers are short; ShareGPT replies run longer (the paper does "
              "not give Alpaca's output lengths)" + ("; 32 on the real runner, to keep it small" if real else "")),
        Param("longbench_data", os.path.join(packaged_spec_dir(), "longbench-sample.jsonl"),
              "LongBench is not available offline: the packaged LongBench-format sample (long ShareGPT "
              "conversations as context, NOT LongBench), 32 records resampled with replacement; prompts "
              "middle-truncated to 1024 tokens as BucketServe does (workloads/longbench.py)"),
        Param("longbench_max_output", 32 if real else 128, "summaries are short: answers capped at 128 tokens"
              + ("; 32 on the real runner" if real else "")),
        Param("mixed_long_share", 0.2, "Mixed = Alpaca stand-in + LongBench stand-in; the paper gives no "
                                       "proportion: 20% long prompts make a long tail with short requests the bulk"),
        Param("arrival", "poisson", "the paper names no arrival process; Poisson is the peers' default "
                                    "(vLLM, DistServe)"),
    ]
