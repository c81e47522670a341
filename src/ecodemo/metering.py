"""Measure every stage run with CodeCarbon's offline tracker and record it in ``compute_runs``.

It sits below the sensors, models and energy areas (it needs only the settings and the store),
so each of them measures its runs without importing another area: imports point down. It is
the one writer of ``compute_runs``: the run rows, the model a run produced
(:func:`attach_model`), the grid-intensity columns (:func:`set_grid_emissions`) and deletions
(:func:`delete_runs`).

Design choices (why):
- One ``OfflineEmissionsTracker`` per process, created lazily and kept: its hardware detection
  costs about a second, so it is paid once per process; each run is a ``start_task``/``stop_task``
  pair on it (a few milliseconds).
- ``tracking_mode="process"``: the CPU share is this process's own CPU time, so parallel Airflow
  tasks on one worker (separate processes) do not count each other's energy. RAM power is
  likewise taken for this process.
- Offline only (country FRA by default): the online tracker probes the network.
- Measurement never breaks the stage: any CodeCarbon failure leaves NULL energy with a warning
  (never 0), and the run row still records duration, status and the reason.
- The method is stated per row: on machines without RAPL counters CodeCarbon estimates CPU power
  from load x TDP and RAM power as a constant, and the row says "estimated".
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ecodemo.config import Settings

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import timedelta

    import psycopg

log = logging.getLogger(__name__)

INTENSITY_SOURCE = "CodeCarbon offline: annual average of the country's electricity mix"


@dataclass
class RunRecord:
    """One ``compute_runs`` row. Energy in kWh, emissions in kgCO2e; None = not measured."""

    run_id: str
    stage: str
    sensor_kind: str | None
    model_id: str | None
    started_at: datetime
    duration_s: float | None = None
    energy_kwh: float | None = None
    cpu_energy_kwh: float | None = None
    ram_energy_kwh: float | None = None
    gpu_energy_kwh: float | None = None
    emissions_kg: float | None = None
    carbon_intensity_g_per_kwh: float | None = None
    intensity_source: str | None = None
    measurement_method: str | None = None
    tracking_mode: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    ram_total_gb: float | None = None
    codecarbon_version: str | None = None
    status: str = "ok"
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["started_at"] = self.started_at.isoformat()
        return out


class _Meter:
    """The process-wide CodeCarbon tracker (lazy; one measured run at a time)."""

    def __init__(self) -> None:
        self.tracker: Any = None
        self.failed: str | None = None
        self.key: tuple[str, str | None, str] | None = None
        self.lock = threading.Lock()

    def get(self, settings: Settings) -> Any:
        key = (settings.country_iso_code, settings.region, str(settings.state_dir))
        if self.tracker is not None and self.key == key:
            return self.tracker
        if self.failed is not None and self.key == key:
            return None
        self.key = key
        try:
            from codecarbon import OfflineEmissionsTracker

            out_dir = settings.state_dir / "codecarbon"
            out_dir.mkdir(parents=True, exist_ok=True)  # CodeCarbon records nothing otherwise
            kwargs: dict[str, Any] = dict(
                country_iso_code=settings.country_iso_code, output_dir=str(out_dir),
                save_to_file=False, tracking_mode="process", log_level="error",
                allow_multiple_runs=True, project_name="ecodemo",
            )
            if settings.region:
                kwargs["region"] = settings.region
            # CodeCarbon logs its init banner before applying log_level: quiet it first.
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            self.tracker = OfflineEmissionsTracker(**kwargs)
            self.failed = None
        except Exception as exc:  # noqa: BLE001 - measurement must never break the stage
            self.tracker, self.failed = None, f"{type(exc).__name__}: {exc}"
            log.warning("energy not measured: CodeCarbon could not start (%s)", self.failed)
        return self.tracker

    def method(self) -> str:
        """How this tracker obtains CPU and RAM power, in words (stored with each row)."""
        parts = []
        for hw in getattr(self.tracker, "_hardware", []):
            name = type(hw).__name__
            mode = getattr(hw, "_mode", None)
            if name == "CPU":
                if mode == "intel_rapl":
                    parts.append("CPU: RAPL counters")
                elif mode == "cpu_load":
                    parts.append(f"CPU: estimated from load x TDP ({getattr(hw, '_tdp', '?')} W)")
                else:
                    parts.append(f"CPU: estimated, constant TDP ({getattr(hw, '_tdp', '?')} W)")
            elif name == "RAM":
                parts.append("RAM: estimated, constant power per GB")
            elif name == "GPU":
                parts.append("GPU: NVML counters")
        estimated = any("estimated" in p for p in parts)
        prefix = "estimated" if estimated else "measured"
        return f"{prefix}: " + "; ".join(parts) if parts else "unknown"


_METER = _Meter()


def warm_up(settings: Settings) -> float:
    """Pay CodeCarbon's first-start cost now (seconds spent); later runs cost milliseconds."""
    t0 = time.perf_counter()
    tracker = _METER.get(settings)
    if tracker is not None:
        with _METER.lock:
            try:
                tracker.start_task("ecodemo-warm-up")
                tracker.stop_task()
            except Exception as exc:  # noqa: BLE001
                log.warning("CodeCarbon warm-up failed: %s", exc)
    return time.perf_counter() - t0


