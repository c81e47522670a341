"""Validated, idempotent ingestion of long-format readings.

Per batch, in one transaction: validate (vectorised with Arrow/NumPy), binary-COPY the good rows
into a temporary staging table, then one ``INSERT ... ON CONFLICT`` into ``readings``: new rows
inserted, a changed value updated, an identical row untouched. Rows that fail validation go to
``quarantine`` with their reason; the good rows of the same batch still land. Batches commit
independently, so a failure never loses what earlier batches accepted, and re-running the same
input is a no-op.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ecodemo.errors import DatabaseError, InputError
from ecodemo.units import UNITS

log = logging.getLogger(__name__)

# quality_flags bits (see quality_flag_names in 001_core.sql)
FLAG_NEGATIVE_NIGHT = 1
FLAG_UNIT_CONVERTED = 2
FLAG_DST_REPEATED = 4
FLAG_ABOVE_CAPACITY = 32

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_NUMBER_RE = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
_TS_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
_TZ_SUFFIX_RE = r"(Z|[+-]\d{2}(:?\d{2})?)$"
_TS_AWARE_RE = r"T?\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?" + _TZ_SUFFIX_RE
#: Row of the binary COPY stream: field count, then (length, value) for each of 4 columns.
_COPY_DTYPE = np.dtype(
    [
        ("nfields", ">i2"),
        ("l_idx", ">i4"), ("idx", ">i4"),
        ("l_ts", ">i4"), ("ts", ">i8"),
        ("l_val", ">i4"), ("val", ">f8"),
        ("l_flags", ">i4"), ("flags", ">i2"),
    ]
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
REQUIRED_COLUMNS = ("timestamp", "value", "unit")
COUNT_MAX = {"count_per_hour": 100_000.0, "count_per_day": 2_000_000.0, "count": 2_000_000.0}
#: Without a declared capacity, small negative power down to this (in W) is kept and flagged.
DEFAULT_NEGATIVE_POWER_W = 5e6


@dataclass(frozen=True)
class SensorInfo:
    sensor_id: str
    kind: str
    unit: str
    timezone: str
    capacity: float | None


@dataclass
class IngestCounts:
    """What an ingestion did. ``read`` = inserted + updated + unchanged + quarantined."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: IngestCounts) -> None:
        self.read += other.read
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.quarantined += other.quarantined
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.read:,} rows read: {self.inserted:,} inserted, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged, {self.quarantined:,} quarantined"
        )


@dataclass
class Rejected:
    line_no: int | None
    sensor_id: str | None
    raw: str
    reason: str


def load_sensors(conn: psycopg.Connection) -> dict[str, SensorInfo]:
    """The sensor catalogue as stored, keyed by sensor_id."""
    rows = conn.execute(
        """SELECT s.sensor_id, s.kind, s.unit, s.timezone, si.capacity
           FROM sensors s JOIN sites si USING (site_id)"""
    ).fetchall()
    return {r[0]: SensorInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows}


# --------------------------------------------------------------------------- validation


@dataclass
class ValidatedBatch:
    """Good rows sorted by (sensor_id, ts), ready for COPY, plus the rejected rows."""

    sensor_ids: list[str]          # 1-based ``idx`` refers into this list
    idx: np.ndarray                 # int32
    ts_us: np.ndarray               # int64 microseconds since 1970 UTC
    value: np.ndarray               # float64, in the sensor's unit
    flags: np.ndarray               # int16
    rejected: list[Rejected]

    @property
    def n_good(self) -> int:
        return int(self.idx.shape[0])


def _strings(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))


