-- Weather forecasts as issued: one row per station, variable, issue time and valid time.
-- A forecast is kept as it was issued and never overwritten (inserts skip an existing key), so
-- a backtest or a forecast issued at time T can read exactly what was known at T.
-- issued_at: when the forecast became available to ecodemo (the fetch time, or for a backfill
-- from Open-Meteo's previous-runs archive the valid time minus the run's age in days).
CREATE TABLE IF NOT EXISTS weather_forecasts (
    station_id     text NOT NULL,
    variable       text NOT NULL,
    issued_at      timestamptz NOT NULL,
    valid_at       timestamptz NOT NULL,
    value          double precision NOT NULL,
    source         text NOT NULL,          -- open-meteo:forecast | open-meteo:previous-runs
    ingested_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, variable, issued_at, valid_at),
    CHECK (valid_at >= issued_at)
);
CREATE INDEX IF NOT EXISTS weather_forecasts_valid_idx
    ON weather_forecasts (station_id, valid_at);
