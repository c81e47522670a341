"""The committed dashboard JSON is what the code builds; structure Grafana relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ecodemo.dashboards.build import DASHBOARDS, build_all, render
from ecodemo.dashboards.sql import PG_TYPE, PG_UID

ROOT = Path(__file__).resolve().parents[2] / "dashboards"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_committed_json_is_fresh(name: str) -> None:
    built = render(build_all("fr")[name])
    committed = (ROOT / name).read_text(encoding="utf-8")
    assert committed == built, f"dashboards/{name} is stale: run `ecodemo dashboards build`"


def test_build_is_deterministic_and_uids_stable() -> None:
    a, b = build_all("fr"), build_all("fr")
    assert {n: render(d) for n, d in a.items()} == {n: render(d) for n, d in b.items()}
    uids = {d["uid"] for d in a.values()}
    assert uids == {"ecodemo-territory", "ecodemo-models", "ecodemo-frugality"}
    assert {d["uid"] for d in build_all("en").values()} == uids


def test_panels_have_unique_ids_and_the_ecodemo_datasource() -> None:
    for d in build_all("fr").values():
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        for p in d["panels"]:
            for t in p.get("targets", []):
                assert t["datasource"] == {"type": PG_TYPE, "uid": PG_UID}
                assert t["rawSql"].strip() and t["format"] in ("table", "time_series")


def test_english_build_translates_titles() -> None:
    fr, en = build_all("fr"), build_all("en")
    terr_fr, terr_en = fr["ecodemo-territory.json"], en["ecodemo-territory.json"]
    assert terr_fr["title"] != terr_en["title"]
    text_en = json.dumps(terr_en, ensure_ascii=False)
    assert "Over the last 30 days" in text_en and "Sur les 30 derniers jours" not in text_en
    assert "Sur les 30 derniers jours" in json.dumps(terr_fr, ensure_ascii=False)


def test_energy_panels_show_the_measurement_method() -> None:
    frug = build_all("fr")["ecodemo-frugality.json"]
    energy = [p for p in frug["panels"]
              if any("energy_kwh" in t["rawSql"] for t in p.get("targets", []))]
    assert energy
    for p in energy:
        assert any("measurement_method" in t["rawSql"] for t in p["targets"]), p["title"]


def test_provisioning_files() -> None:
    ds = yaml.safe_load((ROOT / "provisioning/datasources/ecodemo.yaml").read_text())
    (src,) = ds["datasources"]
    assert src["uid"] == PG_UID and src["type"] == PG_TYPE
    assert src["url"] == "timescaledb:5432"
    assert src["user"] == "${ECODEMO_GRAFANA_DB_USER}"
    assert src["secureJsonData"]["password"] == "${ECODEMO_GRAFANA_DB_PASSWORD}"
    assert src["jsonData"]["database"] == "${POSTGRES_DB}" and src["jsonData"]["timescaledb"]
    prov = yaml.safe_load((ROOT / "provisioning/dashboards/ecodemo.yaml").read_text())
    (p,) = prov["providers"]
    assert p["type"] == "file" and p["folder"] == "ecodemo"
    assert p["options"]["path"] == "/var/lib/grafana/dashboards"
