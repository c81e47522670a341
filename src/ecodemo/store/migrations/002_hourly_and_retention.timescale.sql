-- ecodemo: autocommit
-- TimescaleDB variant (run instead of the plain file when the extension is preloaded, Timescale licence).
-- Statements run one by one outside a transaction: continuous aggregates require it.
CREATE EXTENSION IF NOT EXISTS timescaledb;
SELECT create_hypertable('readings', by_range('ts', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('forecasts', by_range('ts', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('compute_runs', by_range('started_at', INTERVAL '30 days'), migrate_data => true, if_not_exists => true);
ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'sensor_id', timescaledb.compress_orderby = 'ts DESC');
SELECT add_compression_policy('readings', INTERVAL '30 days', if_not_exists => true);
ALTER TABLE forecasts SET (timescaledb.compress, timescaledb.compress_segmentby = 'sensor_id', timescaledb.compress_orderby = 'ts DESC, issued_at DESC');
SELECT add_compression_policy('forecasts', INTERVAL '30 days', if_not_exists => true);
DROP VIEW IF EXISTS readings_hourly;
CREATE MATERIALIZED VIEW IF NOT EXISTS readings_hourly WITH (timescaledb.continuous) AS
SELECT sensor_id,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
       avg(value)  AS value_avg,
       min(value)  AS value_min,
       max(value)  AS value_max,
       count(*)    AS n
FROM readings
GROUP BY sensor_id, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;
-- Refresh the last 7 days every 30 minutes; the refresh window (7 days) stays far shorter than
-- any retention configured with `ecodemo db retention`, otherwise the aggregate would empty.
SELECT add_continuous_aggregate_policy('readings_hourly', start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes', if_not_exists => true);
