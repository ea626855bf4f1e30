#!/usr/bin/env python
"""bsbench's runner vs transformers, on the same requests, the same weights, in one process.

The same N ShareGPT requests (the packaged file, sampled and filtered as vLLM
does, seed 0; outputs capped at --max-output tokens) go through:

  (a) bsbench `continuous` at rate inf (run_benchmark: the engine, the
      scheduler, the paged-attention runner; its run record is saved);
  (b) transformers' own continuous batching (the ContinuousBatchingManager of
      `generate_batch`), with per-request max_new_tokens through add_request,
      EOS disabled (eos_token_id=-1), the same max batch size / token budget /
      KV capacity as (a), prefix sharing off (bsbench has none), sdpa attention;
  (c) padded `model.generate` in FCFS batches of (a)'s max_num_seqs: left
      padding, attention mask, greedy, min_new_tokens = max_new_tokens = the
      batch's longest output; only each request's own output tokens count.

(b) and (c) run a second copy of the very same weights (load_model with the
same seed, checked tensor by tensor) switched to transformers' sdpa attention.

It prints output tokens/s of each, the ratios (a)/(b) and (a)/(c), the share
of (a)'s wall time spent outside the model forward (1 - forward_share of the
run record), each target with PASS/MISS, and the greedy agreement of a sample
of (a)'s outputs with (c)'s (and (b)'s) for the same prompts.

    python benchmarks/runner_vs_hf.py                   # 256 requests, CPU
    python benchmarks/runner_vs_hf.py --device cuda --skip-hf-cb
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import random
import sys
import tempfile
import time
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from bsbench.backends.config import RunConfig
from bsbench.backends.run import open_session, run_benchmark
from bsbench.model.loader import load_model
from bsbench.schedulers.continuous import ContinuousOptions
from bsbench.workloads.build import load_workload

TARGET_VS_HF_CB = 1.5
TARGET_VS_PADDED = 1.2
TARGET_OVERHEAD = 0.05

console = Console()


def loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def log(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')} load {loadavg()}[/dim]  {msg}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = ContinuousOptions()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-requests", type=int, default=256)
    p.add_argument("--max-output", type=int, default=128, help="cap on every request's output length")
    p.add_argument("--max-num-seqs", type=int, default=defaults.max_num_seqs,
                   help="(a)'s max_num_seqs = (b)'s max_requests_per_batch = (c)'s batch size")
    p.add_argument("--max-num-batched-tokens", type=int, default=defaults.max_num_batched_tokens,
                   help="(a)'s token budget per step = (b)'s max_batch_tokens")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--model", default="tiny")
    p.add_argument("--workload", default=None, help="workload spec (default: the packaged ShareGPT, vllm filter)")
    p.add_argument("--seed", type=int, default=0, help="workload seed")
    p.add_argument("--weights-seed", type=int, default=0)
    p.add_argument("--hf-page-size", type=int, default=256, help="(b)'s page_size (transformers' default 256)")
    p.add_argument("--check-sample", type=int, default=16, help="requests whose outputs are compared (0: none)")
    p.add_argument("--skip-hf-cb", action="store_true", help="skip (b)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads for all three paths (default: torch's own default)")
    p.add_argument("--out", default=None, help="folder for (a)'s run record (default: a temporary folder)")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- (a)

def run_bsbench(workload, config: RunConfig, session) -> dict[str, Any]:
    t0 = time.perf_counter()
    record = run_benchmark(workload, config, progress=False, session=session)
    wall = time.perf_counter() - t0
    summary = record.summary
    steps = record.steps
    duration = float(summary["duration_s"])
    forward = sum(float(s.forward_s or 0.0) for s in steps)
    share = summary.get("forward_share")
    if share is None:
        share = forward / duration if duration > 0 else float("nan")
    out_tokens = int(summary["total_output_tokens"])
    outputs = {r.id: list(r.output_ids or []) for r in record.requests}
    return {
        "tokens": out_tokens,
        "duration": duration,
        "wall": wall,
        "tps": out_tokens / duration,
        "overhead": 1.0 - share,
        "forward_s": forward,
        "decision_share": (record.scheduler or {}).get("decision_share"),
        "steps": len(steps),
        "preemptions": summary.get("preemptions"),
        "completed": summary.get("completed"),
        "mean_batch": summary.get("mean_batch_size"),
        "path": record.path,
        "outputs": outputs,
    }


# ----------------------------------------------------------------------------- (b)

def run_hf_cb(model, requests, args, capacity_tokens: int) -> dict[str, Any]:
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    page = args.hf_page_size
    num_blocks = max(1, math.ceil(capacity_tokens / page))
    knobs = {
        "max_requests_per_batch": args.max_num_seqs,
        "max_batch_tokens": args.max_num_batched_tokens,
        "page_size": page,
        "num_blocks": num_blocks,
        "allow_block_sharing": False,
        "auto_switch_to_flash": False,
    }
    cb_config = ContinuousBatchingConfig(**knobs)
    gen_config = GenerationConfig(do_sample=False, max_new_tokens=args.max_output, eos_token_id=-1,
                                  pad_token_id=model.config.pad_token_id or 0)
    results: dict[str, Any] = {}
    # no inference_mode here: the manager's tensors are updated in place from its own (no_grad) thread
    with model.continuous_batching_context_manager(generation_config=gen_config, continuous_batching_config=cb_config,
                                                   block=True, timeout=30, warmup=True) as manager:
        resolved = manager.continuous_batching_config
        t0 = time.perf_counter()
        for r in requests:
            manager.add_request(list(r.prompt_ids), request_id=r.id, max_new_tokens=r.output_len, eos_token_id=-1)
        while len(results) < len(requests):
            res = manager.get_result(timeout=1)
            if res is None:
                if not manager.is_running():
                    break
                continue
            if res.is_finished():
                results[res.request_id] = res
        duration = time.perf_counter() - t0
        cache = getattr(getattr(manager, "batch_processor", None), "cache", None)
        cache_info = (getattr(cache, "max_batch_tokens", None), getattr(cache, "num_blocks", None))
    errors = [k for k, v in results.items() if v.error is not None]
    outputs = {k: list(v.generated_tokens) for k, v in results.items()}
    wrong_len = [r.id for r in requests if len(outputs.get(r.id, [])) != r.output_len]
    tokens = sum(min(len(outputs.get(r.id, [])), r.output_len) for r in requests)
    return {
        "tokens": tokens,
        "duration": duration,
        "tps": tokens / duration,
        "finished": len(results),
        "errors": errors,
        "wrong_len": wrong_len,
        "knobs": {**knobs, "eos_token_id": -1, "attn": "sdpa",
                  "resolved_max_requests_per_batch": getattr(resolved, "max_requests_per_batch", None),
                  "resolved_max_batch_tokens": cache_info[0],
                  "resolved_cache_tokens": cache_info[1] * page if cache_info[1] else None},
        "outputs": outputs,
    }


# ----------------------------------------------------------------------------- (c)

def padded_generate(model, prompts: list[list[int]], new_tokens: int, pad_id: int, device) -> list[list[int]]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p):] = 1
    out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=new_tokens,
                         min_new_tokens=new_tokens, do_sample=False, pad_token_id=pad_id, num_beams=1)
    return out[:, width:].tolist()


def run_padded(model, requests, args, device) -> dict[str, Any]:
    pad_id = model.config.pad_token_id or 0
    size = args.max_num_seqs
    outputs: dict[str, list[int]] = {}
    computed = 0
    with torch.inference_mode():
        padded_generate(model, [list(requests[0].prompt_ids[:8])] * 2, 2, pad_id, device)  # warm-up, untimed
        t0 = time.perf_counter()
        for b in range(0, len(requests), size):
            batch = requests[b:b + size]
            longest = max(r.output_len for r in batch)
            gen = padded_generate(model, [list(r.prompt_ids) for r in batch], longest, pad_id, device)
            for r, g in zip(batch, gen):
                outputs[r.id] = g[:r.output_len]  # only the request's own output is useful
            computed += longest * len(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        duration = time.perf_counter() - t0
    tokens = sum(len(outputs[r.id]) for r in requests)
    return {"tokens": tokens, "duration": duration, "tps": tokens / duration, "computed": computed,
            "batches": math.ceil(len(requests) / size), "outputs": outputs}


# ----------------------------------------------------------------------------- checks

def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def agreement(sample, a_out, ref_out) -> tuple[int, int, int, int]:
    """(requests equal, requests compared, tokens equal before the first difference, tokens compared)."""
    equal = same_tokens = total = 0
    for r in sample:
        x, y = a_out.get(r.id, []), ref_out.get(r.id, [])
        n = r.output_len
        total += n
        k = 0
        while k < min(len(x), len(y), n) and x[k] == y[k]:
            k += 1
        same_tokens += k
        equal += int(k == n)
    return equal, len(sample), same_tokens, total


def solo_generate(model, prompt: list[int], n: int, device) -> list[int]:
    with torch.inference_mode():
        out = model.generate(input_ids=torch.tensor([prompt], device=device),
                             attention_mask=torch.ones(1, len(prompt), dtype=torch.long, device=device),
                             max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             pad_token_id=model.config.pad_token_id or 0)
    return out[0, len(prompt):].tolist()


# ----------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    # transformers CB asks for psutil only to size an automatic CPU cache; (b) sets its cache size explicitly
    logging.getLogger("ContinuousBatchingLogger").addFilter(lambda rec: "psutil" not in rec.getMessage())
    if args.threads:
        torch.set_num_threads(args.threads)
    log(f"torch {torch.__version__}, intra-op threads {torch.get_num_threads()}, cpus {os.cpu_count()}")

    workload = load_workload(args.workload, {"num_requests": args.num_requests, "seed": args.seed, "rate": "inf"})
    requests = [dataclasses.replace(r, output_len=min(r.output_len, args.max_output)) for r in workload.requests]
    workload = dataclasses.replace(workload, requests=requests)
    prompt_tokens = sum(r.prompt_len for r in requests)
    useful = sum(r.output_len for r in requests)
    log(f"workload {workload.name}: {len(requests)} requests, prompts {prompt_tokens} tokens "
        f"(max {max(r.prompt_len for r in requests)}), outputs {useful} tokens (cap {args.max_output})")

    out_dir = args.out or tempfile.mkdtemp(prefix="runner_vs_hf-")
    config = RunConfig(
        scheduler="continuous",
        scheduler_options={"max_num_seqs": args.max_num_seqs, "max_num_batched_tokens": args.max_num_batched_tokens},
        model=args.model, weights="dummy", weights_seed=args.weights_seed, device=args.device, dtype="float32",
        out_dir=out_dir, record_tokens=True,
    )
    session = open_session(config)
    device = torch.device(session.device)
    capacity = session.num_blocks * session.block_size
    log(f"session: {session.info.name} on {session.device} {session.dtype}, KV {session.num_blocks} blocks x "
        f"{session.block_size} = {capacity} tokens")

    # the reference copy: the very same weights, transformers' own attention
    ref, _ = load_model(args.model, weights="dummy", device=device, dtype=torch.float32, seed=args.weights_seed)
    if not same_weights(ref, session.runner.model):
        console.print("[red]second load_model copy differs from the session's weights: aborting[/red]")
        return 1
    ref.set_attn_implementation("sdpa")
    # no EOS id: generate neither stops at EOS nor masks it (min_new_tokens masks only a known EOS id),
    # so it emits the plain argmax at every step, as bsbench does
    ref.generation_config.eos_token_id = None
    log("reference copy: identical weights, attn_implementation=sdpa")

    loads: dict[str, str] = {}
    loads["a"] = loadavg()
    log("(a) bsbench continuous, rate inf ...")
    a = run_bsbench(workload, config, session)
    log(f"(a) {a['tokens']} tokens in {a['duration']:.2f}s = {a['tps']:.1f} tok/s; record {a['path']}")

    b = None
    if not args.skip_hf_cb:
        loads["b"] = loadavg()
        log("(b) transformers continuous batching ...")
        b = run_hf_cb(ref, requests, args, capacity)
        log(f"(b) {b['tokens']} tokens in {b['duration']:.2f}s = {b['tps']:.1f} tok/s; knobs {b['knobs']}")
        if b["errors"] or b["wrong_len"] or b["finished"] != len(requests):
            console.print(f"[yellow](b) finished {b['finished']}/{len(requests)}, errors {len(b['errors'])}, "
                          f"wrong output length {len(b['wrong_len'])}[/yellow]")

    loads["c"] = loadavg()
    log(f"(c) padded model.generate, batches of {args.max_num_seqs} ...")
    c = run_padded(ref, requests, args, device)
    log(f"(c) {c['tokens']} useful tokens ({c['computed']} generated) in {c['duration']:.2f}s = {c['tps']:.1f} tok/s")

    # greedy agreement on a seeded sample
    sample = random.Random(0).sample(requests, min(args.check_sample, len(requests)))
    agree_c = agreement(sample, a["outputs"], c["outputs"])
    agree_b = agreement(sample, a["outputs"], b["outputs"]) if b else None
    solo_note = ""
    mismatched = [r for r in sample if a["outputs"].get(r.id, [])[:r.output_len] != c["outputs"].get(r.id)]
    if mismatched:  # who matches model.generate on the prompt alone?
        solo = {r.id: solo_generate(ref, list(r.prompt_ids), r.output_len, device) for r in mismatched}
        a_solo = sum(a["outputs"][r.id][:r.output_len] == solo[r.id] for r in mismatched)
        c_solo = sum(c["outputs"][r.id] == solo[r.id] for r in mismatched)
        solo_note = (f"; of the {len(mismatched)} that differ, model.generate alone equals (a) in {a_solo} "
                     f"and (c) in {c_solo}")

    # ------------------------------------------------------------------ report
    table = Table(title=f"bsbench runner vs transformers: {len(requests)} ShareGPT requests, {args.model} fp32 on "
                        f"{session.device} ({torch.get_num_threads()} torch threads), outputs <= {args.max_output}")
    table.add_column("path")
    table.add_column("output tok/s", justify="right")
    table.add_column("useful output tokens", justify="right")
    table.add_column("wall s", justify="right")
    table.add_column("load avg at start", justify="right")
    table.add_column("notes")
    table.add_row("(a) bsbench continuous", f"{a['tps']:.1f}", str(a["tokens"]), f"{a['duration']:.2f}", loads["a"],
                  f"max_num_seqs {args.max_num_seqs}, max_num_batched_tokens {args.max_num_batched_tokens}, "
                  f"{a['steps']} steps, mean batch {a['mean_batch']:.1f}, preemptions {a['preemptions']}")
    if b:
        k = b["knobs"]
        table.add_row("(b) transformers CB", f"{b['tps']:.1f}", str(b["tokens"]), f"{b['duration']:.2f}", loads["b"],
                      f"max_requests_per_batch {k['max_requests_per_batch']}, max_batch_tokens "
                      f"{k['resolved_max_batch_tokens']}, page_size {k['page_size']} x num_blocks {k['num_blocks']} "
                      f"(cache {k['resolved_cache_tokens']} tokens), block sharing off, eos -1, sdpa")
    table.add_row("(c) padded generate", f"{c['tps']:.1f}", str(c["tokens"]), f"{c['duration']:.2f}", loads["c"],
                  f"{c['batches']} FCFS batches of <= {args.max_num_seqs}, left pad, {c['computed']} tokens generated")
    console.print(table)

    overhead = a["overhead"]
    targets = Table(title="targets")
    targets.add_column("target")
    targets.add_column("measured", justify="right")
    targets.add_column("result")

    def verdict(ok: bool) -> str:
        return "[green]PASS[/green]" if ok else "[red]MISS[/red]"

    if b:
        r_ab = a["tps"] / b["tps"]
        targets.add_row(f"(a)/(b) >= {TARGET_VS_HF_CB}", f"{r_ab:.2f}x", verdict(r_ab >= TARGET_VS_HF_CB))
    else:
        targets.add_row(f"(a)/(b) >= {TARGET_VS_HF_CB}", "skipped", "-")
    r_ac = a["tps"] / c["tps"]
    targets.add_row(f"(a)/(c) >= {TARGET_VS_PADDED}", f"{r_ac:.2f}x", verdict(r_ac >= TARGET_VS_PADDED))
    targets.add_row(f"(a) time outside forward <= {TARGET_OVERHEAD:.0%}", f"{overhead:.1%}",
                    verdict(overhead <= TARGET_OVERHEAD))
    console.print(targets)
    dec = a["decision_share"]
    console.print(f"(a) forward {a['forward_s']:.2f}s of {a['duration']:.2f}s; scheduler decisions "
                  f"{dec:.1%} of the run" if dec is not None else "")
    eq, n, tok_eq, tok_n = agree_c
    console.print(f"greedy agreement (a) vs (c) on {n} sampled requests: {eq}/{n} identical, "
                  f"{tok_eq}/{tok_n} tokens before the first difference{solo_note}")
    if agree_b:
        eq, n, tok_eq, tok_n = agree_b
        console.print(f"greedy agreement (a) vs (b) on the same sample: {eq}/{n} identical, "
                      f"{tok_eq}/{tok_n} tokens before the first difference")
    console.print(f"load average now: {loadavg()} ({os.cpu_count()} cpus); (a)'s run record: {a['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
