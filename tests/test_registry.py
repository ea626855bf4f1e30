"""Policy discovery: any public module of bsbench/schedulers/ may hold a policy; private ones are skipped."""

from __future__ import annotations

import sys
import textwrap

import bsbench.schedulers as package
from bsbench.schedulers import registry

POLICY = textwrap.dedent('''
    from bsbench.schedulers.base import Scheduler
    from bsbench.schedulers.registry import register


    @register
    class OptionsNamedPolicy(Scheduler):
        name = "options-named-policy"

        def add_request(self, state, now): ...
        def _schedule(self, now): return None
        def update(self, plan, now): ...
        def unfinished(self): return []
''')


def test_a_policy_file_with_any_public_name_is_discovered(tmp_path, monkeypatch):
    # "options" was on a hand-kept list of modules discovery skipped: a user's options.py policy vanished
    (tmp_path / "options.py").write_text(POLICY)
    (tmp_path / "_helper.py").write_text("raise RuntimeError('discovery imported a private module')\n")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.delitem(sys.modules, "bsbench.schedulers.options", raising=False)
    try:
        schedulers = registry.all_schedulers()
    finally:
        sys.modules.pop("bsbench.schedulers.options", None)
    assert schedulers["options-named-policy"].__name__ == "OptionsNamedPolicy"
    assert {"static", "continuous", "uellm", "bucket"} <= set(schedulers)


def test_an_unknown_scheduler_gets_a_did_you_mean_in_one_line(bsbench):
    import pytest

    from bsbench.errors import BsbenchError

    with pytest.raises(BsbenchError, match=r"unknown scheduler 'continous' \(did you mean 'continuous'\?\)"):
        registry.get_scheduler("continous")
    with pytest.raises(BsbenchError) as far:
        registry.get_scheduler("zzz")
    assert "did you mean" not in str(far.value) and "choose one of" in str(far.value)
    for args in (("run", "--scheduler", "bukcet"), ("sweep", "--schedulers", "static,bukcet", "--rates", "1")):
        result = bsbench(*args)
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1
        assert "did you mean 'bucket'?" in result.err


def test_an_unknown_model_or_gpu_gets_a_did_you_mean_in_one_line(bsbench, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the name is not looked up on the hub
    for args, hint in ((("run", "--model", "llama2-13"), "did you mean the preset 'llama2-13b'?"),
                       (("run", "--model", "Llama2-7B", "--backend", "sim", "--gpu", "a100-40gb"),
                        "did you mean the preset 'llama2-7b'?"),
                       (("run", "--backend", "sim", "--gpu", "a100-40"), "did you mean 'a100-40gb'?")):
        result = bsbench(*args)
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert hint in result.err, result.err
    unrelated = bsbench("run", "--model", "someone/elses-model")
    assert unrelated.code == 2 and "did you mean" not in unrelated.err
