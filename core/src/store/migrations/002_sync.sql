-- What the sync client needs: which cases hold changes the server has not acknowledged, and
-- which changes the server is known to have, per case.
CREATE TABLE case_sync (
    case_id      TEXT PRIMARY KEY REFERENCES case_docs(case_id) ON DELETE CASCADE,
    dirty        INTEGER NOT NULL DEFAULT 1,
    synced_heads TEXT NOT NULL DEFAULT ''
);
CREATE INDEX case_sync_dirty ON case_sync(dirty) WHERE dirty = 1;

-- Cases created before sync existed are all unsynced.
INSERT INTO case_sync (case_id, dirty, synced_heads) SELECT case_id, 1, '' FROM case_docs;
