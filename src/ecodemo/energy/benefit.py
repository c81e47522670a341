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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ecodemo.energy.ranges import Span, product
from ecodemo.errors import ConfigError
from ecodemo.units import KINDS, problem

DEFAULTS_FILE = "benefit_defaults.yaml"


class Parameter(BaseModel):
    """One number of the model, with its provenance and, for an assumption, its range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    unit: str
    assumption: bool = True
    source: str = Field(min_length=1)
    sign: int = Field(default=1, description="Emission terms only: +1 adds, -1 subtracts.")
    low: float | None = None
    high: float | None = None
    range_source: str | None = None

    @model_validator(mode="after")
    def _finite(self) -> Parameter:
        for name in ("value", "low", "high"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name} must be finite")
        if self.sign not in (1, -1):
            raise ValueError("sign must be 1 or -1")
        if self.assumption and (self.low is None or self.high is None
                                or not (self.range_source or "").strip()):
            raise ValueError("an assumption needs low, high and range_source (where its "
                             "range comes from)")
        lo, hi = self.bounds()
        if not lo <= self.value <= hi:
            raise ValueError(f"value {self.value:g} is outside its range [{lo:g}, {hi:g}]: "
                             f"give low and high with the value")
        return self

    def bounds(self) -> tuple[float, float]:
        """(low, high); a unit conversion is exact (both ends are the value)."""
        lo = self.value if self.low is None else self.low
        hi = self.value if self.high is None else self.high
        return lo, hi

    def span(self) -> Span:
        lo, hi = self.bounds()
        return Span(lo, self.value, hi)


class Counterfactual(BaseModel):
    """The forecast a balance is compared with: a ladder rung, or a series in the store.

    ``rung: best_no_ai`` (the default) is the no-AI rung with the lowest nMAE in the kind's
    latest backtest. ``series`` maps each sensor to a sensor holding the operator's own
    forecast of it (for the grid, the TSO's day-ahead forecast), read over the same period.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rung: str | None = None
    series: dict[str, str] | None = None
    why: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one(self) -> Counterfactual:
        if (self.rung is None) == (self.series is None):
            raise ValueError("give exactly one of rung (a ladder rung name or best_no_ai) "
                             "and series (sensor_id: forecast sensor_id)")
        return self

    @property
    def name(self) -> str:
        if self.rung is not None:
            return self.rung
        return "series: " + ", ".join(f"{k} <- {v}" for k, v in sorted((self.series or {})
                                                                        .items()))


class KindModel(BaseModel):
    """How one kind's forecast improvement turns into avoided energy and CO2."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_unit: str
    lever: str
    key: str
    energy_effect: Literal["saved", "shifted"]
    energy_factors: dict[str, Parameter]
    emission_terms: dict[str, Parameter]
    counterfactual: Counterfactual | None = None

    @model_validator(mode="after")
    def _check(self) -> KindModel:
        if problem(self.error_unit) is not None:
            raise ValueError(f"error_unit: {problem(self.error_unit)}")
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

    def factors_span(self, without: str | None = None) -> Span:
        return product([p.span() for n, p in self.energy_factors.items() if n != without])

    def net_g_per_kwh_span(self) -> Span:
        out = Span.point(0.0)
        for p in self.emission_terms.values():
            out = out + p.span() if p.sign > 0 else out - p.span()
        return out


class MeasurementBand(BaseModel):
    """Relative width (+/-) of a measured energy, by how it was measured, with its source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relative: float = Field(ge=0, lt=1)
    source: str = Field(min_length=1)


class Accounting(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline_model: str = "seasonal_naive"
    counterfactual: Counterfactual
    secondary_counterfactuals: list[str] = Field(default_factory=list)
    default_period_days: float = Field(default=7, gt=0)
    inference_cadence_h: float | None = Field(default=1, gt=0)
    training_service_life_h: Parameter
    # relative range of CodeCarbon's annual intensity, for runs with no grid value collected
    annual_intensity_factor: Parameter | None = None
    measurement_bands: dict[Literal["hardware_counters", "estimated"], MeasurementBand]
    # The deployment's own server: manufacturing kgCO2e and lifetime (both, or neither: then
    # the spread of the shipped Boavizta extract, ecodemo.energy.embodied)
    embodied_kgco2e: Parameter | None = None
    embodied_lifetime_years: Parameter | None = None

    @model_validator(mode="after")
    def _embodied_pair(self) -> Accounting:
        if (self.embodied_kgco2e is None) != (self.embodied_lifetime_years is None):
            raise ValueError("embodied_kgco2e and embodied_lifetime_years go together: "
                             "declare both (or neither, for the shipped dataset's range)")
        for p in (self.embodied_kgco2e, self.embodied_lifetime_years):
            if p is not None and p.bounds()[0] <= 0:
                raise ValueError("embodied_kgco2e and embodied_lifetime_years must be > 0")
        return self

    def band(self, method: str | None) -> tuple[float, str]:
        """(relative width, why) of an energy measured by ``method`` (a compute_runs text)."""
        key: Literal["hardware_counters", "estimated"] = (
            "hardware_counters" if method and method.startswith("measured") else "estimated")
        b = self.measurement_bands[key]
        return b.relative, f"{key}: +/-{b.relative:.0%} ({' '.join(b.source.split())})"


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

    def counterfactual(self, kind: str) -> Counterfactual:
        """The kind's declared counterfactual, else the accounting default."""
        return self.kind(kind).counterfactual or self.accounting.counterfactual


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merged key by key, anything else replaced. Kept by hand (six lines) rather than
    a dependency: ``deepmerge``'s default merger appends lists, and its override-only
    configuration is as long as this function."""
    out = dict(base)
    for k, v in override.items():
        # A declared counterfactual replaces the default whole (rung and series exclude each
        # other); every other mapping is merged key by key.
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "counterfactual":
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
    """Avoided energy (kWh) and CO2 (kgCO2e) over a period, and per unit of the key factor,
    each with its range from the assumptions' ranges and the error reduction's interval
    (its sampling interval over the backtest's test origins, or a point when none)."""

    error_reduction: float          # in the kind's error_unit (sum over sensors)
    period_h: float
    avoided_kwh: float
    avoided_kgco2e: float
    kgco2e_per_unit_key: float      # avoided_kgco2e if the key factor were 1 (break-even helper)
    kwh_span: Span
    kgco2e_span: Span
    per_unit_key_span: Span
    energy_effect: str = "saved"
    error_reduction_span: Span | None = None


def avoided(model: KindModel, error_reduction: float | Span, period_h: float) -> Avoided:
    """Apply the kind's model to an error reduction (with its interval, when a Span) held
    over ``period_h`` hours."""
    reduction = (error_reduction if isinstance(error_reduction, Span)
                 else Span.point(float(error_reduction)))
    held = reduction * period_h
    kwh = held * model.factors_span()
    kg = held * model.factors_span() * model.net_g_per_kwh_span() * 0.001
    per_key = held * model.factors_span(without=model.key) * model.net_g_per_kwh_span() * 0.001
    return Avoided(error_reduction=reduction.central, period_h=period_h,
                   avoided_kwh=kwh.central, avoided_kgco2e=kg.central,
                   kgco2e_per_unit_key=per_key.central, kwh_span=kwh, kgco2e_span=kg,
                   per_unit_key_span=per_key, energy_effect=model.energy_effect,
                   error_reduction_span=reduction)


def assumptions_of(model: KindModel) -> dict[str, Any]:
    """The kind's parameters as a JSON-able dict (stored and printed with every balance)."""
    def dump(params: dict[str, Parameter], signed: bool) -> dict[str, Any]:
        out = {}
        for name, p in params.items():
            d: dict[str, Any] = {"value": p.value, "unit": p.unit, "assumption": p.assumption,
                                 "source": " ".join(p.source.split()),
                                 "range": list(p.bounds())}
            if p.range_source:
                d["range_source"] = " ".join(p.range_source.split())
            if signed:
                d["sign"] = p.sign
            out[name] = d
        return out

    return {
        "error_unit": model.error_unit,
        "lever": " ".join(model.lever.split()),
        "key": model.key,
        "energy_effect": model.energy_effect,
        "energy_factors": dump(model.energy_factors, False),
        "emission_terms": dump(model.emission_terms, True),
        "kwh_per_error_unit_hour": model.kwh_per_error_unit_hour(),
        "net_g_per_kwh": model.net_g_per_kwh(),
        "net_g_per_kwh_range": model.net_g_per_kwh_span().pair(),
    }
