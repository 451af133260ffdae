-- Form versions published from the server; see the SQLite migration 012 for the why.
CREATE TABLE forms (
    form_id      TEXT NOT NULL,
    version      BIGINT NOT NULL,
    definition   TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    retired_at   BIGINT,
    seq          BIGINT NOT NULL UNIQUE,
    PRIMARY KEY (form_id, version)
);
