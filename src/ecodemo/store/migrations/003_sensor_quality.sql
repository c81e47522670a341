-- Data-quality checks (`ecodemo sensors check`): flags found by looking at a sensor's history,
-- kept apart from readings.quality_flags (set at ingestion) so that re-ingesting identical
-- data still changes nothing. Recomputed by each check over its window.
INSERT INTO quality_flag_names (bit, name, description) VALUES
    (64,  'unit_suspect', 'a day whose level is ~1000x off the sensor''s usual level (kW/MW mix-up?)'),
    (128, 'impossible',   'physically impossible value (e.g. solar output with the sun below the horizon)')
ON CONFLICT (bit) DO NOTHING;

CREATE TABLE IF NOT EXISTS reading_flags (
    sensor_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    flags       smallint NOT NULL,           -- bits of quality_flag_names (8, 16, 64, 128)
    detail      text NOT NULL,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, ts)
);
