"""File drop: long format, column mapping, wide layout, Parquet, processed once by hash."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ecodemo.errors import ConfigError, InputError
from ecodemo.sensors import files
from ecodemo.sensors.catalogue import load_catalogue, register_catalogue
from tests.conftest import SNAPSHOT
from tests.sensors.conftest import CATALOGUE

# Mapped exports are read by the same block reader as `ingest csv`: an exception inside pyarrow's
# invalid-row handler would only be printed as "Exception ignored"; here it fails the test.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


def _catalogue(tmp_path: Path, **drop_params):
    raw = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    raw["sources"]["drop"]["params"] = {"path": "drop/*", **drop_params}
    (tmp_path / "drop").mkdir(exist_ok=True)
    (tmp_path / "catalogue.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    return load_catalogue(tmp_path / "catalogue.yaml")




def _bike_export_catalogue(tmp_path):
    """A town's bike-counter export: semicolons, French headers, local time, one sensor."""
    return _catalogue(tmp_path, delimiter=";", columns={"timestamp": "Date et heure",
                                                        "value": "Comptage horaire"},
                      constants={"sensor_id": "paris-bike-100007049-101007049",
                                 "unit": "bicycles/h"},
                      timestamp_format="%d/%m/%Y %H:%M", timezone="Europe/Paris")

def _read_again_changes_nothing(conn, cat, *, read: int, kept: int, quarantined: int) -> None:
    """Forget the file and really read it again: nothing is inserted or updated, the readings
    kept stay, and the quarantine does not grow."""
    conn.execute("DELETE FROM ingested_files")
    again = files.ingest(conn, cat, "drop")
    assert (again["read"], again["inserted"], again["updated"], again["unchanged"]) == (
        read, 0, 0, kept)
    assert len(_quarantine(conn)) == quarantined
    assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == kept

def test_long_format_file_processed_once_by_content(conn, tmp_path) -> None:
    cat = _catalogue(tmp_path)
    register_catalogue(conn, cat)
    shutil.copy(SNAPSHOT / "transport_road.csv.gz", tmp_path / "drop" / "road.csv.gz")
    first = files.ingest(conn, cat, "drop")
    assert first["inserted"] == 13_654 and first["quarantined"] == 0
    # same bytes under another name: skipped, nothing re-read
    shutil.copy(SNAPSHOT / "transport_road.csv.gz", tmp_path / "drop" / "road-copy.csv.gz")
    second = files.ingest(conn, cat, "drop")
    assert second["skipped"] == 2 and second["read"] == 0
    n = conn.execute("SELECT count(*) FROM ingested_files").fetchone()
    assert n is not None and n[0] == 1


def test_mapped_csv_with_constants_and_local_time(conn, tmp_path) -> None:
    cat = _bike_export_catalogue(tmp_path)
    register_catalogue(conn, cat)
    (tmp_path / "drop" / "export.csv").write_text(
        "Date et heure;Comptage horaire;Nom\n"
        "02/09/2024 08:00;120;Diderot\n"
        "02/09/2024 09:00;97;Diderot\n"
        "31/02/2024 09:00;5;Diderot\n"       # impossible date -> quarantined
        "02/09/2024 10:00;-4;Diderot\n",     # negative count -> quarantined
        encoding="utf-8")
    res = files.ingest(conn, cat, "drop")
    assert (res["inserted"], res["quarantined"]) == (2, 2)
    rows = conn.execute("SELECT ts, value FROM readings ORDER BY ts").fetchall()
    assert [(r[0].isoformat(), r[1]) for r in rows] == [
        ("2024-09-02T06:00:00+00:00", 120.0), ("2024-09-02T07:00:00+00:00", 97.0)]


