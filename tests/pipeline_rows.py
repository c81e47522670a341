"""A store filled like the demo pipeline fills it: the ONE place that fakes pipeline output.

The bundled snapshot is ingested for real (``ecodemo.pipeline.ingest_snapshot``); then rows are
inserted into models, model_choices, forecasts, evaluations, compute_runs, balances,
sensor_quality and quarantine, shaped like the model, energy and sensor stages will write them
(those stages are being built elsewhere). Replace :func:`fill_pipeline_rows` by running the demo
pipeline once it produces these tables.

Conventions assumed (documented for the other stages): ``evaluations.nmae`` is a fraction
(MAE / mean |actual|); ``sensor_id='__all__'`` rows aggregate a kind; forecasts are hourly,
issued at 00:00 UTC each day and at the end of the data, 48 h ahead; compute_runs carry
wall-clock times while readings keep their (historical) data times.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from ecodemo.config import Settings
from tests.conftest import TEMPLATE_DB, _with_dbname

LADDER = (  # name, versions, base nMAE, train energy kWh (estimated), train seconds
    ("persistence", (1,), 0.42, 2.0e-7, 0.05),
    ("seasonal_naive", (1,), 0.31, 3.0e-7, 0.08),
    ("lgbm_small", (1, 2), 0.18, 4.0e-5, 9.0),
    ("lgbm_large", (1,), 0.171, 6.5e-4, 140.0),
)
CHOSEN = ("lgbm_small", 2)
METHOD = "estimated: CodeCarbon CPU load x TDP, RAM constant (no RAPL)"
INTENSITY = 56.0  # gCO2e/kWh, CodeCarbon's offline average for FRA
INTENSITY_SOURCE = "codecarbon offline FRA average"


@dataclass(frozen=True)
class FilledStore:
    settings: Settings
    url: str
    now: datetime  # wall clock used for compute_runs and model times
    kinds: tuple[str, ...]


def _mid(kind: str, name: str, version: int) -> str:
    return f"{kind}-{name}-v{version}"


def fill_pipeline_rows(conn: psycopg.Connection, now: datetime) -> tuple[str, ...]:
    """Insert pipeline-shaped rows for every kind that has readings. Returns the kinds."""
    kinds = tuple(k for (k,) in conn.execute(
        "SELECT DISTINCT s.kind FROM sensors s WHERE EXISTS "
        "(SELECT 1 FROM readings r WHERE r.sensor_id = s.sensor_id) ORDER BY 1"))
    for ki, kind in enumerate(kinds):
        data_end = conn.execute(
            "SELECT max(r.ts) FROM readings r JOIN sensors s USING (sensor_id) WHERE s.kind = %s",
            (kind,)).fetchone()[0]
        data_end = data_end.replace(minute=0, second=0, microsecond=0)
        _models(conn, kind, ki, now, data_end)
        _forecasts(conn, kind, data_end)
        _evaluations(conn, kind, data_end, now)
        _compute_runs(conn, kind, ki, now)
        _balance(conn, kind, data_end, now)
    _flag_spikes(conn)
    _sensor_quality(conn)
    conn.execute(
        "INSERT INTO quarantine (source, line_no, sensor_id, raw, reason) VALUES "
        "('transport_road.csv.gz', 812, 'paris-road-376-flow', "
        "'2021-03-28T02:00:00,paris-road-376-flow,-3,vehicles/h', 'implausible value -3'), "
        "('transport_bike.csv.gz', 90, 'paris-bike-100007049-101007049', "
        "'2020-09-04T10:00:00,paris-bike-100007049-101007049,abc,bicycles/h', "
        "'not a number') ON CONFLICT DO NOTHING")
    return kinds


def _models(conn: psycopg.Connection, kind: str, ki: int, now: datetime,
            data_end: datetime) -> None:
    for name, versions, nmae, kwh, secs in LADDER:
        for v in versions:
            promoted = (name, v) == CHOSEN
            retired = name == CHOSEN[0] and v < CHOSEN[1]
            created = now - timedelta(days=6 - v * 2, hours=ki)
            conn.execute(
                """INSERT INTO models (model_id, kind, name, version, status, created_at,
                       promoted_at, artefact_path, train_start, train_end, data_sha256,
                       features, params, metrics, train_seconds, train_energy_kwh,
                       library_versions)
                   VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)""",
                (_mid(kind, name, v), kind, name, v,
                 "promoted" if promoted else ("retired" if retired else "candidate"),
                 created, created + timedelta(minutes=5) if promoted or retired else None,
                 f"models/{kind}/{name}/v{v}/model.txt", data_end - timedelta(days=365),
                 data_end - timedelta(days=30), uuid.uuid5(uuid.NAMESPACE_DNS, kind).hex,
                 json.dumps(["hour", "dow", "lag_24h", "lag_168h", "temp_c"]),
                 json.dumps({"num_leaves": 15 if "small" in name else 63}),
                 json.dumps({"nmae": nmae}), secs, kwh, json.dumps({"lightgbm": "4.6.0"})))
    candidates = [{"name": n, "nmae": e, "train_energy_kwh": k} for n, _, e, k, _ in LADDER]
    for when, chosen, version, reason in (
        (now - timedelta(days=4), "lgbm_small", 1, "first LightGBM rung within tolerance"),
        (now - timedelta(days=2, hours=ki), CHOSEN[0], CHOSEN[1],
         "lgbm_small: nMAE 18.0% within 10% of the best (lgbm_large 17.1%) "
         "for 16x less training energy"),
    ):
        conn.execute(
            "INSERT INTO model_choices (kind, decided_at, chosen_name, model_id, tolerance, "
            "reason, candidates) VALUES (%s,%s,%s,%s,%s,%s,%s)",
            (kind, when, chosen, _mid(kind, chosen, version), 0.10, reason,
             json.dumps(candidates)))


def _forecasts(conn: psycopg.Connection, kind: str, data_end: datetime) -> None:
    """Seasonal-ish p50 (value one week earlier, hourly mean) with a p10-p90 band."""
    conn.execute(
        """INSERT INTO forecasts (sensor_id, model_id, issued_at, ts, horizon_h, p10, p50, p90)
           SELECT s.sensor_id, %(mid)s, i.issued_at, i.issued_at + h * interval '1 hour', h,
                  greatest(0, w.value_avg * 0.8 - 0.1 * abs(w.value_avg)),
                  w.value_avg * 0.97,
                  w.value_avg * 1.15 + 0.1 * abs(w.value_avg)
           FROM sensors s
           CROSS JOIN (
               SELECT generate_series(date_trunc('day', %(end)s::timestamptz) - interval '30 days',
                                      date_trunc('day', %(end)s::timestamptz), interval '1 day')
                      AS issued_at
               UNION SELECT %(end)s::timestamptz
           ) i
           CROSS JOIN generate_series(1, 48) h
           JOIN readings_hourly w ON w.sensor_id = s.sensor_id
                AND w.bucket = i.issued_at + h * interval '1 hour' - interval '7 days'
           WHERE s.kind = %(kind)s""",
        {"mid": _mid(kind, *CHOSEN), "end": data_end, "kind": kind})


def _evaluations(conn: psycopg.Connection, kind: str, data_end: datetime,
                 now: datetime) -> None:
    # Live: the issued forecasts against what was then measured, per issue day.
    for per_sensor in (False, True):
        conn.execute(
            f"""INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id,
                    horizon_h, period_start, period_end, evaluated_at, n, mae, rmse, nmae,
                    skill_vs_seasonal_naive, coverage_p10_p90, pinball)
                SELECT 'live', %(kind)s, %(name)s, %(mid)s,
                       {"f.sensor_id" if per_sensor else "'__all__'"}, 48,
                       f.issued_at, f.issued_at + interval '48 hours', %(now)s, count(*),
                       avg(abs(f.p50 - a.value_avg)),
                       sqrt(avg((f.p50 - a.value_avg) ^ 2)),
                       avg(abs(f.p50 - a.value_avg)) / nullif(avg(abs(a.value_avg)), 0),
                       0.12,
                       avg(((a.value_avg BETWEEN f.p10 AND f.p90))::int),
                       NULL
                FROM forecasts f
                JOIN sensors s ON s.sensor_id = f.sensor_id
                JOIN readings_hourly a ON a.sensor_id = f.sensor_id AND a.bucket = f.ts
                WHERE s.kind = %(kind)s
                GROUP BY {"f.sensor_id, " if per_sensor else ""}f.issued_at
                HAVING avg(abs(a.value_avg)) > 0""",
            {"kind": kind, "name": CHOSEN[0], "mid": _mid(kind, *CHOSEN), "now": now})
    # Backtests: rolling origin, monthly folds over the last six months, every rung.
    for name, versions, nmae, _, _ in LADDER:
        v = versions[-1]
        for fold in range(6):
            end = data_end - timedelta(days=30 * fold)
            drift = 1 + 0.08 * ((fold * 7) % 5 - 2) / 2
            conn.execute(
                """INSERT INTO evaluations (source, kind, model_name, model_id, sensor_id,
                       horizon_h, period_start, period_end, evaluated_at, n, mae, nmae,
                       skill_vs_seasonal_naive, coverage_p10_p90)
                   VALUES ('backtest', %s, %s, %s, '__all__', 24, %s, %s, %s, %s, %s, %s,
                           %s, %s)""",
                (kind, name, _mid(kind, name, v), end - timedelta(days=30), end,
                 now - timedelta(days=2), 720, nmae * drift * 10, nmae * drift,
                 1 - nmae / 0.31, 0.8 if name.startswith("lgbm") else None))


def _compute_runs(conn: psycopg.Connection, kind: str, ki: int, now: datetime) -> None:
    rows: list[tuple[object, ...]] = []
    watts = 18.0  # estimated whole-process draw under load (TDP share + RAM), W

    def run(stage: str, start: datetime, secs: float, model: str | None,
            ok: bool = True) -> None:
        kwh = None if not ok else secs * watts / 3.6e6
        rows.append((uuid.uuid4(), stage, model, kind, start, secs, kwh,
                     None if kwh is None else kwh * 0.8, None if kwh is None else kwh * 0.2,
                     None if kwh is None else kwh * INTENSITY / 1000,
                     INTENSITY, INTENSITY_SOURCE, METHOD if ok else None, "process",
                     "Intel Xeon (virtual)", 2, 7.7, "3.0.4", "ok" if ok else "failed",
                     None if ok else "ModelError: not enough rows after the gap filter"))

    for day in range(7):
        base = now - timedelta(days=day, hours=ki)
        run("ingest", base - timedelta(minutes=30), 4.0 + day % 3, None)
        run("predict", base - timedelta(minutes=10), 0.6 + 0.1 * (day % 2),
            _mid(kind, *CHOSEN))
        run("evaluate", base - timedelta(minutes=5), 0.3, _mid(kind, *CHOSEN))
    for name, versions, _, _, secs in LADDER:
        for v in versions:
            start = now - timedelta(days=6 - v * 2, hours=ki, minutes=20)
            run("train", start, secs, _mid(kind, name, v))
            run("backtest", start + timedelta(minutes=3), secs * 3, _mid(kind, name, v))
    run("train", now - timedelta(days=1, hours=ki), 1.2, _mid(kind, "lgbm_large", 1), ok=False)
    run("publish", now - timedelta(hours=ki + 1), 0.8, None)
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO compute_runs (run_id, stage, model_id, sensor_kind, started_at,
                   duration_s, energy_kwh, cpu_energy_kwh, ram_energy_kwh, emissions_kg,
                   carbon_intensity_g_per_kwh, intensity_source, measurement_method,
                   tracking_mode, cpu_model, cpu_count, ram_total_gb, codecarbon_version,
                   status, error)
               VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)""", rows)