def _fill_from(rec: RunRecord, data: Any, method: str) -> None:
    energy = float(data.energy_consumed)
    rec.energy_kwh = energy
    rec.cpu_energy_kwh = float(data.cpu_energy)
    rec.ram_energy_kwh = float(data.ram_energy)
    rec.gpu_energy_kwh = float(data.gpu_energy) if data.gpu_count else None
    rec.emissions_kg = float(data.emissions)
    rec.carbon_intensity_g_per_kwh = (
        rec.emissions_kg / energy * 1000.0 if energy > 0 else _country_intensity(data)
    )
    rec.intensity_source = f"{INTENSITY_SOURCE} ({data.country_iso_code})"
    rec.measurement_method = method
    rec.tracking_mode = str(data.tracking_mode)
    rec.cpu_model = str(data.cpu_model)
    rec.cpu_count = int(data.cpu_count) if data.cpu_count else None
    rec.ram_total_gb = float(data.ram_total_size) if data.ram_total_size else None
    rec.codecarbon_version = str(data.codecarbon_version)


def _country_intensity(data: Any) -> float | None:
    try:
        from codecarbon.input import DataSource

        mix = DataSource().get_global_energy_mix_data()
        return float(mix[data.country_iso_code]["carbon_intensity"])
    except Exception:  # noqa: BLE001
        return None


_INSERT = """
INSERT INTO compute_runs (run_id, stage, model_id, sensor_kind, started_at, duration_s,
    energy_kwh, cpu_energy_kwh, ram_energy_kwh, gpu_energy_kwh, emissions_kg,
    carbon_intensity_g_per_kwh, intensity_source, measurement_method, tracking_mode, cpu_model,
    cpu_count, ram_total_gb, codecarbon_version, status, error, details)
VALUES (%(run_id)s, %(stage)s, %(model_id)s, %(sensor_kind)s, %(started_at)s, %(duration_s)s,
    %(energy_kwh)s, %(cpu_energy_kwh)s, %(ram_energy_kwh)s, %(gpu_energy_kwh)s, %(emissions_kg)s,
    %(carbon_intensity_g_per_kwh)s, %(intensity_source)s, %(measurement_method)s,
    %(tracking_mode)s, %(cpu_model)s, %(cpu_count)s, %(ram_total_gb)s, %(codecarbon_version)s,
    %(status)s, %(error)s, %(details)s::jsonb)
"""


class _Recorder:
    """One database connection per process for run rows (a new connection per run costs tens
    of milliseconds, more than the measurement itself). Re-opened after a fork or an error."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.key: tuple[int, str] | None = None
        self.lock = threading.Lock()

    def _close(self) -> None:
        try:
            if self.conn is not None and self.key is not None and self.key[0] == os.getpid():
                self.conn.close()
        except Exception:  # noqa: BLE001 - a broken connection is dropped either way
            pass
        self.conn, self.key = None, None

    def insert(self, url: str, params: dict[str, Any]) -> None:
        import psycopg

        with self.lock:
            key = (os.getpid(), url)
            for attempt in (1, 2):
                if self.conn is None or self.key != key or self.conn.closed:
                    if self.key is not None and self.key[0] != os.getpid():
                        self.conn = None  # inherited from the parent: never touch it
                    self._close()
                    self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
                    self.key = key
                try:
                    self.conn.execute(_INSERT, params)
                    return
                except psycopg.OperationalError:
                    self._close()  # stale connection (server restarted): reconnect once
                    if attempt == 2:
                        raise


_RECORDER = _Recorder()


def record_run(settings: Settings, rec: RunRecord) -> bool:
    """Write the run row; a failure to write is logged, never raised. Returns success."""
    from ecodemo.store.connection import open_database

    params = asdict(rec)
    params["details"] = json.dumps(rec.details, default=str)
    try:
        _RECORDER.insert(open_database(settings).url, params)
        return True
    except Exception as exc:  # noqa: BLE001 - recording must not break the stage
        log.warning("compute run %s not recorded: %s", rec.run_id, exc)
        return False


@contextmanager
def track_run(settings: Settings, stage: str, *, sensor_kind: str | None = None,
              model_id: str | None = None, details: dict[str, Any] | None = None,
              record: bool = True) -> Iterator[RunRecord]:
    """Measure the enclosed block as one stage run and record it in ``compute_runs``.

    The yielded record can be updated inside the block (``model_id``, ``details``). If the block
    raises, the run is recorded with status 'failed' and the exception propagates.
    """
    rec = RunRecord(run_id=str(uuid.uuid4()), stage=stage, sensor_kind=sensor_kind,
                    model_id=model_id, started_at=datetime.now(UTC), details=dict(details or {}))
    tracker = _METER.get(settings)
    measuring = False
    if tracker is None:
        rec.measurement_method = f"not measured: CodeCarbon unavailable ({_METER.failed})"
    elif not _METER.lock.acquire(blocking=False):
        rec.measurement_method = "not measured: another run was being measured in this process"
    else:
        try:
            tracker.start_task(rec.run_id)
            measuring = True
        except Exception as exc:  # noqa: BLE001
            _METER.lock.release()
            rec.measurement_method = f"not measured: CodeCarbon failed to start ({exc})"
            log.warning("energy not measured for %s: %s", stage, exc)
    t0 = time.perf_counter()
    try:
        yield rec
    except BaseException as exc:
        rec.status = "failed"
        rec.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        raise
    finally:
        rec.duration_s = time.perf_counter() - t0
        if measuring:
            try:
                data = tracker.stop_task()
                if data is None:
                    raise RuntimeError("stop_task returned no data")
                _fill_from(rec, data, _METER.method())
            except Exception as exc:  # noqa: BLE001
                rec.measurement_method = f"not measured: CodeCarbon failed ({exc})"
                log.warning("energy not measured for %s: %s", stage, exc)
            finally:
                _METER.lock.release()
        if record:
            record_run(settings, rec)


def attach_model(conn: psycopg.Connection, run_id: str, model_id: str) -> None:
    """Link a recorded run to the model it trained, so the balance finds what the model cost
    to train. In the caller's transaction."""
    conn.execute("UPDATE compute_runs SET model_id = %s WHERE run_id = %s", (model_id, run_id))


