-- JIT compilation costs more than it saves on ecodemo's queries (index lookups and small
-- aggregates, planned over every chunk of a hypertable): on TimescaleDB, 8.76 M readings in 53
-- chunks, the territory "now" panel took 15.5 s with jit = on and 0.74 s with jit = off
-- (docs/performance.md). Plain SQL valid on both variants. A role that does not own the database
-- cannot change its settings: then the server's setting stays, with a warning.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'ecodemo: could not turn JIT off for database % (not its owner): %',
        current_database(), SQLERRM;
END
$$;
