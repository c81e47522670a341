"""Scheduling decisions the orchestration asks the store: what to map over, and when to train.

These are small read-only queries; they never import Airflow. The DAGs reach them through
:mod:`ecodemo.pipeline` (``kinds``, ``kinds_due_for_training``, ``low_carbon_window``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

# Training is due again for a kind when the readings ingested (or corrected) since its last
# trained model are at least this fraction of the kind's readings: a week of new hourly data
# on a year of history is about 2 %, so 5 % means "a few weeks", before the weekly run forces it.
MIN_NEW_FRACTION = 0.05

# Low-carbon window: proceed when the latest collected grid intensity is at or below this
# percentile of the zone's last LOOKBACK of collected values (the cleaner hours of the week),
# or below ABSOLUTE_LOW_G_PER_KWH (already very low-carbon: no point in waiting).
WINDOW_PERCENTILE = 0.30
WINDOW_LOOKBACK = timedelta(days=7)
ABSOLUTE_LOW_G_PER_KWH = 30.0
# A latest value older than this says nothing about now: proceed rather than wait blind.
MAX_INTENSITY_AGE = timedelta(hours=3)


def kinds_with_promoted_model(conn: psycopg.Connection) -> list[str]:
    """Kinds that have a promoted model (what the forecast DAG maps over), sorted."""
    rows = conn.execute(
        "SELECT DISTINCT kind FROM models WHERE status = 'promoted' ORDER BY kind"
    ).fetchall()
    return [r[0] for r in rows]


def kinds_due_for_training(conn: psycopg.Connection, *, force: bool,
                           min_new_fraction: float = MIN_NEW_FRACTION) -> list[dict[str, Any]]:
    """Per kind with readings: readings total and new since its last model, and whether it is due.

    Due when forced (the weekly run, a manual run), when the kind has no model yet, or when the
    readings ingested since its last model reach ``min_new_fraction`` of its readings.
    """
    rows = conn.execute(
        """WITH last_model AS (
               SELECT kind, max(created_at) AS trained_at FROM models GROUP BY kind)
           SELECT s.kind, lm.trained_at, count(r.*) AS n_total,
                  count(r.*) FILTER (WHERE lm.trained_at IS NULL
                                     OR r.ingested_at > lm.trained_at) AS n_new
           FROM sensors s
           JOIN readings r USING (sensor_id)
           LEFT JOIN last_model lm ON lm.kind = s.kind
           WHERE s.enabled
           GROUP BY s.kind, lm.trained_at
           ORDER BY s.kind"""
    ).fetchall()
    out = []
    for kind, trained_at, n_total, n_new in rows:
        fraction = n_new / n_total if n_total else 0.0
        if force:
            reason = "forced (scheduled or manual run)"
        elif trained_at is None:
            reason = "no model yet"
        elif fraction >= min_new_fraction:
            reason = f"{fraction:.1%} new readings since the last model (>= {min_new_fraction:.0%})"
        else:
            reason = f"only {fraction:.1%} new readings since the last model"
        out.append({
            "kind": kind, "due": force or trained_at is None or fraction >= min_new_fraction,
            "reason": reason, "readings": n_total, "new_readings": n_new,
            "last_trained_at": trained_at.isoformat() if trained_at else None,
        })
    return out


@dataclass(frozen=True)
class WindowDecision:
    """Whether to start compute now. Intensities in gCO2e/kWh."""

    proceed: bool
    reason: str
    zone: str
    latest_g_per_kwh: float | None = None
    latest_ts: str | None = None
    threshold_g_per_kwh: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def low_carbon_window(conn: psycopg.Connection, *, now: datetime, deadline: datetime,
                      zone: str = "FR") -> WindowDecision:
    """Decide whether ``now`` is a low-carbon moment to train, from collected grid intensity.

    Proceeds when the latest value (no older than MAX_INTENSITY_AGE) is at or below the zone's
    WINDOW_PERCENTILE over WINDOW_LOOKBACK or below ABSOLUTE_LOW_G_PER_KWH; when nothing recent
    was collected (cannot tell: waiting would be blind); and in any case at ``deadline``.
    """
    latest = conn.execute(
        "SELECT ts, g_per_kwh FROM grid_intensity WHERE zone = %s AND ts <= %s "
        "ORDER BY ts DESC LIMIT 1", (zone, now)
    ).fetchone()
    if latest is None or now - latest[0] > MAX_INTENSITY_AGE:
        return WindowDecision(True, f"no grid intensity collected for {zone} in the last "
                              f"{MAX_INTENSITY_AGE}: cannot tell, not waiting", zone)
    ts, value = latest
    row = conn.execute(
        "SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY g_per_kwh) FROM grid_intensity "
        "WHERE zone = %s AND ts > %s AND ts <= %s",
        (WINDOW_PERCENTILE, zone, now - WINDOW_LOOKBACK, now),
    ).fetchone()
    threshold = float(row[0]) if row and row[0] is not None else None
    base = dict(zone=zone, latest_g_per_kwh=float(value), latest_ts=ts.isoformat(),
                threshold_g_per_kwh=threshold)
    if value <= ABSOLUTE_LOW_G_PER_KWH:
        return WindowDecision(True, f"grid at {value:.0f} g/kWh, below "
                              f"{ABSOLUTE_LOW_G_PER_KWH:.0f} g/kWh", **base)
    if threshold is not None and value <= threshold:
        return WindowDecision(True, f"grid at {value:.0f} g/kWh, within the cleanest "
                              f"{WINDOW_PERCENTILE:.0%} of the last {WINDOW_LOOKBACK.days} days "
                              f"(<= {threshold:.0f})", **base)
    if now >= deadline:
        return WindowDecision(True, f"deadline {deadline.isoformat()} reached: training at "
                              f"{value:.0f} g/kWh", **base)
    return WindowDecision(False, f"grid at {value:.0f} g/kWh, above {threshold or 0:.0f}: "
                          f"waiting until {deadline.isoformat()} at the latest", **base)
