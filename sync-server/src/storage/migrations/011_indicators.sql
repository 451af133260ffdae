-- The officer's indicators and referral chains, from projections: one row per case (what the
-- indicators count of it) and one per referral (where it stands, since when, and how long it
-- spent in each status it has left), written with the case's summary, removed by erasure.
-- Scope comes from the case's summary row (joined on case_id). Province and commune are kept
-- as typed (administrative areas, grouped by their folded key, whose spellings the console
-- shows); no name of a child is here.
CREATE TABLE case_indicators (
    case_id           TEXT PRIMARY KEY,
    -- 0 for a case merged into another: the same child is counted once.
    counted           INTEGER NOT NULL,
    -- YYYY-MM-DD: as the agent recorded it, else when the server first received the case.
    identified_on     TEXT NOT NULL,
    province          TEXT,
    province_key      TEXT,
    commune           TEXT,
    commune_key       TEXT,
    sector            TEXT,
    referred          INTEGER NOT NULL,
    service           INTEGER NOT NULL,
    -- NULL: no follow-up says.
    stopped_working   INTEGER,
    days_to_service   INTEGER,
    next_followup_due TEXT
);
CREATE TABLE referral_summaries (
    case_id         TEXT NOT NULL,
    referral_id     TEXT NOT NULL,
    service_type    TEXT,
    provider        TEXT,
    provider_key    TEXT,
    status          TEXT NOT NULL,
    created_at      INTEGER,
    status_since    INTEGER,
    secs_draft      INTEGER,
    secs_sent       INTEGER,
    secs_accepted   INTEGER,
    secs_declined   INTEGER,
    secs_in_service INTEGER,
    PRIMARY KEY (case_id, referral_id)
);
CREATE INDEX referral_summaries_by_status ON referral_summaries(status, status_since);
-- Built for every stored case when the server starts.
UPDATE case_summaries SET stale = 1;
