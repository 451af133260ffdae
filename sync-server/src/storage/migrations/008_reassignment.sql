-- Reassignment: a case's owner (`cases.created_by`: the agent whose caseload holds it) moves to
-- another agent of the team. The new owner's phones get the case's history as rows addressed
-- to them; the former owner may still push, until `until`, what its phones recorded before they
-- heard of it; its phones then remove the case, in `seq` order per user, as erasures are
-- applied.
CREATE TABLE case_handovers (
    case_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    until   INTEGER NOT NULL,
    PRIMARY KEY (case_id, user_id)
);
CREATE TABLE removals (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    case_id TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX removals_by_user ON removals(user_id, seq);
