"""Frugal practices (after AFNOR SPEC 2314), each checked in the store when the report is made.

Nothing here is claimed by hand: every entry says whether the practice was applied, from the
facts it can read (model choices, evaluations, compute runs, grid intensity, the database's
own objects), and gives its evidence. ``applied`` is True, False, or None when the store holds
nothing to decide on (no run yet).
"""

from __future__ import annotations

from typing import Any

import psycopg

Practice = dict[str, Any]


def _p(practice: str, applied: bool | None, evidence: str) -> Practice:
    return {"practice": practice, "applied": applied, "evidence": evidence}


def _one(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _row(conn: psycopg.Connection, sql: str) -> tuple[Any, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return tuple(row)


def _ladder(conn: psycopg.Connection) -> list[Practice]:
    rows = conn.execute(
        """SELECT DISTINCT ON (kind) kind, chosen_name, tolerance,
                  (SELECT string_agg(c->>'name', ', ') FROM jsonb_array_elements(candidates) c)
           FROM model_choices ORDER BY kind, decided_at DESC""").fetchall()
    if not rows:
        none = "no model-ladder choice recorded yet"
        return [_p("no-AI baselines compared first", None, none),
                _p("cheapest model within a tolerance", None, none)]
    compared = "; ".join(f"{k}: {names or '?'} -> {chosen}" for k, chosen, _t, names in rows)
    tolerances = sorted({float(t) for _k, _c, t, _n in rows})
    with_baselines = all(names and "seasonal_naive" in names for *_x, names in rows)
    proto = _one(conn, """SELECT count(*) FILTER (WHERE details ? 'protocol') || ' of ' ||
                                 count(*) FROM evaluations WHERE source = 'backtest'
                                 AND sensor_id = '__all__'""")
    return [
        _p("no-AI baselines compared first", with_baselines,
           f"rungs compared per kind (latest choice): {compared}"),
        _p("cheapest model within a tolerance", True,
           f"the ladder keeps the rung with the lowest measured energy among those within "
           f"{', '.join(f'{t:.0%}' for t in tolerances)} (relative nMAE) of the most "
           f"accurate"),
        _p("choice made before the test", bool(proto and not proto.startswith("0 ")),
           f"backtest aggregate rows scored on test origins after a separate selection "
           f"window: {proto}"),
    ]


def _measurement(conn: psycopg.Connection) -> list[Practice]:
    n, unmeasured, gpu, grid, methods = _row(conn,
        """SELECT count(*), count(*) FILTER (WHERE energy_kwh IS NULL),
                  count(*) FILTER (WHERE gpu_energy_kwh > 0),
                  count(grid_emissions_kg),
                  string_agg(DISTINCT split_part(measurement_method, ':', 1), ', ')
           FROM compute_runs""")
    if not n:
        none = "no compute run recorded yet"
        return [_p(p, None, none) for p in ("every run measured", "small models on CPU",
                                            "time-resolved carbon")]
    return [
        _p("every run measured", unmeasured == 0,
           f"{n} runs recorded by CodeCarbon, {unmeasured} not measured (stored as NULL, "
           f"never 0); methods: {methods or 'none'}"),
        _p("small models on CPU", gpu == 0,
           f"{gpu} of {n} runs used a GPU; the ladder's rungs are no-AI baselines and "
           f"LightGBM trees"),
        _p("time-resolved carbon", grid > 0,
           f"{grid} of {n} runs have their CO2 at the éCO2mix grid intensity of the time "
           f"they ran; the others CodeCarbon's annual average"),
    ]


def _carbon_window(conn: psycopg.Connection) -> Practice:
    last_train = _one(conn, "SELECT max(started_at) FROM compute_runs WHERE stage = 'train'")
    if last_train is None:
        return _p("carbon-aware training window", None, "no training run recorded yet")
    points = _one(conn, """SELECT count(*) FROM grid_intensity
                           WHERE ts > %s - interval '7 days' AND ts <= %s""",
                  (last_train, last_train))
    if not points:
        return _p("carbon-aware training window", False,
                  f"no grid intensity collected in the 7 days before the latest training "
                  f"({last_train.isoformat(timespec='minutes')}): the training DAG's "
                  f"low-carbon window cannot tell, so it trains without waiting")
    return _p("carbon-aware training window", True,
              f"{points} grid-intensity values in the 7 days before the latest training: the "
              f"training DAG waits for the cleanest 30 % of them (or its deadline)")


def _storage(conn: psycopg.Connection) -> list[Practice]:
    timescale = bool(_one(conn, "SELECT count(*) FROM pg_extension WHERE extname = "
                                "'timescaledb'"))
    if timescale:
        retention = _one(conn, "SELECT count(*) FROM timescaledb_information.jobs "
                               "WHERE proc_name = 'policy_retention'") or 0
        caggs = _one(conn, "SELECT count(*) FROM timescaledb_information.continuous_aggregates"
                           " WHERE view_name = 'readings_hourly'") or 0
        return [
            _p("retention of raw readings", retention > 0,
               f"{retention} TimescaleDB retention polic(ies) (`ecodemo db retention DAYS` "
               f"sets one)"),
            _p("hourly aggregates", caggs > 0,
               "readings_hourly is a TimescaleDB continuous aggregate (materialised, "
               "refreshed by policy)" if caggs else "no continuous aggregate found"),
        ]
    return [
        _p("retention of raw readings", False,
           "plain PostgreSQL: no retention policy runs (`ecodemo db retention DAYS` deletes "
           "old readings once, when called)"),
        _p("hourly aggregates", False,
           "plain PostgreSQL: readings_hourly is a view computed at each read, nothing is "
           "stored or saved"),
    ]


def _ingestion(conn: psycopg.Connection) -> Practice:
    stored, quarantined = _row(
        conn, "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM quarantine)")
    return _p("idempotent ingestion", True if stored else None,
              f"readings are keyed by (sensor, time): {stored} stored once each, "
              f"{quarantined} rejected rows kept in quarantine with their reason")


def frugal_practices(conn: psycopg.Connection) -> list[Practice]:
    """Every practice the report lists, checked now: ``[{practice, applied, evidence}]``."""
    return [*_ladder(conn), *_measurement(conn), _carbon_window(conn), *_storage(conn),
            _ingestion(conn)]
