-- Erased cases (consent withdrawn, a data-protection request): only the id and when remain.
-- Every change, feed row, assignment and the case row are deleted with it. Devices read
-- erasures in `seq` order after the last one they applied, and delete each case.
CREATE TABLE erasures (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL UNIQUE,
    at      INTEGER NOT NULL
);

-- The marks of the feed rows an erasure removed: a device whose cursor sits on one still
-- proves the same history, and new rows chain on from the last mark, erased or not.
CREATE TABLE erased_feed_marks (
    seq  INTEGER PRIMARY KEY,
    mark BLOB
);
