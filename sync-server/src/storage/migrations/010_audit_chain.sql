-- Tamper evidence. Each audit row is chained to the one before it (`mark`, filled by the server
-- as rows are written, and for older rows when this migration runs), as feed rows are; `verify`
-- recomputes both chains and checks them against checkpoints journalled outside the database.
ALTER TABLE audit_log ADD COLUMN mark BLOB;
-- The console's access log filters by user.
CREATE INDEX audit_log_by_actor ON audit_log(actor, id);
-- `verify` asks of every change whether a feed row holds it.
CREATE INDEX feed_by_change ON feed(change_id);
