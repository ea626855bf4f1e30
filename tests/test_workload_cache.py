"""The tokenised-sample cache: a second build of the same workload tokenises nothing and gives the same workload."""

from __future__ import annotations

import os

import pytest

from bsbench.workloads.build import build_workload
from bsbench.workloads.tokenizer import TokenizerHandle


def _fingerprint(wl):
    return [(r.id, r.prompt_ids, r.output_len, r.arrival_s, r.slo, r.priority, r.source) for r in wl.requests]


@pytest.fixture
def count_encodes(monkeypatch):
    calls = []
    real = TokenizerHandle.encode_batch

    def counting(self, texts):
        calls.append(len(texts))
        return real(self, texts)

    monkeypatch.setattr(TokenizerHandle, "encode_batch", counting)
    return calls


def test_second_build_is_a_hit_with_the_same_workload(sharegpt_json, count_encodes):
    first = build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=20, filter="none", seed=3)
    assert count_encodes
    count_encodes.clear()
    second = build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=20, filter="none", seed=3)
    assert not count_encodes  # nothing tokenised
    assert _fingerprint(second) == _fingerprint(first) and second.load_report == first.load_report
    assert len(os.listdir(os.environ["BSBENCH_WORKLOAD_CACHE"])) == 1


@pytest.mark.parametrize("change", [{"seed": 4}, {"num_requests": 19}, {"filter": "vllm"}, {"max_prompt_len": 8}])
def test_any_setting_that_changes_the_sample_misses(sharegpt_json, count_encodes, monkeypatch, change):
    base = {"dataset_path": str(sharegpt_json), "num_requests": 20, "filter": "none", "seed": 3}
    build_workload("sharegpt", **base)
    count_encodes.clear()
    changed = build_workload("sharegpt", **{**base, **change})
    assert count_encodes
    monkeypatch.setenv("BSBENCH_WORKLOAD_CACHE", "off")  # the same build without the cache
    uncached = build_workload("sharegpt", **{**base, **change})
    assert _fingerprint(changed) == _fingerprint(uncached)


def test_changed_file_content_misses(sharegpt_json, count_encodes):
    build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=10, filter="none")
    sharegpt_json.write_text(sharegpt_json.read_text().replace("hello", "world"))
    count_encodes.clear()
    build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=10, filter="none")
    assert count_encodes


def test_corrupt_or_unwritable_cache_costs_a_tokenisation_not_the_run(sharegpt_json, tmp_path, monkeypatch):
    first = build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=10, filter="none")
    folder = os.environ["BSBENCH_WORKLOAD_CACHE"]
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "w") as handle:
            handle.write("{not json")
    again = build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=10, filter="none")
    assert _fingerprint(again) == _fingerprint(first)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("BSBENCH_WORKLOAD_CACHE", str(blocker / "cache"))  # cannot be created
    third = build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=10, filter="none")
    assert _fingerprint(third) == _fingerprint(first)