def test_wide_parquet(conn, tmp_path) -> None:
    cat = _catalogue(tmp_path, wide_sensors={"solar_mw": "rte-hauts-de-france-solar",
                                             "wind_mw": "rte-hauts-de-france-wind"},
                     constants={"unit": "MW"})
    register_catalogue(conn, cat)
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2024-06-01", periods=4, freq="30min", tz="UTC"),
        "solar_mw": [0.0, 12.5, 40.0, 80.25], "wind_mw": [300.0, 310.0, 290.0, 305.5]})
    frame.to_parquet(tmp_path / "drop" / "hdf.parquet")
    res = files.ingest(conn, cat, "drop")
    assert res["inserted"] == 8
    total = conn.execute("SELECT sum(value) FROM readings").fetchone()
    assert total is not None and total[0] == pytest.approx(frame[["solar_mw", "wind_mw"]]
                                                           .to_numpy().sum())


def test_bad_file_reported_others_still_ingested(conn, tmp_path) -> None:
    cat = _catalogue(tmp_path)
    register_catalogue(conn, cat)
    (tmp_path / "drop" / "a-garbage.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "drop" / "b-good.csv").write_text(
        "timestamp,site_id,value,unit\n2024-09-02T08:00:00+00:00,paris-road-376-flow,500,"
        "vehicles/h\n")
    with gzip.open(tmp_path / "drop" / "c-missing-column.csv.gz", "wt") as fh:
        fh.write("when,site_id,value\n2024-09-02T08:00:00+00:00,x,1\n")
    with pytest.raises(InputError) as err:
        files.ingest(conn, cat, "drop")
    assert "a-garbage.parquet" in str(err.value) and "(+1 more failed file(s))" in str(err.value)
    n = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert n is not None and n[0] == 1


def _quarantine(conn) -> list[tuple[int, str, str, str]]:
    return conn.execute("SELECT line_no, reason, raw, source FROM quarantine "
                        "ORDER BY line_no, reason").fetchall()


def test_mapped_export_keeps_its_good_rows_and_quarantines_each_bad_one(conn, tmp_path) -> None:
    """A territory's own export (semicolons, local time, a Latin-1 name in a column the
    catalogue does not use): one bad row of each kind goes to quarantine with its file and
    line, the good rows land, and ingesting the file again changes nothing."""
    cat = _bike_export_catalogue(tmp_path)
    register_catalogue(conn, cat)
    path = tmp_path / "drop" / "export.csv"
    path.write_bytes(
        b"Date et heure;Comptage horaire;Nom du compteur\n"
        b"02/09/2024 08:00;120;Diderot\n"               # line 2
        b"02/09/2024 09:00;97\n"                         # line 3: a field missing
        b"02/09/2024 10:00;1O5;Diderot\n"               # line 4: a letter O in the number
        b"02/09/2024 11h00;88;Diderot\n"                # line 5: not the declared time format
        b"02/09/2024 12:00;101;Boulevard Diderot\n"     # line 6
        b"02/09/2024 13:00;99;Gare de l'Est \xe9\n")    # line 7: Latin-1, unused column
    source = str(path.resolve())
    res = files.ingest(conn, cat, "drop")
    assert (res["read"], res["inserted"], res["quarantined"]) == (6, 3, 3)
    assert [(line, why, src) for line, why, _raw, src in _quarantine(conn)] == [
        (3, "2 field(s) where the header has 3 (a cut or malformed line)", source),
        (4, "value '1O5' is not a finite number", source),
        (5, "timestamp '02/09/2024 11h00' does not parse with timestamp_format "
            "'%d/%m/%Y %H:%M'", source)]
    assert _quarantine(conn)[0][2] == "02/09/2024 09:00;97"  # the line as the file has it
    rows = conn.execute("SELECT ts, value FROM readings ORDER BY ts").fetchall()
    assert [(r[0].isoformat(), r[1]) for r in rows] == [
        ("2024-09-02T06:00:00+00:00", 120.0), ("2024-09-02T10:00:00+00:00", 101.0),
        ("2024-09-02T11:00:00+00:00", 99.0)]

    _read_again_changes_nothing(conn, cat, read=6, kept=3, quarantined=3)


