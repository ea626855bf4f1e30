"""Extract compact operator tables from Vidur's published CUDA profiles into bsbench/data/profiles/.

Vidur (github.com/microsoft/vidur, MIT licence) publishes per-operator CUDA timings of
decoder layers (`data/profiling/compute/<gpu>/<org>/<model>/mlp.csv`: median ms per
layer at `num_tokens` rows and tensor-parallel degree 1-8) and NCCL all-reduce timings
(`data/profiling/network/<gpu>_dgx/all_reduce.csv`: median ms by message bytes). This
script reads them from a git copy of that repository (`git show COMMIT:path`, no work
tree needed), keeps the medians on a thinned token grid and a log-spaced size grid, and
writes one JSON file with the source, the commit and the licence notice.

    python scripts/extract_vidur_profiles.py --vidur-git /path/to/vidur/.git [--commit HEAD]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import subprocess
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "bsbench" / "data" / "profiles" / "vidur.json"
GPUS = {"a100": "a100-80gb", "h100": "h100-sxm"}  # Vidur's a100 is the 80 GB SXM part (its device config)
MODELS = ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-70b-hf", "meta-llama/Meta-Llama-3-8B",
          "meta-llama/Meta-Llama-3-70B")
OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj", "input_layernorm",
       "post_attention_layernorm", "attn_rope", "mlp_act", "add")
# every token count to 128, then steps of 32 to 1,024 and of 128 to 4,096 (where Vidur has them)
TOKEN_GRID = sorted({*range(1, 9), *range(8, 129, 8), *range(160, 1025, 32), *range(1152, 4097, 128)})
LICENCE = ("MIT License. Copyright (c) Microsoft Corporation. Permission is hereby granted, free of charge, to any "
           "person obtaining a copy of this software and associated documentation files (the \"Software\"), to deal "
           "in the Software without restriction, including without limitation the rights to use, copy, modify, "
           "merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to "
           "whom the Software is furnished to do so, subject to the following conditions: The above copyright "
           "notice and this permission notice shall be included in all copies or substantial portions of the "
           "Software. THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, "
           "INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND "
           "NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR "
           "OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN "
           "CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.")


def _rows(git_dir: str, commit: str, path: str) -> list[dict[str, str]] | None:
    done = subprocess.run(["git", "--git-dir", git_dir, "show", f"{commit}:{path}"], capture_output=True, text=True)
    return list(csv.DictReader(io.StringIO(done.stdout))) if done.returncode == 0 else None


def _sig(value: float) -> float:
    return float(f"{value:.4g}")


def compute_tables(git_dir: str, commit: str) -> list[dict]:
    tables = []
    for gpu, preset in GPUS.items():
        for model in MODELS:
            path = f"data/profiling/compute/{gpu}/{model}/mlp.csv"
            rows = _rows(git_dir, commit, path)
            if not rows:
                continue
            first = rows[0]
            by_tp: dict[int, dict[int, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
            for r in rows:
                by_tp[int(r["num_tensor_parallel_workers"])][int(r["num_tokens"])].append(r)
            for tp, by_tokens in sorted(by_tp.items()):
                tokens = [t for t in TOKEN_GRID if t in by_tokens]
                ops = {op: [_sig(statistics.median(float(r[f"time_stats.{op}.median"]) for r in by_tokens[t]))
                            for t in tokens] for op in OPS}
                tables.append({"gpu": preset, "vidur_gpu": gpu, "model": model, "path": path,
                               "n_head": int(first["n_head"]), "n_kv_head": int(first["n_kv_head"]),
                               "n_embd": int(first["n_embd"]), "n_expanded_embd": int(first["n_expanded_embd"]),
                               "tensor_parallel": tp, "num_tokens": tokens, "ms": ops})
    return tables


def all_reduce_tables(git_dir: str, commit: str) -> list[dict]:
    tables = []
    for gpu, preset in GPUS.items():
        path = f"data/profiling/network/{gpu}_dgx/all_reduce.csv"
        rows = _rows(git_dir, commit, path) or []
        by_workers: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:  # within one node, as Vidur reads them (devices_per_node == num_workers)
            if r["collective"] == "all_reduce" and r["num_workers"] == r["devices_per_node"]:
                by_workers[int(r["num_workers"])][int(r["size"])].append(float(r["time_stats.all_reduce.median"]))
        for workers, by_size in sorted(by_workers.items()):
            sizes = sorted(by_size)
            kept, last = [], 0.0
            for s in sizes:  # about 12 sizes per doubling, plus the ends
                if s == sizes[0] or s == sizes[-1] or s >= last * 2 ** (1 / 12):
                    kept.append(s)
                    last = s
            tables.append({"gpu": preset, "vidur_gpu": gpu, "path": path, "num_workers": workers, "bytes": kept,
                           "ms": [_sig(statistics.median(by_size[s])) for s in kept]})
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vidur-git", required=True, help="git directory of a microsoft/vidur copy")
    parser.add_argument("--commit", default="HEAD")
    args = parser.parse_args()
    commit = subprocess.run(["git", "--git-dir", args.vidur_git, "rev-parse", args.commit], capture_output=True,
                            text=True, check=True).stdout.strip()
    data = {
        "source": "https://github.com/microsoft/vidur (data/profiling), extracted by scripts/extract_vidur_profiles.py",
        "commit": commit,
        "licence": LICENCE,
        "units": "median milliseconds per decoder layer (compute) or per call (all_reduce), CUDA, fp16",
        "ops": list(OPS),
        "compute": compute_tables(args.vidur_git, commit),
        "all_reduce": all_reduce_tables(args.vidur_git, commit),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {len(data['compute'])} compute tables, "
          f"{len(data['all_reduce'])} all-reduce tables from {commit}")


if __name__ == "__main__":
    main()
