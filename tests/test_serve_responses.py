"""Incremental detokenizing of streams (serve/responses.py): the pieces join to the text of all the ids, and a
multi-byte character split over tokens is never handed out broken."""

from __future__ import annotations

import random

import pytest

from bsbench.serve.responses import Detokenizer
from bsbench.workloads.tokenizer import load_tokenizer


@pytest.mark.parametrize("seed", range(5))
def test_pieces_join_to_the_whole_text_however_the_ids_arrive(seed):
    tokenizer = load_tokenizer(None)
    rng = random.Random(seed)
    ids = tokenizer.encode("héllo wörld ✓ 日本語のテキスト 🙂🙂 done\n  plain") + \
        [rng.randrange(3, tokenizer.vocab_size) for _ in range(80)]
    text = Detokenizer(tokenizer)
    pieces, i = [], 0
    while i < len(ids):
        step = rng.randint(1, 4)
        pieces.append(text.add(ids[i:i + step]))
        i += step
    pieces.append(text.flush())
    assert "".join(pieces) == tokenizer.decode(ids)


def test_a_character_split_over_tokens_is_held_back_until_complete():
    tokenizer = load_tokenizer(None)
    ids = tokenizer.encode("🙂")
    assert len(ids) > 1 and "\ufffd" in tokenizer.decode(ids[:1])  # the shipped byte-level BPE splits it
    text = Detokenizer(tokenizer)
    pieces = [text.add([i]) for i in ids]
    assert pieces[:-1] == [""] * (len(ids) - 1) and pieces[-1] == "🙂"
    assert text.flush() == ""
