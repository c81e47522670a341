-- Model registry: at most one promoted model per kind, enforced by the database.
CREATE UNIQUE INDEX IF NOT EXISTS models_one_promoted_per_kind
    ON models (kind) WHERE status = 'promoted';
CREATE INDEX IF NOT EXISTS model_choices_kind_idx ON model_choices (kind, decided_at DESC);
