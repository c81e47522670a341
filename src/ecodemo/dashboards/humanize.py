"""Figures as a person reads them: the unit chosen by magnitude, 2-3 significant figures,
French number formatting by default (``1 234,5``), dates in Europe/Paris local time.

Rounding here is for display only: the detail tables and the JSON/CSV exports keep the full
values, and a range is always shown as a range, never collapsed to its middle.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal

from ecodemo.dashboards.labels import Lang, labels

PARIS = ZoneInfo("Europe/Paris")
LOCALES: dict[str, str] = {"fr": "fr_FR", "en": "en_GB"}
#: The comparison for tiny energy figures: a 10 W LED bulb (a definition, no assumption).
BULB_W = 10.0

# Energy units from small to large: (symbol, size in kWh). 1 Wh = 3 600 J.
_ENERGY = (("mJ", 1e-3 / 3.6e6), ("J", 1 / 3.6e6), ("Wh", 1e-3), ("kWh", 1.0), ("MWh", 1e3),
           ("GWh", 1e6))
_MASS = (("mg", 1e-6), ("g", 1e-3), ("kg", 1.0), ("t", 1e3), ("kt", 1e6))
CO2 = "CO₂e"


def number(x: float | None, lang: Lang = "fr", sig: int = 3) -> str:
    """``x`` rounded to ``sig`` significant figures (integers above that keep their digits),
    with the language's grouping and decimal signs; '–' for a missing value."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    x = float(x)
    if x == 0:
        return "0"
    digits = sig - 1 - math.floor(math.log10(abs(x)))
    rounded = round(x, digits)
    decimals = max(digits, 0)
    pattern = "#,##0" + ("." + "#" * decimals if decimals else "")
    text = format_decimal(rounded, format=pattern, locale=LOCALES[lang])
    return text.replace("-", "−")


def percent(ratio: float | None, lang: Lang = "fr", sig: int = 2) -> str:
    """A ratio (0.23) as a percentage ('23 %' in French, '23%' in English)."""
    if ratio is None:
        return "–"
    return number(100 * ratio, lang, sig) + ("\u202f%" if lang == "fr" else "%")


def _scaled(x: float, units: tuple[tuple[str, float], ...]) -> tuple[float, str]:
    a = abs(x)
    chosen = units[0]
    for sym, size in units:
        if a >= size * 0.9995:
            chosen = (sym, size)
    return x / chosen[1], chosen[0]


def energy(kwh: float | None, lang: Lang = "fr", sig: int = 3) -> str:
    """Energy in mJ, J, Wh, kWh, MWh or GWh, whichever gives a number between 1 and 1000."""
    if kwh is None:
        return "–"
    if kwh == 0:
        return "0 Wh"
    v, sym = _scaled(kwh, _ENERGY)
    return f"{number(v, lang, sig)}\u00a0{sym}"


def co2(kg: float | None, lang: Lang = "fr", sig: int = 3) -> str:
    """A CO2-equivalent mass in mg, g, kg, t or kt."""
    if kg is None:
        return "–"
    if kg == 0:
        return f"0 g {CO2}"
    v, sym = _scaled(kg, _MASS)
    return f"{number(v, lang, sig)}\u00a0{sym}\u00a0{CO2}"


def _range(low: float | None, high: float | None, scale: tuple[tuple[str, float], ...],
           suffix: str, lang: Lang, like: float | None = None) -> str:
    """'1,2 à 3,4 <unit>' in the unit (from ``scale``) of the larger end, or of ``like`` (the
    central value shown beside it, so '1 000 J (200 à 2 200 J)', not '(0,06 à 0,6 Wh)')."""
    if low is None or high is None:
        return "–"
    _, sym = _scaled(abs(like) if like else max(abs(low), abs(high)) or 1e-9, scale)
    size = dict(scale)[sym]
    sep = " à " if lang == "fr" else " to "
    return f"{number(low / size, lang, 2)}{sep}{number(high / size, lang, 2)}\u00a0{sym}{suffix}"


