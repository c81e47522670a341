"""The compose `ecodemo-mqtt` service's exact command against a real Mosquitto that restarts.

The command line, environment keys and restart policy are read from docker-compose.yml; the
broker runs with the settings the deployment asks of it (deploy/mosquitto/ecodemo.conf) and a
login the subscriber takes from the variables the catalogue names. Mid-stream the broker is
stopped and started again (a clean restart, as `docker compose restart` or a package upgrade
does): every message the broker accepted, before or after the restart, must be stored exactly
once, and SIGTERM (what `docker compose stop` sends) must end the service cleanly.
"""

from __future__ import annotations

import getpass
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml

from tests.conftest import REPO
from tests.integration.cli_helpers import CLI, cli_env
from tests.sensors.mosquitto import Mosquitto

SENSORS = ("gw-bike-north", "gw-bike-south")
T0 = datetime(2025, 3, 3, tzinfo=UTC)
USER, PASSWORD = "ecodemo-sub", "s3cret-for-the-test"


def _service() -> dict[str, Any]:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return dict(compose["services"]["ecodemo-mqtt"])


def _command(service: dict[str, Any]) -> list[str]:
    """The service's command, `ecodemo` being this checkout's console script."""
    cmd = list(service["command"])
    assert cmd[0] == "ecodemo"
    script = Path(sys.executable).with_name("ecodemo")
    return [str(script), *cmd[1:]] if script.is_file() else [*CLI, *cmd[1:]]


def _catalogue(folder: Path, port: int) -> Path:
    folder.mkdir()
    sites = [{"site_id": sid, "name": f"Gateway bike counter {sid}", "kind": "bike",
              "latitude": 45.19, "longitude": 5.72, "timezone": "Europe/Paris",
              "sensors": [{"unit": "bicycles/h", "resolution": "PT1H", "source": "gateway"}]}
             for sid in SENSORS]
    cat = {"version": 1, "sites": sites, "sources": {"gateway": {
        "connector": "mqtt", "enabled": True,
        "params": {"host": "127.0.0.1", "port": port, "topic": "city/+/uplink",
                   "client_id": f"ecodemo-service-test-{port}", "batch_seconds": 0.2,
                   "username_env": "ECODEMO_MQTT_USERNAME",
                   "password_env": "ECODEMO_MQTT_PASSWORD"}}}}
    (folder / "catalogue.yaml").write_text(yaml.safe_dump(cat), encoding="utf-8")
    return folder


def _broker(tmp: Path) -> Mosquitto:
    """Mosquitto with the deployment's settings, a login, persistence in ``tmp``."""
    conf = (REPO / "deploy" / "mosquitto" / "ecodemo.conf").read_text(encoding="utf-8")
    assert "persistence true" in conf
    conf = conf.replace("persistence_location /var/lib/mosquitto/",
                        f"persistence_location {tmp}/")
    passwd = tmp / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), USER, PASSWORD], check=True,
                   capture_output=True)
    passwd.chmod(0o600)
    # run as the test's user (as root Mosquitto would switch to `mosquitto`, which cannot
    # read the test's private folders)
    return Mosquitto(tmp, f"user {getpass.getuser()}\nallow_anonymous false\n"
                          f"password_file {passwd}\n{conf}")


