"""Opendatasoft connector against a local server answering like the Explore API v2.1."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from ecodemo.errors import SourceError
from ecodemo.sensors import opendatasoft
from ecodemo.sensors.catalogue import register_catalogue
from tests.sensors.conftest import catalogue_for
from tests.sensors.http_server import Fault

START = datetime(2024, 9, 2, tzinfo=UTC)
FAST = {"retries": 2, "timeout_s": 2.0}


def _count(conn: psycopg.Connection, prefix: str) -> int:
    row = conn.execute("SELECT count(*) FROM readings WHERE sensor_id LIKE %s",
                       (prefix + "%",)).fetchone()
    return int(row[0]) if row else 0


def _records_requests(state) -> list[dict[str, str]]:
    return [q for path, q in state.requests if path.endswith("/records")]


def test_paging_then_incremental_rerun_changes_nothing(conn, server, server_state,
                                                       tmp_path) -> None:
    cat = catalogue_for(server, tmp_path, **{"paris-bike": {"page_size": 10}})
    register_catalogue(conn, cat)
    first = opendatasoft.ingest(conn, cat, "paris-bike", start=START)
    assert first["inserted"] == 48 and first["quarantined"] == 0
    # 24 records per served channel in pages of 10: offsets 0, 10, 20; the catalogue's 4
    # other channels get one empty page each.
    offsets = [int(q["offset"]) for q in _records_requests(server_state)]
    assert offsets == [0, 10, 20, 0, 10, 20, 0, 0, 0, 0]
    assert "`id_compteur` = '100007049-101007049'" in _records_requests(server_state)[0]["where"]
    value = conn.execute("SELECT value FROM readings WHERE sensor_id = "
                         "'paris-bike-100007049-101007049' AND ts = '2024-09-02T08:00Z'"
                         ).fetchone()
    served = [r["sum_counts"] for r in server_state.datasets["comptage-velo-donnees-compteurs"]
              if r["id_compteur"] == "100007049-101007049"
              and r["date"] == "2024-09-02T08:00:00+00:00"]
    assert value is not None and [value[0]] == served
    before = conn.execute("SELECT count(*), max(ingested_at) FROM readings").fetchone()

    server_state.requests.clear()
    again = opendatasoft.ingest(conn, cat, "paris-bike")  # incremental: nothing newer
    assert again["read"] == 0 and again["inserted"] == 0
    wheres = [q["where"] for q in _records_requests(server_state)]
    # the two channels with data resume after their last reading; the others backfill
    assert sum("> date'2024-09-02T23:00:00Z'" in w for w in wheres) == 2 and len(wheres) == 6

    replay = opendatasoft.ingest(conn, cat, "paris-bike", start=START)  # same interval again
    assert (replay["inserted"], replay["updated"], replay["unchanged"]) == (0, 0, 48)
    after = conn.execute("SELECT count(*), max(ingested_at) FROM readings").fetchone()
    assert before == after


def test_bulk_export_when_more_than_the_offset_cap(conn, server, server_state,
                                                   tmp_path) -> None:
    cat = catalogue_for(server, tmp_path, **{"paris-bike": {"page_size": 10, "max_offset": 10}})
    register_catalogue(conn, cat)
    res = opendatasoft.ingest(conn, cat, "paris-bike", start=START)
    assert res["inserted"] == 48
    assert sum(p.endswith("/exports/json") for p, _ in server_state.requests) == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retry_then_success(conn, server, server_state, tmp_path, status) -> None:
    cat = catalogue_for(server, tmp_path, **{"paris-road": FAST})
    register_catalogue(conn, cat)
    server_state.faults = [Fault(status, b'{"error_code": "TooManyRequests"}',
                                 headers={"Retry-After": "0"})] * 2
    res = opendatasoft.ingest(conn, cat, "paris-road", start=START)
    # flow: 23 hours (one null value skipped), occupancy: 23
    assert res["inserted"] == 46
    assert res["sensors"]["paris-road-376-flow"]["null_values"] == 1
    assert len(server_state.requests) == 2 + 2  # two failures, then one page per sensor


def test_persistent_5xx_gives_one_line_source_error(conn, server, server_state,
                                                    tmp_path) -> None:
    cat = catalogue_for(server, tmp_path, **{"paris-road": {"retries": 1}})
    register_catalogue(conn, cat)
    server_state.faults = [Fault(502, b"bad gateway")] * 5
    with pytest.raises(SourceError) as err:
        opendatasoft.ingest(conn, cat, "paris-road", start=START)
    msg = str(err.value)
    assert msg.startswith("paris-road: HTTP 502") and "\n" not in msg
    assert _count(conn, "paris-road") == 0


def test_timeout_is_retried_then_reported(conn, server, server_state, tmp_path) -> None:
    cat = catalogue_for(server, tmp_path,
                        **{"paris-road": {"timeout_s": 0.3, "retries": 1}})
    register_catalogue(conn, cat)
    server_state.faults = [Fault(delay_s=1.0)]  # first answer too slow, then normal
    res = opendatasoft.ingest(conn, cat, "paris-road", start=START)
    assert res["inserted"] == 46
    server_state.faults = [Fault(delay_s=1.0), Fault(delay_s=1.0)]
    cat0 = catalogue_for(server, tmp_path, **{"paris-road": {"timeout_s": 0.3, "retries": 1}})
    with pytest.raises(SourceError, match=r"^paris-road: timed out after 0.3 s"):
        opendatasoft.ingest(conn, cat0, "paris-road", start=START)


def test_malformed_json_is_a_source_error(conn, server, server_state, tmp_path) -> None:
    cat = catalogue_for(server, tmp_path, **{"paris-bike": FAST})
    register_catalogue(conn, cat)
    server_state.faults = [Fault(200, b'{"total_count": 48, "results": [{"date": ')]
    with pytest.raises(SourceError, match="not valid JSON") as err:
        opendatasoft.ingest(conn, cat, "paris-bike", start=START)
    assert "paris-bike" in str(err.value) and "\n" not in str(err.value)


def test_renamed_field_names_source_and_field_and_stores_nothing(conn, server, server_state,
                                                                 tmp_path) -> None:
    cat = catalogue_for(server, tmp_path, **{"paris-bike": FAST})
    register_catalogue(conn, cat)
    server_state.rename = {"sum_counts": "comptage_horaire"}
    with pytest.raises(SourceError) as err:
        opendatasoft.ingest(conn, cat, "paris-bike", start=START)
    msg = str(err.value)
    assert msg.startswith("paris-bike: field 'sum_counts' missing") and "\n" not in msg
    assert _count(conn, "paris-bike") == 0


def test_unknown_dataset_404(conn, server, tmp_path) -> None:
    cat = catalogue_for(server, tmp_path, **{"paris-bike": {"dataset": "no-such-dataset"}})
    register_catalogue(conn, cat)
    with pytest.raises(SourceError, match=r"HTTP 404 .*Unknown dataset"):
        opendatasoft.ingest(conn, cat, "paris-bike", start=START)


def test_regional_solar_and_wind(conn, registered, server_state) -> None:
    res = opendatasoft.ingest(conn, registered, "odre-eco2mix-regional", start=START)
    assert res["sensors"]["rte-hauts-de-france-solar"]["inserted"] == 96
    assert res["sensors"]["rte-hauts-de-france-wind"]["inserted"] == 96
    row = conn.execute("SELECT max(value) FROM readings WHERE sensor_id = "
                       "'rte-hauts-de-france-solar'").fetchone()
    assert row is not None and 800 < row[0] <= 900
    fields = {q["select"] for q in _records_requests(server_state)}
    assert fields == {"`date_heure`,`solaire`,`code_insee_region`",
                      "`date_heure`,`eolien`,`code_insee_region`"}


def test_grid_intensity_from_national_taux_co2(conn, registered) -> None:
    res = opendatasoft.ingest(conn, registered, "odre-eco2mix-national-co2", start=START)
    assert res["written"] == 88 and res["null_values"] == 8
    rows = conn.execute("SELECT zone, source, min(g_per_kwh), max(g_per_kwh), count(*) "
                        "FROM grid_intensity GROUP BY zone, source").fetchall()
    assert rows == [("FR", "RTE eCO2mix taux_co2", 14.0, 25.0, 88)]
    again = opendatasoft.ingest(conn, registered, "odre-eco2mix-national-co2")
    assert again["read"] == 0
    replay = opendatasoft.ingest(conn, registered, "odre-eco2mix-national-co2", start=START)
    assert replay["read"] == 88 and replay["written"] == 0
