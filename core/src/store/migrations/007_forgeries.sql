-- Changes the server holds under this phone's actor that this phone never wrote (protocol 6):
-- each is reported to the server at the next sync, then kept as `reported`.
CREATE TABLE forgeries (
    hash     TEXT PRIMARY KEY,
    case_id  TEXT NOT NULL,
    found_at TEXT NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0
);

-- Cases that left this phone (removed, never granted) and the changes it had written in each:
-- the feed may list them back later, and one not among them was never written here.
CREATE TABLE removed_cases (
    case_id TEXT PRIMARY KEY
);
CREATE TABLE removed_own_changes (
    hash    TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES removed_cases(case_id)
);