def _message(i: int) -> bytes:
    return json.dumps({"sensor_id": SENSORS[i % 2], "value": i % 89, "unit": "bicycles/h",
                       "timestamp": (T0 + timedelta(hours=i // 2)).isoformat()}).encode()


def _publish(port: int, ids: range) -> None:
    """A gateway: publish QoS 1 and wait for the broker's acknowledgement of each message."""
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gateway-{ids.start}")
    pub.username_pw_set(USER, PASSWORD)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for i in ids:
            info = pub.publish(f"city/{i % 3}/uplink", _message(i), qos=1)
            info.wait_for_publish(10)
            assert info.is_published(), i
    finally:
        pub.loop_stop()
        pub.disconnect()


def _count(db_url: str) -> int:
    with psycopg.connect(db_url) as c:
        row = c.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


def _wait(pred: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return bool(pred())


def _env(service: dict[str, Any], db_url: str, sensors: Path, state: Path) -> dict[str, str]:
    values = {"ECODEMO_DATABASE_URL": db_url, "ECODEMO_SENSORS_DIR": str(sensors),
              "ECODEMO_STATE_DIR": str(state), "ECODEMO_COUNTRY_ISO_CODE": "FRA",
              "ECODEMO_MQTT_USERNAME": USER, "ECODEMO_MQTT_PASSWORD": PASSWORD}
    # every variable compose gives the service has its stand-in value here
    assert set(service["environment"]) == set(values), set(service["environment"])
    return cli_env(**values)


def test_compose_service_definition() -> None:
    svc = _service()
    assert svc["profiles"] == ["mqtt"]
    assert svc["restart"] in ("unless-stopped", "always", "on-failure")
    assert svc["entrypoint"][0].endswith("dumb-init")  # SIGTERM reaches the subscriber
    assert svc["command"] == ["ecodemo", "ingest", "mqtt"]  # the catalogue's MQTT sources
    assert "./sensors:/opt/airflow/sensors:ro" in svc["volumes"]
    assert svc["environment"]["ECODEMO_SENSORS_DIR"] == "/opt/airflow/sensors"
    assert "ECODEMO_WRITER_USER" in svc["environment"]["ECODEMO_DATABASE_URL"]
    assert not svc.get("ports")
    grace = str(svc["stop_grace_period"])
    assert grace.endswith("s") and int(grace[:-1]) > 30  # longer than the 30 s drain


def test_service_command_loses_nothing_across_a_broker_restart(db_url: str,
                                                               tmp_path: Path) -> None:
    svc = _service()
    mosq = _broker(tmp_path)
    mosq.start()
    sensors = _catalogue(tmp_path / "sensors", mosq.port)
    out = open(tmp_path / "service.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(_command(svc), env=_env(svc, db_url, sensors, tmp_path / "state"),
                            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        # message 0 stored = the service subscribed (its persistent session exists)
        deadline = time.monotonic() + 60
        while _count(db_url) == 0:
            assert proc.poll() is None, (tmp_path / "service.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "service.log").read_text()
            _publish(mosq.port, range(0, 1))
            time.sleep(0.5)
        n_before, n = 300, 600
        _publish(mosq.port, range(1, n_before))
        mosq.stop()  # some messages sit in the broker's queue, some in ecodemo's buffer
        time.sleep(1.5)
        mosq.start()
        _publish(mosq.port, range(n_before, n))  # ecodemo may not be back yet: queued for it
        assert _wait(lambda: _count(db_url) >= n, 90), (
            _count(db_url), (tmp_path / "service.log").read_text()[-3000:])
        time.sleep(1.0)  # let the redelivered duplicates be written and acknowledged
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(45) == 0, (tmp_path / "service.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        mosq.stop()
        out.close()
    log = (tmp_path / "service.log").read_text()
    with psycopg.connect(db_url) as c:
        rows = c.execute("SELECT sensor_id, ts, value FROM readings ORDER BY ts, sensor_id"
                         ).fetchall()
        quarantined = c.execute("SELECT count(*) FROM quarantine").fetchone()
    expected = sorted(((SENSORS[i % 2], T0 + timedelta(hours=i // 2), float(i % 89))
                       for i in range(n)), key=lambda r: (r[1], r[0]))
    assert [tuple(r) for r in rows] == expected  # each message once, none lost
    assert quarantined == (0,)
    assert "reconnected to 127.0.0.1" in log and "session resumed" in log, log[-3000:]
    assert "SIGTERM: stopping after the buffered messages" in log
    summary = next(ln for ln in log.splitlines() if ln.startswith("gateway: "))
    assert "0 left for redelivery" in summary and "0 database failure(s)" in summary, summary


def test_service_command_exits_non_zero_when_it_cannot_run(db_url: str,
                                                           tmp_path: Path) -> None:
    """What makes Docker's restart policy start it again: an exit code, and one line why."""
    svc = _service()
    port = Mosquitto(tmp_path).port  # a free port: nothing listens there
    sensors = _catalogue(tmp_path / "sensors", port)
    env = _env(svc, db_url, sensors, tmp_path / "state")
    down = subprocess.run(_command(svc), env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert down.returncode == 5, down.stdout + down.stderr
    assert f"gateway: cannot reach MQTT broker 127.0.0.1:{port}" in down.stdout + down.stderr

    cat = yaml.safe_load((sensors / "catalogue.yaml").read_text())
    cat["sources"]["gateway"]["enabled"] = False
    (sensors / "catalogue.yaml").write_text(yaml.safe_dump(cat))
    none = subprocess.run(_command(svc), env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert none.returncode == 2
    assert "no enabled source uses the mqtt connector" in none.stdout + none.stderr


@pytest.fixture(autouse=True)
def _needs_mosquitto_passwd() -> None:
    import shutil

    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed (Debian package mosquitto)")
