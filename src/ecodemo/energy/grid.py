"""French grid carbon intensity (RTE éCO2mix ``taux_co2``) and per-run emission recomputation.

Two emission figures live side by side in ``compute_runs``:

- ``emissions_kg`` / ``carbon_intensity_g_per_kwh``: CodeCarbon's own figure, computed with its
  **annual average** intensity for the country (a constant for every run in a year);
- ``grid_emissions_kg`` / ``grid_intensity_g_per_kwh`` / ``grid_intensity_source``: the same
  measured energy times the **éCO2mix intensity at the time the run happened** (the quarter-hour
  value at or before the run's midpoint, else the next one, within a tolerance), filled in by
  :func:`recompute_grid_emissions` (through ``compute_runs``' one writer, ``ecodemo.metering``)
  when the pipeline has collected ``grid_intensity`` rows.

``parse_eco2mix_taux_co2`` is pure and reads an ODRE Explore API v2.1 ``/records`` answer for the
dataset ``eco2mix-national-tr`` (fields ``date_heure``, ``taux_co2`` in gCO2e/kWh). The sensors
connector writes the same table through the same writer (``ecodemo.store.grid_intensity``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ecodemo.errors import InputError
from ecodemo.metering import set_grid_emissions
from ecodemo.store.grid_intensity import plausible_g_per_kwh, upsert_grid_intensity

log = logging.getLogger(__name__)

DATASET = "eco2mix-national-tr"
DEFAULT_ZONE = "FR"
DEFAULT_SOURCE = "RTE éCO2mix taux_co2 (ODRE eco2mix-national-tr)"
# Real-time éCO2mix comes by the quarter-hour; taux_co2 is sometimes published only every
# half-hour, so a run may sit up to 30 minutes from the nearest value.
DEFAULT_TOLERANCE = timedelta(minutes=30)


@dataclass(frozen=True)
class GridPoint:
    """Grid carbon intensity for one zone and instant. ``g_per_kwh`` in gCO2e/kWh, ts in UTC."""

    zone: str
    ts: datetime
    g_per_kwh: float


def parse_eco2mix_taux_co2(payload: Mapping[str, Any], *, zone: str = DEFAULT_ZONE,
                           source: str = DATASET) -> list[GridPoint]:
    """Grid intensity points from an ODRE ``/records`` answer (Explore API v2.1).

    Records whose ``taux_co2`` is null (the latest real-time quarter-hours often are) are
    skipped, not zero-filled. Raises :class:`InputError` for a payload of another shape, a
    timestamp without a UTC offset or a value outside plausible bounds.
    """
    results = payload.get("results") if isinstance(payload, Mapping) else None
    if not isinstance(results, list):
        raise InputError("not an Explore v2.1 /records answer (no 'results' list)",
                         source=source, field="results")
    points: dict[datetime, GridPoint] = {}
    for i, rec in enumerate(results):
        if not isinstance(rec, Mapping):
            raise InputError(f"record {i} is not an object", source=source)
        value = rec.get("taux_co2")
        if value is None:
            continue
        raw_ts = rec.get("date_heure")
        if not isinstance(raw_ts, str):
            raise InputError(f"record {i} has no date_heure", source=source, field="date_heure")
        try:
            ts = datetime.fromisoformat(raw_ts)
        except ValueError:
            raise InputError(f"record {i}: bad timestamp '{raw_ts}'", source=source,
                             field="date_heure") from None
        if ts.tzinfo is None:
            raise InputError(f"record {i}: timestamp '{raw_ts}' has no UTC offset",
                             source=source, field="date_heure")
        try:
            g = float(value)
        except (TypeError, ValueError):
            raise InputError(f"record {i}: taux_co2 '{value}' is not a number", source=source,
                             field="taux_co2") from None
        if not plausible_g_per_kwh(g):
            raise InputError(f"record {i}: taux_co2 {g} gCO2/kWh is implausible",
                             source=source, field="taux_co2")
        ts = ts.astimezone(UTC)
        points[ts] = GridPoint(zone=zone, ts=ts, g_per_kwh=g)
    return [points[k] for k in sorted(points)]


def store_grid_intensity(conn: psycopg.Connection, points: Iterable[GridPoint],
                         source: str = DEFAULT_SOURCE) -> int:
    """Upsert points into ``grid_intensity`` (through the table's one writer); returns rows
    inserted or changed."""
    with conn.transaction():
        return upsert_grid_intensity(conn, ((p.zone, p.ts, p.g_per_kwh) for p in points),
                                     source)


def recompute_grid_emissions(conn: psycopg.Connection, *, zone: str = DEFAULT_ZONE,
                             tolerance: timedelta = DEFAULT_TOLERANCE,
                             recompute_all: bool = False) -> int:
    """Fill the grid-intensity columns of compute runs that have a collected intensity.

    Runs with no ``grid_intensity`` value within ``tolerance`` keep NULL grid columns (their
    CodeCarbon annual-constant figure in ``emissions_kg`` is then the only one). A run whose
    energy was not measured gets the intensity but NULL ``grid_emissions_kg``.
    Returns the number of runs updated.
    """
    n = set_grid_emissions(conn, zone=zone, tolerance=tolerance, recompute_all=recompute_all)
    if not conn.autocommit:
        conn.commit()
    log.info("grid intensity applied to %d compute run(s) (zone %s)", n, zone)
    return max(n, 0)
