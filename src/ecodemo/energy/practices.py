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

#: The evidence in English (the JSON export); the report words each key from its catalogue
#: (``evidence.<key>``), from the same ``evidence_args``.
EVIDENCE_EN = {
    "ladder.none": "no model-ladder choice recorded yet",
    "ladder.compared": "rungs compared per kind (latest choice): {compared}",
    "ladder.tolerance": "the ladder keeps the rung with the lowest measured energy among those "
                        "within {tolerances} (relative nMAE) of the most accurate",
    "ladder.protocol": "backtest aggregate rows scored on test origins after a separate "
                       "selection window: {with_protocol} of {rows}",
    "runs.none": "no compute run recorded yet",
    "runs.measured": "{runs} runs recorded by CodeCarbon, {unmeasured} not measured (stored as "
                     "NULL, never 0); methods: {methods}",
    "runs.gpu": "{gpu} of {runs} runs used a GPU; the ladder's rungs are no-AI baselines and "
                "LightGBM trees",
    "runs.grid": "{grid} of {runs} runs have their CO2 at the éCO2mix grid intensity of the time "
                 "they ran; the others CodeCarbon's annual average",
    "window.none": "no training run recorded yet",
    "window.no_intensity": "no grid intensity collected in the 7 days before the latest "
                           "training ({when}): the training DAG's low-carbon window cannot "
                           "tell, so it trains without waiting",
    "window.ok": "{points} grid-intensity values in the 7 days before the latest training: the "
                 "training DAG waits for the cleanest 30 % of them (or its deadline)",
    "storage.retention": "{policies} TimescaleDB retention polic(ies) (`ecodemo db retention "
                         "DAYS` sets one)",
    "storage.cagg": "readings_hourly is a TimescaleDB continuous aggregate (materialised, "
                    "refreshed by policy)",
    "storage.no_cagg": "no continuous aggregate found",
    "storage.pg_retention": "plain PostgreSQL: no retention policy runs (`ecodemo db retention "
                            "DAYS` deletes old readings once, when called)",
    "storage.pg_view": "plain PostgreSQL: readings_hourly is a view computed at each read, "
                       "nothing is stored or saved",
    "ingestion": "readings are keyed by (sensor, time): {stored} stored once each, "
                 "{quarantined} rejected rows kept in quarantine with their reason",
}


def english_args(args: dict[str, Any]) -> dict[str, Any]:
    """The evidence's arguments as the English text shows them (lists joined, ratios in %)."""
    out = dict(args)
    if "compared" in args:
        out["compared"] = "; ".join(f"{k}: {', '.join(names) or '?'} -> {chosen}"
                                    for k, names, chosen in args["compared"])
    if "tolerances" in args:
        out["tolerances"] = ", ".join(f"{t:.0%}" for t in args["tolerances"])
    if "methods" in args:
        out["methods"] = ", ".join(args["methods"]) or "none"
    return out


def _p(practice: str, applied: bool | None, key: str, **args: Any) -> Practice:
    return {"practice": practice, "applied": applied,
            "evidence": EVIDENCE_EN[key].format(**english_args(args)),
            "evidence_key": key, "evidence_args": args}


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
        return [_p("no-AI baselines compared first", None, "ladder.none"),
                _p("cheapest model within a tolerance", None, "ladder.none")]
    compared = [[k, (names or "").split(", ") if names else [], chosen]
                for k, chosen, _t, names in rows]
    tolerances = sorted({float(t) for _k, _c, t, _n in rows})
    with_baselines = all(names and "seasonal_naive" in names for *_x, names in rows)
    with_protocol, n_rows = _row(conn, """SELECT count(*) FILTER (WHERE details ? 'protocol'),
                                                 count(*) FROM evaluations
                                          WHERE source = 'backtest' AND sensor_id = '__all__'""")
    return [
        _p("no-AI baselines compared first", with_baselines, "ladder.compared",
           compared=compared),
        _p("cheapest model within a tolerance", True, "ladder.tolerance",
           tolerances=tolerances),
        _p("choice made before the test", bool(with_protocol), "ladder.protocol",
           with_protocol=with_protocol, rows=n_rows),
    ]


def _measurement(conn: psycopg.Connection) -> list[Practice]:
    n, unmeasured, gpu, grid, methods = _row(conn,
        """SELECT count(*), count(*) FILTER (WHERE energy_kwh IS NULL),
                  count(*) FILTER (WHERE gpu_energy_kwh > 0),
                  count(grid_emissions_kg),
                  string_agg(DISTINCT split_part(measurement_method, ':', 1), ', ')
           FROM compute_runs""")
    if not n:
        return [_p(p, None, "runs.none") for p in ("every run measured", "small models on CPU",
                                                   "time-resolved carbon")]
    return [
        _p("every run measured", unmeasured == 0, "runs.measured", runs=n,
           unmeasured=unmeasured, methods=methods.split(", ") if methods else []),
        _p("small models on CPU", gpu == 0, "runs.gpu", gpu=gpu, runs=n),
        _p("time-resolved carbon", grid > 0, "runs.grid", grid=grid, runs=n),
    ]


def _carbon_window(conn: psycopg.Connection) -> Practice:
    last_train = _one(conn, "SELECT max(started_at) FROM compute_runs WHERE stage = 'train'")
    if last_train is None:
        return _p("carbon-aware training window", None, "window.none")
    points = _one(conn, """SELECT count(*) FROM grid_intensity
                           WHERE ts > %s - interval '7 days' AND ts <= %s""",
                  (last_train, last_train))
    if not points:
        return _p("carbon-aware training window", False, "window.no_intensity",
                  when=last_train.isoformat(timespec="minutes"))
    return _p("carbon-aware training window", True, "window.ok", points=points)


def _storage(conn: psycopg.Connection) -> list[Practice]:
    timescale = bool(_one(conn, "SELECT count(*) FROM pg_extension WHERE extname = "
                                "'timescaledb'"))
    if timescale:
        retention = _one(conn, "SELECT count(*) FROM timescaledb_information.jobs "
                               "WHERE proc_name = 'policy_retention'") or 0
        caggs = _one(conn, "SELECT count(*) FROM timescaledb_information.continuous_aggregates"
                           " WHERE view_name = 'readings_hourly'") or 0
        return [
            _p("retention of raw readings", retention > 0, "storage.retention",
               policies=retention),
            _p("hourly aggregates", caggs > 0,
               "storage.cagg" if caggs else "storage.no_cagg"),
        ]
    return [
        _p("retention of raw readings", False, "storage.pg_retention"),
        _p("hourly aggregates", False, "storage.pg_view"),
    ]


def _ingestion(conn: psycopg.Connection) -> Practice:
    stored, quarantined = _row(
        conn, "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM quarantine)")
    return _p("idempotent ingestion", True if stored else None, "ingestion", stored=stored,
              quarantined=quarantined)


def frugal_practices(conn: psycopg.Connection) -> list[Practice]:
    """Every practice the report lists, checked now: ``[{practice, applied, evidence,
    evidence_key, evidence_args}]`` (``evidence`` in English, the others for the report)."""
    return [*_ladder(conn), *_measurement(conn), _carbon_window(conn), *_storage(conn),
            _ingestion(conn)]
