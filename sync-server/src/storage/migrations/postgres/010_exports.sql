-- What exports and the indicators' new breakdowns read, from projections rather than case
-- documents: each case's referrals and follow-ups as core reads them (JSON, sealed like the
-- summary: notes and names are in it), and the child's sex beside the other indicator
-- columns. Removed with the case by erasure.
CREATE TABLE case_records (
    case_id TEXT PRIMARY KEY,
    body    BYTEA NOT NULL
);
ALTER TABLE case_indicators ADD COLUMN sex TEXT;
-- The village as typed and folded, for the caseload's village choices (a place, like the
-- commune beside it).
ALTER TABLE case_indicators ADD COLUMN village TEXT;
ALTER TABLE case_indicators ADD COLUMN village_key TEXT;
-- A referral's urgency (a choice id), shown with the stuck ones.
ALTER TABLE referral_summaries ADD COLUMN urgency TEXT;
-- Built for every stored case when the server starts (with today's name keys and the
-- villages' beginnings among the search terms).
UPDATE case_summaries SET stale = TRUE;
