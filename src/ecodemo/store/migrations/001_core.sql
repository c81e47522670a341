-- ecodemo core schema. Units are in column names; all timestamps are timestamptz (UTC inside).

CREATE TABLE IF NOT EXISTS sites (
    site_id        text PRIMARY KEY,
    name           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('solar', 'wind', 'traffic', 'bike', 'pedestrian', 'transit')),
    latitude       double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude      double precision CHECK (longitude BETWEEN -180 AND 180),
    timezone       text NOT NULL DEFAULT 'Europe/Paris',
    capacity       double precision,          -- in the unit of the site's sensors, when known
    area           text,
    source         text,
    licence        text,
    attributes     jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS sensors (
    sensor_id      text PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites (site_id) ON DELETE CASCADE,
    kind           text NOT NULL,
    quantity       text NOT NULL,             -- power, count, occupancy, ...
    unit           text NOT NULL,             -- canonical unit values are stored in
    resolution     interval,                  -- nominal step (PT30M -> 30 minutes)
    timezone       text NOT NULL DEFAULT 'Europe/Paris',  -- used to localise naive timestamps
    source         text,                      -- connector name (opendatasoft, file, mqtt, ...)
    source_params  jsonb NOT NULL DEFAULT '{}'::jsonb,
    enabled        boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sensors_kind_idx ON sensors (kind);

-- quality_flags is a bit set; the meaning of each bit is in quality_flag_names.
CREATE TABLE IF NOT EXISTS readings (
    sensor_id      text NOT NULL,
    ts             timestamptz NOT NULL,
    value          double precision NOT NULL,
    quality_flags  smallint NOT NULL DEFAULT 0,
    ingested_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, ts)
);

CREATE TABLE IF NOT EXISTS quality_flag_names (
    bit            smallint PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    description    text NOT NULL
);
INSERT INTO quality_flag_names (bit, name, description) VALUES
    (1,  'negative_night',  'small negative power kept as measured (inverter/auxiliary consumption)'),
    (2,  'unit_converted',  'value converted from the unit given by the source'),
    (4,  'dst_repeated',    'naive local time in the repeated autumn hour, resolved by file order'),
    (8,  'spike',           'value far outside the sensor''s recent distribution'),
    (16, 'flat_line',       'value unchanged for an unusually long run (stuck sensor?)'),
    (32, 'above_capacity',  'value above the declared capacity but within tolerance')
ON CONFLICT (bit) DO NOTHING;

-- Weather in long format: one row per station, time and variable (temp_c, cloud_cover_pct, ...).
CREATE TABLE IF NOT EXISTS weather (
    station_id     text NOT NULL,
    ts             timestamptz NOT NULL,
    variable       text NOT NULL,
    value          double precision NOT NULL,
    source         text NOT NULL DEFAULT 'observed',   -- observed | forecast:<issued> | open-meteo
    ingested_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, variable, ts)
);
ALTER TABLE sites ADD COLUMN IF NOT EXISTS weather_station_id text;

-- Rows that failed validation, with their reason; never silently dropped.
CREATE TABLE IF NOT EXISTS quarantine (
    id             bigserial PRIMARY KEY,
    source         text NOT NULL,             -- file path, connector name, topic
    line_no        bigint,                    -- line in the source file (1 = header), if any
    sensor_id      text,
    raw            text NOT NULL,
    reason         text NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    row_key        text GENERATED ALWAYS AS (md5(source || '|' || coalesce(line_no::text, '') || '|' || raw || '|' || reason)) STORED
);
CREATE UNIQUE INDEX IF NOT EXISTS quarantine_row_key_idx ON quarantine (row_key);
CREATE INDEX IF NOT EXISTS quarantine_time_idx ON quarantine (quarantined_at);

