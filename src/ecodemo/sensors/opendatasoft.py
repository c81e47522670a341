"""Opendatasoft Explore API v2.1, generic: any dataset with a time, a value and a series field.

Most French local-authority portals (opendata.paris.fr, odre.opendatasoft.com, ...) run it.
``GET {portal}/api/explore/v2.1/catalog/datasets/{dataset}/records`` answers
``{"total_count": N, "results": [{field: value, ...}, ...]}`` with at most 100 records a page
and ``offset + limit`` capped (10,000); when a query matches more than the cap, the connector
switches to ``/exports/json`` (a bare JSON array, no paging). Queries ask for one sensor's
series, only for times after the last stored reading (``where``), ordered by time, in UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pyarrow as pa

from ecodemo.errors import SourceError
from ecodemo.sensors.carbon_intensity import upsert_grid_intensity
from ecodemo.sensors.catalogue import Catalogue, SensorEntry
from ecodemo.sensors.http import get_json, make_client
from ecodemo.sensors.params import OpendatasoftParams
from ecodemo.sensors.state import last_grid_ts, last_reading_ts
from ecodemo.store.ingest import IngestCounts, ingest_table, load_sensors

log = logging.getLogger(__name__)
API_PATH = "/api/explore/v2.1/catalog/datasets"
LONG_COLUMNS = ("timestamp", "site_id", "value", "unit")


# --------------------------------------------------------------------------- queries (pure)


def _literal(text: str) -> str:
    """An ODSQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _date(ts: datetime) -> str:
    return "date'" + ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


def build_where(p: OpendatasoftParams, *, after: datetime | None = None,
                start: datetime | None = None, end: datetime | None = None) -> str | None:
    """ODSQL filter: series, extra ``where``, strictly after ``after``, within [start, end)."""
    parts: list[str] = []
    if p.series_field and p.series is not None:
        parts.append(f"`{p.series_field}` = {_literal(p.series)}")
    if p.where:
        parts.append(f"({p.where})")
    if after is not None:
        parts.append(f"`{p.timestamp_field}` > {_date(after)}")
    if start is not None:
        parts.append(f"`{p.timestamp_field}` >= {_date(start)}")
    if end is not None:
        parts.append(f"`{p.timestamp_field}` < {_date(end)}")
    return " and ".join(parts) or None


def query_params(p: OpendatasoftParams, where: str | None) -> dict[str, Any]:
    fields = [p.timestamp_field, p.value_field] + ([p.series_field] if p.series_field else [])
    q: dict[str, Any] = {"select": ",".join(f"`{f}`" for f in fields),
                         "order_by": f"`{p.timestamp_field}`", "timezone": "UTC"}
    if where:
        q["where"] = where
    return q


# --------------------------------------------------------------------------- parsing (pure)


def records_of(payload: Any, *, source: str) -> tuple[list[dict[str, Any]], int | None]:
    """Records and total_count of a ``/records`` answer, or of an ``/exports/json`` array."""
    if isinstance(payload, list):
        rows, total = payload, None
    elif isinstance(payload, dict):
        if "results" not in payload:
            if "error_code" in payload or "message" in payload:
                raise SourceError(f"{source}: API error {payload.get('error_code', '')}: "
                                  f"{str(payload.get('message', ''))[:160]}")
            raise SourceError(f"{source}: field 'results' missing from the answer")
        rows = payload["results"]
        total = payload.get("total_count")
        if total is not None and (not isinstance(total, int) or isinstance(total, bool)
                                  or total < 0):
            raise SourceError(f"{source}: field 'total_count' is not a count: {total!r}"[:200])
        if not isinstance(rows, list):
            raise SourceError(f"{source}: field 'results' is not a list")
    else:
        raise SourceError(f"{source}: answer is a {type(payload).__name__}, expected an object")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise SourceError(f"{source}: record {i} is a {type(r).__name__}, expected an object")
    return rows, total


