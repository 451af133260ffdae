-- The console's projections, sessions and login throttling: as the SQLite store's
-- 006_console.sql, with two differences for a database that has no encryption of its own: a
-- case's shown summary (names, places) is sealed like change payloads, and search terms and
-- village keys are keyed hashes (`Sealer::blind`), so equal terms match and a dump shows no
-- name. What a dump does show: which cases share a name key or a village, and the clear
-- columns below (risk, statuses, dates, counts).
CREATE TABLE case_summaries (
    case_id           TEXT PRIMARY KEY,
    -- The case's owner and team (as in `cases`), here so that a team's list walks one index.
    owner             TEXT NOT NULL,
    team              TEXT NOT NULL,
    shown             BYTEA NOT NULL,
    village_key       TEXT,
    risk_level        TEXT,
    referral_statuses TEXT NOT NULL,
    next_followup_due TEXT,
    conflict_count    BIGINT NOT NULL,
    birth_year        INTEGER,
    updated_at        BIGINT NOT NULL,
    -- How many changes it was computed from: an older computation never overwrites a newer.
    change_count      BIGINT NOT NULL DEFAULT 0,
    stale             BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX case_summaries_by_update ON case_summaries(updated_at DESC, case_id);
CREATE INDEX case_summaries_by_team ON case_summaries(team, updated_at DESC, case_id);
CREATE INDEX case_summaries_by_owner ON case_summaries(owner, updated_at DESC, case_id);
CREATE INDEX case_summaries_by_village ON case_summaries(village_key);
CREATE INDEX case_summaries_stale ON case_summaries(case_id) WHERE stale;

CREATE TABLE case_search_terms (
    term    TEXT NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (term, case_id)
);
CREATE INDEX case_search_terms_by_case ON case_search_terms(case_id);

CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(user_id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_user ON console_sessions(user_id);

CREATE TABLE login_failures (
    key     TEXT PRIMARY KEY,
    count   BIGINT NOT NULL,
    last_at BIGINT NOT NULL
);
