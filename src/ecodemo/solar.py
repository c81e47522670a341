"""Solar geometry, the one place ecodemo computes it (pvlib underneath, imported here only).

Two engines, both pvlib's, for two needs:

- exact (the models' features and night masks): NREL's SPA and the Ineichen clear sky, the same
  numbers as ``Location(lat, lon, tz="UTC").get_clearsky`` / ``.get_solarposition``, made fast
  for many sites. pvlib's ``Location.get_clearsky`` runs SPA twice per site (once inside, once
  for the elevation) and most of SPA's cost (heliocentric series, nutation) depends on time
  only. Here the time-only SPA terms are computed once per grid and shared by every site; the
  site-dependent terms (hour angle, parallax, refraction) and the Ineichen clear sky then run
  per site through the same ``pvlib.spa`` / ``pvlib.clearsky`` functions and arguments (see
  tests/unit/test_models_core.py).
- analytic (the quality checks' night test, the simulator): Spencer's declination and equation
  of time with the analytical zenith, geometric (no refraction). About 30x cheaper than SPA
  (1 year of 10-minute stamps, one site: 9 ms against 270 ms), and within
  ``ANALYTIC_TOLERANCE_DEG`` of SPA's elevation: ample for a "sun 6 degrees below the horizon"
  test and for synthetic data (tests/unit/test_solar.py), too coarse for features.

Times may carry any time zone (naive means UTC): the geometry is computed on the UTC instant,
so a Europe/Paris index across a DST change gives the same sun as its UTC twin.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

# pvlib's defaults for spa_python via Location.get_solarposition
_TEMPERATURE_C = 12.0
_ATMOS_REFRACT_DEG = 0.5667
_DELTA_T_S = 67.0      # spa_python's default (TT - UT, seconds), as Location passes none


def _utc(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The same instants in UTC (naive stamps are taken as UTC)."""
    return times.tz_convert("UTC") if times.tz is not None else times


@dataclass(frozen=True)
class _TimeTerms:
    """SPA quantities that depend on time only (arrays over the grid)."""

    v: np.ndarray        # apparent sidereal time at Greenwich (degrees)
    alpha: np.ndarray    # geocentric sun right ascension (degrees)
    delta: np.ndarray    # geocentric sun declination (degrees)
    xi: np.ndarray       # equatorial horizontal parallax (degrees)


def _time_terms(times: pd.DatetimeIndex) -> _TimeTerms:
    """The time-only half of ``pvlib.spa.solar_position_numpy`` (same calls, same order)."""
    from pvlib import solarposition, spa

    unixtime = solarposition._datetime_to_unixtime(times)
    delta_t = _DELTA_T_S
    jd = spa.julian_day(unixtime)
    jde = spa.julian_ephemeris_day(jd, delta_t)
    jc = spa.julian_century(jd)
    jce = spa.julian_ephemeris_century(jde)
    jme = spa.julian_ephemeris_millennium(jce)
    r = spa.heliocentric_radius_vector(jme)
    theta = spa.geocentric_longitude(spa.heliocentric_longitude(jme))
    beta = spa.geocentric_latitude(spa.heliocentric_latitude(jme))
    x0 = spa.mean_elongation(jce)
    x1 = spa.mean_anomaly_sun(jce)
    x2 = spa.mean_anomaly_moon(jce)
    x3 = spa.moon_argument_latitude(jce)
    x4 = spa.moon_ascending_longitude(jce)
    nutation = np.empty((2, len(x0)))
    spa.longitude_obliquity_nutation(jce, x0, x1, x2, x3, x4, nutation)
    delta_psi, delta_epsilon = nutation[0], nutation[1]
    epsilon = spa.true_ecliptic_obliquity(spa.mean_ecliptic_obliquity(jme), delta_epsilon)
    lamd = spa.apparent_sun_longitude(theta, delta_psi, spa.aberration_correction(r))
    v = spa.apparent_sidereal_time(spa.mean_sidereal_time(jd, jc), delta_psi, epsilon)
    return _TimeTerms(v=v, alpha=spa.geocentric_sun_right_ascension(lamd, epsilon, beta),
                      delta=spa.geocentric_sun_declination(lamd, epsilon, beta),
                      xi=spa.equatorial_horizontal_parallax(r))


