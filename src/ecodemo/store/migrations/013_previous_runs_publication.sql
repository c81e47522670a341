-- Forecasts backfilled from Open-Meteo's Previous Runs API were stored with issued_at = valid_at
-- - N days: the run's nominal age, not when it was published. A model run is public hours after
-- its initialisation time (Open-Meteo's Single Runs docs: typically 4-6 h for global models), so
-- a backtest could read such a forecast up to hours before a deployment could have, and its skill
-- looked better than a deployment gets. The backfill now stores valid_at - N days + 6 h
-- (ecodemo.sensors.open_meteo.PUBLICATION_MARGIN_H); this shifts the rows stored before by the
-- same 6 h, so they say when they were really available and a new backfill of the same days
-- finds its keys stored (writes nothing) instead of adding a later twin beside an early one.
-- The table is otherwise never rewritten: this is a one-time correction of a wrong issue time.
-- Only rows of the old form move (a whole number of days between issue and validity), so the
-- statement changes nothing when run again. A row whose shifted key is already held (a live
-- fetch stored at that very instant) is dropped: the stored issue keeps its key.
DELETE FROM weather_forecasts f
WHERE f.source = 'open-meteo:previous-runs'
  AND extract(epoch FROM f.valid_at - f.issued_at)::bigint % 86400 = 0
  AND EXISTS (SELECT 1 FROM weather_forecasts g
              WHERE g.station_id = f.station_id AND g.variable = f.variable
                AND g.valid_at = f.valid_at AND g.issued_at = f.issued_at + interval '6 hours');
UPDATE weather_forecasts SET issued_at = issued_at + interval '6 hours'
WHERE source = 'open-meteo:previous-runs'
  AND extract(epoch FROM valid_at - issued_at)::bigint % 86400 = 0;
