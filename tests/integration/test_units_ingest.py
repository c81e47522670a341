"""Sites and readings in units as other portals write them, against real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from ecodemo.errors import InputError
from ecodemo.store.ingest import FLAG_UNIT_CONVERTED, ingest_csv
from ecodemo.store.sites import read_sites_csv, register_sites_csv

SITES = """site_id,name,kind,latitude,longitude,unit,resolution
telraam-cars,Telraam cars,traffic,50.85,4.35,cars/h,PT1H
telraam-heavy,Telraam heavy,traffic,50.85,4.35,heavy vehicles/h,PT1H
mtp-bike-day,Montpellier daily counter,bike,43.61,3.88,bicycles/day,P1D
mtp-bike-hour,Montpellier hourly counter,bike,43.61,3.88,Nb vélos/heure,PT1H
loop-15,Loop 15 min,traffic,48.85,2.35,/15min,PT15M
pv-kw,PV in kW,solar,45.0,0.2,kW,PT1H
"""


@pytest.fixture()
def wild_sites(conn: psycopg.Connection, tmp_path: Path) -> None:
    p = tmp_path / "sites.csv"
    p.write_text(SITES, encoding="utf-8")
    assert register_sites_csv(conn, p) == 6


def test_sites_file_with_wild_units_is_accepted_and_stored_canonically(conn, wild_sites) -> None:
    got = dict(conn.execute("SELECT sensor_id, unit FROM sensors").fetchall())
    assert got == {"telraam-cars": "cars/h", "telraam-heavy": "heavy vehicles/h",
                   "mtp-bike-day": "bicycles/d", "mtp-bike-hour": "bicycles/h",
                   "loop-15": "count/15min", "pv-kw": "kW"}
    quantity = dict(conn.execute("SELECT sensor_id, quantity FROM sensors").fetchall())
    assert quantity["telraam-heavy"] == "count" and quantity["pv-kw"] == "power"


@pytest.mark.parametrize("bad", ["furlongs", "kW/h", "mW", "vehicles/h/h"])
def test_sites_file_with_a_nonsense_unit_is_refused_in_one_line(tmp_path: Path, bad: str) -> None:
    p = tmp_path / "sites.csv"
    p.write_text(SITES + f"x,X,traffic,48.8,2.3,{bad},PT1H\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_sites_csv(p)
    msg = str(info.value)
    assert "\n" not in msg and str(p) in msg and "line 8" in msg and "unit" in msg
    assert bad in msg


def test_readings_in_wild_units_convert_or_go_to_quarantine(conn, wild_sites, tmp_path) -> None:
    rows = [
        "2024-05-01T10:00:00Z,telraam-cars,120,veh/h",            # same period: stored
        "2024-05-01T11:00:00Z,telraam-cars,130,vehicles per hour",
        "2024-05-01T10:00:00Z,telraam-heavy,7,heavy vehicles/h",
        "2024-05-01T00:00:00Z,mtp-bike-day,2400,bicycles/day",    # daily total, daily sensor
        "2024-05-02T00:00:00Z,mtp-bike-day,2500,/d",
        "2024-05-01T00:00:00Z,mtp-bike-hour,2400,bicycles/day",   # daily total, hourly sensor
        "2024-05-01T10:00:00Z,loop-15,30,/15min",
        "2024-05-01T10:15:00Z,loop-15,120,vehicles/h",            # an hourly rate: refused
        "2024-05-01T10:00:00Z,pv-kw,2.5,MW",                      # converted to 2,500 kW
        "2024-05-01T11:00:00Z,pv-kw,3,MWh",                       # energy is not power
        "2024-05-01T12:00:00Z,pv-kw,3,parsecs",                   # not a unit
    ]
    p = tmp_path / "wild.csv"
    p.write_text("timestamp,site_id,value,unit\n" + "\n".join(rows) + "\n", encoding="utf-8")
    res = ingest_csv(conn, p)
    assert (res.read, res.inserted, res.quarantined) == (11, 7, 4)
    got = {(s, ts.isoformat()): (v, f) for s, ts, v, f in conn.execute(
        "SELECT sensor_id, ts, value, quality_flags FROM readings").fetchall()}
    assert got[("mtp-bike-day", "2024-05-01T00:00:00+00:00")] == (2400, 0)
    assert got[("pv-kw", "2024-05-01T10:00:00+00:00")] == (pytest.approx(2500.0),
                                                          FLAG_UNIT_CONVERTED)
    assert got[("telraam-cars", "2024-05-01T11:00:00+00:00")] == (130, 0)
    reasons = dict(conn.execute("SELECT line_no, reason FROM quarantine").fetchall())
    assert "per day" in reasons[7] and "per hour" in reasons[7]
    assert "per hour" in reasons[9] and "per 15 min" in reasons[9]
    assert "cannot be converted" in reasons[11]
    assert reasons[12] == "unknown unit 'parsecs'"
    again = ingest_csv(conn, p)
    assert (again.unchanged, again.inserted, again.quarantined) == (7, 0, 4)
    assert conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 4
