"""docs/byo-territory.md, run: every command of its `sh` blocks, in order, on the Valdrac files.

Valdrac (tests/fixtures/territory-valdrac/) is an invented agglomeration. Its open-data portal
is played by the local test server answering from recorded Explore API payloads, and its
LoRaWAN network server by a real Mosquitto fed with recorded uplinks (both stand in for
services on the internet, named as such). Two things differ from the page, and only these:
the catalogue copy points at those two local servers, and ECODEMO_DATABASE_URL is the test's
own database (ECODEMO_STATE_DIR too). Everything else (ecodemo's CLI, PostgreSQL, LightGBM,
CodeCarbon, Airflow with SQLite metadata) is the real thing.

Then the store must hold Valdrac's readings and nothing else: no bundled snapshot.
"""

from __future__ import annotations

import csv
import getpass
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml

from tests.conftest import REPO
from tests.integration.cli_helpers import CLI, cli_env
from tests.sensors.http_server import ServerState, serve
from tests.sensors.mosquitto import Mosquitto

GUIDE = REPO / "docs" / "byo-territory.md"
FIXTURE = REPO / "tests" / "fixtures" / "territory-valdrac"
DATASET = "comptages-velos-horaires"
PAGE_TIMEOUT_S = 300

if find_spec("airflow") is None:
    pytest.skip("the guide runs Airflow: pip install '.[airflow]'", allow_module_level=True)


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", GUIDE.read_text(encoding="utf-8"),
                      re.MULTILINE | re.DOTALL)


def guide_commands() -> list[str]:
    """The page's shell commands, comments removed, in order."""
    out = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line:
                out.append(line)
    return out


def test_the_page_shows_the_catalogue_it_runs() -> None:
    shown = _blocks("yaml")
    assert len(shown) == 1
    assert yaml.safe_load(shown[0]) == yaml.safe_load(
        (FIXTURE / "sensors" / "catalogue.yaml").read_text(encoding="utf-8"))


# --- the stand-ins for the territory's internet services ------------------------------------

def _portal_records() -> list[dict[str, Any]]:
    path = FIXTURE / "recorded" / "opendatasoft" / f"{DATASET}.records.json"
    return list(json.loads(path.read_text(encoding="utf-8"))["results"])


def _uplinks() -> list[dict[str, Any]]:
    path = FIXTURE / "recorded" / "mqtt" / "uplinks.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _broker(tmp: Path, user: str, password: str) -> Mosquitto:
    passwd = tmp / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), user, password], check=True,
                   capture_output=True)
    conf = (REPO / "deploy" / "mosquitto" / "ecodemo.conf").read_text(encoding="utf-8")
    conf = conf.replace("persistence_location /var/lib/mosquitto/",
                        f"persistence_location {tmp}/")
    return Mosquitto(tmp, f"user {getpass.getuser()}\n"
                          f"allow_anonymous false\npassword_file {passwd}\n{conf}")


def _gateway(port: int, user: str, password: str, topic: str) -> None:
    """The network server: publish the recorded uplinks, QoS 1, each acknowledged."""
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="valdrac-network-server")
    pub.username_pw_set(user, password)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for up in _uplinks():
            device = up["end_device_ids"]["device_id"]
            info = pub.publish(topic.replace("+", device), json.dumps(up), qos=1)
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        pub.loop_stop()
        pub.disconnect()


# --- running the page --------------------------------------------------------------------

