-- Plain PostgreSQL: an hourly view of readings (same name and columns as the TimescaleDB
-- continuous aggregate in 002_hourly_and_retention.timescale.sql), bucketed with date_bin.
CREATE OR REPLACE VIEW readings_hourly AS
SELECT sensor_id,
       date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       avg(value)  AS value_avg,
       min(value)  AS value_min,
       max(value)  AS value_max,
       count(*)    AS n
FROM readings
GROUP BY sensor_id, date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');
