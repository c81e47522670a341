"""Solar geometry (``ecodemo.solar``) against pvlib's reference ``get_solarposition``, at sites
north and south of the equator and on days when the local clocks change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pvlib import location, solarposition

from ecodemo import solar
from ecodemo.sensors import quality

# (latitude, longitude, local time zone, a local day, its length in hours)
CASES = [
    pytest.param(48.85, 2.35, "Europe/Paris", "2024-03-31", 23, id="paris-dst-starts"),
    pytest.param(48.85, 2.35, "Europe/Paris", "2024-10-27", 25, id="paris-dst-ends"),
    pytest.param(43.30, -1.29, "Europe/Paris", "2024-06-21", 24, id="basque-solstice"),
    pytest.param(-33.87, 151.21, "Australia/Sydney", "2024-10-06", 23, id="sydney-dst-starts"),
    pytest.param(-33.87, 151.21, "Australia/Sydney", "2024-04-07", 25, id="sydney-dst-ends"),
    pytest.param(64.15, -21.94, "Atlantic/Reykjavik", "2024-12-21", 24, id="reykjavik-winter"),
    pytest.param(-0.18, -78.47, "America/Guayaquil", "2024-09-22", 24, id="quito-equinox"),
]


def _local_day(tz: str, day: str, hours: int) -> pd.DatetimeIndex:
    """Every 10 minutes of a local day, stamped in local time."""
    start = pd.Timestamp(day).tz_localize(tz)
    end = (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(tz)
    times = pd.date_range(start, end, freq="10min", inclusive="left")
    assert len(times) == hours * 6
    return times


@pytest.mark.parametrize(("lat", "lon", "tz", "day", "hours"), CASES)
def test_quality_sun_elevation_is_pvlibs_within_the_stated_tolerance(lat, lon, tz, day,
                                                                     hours) -> None:
    """The quality check's night test reads the analytic sun: within ANALYTIC_TOLERANCE_DEG
    (0.5 degree) of pvlib's SPA elevation, whether the stamps are local or UTC."""
    times = _local_day(tz, day, hours)
    reference = solarposition.get_solarposition(times, lat, lon)["elevation"].to_numpy()
    local = quality.analytic_elevation_deg(times, lat, lon)
    utc = quality.analytic_elevation_deg(times.tz_convert("UTC"), lat, lon)
    np.testing.assert_array_equal(local, utc)          # the instant counts, not the clock
    np.testing.assert_allclose(local, reference, rtol=0, atol=solar.ANALYTIC_TOLERANCE_DEG)
    # so "night" (sun below -6 degrees) is pvlib's night except within the tolerance of -6
    threshold = quality.Thresholds().night_elevation_deg
    clear = np.abs(reference - threshold) > solar.ANALYTIC_TOLERANCE_DEG
    assert clear.sum() > 0.9 * len(times)
    np.testing.assert_array_equal((local < threshold)[clear], (reference < threshold)[clear])


@pytest.mark.parametrize(("lat", "lon", "tz", "day", "hours"), CASES)
def test_models_sun_elevation_is_pvlibs_apparent_elevation(lat, lon, tz, day, hours) -> None:
    """The models' engine (SPA, time terms shared by all sites) gives pvlib's apparent
    elevation to rounding, for local stamps too (same altitude lookup as ``Location``)."""
    times = _local_day(tz, day, hours)
    altitude = location.lookup_altitude(lat, lon)
    reference = solarposition.get_solarposition(times, lat, lon, altitude=altitude)
    _, elevation = solar.solar_geometry_sites(times, [(lat, lon)])[(lat, lon)]
    np.testing.assert_allclose(elevation, reference["apparent_elevation"].to_numpy(), rtol=0,
                               atol=1e-6)
