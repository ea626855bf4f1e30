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