def _site_position(tt: _TimeTerms, lat: float, lon: float, elev: float,
                   pressure_pa: float) -> tuple[np.ndarray, np.ndarray]:
    """Apparent zenith and apparent elevation (degrees): the site half of SPA."""
    from pvlib import spa

    h = spa.local_hour_angle(tt.v, lon, tt.alpha)
    u = spa.uterm(lat)
    x = spa.xterm(u, lat, elev)
    y = spa.yterm(u, lat, elev)
    delta_alpha = spa.parallax_sun_right_ascension(x, tt.xi, h, tt.delta)
    delta_prime = spa.topocentric_sun_declination(tt.delta, x, y, tt.xi, delta_alpha, h)
    h_prime = spa.topocentric_local_hour_angle(h, delta_alpha)
    e0 = spa.topocentric_elevation_angle_without_atmosphere(lat, delta_prime, h_prime)
    delta_e = spa.atmospheric_refraction_correction(pressure_pa / 100, _TEMPERATURE_C, e0,
                                                    _ATMOS_REFRACT_DEG)
    e = spa.topocentric_elevation_angle(e0, delta_e)
    return spa.topocentric_zenith_angle(e), e


@lru_cache(maxsize=8192)
def _site_constants(lat: float, lon: float) -> tuple[float, np.ndarray]:
    """A site's altitude (m, pvlib's lookup as ``Location`` does) and its Linke turbidity for
    every (leap-year flag, day of year): pvlib interpolates the monthly climatology by those
    two only, so one lookup on two reference years serves any grid (cached per process)."""
    from pvlib import clearsky, location

    days = clearsky.lookup_linke_turbidity(_REFERENCE_DAYS, lat, lon, interp_turbidity=True)
    return float(location.lookup_altitude(lat, lon)), days.to_numpy(dtype=float)


# 2015 (365 days) then 2016 (leap, 366 days), daily at midnight UTC
_REFERENCE_DAYS = pd.date_range("2015-01-01", "2016-12-31", freq="D", tz="UTC")


def _reference_rows(times: pd.DatetimeIndex) -> np.ndarray:
    """Row of each time in ``_REFERENCE_DAYS`` with the same day of year and leap flag."""
    utc = _utc(times)
    return np.asarray(utc.day_of_year - 1 + np.where(utc.is_leap_year, 365, 0))


def _site_geometry(tt: _TimeTerms, dni_extra: np.ndarray, rows: np.ndarray, lat: float,
                   lon: float) -> tuple[np.ndarray, np.ndarray]:
    from pvlib import atmosphere, clearsky

    altitude, turbidity_days = _site_constants(lat, lon)
    pressure = atmosphere.alt2pres(altitude)
    # night: airmass is NaN and Ineichen divides by zero; pandas (pvlib's usual input) hides
    # these warnings, plain arrays need it said
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zenith, elevation = _site_position(tt, lat, lon, altitude, pressure)
        airmass = atmosphere.get_absolute_airmass(atmosphere.get_relative_airmass(zenith),
                                                  pressure)
        cs = clearsky.ineichen(zenith, airmass, turbidity_days[rows], altitude=altitude,
                               dni_extra=dni_extra)
    return np.asarray(cs["ghi"], dtype=float), np.asarray(elevation, dtype=float)


def solar_geometry_sites(times: pd.DatetimeIndex, sites: list[tuple[float, float]]
                         ) -> dict[tuple[float, float], tuple[np.ndarray, np.ndarray]]:
    """Clear-sky GHI (W/m2, Ineichen, climatological Linke turbidity) and apparent solar
    elevation (degrees) at ``times`` for each distinct (latitude, longitude) in ``sites``.

    Same numbers as ``Location(lat, lon, tz="UTC").get_clearsky(times)`` and
    ``.get_solarposition(times)["apparent_elevation"]``.
    """
    from pvlib import irradiance

    out: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
    todo = list(dict.fromkeys(sites))
    if not todo:
        return out
    tt = _time_terms(times)
    dni_extra = np.asarray(irradiance.get_extra_radiation(times), dtype=float)
    rows = _reference_rows(times)
    for lat, lon in todo:
        out[(lat, lon)] = _site_geometry(tt, dni_extra, rows, lat, lon)
    return out