def _balance(conn: psycopg.Connection, kind: str, data_end: datetime, now: datetime) -> None:
    mid = _mid(kind, *CHOSEN)
    spent = conn.execute(
        "SELECT sum(energy_kwh) FILTER (WHERE stage = 'ingest'), "
        "sum(energy_kwh) FILTER (WHERE stage = 'train'), "
        "sum(energy_kwh) FILTER (WHERE stage = 'predict'), sum(energy_kwh) "
        "FROM compute_runs WHERE sensor_kind = %s", (kind,)).fetchone()
    ingest, train, predict, total = spent
    avoided_kwh = 1.5 if kind in ("solar", "wind") else 0.4  # assumption, stored below
    hours = 30 * 24
    conn.execute(
        """INSERT INTO balances (kind, model_id, period_start, period_end, evaluated_at,
               ingest_kwh, train_kwh, predict_kwh, compute_kwh, compute_kgco2e, avoided_kwh,
               avoided_kgco2e, net_kgco2e, benefit_cost_ratio, payback_hours, method,
               assumptions)
           VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)""",
        (kind, mid, data_end - timedelta(days=30), data_end, now, ingest, train, predict,
         total, total * INTENSITY / 1000, avoided_kwh, avoided_kwh * INTENSITY / 1000,
         (avoided_kwh - total) * INTENSITY / 1000, avoided_kwh / total,
         hours * total / avoided_kwh, "avoided = forecast-driven load shifting (assumed)",
         json.dumps({"shifted_share": 0.02, "intensity_g_per_kwh": INTENSITY})))


