-- TimescaleDB under the Apache-only licence (timescaledb.license = 'apache', as many managed
-- services ship it): hypertables, but no compression, continuous aggregates or job policies, so
-- readings_hourly is the plain view (same name and columns as the other two variants).
-- The view repeats 002_hourly_and_retention.sql on purpose: a variant runs instead of it, whole.
CREATE EXTENSION IF NOT EXISTS timescaledb;
SELECT create_hypertable('readings', by_range('ts', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('forecasts', by_range('ts', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('compute_runs', by_range('started_at', INTERVAL '30 days'), migrate_data => true, if_not_exists => true);
CREATE OR REPLACE VIEW readings_hourly AS
SELECT sensor_id,
       date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       avg(value)  AS value_avg,
       min(value)  AS value_min,
       max(value)  AS value_max,
       count(*)    AS n
FROM readings
GROUP BY sensor_id, date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');
