"""What ingestion works on and reports: the stored sensor catalogue, counts, rejected rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import psycopg

#: Rows per transaction when ingesting a file. Smaller than the memory bound (batch_rows) so that
#: validating batch k+1 overlaps writing batch k; measured in benchmarks/ingest.py.
PIPELINE_ROWS = 100_000

# quality_flags bits set at ingestion (see quality_flag_names in 001_core.sql)
FLAG_NEGATIVE_NIGHT = 1
FLAG_UNIT_CONVERTED = 2
FLAG_DST_REPEATED = 4
FLAG_ABOVE_CAPACITY = 32
#: Bits set later by the sensor quality checks (spike 8, flat_line 16, unit_suspect 64,
#: impossible 128): re-ingesting an identical value keeps them (and counts as unchanged); a
#: corrected value clears them until the next check.
CHECK_FLAGS_MASK = 8 | 16 | 64 | 128


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
    # Span of the rows inserted or updated (UTC), for refreshing what aggregates them; not
    # part of as_dict (records and task results keep their shape).
    first_written: datetime | None = None
    last_written: datetime | None = None

    def written(self, first: datetime, last: datetime) -> None:
        """Widen the span of written rows to include [first, last]."""
        self.first_written = min(first, self.first_written or first)
        self.last_written = max(last, self.last_written or last)

    def add(self, other: IngestCounts) -> None:
        if other.first_written is not None and other.last_written is not None:
            self.written(other.first_written, other.last_written)
        self.read += other.read
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.quarantined += other.quarantined
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        del out["first_written"], out["last_written"]
        return out

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



def one_line(exc: BaseException) -> str:
    """An exception's message on one line (the CLI prints one line per error)."""
    return " ".join(str(exc).split()) or type(exc).__name__
