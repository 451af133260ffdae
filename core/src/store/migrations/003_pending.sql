-- Pulled changes whose dependencies have not arrived yet (a case assigned late can reach a
-- device out of order). They wait here, encrypted like everything else, and are applied with
-- the next changes of their case.
CREATE TABLE pending_changes (
    id      INTEGER PRIMARY KEY,
    case_id TEXT NOT NULL,
    data    BLOB NOT NULL
);
CREATE INDEX pending_changes_by_case ON pending_changes(case_id, id);
