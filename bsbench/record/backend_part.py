"""The backend's own section of a run record: one typed part per backend kind.

A record's config is a common part (scheduler, rate, model, KV budget, ...) plus exactly one of these,
`RecordConfig.backend`. Each part owns what only its backend has, and answers the questions every report
asks of a run without a switch on strings:

- `backend_id()`: what produced the times, as one comparable string; runs with different ids never share a
  table, a sweep key or a gate baseline;
- `timing_label()`: '' for measured times, else what produced them (shown beside every simulated figure);
- `times_text()`: what the times are, in words, for every run;
- `simulated`: True when a cost model produced the times.

JSON (schema version 5): `config.backend` is an object whose `kind` names the part. Records of versions 2-4
kept these fields flat in the config (`backend`, `clock`, `gpu`, `instances`, `base_url`, ...):
`part_from_flat` reads them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from bsbench.redaction import url_without_credentials


@dataclass(slots=True, frozen=True)
class BackendPart:
    """What every kind answers; the kinds below add their own fields."""

    kind: ClassVar[str] = ""
    clock: ClassVar[str] = "wall"  # wall | virtual: what advanced the run's clock

    @property
    def simulated(self) -> bool:
        return self.clock == "virtual"

    @property
    def gpu(self) -> str | None:
        """The device preset a cost model describes; None for measured runs."""
        return None

    def backend_id(self) -> str:
        return self.kind

    def timing_label(self) -> str:
        return ""

    def times_text(self) -> str:
        return self.timing_label() or "measured (real runner, wall clock)"

    def model_weights(self) -> str | None:
        """The weights the model ran with (dummy, a path or a hub id); None when no model ran here."""
        return None

    def device_name(self, measured: str | None) -> str | None:
        """What the record's environment calls the device the times describe, from the `measured` device name
        (reports and the gate group runs by it)."""
        return measured

    def to_json(self) -> dict[str, Any]:
        fields = {_JSON_NAMES.get(f.name, f.name): getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"kind": self.kind, **{k: v for k, v in fields.items() if v is not None}}


@dataclass(slots=True, frozen=True)
class RealPart(BackendPart):
    """The model runner on the wall clock: measured times."""

    kind: ClassVar[str] = "real"
    weights: str | None = None  # dummy | a checkpoint path or hub id
    weights_seed: int | None = None

    def model_weights(self) -> str | None:
        return self.weights


@dataclass(slots=True, frozen=True)
class CostModelPart(BackendPart):
    """Fields of every kind whose times come from a cost model."""

    clock: ClassVar[str] = "virtual"
    device_preset: str | None = None  # the GPU preset (or the calibration's measured device) the cost model describes
    cost_model: str | None = None  # its tier: roofline | profiled | calibrated (uncalibrated: records before 2026-12)
    calibration_hash: str | None = None  # content hash of the calibration file of a calibrated cost model

    @property
    def gpu(self) -> str | None:
        return self.device_preset

    def backend_id(self) -> str:
        tier = f"calibrated:{self.calibration_hash[:16]}" if self.calibration_hash else \
            "profiled" if self.cost_model == "profiled" else "roofline"
        tp = getattr(self, "tensor_parallel", None)
        device = f"{self.device_preset}x{tp}" if tp else self.device_preset
        return f"{self._id_kind}/virtual/{device}/{tier}"

    @property
    def _id_kind(self) -> str:
        return self.kind

    def timing_label(self) -> str:
        tier = f"{self.cost_model} cost model" if self.cost_model else "cost model"
        if self.calibration_hash:
            tier += f" {self.calibration_hash[:12]}"
        return f"{self._what} ({self._runner}, {self.device_preset or 'no device'}, {tier})"

    _what: ClassVar[str] = "simulated"
    _runner: ClassVar[str] = "sim"

    def device_name(self, measured: str | None) -> str | None:
        return f"simulated {self.device_preset}"


@dataclass(slots=True, frozen=True)
class VirtualTimePart(CostModelPart):
    """The model runner on a virtual clock: real tokens, times from the cost model."""

    kind: ClassVar[str] = "virtual"
    _what: ClassVar[str] = "virtual time"
    _runner: ClassVar[str] = "real runner, tokens computed"
    weights: str | None = None
    weights_seed: int | None = None

    def model_weights(self) -> str | None:
        return self.weights

    @property
    def _id_kind(self) -> str:
        return "real"  # ids of records written before the typed parts: real/virtual/<gpu>/<tier>

    def device_name(self, measured: str | None) -> str | None:
        return f"{measured} (virtual clock: {self.device_preset}, {self.cost_model} cost model)"


@dataclass(slots=True, frozen=True)
class SimPart(CostModelPart):
    """The simulated runner: no torch, no weights; times and memory from the cost model."""

    kind: ClassVar[str] = "sim"
    tensor_parallel: int | None = None  # GPUs of the preset per instance (--tensor-parallel); None: one


@dataclass(slots=True, frozen=True)
class ClusterPart(CostModelPart):
    """Several simulated instances (prefill and decode) on one virtual clock, joined by a KV-transfer link."""

    kind: ClassVar[str] = "cluster"
    instances: str = "prefill=1,decode=1"  # the topology
    link: str = "nvlink"  # the KV-transfer link preset (backends/cluster/links.py)
    decode_gpu: str | None = None  # the decode instances' GPU preset when it differs from `device_preset`
    tensor_parallel: int | None = None  # GPUs of the preset per instance (--tensor-parallel); None: one

    @property
    def _id_kind(self) -> str:
        return "sim"  # one simulated device kind: comparable with single-instance sim runs of the same preset


@dataclass(slots=True, frozen=True)
class OpenAIPart(BackendPart):
    """A remote OpenAI-compatible server: the policy is the server's, times are the client's clock."""

    kind: ClassVar[str] = "openai"
    base_url: str | None = None  # the server's base URL, credentials removed (never the API key)
    served_model: str | None = None  # the model name sent in each request
    endpoint: str | None = None  # completions | chat

    def __post_init__(self) -> None:
        if self.base_url is not None:  # whoever built it, a record never holds a URL's credentials
            object.__setattr__(self, "base_url", url_without_credentials(self.base_url))

    def times_text(self) -> str:
        return "measured (remote server over HTTP, client clock)"


_JSON_NAMES = {"device_preset": "gpu"}  # field name -> JSON key (the key records have always used)
PARTS: dict[str, type[BackendPart]] = {p.kind: p for p in (RealPart, VirtualTimePart, SimPart, ClusterPart,
                                                             OpenAIPart)}
_FIELD_NAMES = {v: k for k, v in _JSON_NAMES.items()}
_STRINGS = ("weights", "device_preset", "cost_model", "calibration_hash", "instances", "link", "decode_gpu",
            "base_url", "served_model", "endpoint")


def part_from_json(obj: Any) -> BackendPart:
    """A part from its JSON object (schema version 5); ValueError says what is wrong."""
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise ValueError("config.backend must be an object with a 'kind'")
    cls = PARTS.get(obj["kind"])
    if cls is None:
        raise ValueError(f"config.backend.kind {obj['kind']!r:.40} is none of {', '.join(PARTS)}")
    obj = {_FIELD_NAMES.get(k, k): v for k, v in obj.items()}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(obj) - names - {"kind"})
    if unknown:
        raise ValueError(f"config.backend ({cls.kind}) has unknown keys: {', '.join(unknown)}")
    for key in names & set(_STRINGS):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise ValueError(f"config.backend.{_JSON_NAMES.get(key, key)} must be a string or null")
    if obj.get("tensor_parallel") is not None and (isinstance(obj["tensor_parallel"], bool)
                                                    or not isinstance(obj["tensor_parallel"], int)):
        raise ValueError("config.backend.tensor_parallel must be an integer or null")
    if obj.get("weights_seed") is not None and (isinstance(obj["weights_seed"], bool)
                                                 or not isinstance(obj["weights_seed"], int)):
        raise ValueError("config.backend.weights_seed must be an integer or null")
    return cls(**{k: v for k, v in obj.items() if k != "kind"})


# the flat config keys of schema versions 2-4 that became part fields
FLAT_KEYS = ("backend", "clock", "gpu", "cost_model", "calibration_hash", "instances", "link", "decode_gpu",
             "base_url", "served_model", "endpoint", "weights", "weights_seed")


def part_from_flat(obj: dict[str, Any]) -> BackendPart:
    """The part of a config written with flat backend fields (schema versions 2-4; absent backend and clock mean
    the real runner on the wall clock, as before the simulated backend). ValueError says what is wrong."""
    for key in FLAT_KEYS:
        value = obj.get(key)
        if key == "weights_seed":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError("config.weights_seed must be an integer or null")
        elif value is not None and not isinstance(value, str):
            raise ValueError(f"config.{key} must be a string or null")
    backend, clock = obj.get("backend") or "real", obj.get("clock") or "wall"
    costed = {"device_preset": obj.get("gpu"), "cost_model": obj.get("cost_model"),
              "calibration_hash": obj.get("calibration_hash")}
    if backend == "openai":
        return OpenAIPart(obj.get("base_url"), obj.get("served_model"), obj.get("endpoint"))
    if backend == "sim" and obj.get("instances") is not None:
        return ClusterPart(**costed, instances=obj["instances"], link=obj.get("link") or "nvlink",
                           decode_gpu=obj.get("decode_gpu"))
    if backend == "sim":
        return SimPart(**costed)
    if backend == "real" and clock == "virtual":
        return VirtualTimePart(**costed, weights=obj.get("weights"), weights_seed=obj.get("weights_seed"))
    if backend == "real":
        return RealPart(obj.get("weights"), obj.get("weights_seed"))
    raise ValueError(f"config.backend {backend!r:.40} is none of real, sim, openai")
