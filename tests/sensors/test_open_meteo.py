"""Open-Meteo connector against a local server answering like /v1/archive and /v1/forecast."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from ecodemo.errors import SourceError
from ecodemo.sensors import open_meteo
from ecodemo.sensors.catalogue import register_catalogue
from tests.sensors.conftest import catalogue_for
from tests.sensors.http_server import Fault

START, END = datetime(2024, 9, 1, tzinfo=UTC), datetime(2024, 9, 3, tzinfo=UTC)
STATION = "open-meteo:rte-hauts-de-france-solar"


def test_archive_rows_land_long_and_rerun_changes_nothing(conn, server, server_state,
                                                          tmp_path) -> None:
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"mode": "archive"}})
    register_catalogue(conn, cat)
    res = open_meteo.ingest(conn, cat, "open-meteo", start=START, end=END)
    # 72 hours x 6 variables, minus the one null temperature of the last hour
    assert res["stations"][STATION]["archive_rows"] == 431
    assert res["written"] == 2 * 431
    q = server_state.requests[0][1]
    assert q["start_date"] == "2024-09-01" and q["end_date"] == "2024-09-03"
    assert q["latitude"] == "49.9700" and q["wind_speed_unit"] == "ms"
    assert set(q["hourly"].split(",")) == set(open_meteo.VARIABLES)
    rows = dict(conn.execute(
        "SELECT variable, count(*) FROM weather WHERE station_id = %s GROUP BY variable",
        (STATION,)).fetchall())
    assert rows == {"temp_c": 71, "cloud_cover_pct": 72, "shortwave_radiation_wm2": 72,
                    "wind_speed_ms": 72, "wind_speed_100m_ms": 72, "precip_1h_mm": 72}
    first = conn.execute("SELECT min(ts) FROM weather WHERE station_id = %s",
                         (STATION,)).fetchone()
    assert first is not None and first[0] == START  # times read as GMT
    again = open_meteo.ingest(conn, cat, "open-meteo", start=START, end=END)
    assert again["written"] == 0


def test_auto_mode_archive_then_forecast_never_overwrites_archive(conn, server,
                                                                  tmp_path) -> None:
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"sites": ["paris-road-376-flow"]}})
    register_catalogue(conn, cat)
    res = open_meteo.ingest(conn, cat, "open-meteo", today=date(2024, 9, 8))
    st = res["stations"]["open-meteo:paris-road-376-flow"]
    assert st["archive_rows"] == 431
    assert st["forecast_rows"] == 3 * 24 * 6  # forecast hours after the last archive hour
    sources = dict(conn.execute("SELECT source, count(*) FROM weather GROUP BY source")
                   .fetchall())
    assert sources == {"open-meteo:archive": 431, "open-meteo:forecast": 432}
    again = open_meteo.ingest(conn, cat, "open-meteo", today=date(2024, 9, 8))
    assert again["written"] == 0


def test_wind_in_kmh_is_converted(conn, server, server_state, tmp_path) -> None:
    doc = server_state.open_meteo["archive"]
    doc["hourly_units"]["wind_speed_10m"] = "km/h"
    doc["hourly"]["wind_speed_10m"] = [36.0] * len(doc["hourly"]["time"])
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"mode": "archive",
                                                           "sites": ["paris-road-376-flow"]}})
    register_catalogue(conn, cat)
    open_meteo.ingest(conn, cat, "open-meteo", start=START, end=END)
    row = conn.execute("SELECT min(value), max(value) FROM weather "
                       "WHERE variable = 'wind_speed_ms'").fetchone()
    assert row == (10.0, 10.0)


def test_missing_variable_names_source_and_field(conn, server, server_state, tmp_path) -> None:
    del server_state.open_meteo["archive"]["hourly"]["cloud_cover"]
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"mode": "archive"}})
    with pytest.raises(SourceError) as err:
        open_meteo.ingest(conn, cat, "open-meteo", start=START, end=END)
    assert str(err.value).startswith("open-meteo: field 'hourly.cloud_cover' missing")


def test_api_error_400_is_one_line(conn, server, server_state, tmp_path) -> None:

    server_state.faults = [Fault(400, b'{"error":true,"reason":"Cannot initialize '
                                      b'WeatherVariable from invalid String value foo"}')]
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"mode": "archive"}})
    with pytest.raises(SourceError, match=r"^open-meteo: HTTP 400 .*invalid String"):
        open_meteo.ingest(conn, cat, "open-meteo", start=START, end=END)


def test_forecasts_are_kept_as_issued_never_overwritten(conn, server, server_state,
                                                        tmp_path) -> None:
    """Recorded /v1/forecast answer served by the local test server (no internet here)."""
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"mode": "forecast",
                                                            "sites": ["paris-road-376-flow"]}})
    register_catalogue(conn, cat)
    station = "open-meteo:paris-road-376-flow"
    first = datetime(2024, 9, 3, 10, 20, tzinfo=UTC)
    res = open_meteo.ingest(conn, cat, "open-meteo", now=first)
    # 11:00 on the 3rd .. 10:00 on the 5th: the 48 hours after the issue time, 6 variables
    assert res["stations"][station]["issued_rows"] == 48 * 6
    rows = conn.execute("SELECT min(valid_at), max(valid_at), count(DISTINCT issued_at) "
                        "FROM weather_forecasts WHERE station_id = %s", (station,)).fetchone()
    assert rows == (datetime(2024, 9, 3, 11, tzinfo=UTC), datetime(2024, 9, 5, 10, tzinfo=UTC),
                    1)
    assert open_meteo.ingest(conn, cat, "open-meteo", now=first)["stations"][station][
        "issued_rows"] == 0
    # a later issue with other values: a new issue, the first one kept as it was
    doc = server_state.open_meteo["forecast"]
    doc["hourly"]["temperature_2m"] = [99.0] * len(doc["hourly"]["time"])
    later = datetime(2024, 9, 4, 6, 5, tzinfo=UTC)
    assert open_meteo.ingest(conn, cat, "open-meteo", now=later)["stations"][station][
        "issued_rows"] == 48 * 6                  # 07:00 on the 4th .. 06:00 on the 6th
    kept = conn.execute(
        """SELECT issued_at, max(value) FROM weather_forecasts WHERE station_id = %s
           AND variable = 'temp_c' GROUP BY issued_at ORDER BY issued_at""",
        (station,)).fetchall()
    assert [k[0] for k in kept] == [first, later]
    assert kept[0][1] < 99.0 and kept[1][1] == 99.0


def test_backfill_from_previous_runs_is_as_issued(conn, server, server_state,
                                                  tmp_path) -> None:
    """Recorded Previous Runs answer (``<variable>_previous_day1/2``) from the local server."""
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"sites": ["paris-road-376-flow"]}})
    register_catalogue(conn, cat)
    station = "open-meteo:paris-road-376-flow"
    res = open_meteo.backfill_forecasts(conn, cat, "open-meteo", start=START.date(),
                                        end=END.date())
    # 72 hours x 6 variables x 2 runs, minus the null temperature of the last hour in each
    assert res["stations"][station] == 2 * 431
    q = server_state.requests[-1][1]
    assert "temperature_2m_previous_day2" in q["hourly"].split(",")
    ages = dict(conn.execute(
        """SELECT valid_at - issued_at, count(*) FROM weather_forecasts WHERE station_id = %s
           GROUP BY 1""", (station,)).fetchall())
    # issued N days before the hour plus the publication margin (6 h), not at the run's age
    margin = timedelta(hours=open_meteo.PUBLICATION_MARGIN_H)
    assert margin == timedelta(hours=6)
    assert ages == {timedelta(days=1) - margin: 431, timedelta(days=2) - margin: 431}
    day1, day2 = (conn.execute(
        """SELECT value FROM weather_forecasts WHERE station_id = %s AND variable = 'temp_c'
           AND valid_at = %s AND valid_at - issued_at = %s""",
        (station, START, timedelta(days=n) - margin)).fetchone()[0] for n in (1, 2))
    doc = server_state.open_meteo["previous-runs"]["hourly"]
    assert (day1, day2) == (doc["temperature_2m_previous_day1"][0],
                            doc["temperature_2m_previous_day2"][0])
    again = open_meteo.backfill_forecasts(conn, cat, "open-meteo", start=START.date(),
                                          end=END.date())
    assert again["written"] == 0


def test_rolling_backfill_resumes_after_the_last_backfilled_hour(conn, server, server_state,
                                                                 tmp_path) -> None:
    """``start=None`` (the weather DAG's daily runs): a new station gets ``backfill_days``, then
    each run asks only for the days after its last backfilled hour, and nothing when up to date
    (recorded Previous Runs answer from the local server)."""
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"sites": ["paris-road-376-flow"],
                                                            "backfill_days": 2}})
    register_catalogue(conn, cat)
    station = "open-meteo:paris-road-376-flow"

    def previous_runs_asked() -> list[tuple[str, str]]:
        return [(q["start_date"], q["end_date"]) for path, q in server_state.requests
                if path.startswith("/previous-runs/")]

    first = open_meteo.backfill_forecasts(conn, cat, "open-meteo", start=None,
                                          end=date(2024, 9, 2))
    assert previous_runs_asked() == [("2024-09-01", "2024-09-02")]   # backfill_days = 2
    assert first["stations"][station] == 2 * 48 * 6                  # 2 runs x 48 h x 6
    assert first["days"][station] == ["2024-09-01", "2024-09-02"]
    again = open_meteo.backfill_forecasts(conn, cat, "open-meteo", start=None,
                                          end=date(2024, 9, 2))
    assert again["written"] == 0 and again["days"][station] is None
    assert len(previous_runs_asked()) == 1                           # up to date: no request
    later = open_meteo.backfill_forecasts(conn, cat, "open-meteo", start=None,
                                          end=date(2024, 9, 3))
    assert previous_runs_asked()[-1] == ("2024-09-03", "2024-09-03")
    # the day's 24 hours x 6 variables x 2 runs, minus the null temperature of its last hour
    assert later["stations"][station] == 2 * (24 * 6 - 1)
    span = conn.execute("SELECT min(valid_at), max(valid_at), count(*) FROM weather_forecasts "
                        "WHERE station_id = %s", (station,)).fetchone()
    assert span == (START, datetime(2024, 9, 3, 23, tzinfo=UTC), 2 * 431)


def test_a_backfilled_forecast_is_not_read_before_it_was_published(conn, server,
                                                                   tmp_path) -> None:
    """Recorded Previous Runs answer from the local server: at an as-of time after the day-1
    run's nominal age (valid - 24 h) but before its publication (+ 6 h) the day-1 value is not
    known yet; the day-2 value, published long before, is what a deployment had."""
    from ecodemo.models.issued import IssuedWeather
    from ecodemo.store.weather_forecasts import load_forecasts

    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"sites": ["paris-road-376-flow"]}})
    register_catalogue(conn, cat)
    station = "open-meteo:paris-road-376-flow"
    open_meteo.backfill_forecasts(conn, cat, "open-meteo", start=START.date(), end=END.date())
    valid = datetime(2024, 9, 3, 12, tzinfo=UTC)
    rows = load_forecasts(conn, station, ["temp_c"], START, END + timedelta(days=1))
    day1, day2 = (rows.loc[(rows["valid_at"] == valid) & (rows["valid_at"] - rows["issued_at"]
                                                          == timedelta(days=n, hours=-6)),
                           "value"].item() for n in (1, 2))
    assert day1 != day2
    weather = IssuedWeather.from_long(rows)
    assert weather is not None

    def known(asof: datetime) -> float:
        return float(weather.at("temp_c", pd.DatetimeIndex([valid]),
                                pd.DatetimeIndex([asof]))[0])

    assert known(valid - timedelta(hours=24)) == day2          # the run's nominal issue time
    assert known(valid - timedelta(hours=19)) == day2          # 5 h later: not published yet
    assert known(valid - timedelta(hours=18)) == day1          # published (+ 6 h)
    assert math.isnan(known(valid - timedelta(hours=43)))      # before the day-2 run's margin
    assert known(valid - timedelta(hours=42)) == day2
    # the store's own as-of reading agrees: nothing issued after ``issued_until``
    early = load_forecasts(conn, station, ["temp_c"], valid, valid,
                           issued_until=valid - timedelta(hours=19))
    assert early["value"].tolist() == [day2]


def test_a_live_forecast_is_issued_when_its_answer_arrived(conn, server, server_state,
                                                           tmp_path) -> None:
    """The recorded /v1/forecast answer moved to today, served 1.5 s late by the local server:
    its issue time is after the answer, not when the ingest started."""
    doc = server_state.open_meteo["forecast"]
    shift = datetime.now(UTC).date() - date(2024, 9, 3)
    doc["hourly"]["time"] = [(datetime.fromisoformat(t) + shift).isoformat(timespec="minutes")
                             for t in doc["hourly"]["time"]]
    server_state.faults = [Fault(delay_s=1.5)]                # delays, then answers normally
    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"mode": "forecast",
                                                            "sites": ["paris-road-376-flow"]}})
    register_catalogue(conn, cat)
    started = datetime.now(UTC)
    res = open_meteo.ingest(conn, cat, "open-meteo")
    assert res["stations"]["open-meteo:paris-road-376-flow"]["issued_rows"] > 0
    issued = conn.execute("SELECT DISTINCT issued_at FROM weather_forecasts").fetchall()
    assert len(issued) == 1 and issued[0][0] >= started + timedelta(seconds=1.5)


def test_migration_013_moves_rows_backfilled_before_to_their_publication_time(
        conn, server, tmp_path) -> None:
    """Rows stored with the old issue time (valid - N days) are shifted by the margin, so a new
    backfill of the same days writes nothing; a row whose shifted key a live fetch holds gives
    way; other sources' rows (even a whole number of days old) are untouched, and so is
    everything on a second run (recorded Previous Runs answer from the local server)."""
    from ecodemo.store.migrate import available_migrations

    cat = catalogue_for(server, tmp_path, **{"open-meteo": {"sites": ["paris-road-376-flow"]}})
    register_catalogue(conn, cat)
    station = "open-meteo:paris-road-376-flow"
    written = open_meteo.backfill_forecasts(conn, cat, "open-meteo", start=START.date(),
                                            end=END.date())["written"]
    # as the backfill stored them before the margin
    conn.execute("""UPDATE weather_forecasts SET issued_at = issued_at - interval '6 hours'
                    WHERE source = 'open-meteo:previous-runs'""")
    clash = datetime(2024, 9, 1, 6, tzinfo=UTC)   # a live fetch at the shifted issue time
    conn.execute("""INSERT INTO weather_forecasts (station_id, variable, issued_at, valid_at,
                        value, source) VALUES (%s, 'temp_c', %s, %s, 99.0, 'open-meteo:forecast')
                 """, (station, clash, clash + timedelta(hours=18)))
    conn.execute("""INSERT INTO weather_forecasts (station_id, variable, issued_at, valid_at,
                        value, source) VALUES (%s, 'temp_c', %s, %s, 7.0, 'open-meteo:forecast')
                 """, (station, END + timedelta(hours=10), END + timedelta(days=2, hours=10)))
    sql = next(m.plain_sql for m in available_migrations()
               if m.name == "previous_runs_publication")
    for _ in range(2):                             # the second run changes nothing
        with conn.transaction():
            conn.execute(sql.encode())
        ages = dict(conn.execute(
            """SELECT valid_at - issued_at, count(*) FROM weather_forecasts
               WHERE source = 'open-meteo:previous-runs' GROUP BY 1""").fetchall())
        assert ages == {timedelta(hours=18): 431 - 1, timedelta(hours=42): 431}
    live = conn.execute("""SELECT valid_at - issued_at, value FROM weather_forecasts
                           WHERE source = 'open-meteo:forecast' ORDER BY 1""").fetchall()
    assert live == [(timedelta(hours=18), 99.0), (timedelta(hours=48), 7.0)]
    again = open_meteo.backfill_forecasts(conn, cat, "open-meteo", start=START.date(),
                                          end=END.date())
    assert again["written"] == 0 and written == 2 * 431


def test_previous_run_days_must_be_whole_days_back(server, tmp_path) -> None:
    """Day 0 is the latest run, which may be published after the hour it forecasts."""
    from ecodemo.errors import ConfigError

    with pytest.raises(ConfigError, match=r"field '.*previous_run_days.*'.*>= 1") as err:
        catalogue_for(server, tmp_path, **{"open-meteo": {"previous_run_days": [0, 1]}})
    assert "\n" not in str(err.value)
