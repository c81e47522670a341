"""Open-Meteo hourly weather at a site's coordinates into the long ``weather`` table.

``GET https://archive-api.open-meteo.com/v1/archive`` (reanalysis, available up to ~5 days ago)
and ``GET https://api.open-meteo.com/v1/forecast`` take ``latitude``, ``longitude``,
``hourly=<variables>``, ``start_date``/``end_date`` (archive) or ``forecast_days`` (forecast),
``timezone`` and ``wind_speed_unit``. They answer ``{"utc_offset_seconds": 0, "hourly_units":
{...}, "hourly": {"time": ["2024-09-02T00:00", ...], "<variable>": [...]}}`` (times in the
requested timezone, here GMT) or ``{"error": true, "reason": "..."}`` with HTTP 400.

Stored under ``station_id = 'open-meteo:<site_id>'`` with the store's variable names (units in
the name): temp_c, cloud_cover_pct, shortwave_radiation_wm2, wind_speed_ms, wind_speed_100m_ms,
precip_1h_mm. Archive rows have ``source = 'open-meteo:archive'``; forecast rows
``'open-meteo:forecast'`` and never overwrite an archive hour.

Forecasts as issued: each forecast fetch is also kept whole in ``weather_forecasts`` (issued_at
= when the answer arrived, when ecodemo knew it; valid_at = each hour of the next
``ISSUED_AHEAD_H`` hours), never overwritten, so the models read what was known at an issue
time (:mod:`ecodemo.store.weather_forecasts`). Past issues can be backfilled from Open-Meteo's
Previous Runs API (``GET https://previous-runs-api.open-meteo.com/v1/forecast``, data from
January 2024): ``hourly=<variable>_previous_day<N>`` is the value forecast N days (24 N hours)
before the hour, stored with issued_at = valid_at - N days + ``PUBLICATION_MARGIN_H``: a run
is published hours after its initialisation time, so the run's nominal age alone would let a
backtest read it before a deployment could have (docs/forecasting.md).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pandas as pd
import psycopg

from ecodemo.errors import ConfigError, SourceError
from ecodemo.sensors.catalogue import Catalogue, SiteSpec
from ecodemo.sensors.http import get_json, make_client
from ecodemo.sensors.params import OpenMeteoParams
from ecodemo.store.weather import upsert_weather
from ecodemo.store.weather_forecasts import insert_forecasts

#: Open-Meteo variable -> (store variable, expected unit as Open-Meteo spells it)
VARIABLES: dict[str, tuple[str, str]] = {
    "temperature_2m": ("temp_c", "°C"),
    "cloud_cover": ("cloud_cover_pct", "%"),
    "shortwave_radiation": ("shortwave_radiation_wm2", "W/m²"),
    "wind_speed_10m": ("wind_speed_ms", "m/s"),
    "wind_speed_100m": ("wind_speed_100m_ms", "m/s"),
    "precipitation": ("precip_1h_mm", "mm"),
}
#: Units Open-Meteo may answer in -> factor to the expected unit (a misconfigured request).
_CONVERT = {("km/h", "m/s"): 1 / 3.6, ("mp/h", "m/s"): 0.44704, ("kn", "m/s"): 0.514444,
            ("°F", "°C"): None, ("inch", "mm"): 25.4}
ARCHIVE_LAG_DAYS = 5
ISSUED_AHEAD_H = 48          # hours of each forecast kept as issued
#: Hours added to a backfilled run's nominal issue time (valid_at - N days). Open-Meteo's Single
#: Runs docs: a global model's output is public typically 4-6 h after its initialisation time
#: (regional models 1-3 h), and which run feeds ``previous_day<N>`` is not stated to the hour;
#: 6 h is the upper end of that range. A constant, not a source parameter: rows are never
#: overwritten, so another margin would add issues beside the stored ones (migration 013 shifted
#: the rows stored before by this same 6 h).
PUBLICATION_MARGIN_H = 6


def station_id(site_id: str) -> str:
    return f"open-meteo:{site_id}"


def request_params(site: SiteSpec, p: OpenMeteoParams, *, start: date | None = None,
                   end: date | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"latitude": f"{site.latitude:.4f}", "longitude": f"{site.longitude:.4f}",
                         "hourly": ",".join(p.variables), "timezone": "GMT",
                         "wind_speed_unit": "ms"}
    if start is not None and end is not None:
        q.update(start_date=start.isoformat(), end_date=end.isoformat())
    else:
        q.update(forecast_days=p.forecast_days, past_days=1)
    return q


def parse_hourly(payload: Any, *, station: str, variables: tuple[str, ...],
                 source: str) -> pd.DataFrame:
    """An Open-Meteo answer -> long frame (station_id, ts UTC, variable, value); nulls dropped.

    Pure. A missing variable or ``time`` array, arrays of different lengths, or a unit that
    cannot be converted raise one-line :class:`SourceError` naming the source and field.
    """
    if not isinstance(payload, dict):
        raise SourceError(f"{source}: answer is a {type(payload).__name__}, expected an object")
    if payload.get("error"):
        raise SourceError(f"{source}: API error: {str(payload.get('reason', ''))[:160]}")
    hourly = payload.get("hourly")
    if not isinstance(hourly, dict):
        raise SourceError(f"{source}: field 'hourly' missing from the answer")
    times = hourly.get("time")
    if not isinstance(times, list):
        raise SourceError(f"{source}: field 'hourly.time' missing from the answer")
    offset = payload.get("utc_offset_seconds", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or abs(offset) > 18 * 3600:
        raise SourceError(f"{source}: field 'utc_offset_seconds' is not an offset: {offset!r}"
                          [:200])
    if not all(isinstance(t, str) for t in times):
        raise SourceError(f"{source}: field 'hourly.time' holds non-text times")
    ts = pd.to_datetime(pd.Series(times, dtype="object"), format="ISO8601", errors="coerce")
    if ts.isna().any():
        bad = times[int(ts.isna().to_numpy().argmax())]
        raise SourceError(f"{source}: field 'hourly.time' has a bad time {bad!r}"[:200])
    try:
        ts = ts.dt.tz_localize(None) if ts.dt.tz is not None else ts
        ts_utc = (ts - pd.Timedelta(seconds=offset)).dt.tz_localize("UTC")
    except (TypeError, ValueError, AttributeError) as exc:
        raise SourceError(f"{source}: field 'hourly.time' is not a time series ({exc})") from None
    units_raw = payload.get("hourly_units")
    units: dict[str, Any] = units_raw if isinstance(units_raw, dict) else {}
    frames = []
    for var in variables:
        if var not in VARIABLES:
            raise ConfigError(f"{source}: unknown Open-Meteo variable '{var}'")
        if var not in hourly:
            raise SourceError(f"{source}: field 'hourly.{var}' missing from the answer "
                              "(renamed or not available?)")
        values = hourly[var]
        if not isinstance(values, list) or len(values) != len(times):
            raise SourceError(f"{source}: field 'hourly.{var}' is not an array as long as "
                              "'hourly.time'")
        name, expected = VARIABLES[var]
        got = units.get(var, expected)
        factor = 1.0
        if got != expected:
            conv = _CONVERT.get((str(got), expected))
            if conv is None:
                raise SourceError(f"{source}: field 'hourly_units.{var}' is '{got}', "
                                  f"expected '{expected}'"[:200])
            factor = conv
        clean = [float(v) * factor if isinstance(v, int | float) and not isinstance(v, bool)
                 and math.isfinite(v) else math.nan for v in values]
        frames.append(pd.DataFrame({"station_id": station, "ts": ts_utc.to_numpy(),
                                    "variable": name, "value": clean}))
    if not frames:
        return pd.DataFrame(columns=["station_id", "ts", "variable", "value"])
    out = pd.concat(frames, ignore_index=True).dropna(subset=["value"])
    return out.reset_index(drop=True)


def as_issued(frame: pd.DataFrame, issued_at: datetime,
              ahead_h: float = ISSUED_AHEAD_H) -> pd.DataFrame:
    """A parsed forecast (station_id, ts, variable, value) as issued at ``issued_at``: the
    hours in [issued_at, issued_at + ahead_h], as rows of ``weather_forecasts``. Pure."""
    issued = pd.Timestamp(issued_at).tz_convert("UTC")
    keep = frame[(frame["ts"] >= issued) & (frame["ts"] <= issued + pd.Timedelta(hours=ahead_h))]
    return pd.DataFrame({"station_id": keep["station_id"].to_numpy(),
                         "variable": keep["variable"].to_numpy(), "issued_at": issued,
                         "valid_at": keep["ts"].to_numpy(), "value": keep["value"].to_numpy()})


def fetch_hourly(client: httpx.Client, url: str, params: dict[str, Any], *, source: str,
                 retries: int) -> Any:
    return get_json(client, url, params, source=source, retries=retries)


def _last_archive_ts(conn: psycopg.Connection, station: str) -> datetime | None:
    row = conn.execute("SELECT max(ts) FROM weather WHERE station_id = %s AND source = "
                       "'open-meteo:archive'", (station,)).fetchone()
    return row[0] if row else None


def _sites(cat: Catalogue, p: OpenMeteoParams) -> list[SiteSpec]:
    return [cat.site(s) for s in p.sites] if p.sites else list(cat.sites)


def ingest(conn: psycopg.Connection, cat: Catalogue, source: str, *,
           start: datetime | None = None, end: datetime | None = None,
           client: httpx.Client | None = None, today: date | None = None,
           now: datetime | None = None) -> dict[str, Any]:
    """Fetch hourly weather for each site of the source (archive, then forecast in auto mode).

    Incremental: the archive resumes from the day of the last stored archive hour; a rerun
    writes nothing unless Open-Meteo changed a value. Each forecast is also kept as issued at
    ``now`` (default: the time its answer arrived) in ``weather_forecasts``.
    """
    spec = cat.source(source)
    p = cat.source_params.get(source)
    if not isinstance(p, OpenMeteoParams):
        raise ConfigError(f"{cat.path}: source '{source}' is a {spec.connector} source, "
                          "not open_meteo")
    pinned_issue = now           # a test's or a replay's fixed issue time
    now = now or datetime.now(UTC)
    today = today or now.date()
    archive_end = today - timedelta(days=ARCHIVE_LAG_DAYS)
    http = client or make_client(p.timeout_s)
    out: dict[str, Any] = {"source": source, "connector": "open_meteo", "stations": {}}
    try:
        for site in _sites(cat, p):
            st = station_id(site.site_id)
            counts = {"archive_rows": 0, "forecast_rows": 0, "issued_rows": 0, "written": 0}
            last = _last_archive_ts(conn, st)
            if p.mode in ("archive", "auto"):
                a_start = (start.date() if start is not None else
                           last.astimezone(UTC).date() if last is not None else
                           today - timedelta(days=p.backfill_days))
                a_end = min(end.date() if end is not None else archive_end, archive_end) \
                    if p.mode == "auto" else (end.date() if end is not None else archive_end)
                if a_start <= a_end:
                    payload = fetch_hourly(http, p.archive_url,
                                           request_params(site, p, start=a_start, end=a_end),
                                           source=source, retries=p.retries)
                    frame = parse_hourly(payload, station=st, variables=p.variables,
                                         source=source)
                    counts["archive_rows"] = len(frame)
                    counts["written"] += upsert_weather(conn, frame, "open-meteo:archive")
                    last = _last_archive_ts(conn, st)
            if p.mode in ("forecast", "auto"):
                payload = fetch_hourly(http, p.forecast_url, request_params(site, p),
                                       source=source, retries=p.retries)
                # known once the answer arrived (not when the ingest started: a slow source or
                # retries must not date it earlier)
                fetched_at = pinned_issue or datetime.now(UTC)
                frame = parse_hourly(payload, station=st, variables=p.variables, source=source)
                issued = insert_forecasts(conn, as_issued(frame, fetched_at),
                                          "open-meteo:forecast")
                counts["issued_rows"] = issued
                counts["written"] += issued
                if last is not None:
                    frame = frame[frame["ts"] > pd.Timestamp(last)]
                counts["forecast_rows"] = len(frame)
                counts["written"] += upsert_weather(conn, frame, "open-meteo:forecast")
            out["stations"][st] = counts
    finally:
        if client is None:
            http.close()
    out["written"] = sum(c["written"] for c in out["stations"].values())
    return out


def parse_previous_runs(payload: Any, *, station: str, variables: tuple[str, ...],
                        days: tuple[int, ...], source: str) -> pd.DataFrame:
    """A Previous Runs answer -> rows of ``weather_forecasts`` (station_id, variable,
    issued_at, valid_at, value): ``<variable>_previous_day<N>`` at hour h was forecast N days
    before h and published some hours later, so issued_at = h - N days +
    ``PUBLICATION_MARGIN_H``. Pure; errors as :func:`parse_hourly`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("hourly"), dict):
        return parse_hourly(payload, station=station, variables=variables, source=source)
    frames = []
    for n in days:
        # the run N days back, read as a plain hourly answer of the base variables
        hourly = {"time": payload["hourly"].get("time")}
        units = {}
        for var in variables:
            key = f"{var}_previous_day{n}"
            if key not in payload["hourly"]:
                raise SourceError(f"{source}: field 'hourly.{key}' missing from the answer")
            hourly[var] = payload["hourly"][key]
            units[var] = (payload.get("hourly_units") or {}).get(key, VARIABLES[var][1])
        run = parse_hourly({**payload, "hourly": hourly, "hourly_units": units},
                           station=station, variables=variables, source=source)
        frames.append(pd.DataFrame({
            "station_id": run["station_id"], "variable": run["variable"],
            "issued_at": run["ts"] - pd.Timedelta(days=n)
            + pd.Timedelta(hours=PUBLICATION_MARGIN_H), "valid_at": run["ts"],
            "value": run["value"]}))
    return pd.concat(frames, ignore_index=True)


