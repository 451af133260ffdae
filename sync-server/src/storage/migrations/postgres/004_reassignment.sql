-- Reassignment (as the SQLite store's 008_reassignment.sql).
CREATE TABLE case_handovers (
    case_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    until   BIGINT NOT NULL,
    PRIMARY KEY (case_id, user_id)
);
CREATE TABLE removals (
    seq     BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    case_id TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX removals_by_user ON removals(user_id, seq);
