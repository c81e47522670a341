"""Fixtures for connector tests: the real catalogue pointed at a local test server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from ecodemo.sensors.catalogue import Catalogue, parse_catalogue, register_catalogue
from tests.conftest import REPO
from tests.sensors.http_server import PAYLOADS, ServerState, load_dataset, serve

CATALOGUE = REPO / "sensors" / "catalogue.yaml"
DATASETS = ("comptage-velo-donnees-compteurs", "comptages-routiers-permanents",
            "eco2mix-regional-tr", "eco2mix-national-tr")


def catalogue_for(base_url: str, folder: Path, **source_overrides: dict[str, Any]) -> Catalogue:
    """The shipped catalogue with every HTTP source pointed at ``base_url``.

    ``source_overrides`` maps a source name to params merged into it (fast retries...).
    """
    raw = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    for name, src in raw["sources"].items():
        params = src.setdefault("params", {})
        if src["connector"] == "opendatasoft":
            params["base_url"] = base_url
        if src["connector"] == "open_meteo":
            params["archive_url"] = f"{base_url}/v1/archive"
            params["forecast_url"] = f"{base_url}/v1/forecast"
            params["previous_runs_url"] = f"{base_url}/previous-runs/v1/forecast"
        params.update(source_overrides.get(name, {}))
    path = folder / "catalogue.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return parse_catalogue(raw, path)


@pytest.fixture()
def server_state() -> ServerState:
    return ServerState(datasets={d: load_dataset(d) for d in DATASETS},
                       open_meteo={k: json.loads((PAYLOADS / "open-meteo" / f"{k}.json")
                                                 .read_text(encoding="utf-8"))
                                   for k in ("archive", "forecast", "previous-runs")})


@pytest.fixture()
def server(server_state: ServerState) -> Iterator[str]:
    with serve(server_state) as url:
        yield url


@pytest.fixture()
def registered(conn: psycopg.Connection, server: str, tmp_path: Path) -> Catalogue:
    cat = catalogue_for(server, tmp_path)
    register_catalogue(conn, cat)
    return cat
