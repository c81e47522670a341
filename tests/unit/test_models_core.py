"""Forecasting core on synthetic panels: leakage, DST calendar, gaps, bands, choice rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecodemo.models.baselines import Climatology, Persistence, SeasonalNaive
from ecodemo.models.calibration import ResidualBands
from ecodemo.models.features import FeatureContext, calendar_frame, feature_names, robust_scale
from ecodemo.models.forecaster import Forecaster, gather, recent_error
from ecodemo.models.ladder import choose
from ecodemo.models.lgbm import LgbmForecaster, LgbmSpec
from ecodemo.models.metrics import ALL, score
from ecodemo.models.panel import Panel, SensorMeta, panel_from_long


def _panel(kind: str = "bike", days: int = 70, sensors: int = 2, start: str = "2021-02-01",
           freq: str = "1h", seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, periods=int(days * pd.Timedelta("1D") / pd.Timedelta(freq)),
                          freq=freq, tz="UTC")
    local = times.tz_convert("Europe/Paris")
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60
    weekday = np.asarray(local.dayofweek < 5)
    frames = []
    for j in range(sensors):
        level = 50.0 * (j + 1)
        shape = np.exp(-((hour - 8.5) ** 2) / 2) + np.exp(-((hour - 18) ** 2) / 3)
        y = level * (0.2 + shape * np.where(weekday, 1.0, 0.4)) * rng.gamma(20, 1 / 20, len(times))
        frames.append(pd.DataFrame({"sensor_id": f"s{j}", "ts": times, "value": np.round(y)}))
    metas = [SensorMeta(f"s{j}", latitude=48.85, longitude=2.35) for j in range(sensors)]
    return panel_from_long(kind, pd.concat(frames), metas)


SMALL = LgbmSpec("lgbm_test", num_boost_round=15, buckets_h=(6, 24, 48), feature_set="full",
                 params={"num_leaves": 15})


def _lgbm(horizon_h: float = 48) -> LgbmForecaster:
    return LgbmForecaster(SMALL, num_threads=1, max_horizon_h=horizon_h)


def _perturb_after(panel: Panel, origin: int) -> Panel:
    vals = panel.values.copy()
    vals[origin + 1:] = vals[origin + 1:] * 7.0 + 1000.0
    return Panel(panel.kind, panel.times, panel.sensors, vals, panel.step, panel.weather)


@pytest.mark.parametrize("make", [lambda: _lgbm(), Persistence, SeasonalNaive, Climatology])
def test_forecasts_ignore_data_after_the_issue_time(make) -> None:
    panel = _panel()
    origin = len(panel.times) - 72
    f = Forecaster(make(), horizon_h=48, cal_days=7)
    f.fit(panel, origin - 24 * 5)
    before = f.predict(panel, np.array([origin - 30, origin]), 48)
    after = f.predict(_perturb_after(panel, origin), np.array([origin - 30, origin]), 48)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.isfinite(a).all()


def test_every_bucket_feature_reads_only_rows_before_its_lag() -> None:
    panel = _panel()
    origin = len(panel.times) - 72
    scale = robust_scale(panel.values)
    names = feature_names("full", "bike", with_weather=False)
    codes = np.arange(2, dtype=float)
    clean = FeatureContext.build(panel, scale, False)
    dirty = FeatureContext.build(_perturb_after(panel, origin), scale, False)
    for lag in (1, 6, 24, 48):
        t = np.repeat(origin + np.arange(1, lag + 1), 2)
        s = np.tile([0, 1], lag)
        np.testing.assert_array_equal(clean.rows(lag, t, s, names, codes),
                                      dirty.rows(lag, t, s, names, codes))
    # The check has teeth: a feature reading one step too recent (lag shorter than the lead)
    # changes when the future is perturbed.
    t = np.repeat(origin + np.arange(1, 7), 2)
    s = np.tile([0, 1], 6)
    assert not np.array_equal(clean.rows(1, t, s, names, codes),
                              dirty.rows(1, t, s, names, codes))


def test_calendar_uses_local_time_across_dst_and_grid_stays_utc() -> None:
    spring = pd.date_range("2021-03-27T22:00Z", periods=8, freq="1h")
    hours = calendar_frame(spring, "Europe/Paris")["hour"].tolist()
    assert hours == [23, 0, 1, 3, 4, 5, 6, 7]          # 02:00 local does not exist
    autumn = pd.date_range("2021-10-30T22:00Z", periods=6, freq="1h")
    assert calendar_frame(autumn, "Europe/Paris")["hour"].tolist() == [0, 1, 2, 2, 3, 4]
    panel = _panel(start="2021-03-01", days=40)
    origin = int(panel.times.get_indexer([pd.Timestamp("2021-03-27T12:00Z")])[0])
    ext = panel.extend(10)
    assert (np.diff(ext.times) == pd.Timedelta(hours=1)).all()
    f = Forecaster(_lgbm(), horizon_h=48, cal_days=5)
    f.fit(panel, origin)
    p10, p50, p90 = f.predict(panel, np.array([origin]), 48)
    assert np.isfinite(p50).all() and (p10 <= p50).all() and (p50 <= p90).all()


def test_public_and_school_holidays() -> None:
    times = pd.DatetimeIndex(["2021-07-14T10:00Z", "2021-07-15T10:00Z", "2021-02-10T10:00Z"])
    cal = calendar_frame(times, "Europe/Paris")
    assert cal["is_holiday"].tolist() == [1.0, 0.0, 0.0]
    assert cal["daytype"].tolist()[0] == 2.0
    # 10 Feb 2021: zone A's winter break had begun (6 Feb), B's and C's had not
    assert [cal[f"school_{z}"].tolist()[2] for z in "abc"] == [1.0, 0.0, 0.0]
    assert cal["school_c"].tolist()[:2] == [1.0, 1.0]     # summer


def test_sensor_with_gaps_still_gets_a_full_forecast() -> None:
    panel = _panel(days=60)
    vals = panel.values.copy()
    vals[200:500, 1] = np.nan                     # a 12-day outage
    vals[-60:-49, 1] = np.nan                     # and readings missing just before the issue
    vals[::7, 0] = np.nan                         # scattered gaps
    gappy = Panel(panel.kind, panel.times, panel.sensors, vals, panel.step)
    origin = len(panel.times) - 49
    for make in (_lgbm, Persistence, SeasonalNaive, Climatology):
        f = Forecaster(make(), horizon_h=48, cal_days=7)
        f.fit(gappy, origin)
        p10, p50, p90 = f.predict(gappy, np.array([origin]), 48)
        assert np.isfinite(p50).all(), make
        assert (p10 <= p50).all() and (p50 <= p90).all()
        assert (p10 >= 0).all()                   # counts: clipped at the training minimum


def _half_hourly_solar_panel() -> tuple[pd.DatetimeIndex, np.ndarray, Panel]:
    """60 days of a synthetic half-hourly PV sensor: its times, clear sky (0 at night), panel."""
    from ecodemo.solar import solar_geometry

    times = pd.date_range("2013-05-01", periods=48 * 60, freq="30min", tz="UTC")
    cs, _ = solar_geometry(times, 49.97, 2.79)
    rng = np.random.default_rng(1)
    y = cs * 2.0 * rng.uniform(0.3, 1.0, len(times))
    panel = panel_from_long("solar", pd.DataFrame({"sensor_id": "pv", "ts": times, "value": y}),
                            [SensorMeta("pv", latitude=49.97, longitude=2.79)])
    return times, np.asarray(cs), panel


def test_single_sensor_half_hourly_solar() -> None:
    times, cs, panel = _half_hourly_solar_panel()
    assert panel.steps_per_day == 48
    origin = len(times) - 97
    f = Forecaster(_lgbm(), horizon_h=48, cal_days=7)
    f.fit(panel, origin)
    assert "clearsky_ghi" in f.point.features  # type: ignore[attr-defined]
    p10, p50, p90 = f.predict(panel, np.array([origin]), 96)
    assert p50.shape == (1, 96, 1) and np.isfinite(p50).all()
    night = cs[origin + 1: origin + 97] == 0
    assert np.abs(p50[0, night, 0]).max() < np.abs(p50[0, ~night, 0]).max()


def _stormy_before(panel: Panel, origin: int, hours: int, seed: int = 3) -> Panel:
    """The panel with the ``hours`` before (and at) ``origin`` far from their usual pattern."""
    vals = panel.values.copy()
    rng = np.random.default_rng(seed)
    vals[origin - hours + 1: origin + 1] *= rng.uniform(0.2, 3.0, (hours, vals.shape[1]))
    return Panel(panel.kind, panel.times, panel.sensors, vals, panel.step)


def test_recent_error_scores_only_forecasts_whose_targets_are_known() -> None:
    panel = _panel(days=40)
    origin = len(panel.times) - 100
    scale = robust_scale(panel.values[: origin + 1])
    o = np.array([origin])
    calm = recent_error(SeasonalNaive(), panel, o, 24, 3, scale)
    later = recent_error(SeasonalNaive(), _perturb_after(panel, origin), o, 24, 3, scale)
    np.testing.assert_array_equal(calm, later)
    assert np.isfinite(calm).all()
    stormy = recent_error(SeasonalNaive(), _stormy_before(panel, origin, 48), o, 24, 3, scale)
    assert (stormy > 2 * calm).all()
    # too close to the start of the data: nothing to score
    assert np.isnan(recent_error(SeasonalNaive(), panel, np.array([30]), 24, 3, scale)).all()


def test_bands_widen_after_a_spell_of_large_errors_and_old_state_loads() -> None:
    panel = _panel(days=60)
    origin = len(panel.times) - 25
    f = Forecaster(Climatology(), horizon_h=24, cal_days=14, err_days=3)
    f.fit(panel, origin - 24 * 5)
    assert f.bands.err_k == 3 and set(f.bands.err_ref) == set(panel.sensor_ids)
    stormy = _stormy_before(panel, origin, 72)
    o = np.array([origin])
    lo_c, mid_c, hi_c = f.predict(panel, o, 24)
    lo_s, mid_s, hi_s = f.predict(stormy, o, 24)
    np.testing.assert_array_equal(mid_c, mid_s)              # climatology: same p50
    assert ((hi_s - lo_s).sum(axis=1) > 1.5 * (hi_c - lo_c).sum(axis=1)).all()
    # without the scaling the band ignores what happened before the issue
    g = Forecaster(Climatology(), horizon_h=24, cal_days=14, err_days=0)
    g.fit(panel, origin - 24 * 5)
    for a, b in zip(g.predict(panel, o, 24), g.predict(stormy, o, 24), strict=True):
        np.testing.assert_array_equal(a, b)
    # a state saved before the scaling existed has no err keys: its bands ignore recent errors
    old = {k: v for k, v in f.bands.state().items() if not k.startswith("err_")}
    legacy = ResidualBands.from_state(old)
    assert legacy.factor(np.ones((1, 2)), panel.sensor_ids) is None
    assert ResidualBands.from_state(f.bands.state()).state() == f.bands.state()


def test_score_against_hand_computed_figures() -> None:
    actual = np.array([[[10.0], [20.0]]])
    p50 = np.array([[[12.0], [17.0]]])
    ref = np.array([[[10.0], [30.0]]])
    p10, p90 = p50 - 1, p50 + 1
    out = score(actual, p10, p50, p90, ref, ["a"])
    assert out["a"]["mae"] == pytest.approx(2.5)
    assert out["a"]["nmae"] == pytest.approx(2.5 / 15)
    assert out["a"]["skill_vs_seasonal_naive"] == pytest.approx(1 - 2.5 / 5)
    assert out["a"]["coverage_p10_p90"] == 0.0
    assert out[ALL]["skill_vs_seasonal_naive"] == pytest.approx(0.5)


def test_ladder_choice_rule() -> None:
    rungs = [
        {"name": "seasonal_naive", "nmae": 0.30, "train_energy_kwh": 1e-9,
         "predict_energy_kwh": 1e-9, "train_seconds": 0.1},
        {"name": "lgbm_small", "nmae": 0.2030, "train_energy_kwh": 1e-6,
         "predict_energy_kwh": 1e-7, "train_seconds": 1.0},
        {"name": "lgbm_large", "nmae": 0.2000, "train_energy_kwh": 1e-5,
         "predict_energy_kwh": 1e-6, "train_seconds": 9.0},
    ]
    name, reason = choose(rungs, 0.02)
    assert name == "lgbm_small" and "lgbm_large" in reason   # 1.5 % worse, 10x cheaper
    assert choose(rungs, 0.01)[0] == "lgbm_large"            # outside a 1 % tolerance
    assert choose(rungs, 0.60)[0] == "seasonal_naive"        # a loose tolerance -> no AI
    rungs[1]["train_energy_kwh"] = None                      # measurement failed
    name, reason = choose(rungs, 0.02)
    assert name == "lgbm_small" and "wall time" in reason


@pytest.mark.parametrize("freq,periods,start", [("1h", 24 * 400, "2023-12-20"),
                                                ("30min", 48 * 3, "2024-03-30"),
                                                ("1h", 1, "2024-10-27")])
def test_shared_solar_geometry_equals_pvlib_per_site(freq: str, periods: int,
                                                     start: str) -> None:
    """The fast path (SPA's time terms shared by all sites, cached site constants) gives
    pvlib's own per-site numbers: clear sky from ``Location.get_clearsky`` (which runs its
    own solar position) and apparent elevation from ``Location.get_solarposition``."""
    import pvlib

    from ecodemo.solar import solar_geometry_many

    times = pd.date_range(start, periods=periods, freq=freq, tz="UTC")
    mid = times + (pd.Timedelta(freq) / 2)
    sites = [(46.5, 2.5), (43.31, -1.29), (50.49, 7.29), (49.97, 2.79), (46.5, 2.5)]
    fast = solar_geometry_many(times, sites)
    assert set(fast) == set(sites)
    for lat, lon in sites:
        loc = pvlib.location.Location(lat, lon, tz="UTC")
        ghi = loc.get_clearsky(mid, model="ineichen")["ghi"].to_numpy(dtype=float)
        elevation = loc.get_solarposition(mid)["apparent_elevation"].to_numpy(dtype=float)
        np.testing.assert_allclose(fast[(lat, lon)][0], ghi, rtol=0, atol=1e-9)
        np.testing.assert_allclose(fast[(lat, lon)][1], elevation, rtol=0, atol=1e-9)


def test_noon_origins_and_the_day_ahead_window_across_dst() -> None:
    from ecodemo.models.backtest import day_ahead_mask, noon_origins

    panel = _panel(days=60, start="2021-09-05")       # DST ends 31 October 2021
    origins = noon_origins(panel, 37, 30)
    local = panel.times[origins].tz_convert("Europe/Paris")
    assert len(origins) == 30 and (local.hour == 12).all() and (local.minute == 0).all()
    assert origins[-1] + 37 <= panel.last_observed_index()
    ahead = day_ahead_mask(panel, origins, 37)
    counts = dict(zip(local.date, ahead.sum(axis=1), strict=True))
    assert counts[pd.Timestamp("2021-10-30").date()] == 25   # the next day has 25 hours
    assert counts[pd.Timestamp("2021-10-20").date()] == 24
    leads = np.flatnonzero(ahead[0]) + 1
    assert (leads[0], leads[-1]) == (12, 35)                # 00:00 .. 23:00 of the next day


def test_solar_nights_get_the_night_level_and_are_scored_apart() -> None:
    from ecodemo.models.metrics import coverage_by_lead

    times, cs, panel = _half_hourly_solar_panel()
    origin = len(times) - 97
    f = Forecaster(SeasonalNaive(), horizon_h=48, cal_days=7)
    f.fit(panel, origin - 96)
    assert f.bands.night["pv"] == [0.0, 0.0, 0.0]            # nights read a constant 0
    o = np.array([origin - 48, origin])
    p10, p50, p90 = f.predict(panel, o, 96)
    targets = o[:, None] + np.arange(1, 97)[None, :]
    dark = cs[targets] == 0
    # sun down from a step before to a step after (either labelling): zero-width band at 0
    deep = dark.copy()
    for k in (1, 2):
        deep &= np.roll(dark, k, axis=1) & np.roll(dark, -k, axis=1)
    assert (p10[..., 0][deep] == 0).all() and (p90[..., 0][deep] == 0).all()
    assert (p90[..., 0][~dark] > p10[..., 0][~dark]).mean() > 0.9
    actual = gather(panel.values, o, 96)
    night = np.zeros(actual.shape, dtype=bool)
    night[..., 0] = deep
    m = score(actual, p10, p50, p90, p50, ["pv"], night)[ALL]
    day = ~deep & np.isfinite(actual[..., 0])
    inside = (actual[..., 0] >= p10[..., 0]) & (actual[..., 0] <= p90[..., 0])
    assert m["coverage_p10_p90"] == pytest.approx(inside[day].mean())
    assert m["coverage_night"] == 1.0
    by_lead = coverage_by_lead(actual, p10, p90, 0.5, (1.0, 3.0, 6.0, 12.0, 24.0, 48.0), night)
    assert list(by_lead) == ["0-1h", "1-3h", "3-6h", "6-12h", "12-24h", "24-48h"]


def _issued_forecasts(panel: Panel, every_h: int = 6, seed: int = 5) -> pd.DataFrame:
    """Synthetic hourly weather forecasts issued every ``every_h`` hours for the next 48 h."""
    rng = np.random.default_rng(seed)
    issues = pd.date_range(panel.times[0], panel.times[-1], freq=f"{every_h}h")
    rows = []
    for issued in issues:
        valid = pd.date_range(issued, periods=49, freq="1h")
        for var in ("temp_c", "shortwave_radiation_wm2"):
            rows.append(pd.DataFrame({"variable": var, "issued_at": issued, "valid_at": valid,
                                      "value": rng.normal(10, 3, len(valid))}))
    return pd.concat(rows, ignore_index=True)


def test_issued_weather_is_read_as_of_the_issue_time() -> None:
    from dataclasses import replace

    from ecodemo.models.issued import IssuedWeather

    panel = _panel(days=40)
    long = _issued_forecasts(panel)
    weather = IssuedWeather.from_long(long)
    assert weather is not None
    t0 = panel.times[500]
    # the latest forecast issued at or before the as-of time, for that hour
    got = weather.at("temp_c", pd.DatetimeIndex([t0 + pd.Timedelta(hours=10)]),
                     pd.DatetimeIndex([t0 + pd.Timedelta(minutes=30)]))
    last_issue = long[(long["issued_at"] <= t0) & (long["variable"] == "temp_c")
                      & (long["valid_at"] == t0 + pd.Timedelta(hours=10))]
    assert got[0] == last_issue.sort_values("issued_at")["value"].iloc[-1]
    # nothing issued 48 h or more before a target: unknown
    assert np.isnan(weather.at("temp_c", pd.DatetimeIndex([t0 + pd.Timedelta(hours=60)]),
                               pd.DatetimeIndex([t0]))).all()

    with_fc = replace(panel, issued_weather=weather, weather_provenance="forecast_as_issued")
    origin = len(panel.times) - 72
    f = Forecaster(_lgbm(), horizon_h=48, cal_days=7)
    f.fit(with_fc, origin - 24 * 5)
    assert "wx_temp_c" in f.point.features  # type: ignore[attr-defined]
    before = f.predict(with_fc, np.array([origin - 30, origin]), 48)
    # forecasts issued after the origin change: nothing the forecast reads changes
    late = long.copy()
    after_origin = late["issued_at"] > panel.times[origin]
    late.loc[after_origin, "value"] = late.loc[after_origin, "value"] * 5 + 40
    perturbed = replace(with_fc, issued_weather=IssuedWeather.from_long(late))
    after = f.predict(perturbed, np.array([origin - 30, origin]), 48)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    # a forecast issued before the origin does change it (the features do read them)
    early = long.copy()
    mask = (early["issued_at"] <= panel.times[origin]) & (early["issued_at"]
                                                          > panel.times[origin - 48])
    early.loc[mask, "value"] = early.loc[mask, "value"] * 5 + 40
    changed = f.predict(replace(with_fc, issued_weather=IssuedWeather.from_long(early)),
                        np.array([origin]), 48)
    assert not np.array_equal(changed[1], before[1][1:])


def test_backfilled_forecasts_are_read_only_once_published() -> None:
    """Open-Meteo's Previous Runs answer as the backfill parses it: a ``previous_day<N>`` value
    whose run's nominal age (valid - N days) is before the origin but whose publication
    (+ ``PUBLICATION_MARGIN_H``) is after it is not read by the forecast issued at the origin;
    with the nominal age as issue time (before the margin) the same values would have been."""
    from dataclasses import replace

    from ecodemo.models.issued import IssuedWeather
    from ecodemo.sensors.open_meteo import PUBLICATION_MARGIN_H, parse_previous_runs

    panel = _panel(days=40)
    rng = np.random.default_rng(11)
    hourly: dict[str, list] = {"time": [t.strftime("%Y-%m-%dT%H:%M") for t in panel.times]}
    for var in ("temperature_2m", "shortwave_radiation"):
        for n in (1, 2):
            hourly[f"{var}_previous_day{n}"] = rng.normal(10, 3, len(panel.times)).tolist()
    long = parse_previous_runs({"utc_offset_seconds": 0, "hourly": hourly}, station="x",
                               variables=("temperature_2m", "shortwave_radiation"),
                               days=(1, 2), source="test")
    margin = pd.Timedelta(hours=PUBLICATION_MARGIN_H)
    nominal = long["issued_at"] - margin          # valid - N days
    assert ((long["valid_at"] - nominal) % pd.Timedelta(days=1) == pd.Timedelta(0)).all()
    with_fc = replace(panel, issued_weather=IssuedWeather.from_long(long),
                      weather_provenance="forecast_as_issued")
    origin = len(panel.times) - 72
    f = Forecaster(_lgbm(), horizon_h=48, cal_days=7)
    f.fit(with_fc, origin - 24 * 5)
    assert "wx_temp_c" in f.point.features  # type: ignore[attr-defined]
    o = panel.times[origin]
    unpublished = (nominal <= o) & (long["issued_at"] > o)
    assert unpublished.sum() == 2 * 2 * PUBLICATION_MARGIN_H    # 2 variables x 2 runs x 6 h
    bent = long.copy()
    bent.loc[unpublished, "value"] = bent.loc[unpublished, "value"] * 5 + 40

    def predict(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
        panel_fc = replace(with_fc, issued_weather=IssuedWeather.from_long(frame))
        return f.predict(panel_fc, np.array([origin]), 48)

    for a, b in zip(predict(long), predict(bent), strict=True):
        np.testing.assert_array_equal(a, b)
    # the check has teeth: issued at their nominal age, the same values are read
    early = long.assign(issued_at=nominal)
    changed = predict(early.assign(value=bent["value"]))
    assert not np.array_equal(changed[1], predict(early)[1])


def test_ladder_spec_errors_name_the_file_and_field(tmp_path) -> None:
    from ecodemo.errors import ConfigError
    from ecodemo.models.specs import load_ladder_spec, specs_dir

    shipped = load_ladder_spec()
    assert shipped["rungs"]["seasonal_naive"] == {"type": "baseline"}
    assert shipped["calibration"]["recent_error_days"] == 3
    text = (specs_dir() / "ladder.yaml").read_text(encoding="utf-8")
    cases = {"type: lightgbm\n    num_boost_round: 50": "type: lightgbm\n    num_boost_round: 0",
             "folds: 28": "folds: many", "default: lgbm_large": "default: lgbm_huge",
             "feature_set: small": "feature_set: tiny"}
    for old, new in cases.items():
        bad = tmp_path / "ladder.yaml"
        bad.write_text(text.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ConfigError, match=r"ladder\.yaml: field '") as exc:
            load_ladder_spec(bad)
        assert "\n" not in str(exc.value)


def test_count_bands_lie_on_whole_numbers_and_old_state_loads() -> None:
    panel = _panel(days=40)                       # whole counts
    origin = len(panel.times) - 49
    f = Forecaster(SeasonalNaive(), horizon_h=48, cal_days=7)
    f.fit(panel, origin)
    assert f.bands.counts == panel.sensor_ids
    p10, p50, p90 = f.predict(panel, np.array([origin]), 48)
    assert (p10 == np.floor(p10)).all() and (p90 == np.ceil(p90)).all()
    assert (p10 <= p50).all() and (p50 <= p90).all()
    # a rate (not whole) keeps its band as fitted; a state saved before has no counts
    rate = Panel(panel.kind, panel.times, panel.sensors, panel.values / 3.0, panel.step)
    g = Forecaster(SeasonalNaive(), horizon_h=48, cal_days=7)
    g.fit(rate, origin)
    assert g.bands.counts == []
    old = {k: v for k, v in f.bands.state().items() if k != "counts"}
    assert ResidualBands.from_state(old).counts == []


def test_weather_features_are_left_missing_on_a_share_of_training_rows() -> None:
    """A weather forecast may be missing when the model forecasts: it must have seen that."""
    from ecodemo.models.lgbm import WEATHER_DROPOUT

    m = _lgbm()
    m.features = ["lag_0", "wx_temp_c", "hour", "wx_cloud_cover_pct", "sensor"]
    x = np.ones((20_000, 5), dtype=np.float32)
    m._weather_dropout(x, np.random.default_rng(0))
    blank = np.isnan(x)
    assert not blank[:, [0, 2, 4]].any()
    assert (blank[:, 1] == blank[:, 3]).all()               # a row misses all its weather
    assert abs(blank[:, 1].mean() - WEATHER_DROPOUT) < 0.02


def test_climatology_falls_back_on_the_recent_profile_for_an_unseen_month() -> None:
    times = pd.date_range("2021-01-01", "2021-03-31 23:00", freq="1h", tz="UTC")
    level = np.where(times < pd.Timestamp("2021-03-04", tz="UTC"), 10.0, 100.0)
    panel = panel_from_long("wind", pd.DataFrame({"sensor_id": "w", "ts": times,
                                                  "value": level}), [SensorMeta("w")])
    c = Climatology()
    c.fit(panel, len(times) - 1)
    # April is not in the training window: the last 4 weeks (100), not the window (10)
    april = c.predict(panel, np.array([len(times) - 1]), 48)
    assert np.allclose(april, 100.0)


def test_backtest_bands_refresh_with_known_targets_only_and_are_restored() -> None:
    from ecodemo.models.backtest import noon_origins, predict_refreshing

    panel = _panel(days=70)
    origins = noon_origins(panel, 37, 14)
    f = Forecaster(SeasonalNaive(), horizon_h=37, cal_days=7)
    f.fit(panel, int(origins[0]))
    before, scale = f.bands.state(), dict(f.scale)
    once = f.predict(panel, origins, 37)
    weekly = predict_refreshing(f, panel, origins, 37, 7)
    assert f.bands.state() == before                       # the registered bands are untouched
    assert f.scale == scale
    np.testing.assert_array_equal(weekly[1], once[1])      # same p50
    assert not np.array_equal(weekly[0], once[0])          # refreshed bands in week 2
    np.testing.assert_array_equal(weekly[0][:7], once[0][:7])
    # nothing after an origin reaches the forecasts issued at or before it
    cut = int(origins[9])
    later = predict_refreshing(f, _perturb_after(panel, cut), origins, 37, 7)
    for a, b in zip(weekly, later, strict=True):
        np.testing.assert_array_equal(a[:10], b[:10])
