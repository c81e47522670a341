"""File drop: CSV/Parquet files in a folder, each processed once (by content SHA-256).

Long-format files (``timestamp,site_id|sensor_id,value,unit``; CSV may be gzipped) stream
through :func:`ecodemo.store.ingest.ingest_csv`. Any other layout is mapped through the
source's ``columns`` (target -> file column), ``constants`` (fixed sensor_id/unit) or
``wide_sensors`` (one column per sensor). A mapped CSV streams too, in batches, and keeps its
good rows whatever its bad ones are (wrong field count, bytes the declared ``encoding`` cannot
decode, a value or a time that does not parse: quarantined with the file's line); only a header
that does not match the mapping refuses the file. ``decimal: ","`` reads a decimal-comma export's
values; ``encoding`` (utf-8, latin-1, cp1252) decodes the file. A processed file is recorded
in ``ingested_files`` with its counts; the same bytes under another name are skipped too.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecodemo.errors import ConfigError, DatabaseError, InputError
from ecodemo.sensors.catalogue import Catalogue
from ecodemo.sensors.params import FilesParams
from ecodemo.store.ingest import (
    IngestCounts,
    SensorInfo,
    csv_header,
    ingest_csv,
    ingest_table,
    iter_csv_batches,
    load_sensors,
    validate,
    write_batch,
)
from ecodemo.store.ingested_files import record_file

log = logging.getLogger(__name__)
LONG = ("timestamp", "site_id", "value", "unit")
_SUFFIXES_CSV = (".csv", ".csv.gz", ".txt", ".tsv")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    name = path.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(_SUFFIXES_CSV):
        return "csv"
    raise InputError("unknown file type (expected .csv, .csv.gz or .parquet)", source=str(path))


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"not a readable parquet file: {first}", source=str(path)) from None


def _as_text(col: pa.ChunkedArray) -> pa.Array:
    """Any Arrow column as text; timestamps as ISO 8601 (with offset when tz-aware)."""
    if pa.types.is_string(col.type):  # a CSV's columns: already text
        return pc.fill_null(col.combine_chunks(), "")
    if pa.types.is_timestamp(col.type):
        s = pd.Series(col.to_pandas())
        text = s.map(lambda t: "" if pd.isna(t) else t.isoformat())
        return pa.array(text.tolist(), pa.string())
    return pa.array([("" if v is None else str(v)) for v in col.to_pylist()], pa.string())


def map_table(table: pa.Table, p: FilesParams, *, source: str) -> pa.Table:
    """Apply the catalogue's mapping: a table with string columns timestamp,site_id,value,unit.

    Pure. A mapped column missing from the file raises :class:`InputError` naming it.
    """
    names = table.column_names
    cols = dict(p.columns)

    def col(target: str) -> pa.Array:
        name = cols.get(target) or (target if target in names else None)
        if target == "site_id" and name is None:
            name = cols.get("sensor_id") or ("sensor_id" if "sensor_id" in names else None)
        if name is None:
            const = p.constants.get(target) or (p.constants.get("sensor_id")
                                                if target == "site_id" else None)
            if const is None:
                raise InputError(f"no column for '{target}' (map it in the catalogue's "
                                 "columns or constants)", source=source, line=1, field=target)
            return pa.array([const] * table.num_rows, pa.string())
        if name not in names:
            raise InputError(f"mapped column '{name}' not in the file (columns: "
                             f"{', '.join(names)[:120]})", source=source, line=1, field=name)
        return _as_text(table.column(name))

    if p.wide_sensors:
        ts = col("timestamp")
        pieces = []
        for column, sensor in p.wide_sensors.items():
            if column not in names:
                raise InputError(f"wide column '{column}' not in the file", source=source,
                                 line=1, field=column)
            unit = p.constants.get("unit")
            if unit is None:
                raise InputError("wide layout needs constants.unit", source=source,
                                 field="unit")
            n = table.num_rows
            pieces.append(pa.table({"timestamp": ts,
                                    "site_id": pa.array([sensor] * n, pa.string()),
                                    "value": _as_text(table.column(column)),
                                    "unit": pa.array([unit] * n, pa.string())}))
        out = pa.concat_tables(pieces)
    else:
        out = pa.table({k: col(k) for k in LONG})
    if p.timestamp_format:
        # naive stamps stay naive: validation localises them (p.timezone, else the sensor's),
        # rejecting a DST gap and resolving the autumn's repeated hour by file order
        parsed = pd.to_datetime(pd.Series(out.column("timestamp").to_pylist()),
                                format=p.timestamp_format, errors="coerce")
        text = [("" if pd.isna(t) else t.isoformat()) for t in parsed]
        raw = out.column("timestamp").to_pylist()
        # keep the raw text where parsing failed, so quarantine shows what the file said
        text = [t or (r or "") for t, r in zip(text, raw, strict=True)]
        out = out.set_column(0, "timestamp", pa.array(text, pa.string()))
    return out


def _is_long_csv(path: Path, fmt: str, p: FilesParams) -> bool:
    return fmt == "csv" and not (p.columns or p.constants or p.wide_sensors
                                 or p.timestamp_format or p.timezone) and p.delimiter == "," \
        and p.decimal == "." and p.encoding == "utf-8"


def _ingest_mapped_csv(conn: psycopg.Connection, path: Path, p: FilesParams, source: str,
                       batch_rows: int) -> IngestCounts:
    """A territory's own CSV export, mapped batch by batch; each batch in its own transaction.

    A row Arrow cannot split (field count) or decode (not UTF-8) and a mapped reading that does
    not validate go to quarantine with the file's line (a wide row's readings share it)."""
    names = csv_header(path, delimiter=p.delimiter, encoding=p.encoding)
    # the mapping against the header first: a missing column refuses the file before any row
    map_table(pa.table({n: pa.array([], pa.string()) for n in names}), p, source=source)
    # only the mapped columns are read: bytes that are not UTF-8 in a column the catalogue
    # does not use (a site name in a Latin-1 export) do not cost the row its reading
    used = set(p.columns.values()) | set(p.wide_sensors) | {*LONG, "sensor_id"}
    sensors: dict[str, SensorInfo] = load_sensors(conn)
    counts = IngestCounts()
    t0 = time.perf_counter()
    for b in iter_csv_batches(path, batch_rows, delimiter=p.delimiter, encoding=p.encoding,
                              columns=list(dict.fromkeys(n for n in names if n in used))):
        n = b.table.num_rows
        lines = (b.line_numbers if b.line_numbers is not None
                 else np.arange(b.first_line, b.first_line + n, dtype=np.int64))
        mapped = map_table(b.table, p, source=source)
        batch = validate(mapped, sensors, line_numbers=np.tile(lines, mapped.num_rows // n)
                         if n else np.zeros(0, dtype=np.int64), decimal=p.decimal,
                         timestamp_format=p.timestamp_format, timezone=p.timezone)
        batch.rejected = b.rejected + batch.rejected
        counts.add(write_batch(conn, batch, source))
    counts.seconds = time.perf_counter() - t0
    return counts


def ingest_file(conn: psycopg.Connection, path: Path, p: FilesParams, *,
                batch_rows: int = 500_000) -> dict[str, Any]:
    """Ingest one file unless its content was already processed."""
    digest = sha256_of(path)
    done = conn.execute("SELECT path FROM ingested_files WHERE content_sha256 = %s",
                        (digest,)).fetchone()
    if done is not None:
        return {"file": str(path), "status": "skipped", "already_as": done[0]}
    fmt = file_format(path, p.format)
    source = str(path.resolve())
    if _is_long_csv(path, fmt, p):
        counts = ingest_csv(conn, path, batch_rows=batch_rows)
    elif fmt == "csv":
        counts = _ingest_mapped_csv(conn, path, p, source, batch_rows)
    else:
        table = map_table(_read_parquet(path), p, source=source)
        counts = IngestCounts()
        sensors = load_sensors(conn)
        for start in range(0, table.num_rows, batch_rows):
            counts.add(ingest_table(conn, table.slice(start, batch_rows), source, sensors,
                                    first_line=start + 2, timezone=p.timezone))
    try:
        record_file(conn, digest, source, counts.as_dict())
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"could not record {path.name} as processed: {exc}") from exc
    return {"file": str(path), "status": "ingested", **counts.as_dict()}


def resolve_glob(cat: Catalogue, p: FilesParams) -> list[Path]:
    pattern = p.path if Path(p.path).is_absolute() else str(cat.folder / p.path)
    return sorted(Path(f) for f in glob.glob(pattern)
                  if Path(f).is_file() and not Path(f).name.startswith((".", "README")))


def ingest(conn: psycopg.Connection, cat: Catalogue, source: str, *,
           batch_rows: int = 500_000, paths: list[Path] | None = None) -> dict[str, Any]:
    """Process every new file of the source's drop folder (or ``paths``). A bad file is
    reported and the others still go in; the first error is raised at the end."""
    p = cat.source_params.get(source)
    if not isinstance(p, FilesParams):
        raise ConfigError(f"{cat.path}: source '{source}' is not a files source")
    files = paths if paths is not None else resolve_glob(cat, p)
    out: dict[str, Any] = {"source": source, "connector": "files", "files": []}
    total = IngestCounts()
    errors: list[str] = []
    for f in files:
        try:
            res = ingest_file(conn, f, p, batch_rows=batch_rows)
        except InputError as exc:
            errors.append(str(exc))
            out["files"].append({"file": str(f), "status": "failed", "error": str(exc)})
            continue
        out["files"].append(res)
        if res["status"] == "ingested":
            total.add(IngestCounts(**{k: res[k] for k in ("read", "inserted", "updated",
                                                          "unchanged", "quarantined")}))
    out.update({k: v for k, v in total.as_dict().items() if k not in ("seconds", "reasons")})
    out["skipped"] = sum(1 for f in out["files"] if f["status"] == "skipped")
    if errors:
        more = f" (+{len(errors) - 1} more failed file(s))" if len(errors) > 1 else ""
        raise InputError(f"{source}: {errors[0]}{more}")
    return out
