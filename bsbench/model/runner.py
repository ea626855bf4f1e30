"""The model runner: one instance, no policy. A StepPlan in, the next tokens out.

- packed layout: the plan's chunks are concatenated into one [1, total_tokens]
  forward (decode chunks first, then multi-token chunks; the order inside a
  forward does not matter to the model), positions are `start_pos`-relative
  minus `pad_len` (they count from the first real token);
- padded layout: one rectangular [batch, L] forward; left padding is real
  tokens in real KV slots, masked out of attention.

The LM head runs only on the last token of every chunk with `sample=True`;
decoding is greedy (argmax). A CUDA out-of-memory error inside `execute` is
re-raised as `ActivationOOM` so the engine records it as an event; a
malformed plan (a policy bug) raises ValueError (plan_check.py). The forward
order and attention grouping are `step_layout.py`'s. Starting a runner tunes
glibc malloc to keep freed memory (`malloc_tuning.py`; `malloc_tuning` says what
was set).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from bsbench.engine.kv_budget import kv_cache_too_large
from bsbench.engine.model_info import ModelInfo
from bsbench.engine.plan import ActivationOOM, SeqChunk, StepOutput, StepPlan
from bsbench.engine.plan_check import validate_plan
from bsbench.engine.step_layout import forward_order
from bsbench.model.attention import CTX_KWARG, StepContext
from bsbench.model.kv_cache import KVCache
from bsbench.model.malloc_tuning import tune_malloc

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class ModelRunner:
    def __init__(self, model: PreTrainedModel, info: ModelInfo, device: torch.device | str, dtype: torch.dtype) -> None:
        self.model = model
        self.info = info
        self.device = torch.device(device)
        self.dtype = dtype
        self.decoder = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, model.base_model_prefix)
        self.lm_head = model.get_output_embeddings()
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        self.group_size = config.num_attention_heads // kv_heads
        self.cache: KVCache | None = None
        self.malloc_tuning = tune_malloc()  # before the first step allocates anything

    # --- memory --------------------------------------------------------------
    def allocate_kv(self, num_blocks: int, block_size: int) -> KVCache:
        """Allocate the real K/V tensors for `num_blocks` blocks (once; a second call replaces them).

        A budget the device cannot hold is a user error (BsbenchError naming the size).
        """
        self.cache = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        try:
            self.cache = KVCache(self.info, num_blocks, block_size, self.device, self.dtype)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not isinstance(exc, torch.OutOfMemoryError) and "alloc" not in str(exc).lower():
                raise
            raise kv_cache_too_large(self.info, num_blocks, block_size, str(self.device)) from None
        return self.cache

    @property
    def kv_bytes(self) -> int:
        return self.cache.nbytes if self.cache is not None else 0

    # --- one step --------------------------------------------------------------
    def execute(self, plan: StepPlan) -> StepOutput:
        """Run one forward for `plan`; return the greedy next token of every chunk with sample=True."""
        if self.cache is None:
            raise RuntimeError("allocate_kv() must be called before execute()")
        cache = self.cache
        chunks = validate_plan(plan, cache.block_size, cache.num_blocks, self.info.max_model_len)
        try:
            with torch.inference_mode():
                return self._execute(plan.layout, chunks)
        except torch.OutOfMemoryError as exc:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise ActivationOOM(str(exc).splitlines()[0] if str(exc) else "CUDA out of memory") from exc

    def _execute(self, layout: str, chunks: list[SeqChunk]) -> StepOutput:
        dev = self.device
        cache = self.cache
        assert cache is not None
        if layout == "packed":
            chunks = forward_order(layout, chunks)  # decode first, by context length: the batched attention group(s)
            ids: list[int] = []
            pos: list[int] = []
            sample_rows: list[int] = []
            sample_ids: list[str] = []
            for c in chunks:
                t = len(c.token_ids)
                ids.extend(c.token_ids)
                first = c.start_pos - c.pad_len
                pos.extend(range(first, first + t) if first >= 0 else (max(p, 0) for p in range(first, first + t)))
                if c.sample:
                    sample_rows.append(len(ids) - 1)
                    sample_ids.append(c.req_id)
            input_ids = torch.tensor(ids, dtype=torch.long).view(1, -1)
            position_ids = torch.tensor(pos, dtype=torch.long).view(1, -1)
        else:
            b = len(chunks)
            t = len(chunks[0].token_ids)
            start = chunks[0].start_pos
            ids = [tok for c in chunks for tok in c.token_ids]
            pads = torch.tensor([c.pad_len for c in chunks], dtype=torch.long)
            position_ids = (torch.arange(start, start + t)[None, :] - pads[:, None]).clamp_(min=0)
            sample_rows = [i * t + t - 1 for i, c in enumerate(chunks) if c.sample]
            sample_ids = [c.req_id for c in chunks if c.sample]
            input_ids = torch.tensor(ids, dtype=torch.long).view(b, t)
        ctx = StepContext.build(layout, chunks, cache, self.group_size, dev)
        input_ids = input_ids.to(dev, non_blocking=True)
        position_ids = position_ids.to(dev, non_blocking=True)
        rows = torch.tensor(sample_rows, dtype=torch.long).to(dev, non_blocking=True) if sample_rows else None

        start_t = time.perf_counter()
        out = self.decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False, **{CTX_KWARG: ctx})
        next_tokens: list[int] = []
        if rows is not None:
            hidden = out.last_hidden_state.reshape(-1, out.last_hidden_state.shape[-1]).index_select(0, rows)
            logits = self.lm_head(hidden)
            next_tokens = logits.argmax(dim=-1).tolist()  # .tolist() synchronises the device
        elif dev.type == "cuda":
            torch.cuda.synchronize(dev)
        forward_s = time.perf_counter() - start_t
        return StepOutput(next_tokens=dict(zip(sample_ids, next_tokens)), forward_s=forward_s)