-- Files already processed, by content hash (file drops are processed once).
CREATE TABLE IF NOT EXISTS ingested_files (
    content_sha256 text PRIMARY KEY,
    path           text NOT NULL,
    ingested_at    timestamptz NOT NULL DEFAULT now(),
    counts         jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Trained models and baselines (registry). status: candidate | promoted | retired.
CREATE TABLE IF NOT EXISTS models (
    model_id         text PRIMARY KEY,
    kind             text NOT NULL,
    name             text NOT NULL,           -- ladder rung: persistence, seasonal_naive, lgbm_small...
    version          integer NOT NULL,
    status           text NOT NULL DEFAULT 'candidate' CHECK (status IN ('candidate', 'promoted', 'retired')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    promoted_at      timestamptz,
    artefact_path    text,
    train_start      timestamptz,
    train_end        timestamptz,
    data_sha256      text,
    features         jsonb NOT NULL DEFAULT '[]'::jsonb,
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics          jsonb NOT NULL DEFAULT '{}'::jsonb,
    train_seconds    double precision,
    train_energy_kwh double precision,
    library_versions jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (kind, name, version)
);
CREATE INDEX IF NOT EXISTS models_kind_status_idx ON models (kind, status);

-- The model ladder's decision per kind, with its reason.
CREATE TABLE IF NOT EXISTS model_choices (
    id             bigserial PRIMARY KEY,
    kind           text NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    chosen_name    text NOT NULL,
    model_id       text REFERENCES models (model_id) ON DELETE SET NULL,
    tolerance      double precision NOT NULL,
    reason         text NOT NULL,
    candidates     jsonb NOT NULL DEFAULT '[]'::jsonb
);

-- Forecasts as issued; past forecasts are kept so accuracy uses what was known at issue time.
CREATE TABLE IF NOT EXISTS forecasts (
    sensor_id      text NOT NULL,
    model_id       text NOT NULL,
    issued_at      timestamptz NOT NULL,
    ts             timestamptz NOT NULL,      -- target time
    horizon_h      real NOT NULL,
    p10            double precision,
    p50            double precision NOT NULL,
    p90            double precision,
    PRIMARY KEY (sensor_id, model_id, issued_at, ts)
);
CREATE INDEX IF NOT EXISTS forecasts_ts_idx ON forecasts (sensor_id, ts);

-- One row per measured stage run (ingest, train, predict, backtest, evaluate, publish).
-- A measurement that failed is NULL, never 0.
CREATE TABLE IF NOT EXISTS compute_runs (
    run_id                      uuid NOT NULL,
    stage                       text NOT NULL,
    model_id                    text,
    sensor_kind                 text,
    started_at                  timestamptz NOT NULL,
    duration_s                  double precision,
    energy_kwh                  double precision,
    cpu_energy_kwh              double precision,
    ram_energy_kwh              double precision,
    gpu_energy_kwh              double precision,
    emissions_kg                double precision,  -- with carbon_intensity_g_per_kwh below
    carbon_intensity_g_per_kwh  double precision,
    intensity_source            text,
    grid_emissions_kg           double precision,  -- recomputed with the grid intensity at run time
    grid_intensity_g_per_kwh    double precision,
    grid_intensity_source       text,
    measurement_method          text,
    tracking_mode               text,
    cpu_model                   text,
    cpu_count                   integer,
    ram_total_gb                double precision,
    codecarbon_version          text,
    status                      text NOT NULL DEFAULT 'ok',   -- ok | failed (the stage itself)
    error                       text,
    details                     jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (run_id, started_at)
);
CREATE INDEX IF NOT EXISTS compute_runs_stage_idx ON compute_runs (stage, started_at);

-- Grid carbon intensity (RTE eCO2mix taux_co2, gCO2e/kWh) by zone and time.
CREATE TABLE IF NOT EXISTS grid_intensity (
    zone           text NOT NULL,             -- FR, or a region code
    ts             timestamptz NOT NULL,
    g_per_kwh      double precision NOT NULL,
    source         text NOT NULL,
    PRIMARY KEY (zone, ts)
);

-- Accuracy: backtests (rolling origin) and live (past forecasts as issued).
-- sensor_id '__all__' is the aggregate over the kind's sensors.
CREATE TABLE IF NOT EXISTS evaluations (
    source                   text NOT NULL CHECK (source IN ('backtest', 'live')),
    kind                     text NOT NULL,
    model_name               text NOT NULL,
    model_id                 text,
    sensor_id                text NOT NULL DEFAULT '__all__',
    horizon_h                real NOT NULL,
    period_start             timestamptz NOT NULL,
    period_end               timestamptz NOT NULL,
    evaluated_at             timestamptz NOT NULL DEFAULT now(),
    n                        bigint NOT NULL,
    mae                      double precision,
    rmse                     double precision,
    nmae                     double precision,
    skill_vs_seasonal_naive  double precision,
    coverage_p10_p90         double precision,
    pinball                  double precision,
    details                  jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (source, kind, model_name, sensor_id, horizon_h, period_start, period_end)
);

-- Benefit versus cost per kind, model and period. Assumptions are stored with the numbers.
CREATE TABLE IF NOT EXISTS balances (
    kind                 text NOT NULL,
    model_id             text NOT NULL,
    period_start         timestamptz NOT NULL,
    period_end           timestamptz NOT NULL,
    evaluated_at         timestamptz NOT NULL DEFAULT now(),
    ingest_kwh           double precision,
    train_kwh            double precision,
    predict_kwh          double precision,
    compute_kwh          double precision,
    compute_kgco2e       double precision,
    avoided_kwh          double precision,
    avoided_kgco2e       double precision,
    net_kgco2e           double precision,
    benefit_cost_ratio   double precision,
    payback_hours        double precision,
    breakeven            jsonb NOT NULL DEFAULT '{}'::jsonb,
    method               text,
    assumptions          jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (kind, model_id, period_start, period_end)
);

-- Per-sensor data-quality summary for the engineers' dashboard.
CREATE TABLE IF NOT EXISTS sensor_quality (
    sensor_id      text PRIMARY KEY,
    checked_at     timestamptz NOT NULL DEFAULT now(),
    first_ts       timestamptz,
    last_ts        timestamptz,
    n_readings     bigint NOT NULL DEFAULT 0,
    n_gaps         integer NOT NULL DEFAULT 0,
    longest_gap    interval,
    n_flagged      bigint NOT NULL DEFAULT 0,
    n_quarantined  bigint NOT NULL DEFAULT 0,
    flags          jsonb NOT NULL DEFAULT '{}'::jsonb
);
