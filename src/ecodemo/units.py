"""Units ecodemo knows, their dimension and factor to the dimension's base unit.

A reading's unit must convert to its sensor's unit (same dimension). Unit symbols are
case-sensitive on purpose: ``mW`` is not ``MW``.
"""

from __future__ import annotations

from ecodemo.errors import InputError

# unit -> (dimension, factor to base unit of that dimension)
UNITS: dict[str, tuple[str, float]] = {
    "W": ("power", 1.0),
    "kW": ("power", 1e3),
    "MW": ("power", 1e6),
    "GW": ("power", 1e9),
    "Wh": ("energy", 1.0),
    "kWh": ("energy", 1e3),
    "MWh": ("energy", 1e6),
    "%": ("ratio_pct", 1.0),
    "bicycles/h": ("count_per_hour", 1.0),
    "bikes/h": ("count_per_hour", 1.0),
    "vehicles/h": ("count_per_hour", 1.0),
    "veh/h": ("count_per_hour", 1.0),
    "pedestrians/h": ("count_per_hour", 1.0),
    "passengers/h": ("count_per_hour", 1.0),
    "count/h": ("count_per_hour", 1.0),
    "bicycles/d": ("count_per_day", 1.0),
    "vehicles/d": ("count_per_day", 1.0),
    "pedestrians/d": ("count_per_day", 1.0),
    "passengers/d": ("count_per_day", 1.0),
    "count/d": ("count_per_day", 1.0),
    "count": ("count", 1.0),
}

KINDS = ("solar", "wind", "traffic", "bike", "pedestrian", "transit")
RENEWABLE_KINDS = ("solar", "wind")
TRANSPORT_KINDS = ("traffic", "bike", "pedestrian", "transit")


def dimension(unit: str) -> str:
    try:
        return UNITS[unit][0]
    except KeyError:
        raise InputError(f"unknown unit '{unit}' (known: {', '.join(UNITS)})") from None


def factor(from_unit: str, to_unit: str) -> float:
    """Multiply a value in ``from_unit`` by this to get ``to_unit``."""
    d_from, f_from = UNITS[from_unit]
    d_to, f_to = UNITS[to_unit]
    if d_from != d_to:
        raise InputError(f"unit '{from_unit}' cannot be converted to '{to_unit}'")
    return f_from / f_to


def quantity_for(unit: str) -> str:
    """The physical quantity a sensor in this unit measures."""
    return {
        "power": "power",
        "energy": "energy",
        "ratio_pct": "occupancy",
        "count_per_hour": "count",
        "count_per_day": "count",
        "count": "count",
    }[dimension(unit)]
