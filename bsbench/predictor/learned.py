"""The learned predictor: prompt token ids -> output-length class, a tiny seeded torch model trained on CPU.

Data: ShareGPT-format records read through the workload package's reader
(`read_records` + `first_turn_pair`, vLLM's pair: first human turn -> reply),
tokenised with the workload's tokenizer, kept by the vLLM length filter
(prompt and output >= 4, prompt <= 1024, prompt + output <= 2048). Prompts over
16384 characters are skipped before tokenising (they are far over 1024 tokens).

Never trained on what it predicts (cross-fitting): every record goes to one of
`folds` folds by a hash of its first 32 prompt token ids (so a prompt and its
middle-truncated form share a fold), and model k is trained on every fold but
k. A request is predicted by the model of its own fold, which has never seen
its prompt, whatever subset of the source the benchmark sampled. The
out-of-fold predictions on the source data are the held-out accuracy report.

Model: hashed bag of prompt token ids (mean embedding, 32 dims) + prompt
length features (log length, one-hot log2 bucket) -> 64 ReLU -> one logit per
class; Adam, cross-entropy, seeded. The predicted length is a representative
of the class: its median training output (`median`, default) or its upper
bound (`upper`; the longest training output for the last class).

Cached in-process and on disk (`~/.cache/bsbench/predictor`, or `cache_dir`)
under a key over the data file's sha256, the tokenizer, the hyperparameters
and the seed. A cache folder that cannot take a newly trained predictor
(read-only, a file in the way) is a user error (BsbenchError, exit 2) raised
before any training; a folder that only holds the predictor asked for may be
read-only.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.predictor.base import LengthClasses, Prediction
from bsbench.progress import Progress
from bsbench.workloads.records import packaged_sharegpt_path, read_records
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.tokenizer import load_tokenizer

VERSION = 1
MAX_PROMPT_CHARS = 16384
FOLD_PREFIX = 32


@dataclass(slots=True, frozen=True)
class TrainConfig:
    boundaries: tuple[int, ...] = (64, 128, 256, 512)
    folds: int = 2
    buckets: int = 1 << 14
    dim: int = 32
    hidden: int = 64
    epochs: int = 10
    batch_size: int = 1024
    lr: float = 0.02
    weight_decay: float = 1e-5
    min_prompt: int = 4
    min_output: int = 4
    max_prompt: int = 1024
    max_total: int = 2048


@dataclass(slots=True)
class Example:
    prompt_ids: tuple[int, ...]
    output_len: int


def fold_of(prompt_ids: Sequence[int], folds: int) -> int:
    head = ",".join(map(str, prompt_ids[:FOLD_PREFIX])).encode()
    return int.from_bytes(hashlib.sha256(head).digest()[:4], "little") % folds


def prompt_key(prompt_ids: Sequence[int]) -> str:
    return hashlib.sha256(",".join(map(str, prompt_ids)).encode()).hexdigest()[:16]


def source_examples(path: str, tokenizer: Any, cfg: TrainConfig,
                    progress: Progress | None = None) -> tuple[list[Example], dict[str, int]]:
    """(prompt ids, output length) pairs of a ShareGPT file, kept by the length filter; plus drop counts.
    Tokenising is the slow part (tens of seconds for the packaged file): shown as a progress task."""
    # lazy: loads numpy
    from bsbench.workloads.sharegpt import first_turn_pair

    examples: list[Example] = []
    with _progress(progress).task("learned predictor: tokenising its training data", unit="records") as task:
        data = read_records(path)
        pairs, dropped = [], {"records": len(data.records), "malformed": data.malformed}
        for record in data.records:
            pair = first_turn_pair(record)
            if isinstance(pair, str):
                dropped[pair] = dropped.get(pair, 0) + 1
            elif len(pair[0]) > MAX_PROMPT_CHARS:
                dropped["prompt_too_long"] = dropped.get("prompt_too_long", 0) + 1
            else:
                pairs.append(pair)
        task.update(0, total=len(pairs))
        for start in range(0, len(pairs), 2048):
            chunk = pairs[start:start + 2048]
            encoded = tokenizer.encode_batch([t for pair in chunk for t in pair])
            for i in range(len(chunk)):
                prompt, out = encoded[2 * i], len(encoded[2 * i + 1])
                p = len(prompt)
                if p < cfg.min_prompt or out < cfg.min_output or p > cfg.max_prompt or p + out > cfg.max_total:
                    dropped["length_filter"] = dropped.get("length_filter", 0) + 1
                    continue
                examples.append(Example(tuple(prompt), out))
            task.update(start + len(chunk))
    dropped["kept"] = len(examples)
    return examples, dropped


def _progress(progress: Progress | None) -> Progress:
    return progress if progress is not None else Progress(enabled=False)


# --- the model -----------------------------------------------------------------------

class _Packed:
    """Every prompt's hashed ids in one flat tensor, so batches are gathered without Python loops."""

    def __init__(self, prompts: Sequence[Sequence[int]], cfg: TrainConfig) -> None:
        # lazy: torch is heavy
        import torch

        lens = [len(p) for p in prompts]
        self.ids = torch.tensor([t for p in prompts for t in p], dtype=torch.long) % cfg.buckets
        self.lens = torch.tensor(lens, dtype=torch.long)
        self.starts = torch.cumsum(self.lens, 0) - self.lens
        n = self.lens.float().clamp(min=1)
        bucket = torch.clamp(torch.log2(n).long(), max=11)
        self.extra = torch.cat([torch.log1p(n).unsqueeze(1) / 7.0,
                                torch.nn.functional.one_hot(bucket, 12).float()], dim=1)

    def batch(self, idx):
        # lazy: torch is heavy
        import torch

        lens = self.lens[idx]
        offsets = torch.cumsum(lens, 0) - lens
        within = torch.arange(int(lens.sum())) - torch.repeat_interleave(offsets, lens)
        positions = torch.repeat_interleave(self.starts[idx], lens) + within
        return self.ids[positions], offsets, self.extra[idx]


