"""Tokenizer loading: the shipped 32k byte-level BPE by default, any transformers tokenizer by name or path.

Every token count a workload records comes from the `TokenizerHandle` it was
built with, and `TokenizerHandle.name` is what the run record names.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.hub import TOKENIZER_FILES, check_hub_name, offline_error
from bsbench.paths import looks_local

DEFAULT_TOKENIZER_NAME = "bsbench-bpe-32k"


@dataclass(slots=True, eq=False)
class TokenizerHandle:
    """A loaded tokenizer with the few operations workloads need.

    `encode` / `encode_batch` add no special tokens; `encode_batch` runs in the
    Rust backend (parallel), so tokenising thousands of prompts is fast.
    """

    name: str
    vocab_size: int
    pad_token_id: int
    eos_token_id: int | None
    _backend: Any = field(repr=False)
    _is_raw: bool = field(repr=False, default=True)  # tokenizers.Tokenizer vs transformers tokenizer
    _fingerprint: str | None = field(repr=False, default=None)

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        if self._is_raw:
            return [enc.ids for enc in self._backend.encode_batch(list(texts), add_special_tokens=False)]
        return list(self._backend(list(texts), add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self._backend.decode(list(ids), skip_special_tokens=False)

    def chat_prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt of a chat: the tokenizer's chat template with the generation prompt, when it has one;
        else the plain join `"{role}: {content}\n"` per message, then `"assistant:"` (the shipped tokenizer)."""
        if not self._is_raw and getattr(self._backend, "chat_template", None):
            ids = self._backend.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            return list(ids["input_ids"] if hasattr(ids, "keys") else ids)  # a BatchEncoding in newer transformers
        return self.encode("".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:")

    def fingerprint(self) -> str | None:
        """A digest of the tokenizer's own serialisation (vocabulary, merges, normalisers), for cache keys;
        None when it has no serialisation (a slow transformers tokenizer)."""
        if self._fingerprint is None:
            backend = self._backend if self._is_raw else getattr(self._backend, "backend_tokenizer", None)
            if backend is None:
                return None
            self._fingerprint = hashlib.sha256(backend.to_str().encode()).hexdigest()
        return self._fingerprint

    def special_ids(self) -> frozenset[int]:
        """Ids of special tokens (synthetic prompts avoid them)."""
        if self._is_raw:
            decoder = self._backend.get_added_tokens_decoder()
            return frozenset(int(i) for i, tok in decoder.items() if tok.special)
        return frozenset(int(i) for i in getattr(self._backend, "all_special_ids", []) or [])


def shipped_tokenizer_dir() -> str:
    """The folder of the shipped default tokenizer (package data)."""
    return str(resources.files("bsbench").joinpath("data", "tokenizer"))


def load_tokenizer(name_or_path: str | None = None) -> TokenizerHandle:
    """None or 'bsbench-bpe-32k' -> the shipped tokenizer; a tokenizer.json file, a local folder
    or a hub id -> that tokenizer (via transformers.AutoTokenizer). Failures raise BsbenchError.
    Cached per name: loading twice in a process returns the same handle."""
    key = name_or_path or DEFAULT_TOKENIZER_NAME
    return _load_cached(key)


@lru_cache(maxsize=8)
def _load_cached(key: str) -> TokenizerHandle:
    if key == DEFAULT_TOKENIZER_NAME:
        return _from_json_file(os.path.join(shipped_tokenizer_dir(), "tokenizer.json"), DEFAULT_TOKENIZER_NAME)
    expanded = os.path.expanduser(key)
    if os.path.isfile(expanded):
        return _from_json_file(expanded, key)
    if looks_local(key) and not os.path.isdir(expanded):
        raise BsbenchError(f"tokenizer not found: {key} (give a folder, a tokenizer.json file or a hub id)")
    return _from_transformers(expanded, key)


def _from_json_file(path: str, name: str) -> TokenizerHandle:
    # lazy: tokenizers is heavy
    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(path)
    except Exception as exc:  # tokenizers raises a bare Exception on bad files
        raise BsbenchError(f"cannot load tokenizer file {path}: {str(exc).splitlines()[0]}") from None
    pad = _first_id(backend.token_to_id, ["<pad>", "[PAD]", "<|pad|>"])
    eos = _first_id(backend.token_to_id, ["</s>", "<|endoftext|>", "<eos>", "[SEP]"])
    return TokenizerHandle(name=name, vocab_size=backend.get_vocab_size(), pad_token_id=pad if pad is not None else 0,
                           eos_token_id=eos, _backend=backend, _is_raw=True)


def _first_id(lookup: Any, tokens: list[str]) -> int | None:
    for token in tokens:
        found = lookup(token)
        if found is not None:
            return int(found)
    return None


def _from_transformers(path_or_id: str, name: str) -> TokenizerHandle:
    # a hub id: is the hub there at all (else is it cached)? Fails in a moment, before transformers is imported
    offline = None if os.path.isdir(path_or_id) else check_hub_name("tokenizer", name, TOKENIZER_FILES)
    quiet = [logging.getLogger(name) for name in ("huggingface_hub", "transformers")]
    levels = [logger.level for logger in quiet]
    try:
        for logger in quiet:  # hub retries log warnings; the user gets our one-line error instead
            logger.setLevel(logging.ERROR)
        # lazy: transformers is heavy
        from transformers import AutoTokenizer

        # never run code shipped with a tokenizer (auto_map), and never ask on stdin whether to
        backend = AutoTokenizer.from_pretrained(path_or_id, trust_remote_code=False,
                                                local_files_only=offline is not None)
    except Exception as exc:  # OSError, ValueError, connection errors: all user-facing
        if offline is not None:
            raise BsbenchError(offline_error("tokenizer", name, offline)) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BsbenchError(f"cannot load tokenizer {name!r}: {first}") from None
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
    eos = backend.eos_token_id
    pad = backend.pad_token_id if backend.pad_token_id is not None else (eos if eos is not None else 0)
    return TokenizerHandle(name=name, vocab_size=len(backend), pad_token_id=int(pad),
                           eos_token_id=None if eos is None else int(eos), _backend=backend, _is_raw=False)
