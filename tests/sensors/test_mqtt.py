"""MQTT subscriber against a real Mosquitto broker, including a database outage mid-stream."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ecodemo.sensors.mqtt import MqttSubscriber
from ecodemo.sensors.params import MqttParams
from ecodemo.store.connection import Database
from tests.sensors.mosquitto import broker

SENSORS = ["paris-bike-100007049-101007049", "paris-bike-100007049-102007049"]
T0 = datetime(2024, 9, 2, tzinfo=UTC)


def _publisher(port: int) -> mqtt.Client:
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-gateway")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    return pub


def _message(i: int) -> bytes:
    sensor = SENSORS[i % 2]
    ts = (T0 + timedelta(hours=i // 2)).isoformat()
    return json.dumps({"sensor_id": sensor, "timestamp": ts, "value": i % 97,
                       "unit": "bicycles/h"}).encode()


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


@pytest.fixture()
def port(tmp_path):
    with broker(tmp_path) as p:
        yield p


def _subscriber(port: int, db_url: str, **kw) -> MqttSubscriber:
    params = MqttParams(port=port, topic="gw/+/uplink", client_id=f"ecodemo-test-{port}",
                        batch_rows=50, batch_seconds=0.2, **kw)
    db = Database(db_url, "test database", embedded=False)
    return MqttSubscriber(params, lambda: db.connect(autocommit=True), source="iot-gateway")


def test_stream_with_database_outage_loses_nothing(conn, snapshot_sites, db_url, pg_admin_url,
                                                   port) -> None:
    sub = _subscriber(port, db_url)
    sub.start()
    result: dict = {}
    n = 600
    runner = threading.Thread(target=lambda: result.update(sub.run(max_messages=n + 1,
                                                                   duration_s=90)))
    runner.start()
    pub = _publisher(port)
    dbname = conninfo_to_dict(db_url)["dbname"]

    def outage() -> None:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid() "
                          "AND application_name <> 'ecodemo-test'", (dbname,))
            time.sleep(3.0)  # the database stays unreachable while messages keep coming
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')

    garbage_sent = False
    outage_thread = None
    for i in range(n):
        pub.publish(f"gw/{i % 3}/uplink", _message(i), qos=1).wait_for_publish(5)
        if i == 200:
            assert _wait(lambda: sub.stats.rows_written > 0, 20)
            outage_thread = threading.Thread(target=outage)
            outage_thread.start()
            pub.publish("gw/0/uplink", b"\x00garbage{", qos=1).wait_for_publish(5)
            garbage_sent = True
        if i % 50 == 0:
            time.sleep(0.1)
    assert outage_thread is not None and garbage_sent
    outage_thread.join()
    assert _wait(lambda: sub.stats.acked >= n + 1, 60), sub.stats
    sub.stop()
    runner.join(30)
    pub.loop_stop()
    pub.disconnect()

    with psycopg.connect(db_url, autocommit=True, application_name="ecodemo-test") as c:
        rows = c.execute("SELECT sensor_id, ts, value FROM readings ORDER BY ts, sensor_id"
                         ).fetchall()
        q = c.execute("SELECT reason FROM quarantine WHERE source = 'mqtt:iot-gateway'"
                      ).fetchall()
    assert len(rows) == n
    expected = sorted(((SENSORS[i % 2], T0 + timedelta(hours=i // 2), float(i % 97))
                       for i in range(n)), key=lambda r: (r[1], r[0]))
    assert [(r[0], r[1], r[2]) for r in rows] == expected
    assert [r[0] for r in q] == ["payload is not JSON (UnicodeDecodeError)"] or \
        [r[0] for r in q] == ["payload is not JSON (JSONDecodeError)"]
    assert result["db_failures"] >= 1, result
    assert result["left_unacknowledged"] == 0 and result["quarantined"] == 1


def test_unacknowledged_messages_are_redelivered_after_a_crash(conn, snapshot_sites, db_url,
                                                               port) -> None:
    """Database down for the whole first run: nothing is acked, the broker keeps the messages
    for the persistent session, and the next run writes them."""
    bad = _subscriber(port, "postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=1")
    bad.start()
    pub = _publisher(port)
    for i in range(40):
        pub.publish("gw/1/uplink", _message(i), qos=1).wait_for_publish(5)
    first = bad.run(duration_s=2.0, drain_timeout_s=1.0)
    assert first["received"] == 40 and first["acked"] == 0 and first["db_failures"] >= 1
    good = _subscriber(port, db_url)  # same client id: same session
    good.start()
    second = good.run(max_messages=40, duration_s=30)
    pub.loop_stop()
    pub.disconnect()
    assert second["acked"] == 40 and second["inserted"] == 40
    n = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert n is not None and n[0] == 40


def test_a_redelivered_copy_in_the_same_batch_is_one_reading(conn, snapshot_sites,
                                                             db_url) -> None:
    """After a reconnect the broker redelivers what was not acknowledged; the first copy may
    still be buffered. Identical rows are one reading; a conflicting value is still refused."""
    from ecodemo.sensors.mqtt import _Pending, parse_payload

    sub = _subscriber(1, db_url)  # never connected: nothing is acknowledged
    p = sub.p
    first = _message(0)
    conflict = json.dumps({**json.loads(first), "value": 1234}).encode()
    for mid, payload in ((1, first), (7, first), (8, conflict)):
        sub._buffer.append(_Pending(mid, 1, parse_payload(payload, p, topic="gw/0/uplink"),
                                    "gw/0/uplink", connection=1))
    assert sub.flush_once()
    assert sub.stats.repeated_rows == 1 and sub.stats.written_not_acked == 3
    assert sub.stats.acked == 0
    rows = conn.execute("SELECT sensor_id, value FROM readings").fetchall()
    reasons = [r[0] for r in conn.execute("SELECT reason FROM quarantine")]
    assert len(rows) == 1 and len(reasons) == 1 and "duplicate" in reasons[0], (rows, reasons)


def test_a_long_running_subscriber_is_measured_window_by_window(conn, settings, port,
                                                                tmp_path) -> None:
    """One 'ingest' compute run per metering window, each with what it stored: a service
    that runs for weeks reports its energy as it goes, not only at exit."""
    import yaml

    from ecodemo.sensors import stages

    cat = {"version": 1, "sources": {"gw": {"connector": "mqtt", "params": {
        "port": port, "topic": "gw/+/uplink", "client_id": f"ecodemo-window-{port}",
        "batch_seconds": 0.1}}},
        "sites": [{"site_id": s, "name": s, "kind": "bike", "latitude": 48.85,
                   "longitude": 2.35, "timezone": "Europe/Paris",
                   "sensors": [{"unit": "bicycles/h", "resolution": "PT1H", "source": "gw"}]}
                  for s in SENSORS]}
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(cat))

    def gateway() -> None:
        time.sleep(1.5)  # subscribed by then (start() waits for the subscription)
        pub = _publisher(port)
        for i in range(10):
            pub.publish("gw/1/uplink", _message(i), qos=1).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()

    sender = threading.Thread(target=gateway)
    sender.start()
    res = stages.run_mqtt_sources(settings, duration_s=4.0, catalogue_path=path,
                                  metering_window_s=1.0)
    sender.join()
    assert res["sources"]["gw"]["inserted"] == 10
    runs = conn.execute("SELECT details FROM compute_runs WHERE stage = 'ingest' "
                        "ORDER BY started_at").fetchall()
    assert len(runs) >= 3, runs
    assert all(r[0]["source"] == "gw" and r[0]["window_s"] == 1.0 for r in runs)
    assert sum(r[0]["inserted"] for r in runs) == 10, runs
