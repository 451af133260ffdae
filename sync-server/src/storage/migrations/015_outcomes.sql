-- A case's outcome and closure in its indicator row (suivi_core::outcome, case_doc::closure):
-- its stage and classification (withdrawn, prevented), its closure's status and, once closed,
-- its reason; times it was reopened; follow-up visits made with a due date set by the visit
-- before, and those made by that date. Built for every stored case when the server starts.
ALTER TABLE case_indicators ADD COLUMN stage TEXT NOT NULL DEFAULT 'identified';
ALTER TABLE case_indicators ADD COLUMN classification TEXT;
ALTER TABLE case_indicators ADD COLUMN closure TEXT;
ALTER TABLE case_indicators ADD COLUMN closed_reason TEXT;
ALTER TABLE case_indicators ADD COLUMN reopenings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE case_indicators ADD COLUMN visits_scheduled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE case_indicators ADD COLUMN visits_on_time INTEGER NOT NULL DEFAULT 0;
-- The programme's outcome settings (suivi_core::outcome::OutcomeSettings as JSON), each
-- publication a new version that phones receive at their next sync; the past ones stay, so a
-- period's report names the version it was counted with.
CREATE TABLE outcome_settings (
    version      INTEGER PRIMARY KEY,
    body         TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL
);
CREATE INDEX case_indicators_by_closure ON case_indicators(closure);
UPDATE case_summaries SET stale = 1;
