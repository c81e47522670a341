"""Solar position and clear-sky irradiance for many sites on one time grid, fast.

pvlib's ``Location.get_clearsky`` runs NREL's SPA twice per site (once inside, once for the
elevation) and most of SPA's cost (heliocentric series, nutation) depends on time only. Here the
time-only SPA terms are computed once per grid and shared by every site; the site-dependent
terms (hour angle, parallax, refraction) and the Ineichen clear sky then run per site through
the same ``pvlib.spa`` / ``pvlib.clearsky`` functions and arguments that
``Location(lat, lon, tz="UTC").get_clearsky`` / ``.get_solarposition`` use, so the results are
the same numbers (see tests/unit/test_models_core.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# pvlib's defaults for spa_python via Location.get_solarposition
_TEMPERATURE_C = 12.0
_ATMOS_REFRACT_DEG = 0.5667
_DELTA_T_S = 67.0      # spa_python's default (TT - UT, seconds), as Location passes none


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


def solar_geometry_sites(times: pd.DatetimeIndex, sites: list[tuple[float, float]]
                         ) -> dict[tuple[float, float], tuple[np.ndarray, np.ndarray]]:
    """Clear-sky GHI (W/m2, Ineichen, climatological Linke turbidity) and apparent solar
    elevation (degrees) at ``times`` for each distinct (latitude, longitude) in ``sites``."""
    from pvlib import atmosphere, clearsky, irradiance, location

    out: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
    todo = list(dict.fromkeys(sites))
    if not todo:
        return out
    tt = _time_terms(times)
    dni_extra = irradiance.get_extra_radiation(times)
    for lat, lon in todo:
        loc = location.Location(lat, lon, tz="UTC")     # looks up the site's altitude
        pressure = atmosphere.alt2pres(loc.altitude)
        zenith, elevation = _site_position(tt, lat, lon, loc.altitude, pressure)
        airmass = atmosphere.get_absolute_airmass(
            atmosphere.get_relative_airmass(pd.Series(zenith, index=times)), pressure)
        turbidity = clearsky.lookup_linke_turbidity(times, lat, lon, interp_turbidity=True)
        cs = clearsky.ineichen(pd.Series(zenith, index=times), airmass, turbidity,
                               altitude=loc.altitude, dni_extra=dni_extra)
        out[(lat, lon)] = (cs["ghi"].to_numpy(dtype=float), np.asarray(elevation, dtype=float))
    return out
