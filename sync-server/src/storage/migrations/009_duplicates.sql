-- Duplicate candidates: two cases of one child registered twice. A case's `dup_key` is its
-- name keys (suivi_core::names), sorted; `commune_key` its folded commune. Candidates share
-- both and estimated birth years at most a year apart, unless a supervisor marked the pair as
-- two children (`distinct_cases`, the smaller id first). Existing summaries have neither key
-- yet: marked stale, the server rebuilds them when it starts.
ALTER TABLE case_summaries ADD COLUMN dup_key TEXT;
ALTER TABLE case_summaries ADD COLUMN commune_key TEXT;
CREATE INDEX case_summaries_by_dup_key ON case_summaries(dup_key, case_id) WHERE dup_key IS NOT NULL;
UPDATE case_summaries SET stale = 1;
CREATE TABLE distinct_cases (
    case_a TEXT NOT NULL,
    case_b TEXT NOT NULL,
    marked_by TEXT NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (case_a, case_b)
);