def _parse_values(values: pa.Array) -> np.ndarray:
    """Strings to float64; NaN where not a number (validated with a regex before the cast)."""
    n = len(values)
    out = np.full(n, np.nan)
    ok = pc.fill_null(pc.match_substring_regex(values, _NUMBER_RE), False).to_numpy(
        zero_copy_only=False
    )
    if ok.any():
        out[ok] = pc.cast(pc.filter(values, pa.array(ok)), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    return out


def _parse_timestamps(ts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (us since epoch or INT64_MIN, aware mask, well-formed mask).

    Aware stamps are converted to UTC; naive ones are parsed as wall-clock (localised later).
    """
    n = len(ts)
    us = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    well_formed = pc.fill_null(pc.match_substring_regex(ts, _TS_RE), False).to_numpy(
        zero_copy_only=False
    )
    aware = pc.fill_null(pc.match_substring_regex(ts, _TZ_SUFFIX_RE), False).to_numpy(
        zero_copy_only=False
    ) & well_formed
    # A date-only "2020-01-01-05" would match the suffix regex; require a time part for aware.
    for mask, target in ((aware, pa.timestamp("us", tz="UTC")),
                         (well_formed & ~aware, pa.timestamp("us"))):
        if not mask.any():
            continue
        sub = pc.filter(ts, pa.array(mask))
        # Arrow wants 'T' between date and time; accept a space as ISO 8601 allows.
        sub = pc.replace_substring_regex(sub, r"^(\d{4}-\d{2}-\d{2}) ", r"\1T")
        try:
            parsed = pc.cast(sub, target).cast(pa.int64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            # A well-formed but impossible stamp (month 13...): parse one by one.
            parsed_series = pd.to_datetime(
                pd.Series(sub.to_pylist()), format="ISO8601", errors="coerce",
                utc=target.tz is not None,
            )
            parsed = np.array(
                [np.iinfo(np.int64).min if pd.isna(x) else x.value // 1000 for x in parsed_series],
                dtype=np.int64,
            )
        us[mask] = parsed
    return us, aware, well_formed


def _localise(naive_us: np.ndarray, tz: str, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                         list[str | None]]:
    """Localise naive wall-clock stamps in ``tz``; DST gaps and repeats handled explicitly.

    A nonexistent time (spring gap) is rejected. An ambiguous time (autumn repeat) seen exactly
    twice for the same sensor takes summer time first and winter time second (file order);
    seen once, it is rejected because nothing tells which of the two hours it is.
    Returns (utc us, dst_repeated flag, reason per row or None).
    """
    idx = pd.DatetimeIndex(naive_us.astype("datetime64[us]")).as_unit("ns")
    as_dst = idx.tz_localize(tz, ambiguous=np.ones(len(idx), bool), nonexistent="NaT")
    as_std = idx.tz_localize(tz, ambiguous=np.zeros(len(idx), bool), nonexistent="NaT")
    nonexistent = np.asarray(as_dst.isna())
    ambiguous = ~nonexistent & (np.asarray(as_dst.asi8) != np.asarray(as_std.asi8))
    out = np.asarray(as_std.asi8, dtype=np.int64) // 1000
    reasons: list[str | None] = [None] * len(idx)
    repeated = np.zeros(len(idx), bool)
    for i in np.flatnonzero(nonexistent):
        reasons[i] = f"nonexistent local time in {tz} (DST gap)"
    if ambiguous.any():
        amb_pos = np.flatnonzero(ambiguous)
        frame = pd.DataFrame({"key": keys[amb_pos], "t": naive_us[amb_pos]})
        occurrence = frame.groupby(["key", "t"]).cumcount().to_numpy()
        count = frame.groupby(["key", "t"])["t"].transform("size").to_numpy()
        dst_us = np.asarray(as_dst.asi8, dtype=np.int64) // 1000
        for j, pos in enumerate(amb_pos):
            if count[j] == 2:
                out[pos] = dst_us[pos] if occurrence[j] == 0 else out[pos]
                repeated[pos] = True
            else:
                reasons[pos] = (
                    f"ambiguous local time in {tz} (DST repeat) seen {count[j]} time(s); "
                    "give an offset"
                )
    return out, repeated, reasons


def validate(table: pa.Table, sensors: dict[str, SensorInfo], *, first_line: int = 2,
             id_column: str = "site_id") -> ValidatedBatch:
    """Validate a batch of long-format rows (string columns). Pure: no database access.

    ``first_line`` is the file line of the batch's first row (header is line 1).
    """
    n = table.num_rows
    ts_s = _strings(table.column("timestamp"))
    sid_s = _strings(table.column(id_column))
    val_s = _strings(table.column("value"))
    unit_s = _strings(table.column("unit"))
    reason = np.full(n, None, dtype=object)

    def reject(mask: np.ndarray, why: str | np.ndarray) -> None:
        todo = mask & (reason == None)  # noqa: E711 - elementwise on an object array
        if isinstance(why, np.ndarray):
            reason[todo] = why[todo]
        else:
            reason[todo] = why

    # sensor
    sid_dict = pc.dictionary_encode(pc.fill_null(sid_s, "")).combine_chunks() \
        if isinstance(sid_s, pa.ChunkedArray) else pc.dictionary_encode(pc.fill_null(sid_s, ""))
    uniq_sids = sid_dict.dictionary.to_pylist()
    sid_codes = sid_dict.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    known = np.array([s in sensors for s in uniq_sids], dtype=bool)
    unknown_reason = np.array(
        [None if k else (f"unknown sensor '{s}'" if s else "missing sensor id")
         for s, k in zip(uniq_sids, known, strict=True)], dtype=object)
    reject(~known[sid_codes], unknown_reason[sid_codes])

    # value
    values = _parse_values(val_s)
    bad_value = ~np.isfinite(values)
    if bad_value.any():
        raw_vals = np.array(val_s.to_pylist(), dtype=object)
        value_why = np.array([f"value '{v}' is not a finite number" if v not in (None, "")
                              else "missing value" for v in raw_vals], dtype=object)
        reject(bad_value, value_why)

    # unit: factor per (unit, sensor) pair
    unit_dict = pc.dictionary_encode(pc.fill_null(unit_s, ""))
    uniq_units = unit_dict.dictionary.to_pylist()
    unit_codes = unit_dict.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    pair = unit_codes * len(uniq_sids) + sid_codes
    factors = np.ones(n)
    pair_reason = {}
    for p in np.unique(pair):
        u, s = uniq_units[p // len(uniq_sids)], uniq_sids[p % len(uniq_sids)]
        info = sensors.get(s)
        if info is None:
            continue
        if u not in UNITS:
            pair_reason[p] = f"unknown unit '{u}'" if u else "missing unit"
        elif UNITS[u][0] != UNITS[info.unit][0]:
            pair_reason[p] = f"unit '{u}' cannot be converted to the sensor's unit '{info.unit}'"
        else:
            factors[pair == p] = UNITS[u][1] / UNITS[info.unit][1]
    for p, unit_why in pair_reason.items():
        reject(pair == p, unit_why)
    values = values * factors
    flags = np.where(factors != 1.0, FLAG_UNIT_CONVERTED, 0).astype(np.int16)

    # timestamp
    ts_us, aware, well_formed = _parse_timestamps(ts_s)
    reject(~well_formed, np.array(
        [f"timestamp '{t}' is not ISO 8601" if t else "missing timestamp"
         for t in ts_s.to_pylist()], dtype=object) if (~well_formed).any() else "")
    unparsed = well_formed & (ts_us == np.iinfo(np.int64).min)
    reject(unparsed, "timestamp is not a valid date/time")
    naive = well_formed & ~aware & ~unparsed & known[sid_codes]
    if naive.any():
        tz_of = np.array([sensors[s].timezone if s in sensors else "UTC" for s in uniq_sids],
                         dtype=object)
        row_tz = tz_of[sid_codes]
        for tz in np.unique(row_tz[naive]):
            m = naive & (row_tz == tz)
            pos = np.flatnonzero(m)
            local_us, repeated, tz_why = _localise(ts_us[pos], str(tz), sid_codes[pos])
            ts_us[pos] = local_us
            flags[pos[repeated]] |= FLAG_DST_REPEATED
            bad = np.array([w is not None for w in tz_why])
            if bad.any():
                mask = np.zeros(n, bool)
                mask[pos[bad]] = True
                full = np.full(n, None, dtype=object)
                full[pos[bad]] = [w for w in tz_why if w is not None]
                reject(mask, full)

    # plausibility by kind and dimension
    ok = reason == None  # noqa: E711
    for code, s in enumerate(uniq_sids):
        info = sensors.get(s)
        if info is None:
            continue
        m = ok & (sid_codes == code)
        if not m.any():
            continue
        v = values[m]
        dim = UNITS[info.unit][0]
        row_reason = np.full(v.shape, None, dtype=object)
        row_flags = np.zeros(v.shape, dtype=np.int16)
        if dim in COUNT_MAX:
            row_reason[v < 0] = f"negative count for a {info.kind} sensor"
            row_reason[v > COUNT_MAX[dim]] = f"implausible count (> {COUNT_MAX[dim]:,.0f})"
        elif dim == "ratio_pct":
            row_reason[(v < 0) | (v > 100)] = "percentage outside 0-100"
        elif dim == "power":
            cap = info.capacity
            tolerance = 0.02 * cap if cap else DEFAULT_NEGATIVE_POWER_W / UNITS[info.unit][1]
            row_flags[(v < 0) & (v >= -tolerance)] |= FLAG_NEGATIVE_NIGHT
            row_reason[v < -tolerance] = "negative power beyond the night-time tolerance"
            if cap:
                row_flags[(v > cap) & (v <= 1.1 * cap)] |= FLAG_ABOVE_CAPACITY
                row_reason[v > 1.1 * cap] = f"power above 110 % of the capacity {cap:g} {info.unit}"
        flags[m] |= row_flags
        sub = np.full(n, None, dtype=object)
        sub[m] = row_reason
        reject(m & (sub != None), sub)  # noqa: E711

    # duplicates within the batch: keep the last row, quarantine the earlier ones
    ok = reason == None  # noqa: E711
    good_pos = np.flatnonzero(ok)
    if good_pos.size:
        frame = pd.DataFrame({"s": sid_codes[good_pos], "t": ts_us[good_pos]})
        dup = frame.duplicated(keep="last").to_numpy()
        if dup.any():
            mask = np.zeros(n, bool)
            mask[good_pos[dup]] = True
            reject(mask, "duplicate sensor and timestamp in the same batch (later row kept)")

    ok = reason == None  # noqa: E711
    # Sensor indices in sorted id order; rows sorted by (sensor, ts) so concurrent batches take
    # row locks in the same order (no deadlock between overlapping ingests).
    used = sorted({uniq_sids[c] for c in np.unique(sid_codes[ok])})
    rank = {s: i + 1 for i, s in enumerate(used)}
    code_to_idx = np.array([rank.get(s, 0) for s in uniq_sids], dtype=np.int32)
    g_idx = code_to_idx[sid_codes[ok]]
    g_ts = ts_us[ok]
    order = np.lexsort((g_ts, g_idx))

    rejected: list[Rejected] = []
    bad_pos = np.flatnonzero(~ok)
    if bad_pos.size:
        take = pa.array(bad_pos)
        cols = [c.take(take).to_pylist() for c in (ts_s, sid_s, val_s, unit_s)]
        for j, bpos in enumerate(bad_pos):
            raw = ",".join("" if c[j] is None else str(c[j]) for c in cols)
            rejected.append(Rejected(first_line + int(bpos), cols[1][j] or None, raw,
                                     str(reason[bpos])))
    return ValidatedBatch(used, g_idx[order], g_ts[order], values[ok][order],
                          flags[ok][order], rejected)


# --------------------------------------------------------------------------- writing

#: Bits set later by the sensor quality checks (spike 8, flat_line 16, unit_suspect 64,
#: impossible 128): re-ingesting an identical value keeps them (and counts as unchanged); a
#: corrected value clears them until the next check.
CHECK_FLAGS_MASK = 8 | 16 | 64 | 128

_UPSERT = """
WITH up AS (
    INSERT INTO readings (sensor_id, ts, value, quality_flags)
    SELECT (%s::text[])[s.sensor_idx], s.ts, s.value, s.flags FROM _ecodemo_stage s
    ON CONFLICT (sensor_id, ts) DO UPDATE
        SET value = EXCLUDED.value,
            quality_flags = EXCLUDED.quality_flags | CASE
                WHEN readings.value IS DISTINCT FROM EXCLUDED.value THEN 0
                ELSE readings.quality_flags & 216 END,  -- CHECK_FLAGS_MASK
            ingested_at = now()
        WHERE readings.value IS DISTINCT FROM EXCLUDED.value
           OR (readings.quality_flags & ~216)
              IS DISTINCT FROM EXCLUDED.quality_flags
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
"""
assert CHECK_FLAGS_MASK == 216, "update the literal in _UPSERT"


def copy_payload(batch: ValidatedBatch) -> bytes:
    """The binary COPY stream for the staging table (built with NumPy, no per-row Python)."""
    rows = np.empty(batch.n_good, dtype=_COPY_DTYPE)
    rows["nfields"] = 4
    rows["l_idx"], rows["l_ts"], rows["l_val"], rows["l_flags"] = 4, 8, 8, 2
    rows["idx"] = batch.idx
    rows["ts"] = batch.ts_us - _PG_EPOCH_US
    rows["val"] = batch.value
    rows["flags"] = batch.flags
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def quarantine_rows(conn: psycopg.Connection, source: str, rejected: list[Rejected]) -> int:
    """Store rejected rows (idempotent on source, line, raw row and reason). In caller's txn."""
    if not rejected:
        return 0
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _ecodemo_qstage (line_no bigint, sensor_id text, "
        "raw text, reason text) ON COMMIT DELETE ROWS"
    )
    with conn.cursor().copy("COPY _ecodemo_qstage FROM STDIN") as cp:
        for r in rejected:
            # Text COPY cannot carry NUL bytes; keep everything else as it came.
            cp.write_row((r.line_no, r.sensor_id and r.sensor_id.replace("\x00", "\\0"),
                          r.raw.replace("\x00", "\\0"), r.reason.replace("\x00", "\\0")))
    conn.execute(
        "INSERT INTO quarantine (source, line_no, sensor_id, raw, reason) "
        "SELECT %s, line_no, sensor_id, raw, reason FROM _ecodemo_qstage "
        "ON CONFLICT (row_key) DO NOTHING",
        (source,),
    )
    return len(rejected)


def write_batch(conn: psycopg.Connection, batch: ValidatedBatch, source: str,
                *, retries: int = 5) -> IngestCounts:
    """Upsert one validated batch and quarantine its rejects, in one transaction."""
    counts = IngestCounts(read=batch.n_good + len(batch.rejected))
    payload = copy_payload(batch) if batch.n_good else b""
    for attempt in range(retries):
        try:
            with conn.transaction():
                inserted = updated = 0
                if batch.n_good:
                    conn.execute(
                        "CREATE TEMP TABLE IF NOT EXISTS _ecodemo_stage (sensor_idx int4, "
                        "ts timestamptz, value float8, flags int2) ON COMMIT DELETE ROWS"
                    )
                    with conn.cursor().copy(
                        "COPY _ecodemo_stage FROM STDIN (FORMAT BINARY)"
                    ) as cp:
                        cp.write(payload)
                    row = conn.execute(_UPSERT, (batch.sensor_ids,)).fetchone()
                    assert row is not None
                    inserted, updated = int(row[0]), int(row[1])
                quarantine_rows(conn, source, batch.rejected)
            break
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            if attempt == retries - 1:
                raise
            time.sleep(0.05 * (2**attempt))
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"ingestion of {source} interrupted: {exc}".strip()) from exc
    counts.inserted, counts.updated = inserted, updated
    counts.unchanged = batch.n_good - inserted - updated
    counts.quarantined = len(batch.rejected)
    for r in batch.rejected:
        key = r.reason.split("'")[0].strip() if "'" in r.reason else r.reason
        counts.reasons[key] = counts.reasons.get(key, 0) + 1
    return counts


def ingest_table(conn: psycopg.Connection, table: pa.Table, source: str,
                 sensors: dict[str, SensorInfo] | None = None, *, first_line: int = 2,
                 id_column: str = "site_id") -> IngestCounts:
    """Validate and write an in-memory long-format table (used by connectors)."""
    if sensors is None:
        sensors = load_sensors(conn)
    t0 = time.perf_counter()
    counts = write_batch(conn, validate(table, sensors, first_line=first_line,
                                        id_column=id_column), source)
    counts.seconds = time.perf_counter() - t0
    return counts


# --------------------------------------------------------------------------- CSV files


def _open_stream(path: Path) -> tuple[pa.NativeFile, pa.OSFile]:
    raw = pa.OSFile(str(path), "rb")
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return pa.CompressedInputStream(raw, "gzip"), raw
    return raw, raw


def iter_csv_batches(path: Path, batch_rows: int) -> Iterator[tuple[pa.Table, int, float]]:
    """Yield (string table, first line number, fraction of the file read), bounded memory."""
    stream, raw = _open_stream(path)
    size = max(path.stat().st_size, 1)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=8 << 20),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in
                              ("timestamp", "site_id", "sensor_id", "value", "unit")},
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InputError(f"not a readable CSV file: {exc}", source=str(path)) from exc
    names = reader.schema.names
    id_col = "site_id" if "site_id" in names else "sensor_id"
    missing = [c for c in (*REQUIRED_COLUMNS, id_col) if c not in names]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; expected timestamp,site_id,value,unit",
            source=str(path), line=1,
        )
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    next_line = 2
    while True:
        try:
            rb = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise InputError(f"malformed CSV near line {next_line + pending_rows}: {exc}",
                             source=str(path)) from exc
        pending.append(rb)
        pending_rows += rb.num_rows
        if pending_rows >= batch_rows:
            table = pa.Table.from_batches(pending).select(["timestamp", id_col, "value", "unit"])
            yield table.rename_columns(["timestamp", "site_id", "value", "unit"]), next_line, \
                raw.tell() / size
            next_line += pending_rows
            pending, pending_rows = [], 0
    if pending:
        table = pa.Table.from_batches(pending).select(["timestamp", id_col, "value", "unit"])
        yield table.rename_columns(["timestamp", "site_id", "value", "unit"]), next_line, 1.0
    stream.close()


def ingest_csv(conn: psycopg.Connection, path: Path, *, batch_rows: int = 500_000,
               progress: Callable[[float, IngestCounts], None] | None = None) -> IngestCounts:
    """Ingest a long-format CSV (``timestamp,site_id,value,unit``; gzip or not)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=str(path))
    sensors = load_sensors(conn)
    total = IngestCounts()
    t0 = time.perf_counter()
    source = str(path.resolve())
    for table, first_line, fraction in iter_csv_batches(path, batch_rows):
        batch = validate(table, sensors, first_line=first_line)
        total.add(write_batch(conn, batch, source))
        if progress:
            progress(fraction, total)
    total.seconds = time.perf_counter() - t0
    log.debug("ingested %s: %s in %.2f s", path.name, total.summary(), total.seconds)
    return total
