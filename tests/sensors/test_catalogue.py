"""Catalogue: the shipped file validates; errors name the file, the entry and the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ecodemo.errors import ConfigError
from ecodemo.sensors.catalogue import load_catalogue, parse_catalogue, register_catalogue
from tests.conftest import SNAPSHOT
from tests.sensors.conftest import CATALOGUE

RAW = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
PATH = Path("sensors/catalogue.yaml")


def test_shipped_catalogue_covers_the_snapshot_sites() -> None:
    cat = load_catalogue(CATALOGUE)
    import csv

    with open(SNAPSHOT / "sites.csv", newline="") as fh:
        snapshot_ids = {r["site_id"] for r in csv.DictReader(fh)}
    assert snapshot_ids <= {e.sensor_id for e in cat.sensors}
    presets = {s.params.get("dataset") for s in cat.sources.values()}
    assert {"comptage-velo-donnees-compteurs", "comptages-routiers-permanents",
            "eco2mix-regional-tr", "eco2mix-national-tr"} <= presets
    solar = next(e for e in cat.sensors if e.sensor_id == "rte-hauts-de-france-solar")
    assert (solar.params.value_field, solar.params.series) == ("solaire", "32")


def _broken(mutate) -> str:
    raw = copy.deepcopy(RAW)
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_catalogue(raw, PATH)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("sensors/catalogue.yaml: ")
    return msg


def test_errors_name_file_entry_and_field() -> None:
    msg = _broken(lambda r: r["sites"][2].update(kind="bicycle"))
    assert "sites[2] 'paris-bike-100007049-101007049'" in msg and "field 'kind'" in msg
    assert "unknown kind 'bicycle'" in msg
    msg = _broken(lambda r: r["sites"][0]["sensors"][0].update(unit="Mw"))
    assert "sites[0] 'rte-hauts-de-france-solar' sensors[0]" in msg and "field 'unit'" in msg
    msg = _broken(lambda r: r["sites"][1].update(latitude=149.0))
    assert "field 'latitude'" in msg
    msg = _broken(lambda r: r["sites"][3].update(timezon="Europe/Paris"))
    assert "field 'timezon': unknown field (typo?)" in msg
    msg = _broken(lambda r: r["sites"][3]["sensors"][0].update(source="paris-bikes"))
    assert "field 'source': unknown source 'paris-bikes'" in msg
    msg = _broken(lambda r: r["sources"]["paris-road"].update(connector="odsoft"))
    assert "sources.paris-road: field 'connector'" in msg
    msg = _broken(lambda r: r["sources"]["paris-bike"]["params"].update(base_url="ftp://x"))
    assert "params: field 'base_url'" in msg
    msg = _broken(lambda r: r["sites"][0]["sensors"][0]["params"].update(page_size=1000))
    assert "sites[0] 'rte-hauts-de-france-solar' sensors[0] 'rte-hauts-de-france-solar' "\
        "params: field 'page_size'" in msg
    msg = _broken(lambda r: r["sites"].append(copy.deepcopy(r["sites"][0])))
    assert "duplicate site_id" in msg


def test_not_yaml_names_the_line(tmp_path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("sources:\n  a: [unclosed\nsites: []\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: line \d+: not valid YAML"):
        load_catalogue(bad)


def test_register_writes_sites_and_sensors_with_source_params(conn) -> None:
    cat = load_catalogue(CATALOGUE)
    res = register_catalogue(conn, cat)
    assert res == {"sites": len(cat.sites), "sensors": len(cat.sensors)}
    row = conn.execute("SELECT source, source_params->>'dataset', source_params->>'series', "
                       "enabled, resolution FROM sensors WHERE sensor_id = "
                       "'paris-bike-100007049-101007049'").fetchone()
    assert row is not None and row[:4] == ("paris-bike", "comptage-velo-donnees-compteurs",
                                           "100007049-101007049", True)
    assert row[4].total_seconds() == 3600
    ws = conn.execute("SELECT weather_station_id FROM sites WHERE site_id = "
                      "'paris-road-376-flow'").fetchone()
    assert ws == ("synop-07149-orly",)
    # the display name the dashboards and the report show, kept with the site
    short = conn.execute("SELECT attributes->>'short_name' FROM sites WHERE site_id = "
                         "'paris-road-376-flow'").fetchone()
    assert short == ("Rue Saint-Antoine, débit",)
    again = register_catalogue(conn, cat)  # idempotent
    n = conn.execute("SELECT count(*) FROM sensors").fetchone()
    assert again == res and n == (len(cat.sensors),)
