"""MQTT subscriber: JSON uplinks from IoT gateways into ``readings``, losing nothing.

How nothing is lost:
- QoS 1 with a persistent session (fixed client id, ``clean_start`` off) and *manual*
  acknowledgement: a message is acknowledged to the broker only once its rows are committed
  (or quarantined). If ecodemo dies, the broker redelivers what was not acknowledged.
- Messages wait in an in-memory buffer and are written in micro-batches (``batch_rows`` or
  every ``batch_seconds``). When the database is unreachable the batch stays in the buffer and
  the writer retries with backoff (0.5 s doubling to 10 s); meanwhile the buffer keeps
  receiving. It is bounded by MQTT flow control: the subscriber announces a Receive Maximum of
  ``buffer_rows`` (capped at 65,535) so the broker stops sending unacknowledged messages beyond
  it (brokers also cap in-flight messages themselves: Mosquitto's ``max_inflight_messages``,
  20 by default, and ``max_queued_messages`` for what waits on the broker).
- Across a broker restart or a network cut, paho reconnects (1 s, doubling to 2 min) with the
  same session; a broker that persists its sessions (Mosquitto: ``persistence true``) keeps what
  it queued meanwhile and redelivers what was not acknowledged. A message received on an earlier
  connection is still written but never acknowledged on the new one (packet ids restart per
  connection, so its id may now name another message): the broker's redelivery acknowledges it.
- A payload that is not JSON or lacks a field is quarantined with its reason and acknowledged;
  a value that fails validation is quarantined by the ingestion, as for every source.

Payload: one JSON object or a list of them. Fields are dotted paths (defaults ``sensor_id``,
``timestamp``, ``value``, ``unit``), so a LoRaWAN network server's uplink works with e.g.
``sensor_field: end_device_ids.device_id``, ``value_field: uplink_message.decoded_payload.count``
and ``timestamp_field: received_at``. A missing unit means the sensor's catalogue unit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pyarrow as pa
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ecodemo.errors import DatabaseError, SourceError
from ecodemo.sensors.params import MqttParams
from ecodemo.store.ingest import (
    IngestCounts,
    Rejected,
    SensorInfo,
    ingest_table,
    load_sensors,
    quarantine_rows,
)

log = logging.getLogger(__name__)
_MISSING = object()


# --------------------------------------------------------------------------- parsing (pure)


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


def _text(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


@dataclass
class ParsedMessage:
    rows: list[tuple[str, str, str, str | None]]  # timestamp, sensor_id, value, unit|None
    rejected: list[Rejected]


def parse_payload(payload: bytes | bytearray, p: MqttParams, *, topic: str) -> ParsedMessage:
    """One MQTT payload -> rows and rejects. Pure; never raises on bad input."""
    try:
        doc = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raw = bytes(payload[:500]).decode("utf-8", "replace")
        return ParsedMessage([], [Rejected(None, None, raw,
                                           f"payload is not JSON ({type(exc).__name__})")])
    items = doc if isinstance(doc, list) else [doc]
    out = ParsedMessage([], [])
    for item in items:
        try:
            raw = json.dumps(item, ensure_ascii=False, default=str)[:500]
        except (ValueError, RecursionError):
            raw = str(item)[:500]
        if not isinstance(item, dict):
            out.rejected.append(Rejected(None, None, raw, "payload item is not a JSON object"))
            continue
        values = {}
        missing = None
        for key, path in (("sensor", p.sensor_field), ("ts", p.timestamp_field),
                          ("value", p.value_field)):
            v = _get(item, path)
            if v is _MISSING or v is None or isinstance(v, dict | list):
                missing = path
                break
            values[key] = _text(v)
        if missing is not None:
            sid = _get(item, p.sensor_field)
            out.rejected.append(Rejected(None, sid if isinstance(sid, str) else None, raw,
                                         f"field '{missing}' missing or not a scalar "
                                         f"(topic {topic})"))
            continue
        unit = _get(item, p.unit_field)
        out.rows.append((values["ts"], values["sensor"], values["value"],
                         None if unit is _MISSING or unit is None else _text(unit)))
    return out


def rows_to_table(rows: list[tuple[str, str, str, str | None]],
                  sensors: dict[str, SensorInfo]) -> pa.Table:
    """Long string table for ingestion; a missing unit is the sensor's own."""
    units = [u if u is not None else (sensors[s].unit if s in sensors else "")
             for _, s, _, u in rows]
    return pa.table({"timestamp": pa.array([r[0] for r in rows], pa.string()),
                     "site_id": pa.array([r[1] for r in rows], pa.string()),
                     "value": pa.array([r[2] for r in rows], pa.string()),
                     "unit": pa.array(units, pa.string())})


