"""The ladder's specification (``models/specs/ladder.yaml``): rungs, tolerance, folds.

Found next to the package when installed from a wheel (``ecodemo/_models_specs``), else in the
repository's top-level ``models/specs``, else ``./models/specs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ecodemo.errors import ConfigError

SPEC_FILE = "ladder.yaml"


def specs_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "_models_specs", here.parents[2] / "models" / "specs",
                      Path.cwd() / "models" / "specs"):
        if (candidate / SPEC_FILE).is_file():
            return candidate
    raise ConfigError(f"model specs not found (expected models/specs/{SPEC_FILE})")


def load_ladder_spec(path: Path | None = None) -> dict[str, Any]:
    """Parse and check the ladder spec; errors name the file and field."""
    path = path or specs_dir() / SPEC_FILE
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the ladder spec: {exc}") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("rungs"), dict) or not spec["rungs"]:
        raise ConfigError(f"{path}: field 'rungs' must map rung names to their settings")
    for name, rung in spec["rungs"].items():
        kind = (rung or {}).get("type", "baseline")
        if kind not in ("baseline", "lightgbm"):
            raise ConfigError(f"{path}: rung '{name}': type must be baseline or lightgbm")
    if "seasonal_naive" not in spec["rungs"]:
        raise ConfigError(f"{path}: the ladder needs the 'seasonal_naive' rung (skill reference)")
    spec.setdefault("tolerance", 0.02)
    spec.setdefault("backtest", {}).setdefault("folds", 28)
    spec["backtest"].setdefault("every_h", 24)
    spec.setdefault("calibration", {}).setdefault("days", 21)
    spec["calibration"].setdefault("every_h", 6)
    spec["calibration"].setdefault("recent_error_days", 3)
    if spec.get("default") not in spec["rungs"]:
        raise ConfigError(f"{path}: field 'default' must name a rung")
    return spec