def _features(batch: Sequence[Sequence[int]], cfg: TrainConfig):
    # lazy: torch is heavy
    import torch

    packed = _Packed(batch, cfg)
    return packed.batch(torch.arange(len(batch)))


def _make_model(cfg: TrainConfig, num_classes: int):
    # lazy: torch is heavy
    import torch

    # lazy: torch is heavy
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bag = nn.EmbeddingBag(cfg.buckets, cfg.dim, mode="mean", sparse=True)
            self.mlp = nn.Sequential(nn.Linear(cfg.dim + 13, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, num_classes))

        def forward(self, ids: torch.Tensor, offsets: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
            return self.mlp(torch.cat([self.bag(ids, offsets), extra], dim=1))

    return Net()


def _train_one(examples: list[Example], classes: LengthClasses, cfg: TrainConfig, seed: int,
               on_epoch: Callable[[], None] = lambda: None):
    # lazy: torch is heavy
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_loop(examples, classes, cfg, seed, on_epoch)
    finally:
        torch.set_num_threads(threads)


def _train_loop(examples: list[Example], classes: LengthClasses, cfg: TrainConfig, seed: int,
                on_epoch: Callable[[], None]):
    # lazy: torch is heavy
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _make_model(cfg, classes.num_classes)
    labels = torch.tensor([classes.of(e.output_len) for e in examples], dtype=torch.long)
    packed = _Packed([e.prompt_ids for e in examples], cfg)
    sparse_opt = torch.optim.SparseAdam(list(model.bag.parameters()), lr=cfg.lr)
    opt = torch.optim.Adam(model.mlp.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(examples), generator=generator)
        for start in range(0, len(examples), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            ids, offsets, extra = packed.batch(idx)
            loss = torch.nn.functional.cross_entropy(model(ids, offsets, extra), labels[idx])
            opt.zero_grad()
            sparse_opt.zero_grad()
            loss.backward()
            opt.step()
            sparse_opt.step()
        on_epoch()
    model.eval()
    return model


def _representatives(examples: list[Example], classes: LengthClasses) -> tuple[list[int], list[int]]:
    """Per class: the median training output length and the upper bound (the longest output for the last class)."""
    by_class: list[list[int]] = [[] for _ in range(classes.num_classes)]
    for e in examples:
        by_class[classes.of(e.output_len)].append(e.output_len)
    medians, uppers = [], []
    for c, lengths in enumerate(by_class):
        low, up = classes.bounds(c)
        lengths.sort()
        medians.append(lengths[len(lengths) // 2] if lengths else (low + (up or 2 * max(low, 1))) // 2)
        uppers.append(up if up is not None else (lengths[-1] if lengths else 2 * low))
    return medians, uppers


# --- the predictor ---------------------------------------------------------------------

@dataclass(slots=True)
class AccuracyReport:
    """Accuracy by true length class on held-out data, plus within-one-class accuracy and error figures."""

    labels: list[str]
    support: list[int]
    correct: list[int]
    within_one: list[int]
    confusion: list[list[int]]
    abs_errors: list[float] = field(default_factory=list)
    rel_errors: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.support)

    @property
    def accuracy(self) -> float | None:
        return sum(self.correct) / self.total if self.total else None

    @property
    def within_one_accuracy(self) -> float | None:
        return sum(self.within_one) / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("abs_errors")
        out.pop("rel_errors")
        out.update(accuracy=self.accuracy, within_one_accuracy=self.within_one_accuracy, total=self.total)
        return out


def accuracy_report(true_lengths: Sequence[int], predicted_classes: Sequence[int], predicted_lengths: Sequence[int],
                    classes: LengthClasses) -> AccuracyReport:
    k = classes.num_classes
    confusion = [[0] * k for _ in range(k)]
    for t, p in zip(true_lengths, predicted_classes):
        confusion[classes.of(t)][p] += 1
    support = [sum(row) for row in confusion]
    correct = [confusion[c][c] for c in range(k)]
    within = [sum(confusion[c][max(0, c - 1):c + 2]) for c in range(k)]
    abs_err = [float(p - t) for t, p in zip(true_lengths, predicted_lengths)]
    rel_err = [math.log(max(p, 1) / max(t, 1)) for t, p in zip(true_lengths, predicted_lengths)]
    return AccuracyReport(classes.labels(), support, correct, within, confusion, abs_err, rel_err)


class LearnedPredictor:
    """Cross-fitted classifier; `predict` uses the model that never saw the request's prompt (see module doc)."""

    name = "learned"

    def __init__(self, models: list[Any], cfg: TrainConfig, medians: list[list[int]], uppers: list[list[int]],
                 class_length: str, meta: dict[str, Any], train_keys: list[set[str]] | None = None,
                 heldout: dict[str, Any] | None = None) -> None:
        if class_length not in ("median", "upper"):
            raise BsbenchError(f"class length must be median or upper, got {class_length!r}")
        self.models = models
        self.cfg = cfg
        self.classes = LengthClasses(cfg.boundaries)
        self.medians = medians
        self.uppers = uppers
        self.class_length = class_length
        self.meta = meta
        self.train_keys = train_keys or []
        self.heldout = heldout or {}

    def with_class_length(self, class_length: str) -> LearnedPredictor:
        return LearnedPredictor(self.models, self.cfg, self.medians, self.uppers, class_length, self.meta,
                                self.train_keys, self.heldout)

    def fold(self, prompt_ids: Sequence[int]) -> int:
        return fold_of(prompt_ids, self.cfg.folds)

    def length_of(self, fold: int, cls: int) -> int:
        table = self.medians if self.class_length == "median" else self.uppers
        return max(1, int(table[fold][cls]))

    def predict_classes(self, prompts: Sequence[Sequence[int]]) -> list[int]:
        # lazy: torch is heavy
        import torch

        out = [0] * len(prompts)
        by_fold: dict[int, list[int]] = {}
        for i, p in enumerate(prompts):
            by_fold.setdefault(self.fold(p), []).append(i)
        with torch.no_grad():
            for fold, idx in by_fold.items():
                for start in range(0, len(idx), 1024):
                    part = idx[start:start + 1024]
                    logits = self.models[fold](*_features([prompts[i] for i in part], self.cfg))
                    for i, c in zip(part, logits.argmax(dim=1).tolist()):
                        out[i] = int(c)
        return out

    def predict(self, spec: RequestSpec) -> Prediction:
        cls = self.predict_classes([spec.prompt_ids])[0]
        return Prediction(self.length_of(self.fold(spec.prompt_ids), cls), cls)

    def evaluate(self, prompts: Sequence[Sequence[int]], true_lengths: Sequence[int]) -> AccuracyReport:
        """Accuracy on `prompts`, each predicted by the model that did not train on it."""
        cls = self.predict_classes(prompts)
        lengths = [self.length_of(self.fold(p), c) for p, c in zip(prompts, cls)]
        return accuracy_report(true_lengths, cls, lengths, self.classes)

    def seen_in_training(self, prompt_ids: Sequence[int]) -> bool:
        """Whether the model that predicts this prompt trained on an identical prompt (never, by construction)."""
        if not self.train_keys:
            return False
        return prompt_key(prompt_ids) in self.train_keys[self.fold(prompt_ids)]


def train(examples: list[Example], cfg: TrainConfig = TrainConfig(), seed: int = 0, class_length: str = "median",
          meta: dict[str, Any] | None = None, progress: Progress | None = None) -> LearnedPredictor:
    """Cross-fitted training: model k on every fold but k; held-out report from the out-of-fold predictions.
    Shown as one progress task counting epochs over all folds."""
    if cfg.folds < 2:
        raise BsbenchError("the learned predictor needs at least 2 folds")
    classes = LengthClasses(cfg.boundaries)
    folds = [fold_of(e.prompt_ids, cfg.folds) for e in examples]
    models, medians, uppers, keys = [], [], [], []
    label = f"learned predictor: training on {len(examples):,} records ({cfg.folds} folds)"
    with _progress(progress).task(label, cfg.folds * cfg.epochs, "epochs") as task:
        for k in range(cfg.folds):
            part = [e for e, f in zip(examples, folds) if f != k]
            if not part:
                raise BsbenchError("too little data to train the learned predictor")
            models.append(_train_one(part, classes, cfg, seed * 1000 + k, task.advance))
            m, u = _representatives(part, classes)
            medians.append(m)
            uppers.append(u)
            keys.append({prompt_key(e.prompt_ids) for e in part})
        predictor = LearnedPredictor(models, cfg, medians, uppers, class_length, dict(meta or {}), keys)
        task.update(detail="held-out evaluation")
        report = predictor.evaluate([e.prompt_ids for e in examples], [e.output_len for e in examples])
    predictor.heldout = report.to_dict()
    return predictor


# --- cache -------------------------------------------------------------------------------

_MEMORY: dict[tuple, LearnedPredictor] = {}


def default_cache_dir() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "bsbench", "predictor")


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def load_or_train(*, data_path: str | None = None, tokenizer: str | None = None, cache_dir: str | None = None,
                  class_length: str = "median", seed: int = 0, cfg: TrainConfig = TrainConfig(),
                  progress: Progress | None = None, **_ignored: Any) -> LearnedPredictor:
    """The learned predictor for this data and tokenizer: from memory, from disk, or trained now (and saved;
    tokenising and training, about a minute on 2 CPU cores, are shown on `progress`)."""
    # lazy: torch is heavy
    import torch


    path = os.path.abspath(os.path.expanduser(data_path or packaged_sharegpt_path()))
    if not os.path.isfile(path):
        raise BsbenchError(f"predictor data file not found: {path}")
    handle = load_tokenizer(tokenizer)
    stat = os.stat(path)
    mem_key = (path, stat.st_size, stat.st_mtime_ns, handle.name, cfg, seed)
    if mem_key in _MEMORY:
        return _MEMORY[mem_key].with_class_length(class_length)
    key_text = repr((VERSION, _file_sha256(path), handle.name, handle.vocab_size, asdict(cfg), seed))
    key = hashlib.sha256(key_text.encode()).hexdigest()[:20]
    folder = os.path.expanduser(cache_dir) if cache_dir else default_cache_dir()
    file: str | None  # None once saving it failed
    file = os.path.join(folder, f"learned-{key}.pt")
    predictor = None
    if os.path.isfile(file):
        try:
            predictor = _load(file, cfg, torch)
        except Exception:  # a corrupt or foreign cache file: retrain and overwrite
            predictor = None
    if predictor is None:
        check_writable(folder)
        examples, counts = source_examples(path, handle, cfg, progress)
        if len(examples) < 10 * cfg.folds:
            raise BsbenchError(f"only {len(examples)} usable records in {path} to train the learned predictor")
        meta = {"data": path, "tokenizer": handle.name, "examples": len(examples), "source_counts": counts,
                "seed": seed, "cache_key": key}
        predictor = train(examples, cfg, seed, "median", meta, progress)
        try:
            _save(predictor, file, torch)
        except OSError as exc:  # a cache folder filled up meanwhile costs a retrain next time, not this run
            predictor.meta["cache_error"] = f"{folder}: {exc.strerror or exc}"
            file = None
    predictor.meta["cache_file"] = file
    _MEMORY[mem_key] = predictor
    return predictor.with_class_length(class_length)


def check_writable(folder: str) -> None:
    """Refuse a cache folder that cannot take a file (one BsbenchError line), so that a minute of training is
    not spent on a predictor that cannot be kept. Probed by writing a file: permission bits lie to root."""
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BsbenchError(f"predictor cache folder {folder} is not writable ({exc.strerror or exc}); "
                           "give a writable folder with --predictor-cache") from None


def _save(predictor: LearnedPredictor, file: str, torch: Any) -> None:
    os.makedirs(os.path.dirname(file), exist_ok=True)
    state = {"version": VERSION, "cfg": asdict(predictor.cfg), "models": [m.state_dict() for m in predictor.models],
             "medians": predictor.medians, "uppers": predictor.uppers, "meta": predictor.meta,
             "train_keys": [sorted(k) for k in predictor.train_keys], "heldout": predictor.heldout}
    tmp = f"{file}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, file)


def _load(file: str, cfg: TrainConfig, torch: Any) -> LearnedPredictor:
    state = torch.load(file, map_location="cpu", weights_only=True)
    if state["version"] != VERSION or state["cfg"] != asdict(cfg):
        raise ValueError("stale cache")
    classes = LengthClasses(cfg.boundaries)
    models = []
    for sd in state["models"]:
        model = _make_model(cfg, classes.num_classes)
        model.load_state_dict(sd)
        model.eval()
        models.append(model)
    meta = dict(state["meta"], loaded_from_cache=True)
    return LearnedPredictor(models, cfg, state["medians"], state["uppers"], "median", meta,
                            [set(k) for k in state["train_keys"]], state["heldout"])
