-- Form versions published from the server (`suivi-server form publish`). A version is never
-- changed once published; `retired_at` stops new records on it. `seq` orders the forms feed a
-- device follows with its `forms_seen`: set when a version is published, raised again when it
-- is retired, so a device learns both.
CREATE TABLE forms (
    form_id      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    retired_at   INTEGER,
    seq          INTEGER NOT NULL UNIQUE,
    PRIMARY KEY (form_id, version)
);
