-- The console's projections: one row per case, written in the same transaction as each push
-- that changes the case (and rebuilt for cases stored before this migration), removed by
-- erasure. Lists, filters and search read these rows, never the documents.
CREATE TABLE case_summaries (
    case_id           TEXT PRIMARY KEY,
    -- The case's owner and team (as in `cases`), here so that a team's list walks one index.
    owner             TEXT NOT NULL,
    team              TEXT NOT NULL,
    -- The shown summary as JSON (names, places, statuses).
    shown             BLOB NOT NULL,
    village_key       TEXT,
    risk_level        TEXT,
    -- ' referred accepted ': each status between spaces, to match one with LIKE.
    referral_statuses TEXT NOT NULL,
    next_followup_due TEXT,
    conflict_count    INTEGER NOT NULL,
    birth_year        INTEGER,
    updated_at        INTEGER NOT NULL,
    -- Written from fewer changes than the case holds (two pushes to one case at once): the
    -- service recomputes it at once, and it is listed meanwhile.
    -- How many changes it was computed from: an older computation never overwrites a newer.
    change_count      BIGINT NOT NULL DEFAULT 0,
    stale             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX case_summaries_stale ON case_summaries(case_id) WHERE stale = 1;
CREATE INDEX case_summaries_by_update ON case_summaries(updated_at DESC, case_id);
-- A team's (an owner's) list in time order, with every filtered column: a filter reads the
-- index alone, never the rows with their shown summaries.
CREATE INDEX case_summaries_by_team ON case_summaries(team, updated_at DESC, case_id, owner,
    village_key, risk_level, next_followup_due, conflict_count, referral_statuses);
CREATE INDEX case_summaries_by_owner ON case_summaries(owner, updated_at DESC, case_id, team,
    village_key, risk_level, next_followup_due, conflict_count, referral_statuses);

-- Search terms of the names (suivi_core::names): a case matches a query holding all its terms.
CREATE TABLE case_search_terms (
    term    TEXT NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (term, case_id)
) WITHOUT ROWID;
CREATE INDEX case_search_terms_by_case ON case_search_terms(case_id);

-- Console logins. The cookie's token is random; only its SHA-256 is kept.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(user_id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
CREATE INDEX console_sessions_by_user ON console_sessions(user_id);

-- Failed logins in a row, per account ('user:<id>') and per address ('ip:<addr>'): they slow
-- the next attempt down, never lock anyone out.
CREATE TABLE login_failures (
    key     TEXT PRIMARY KEY,
    count   INTEGER NOT NULL,
    last_at INTEGER NOT NULL
);
