"""The ladder's specification (``models/specs/ladder.yaml``): rungs, tolerance, folds.

Found next to the package when installed from a wheel (``ecodemo/_models_specs``), else in the
repository's top-level ``models/specs``, else ``./models/specs``. Validated with pydantic; an
error names the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ecodemo.errors import ConfigError

SPEC_FILE = "ladder.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rung(_Strict):
    """A rung: a no-AI baseline (its name says which) or a LightGBM model."""

    type: Literal["baseline", "lightgbm"] = "baseline"
    num_boost_round: int = Field(default=200, ge=1)
    feature_set: Literal["small", "full"] = "full"
    buckets_h: list[float] = Field(default=[1, 3, 6, 12, 24, 48], min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    max_rows: int | None = Field(default=None, ge=100)


class Backtest(_Strict):
    folds: int = Field(default=28, ge=1, description="test origins, one per day")
    every_h: float = Field(default=24, gt=0)
    refresh_bands_days: float = Field(default=7, ge=0, description="0: never")


class Calibration(_Strict):
    days: float = Field(default=21, gt=0, description="held-out window of the bands")
    every_h: float = Field(default=6, gt=0)
    recent_error_days: float = Field(default=3, ge=0)


class LadderSpec(_Strict):
    tolerance: float = Field(default=0.02, ge=0)
    backtest: Backtest = Field(default_factory=Backtest)
    calibration: Calibration = Field(default_factory=Calibration)
    default: str
    rungs: dict[str, Rung | None] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> LadderSpec:
        if "seasonal_naive" not in self.rungs:
            raise ValueError("the ladder needs the 'seasonal_naive' rung (skill reference)")
        if self.default not in self.rungs:
            raise ValueError(f"field 'default' must name a rung, not '{self.default}'")
        return self


def specs_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "_models_specs", here.parents[2] / "models" / "specs",
                      Path.cwd() / "models" / "specs"):
        if (candidate / SPEC_FILE).is_file():
            return candidate
    raise ConfigError(f"model specs not found (expected models/specs/{SPEC_FILE})")


def load_ladder_spec(path: Path | None = None) -> dict[str, Any]:
    """Parse and check the ladder spec; a plain dict (rungs keep only the keys the file sets,
    a baseline rung may be empty). Errors name the file and field."""
    path = path or specs_dir() / SPEC_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the ladder spec: {exc}") from exc
    try:
        spec = LadderSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: field '{where}': {msg}" if where else f"{path}: {msg}"
                          ) from None
    out = spec.model_dump(exclude={"rungs"})
    out["rungs"] = {name: (r.model_dump(exclude_unset=True) if r is not None else {})
                    for name, r in spec.rungs.items()}
    return out
