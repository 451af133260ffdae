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
CREATE INDEX audit_log_by_actor ON audit_log(actor, id);
CREATE INDEX feed_by_change ON feed(change_id);