def _last_previous_run_ts(conn: psycopg.Connection, station: str) -> datetime | None:
    row = conn.execute("SELECT max(valid_at) FROM weather_forecasts WHERE station_id = %s AND "
                       "source = 'open-meteo:previous-runs'", (station,)).fetchone()
    return row[0] if row else None


def backfill_forecasts(conn: psycopg.Connection, cat: Catalogue, source: str, *,
                       start: date | None, end: date,
                       client: httpx.Client | None = None) -> dict[str, Any]:
    """Past forecasts as issued for each site of the source, from the Previous Runs API
    (``previous_run_days`` runs back), into ``weather_forecasts``, for the valid days (UTC)
    ``start`` to ``end``; existing issues are kept as they are, so a rerun writes nothing.

    ``start=None`` resumes each station after its last backfilled hour (the rolling backfill of
    the weather DAG: it fills the days the live fetches missed), or, on a station with none yet,
    ``backfill_days`` before ``end``; a station already up to ``end`` asks for nothing.
    """
    p = cat.source_params.get(source)
    if not isinstance(p, OpenMeteoParams):
        raise ConfigError(f"{cat.path}: source '{source}' is not an open_meteo source")
    http = client or make_client(p.timeout_s)
    out: dict[str, Any] = {"source": source, "stations": {}, "days": {}}
    try:
        for site in _sites(cat, p):
            st = station_id(site.site_id)
            first = start
            if first is None:
                last = _last_previous_run_ts(conn, st)
                first = ((last + timedelta(hours=1)).astimezone(UTC).date() if last is not None
                         else end - timedelta(days=p.backfill_days - 1))
            if first > end:
                out["stations"][st], out["days"][st] = 0, None
                continue
            q = request_params(site, p, start=first, end=end)
            q["hourly"] = ",".join(f"{v}_previous_day{n}" for v in p.variables
                                   for n in p.previous_run_days)
            payload = fetch_hourly(http, p.previous_runs_url, q, source=source,
                                   retries=p.retries)
            frame = parse_previous_runs(payload, station=st, variables=p.variables,
                                        days=p.previous_run_days, source=source)
            out["stations"][st] = insert_forecasts(conn, frame, "open-meteo:previous-runs")
            out["days"][st] = [first.isoformat(), end.isoformat()]
    finally:
        if client is None:
            http.close()
    out["written"] = sum(out["stations"].values())
    return out