class Page:
    """Runs the page's commands in ``cwd`` (holding ``valdrac/`` and ``ecodemo/``)."""

    def __init__(self, cwd: Path, env: dict[str, str], overrides: dict[str, str],
                 broker: Mosquitto) -> None:
        self.cwd, self.env, self.overrides, self.broker = cwd, env, overrides, broker
        self.out: dict[str, str] = {}

    def run(self, line: str) -> None:
        words = shlex.split(line)
        if words[0] == "export":
            for item in words[1:]:
                key, _, value = item.partition("=")
                self.env[key] = self.overrides.get(key, value.replace("$PWD", str(self.cwd)))
            return
        if words[:2] == ["docker", "compose"]:  # no Docker engine here: checked statically
            compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
            profiles = {p for s in compose["services"].values() for p in s.get("profiles", [])}
            wanted = [words[i + 1] for i, w in enumerate(words) if w == "--profile"]
            assert set(wanted) <= profiles and words[-2:] == ["up", "-d"], line
            self.out[line] = "(checked against docker-compose.yml)"
            return
        if words[0] == "ecodemo":
            argv = [*CLI, *words[1:]]
        elif words[0] == "airflow":
            airflow = Path(sys.executable).with_name("airflow")
            argv = ([str(airflow)] if airflow.is_file() else [sys.executable, "-m", "airflow"])
            argv += words[1:]
        else:
            raise AssertionError(f"the page runs a command the test does not know: {line}")
        if words[:3] == ["ecodemo", "ingest", "mqtt"]:
            self.out[line] = self._subscribe(argv, line)
            return
        proc = subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=PAGE_TIMEOUT_S, check=False)
        self.out[line] = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{line}\n{self.out[line][-4000:]}"

    def _subscribe(self, argv: list[str], line: str) -> str:
        """The subscriber runs while the network server publishes; it stops by itself."""
        log = self.cwd / "mqtt.log"
        with open(log, "w") as fh:
            proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=fh,
                                    stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 60
                while "subscribed to" not in log.read_text():
                    assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
                cat = yaml.safe_load((self.cwd / "valdrac" / "catalogue.yaml").read_text())
                _gateway(self.broker.port, self.env["ECODEMO_MQTT_USERNAME"],
                         self.env["ECODEMO_MQTT_PASSWORD"],
                         cat["sources"]["valdrac-lorawan"]["params"]["topic"])
                assert proc.wait(120) == 0, log.read_text()[-4000:]
            finally:
                if proc.poll() is None:
                    proc.kill()
        return log.read_text()