def _text(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    return str(v)


def parse_records(rows: list[dict[str, Any]], p: OpendatasoftParams, *, sensor_id: str,
                  unit: str, source: str) -> tuple[pa.Table, int]:
    """Records -> long table (string columns) for one sensor, and the count of null values.

    A record without the timestamp or value field means the dataset changed (renamed field):
    one-line :class:`SourceError`. Null values (not yet published) are skipped. Values are kept
    as text so that ingestion's validation quarantines anything that is not a number.
    """
    ts_out: list[str] = []
    val_out: list[str] = []
    nulls = 0
    for r in rows:
        for field in (p.timestamp_field, p.value_field):
            if field not in r:
                raise SourceError(
                    f"{source}: field '{field}' missing from the records of dataset "
                    f"'{p.dataset}' (renamed? fields present: {', '.join(sorted(r))[:120]})")
        if p.series_field and p.series is not None and p.series_field in r \
                and r[p.series_field] is not None and _text(r[p.series_field]) != p.series:
            continue  # not this sensor's series (the server ignored the filter)
        v, t = r[p.value_field], r[p.timestamp_field]
        if v is None:
            nulls += 1
            continue
        ts_out.append("" if t is None else _text(t))
        val_out.append(_text(v))
    n = len(ts_out)
    table = pa.table({"timestamp": pa.array(ts_out, pa.string()),
                      "site_id": pa.array([sensor_id] * n, pa.string()),
                      "value": pa.array(val_out, pa.string()),
                      "unit": pa.array([unit] * n, pa.string())})
    return table, nulls


# --------------------------------------------------------------------------- fetching (network)


def fetch_records(client: httpx.Client, p: OpendatasoftParams, where: str | None, *,
                  source: str) -> Iterator[list[dict[str, Any]]]:
    """Yield pages of records matching ``where``: ``/records`` pages, or one ``/exports/json``
    answer when the query matches more records than the records API's offset cap."""
    url = f"{p.base_url}{API_PATH}/{p.dataset}"
    base = query_params(p, where)
    offset = 0
    while True:
        payload = get_json(client, f"{url}/records",
                           {**base, "limit": p.page_size, "offset": offset},
                           source=source, retries=p.retries)
        rows, total = records_of(payload, source=source)
        if offset == 0 and total is not None and total > p.max_offset:
            log.info("%s: %d records match: bulk export", source, total)
            export = get_json(client, f"{url}/exports/json", base, source=source,
                              retries=p.retries)
            rows, _ = records_of(export, source=source)
            yield rows
            return
        if rows:
            yield rows
        offset += len(rows)
        if not rows or len(rows) < p.page_size or (total is not None and offset >= total):
            return
        if offset + p.page_size > p.max_offset:
            raise SourceError(f"{source}: more than {p.max_offset} records and no bulk export")


# --------------------------------------------------------------------------- ingestion


def ingest_sensor(conn: psycopg.Connection, client: httpx.Client, entry: SensorEntry, *,
                  source: str, after: datetime | None, start: datetime | None,
                  end: datetime | None) -> tuple[IngestCounts, int]:
    p: OpendatasoftParams = entry.params
    unit = p.unit or entry.unit
    where = build_where(p, after=after, start=start, end=end)
    total = IngestCounts()
    nulls = 0
    sensors = load_sensors(conn)
    for rows in fetch_records(client, p, where, source=source):
        table, n_null = parse_records(rows, p, sensor_id=entry.sensor_id, unit=unit,
                                      source=source)
        nulls += n_null
        if table.num_rows:
            total.add(ingest_table(conn, table, f"opendatasoft:{source}", sensors))
    return total, nulls


def ingest(conn: psycopg.Connection, cat: Catalogue, source: str, *,
           start: datetime | None = None, end: datetime | None = None,
           client: httpx.Client | None = None) -> dict[str, Any]:
    """Fetch what is new for every enabled sensor of ``source`` and store it.

    Without ``start``, each sensor resumes after its last stored reading (or ``backfill_days``
    ago when it has none). With ``start``/``end``, that interval is (re)fetched: a rerun
    changes nothing because identical rows are left untouched.
    """
    spec = cat.source(source)
    own = cat.source_params.get(source)
    close = client is None
    http = client or make_client(own.timeout_s if own else 30.0)
    try:
        if own is not None and own.target == "grid_intensity":
            return _ingest_grid(conn, http, own, source=source, start=start, end=end)
        entries = cat.sensors_of(source)
        if not entries:
            raise SourceError(f"{source}: no enabled sensor uses this {spec.connector} source")
        last = last_reading_ts(conn, [e.sensor_id for e in entries])
        now = datetime.now(UTC)
        out: dict[str, Any] = {"source": source, "connector": "opendatasoft", "sensors": {}}
        grand = IngestCounts()
        for e in entries:
            after = None if start is not None else last.get(e.sensor_id)
            begin = start if start is not None else (
                None if after is not None else now - timedelta(days=e.params.backfill_days))
            counts, nulls = ingest_sensor(conn, http, e, source=source, after=after,
                                          start=begin, end=end)
            grand.add(counts)
            out["sensors"][e.sensor_id] = {**counts.as_dict(), "null_values": nulls}
        out.update({k: v for k, v in grand.as_dict().items() if k != "seconds"})
        return out
    finally:
        if close:
            http.close()


def _ingest_grid(conn: psycopg.Connection, client: httpx.Client, p: OpendatasoftParams, *,
                 source: str, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    zone = p.zone or "FR"
    after = None if start is not None else last_grid_ts(conn, zone)
    begin = start if start is not None else (
        None if after is not None else datetime.now(UTC) - timedelta(days=p.backfill_days))
    where = build_where(p, after=after, start=begin, end=end)
    read = written = rejected = nulls = 0
    for rows in fetch_records(client, p, where, source=source):
        table, n_null = parse_records(rows, p, sensor_id=zone, unit="g/kWh", source=source)
        nulls += n_null
        res = upsert_grid_intensity(conn, table, zone=zone,
                                    label=p.source_label or f"{p.dataset} {p.value_field}",
                                    source=f"opendatasoft:{source}")
        read += table.num_rows
        written += res["written"]
        rejected += res["quarantined"]
    return {"source": source, "connector": "opendatasoft", "target": "grid_intensity",
            "zone": zone, "read": read, "written": written, "quarantined": rejected,
            "null_values": nulls}