# The intensity used for a run: the last value at or before the run's midpoint, else the first
# one after it, each within the tolerance. Runs last seconds to minutes, so one quarter-hour
# value describes them; the midpoint keeps long runs honest.
_GRID_EMISSIONS = """
WITH runs AS (
    SELECT run_id, started_at, energy_kwh,
           started_at + make_interval(secs => coalesce(duration_s, 0) / 2) AS mid
    FROM compute_runs
    WHERE (%(all)s OR grid_intensity_g_per_kwh IS NULL)
), matched AS (
    SELECT r.run_id, r.started_at, r.energy_kwh,
           coalesce(prev.ts, nxt.ts) AS gi_ts,
           coalesce(prev.g_per_kwh, nxt.g_per_kwh) AS g,
           coalesce(prev.source, nxt.source) AS src,
           CASE WHEN prev.ts IS NOT NULL THEN 'at or before' ELSE 'after' END AS side
    FROM runs r
    LEFT JOIN LATERAL (
        SELECT ts, g_per_kwh, source FROM grid_intensity
        WHERE zone = %(zone)s AND ts <= r.mid AND ts >= r.mid - %(tol)s
        ORDER BY ts DESC LIMIT 1) prev ON true
    LEFT JOIN LATERAL (
        SELECT ts, g_per_kwh, source FROM grid_intensity
        WHERE zone = %(zone)s AND ts > r.mid AND ts <= r.mid + %(tol)s
        ORDER BY ts ASC LIMIT 1) nxt ON true
)
UPDATE compute_runs c
SET grid_intensity_g_per_kwh = m.g,
    grid_emissions_kg = m.energy_kwh * m.g / 1000.0,   -- NULL energy stays NULL
    grid_intensity_source = m.src || ', zone ' || %(zone)s || ', value of '
        || to_char(m.gi_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"')
        || ' (' || m.side || ' the run midpoint)'
FROM matched m
WHERE c.run_id = m.run_id AND c.started_at = m.started_at AND m.g IS NOT NULL
"""


def set_grid_emissions(conn: psycopg.Connection, *, zone: str, tolerance: timedelta,
                       recompute_all: bool) -> int:
    """Fill the grid-intensity columns of the runs (those still NULL, or all) from the
    ``grid_intensity`` value of ``zone`` nearest their midpoint within ``tolerance``;
    ``grid_emissions_kg`` = measured kWh x gCO2e/kWh / 1000. Returns the server's row count."""
    with conn.cursor() as cur:
        cur.execute(_GRID_EMISSIONS, {"zone": zone, "tol": tolerance, "all": recompute_all})
        return int(cur.rowcount)


def delete_runs(conn: psycopg.Connection, *, model_ids: Sequence[str], kinds: Sequence[str],
                ingest_files: Sequence[str]) -> int:
    """Delete the runs of these models or sensor kinds, and the 'ingest' runs of these files
    (``details.file``). In the caller's transaction; returns rows deleted."""
    return int(conn.execute(
        """DELETE FROM compute_runs WHERE model_id = ANY(%(models)s)
           OR sensor_kind = ANY(%(kinds)s)
           OR (stage = 'ingest' AND details->>'file' = ANY(%(files)s))""",
        {"models": list(model_ids), "kinds": list(kinds), "files": list(ingest_files)}).rowcount)
