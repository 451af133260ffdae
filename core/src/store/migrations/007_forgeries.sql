-- Changes the server holds under this phone's actor that this phone never wrote (protocol 6):
-- each is reported to the server at the next sync, then kept as `reported`.
CREATE TABLE forgeries (
    hash     TEXT PRIMARY KEY,
    case_id  TEXT NOT NULL,
    found_at TEXT NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0
);