# --------------------------------------------------------------------------- subscriber


# Alike IngestCounts in a few counters, but the subscriber's lifetime health (acks, reconnects,
# buffer), summing IngestCounts and the parse rejections that never reach the ingestion.
@dataclass
class SubscriberStats:
    received: int = 0
    rows_written: int = 0
    inserted: int = 0
    quarantined: int = 0
    batches: int = 0
    db_failures: int = 0
    max_buffered: int = 0
    acked: int = 0
    written_not_acked: int = 0  # received before a reconnect: the broker redelivers them
    repeated_rows: int = 0  # identical rows in one batch (a redelivered copy), written once
    connections: int = 0
    connected: bool = False
    last_error: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Pending:
    mid: int
    qos: int
    parsed: ParsedMessage
    topic: str
    connection: int  # which connection it arrived on: an ack is only valid on that one


class MqttSubscriber:
    """Subscribe, buffer, write micro-batches, acknowledge after commit.

    ``connect`` opens a database connection (autocommit); it is called again after failures.
    Run with :meth:`run` (blocking until :meth:`stop` or the limits) or start/stop around it.
    """

    def __init__(self, p: MqttParams, connect: Callable[[], psycopg.Connection], *,
                 source: str = "mqtt") -> None:
        self.p = p
        self.connect_db = connect
        self.source = source
        self.stats = SubscriberStats()
        self._buffer: deque[_Pending] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._sensors: dict[str, SensorInfo] = {}
        self._sensors_at = 0.0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=p.client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        if p.username_env:
            self.client.username_pw_set(os.environ.get(p.username_env, ""),
                                        os.environ.get(p.password_env or "", "") or None)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    # -- MQTT callbacks (network thread)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self.stats.last_error = f"broker refused the connection: {reason}"
            return
        self.stats.connected = True
        self.stats.connections += 1
        if self.stats.connections > 1:
            log.info("%s: reconnected to %s:%d (session %s)", self.source, self.p.host,
                     self.p.port, "resumed" if getattr(flags, "session_present", False)
                     else "new: the broker kept nothing")
        client.subscribe(self.p.topic, qos=self.p.qos)
        self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.stats.connected = False
        if not self._stop.is_set():
            log.warning("%s: disconnected from %s:%d (%s); reconnecting", self.source,
                        self.p.host, self.p.port, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parsed = parse_payload(msg.payload, self.p, topic=msg.topic)
        with self._lock:
            self._buffer.append(_Pending(msg.mid, msg.qos, parsed, msg.topic,
                                         self.stats.connections))
            self.stats.received += 1
            self.stats.max_buffered = max(self.stats.max_buffered, len(self._buffer))

    # -- database side (writer thread)
    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self.connect_db()
            self._sensors_at = 0.0
        if time.monotonic() - self._sensors_at > 60.0:
            self._sensors = load_sensors(self._conn)
            self._sensors_at = time.monotonic()
        return self._conn

    def _drop_db(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None

    def _write(self, batch: list[_Pending]) -> None:
        conn = self._db()
        all_rows = [r for m in batch for r in m.parsed.rows]
        # A message redelivered after a reconnect can share a batch with its first copy: the
        # same row twice is one reading (the ingestion would quarantine the second as a
        # duplicate key); the same key with another value is still a conflict, quarantined.
        rows = list(dict.fromkeys(all_rows))
        self.stats.repeated_rows += len(all_rows) - len(rows)
        rejected = [r for m in batch for r in m.parsed.rejected]
        counts = IngestCounts()
        label = f"mqtt:{self.source}"
        if rows:
            if any(r[1] not in self._sensors for r in rows):
                self._sensors = load_sensors(conn)  # a sensor registered since we started
                self._sensors_at = time.monotonic()
            counts = ingest_table(conn, rows_to_table(rows, self._sensors), label,
                                  self._sensors)
        if rejected:
            try:
                with conn.transaction():
                    quarantine_rows(conn, label, rejected)
            except psycopg.OperationalError as exc:
                raise DatabaseError(f"quarantine write interrupted: {exc}") from exc
            for r in rejected:
                key = r.reason.split(" (topic")[0]
                counts.reasons[key] = counts.reasons.get(key, 0) + 1
        self.stats.rows_written += counts.inserted + counts.updated + counts.unchanged
        self.stats.inserted += counts.inserted
        self.stats.quarantined += counts.quarantined + len(rejected)
        for k, v in counts.reasons.items():
            self.stats.reasons[k] = self.stats.reasons.get(k, 0) + v

    def flush_once(self) -> bool:
        """Write one micro-batch from the buffer; acknowledge it after commit.

        Returns False when the database failed (the batch stays buffered).
        """
        with self._lock:
            batch: list[_Pending] = []
            n_rows = 0
            while self._buffer and n_rows < self.p.batch_rows:
                m = self._buffer.popleft()
                batch.append(m)
                n_rows += max(1, len(m.parsed.rows))
        if not batch:
            return True
        try:
            self._write(batch)
        except (DatabaseError, psycopg.Error) as exc:
            with self._lock:
                self._buffer.extendleft(reversed(batch))  # keep order, lose nothing
            self.stats.db_failures += 1
            self.stats.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() \
                else type(exc).__name__
            log.warning("%s: database unavailable (%s); %d message(s) buffered", self.source,
                        self.stats.last_error, len(self._buffer))
            self._drop_db()
            return False
        for m in batch:
            if m.connection != self.stats.connections or not self.stats.connected:
                self.stats.written_not_acked += 1
                continue
            if m.qos > 0:
                self.client.ack(m.mid, m.qos)
            self.stats.acked += 1
        self.stats.batches += 1
        return True

    def buffered(self) -> int:
        with self._lock:
            return len(self._buffer)

    def start(self, timeout_s: float = 10.0) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = min(self.p.buffer_rows, 65_535)
        props.SessionExpiryInterval = 3600  # keep unacknowledged messages for an hour
        try:
            self.client.connect(self.p.host, self.p.port, keepalive=30, clean_start=False,
                                properties=props)
        except OSError as exc:
            raise SourceError(f"{self.source}: cannot reach MQTT broker "
                              f"{self.p.host}:{self.p.port}: {exc}") from None
        self.client.loop_start()
        if not self._subscribed.wait(timeout_s):
            self.client.loop_stop()
            raise SourceError(f"{self.source}: no subscription to '{self.p.topic}' within "
                              f"{timeout_s:g} s ({self.stats.last_error or 'no answer'})")

    def stop(self) -> None:
        self._stop.set()

    def run(self, *, duration_s: float | None = None, max_messages: int | None = None,
            drain_timeout_s: float = 30.0) -> dict[str, Any]:
        """Write micro-batches until stopped, ``duration_s`` elapsed or ``max_messages``
        written; then drain the buffer (for up to ``drain_timeout_s`` if the database is
        down: what remains unacknowledged is redelivered by the broker next time)."""
        t0 = time.monotonic()
        backoff = 0.5
        try:
            while not self._stop.is_set():
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    break
                if max_messages is not None and self.stats.acked >= max_messages:
                    break
                if self.buffered() < self.p.batch_rows:
                    self._stop.wait(self.p.batch_seconds)  # a micro-batch every batch_seconds
                ok = self.flush_once()
                if ok:
                    backoff = 0.5
                else:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
            deadline = time.monotonic() + drain_timeout_s
            while self.buffered() and time.monotonic() < deadline:
                if not self.flush_once():
                    time.sleep(min(backoff, max(deadline - time.monotonic(), 0)))
                    backoff = min(backoff * 2, 10.0)
        finally:
            self.client.loop_stop()
            self.client.disconnect()
            self._drop_db()
        out = self.stats.as_dict()
        out["left_unacknowledged"] = self.buffered()
        out["seconds"] = round(time.monotonic() - t0, 3)
        return out
