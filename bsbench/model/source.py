"""Where a --model value comes from: a preset, a local folder, or the Hugging Face hub (checked offline first)."""

from __future__ import annotations

from bsbench.hub import MODEL_FILES, check_hub_name
from bsbench.model.presets import PRESETS
from bsbench.paths import looks_local


def check_model_source(model: str) -> str | None:
    """`check_hub_name` for a --model value; presets and names that can only be local paths never touch
    the hub (None; the loader then says whether the folder exists)."""
    if model in PRESETS or looks_local(model):
        return None
    return check_hub_name("model", model, MODEL_FILES)
