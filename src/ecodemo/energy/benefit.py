"""The benefit model: forecast improvement over the no-AI baseline -> avoided energy and CO2.

The model is data, not code: ``benefit_defaults.yaml`` (shipped in this package) gives, per kind,
the error unit, the energy factors and the emission terms, each with its value, unit, source and
whether it is an assumption. A user file of the same shape is deep-merged over it.

For every kind the arithmetic is the same (units in names)::

    avoided_kwh    = error_reduction [error_unit] x period_h x product(energy_factors)
    avoided_kgco2e = avoided_kwh x sum(sign x emission_terms [g/kWh]) / 1000

``error_reduction`` is the sum over the kind's sensors of MAE(baseline) - MAE(model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ecodemo.errors import ConfigError
from ecodemo.units import KINDS, UNITS

DEFAULTS_FILE = "benefit_defaults.yaml"


class Parameter(BaseModel):
    """One number of the model, with its provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    unit: str
    assumption: bool = True
    source: str = Field(min_length=1)
    sign: int = Field(default=1, description="Emission terms only: +1 adds, -1 subtracts.")

    @model_validator(mode="after")
    def _finite(self) -> Parameter:
        if not math.isfinite(self.value):
            raise ValueError("value must be finite")
        if self.sign not in (1, -1):
            raise ValueError("sign must be 1 or -1")
        return self


class KindModel(BaseModel):
    """How one kind's forecast improvement turns into avoided energy and CO2."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_unit: str
    lever: str
    key: str
    energy_factors: dict[str, Parameter]
    emission_terms: dict[str, Parameter]

    @model_validator(mode="after")
    def _check(self) -> KindModel:
        if self.error_unit not in UNITS:
            raise ValueError(f"unknown error_unit '{self.error_unit}'")
        if self.key not in self.energy_factors:
            raise ValueError(f"key '{self.key}' must name one of the energy_factors")
        if not self.emission_terms:
            raise ValueError("at least one emission term is needed")
        return self

    def kwh_per_error_unit_hour(self) -> float:
        """kWh avoided per unit of error reduction held for one hour (product of factors)."""
        return math.prod(p.value for p in self.energy_factors.values())

    def net_g_per_kwh(self) -> float:
        """gCO2e avoided per avoided kWh (signed sum of the emission terms)."""
        return sum(p.sign * p.value for p in self.emission_terms.values())


class Accounting(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline_model: str = "seasonal_naive"
    default_period_days: float = Field(default=7, gt=0)
    training_service_life_h: Parameter


class BenefitModel(BaseModel):
    """The whole benefit model (validated). ``origin`` says which files it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    accounting: Accounting
    kinds: dict[str, KindModel]
    origin: str = DEFAULTS_FILE

    @model_validator(mode="after")
    def _kinds(self) -> BenefitModel:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kind(s) {sorted(unknown)} (known: {', '.join(KINDS)})")
        return self

    def kind(self, kind: str) -> KindModel:
        try:
            return self.kinds[kind]
        except KeyError:
            raise ConfigError(f"the benefit model has no entry for kind '{kind}'") from None


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merged key by key, anything else replaced. Kept by hand (six lines) rather than
    a dependency: ``deepmerge``'s default merger appends lists, and its override-only
    configuration is as long as this function."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    return data


def default_model_text() -> str:
    return resources.files("ecodemo.energy").joinpath(DEFAULTS_FILE).read_text(encoding="utf-8")


def load_benefit_model(path: Path | None = None) -> BenefitModel:
    """The shipped defaults, deep-merged with the YAML file at ``path`` when given."""
    data = _read_yaml(default_model_text(), DEFAULTS_FILE)
    origin = DEFAULTS_FILE
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: benefit model file not found")
        data = _deep_merge(data, _read_yaml(p.read_text(encoding="utf-8"), str(p)))
        origin = f"{DEFAULTS_FILE} + {p}"
    data["origin"] = origin
    try:
        return BenefitModel.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"{origin}: {loc}: {first['msg']}") from exc


@dataclass(frozen=True)
class Avoided:
    """Avoided energy (kWh) and CO2 (kgCO2e) over a period, and per unit of the key factor."""

    error_reduction: float          # in the kind's error_unit (sum over sensors)
    period_h: float
    avoided_kwh: float
    avoided_kgco2e: float
    kgco2e_per_unit_key: float      # avoided_kgco2e if the key factor were 1 (break-even helper)


def avoided(model: KindModel, error_reduction: float, period_h: float) -> Avoided:
    """Apply the kind's model to an error reduction held over ``period_h`` hours."""
    kwh = error_reduction * period_h * model.kwh_per_error_unit_hour()
    kg = kwh * model.net_g_per_kwh() / 1000.0
    others = math.prod(p.value for n, p in model.energy_factors.items() if n != model.key)
    per_key = error_reduction * period_h * others * model.net_g_per_kwh() / 1000.0
    return Avoided(error_reduction=error_reduction, period_h=period_h, avoided_kwh=kwh,
                   avoided_kgco2e=kg, kgco2e_per_unit_key=per_key)


def assumptions_of(model: KindModel) -> dict[str, Any]:
    """The kind's parameters as a JSON-able dict (stored and printed with every balance)."""
    def dump(params: dict[str, Parameter], signed: bool) -> dict[str, Any]:
        out = {}
        for name, p in params.items():
            d: dict[str, Any] = {"value": p.value, "unit": p.unit, "assumption": p.assumption,
                                 "source": " ".join(p.source.split())}
            if signed:
                d["sign"] = p.sign
            out[name] = d
        return out

    return {
        "error_unit": model.error_unit,
        "lever": " ".join(model.lever.split()),
        "key": model.key,
        "energy_factors": dump(model.energy_factors, False),
        "emission_terms": dump(model.emission_terms, True),
        "kwh_per_error_unit_hour": model.kwh_per_error_unit_hour(),
        "net_g_per_kwh": model.net_g_per_kwh(),
    }
