"""Unit spellings as portals write them: which are units, what they are stored as, what converts."""

from __future__ import annotations

import pytest

from ecodemo.errors import InputError
from ecodemo.units import (
    COMMON_UNITS,
    canonical,
    conversion_problem,
    count_max,
    dimension,
    factor,
    problem,
    quantity_for,
)

ACCEPTED = {
    # Telraam, Montpellier and other open-data portals
    "cars/h": "cars/h",
    "veh/h": "vehicles/h",
    "veh./h": "vehicles/h",
    "vehicles per hour": "vehicles/h",
    "Vehicles/H": "vehicles/h",
    "heavy vehicles/h": "heavy vehicles/h",
    "heavy-vehicles/hr": "heavy vehicles/h",
    "bicycles/day": "bicycles/d",
    "bikes/h": "bicycles/h",
    "cyclists per day": "bicycles/d",
    "/d": "count/d",
    "/h": "count/h",
    "per hour": "count/h",
    "/15min": "count/15min",
    "/ 15 min": "count/15min",
    "vehicles/(15 min)": "vehicles/15min",
    "/24h": "count/d",
    "passengers/day": "passengers/d",
    "pedestrians/h": "pedestrians/h",
    "count": "count",
    # French spellings (the project's users are French local authorities)
    "Nb vélos/jour": "bicycles/d",
    "véhicules par heure": "vehicles/h",
    "véh/h": "vehicles/h",
    "poids lourds/h": "heavy vehicles/h",
    "voyageurs/jour": "passengers/d",
    # power, energy, percentage
    "W": "W", "kW": "kW", "MW": "MW", "GW": "GW",
    "Wh": "Wh", "kWh": "kWh", "MWh": "MWh", "MW h": "MWh",
    "%": "%", "percent": "%", "pct": "%",
}

REFUSED = [
    "", "   ", "furlongs", "m", "mW",        # mW: milliwatt is nearly always a typo for MW
    "KW", "kwh",                             # power symbols are case-sensitive
    "h", "s", "/an",                         # a period alone; "an" (year) is not a fixed period
    "kW/h", "%/h", "cars/h/h", "W**2", "2 W", "1e3 kW", "count/30s",
    "n/a", "#N/A", "unit", "NaN", "bicycles/h'); DROP TABLE x;--", "x" * 200,
    "vehicles\x00/h", "__class__",
]


@pytest.mark.parametrize(("spelling", "stored"), sorted(ACCEPTED.items()))
def test_wild_spelling_is_stored_in_its_canonical_form(spelling: str, stored: str) -> None:
    assert problem(spelling) is None
    assert canonical(spelling) == stored
    assert canonical(stored) == stored  # what is stored parses back to itself


@pytest.mark.parametrize("spelling", REFUSED)
def test_nonsense_is_not_a_unit(spelling: str) -> None:
    why = problem(spelling)
    assert why is not None and "\n" not in why
    with pytest.raises(InputError):
        canonical(spelling)


def test_common_units_are_canonical() -> None:
    assert all(canonical(u) == u for u in COMMON_UNITS)


def test_conversions_within_a_dimension() -> None:
    assert factor("kW", "MW") == pytest.approx(1e-3)
    assert factor("GWh", "kWh") == pytest.approx(1e6)
    assert factor("cars/h", "vehicles/h") == 1.0
    assert factor("Nb vélos/jour", "bicycles/d") == 1.0
    assert factor("/15min", "vehicles/15min") == 1.0
    assert factor("pct", "%") == 1.0


def test_a_daily_total_is_not_an_hourly_count() -> None:
    why = conversion_problem("bicycles/day", "bicycles/h")
    assert why is not None and "per day" in why and "per hour" in why
    assert conversion_problem("/15min", "vehicles/h") is not None
    assert conversion_problem("vehicles/h", "vehicles/d") is not None
    with pytest.raises(InputError):
        factor("bicycles/day", "bicycles/h")


def test_different_dimensions_do_not_convert() -> None:
    assert "cannot be converted" in (conversion_problem("MW", "MWh") or "")
    assert "cannot be converted" in (conversion_problem("bicycles/h", "MW") or "")
    assert "cannot be converted" in (conversion_problem("count", "count/h") or "")
    assert "sensor's unit 'furlongs'" in (conversion_problem("MW", "furlongs") or "")


def test_dimension_quantity_and_count_limits() -> None:
    assert dimension("cars/h") == dimension("veh/h") == "count_per_h"
    assert dimension("bicycles/day") == "count_per_d"
    assert quantity_for("heavy vehicles/h") == "count"
    assert quantity_for("MW") == "power" and quantity_for("%") == "occupancy"
    assert count_max("vehicles/h") == 100_000
    assert count_max("/15min") == 25_000
    assert count_max("bicycles/d") == 2_000_000 == count_max("count")
    assert count_max("MW") is None
