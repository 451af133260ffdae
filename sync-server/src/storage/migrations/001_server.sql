-- Accounts, devices, caseload ownership, and every accepted Automerge change with its place in
-- the feed that devices pull from.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'officer', 'admin')),
    team          TEXT NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE enrollment_codes (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(user_id),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(user_id),
    actor       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL,
    revoked_at  INTEGER,
    wiped_at    INTEGER
);

CREATE TABLE cases (
    case_id    TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    team       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX cases_by_team ON cases(team);
CREATE INDEX cases_by_creator ON cases(created_by);

CREATE TABLE assignments (
    case_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(user_id),
    assigned_at INTEGER NOT NULL,
    PRIMARY KEY (case_id, user_id)
);
CREATE INDEX assignments_by_user ON assignments(user_id);

CREATE TABLE changes (
    id            INTEGER PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,
    case_id       TEXT NOT NULL,
    origin_device TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    data          BLOB NOT NULL
);
CREATE INDEX changes_by_case ON changes(case_id, id);

-- The feed devices pull from, in acceptance order (a causal order). `audience` is set on rows
-- re-appended for one user when a case is assigned to them after the fact.
CREATE TABLE feed (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id INTEGER NOT NULL REFERENCES changes(id),
    case_id   TEXT NOT NULL,
    audience  TEXT
);

-- Who did what on the server: enrollments, revocations, assignments, refusals.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL
);
