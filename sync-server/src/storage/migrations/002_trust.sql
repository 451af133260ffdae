-- The feed mark: a running SHA-256 over the feed (previous mark, seq, change hash, audience),
-- filled in by the server as rows are appended (and for older rows when this migration runs).
-- A device sends back the mark of its cursor; a server whose feed does not hold the same
-- history up to there (restored from a backup, replaced) notices and tells it.
ALTER TABLE feed ADD COLUMN mark BLOB;

-- Cases an admin set aside because their stored changes fail validation: no longer served,
-- pushes to them refused.
CREATE TABLE quarantined_cases (
    case_id TEXT PRIMARY KEY,
    reason  TEXT NOT NULL,
    at      INTEGER NOT NULL
);
