-- Case documents (Automerge, saved incrementally) and the projections that lists and search read.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE case_docs (
    case_id     TEXT PRIMARY KEY,
    snapshot    BLOB NOT NULL,
    chunk_count INTEGER NOT NULL DEFAULT 0
);

-- Incremental saves appended after the snapshot; folded into it now and then.
CREATE TABLE case_chunks (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL REFERENCES case_docs(case_id) ON DELETE CASCADE,
    data    BLOB NOT NULL
);
CREATE INDEX case_chunks_by_case ON case_chunks(case_id, id);

CREATE TABLE cases (
    case_id          TEXT PRIMARY KEY REFERENCES case_docs(case_id) ON DELETE CASCADE,
    first_name       TEXT NOT NULL,
    last_name        TEXT NOT NULL,
    name_folded      TEXT NOT NULL,
    sex              TEXT,
    province         TEXT,
    commune          TEXT,
    village          TEXT,
    village_folded   TEXT,
    work_sector      TEXT,
    risk_level       TEXT,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    next_followup_due TEXT,
    referral_count   INTEGER NOT NULL,
    followup_count   INTEGER NOT NULL,
    conflict_count   INTEGER NOT NULL
);
CREATE INDEX cases_by_village ON cases(village_folded);
CREATE INDEX cases_by_risk ON cases(risk_level);
CREATE INDEX cases_by_due ON cases(next_followup_due);
CREATE INDEX cases_by_update ON cases(updated_at);

CREATE TABLE referrals (
    referral_id       TEXT PRIMARY KEY,
    case_id           TEXT NOT NULL REFERENCES case_docs(case_id) ON DELETE CASCADE,
    service_type      TEXT,
    provider          TEXT,
    urgency           TEXT,
    status            TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    previous_referral TEXT,
    next_referral     TEXT
);
CREATE INDEX referrals_by_case ON referrals(case_id);
CREATE INDEX referrals_by_status ON referrals(status);

CREATE TABLE followups (
    followup_id    TEXT PRIMARY KEY,
    case_id        TEXT NOT NULL REFERENCES case_docs(case_id) ON DELETE CASCADE,
    visit_date     TEXT,
    visit_type     TEXT,
    risk_level_now TEXT,
    next_visit_due TEXT,
    created_by     TEXT NOT NULL
);
CREATE INDEX followups_by_case ON followups(case_id);
