-- Indexes for dashboard panel queries at scale (1,000 sensors x 1 year hourly).
-- Plain SQL valid on PostgreSQL and TimescaleDB alike (on a hypertable, CREATE INDEX builds the
-- index on every chunk), so no .timescale.sql twin is needed.

-- Flagged readings are rare: a partial index on them lets the models dashboard's "flagged
-- readings by flag" panel read only those rows instead of scanning every reading in the
-- period. (sensor_id) is included so the kind filter needs no heap visit for the key.
CREATE INDEX IF NOT EXISTS readings_flagged_ts_idx
    ON readings (ts, sensor_id) WHERE quality_flags <> 0;
