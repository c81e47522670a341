"""Embodied (manufacturing) CO2e of the machine the runs used: CO2e only, never kWh.

The machine's manufacturing footprint is spread evenly over its lifetime; the service is
charged the share of that lifetime its compute runs took::

    embodied_kgco2e = manufacturing_kgco2e / (lifetime_years x 8760 h) x run_hours x machine_share

``run_hours`` are the durations of the runs of the balance, with the same weights and factors
as their energy (amortisation of selection and training, the inference cadence, the kind's
share of a shared run). ``machine_share`` is 1 (the whole machine): the runs' share of the
host is not recorded, so this is an upper bound for a shared machine.

Where the manufacturing figure comes from: a deployment's own declaration in the benefit
model (``accounting.embodied_kgco2e`` with ``accounting.embodied_lifetime_years``), else the
spread of the servers in ``data/boavizta_servers.csv`` (Boavizta's environmental-footprint-data,
ODbL 1.0; ``data/NOTICE.md``): per sheet, Total x Manufacturing / Lifetime; the range is the
lowest and highest sheet, the central value their median.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ecodemo.energy.ranges import Span, pair
from ecodemo.errors import ConfigError

DATA_FILE = "boavizta_servers.csv"
HOURS_PER_YEAR = 8760.0
SOURCE = ("Boavizta, environmental-footprint-data (ODbL 1.0), boavizta-data-us.csv at commit "
          "004e0439 read 2026-12-03: Dell PowerEdge rack and tower servers' Product Carbon "
          "Footprint sheets (ecodemo/energy/data/boavizta_servers.csv, data/NOTICE.md)")


@dataclass(frozen=True)
class ServerSheet:
    """One manufacturer sheet of the extract (the values as published)."""

    name: str
    total_kgco2e: float
    manufacturing_share: float      # 0..1
    lifetime_years: float
    error_share: float | None       # the sheet's error margin, 0..1, when stated
    source_url: str

    @property
    def manufacturing_kgco2e(self) -> float:
        return self.total_kgco2e * self.manufacturing_share

    @property
    def kgco2e_per_hour(self) -> float:
        return self.manufacturing_kgco2e / (self.lifetime_years * HOURS_PER_YEAR)


def _share(text: str) -> float | None:
    text = text.strip()
    return float(text.rstrip("%")) / 100.0 if text else None


def parse_sheets(text: str, where: str = DATA_FILE) -> list[ServerSheet]:
    """The extract's rows (``where`` names the file in errors)."""
    out = []
    for line, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        try:
            share = _share(row["Manufacturing"])
            if share is None:
                raise ValueError("no manufacturing share")
            out.append(ServerSheet(
                name=f"{row['Manufacturer']} {row['Name']}",
                total_kgco2e=float(row["Total (kgCO2eq)"]), manufacturing_share=share,
                lifetime_years=float(row["Lifetime"]), error_share=_share(row["Error (%)"]),
                source_url=row["Sources"]))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{where}: line {line}: {exc}") from None
    if not out:
        raise ConfigError(f"{where}: no server rows")
    return out


@cache
def shipped_sheets() -> tuple[ServerSheet, ...]:
    text = resources.files("ecodemo.energy").joinpath("data", DATA_FILE).read_text("utf-8")
    return tuple(parse_sheets(text))


def _spread(values: list[float]) -> Span:
    """Lowest, median and highest of the sheets' values."""
    return Span(min(values), statistics.median(values), max(values))


def dataset_rate(sheets: tuple[ServerSheet, ...] | list[ServerSheet]) -> Span:
    """kgCO2e per hour of a server's life: lowest, median and highest sheet."""
    return _spread([s.kgco2e_per_hour for s in sheets])


@dataclass(frozen=True)
class Embodied:
    """The embodied share of a balance (kgCO2e), with how it was made."""

    kgco2e_span: Span | None        # None when a run's duration is unknown
    run_hours_span: Span | None
    rate_span: Span                 # kgCO2e per hour of the machine
    manufacturing_kgco2e_span: Span
    lifetime_years_span: Span
    machine_share: float
    source: str
    method: str

    @property
    def kgco2e(self) -> float | None:
        return None if self.kgco2e_span is None else self.kgco2e_span.central

    def as_dict(self) -> dict[str, Any]:
        return {
            "kgco2e": self.kgco2e, "kgco2e_range": pair(self.kgco2e_span),
            "run_hours": None if self.run_hours_span is None else self.run_hours_span.central,
            "run_hours_range": pair(self.run_hours_span),
            "kgco2e_per_machine_hour": self.rate_span.central,
            "kgco2e_per_machine_hour_range": self.rate_span.pair(),
            "manufacturing_kgco2e": self.manufacturing_kgco2e_span.central,
            "manufacturing_kgco2e_range": self.manufacturing_kgco2e_span.pair(),
            "lifetime_years": self.lifetime_years_span.central,
            "lifetime_years_range": self.lifetime_years_span.pair(),
            "machine_share": self.machine_share, "unit": "kgCO2e (not energy)",
            "source": self.source, "method": self.method}


def embodied_of(run_hours: Span | None, declared_kgco2e: Span | None = None,
                declared_lifetime_years: Span | None = None, declared_source: str = "",
                sheets: tuple[ServerSheet, ...] | None = None) -> Embodied:
    """The embodied CO2e of ``run_hours`` of compute, from a declared figure (both
    ``declared_*`` given) or the dataset's spread."""
    share = 1.0
    whole = ("x machine share 1 (the whole machine: the runs' share of the host is not "
             "recorded, so an upper bound on a shared machine)")
    if declared_kgco2e is not None and declared_lifetime_years is not None:
        life = declared_lifetime_years
        rate = Span(declared_kgco2e.low / (life.high * HOURS_PER_YEAR),
                    declared_kgco2e.central / (life.central * HOURS_PER_YEAR),
                    declared_kgco2e.high / (life.low * HOURS_PER_YEAR))
        mfg, source = declared_kgco2e, declared_source
        method = ("declared manufacturing kgCO2e of the deployment's server / (declared "
                  "lifetime years x 8760 h) x the balance's run hours " + whole)
    else:
        s = sheets or shipped_sheets()
        rate = dataset_rate(s)
        mfg = _spread([x.manufacturing_kgco2e for x in s])
        life = _spread([x.lifetime_years for x in s])
        source = SOURCE
        method = (f"per sheet, Total kgCO2e x Manufacturing share / (Lifetime years x 8760 h); "
                  f"range: lowest and highest of the {len(s)} sheets, central: their median "
                  f"(the sheets' own error margins, up to "
                  f"{max((x.error_share or 0.0) for x in s):.0%} of their totals, are not "
                  f"added); x the balance's run hours " + whole)
    kg = None if run_hours is None else run_hours * rate * share
    return Embodied(kgco2e_span=kg, run_hours_span=run_hours, rate_span=rate,
                    manufacturing_kgco2e_span=mfg, lifetime_years_span=life,
                    machine_share=share, source=source, method=method)