def test_wide_export_quarantines_the_bad_cell_and_keeps_its_neighbour(conn, tmp_path) -> None:
    cat = _catalogue(tmp_path, delimiter=";", columns={"timestamp": "Horodatage"},
                     timestamp_format="%d/%m/%Y %H:%M", timezone="Europe/Paris",
                     wide_sensors={"Solaire (MW)": "rte-hauts-de-france-solar",
                                   "Eolien (MW)": "rte-hauts-de-france-wind"},
                     constants={"unit": "MW"})
    register_catalogue(conn, cat)
    (tmp_path / "drop" / "regional.csv").write_bytes(
        b"Horodatage;Solaire (MW);Eolien (MW)\n"
        b"01/06/2024 12:00;80,5;300\n"    # line 2: a decimal comma is not a number here
        b"01/06/2024 12:30;81;301;7\n"    # line 3: a field too many
        b"01/06/2024 13:00;82;302\n"
        b"01/06/2024 13:30;8\xb03;303\n")  # line 5: a Latin-1 byte: the row is not text
    res = files.ingest(conn, cat, "drop")
    assert (res["inserted"], res["quarantined"]) == (3, 3)
    got = [(line, why) for line, why, _raw, _src in _quarantine(conn)]
    assert got == [
        (2, "value '80,5' is not a finite number"),
        (3, "4 field(s) where the header has 3 (a cut or malformed line)"),
        (5, "bytes that are not UTF-8 in Solaire (MW) (first 0xb0; a Latin-1 or Windows-1252 "
            "export?)")]
    rows = conn.execute("SELECT sensor_id, value FROM readings ORDER BY ts, sensor_id").fetchall()
    assert rows == [("rte-hauts-de-france-wind", 300.0), ("rte-hauts-de-france-solar", 82.0),
                    ("rte-hauts-de-france-wind", 302.0)]


def test_french_export_decimal_comma_in_cp1252(conn, tmp_path) -> None:
    """A local authority's spreadsheet export as it comes: Windows-1252, semicolons, decimal
    commas with spaces between thousands, accented sensor names, Europe/Paris wall-clock time
    through the autumn's repeated hour. Values land exactly; each bad row is quarantined with
    its line and reason; ingesting the file again changes nothing."""
    cat = _catalogue(tmp_path, delimiter=";", decimal=",", encoding="cp1252",
                     columns={"timestamp": "Date"},
                     timestamp_format="%d/%m/%Y %H:%M", timezone="Europe/Paris",
                     wide_sensors={"Débit vélos Pépinière": "paris-bike-100007049-101007049",
                                   "Débit vélos Général": "paris-bike-100007049-102007049"},
                     constants={"unit": "bicycles/h"})
    register_catalogue(conn, cat)
    path = tmp_path / "drop" / "comptages.csv"
    path.write_bytes(
        "Date;Débit vélos Pépinière;Débit vélos Général;Coût (€)\n"
        "27/10/2024 01:00;80,5;1 234,5;0,10\n"        # line 2: CEST
        "27/10/2024 02:00;12;7,25;0,10\n"             # line 3: 02:00 CEST (first pass)
        "27/10/2024 02:00;-0;3;0,10\n"                # line 4: 02:00 CET (the repeat)
        "27/10/2024 03:00;80.5;4;0,10\n"              # line 5: a dot in a decimal-comma file
        "27/10/2024 4h00;5;6;0,10\n"                  # line 6: not the declared format
        "27/10/2024 05:00;9,0;1\u00a0000;0,10\n".encode("cp1252"))  # line 7: no-break space
    source = str(path.resolve())
    res = files.ingest(conn, cat, "drop")
    assert (res["read"], res["inserted"], res["quarantined"]) == (12, 9, 3)
    assert [(line, why, src) for line, why, _raw, src in _quarantine(conn)] == [
        (5, "value '80.5' is not a number with a decimal comma (decimal: ',')", source),
        (6, "timestamp '27/10/2024 4h00' does not parse with timestamp_format "
            "'%d/%m/%Y %H:%M'", source),
        (6, "timestamp '27/10/2024 4h00' does not parse with timestamp_format "
            "'%d/%m/%Y %H:%M'", source)]
    rows = conn.execute("SELECT sensor_id, ts, value FROM readings ORDER BY ts, sensor_id"
                        ).fetchall()
    a, b = "paris-bike-100007049-101007049", "paris-bike-100007049-102007049"
    assert [(s, t.isoformat(), v) for s, t, v in rows] == [
        (a, "2024-10-26T23:00:00+00:00", 80.5), (b, "2024-10-26T23:00:00+00:00", 1234.5),
        (a, "2024-10-27T00:00:00+00:00", 12.0), (b, "2024-10-27T00:00:00+00:00", 7.25),
        (a, "2024-10-27T01:00:00+00:00", 0.0), (b, "2024-10-27T01:00:00+00:00", 3.0),
        (b, "2024-10-27T02:00:00+00:00", 4.0),
        (a, "2024-10-27T04:00:00+00:00", 9.0), (b, "2024-10-27T04:00:00+00:00", 1000.0)]

    _read_again_changes_nothing(conn, cat, read=12, kept=9, quarantined=3)


