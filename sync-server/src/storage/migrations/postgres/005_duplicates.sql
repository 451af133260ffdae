-- Duplicate candidates (as the SQLite store's 009_duplicates.sql); the keys are keyed hashes.
ALTER TABLE case_summaries ADD COLUMN dup_key TEXT;
ALTER TABLE case_summaries ADD COLUMN commune_key TEXT;
CREATE INDEX case_summaries_by_dup_key ON case_summaries(dup_key, case_id) WHERE dup_key IS NOT NULL;
UPDATE case_summaries SET stale = TRUE;
CREATE TABLE distinct_cases (
    case_a TEXT NOT NULL,
    case_b TEXT NOT NULL,
    marked_by TEXT NOT NULL,
    at     BIGINT NOT NULL,
    PRIMARY KEY (case_a, case_b)
);