def interval_middles(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The middle of each grid interval (a reading labelled ``t`` covers ``[t, t + step)``)."""
    step = times[1] - times[0] if len(times) > 1 else pd.Timedelta(hours=1)
    return times + step / 2


def solar_geometry(times: pd.DatetimeIndex, latitude: float,
                   longitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Clear-sky GHI (W/m2, Ineichen with climatological Linke turbidity) and solar elevation
    (degrees) at the middle of each grid interval, from pvlib's ``Location`` (the reference the
    shared computation is tested against; one site)."""
    import pvlib

    mid = interval_middles(times)
    loc = pvlib.location.Location(latitude, longitude, tz="UTC")
    pos = loc.get_solarposition(mid)
    cs = loc.get_clearsky(mid, model="ineichen", solar_position=pos)
    return cs["ghi"].to_numpy(dtype=float), pos["apparent_elevation"].to_numpy(dtype=float)


def solar_geometry_many(times: pd.DatetimeIndex, sites: list[tuple[float, float]]
                        ) -> dict[tuple[float, float], tuple[np.ndarray, np.ndarray]]:
    """:func:`solar_geometry` for each distinct (latitude, longitude) of ``sites`` at once."""
    return solar_geometry_sites(interval_middles(times), sites)


NIGHT_ELEVATION_DEG = -1.0   # below this the sun's disc and refraction give no light
NIGHT_MAX_STEP = pd.Timedelta(hours=3)


def night_mask(times: pd.DatetimeIndex, sites: list[tuple[float, float]]) -> np.ndarray | None:
    """[time, site] True where the sun stays below the horizon from one grid step before to one
    step after the time: night whichever way the source labels its intervals (start or end).
    None when the grid is coarser than 3 h (a step then holds day and night)."""
    if len(times) < 2 or times[1] - times[0] > NIGHT_MAX_STEP:
        return None
    step = times[1] - times[0]
    ext = pd.DatetimeIndex([times[0] - step]).append(times).append(
        pd.DatetimeIndex([times[-1] + step]))
    geometry = solar_geometry_sites(ext, sites)
    out = np.zeros((len(times), len(sites)), dtype=bool)
    for j, site in enumerate(sites):
        dark = geometry[site][1] < NIGHT_ELEVATION_DEG
        out[:, j] = dark[:-2] & dark[1:-1] & dark[2:]
    return out


# ------------------------------------------------------------------ analytic engine (cheap)

# measured against pvlib.solarposition.get_solarposition's elevation, 2024 every 10 minutes at
# five sites from 34 S to 64 N: at most 0.44 degrees (0.9 against the apparent elevation,
# which adds refraction near the horizon)
ANALYTIC_TOLERANCE_DEG = 0.5


def analytic_zenith_deg(times: pd.DatetimeIndex, latitudes_deg: np.ndarray,
                        longitudes_deg: np.ndarray) -> np.ndarray:
    """[time, site] geometric solar zenith (degrees) from pvlib's Spencer (1971) declination and
    equation of time and its analytical zenith; within ``ANALYTIC_TOLERANCE_DEG`` of SPA."""
    from pvlib import solarposition

    utc = _utc(times)
    doy = np.asarray(utc.day_of_year, dtype=float)
    decl = np.asarray(solarposition.declination_spencer71(doy))
    eot_min = np.asarray(solarposition.equation_of_time_spencer71(doy))
    utc_hours = np.asarray((utc - utc.normalize()) / pd.Timedelta(hours=1), dtype=float)
    lat = np.radians(np.asarray(latitudes_deg, dtype=float))
    lon = np.asarray(longitudes_deg, dtype=float)
    # hour angle as pvlib.solarposition.hour_angle: 15 degrees per hour from solar noon
    hour_angle = np.radians(15.0 * (utc_hours[:, None] - 12.0) + lon[None, :]
                            + eot_min[:, None] / 4.0)
    zenith = solarposition.solar_zenith_analytical(lat[None, :], hour_angle, decl[:, None])
    return np.degrees(np.asarray(zenith, dtype=float))


def analytic_elevation_deg(times: pd.DatetimeIndex, latitude: float,
                           longitude: float) -> np.ndarray:
    """Geometric solar elevation (degrees) at ``times`` for one site (analytic engine)."""
    return 90.0 - analytic_zenith_deg(times, np.array([latitude]), np.array([longitude]))[:, 0]


def haurwitz_ghi(zenith_deg: np.ndarray) -> np.ndarray:
    """Clear-sky GHI (W/m2) of pvlib's Haurwitz model (zenith only, no site data), any shape."""
    from pvlib import clearsky

    flat = pd.Series(np.asarray(zenith_deg, dtype=float).ravel())
    return clearsky.haurwitz(flat)["ghi"].to_numpy(dtype=float).reshape(np.shape(zenith_deg))