def test_encoding_decides_how_the_header_reads(conn, tmp_path) -> None:
    """The same Latin-1 bytes: refused as UTF-8 with a hint, read as latin-1; a byte
    Windows-1252 leaves undefined quarantines its row only."""
    body = ("Date;Débit;Nom\n01/06/2024 12:00;80,5;Pépinière\n"
            "01/06/2024 13:00;81,5;Gare\n").encode("latin-1")
    params = dict(delimiter=";", decimal=",", columns={"timestamp": "Date", "value": "Débit"},
                  constants={"sensor_id": "paris-bike-100007049-101007049",
                             "unit": "bicycles/h"}, timestamp_format="%d/%m/%Y %H:%M")
    cat = _catalogue(tmp_path, **params)
    register_catalogue(conn, cat)
    (tmp_path / "drop" / "a.csv").write_bytes(body)
    with pytest.raises(InputError, match=r"a\.csv, line 1: .*not UTF-8 \(0xe9 at byte 6; not "
                       r"text, or a Latin-1/Windows-1252 export: set the source's encoding\)"):
        files.ingest(conn, cat, "drop")

    cat = _catalogue(tmp_path, encoding="latin1", **params)  # an accepted alias
    assert cat.source_params["drop"].encoding == "latin-1"
    assert files.ingest(conn, cat, "drop")["inserted"] == 2

    cat = _catalogue(tmp_path, encoding="cp1252", **params)
    (tmp_path / "drop" / "b.csv").write_bytes(body.replace(b"80,5", b"80,6\x81"))
    res = files.ingest(conn, cat, "drop")
    assert (res["inserted"], res["unchanged"], res["quarantined"]) == (0, 1, 1)
    assert _quarantine(conn)[0][:2] == (2, "bytes that are not cp1252 in Débit (first 0x81)")


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"decimal": ","}, "decimal", "the decimal mark ',' is also the delimiter"),
    ({"decimal": ";", "delimiter": ","}, "decimal", "Input should be '.' or ','"),
    ({"encoding": "utf-16"}, "encoding", "Input should be 'utf-8', 'latin-1' or 'cp1252'"),
])
def test_catalogue_refuses_decimal_and_encoding_it_cannot_read(tmp_path, params, field,
                                                               message) -> None:
    with pytest.raises(ConfigError) as err:
        _catalogue(tmp_path, **params)
    text = str(err.value)
    assert "\n" not in text and f"field '{field}'" in text and message in text, text
