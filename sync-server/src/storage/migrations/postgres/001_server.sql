-- The server's tables on PostgreSQL: the same data as the SQLite store's five migrations, in
-- one step. Two differences, both for several server instances on one database:
--   * `feed_head` is the feed's sequencer: one row holding the last position and its mark. A
--     transaction that appends feed rows (or records an erasure) locks it, numbers its rows
--     after it, and keeps the lock until it commits. Positions are therefore taken in commit
--     order and have no gaps: a reader that sees the head at N sees every row up to N, and a
--     writer that started early but commits late gets positions after the ones already read.
--   * change payloads are sealed by the server (`storage::sealed`): PostgreSQL has no
--     SQLCipher, and a dump or a stolen disk must not reveal children's data.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'officer', 'admin')),
    team          TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE enrollment_codes (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(user_id),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(user_id),
    actor       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    revoked_at  BIGINT,
    wiped_at    BIGINT
);

CREATE TABLE cases (
    case_id    TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    team       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX cases_by_team ON cases(team);
CREATE INDEX cases_by_creator ON cases(created_by);

CREATE TABLE assignments (
    case_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(user_id),
    assigned_at BIGINT NOT NULL,
    PRIMARY KEY (case_id, user_id)
);
CREATE INDEX assignments_by_user ON assignments(user_id);

-- `data` is sealed (scheme byte, nonce, ciphertext).
CREATE TABLE changes (
    id            BIGSERIAL PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,
    case_id       TEXT NOT NULL,
    origin_device TEXT NOT NULL,
    received_at   BIGINT NOT NULL,
    data          BYTEA NOT NULL
);
CREATE INDEX changes_by_case ON changes(case_id, id);

CREATE TABLE feed (
    seq       BIGINT PRIMARY KEY,
    change_id BIGINT NOT NULL REFERENCES changes(id),
    case_id   TEXT NOT NULL,
    audience  TEXT,
    owner     TEXT NOT NULL,
    team      TEXT NOT NULL,
    mark      BYTEA NOT NULL
);
CREATE INDEX feed_by_owner ON feed(owner, seq) WHERE audience IS NULL;
CREATE INDEX feed_by_team ON feed(team, seq) WHERE audience IS NULL;
CREATE INDEX feed_by_audience ON feed(audience, seq) WHERE audience IS NOT NULL;
CREATE INDEX feed_by_case ON feed(case_id, seq);

CREATE TABLE feed_head (
    one         BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq         BIGINT NOT NULL,
    mark        BYTEA NOT NULL,
    erasure_seq BIGINT NOT NULL
);
INSERT INTO feed_head (seq, mark, erasure_seq) VALUES (0, '', 0);

CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL
);

CREATE TABLE quarantined_cases (
    case_id TEXT PRIMARY KEY,
    reason  TEXT NOT NULL,
    at      BIGINT NOT NULL
);

CREATE TABLE device_usage (
    device_id TEXT NOT NULL,
    day       BIGINT NOT NULL,
    new_cases BIGINT NOT NULL DEFAULT 0,
    bytes     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, day)
);

CREATE TABLE device_quotas (
    device_id         TEXT PRIMARY KEY REFERENCES devices(device_id),
    new_cases_per_day BIGINT NOT NULL,
    bytes_per_day     BIGINT NOT NULL
);

CREATE TABLE erasures (
    seq     BIGINT PRIMARY KEY,
    case_id TEXT NOT NULL UNIQUE,
    at      BIGINT NOT NULL
);

CREATE TABLE erased_feed_marks (
    seq  BIGINT PRIMARY KEY,
    mark BYTEA NOT NULL
);

-- Values the server keeps about itself: the key check (a constant sealed under this
-- database's key).
CREATE TABLE server_meta (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
