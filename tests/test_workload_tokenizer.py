"""The shipped tokenizer and loading others."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from bsbench.errors import BsbenchError
from bsbench.workloads.tokenizer import load_tokenizer, shipped_tokenizer_dir


def test_shipped_tokenizer_shape_and_roundtrip() -> None:
    tok = load_tokenizer(None)
    assert tok.name == "bsbench-bpe-32k" and tok.vocab_size == 32000
    assert (tok.pad_token_id, tok.eos_token_id) == (3, 1) and tok.special_ids() == {0, 1, 2, 3}
    text = "Explain paged attention in two sentences, please. éü 中文 🙂"
    ids = tok.encode(text)
    assert ids and all(i >= 4 for i in ids)  # no special tokens added
    assert tok.decode(ids) == text  # byte-level: lossless
    assert tok.encode_batch([text, "hi"]) == [ids, tok.encode("hi")]


def test_shipped_tokenizer_is_small_and_loads_with_transformers() -> None:
    folder = resources.files("bsbench").joinpath("data", "tokenizer")
    size = sum(f.stat().st_size for f in __import__("pathlib").Path(str(folder)).iterdir())
    assert size < 5 * 2**20
    via_transformers = load_tokenizer(shipped_tokenizer_dir())
    assert via_transformers.vocab_size == 32000 and via_transformers.pad_token_id == 3
    text = "The same ids through transformers."
    assert via_transformers.encode(text) == load_tokenizer(None).encode(text)


def test_tokenizer_json_file_path_and_errors(tmp_path) -> None:
    tok = load_tokenizer(str(resources.files("bsbench").joinpath("data", "tokenizer", "tokenizer.json")))
    assert tok.vocab_size == 32000
    with pytest.raises(BsbenchError, match="tokenizer not found"):
        load_tokenizer(str(tmp_path / "missing"))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(BsbenchError, match="cannot load tokenizer file"):
        load_tokenizer(str(bad))


def test_shipped_tokenizer_is_byte_level_bpe_with_special_tokens_first() -> None:
    data = json.loads(resources.files("bsbench").joinpath("data", "tokenizer", "tokenizer.json").read_text())
    assert data["model"]["type"] == "BPE" and [t["content"] for t in data["added_tokens"]] == \
        ["<s>", "</s>", "<unk>", "<pad>"]
