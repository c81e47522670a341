"""A kind's series on one regular UTC grid: a dense [time x sensor] matrix with NaN for gaps.

Every model in :mod:`ecodemo.models` works on a :class:`Panel`. Time is UTC inside (so the grid
is continuous across the 23 h and 25 h DST days); local time only enters through calendar
features. A forecast "issued at grid index ``o``" may use ``values[: o + 1]`` and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ecodemo.cadence import infer_step
from ecodemo.errors import ModelError
from ecodemo.models.issued import IssuedWeather


@dataclass(frozen=True)
class SensorMeta:
    """What the features need to know about a sensor besides its values."""

    sensor_id: str
    unit: str = ""
    latitude: float | None = None
    longitude: float | None = None
    timezone: str = "Europe/Paris"


@dataclass(frozen=True)
class Panel:
    """Values of one kind's sensors on a regular UTC grid.

    ``times``: tz-aware UTC DatetimeIndex with a constant ``step``; ``values``: float64 array of
    shape (len(times), len(sensors)), NaN where no reading exists; ``weather``: optional frame
    weather covariates as observed (wide, UTC index, any spacing); features align it to the
    grid times they need, so an extended panel finds the weather of future times when the
    store holds it.
    """

    kind: str
    times: pd.DatetimeIndex
    sensors: tuple[SensorMeta, ...]
    values: np.ndarray
    step: pd.Timedelta
    weather: pd.DataFrame | None = field(default=None, compare=False)
    #: where ``weather`` comes from: 'observed_standing_in' (observations stand in for a
    #: forecast), 'forecast_as_issued' (as-of forecasts) or 'none'
    weather_provenance: str = field(default="none", compare=False)
    #: weather forecasts as issued (read as of each row's issue time); where one is missing
    #: the features fall back on ``weather``
    issued_weather: IssuedWeather | None = field(default=None, compare=False)

    @property
    def sensor_ids(self) -> list[str]:
        return [s.sensor_id for s in self.sensors]

    @property
    def steps_per_hour(self) -> float:
        """Grid steps in one hour (2 for 30 min, 1 for hourly, 1/24 for daily)."""
        return pd.Timedelta(hours=1) / self.step

    def steps_for_hours(self, hours: float) -> int:
        """Whole grid steps covering ``hours`` (at least one)."""
        return max(1, int(np.ceil(hours * self.steps_per_hour - 1e-9)))

    @property
    def steps_per_day(self) -> int:
        return self.steps_for_hours(24)

    def last_observed_index(self) -> int:
        """Grid index of the kind's latest reading (any sensor)."""
        has = ~np.isnan(self.values).all(axis=1)
        if not has.any():
            raise ModelError(f"no readings for kind '{self.kind}'")
        return int(np.flatnonzero(has)[-1])

    def extend(self, n_steps: int) -> Panel:
        """The panel with ``n_steps`` empty future grid times appended (for forecasting)."""
        if n_steps <= 0:
            return self
        extra = pd.date_range(self.times[-1] + self.step, periods=n_steps, freq=self.step)
        times = self.times.append(extra)
        values = np.vstack([self.values, np.full((n_steps, self.values.shape[1]), np.nan)])
        return replace(self, times=pd.DatetimeIndex(times), values=values)

    def truncate(self, end: int) -> Panel:
        """The panel up to and including grid index ``end``."""
        return replace(self, times=self.times[: end + 1], values=self.values[: end + 1])

    def data_sha256(self, end: int | None = None) -> str:
        """Hash of the grid, sensor ids and values up to ``end``: identifies training data."""
        stop = len(self.times) if end is None else end + 1
        h = hashlib.sha256()
        h.update("|".join(self.sensor_ids).encode())
        h.update(np.asarray(self.times[:stop].as_unit("ns").asi8).tobytes())
        h.update(np.ascontiguousarray(self.values[:stop]).tobytes())
        return h.hexdigest()


