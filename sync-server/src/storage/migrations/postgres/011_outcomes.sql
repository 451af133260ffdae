-- A case's outcome and closure in its indicator row (suivi_core::outcome, case_doc::closure):
-- its stage and classification (withdrawn, prevented), its closure's status and, once closed,
-- its reason; times it was reopened; follow-up visits made with a due date set by the visit
-- before, and those made by that date. Built for every stored case when the server starts.
ALTER TABLE case_indicators ADD COLUMN stage TEXT NOT NULL DEFAULT 'identified';
ALTER TABLE case_indicators ADD COLUMN classification TEXT;
ALTER TABLE case_indicators ADD COLUMN closure TEXT;
ALTER TABLE case_indicators ADD COLUMN closed_reason TEXT;
ALTER TABLE case_indicators ADD COLUMN reopenings BIGINT NOT NULL DEFAULT 0;
ALTER TABLE case_indicators ADD COLUMN visits_scheduled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE case_indicators ADD COLUMN visits_on_time BIGINT NOT NULL DEFAULT 0;
CREATE INDEX case_indicators_by_closure ON case_indicators(closure);
UPDATE case_summaries SET stale = TRUE;
