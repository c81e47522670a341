"""Grid carbon intensity (gCO2e/kWh) into ``grid_intensity``, validated, idempotent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa

from ecodemo.store.grid_intensity import MAX_G_PER_KWH
from ecodemo.store.grid_intensity import upsert_grid_intensity as _upsert
from ecodemo.store.ingest import Rejected, quarantine_rows


def upsert_grid_intensity(conn: psycopg.Connection, table: pa.Table, *, zone: str, label: str,
                          source: str) -> dict[str, int]:
    """Store (timestamp, value) rows of ``table``; bad rows go to quarantine with a reason.

    Timestamps must carry an offset (APIs are queried in UTC). Returns written/quarantined.
    """
    ts_raw = table.column("timestamp").to_pylist()
    val_raw = table.column("value").to_pylist()
    ts = pd.to_datetime(pd.Series(ts_raw, dtype="object"), utc=True, format="ISO8601",
                        errors="coerce")
    val = pd.to_numeric(pd.Series(val_raw, dtype="object"), errors="coerce").to_numpy(float)
    has_offset = pd.Series(ts_raw, dtype="object").astype(str).str.contains(
        r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).to_numpy()
    bad_ts = ts.isna().to_numpy() | ~has_offset
    bad_val = ~np.isfinite(val) | (val < 0) | (val > MAX_G_PER_KWH)
    rejected = [
        Rejected(None, zone, f"{t},{v}",
                 "timestamp is not ISO 8601 with an offset" if bt
                 else f"carbon intensity '{v}' is not a number in 0-{MAX_G_PER_KWH:g} g/kWh")
        for t, v, bt, bv in zip(ts_raw, val_raw, bad_ts, bad_val, strict=True) if bt or bv
    ]
    good = ~(bad_ts | bad_val)
    frame = pd.DataFrame({"ts": ts[good], "v": val[good]}).drop_duplicates("ts", keep="last")
    with conn.transaction():
        written = _upsert(conn, ((zone, t.to_pydatetime(), float(v))
                                 for t, v in frame.itertuples(index=False)), source=label)
        quarantine_rows(conn, source, rejected)
    return {"written": written, "quarantined": len(rejected)}