def _sensor_columns(sensor_id: pd.Series) -> tuple[list[str], np.ndarray]:
    """(sorted distinct sensor ids, each row's column among them); a categorical column is
    mapped through its codes (no per-row strings for millions of readings)."""
    if isinstance(sensor_id.dtype, pd.CategoricalDtype):
        codes = sensor_id.cat.codes.to_numpy()
        present = np.unique(codes)
        names = [str(c) for c in sensor_id.cat.categories]
        ids = sorted(names[c] for c in present)
        position = {name: i for i, name in enumerate(ids)}
        remap = np.full(len(names), -1, dtype=np.int64)
        for c in present:
            remap[c] = position[names[c]]
        return ids, remap[codes]
    as_text = sensor_id.astype(str)
    ids = sorted(as_text.unique())
    return ids, pd.Categorical(as_text, categories=ids).codes


def panel_from_long(kind: str, frame: pd.DataFrame, sensors: list[SensorMeta] | None = None,
                    step: pd.Timedelta | None = None,
                    weather: pd.DataFrame | None = None,
                    issued_weather: IssuedWeather | None = None) -> Panel:
    """Build a panel from a long frame with columns ``sensor_id, ts, value``.

    Timestamps are floored to the grid; several readings in one grid step are averaged (the
    units are rates or powers, so the mean is the right aggregate). ``weather`` is kept as given
    (wide, UTC index); see :func:`align_weather`.
    """
    if frame.empty:
        raise ModelError(f"no readings for kind '{kind}'")
    ts = pd.to_datetime(frame["ts"], utc=True)
    if step is None:
        first = frame["sensor_id"].iloc[0]
        step = infer_step(ts[frame["sensor_id"] == first])
        if step is None:
            raise ModelError("cannot infer the time step: fewer than two distinct timestamps")
    ids, col = _sensor_columns(frame["sensor_id"])
    by_id = {s.sensor_id: s for s in (sensors or [])}
    metas = tuple(by_id.get(i, SensorMeta(i)) for i in ids)
    origin = pd.Timestamp("2000-01-01", tz="UTC")
    floored = origin + ((ts - origin) // step) * step
    start, end = floored.min(), floored.max()
    times = pd.date_range(start, end, freq=step)
    row = ((floored - start) // step).to_numpy().astype(np.int64)
    sums = np.zeros((len(times), len(ids)))
    counts = np.zeros((len(times), len(ids)))
    vals = frame["value"].to_numpy(dtype=float)
    np.add.at(sums, (row, col), vals)
    np.add.at(counts, (row, col), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return Panel(kind=kind, times=pd.DatetimeIndex(times), sensors=metas, values=values,
                 step=step, weather=weather, issued_weather=issued_weather,
                 weather_provenance=("forecast_as_issued" if issued_weather is not None else
                                     "observed_standing_in" if weather is not None else "none"))


def align_weather(weather: pd.DataFrame, times: pd.DatetimeIndex,
                  max_gap: pd.Timedelta = pd.Timedelta(hours=6)) -> pd.DataFrame | None:
    """Interpolate wide weather (UTC index) linearly onto ``times``; NaN beyond ``max_gap``.

    Weather observations are instantaneous (SYNOP every 3 h), so time interpolation is fair;
    grid times farther than ``max_gap`` from any observation stay NaN (LightGBM treats them as
    missing) rather than being invented.
    """
    if weather is None or weather.empty:
        return None
    w = weather.sort_index()
    w = w[~w.index.duplicated(keep="last")]
    union = w.index.union(times)
    filled = w.reindex(union).interpolate(method="time", limit_area="inside")
    out = filled.reindex(times)
    # Mask grid times far from any real observation (no invented weather across long gaps).
    obs = pd.DatetimeIndex(w.index).as_unit("ns").asi8
    grid = times.as_unit("ns").asi8
    pos = np.searchsorted(obs, grid)
    big = np.iinfo(np.int64).max
    prev_gap = np.where(pos > 0, grid - obs[np.maximum(pos - 1, 0)], big)
    nxt = np.minimum(pos, len(obs) - 1)
    next_gap = np.where(pos < len(obs), obs[nxt] - grid, big)
    far = np.minimum(prev_gap, next_gap) > max_gap.value
    out.loc[far] = np.nan
    if out.isna().all().all():
        return None
    return out