def _flag_spikes(conn: psycopg.Connection) -> None:
    """The sensors stage's spike check (bit 8): more than 4 standard deviations from the mean."""
    conn.execute(
        """UPDATE readings r SET quality_flags = r.quality_flags | 8
           FROM (SELECT sensor_id, avg(value) AS mu, stddev_pop(value) AS sd
                 FROM readings GROUP BY sensor_id) s
           WHERE s.sensor_id = r.sensor_id AND s.sd > 0 AND abs(r.value - s.mu) > 4 * s.sd""")


def _sensor_quality(conn: psycopg.Connection) -> None:
    """Computed from the readings, as the sensors stage's quality check would."""
    conn.execute(
        """INSERT INTO sensor_quality (sensor_id, first_ts, last_ts, n_readings, n_gaps,
               longest_gap, n_flagged, n_quarantined, flags)
           SELECT g.sensor_id, min(g.ts), max(g.ts), count(*),
                  count(*) FILTER (WHERE g.step > coalesce(se.resolution, interval '1 hour')),
                  max(g.step) FILTER (WHERE g.step > coalesce(se.resolution, interval '1 hour')),
                  count(*) FILTER (WHERE g.quality_flags <> 0),
                  (SELECT count(*) FROM quarantine q WHERE q.sensor_id = g.sensor_id),
                  jsonb_build_object(
                      'negative_night', count(*) FILTER (WHERE g.quality_flags & 1 <> 0),
                      'spike', count(*) FILTER (WHERE g.quality_flags & 8 <> 0))
           FROM (SELECT sensor_id, ts, quality_flags,
                        ts - lag(ts) OVER (PARTITION BY sensor_id ORDER BY ts) AS step
                 FROM readings) g
           JOIN sensors se ON se.sensor_id = g.sensor_id
           GROUP BY g.sensor_id""")


@pytest.fixture(scope="module")
def filled_store(pg_admin_url: str, template_url: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilledStore]:
    """A database holding the ingested snapshot plus pipeline-shaped rows (module scope)."""
    from ecodemo.pipeline import ingest_snapshot

    name = f"dash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    url = _with_dbname(pg_admin_url, name)
    state: Path = tmp_path_factory.mktemp("dash_state")
    settings = Settings(database_url=SecretStr(url), state_dir=state, models_dir=state / "m")
    ingest_snapshot(settings, echo=lambda _msg: None)
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(url, autocommit=True) as c:
        kinds = fill_pipeline_rows(c, now)
        c.execute("ANALYZE")
    yield FilledStore(settings=settings, url=url, now=now, kinds=kinds)
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
