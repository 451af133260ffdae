-- What the server verified about each pulled change: the user and device whose credential
-- pushed it and when it arrived (the server's clock). History shows these beside the device's
-- own claims.
CREATE TABLE change_origins (
    hash        TEXT PRIMARY KEY,
    case_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX change_origins_by_case ON change_origins(case_id);

-- Pulled cases that failed to apply, load or project: set aside, their changes kept in
-- pending_changes, readable in their last good state; the rest of the page goes on.
CREATE TABLE quarantine (
    case_id TEXT PRIMARY KEY,
    reason  TEXT NOT NULL,
    at      TEXT NOT NULL
);

-- Why the server refused this case's changes (dirty = 2), as it said.
ALTER TABLE case_sync ADD COLUMN refusal TEXT;
