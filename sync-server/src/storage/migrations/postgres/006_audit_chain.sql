-- Tamper evidence. Each audit row is chained to the one before it (`mark`), as feed rows are;
-- `audit_head` is the log's sequencer (the last id and its mark), locked until commit by each
-- transaction that writes a row, so ids follow commit order with no gap. Rows written before
-- this migration get their marks when the server opens the database.
ALTER TABLE audit_log ADD COLUMN mark BYTEA;
CREATE TABLE audit_head (
    id   BIGINT NOT NULL,
    mark BYTEA NOT NULL
);
INSERT INTO audit_head (id, mark) VALUES (0, '');
-- Ids come from `audit_head` only: an insert that does not say its id (an older server still
-- running during an upgrade) fails rather than take an id the sequencer will hand out.
ALTER TABLE audit_log ALTER COLUMN id DROP DEFAULT;
-- What each erased feed row's mark was computed from (see the SQLite migration 010).
ALTER TABLE erased_feed_marks ADD COLUMN case_id TEXT;
ALTER TABLE erased_feed_marks ADD COLUMN hash TEXT;
ALTER TABLE erased_feed_marks ADD COLUMN audience TEXT;
CREATE INDEX audit_log_by_actor ON audit_log(actor, id);
CREATE INDEX feed_by_change ON feed(change_id);
