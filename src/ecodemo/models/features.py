"""Leak-free features for direct multi-horizon forecasting on a :class:`Panel`.

Design (why it cannot leak): a model for horizon bucket ``L`` (in grid steps) predicts the value
at grid time ``t`` from readings at times ``<= t - L`` only, plus what is known in advance about
``t`` itself (calendar, holidays, solar geometry, weather covariates). A forecast issued at
``o`` for lead ``k <= L`` therefore reads nothing after ``o``. Every reading-derived feature
below is written as a function of ``t - L`` (lags, rolling windows ending at ``t - L``,
same-time-of-day values at whole days before ``t`` that are ``>= L`` steps back); the leakage
test perturbs readings after the issue time and checks that nothing changes.

Calendar features use the sensor's local time (Europe/Paris by default), so on DST days the
local hour jumps while the UTC grid stays continuous. Holidays: French public holidays
(``holidays``, country FR) and school holidays for zones A, B and C
(``vacances-scolaires-france``, which ships its calendar offline). Values are normalised per
sensor (divided by a scale from the training window) so one global model serves series of very
different sizes (MW, vehicles/h, %).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from ecodemo.models.issued import IssuedWeather
from ecodemo.models.panel import Panel, align_weather
from ecodemo.solar import solar_geometry_many

# Reading-derived features (depend on the bucket's minimum lag L).
LAG_FEATURES = ("lag_0", "lag_1", "lag_day", "lag_week", "mean_3h", "mean_day", "std_day",
                "mean_week", "slot_mean_7d", "trend_day")
CALENDAR_FEATURES = ("hour", "dow", "daytype", "doy", "is_holiday", "school_a", "school_b",
                     "school_c")
SOLAR_FEATURES = ("clearsky_ghi", "solar_elevation", "clearsky_index_day")
# observed (SYNOP) and forecast (Open-Meteo) variables; a variable a source lacks stays missing
WEATHER_VARIABLES = ("temp_c", "wind_speed_ms", "cloud_cover_pct", "precip_1h_mm", "rh_pct",
                     "shortwave_radiation_wm2", "wind_speed_100m_ms")

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    # few features: the strongest lags, the daily/weekly cycle, public holidays
    "small": ("lag_0", "lag_day", "lag_week", "mean_day", "slot_mean_7d", "hour", "dow",
              "daytype", "is_holiday"),
    "full": LAG_FEATURES + CALENDAR_FEATURES,
}


def feature_names(feature_set: str, kind: str, with_weather: bool) -> list[str]:
    """The ordered feature list of a rung (the sensor category is always the last column)."""
    names = list(FEATURE_SETS[feature_set])
    if kind == "solar":
        names += list(SOLAR_FEATURES if feature_set == "full" else SOLAR_FEATURES[:2])
    if with_weather and feature_set == "full":
        names += [f"wx_{v}" for v in WEATHER_VARIABLES]
    return names + ["sensor"]


def robust_scale(values: np.ndarray) -> np.ndarray:
    """Per-column scale: 95th percentile of |value|, else max |value|, else 1 (never 0)."""
    with np.errstate(all="ignore"):
        absval = np.abs(values)
        scale = np.nanquantile(absval, 0.95, axis=0) if len(values) else np.ones(values.shape[1])
        fallback = np.nanmax(absval, axis=0) if len(values) else scale
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, fallback)
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


@lru_cache(maxsize=64)
def _public_holidays(years: tuple[int, ...]) -> frozenset[dt.date]:
    import holidays

    return frozenset(holidays.country_holidays("FR", years=list(years)).keys())


@lru_cache(maxsize=1)
def _school_calendar() -> dict[dt.date, tuple[bool, bool, bool]]:
    from vacances_scolaires_france import SchoolHolidayDates

    data = SchoolHolidayDates().data
    return {d: (bool(v["vacances_zone_a"]), bool(v["vacances_zone_b"]),
                bool(v["vacances_zone_c"])) for d, v in data.items()}


def calendar_frame(times: pd.DatetimeIndex, tz: str) -> pd.DataFrame:
    """Calendar features of each (UTC) grid time, in local time ``tz``.

    hour: local hour as a fraction (8.5 = 08:30); dow: 0 = Monday; daytype: 0 working day,
    1 Saturday, 2 Sunday or public holiday; doy: day of year; school_*: 1 in school holidays.
    """
    local = times.tz_convert(tz)
    dates = local.normalize().tz_localize(None)
    uniq = pd.DatetimeIndex(dates.unique())
    uniq_dates = [d.date() for d in uniq]
    pub = _public_holidays(tuple(sorted({d.year for d in uniq_dates})))
    school = _school_calendar()
    hol = np.array([d in pub for d in uniq_dates], dtype=float)
    sch = np.array([school.get(d, (False, False, False)) for d in uniq_dates],
                   dtype=float).reshape(-1, 3)
    pos = uniq.get_indexer(dates)
    dow = local.dayofweek.to_numpy()
    is_hol = hol[pos]
    daytype = np.where((dow == 6) | (is_hol > 0), 2, np.where(dow == 5, 1, 0))
    return pd.DataFrame({
        "hour": local.hour.to_numpy() + local.minute.to_numpy() / 60.0,
        "dow": dow.astype(float),
        "daytype": daytype.astype(float),
        "doy": local.dayofyear.to_numpy().astype(float),
        "is_holiday": is_hol,
        "school_a": sch[pos, 0], "school_b": sch[pos, 1], "school_c": sch[pos, 2],
    }, index=times)


@dataclass
class FeatureContext:
    """Precomputed matrices for gathering feature rows of one panel (all [time, sensor])."""

    panel: Panel
    scale: np.ndarray                   # per sensor, in the sensor's unit
    y: np.ndarray                       # normalised values, NaN for gaps
    csum: np.ndarray                    # nan-aware cumulative sums, leading zero row
    csum2: np.ndarray
    ccount: np.ndarray
    calendar: pd.DataFrame
    clearsky: np.ndarray | None = None  # [time, sensor], W/m2 / 1000
    elevation: np.ndarray | None = None
    cs_csum: np.ndarray | None = None
    weather: np.ndarray | None = None   # [time, variable]
    issued: IssuedWeather | None = None  # forecasts as issued, read as of each row's issue

    @classmethod
    def build(cls, panel: Panel, scale: np.ndarray, with_weather: bool) -> FeatureContext:
        y = panel.values / scale[None, :]
        finite = np.isfinite(y)
        y0 = np.where(finite, y, 0.0)
        zero = np.zeros((1, y.shape[1]))
        ctx = cls(
            panel=panel, scale=scale, y=y,
            csum=np.vstack([zero, np.cumsum(y0, axis=0)]),
            csum2=np.vstack([zero, np.cumsum(y0 * y0, axis=0)]),
            ccount=np.vstack([zero, np.cumsum(finite, axis=0)]),
            calendar=calendar_frame(panel.times, panel.sensors[0].timezone),
        )
        if panel.kind == "solar":
            keys = [(round(meta.latitude or 46.5, 2), round(meta.longitude or 2.5, 2))
                    for meta in panel.sensors]
            geometry = solar_geometry_many(panel.times, keys)
            cs = np.column_stack([geometry[k][0] for k in keys])
            el = np.column_stack([geometry[k][1] for k in keys])
            ctx.clearsky, ctx.elevation = cs / 1000.0, el
            ctx.cs_csum = np.vstack([zero, np.cumsum(cs / 1000.0, axis=0)])
        if with_weather:
            ctx.issued = panel.issued_weather
        if with_weather and panel.weather is not None:
            cols = [v for v in WEATHER_VARIABLES if v in panel.weather.columns]
            aligned = align_weather(panel.weather[cols], panel.times) if cols else None
            if aligned is not None:
                ctx.weather = aligned.reindex(columns=list(WEATHER_VARIABLES)).to_numpy(float)
        return ctx

    # -- gathering helpers: index arrays t (grid rows) and s (sensor columns) of equal length --
    def _at(self, m: np.ndarray, t: np.ndarray, s: np.ndarray) -> np.ndarray:
        ok = (t >= 0) & (t < m.shape[0])
        out = np.full(t.shape, np.nan)
        out[ok] = m[t[ok], s[ok]]
        return out

    def _window(self, c: np.ndarray, end: np.ndarray, s: np.ndarray, width: int) -> np.ndarray:
        """Sum of c's underlying values over rows (end - width, end], clipped at 0."""
        hi = np.clip(end + 1, 0, c.shape[0] - 1)
        lo = np.clip(end + 1 - width, 0, c.shape[0] - 1)
        return c[hi, s] - c[lo, s]

    def rows(self, lag: int, t: np.ndarray, s: np.ndarray, names: list[str],
             sensor_codes: np.ndarray) -> np.ndarray:
        """Feature matrix (float32, one row per (t, s)) for the bucket with minimum lag ``lag``.

        Only readings at grid rows ``<= t - lag`` are read (see the module docstring).
        """
        p = self.panel
        day = p.steps_per_day
        week = 7 * day
        h3 = p.steps_for_hours(3)
        end = t - lag                       # the last grid row a feature may read
        m_day = -(-lag // day) * day        # whole days back, at least ``lag`` steps
        m_week = -(-lag // week) * week
        cols: dict[str, np.ndarray] = {}
        need = set(names)
        if "lag_0" in need:
            cols["lag_0"] = self._at(self.y, end, s)
        if "lag_1" in need:
            cols["lag_1"] = self._at(self.y, end - 1, s)
        if "lag_day" in need:
            cols["lag_day"] = self._at(self.y, t - m_day, s)
        if "lag_week" in need:
            cols["lag_week"] = self._at(self.y, t - m_week, s)
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, width in (("mean_3h", h3), ("mean_day", day), ("mean_week", week)):
                if name in need:
                    n = self._window(self.ccount, end, s, width)
                    cols[name] = np.where(n > 0, self._window(self.csum, end, s, width) / n,
                                          np.nan)
            if "std_day" in need:
                n = self._window(self.ccount, end, s, day)
                mean = self._window(self.csum, end, s, day) / n
                var = self._window(self.csum2, end, s, day) / n - mean * mean
                cols["std_day"] = np.where(n > 1, np.sqrt(np.maximum(var, 0.0)), np.nan)
            if "trend_day" in need:  # mean of the last day minus the day before
                n1 = self._window(self.ccount, end, s, day)
                n2 = self._window(self.ccount, end - day, s, day)
                a = self._window(self.csum, end, s, day) / n1
                b = self._window(self.csum, end - day, s, day) / n2
                cols["trend_day"] = np.where((n1 > 0) & (n2 > 0), a - b, np.nan)
            if "slot_mean_7d" in need:
                acc = np.zeros(t.shape)
                cnt = np.zeros(t.shape)
                for j in range(7):
                    v = self._at(self.y, t - m_day - j * day, s)
                    ok = np.isfinite(v)
                    acc += np.where(ok, v, 0.0)
                    cnt += ok
                cols["slot_mean_7d"] = np.where(cnt > 0, acc / np.maximum(cnt, 1), np.nan)
            if "clearsky_index_day" in need and self.cs_csum is not None:
                got = self._window(self.csum, end, s, day)
                possible = self._window(self.cs_csum, end, s, day)
                cols["clearsky_index_day"] = np.where(possible > 0.05, got / possible, np.nan)
        tt = np.clip(t, 0, len(p.times) - 1)
        for name in CALENDAR_FEATURES:
            if name in need:
                cols[name] = self.calendar[name].to_numpy()[tt]
        if self.clearsky is not None and "clearsky_ghi" in need:
            cols["clearsky_ghi"] = self.clearsky[tt, s]
        if self.elevation is not None and "solar_elevation" in need:
            cols["solar_elevation"] = self.elevation[tt, s]
        for k, var in enumerate(WEATHER_VARIABLES):
            name = f"wx_{var}"
            if name in need:
                value = (self.weather[tt, k] if self.weather is not None
                         else np.full(t.shape, np.nan))
                if self.issued is not None:
                    # the forecast issued by ``t - lag`` (the row's issue time) for ``t``
                    asof = np.clip(end, 0, len(p.times) - 1)
                    issued = self.issued.at(var, p.times[tt], p.times[asof])
                    value = np.where(np.isfinite(issued), issued, value)
                cols[name] = value
        cols["sensor"] = sensor_codes[s].astype(float)
        out = np.empty((len(t), len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            out[:, j] = cols.get(name, np.full(t.shape, np.nan))
        return out
