-- Data-quality checks (`ecodemo sensors check`) set bits of readings.quality_flags: spike (8)
-- and flat_line (16) are named in 001; these are the two other check bits. Ingestion keeps the
-- check bits when an identical value is re-ingested (see CHECK_FLAGS_MASK in store/ingest.py).
INSERT INTO quality_flag_names (bit, name, description) VALUES
    (64,  'unit_suspect', 'a day whose level is ~1000x off the sensor''s usual level (kW/MW mix-up?)'),
    (128, 'impossible',   'physically impossible value (e.g. solar output with the sun below the horizon)')
ON CONFLICT (bit) DO NOTHING;
