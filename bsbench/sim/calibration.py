"""Calibration files (versioned JSON) and the tier (c) cost model that reads one.

A calibration belongs to one (device, model, dtype, block size): it holds the fitted
coefficients (`linear_fit.FEATURES`), the operator tables they use (`op_tables.py`),
the residuals on the calibration grid, every measured point, and how it was measured
(warm-ups, repeats, torch version, threads).
`content_hash` is the SHA-256 of the file's canonical JSON without that field, so a
record that names the hash names exactly one set of coefficients, and an edited or
truncated file is refused on load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

from bsbench.errors import BsbenchError
from bsbench.model.shape import ModelShape
from bsbench.sim.linear_fit import FEATURES, predict
from bsbench.sim.op_tables import RowTable, tables_from_dict
from bsbench.sim.work import StepWork

SCHEMA = "bsbench-calibration"
# 4: a padded decode step's call counts as a decode call (v3 counted it as a masked one); 3: operator tables,
# attention pairs by kind (v2 had 0/1 LM-head indicators; v1 seven features)
SCHEMA_VERSION = 4


@dataclass(slots=True, frozen=True)
class Calibration:
    device: dict[str, Any]  # {"name": ..., "device": "cpu" | "cuda:0", "threads": ...}
    model: dict[str, Any]  # ModelShape.describe()
    dtype: str
    block_size: int
    coefficients: dict[str, float]
    residuals: dict[str, Any]  # accuracy.error_stats on the grid
    points: list[dict[str, Any]]  # name, layout, features, measured_s, predicted_s
    settings: dict[str, Any]  # warmups, repeats, torch version, bsbench version
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)  # op_tables.TABLES by name: {"knots": [...], "seconds": [...]}

    def to_dict(self) -> dict[str, Any]:
        body = {"schema": SCHEMA, **asdict(self)}
        return {**body, "content_hash": content_hash(body)}

    def check_applies(self, shape: ModelShape, dtype: str, block_size: int) -> None:
        """BsbenchError unless this calibration was made for this model shape, dtype and block size."""
        if self.model != shape.describe() or self.dtype != dtype or self.block_size != block_size:
            raise BsbenchError(
                f"the calibration is for model {self.model.get('name')!r} in {self.dtype} with block size "
                f"{self.block_size}; this run uses {shape.info.name!r} in {dtype} with block size {block_size}: "
                "calibrate for it first"
            )


def content_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def save_calibration(calibration: Calibration, path: Path) -> str:
    """Write the calibration as JSON (atomically); returns its content hash."""
    data = calibration.to_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return cast(str, data["content_hash"])


def load_calibration(path: Path) -> Calibration:
    """Read and verify a calibration file; any problem is a one-line BsbenchError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BsbenchError(f"calibration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BsbenchError(f"cannot read calibration file {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise BsbenchError(f"{path} is not a bsbench calibration file")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BsbenchError(f"{path} has calibration schema version {version}; this bsbench reads {SCHEMA_VERSION}: "
                           "run `bsbench calibrate` again")
    stored = data.pop("content_hash", None)
    if stored != content_hash(data):
        raise BsbenchError(f"{path}: content hash mismatch (the file was edited or is damaged); calibrate again")
    data.pop("schema")
    try:
        calibration = Calibration(**data)
    except TypeError as exc:
        raise BsbenchError(f"{path}: malformed calibration ({exc})") from None
    if set(calibration.coefficients) != set(FEATURES):
        raise BsbenchError(f"{path}: coefficients {sorted(calibration.coefficients)} do not match {list(FEATURES)}")
    try:
        tables_from_dict(calibration.tables)
    except (TypeError, ValueError, KeyError) as exc:
        raise BsbenchError(f"{path}: malformed operator tables ({exc})") from None
    return calibration


@dataclass(slots=True, frozen=True)
class CalibratedCostModel:
    """Tier (c): a fitted linear model of the real runner's step time on one device."""

    calibration: Calibration
    source: str = ""  # the file it came from, for the record
    tier: ClassVar[str] = "calibrated"
    _coefficients: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _tables: dict[str, RowTable] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_coefficients", tuple(self.calibration.coefficients[f] for f in FEATURES))
        object.__setattr__(self, "_tables", tables_from_dict(self.calibration.tables))

    def step_time(self, work: StepWork) -> float:
        return predict(self._coefficients, work, self._tables)

    def describe(self) -> dict[str, Any]:
        c = self.calibration
        return {"tier": self.tier, "kind": "linear-fit", "file": self.source,
                "content_hash": c.to_dict()["content_hash"], "device": c.device, "model": c.model.get("name"),
                "dtype": c.dtype, "block_size": c.block_size, "coefficients": c.coefficients,
                "grid_residuals": c.residuals}
