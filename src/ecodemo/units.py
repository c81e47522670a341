"""Units as sensors and portals write them, parsed with pint, and the conversions that are honest.

Five dimensions are stored: power (W), energy (Wh), a percentage, a count, and a count per
period (``vehicles/h``, ``bicycles/d``, ``count/15min``). Every counted thing (vehicle, car,
heavy vehicle, bicycle, pedestrian, passenger, plain ``count``) is one count: what is counted
is the sensor's business (its kind and name), the unit only says how many per which period.

A count per period is the total over that period, not a rate, so it converts only to a count
over the *same* period: a daily total on an hourly sensor is refused, never divided by 24
(see docs/connectors.md). Power and energy symbols are case-sensitive and only the prefixes k,
M, G and T exist, so ``mW`` (milliwatt, nearly always a typo for MW) is not a unit here.

Parsing costs ~0.1 ms, so it is cached per distinct spelling: ingestion calls it per distinct
unit string of a batch, never per row.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import pint

from ecodemo.errors import InputError

KINDS = ("solar", "wind", "traffic", "bike", "pedestrian", "transit")
RENEWABLE_KINDS = ("solar", "wind")
TRANSPORT_KINDS = ("traffic", "bike", "pedestrian", "transit")

#: Spellings that come out of :func:`canonical` for the usual sensors (documentation, tests).
COMMON_UNITS = ("W", "kW", "MW", "GW", "Wh", "kWh", "MWh", "GWh", "%", "count",
                "vehicles/h", "cars/h", "heavy vehicles/h", "bicycles/h", "pedestrians/h",
                "passengers/h", "count/h", "vehicles/d", "bicycles/d", "pedestrians/d",
                "passengers/d", "count/d", "vehicles/15min", "count/15min")
#: Units whose readings are not summed across sensors (a mean of occupancies, not a total).
NOT_ADDITIVE = ("%",)

#: A count above this per hour of its period is implausible for one sensor (a motorway lane
#: carries ~2,000 vehicles/h); counts over long periods are capped at COUNT_MAX_TOTAL.
COUNT_MAX_PER_HOUR = 100_000.0
COUNT_MAX_TOTAL = 2_000_000.0
#: Longer strings are not units (a cell holding a sentence or a pasted row).
MAX_UNIT_CHARS = 64

# The registry holds only what a sensor of ecodemo can measure: a unit outside it is refused
# rather than half-understood (pint's default registry would read "m" as metre, "h" as hour...).
_DEFINITIONS = """
second = [time] = s = sec = seconde
minute = 60 * second = min = mn
hour = 60 * minute = h = hr = heure
day = 24 * hour = d = jour = j
week = 7 * day = wk = semaine
kilo- = 1e3 = k-
mega- = 1e6 = M-
giga- = 1e9 = G-
tera- = 1e12 = T-
watt = [power] = W
watt_hour = watt * hour = Wh
percent = [percentage] = % = pct = pourcent
count = [count] = _ = comptage
vehicle = count = veh = véhicule = vehicule = véh
car = count = _ = voiture
heavy_vehicle = count
bicycle = count = bike = cyclist = vélo = velo
pedestrian = count = piéton = pieton
passenger = count = pax = passager = voyageur
"""
#: Canonical plural of each counted thing (pint's unit name -> spelling stored).
_THINGS = {"count": "count", "vehicle": "vehicles", "car": "cars",
           "heavy_vehicle": "heavy vehicles", "bicycle": "bicycles",
           "pedestrian": "pedestrians", "passenger": "passengers"}
_POWER = (("W", 1.0), ("kW", 1e3), ("MW", 1e6), ("GW", 1e9), ("TW", 1e12))

# Rewrites before pint (which reads spaces as products): phrases of several words, the
# "number of" in column-style labels, abbreviation dots and "/15min" periods.
_LEADING_NUMBER_OF = re.compile(r"^(nb|nbre|nombre|number|no\.?|n°)\.?\s+(de\s+|d'|of\s+)?",
                                re.IGNORECASE)
_PHRASES = ((re.compile(r"\b(heavy|poids)[\s_-]+(vehicle|lourd)", re.IGNORECASE),
             "heavy_vehicle"),
            (re.compile(r"\b(per|par)\b", re.IGNORECASE), "/"))
_ABBREV_DOT = re.compile(r"(?<=[^\W\d_])\.(?=\s*/|\s|$)")
_PERIOD = re.compile(r"/\s*\(?\s*(\d{1,4})\s*([^\W\d_]+)\s*\)?")
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Unit:
    """A parsed unit: ``dimension`` says what converts to what, ``to_base`` multiplies a value
    into the dimension's base unit (W, Wh, %, one count), ``period_s`` is a count's period."""

    spelling: str
    dimension: str
    to_base: float
    period_s: float | None = None


@lru_cache(maxsize=1)
def _registry() -> pint.UnitRegistry:
    ureg: pint.UnitRegistry = pint.UnitRegistry(None, cache_folder=None)
    for line in _DEFINITIONS.strip().splitlines():
        ureg.define(line)
    return ureg


_LOCK = threading.Lock()  # pint's registry caches are not documented as thread-safe


def _words() -> frozenset[str]:
    """Lower-case names of the count and time units: matched whatever their case."""
    ureg = _registry()
    names: set[str] = set()
    for name in ("second", "minute", "hour", "day", "week", "percent", *_THINGS):
        d = ureg._units[name]  # noqa: SLF001 - pint has no public alias listing
        names |= {name, d.symbol or name, *d.aliases}
    return frozenset(n.lower() for n in names if n and n != "_")


_WORDS: frozenset[str] | None = None


def _rewrite(text: str) -> str:
    """The spelling pint is given: see the module docstring for what is rewritten and why."""
    global _WORDS
    if _WORDS is None:
        _WORDS = _words()
    s = " ".join(text.split())
    s = _LEADING_NUMBER_OF.sub("", s)
    for pattern, repl in _PHRASES:
        s = pattern.sub(repl, s)
    s = _ABBREV_DOT.sub("", s)
    if s.startswith("/"):
        s = "count" + s

    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        low = w.lower()
        return low if (low in _WORDS or low.rstrip("s") in _WORDS) and w not in _WORDS else w

    s = _WORD.sub(word, s)
    s = _PERIOD.sub(lambda m: f"/({m.group(1)} {m.group(2)})", s)
    # Any other number ("2 W", "1e3 kW", "W**2") is an expression, not a unit.
    if re.search(r"\d", _PERIOD.sub("", s)) or "**" in s or "^" in s:
        raise ValueError("a number outside a period")
    return s


@lru_cache(maxsize=4096)
def _parse(text: str) -> Unit | str:
    """A Unit, or the reason the text is not one (cached either way)."""
    if not text.strip():
        return "missing unit"
    if len(text) > MAX_UNIT_CHARS or any(not ch.isprintable() for ch in text):
        return f"unknown unit '{text[:MAX_UNIT_CHARS]}'"
    ureg = _registry()
    try:
        with _LOCK:
            q = ureg.parse_expression(_rewrite(text))
    except Exception:  # noqa: BLE001 - pint raises many types on garbage; all mean "not a unit"
        return f"unknown unit '{text}'"
    if not isinstance(q, pint.Quantity) or not (q.magnitude > 0 and math.isfinite(q.magnitude)):
        return f"unknown unit '{text}'"
    dims = dict(q.dimensionality)
    if dims == {"[power]": 1}:
        return _symbol(q, "power", "", text)
    if dims == {"[power]": 1, "[time]": 1}:
        return _symbol(q, "energy", "h", text)
    if dims == {"[percentage]": 1}:
        return Unit("%", "ratio_pct", float(q.to("percent").magnitude))
    things = [n for n in q.unit_items() if n[0] in _THINGS]
    if dims == {"[count]": 1} and len(things) == 1 and things[0][1] == 1:
        return Unit(_THINGS[things[0][0]], "count", 1.0)
    if dims == {"[count]": 1, "[time]": -1} and len(things) == 1 and things[0][1] == 1:
        period_s = 1.0 / float(q.to(f"{things[0][0]} / second").magnitude)
        label = _period_label(period_s)
        if label is None:
            return f"unknown unit '{text}' (a count per {period_s:g} s)"
        return Unit(f"{_THINGS[things[0][0]]}/{label}", f"count_per_{label}", 1.0, period_s)
    return (f"unit '{text}' is not a power, an energy, a percentage or a count (per period)")


def _symbol(q: pint.Quantity, dimension: str, suffix: str, text: str) -> Unit | str:
    base = float(q.to("watt" + ("_hour" if suffix else "")).magnitude)
    for symbol, f in _POWER:
        if math.isclose(base, f, rel_tol=1e-9):
            return Unit(symbol + suffix, dimension, f)
    return f"unknown unit '{text}' (a {dimension} unit {base:g} times {'Wh' if suffix else 'W'})"


def _period_label(period_s: float) -> str | None:
    """``h``, ``d``, ``15min``... for a whole number of minutes; None otherwise."""
    for size, name in ((86_400, "d"), (3_600, "h"), (60, "min")):
        n = period_s / size
        if abs(n - round(n)) < 1e-9 and round(n) >= 1:
            return name if round(n) == 1 else f"{round(n)}{name}"
    return None


def parse(unit: str) -> Unit:
    """The parsed unit; InputError (one line naming the unit) when it is not one."""
    got = _parse(unit)
    if isinstance(got, str):
        raise InputError(got)
    return got


def problem(unit: str) -> str | None:
    """Why ``unit`` is not a unit ecodemo stores, or None when it is."""
    got = _parse(unit)
    return got if isinstance(got, str) else None


def canonical(unit: str) -> str:
    """The spelling stored for a sensor's unit (``cars/h`` -> ``cars/h``, ``/day`` ->
    ``count/d``, ``Nb vélos/jour`` -> ``bicycles/d``)."""
    return parse(unit).spelling


def dimension(unit: str) -> str:
    return parse(unit).dimension


def conversion_problem(from_unit: str, to_unit: str) -> str | None:
    """Why a value in ``from_unit`` cannot be stored in ``to_unit``, or None."""
    src, dst = _parse(from_unit), _parse(to_unit)
    if isinstance(src, str):
        return src
    if isinstance(dst, str):
        return f"the sensor's unit '{to_unit}' is not a unit ecodemo knows"
    if src.dimension == dst.dimension:
        return None
    if src.period_s is not None and dst.period_s is not None:
        return (f"unit '{from_unit}' counts per {_period_words(src)}, the sensor's unit "
                f"'{to_unit}' per {_period_words(dst)}: a total over one period is not a total "
                "over another (not converted)")
    return f"unit '{from_unit}' cannot be converted to the sensor's unit '{to_unit}'"


def _period_words(u: Unit) -> str:
    label = u.spelling.rsplit("/", 1)[1]
    return {"h": "hour", "d": "day"}.get(label, re.sub(r"^(\d+)", r"\1 ", label))


def factor(from_unit: str, to_unit: str) -> float:
    """Multiply a value in ``from_unit`` by this to get ``to_unit``; InputError if it cannot."""
    why = conversion_problem(from_unit, to_unit)
    if why is not None:
        raise InputError(why)
    return parse(from_unit).to_base / parse(to_unit).to_base


def count_max(unit: str) -> float | None:
    """Largest plausible value of a count in ``unit``; None for a unit that is not a count."""
    u = parse(unit)
    if u.dimension == "count":
        return COUNT_MAX_TOTAL
    if u.period_s is None:
        return None
    return min(COUNT_MAX_PER_HOUR * u.period_s / 3600.0, COUNT_MAX_TOTAL)


def quantity_for(unit: str) -> str:
    """The physical quantity a sensor in this unit measures."""
    dim = dimension(unit)
    if dim.startswith("count"):
        return "count"
    return {"ratio_pct": "occupancy"}.get(dim, dim)