def energy_range(low: float | None, high: float | None, lang: Lang = "fr",
                 like: float | None = None) -> str:
    """'1,2 à 3,4 Wh' / '1.2 to 3.4 Wh' (the unit of the larger end, or of ``like``)."""
    return _range(low, high, _ENERGY, "", lang, like)


def co2_range(low: float | None, high: float | None, lang: Lang = "fr") -> str:
    return _range(low, high, _MASS, f"\u00a0{CO2}", lang)


def duration_h(hours: float | None, lang: Lang = "fr") -> str:
    """A duration given in hours, as seconds, minutes, hours, days or years."""
    if hours is None:
        return "–"
    s = hours * 3600
    fr = lang == "fr"
    if 0 < abs(s) < 1:
        return "moins d'une seconde" if fr else "under a second"
    for limit, size, one, many in ((60, 1, "s", "s"), (3600, 60, "min", "min"),
                                   (48 * 3600, 3600, "h", "h"),
                                   (730 * 86400, 86400, "jour" if fr else "day",
                                    "jours" if fr else "days")):
        if abs(s) < limit:
            v = s / size
            return f"{number(v, lang, 2)}\u00a0{one if abs(v) < 2 else many}"
    v = s / (365.25 * 86400)
    return f"{number(v, lang, 2)}\u00a0{'ans' if fr else 'years'}"


def when(dt: datetime | str | None, lang: Lang = "fr", with_time: bool = True) -> str:
    """A time as Europe/Paris local time ('3 déc. 2026, 09:15')."""
    if dt is None:
        return "–"
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    pattern = "d MMM y, HH:mm" if with_time else "d MMM y"
    return format_datetime(dt, pattern, tzinfo=PARIS, locale=LOCALES[lang])


def bulb(kwh: float | None, lang: Lang = "fr") -> str | None:
    """For a figure under 1 kWh: the time a 10 W LED bulb takes to use it, with the
    conversion shown ('autant qu'une ampoule LED de 10 W allumée 12 min (10 W × 12 min =
    2 Wh)'). None for larger or missing figures, where the comparison stops helping."""
    if kwh is None or kwh <= 0 or kwh >= 1:
        return None
    hours = kwh * 1000 / BULB_W
    d = duration_h(hours, lang)
    e = energy(kwh, lang)
    if lang == "fr":
        return (f"autant qu'une ampoule LED de 10\u00a0W allumée {d} "
                f"(10\u00a0W × {d} = {e})")
    return f"as much as a 10\u00a0W LED bulb left on for {d} (10\u00a0W × {d} = {e})"


def count_words(n: float, lang: Lang = "fr") -> str:
    """A large count with words past a million: '280 millions', '3,4 milliards', '1 million'
    (French plural from 2: '1,9 million')."""
    for size, fr, en in ((1e12, "billions", "trillion"), (1e9, "milliards", "billion"),
                         (1e6, "millions", "million")):
        if n >= size:
            shown = number(n / size, lang, 2)
            word = fr if lang == "fr" else en
            if lang == "fr" and float(shown.replace(",", ".").replace("\u202f", "")) < 2:
                word = word[:-1]
            return f"{shown}\u00a0{word}"
    return number(n, lang, 2)


_SHORT_DROP = re.compile(r"\s*\([^)]*\)")


def short_name(full: str, limit: int = 32) -> str:
    """A short display name derived from a site's full name, used when the catalogue gives
    none: the part after a 'Source label:' prefix, without parentheses, cut at a word."""
    text = full.split(":", 1)[1] if ":" in full else full
    text = " ".join(_SHORT_DROP.sub("", text).split()).strip(" -–") or full.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def unit(u: str | None, lang: Lang = "fr") -> str:
    """A sensor's stored unit in the reader's words ('bicycles/h' -> 'vélos/h'); a unit with
    no entry ``unit.<u>`` in the catalogue is shown as stored (MW, %)."""
    if not u:
        return ""
    return labels(lang).get(f"unit.{u}", u)
