"""The learned predictor: trains on a ShareGPT-format file, is cached (disk and memory), never predicts a
prompt with a model that trained on it, and reports held-out accuracy by class."""

from __future__ import annotations

import json
import os
import random

import pytest

from bsbench.predictor import LengthClasses, make_predictor, profile
from bsbench.predictor import learned as L
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.tokenizer import load_tokenizer

WORDS = {0: "hi", 1: "explain", 2: "describe", 3: "essay", 4: "novel"}
REPLY = {0: 30, 1: 90, 2: 180, 3: 350, 4: 700}  # words; the shipped tokenizer makes ~1 token per word here


def _record(i: int, rng: random.Random) -> dict:
    cls = rng.randrange(5)
    filler = " ".join(rng.choice(["the", "a", "cat", "dog", "sky", "tree", "car"]) for _ in range(rng.randint(3, 30)))
    prompt = f"{WORDS[cls]} {filler} {WORDS[cls]} item {i}"
    reply = " ".join("word" for _ in range(int(REPLY[cls] * rng.uniform(0.8, 1.2))))
    return {"id": str(i), "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": reply}]}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("pred") / "mini_sharegpt.json"
    path.write_text(json.dumps([_record(i, rng) for i in range(400)]))
    return str(path)


CFG = L.TrainConfig(epochs=15, batch_size=64, buckets=1 << 12)


@pytest.fixture(scope="module")
def trained(data_file, tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("cache"))
    return L.load_or_train(data_path=data_file, cache_dir=cache, cfg=CFG, seed=0), cache


def test_classes():
    c = LengthClasses()
    assert [c.of(n) for n in (0, 63, 64, 127, 128, 511, 512, 5000)] == [0, 0, 1, 1, 2, 3, 4, 4]
    assert c.labels() == ["0-64", "64-128", "128-256", "256-512", "512+"]


def test_learned_trains_reports_heldout_accuracy_and_caches(trained, data_file, monkeypatch):
    predictor, cache = trained
    held = predictor.heldout
    assert held["total"] == predictor.meta["examples"] > 300
    assert held["labels"] == ["0-64", "64-128", "128-256", "256-512", "512+"] and sum(held["support"]) == held["total"]
    assert held["accuracy"] > 0.8  # the classes are written into the prompts: an easy task
    assert held["within_one_accuracy"] >= held["accuracy"]
    # representative lengths sit in their classes
    for fold in range(CFG.folds):
        for cls in range(5):
            low, up = predictor.classes.bounds(cls)
            assert low <= predictor.medians[fold][cls] and (up is None or predictor.medians[fold][cls] < up)
    # a second load comes from memory, a fresh process's load from disk; neither trains
    monkeypatch.setattr(L, "train", lambda *a, **k: pytest.fail("retrained instead of using the cache"))
    again = L.load_or_train(data_path=data_file, cache_dir=cache, cfg=CFG, seed=0, class_length="upper")
    assert again.models is predictor.models and again.class_length == "upper"
    L._MEMORY.clear()
    disk = L.load_or_train(data_path=data_file, cache_dir=cache, cfg=CFG, seed=0)
    assert disk.meta.get("loaded_from_cache") and disk.heldout == held
    spec = RequestSpec("x", tuple(load_tokenizer().encode("essay about the sky essay item 9999")), 300, 0.0)
    assert disk.predict(spec) == predictor.predict(spec)


def test_benchmarked_prompts_are_never_predicted_by_a_model_trained_on_them(trained, data_file):
    predictor, _ = trained
    examples, _ = L.source_examples(data_file, load_tokenizer(), CFG)
    # every source prompt (a ShareGPT workload draws its requests from these) is excluded from its model's data
    assert not any(predictor.seen_in_training(e.prompt_ids) for e in examples)
    # ...while the other fold's model did train on it
    other = [L.prompt_key(e.prompt_ids) in predictor.train_keys[1 - predictor.fold(e.prompt_ids)] for e in examples]
    assert all(other)
    # predictions and the accuracy on a "benchmark" drawn from the source
    bench = [RequestSpec(f"b{i}", e.prompt_ids, e.output_len, 0.0) for i, e in enumerate(examples[:60])]
    report = predictor.evaluate([r.prompt_ids for r in bench], [r.output_len for r in bench])
    assert report.total == 60 and report.accuracy > 0.7
    p = profile(predictor, bench[0], kv_bytes_per_token=1000)
    assert p.kv_bytes == 1000 * (bench[0].prompt_len + p.predicted_len) and p.predicted_cls is not None


def test_learned_through_the_factory_and_bad_data(data_file, tmp_path):
    with pytest.raises(Exception, match="not found"):
        make_predictor("learned", data_path=str(tmp_path / "missing.json"))
    with pytest.raises(Exception, match="unknown predictor"):
        make_predictor("psychic")
    with pytest.raises(Exception, match="sigma"):
        make_predictor("noisy", sigma=-1)


def _not_trained(*args, **kwargs):
    pytest.fail("tokenised or trained before the cache folder was checked")


def test_an_unwritable_cache_folder_is_refused_before_training(data_file, tmp_path, monkeypatch):
    """Issue 28: a cache folder that cannot take the trained predictor once trained for a minute and said
    nothing; now it is one BsbenchError line, before any tokenising."""
    from bsbench.errors import BsbenchError

    monkeypatch.setattr(L, "source_examples", _not_trained)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(BsbenchError, match=r"predictor cache folder .*a-file/cache is not writable \(.+\)"):
        L.load_or_train(data_path=data_file, cache_dir=str(blocker / "cache"), cfg=CFG, seed=7)  # not in memory


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into a 0o555 folder")
def test_a_read_only_cache_folder_is_refused(data_file, tmp_path, monkeypatch):
    from bsbench.errors import BsbenchError

    monkeypatch.setattr(L, "source_examples", _not_trained)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(BsbenchError, match="not writable"):
            L.load_or_train(data_path=data_file, cache_dir=str(folder), cfg=CFG, seed=7)
    finally:
        folder.chmod(0o755)


def test_profile_predictor_with_an_unwritable_cache_exits_2_with_one_line(bsbench, data_file, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = bsbench("profile-predictor", "--predictor", "learned", "--predictor-data", data_file,
                     "--predictor-cache", blocker / "cache", "-w", "smoke", "--quiet")
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bsbench: error: predictor cache folder"), result.err
    assert "not writable" in lines[0] and "--predictor-cache" in lines[0]
