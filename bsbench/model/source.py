"""Where a --model value comes from: a preset, a local folder, or the Hugging Face hub (checked offline first)."""

from __future__ import annotations

from bsbench.errors import BsbenchError, did_you_mean
from bsbench.hub import MODEL_FILES, check_hub_name
from bsbench.model.presets import PRESETS
from bsbench.paths import looks_local


def check_model_source(model: str) -> str | None:
    """`check_hub_name` for a --model value; presets and names that can only be local paths never touch
    the hub (None; the loader then says whether the folder exists). A refused name close to a preset's
    ends with "did you mean 'llama2-13b'?" (preset_hint)."""
    if model in PRESETS or looks_local(model):
        return None
    try:
        return check_hub_name("model", model, MODEL_FILES)
    except BsbenchError as exc:
        raise BsbenchError(f"{exc}{preset_hint(model)}") from None


def preset_hint(model: str) -> str:
    """"; did you mean the preset 'llama2-13b'?" when `model` looks like a typo of a preset's name, else ''."""
    hint = did_you_mean(model, PRESETS)
    return f"; {hint.replace('did you mean ', 'did you mean the preset ')}" if hint else ""