def _expected_counts() -> dict[str, int]:
    """Readings per sensor, counted from the territory's own files."""
    cat = yaml.safe_load((FIXTURE / "sensors" / "catalogue.yaml").read_text(encoding="utf-8"))
    series = {s["sensors"][0]["params"]["series"]: s["site_id"] for s in cat["sites"]
              if s["sensors"][0]["source"] == "valdrac-velo"}
    counts = Counter(series[r["compteur"]] for r in _portal_records())
    wide = cat["sources"]["valdrac-trafic-export"]["params"]["wide_sensors"]
    with open(next((FIXTURE / "sensors" / "drop").glob("*.csv")), encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            for column, sensor in wide.items():
                counts[sensor] += row[column] != ""
    counts.update(u["end_device_ids"]["device_id"] for u in _uplinks())
    return dict(counts)


def test_bring_your_own_territory(db_url: str, tmp_path: Path) -> None:
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does it)")
    commands = guide_commands()
    exported = dict(item.partition("=")[::2] for line in commands if line.startswith("export ")
                    for item in shlex.split(line)[1:])
    user, password = exported["ECODEMO_MQTT_USERNAME"], exported["ECODEMO_MQTT_PASSWORD"]
    work = tmp_path / "work"
    work.mkdir()
    (work / "ecodemo").symlink_to(REPO)  # the checkout the page's Airflow lines point into
    shutil.copytree(FIXTURE / "sensors", work / "valdrac")
    broker = _broker(tmp_path, user, password)
    broker.start()
    try:
        with serve(ServerState(datasets={DATASET: _portal_records()})) as portal:
            catalogue = work / "valdrac" / "catalogue.yaml"
            text = catalogue.read_text(encoding="utf-8")
            text = text.replace("https://data.valdrac.example", portal)
            text = text.replace("host: mqtt.valdrac.example", "host: 127.0.0.1")
            text = text.replace("port: 1883", f"port: {broker.port}")
            catalogue.write_text(text, encoding="utf-8")
            env = {k: v for k, v in cli_env(ECODEMO_STATE_DIR=str(tmp_path / "state")).items()
                   if not k.startswith("AIRFLOW")}
            page = Page(work, env, {"ECODEMO_DATABASE_URL": db_url}, broker)
            before_airflow = None
            for line in commands:
                if line.startswith("airflow dags test"):
                    before_airflow = _store(db_url)
                page.run(line)
    finally:
        broker.stop()
    out = page.out
    store = _store(db_url)

    # the store holds Valdrac's readings, every one of them, and nothing else
    expected = _expected_counts()
    assert store["readings"] == expected, store["readings"]
    assert store["sensors"] == sorted(expected) and store["sites"] == sorted(expected)
    assert store["quarantined"] == 0 and not store["snapshot_files"]
    assert store["units"] == {"valdrac-alpes-entrant": "vehicles/h",
                              "valdrac-alpes-sortant": "vehicles/h",
                              "valdrac-passerelle-nord": "bicycles/h",
                              "valdrac-passerelle-sud": "bicycles/h"}
    # the export's first row, "06/01/2025 00:00;46;..." in French local time (CET) and veh/h
    first = (FIXTURE / "sensors" / "drop" / "trafic-avenue-des-alpes-2025-01.csv").read_text(
        encoding="utf-8").splitlines()[1].split(";")
    assert first[0] == "06/01/2025 00:00"
    assert store["first_traffic"] == (datetime(2025, 1, 5, 23, tzinfo=UTC), float(first[1]))
    mqtt_line = next(v for k, v in out.items() if k.startswith("ecodemo ingest mqtt"))
    assert "valdrac-lorawan: 24 message(s) received, 24 inserted, 0 quarantined" in mqtt_line

    # forecasts from the last reading: traffic's came over MQTT, 12 h after the export ended
    fc = next(v for k, v in out.items() if k == "ecodemo forecast")
    for kind in ("bike", "traffic"):
        assert re.search(rf"{kind}: 96 forecast rows from {kind}-\S+ issued at "
                         r"2025-02-08T10:00:00\+00:00", fc), fc
    assert store["forecast_sensors"] == sorted(expected)

    # a balance per kind, with its method; dashboards and the report on Valdrac's data
    ev = next(v for k, v in out.items() if k == "ecodemo evaluate")
    assert re.search(r"  bike/bike-\S+ against", ev) and re.search(r"  traffic/traffic-\S+", ev)
    assert store["balance_kinds"] == ["bike", "traffic"]
    assert sorted(p.name for p in (work / "valdrac-dashboards").iterdir()) == [
        "ecodemo-frugality.json", "ecodemo-models.json", "ecodemo-territory.json"]
    report = (work / "valdrac-report.html").read_text(encoding="utf-8")
    assert "Passerelle du Drac" in report and "Avenue des Alpes" in report
    assert "Diderot" not in report and "Hauts-de-France" not in report

    # the ingestion DAG maps only the territory's one-shot sources and changes nothing
    dag_log = next(v for k, v in out.items() if k.startswith("airflow dags test"))
    assert "Returned value was: ['valdrac-velo', 'valdrac-trafic-export']" in dag_log
    assert re.search(r"DagRun Finished: dag_id=ecodemo_ingest.*state=success", dag_log), \
        dag_log[-4000:]
    assert before_airflow is not None and store["readings"] == before_airflow["readings"]


def _store(db_url: str) -> dict[str, Any]:
    with psycopg.connect(db_url) as c:
        def col(sql: str) -> list[Any]:
            return [r[0] for r in c.execute(sql).fetchall()]

        return {
            "readings": dict(c.execute(
                "SELECT sensor_id, count(*) FROM readings GROUP BY 1").fetchall()),
            "units": dict(c.execute("SELECT sensor_id, unit FROM sensors").fetchall()),
            "sensors": col("SELECT sensor_id FROM sensors ORDER BY 1"),
            "sites": col("SELECT site_id FROM sites ORDER BY 1"),
            "quarantined": col("SELECT count(*) FROM quarantine")[0],
            "snapshot_files": col("SELECT path FROM ingested_files WHERE path LIKE '%snapshot%'"),
            "first_traffic": c.execute(
                "SELECT ts, value FROM readings WHERE sensor_id = 'valdrac-alpes-entrant' "
                "ORDER BY ts LIMIT 1").fetchone(),
            "forecast_sensors": col("SELECT DISTINCT sensor_id FROM forecasts ORDER BY 1"),
            "balance_kinds": col("SELECT DISTINCT kind FROM balances ORDER BY 1"),
        }
