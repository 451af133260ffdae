-- Tamper evidence. Each audit row is chained to the one before it (`mark`, filled by the server
-- as rows are written, and for older rows when this migration runs), as feed rows are; `verify`
-- recomputes both chains and checks them against checkpoints journalled outside the database.
ALTER TABLE audit_log ADD COLUMN mark BLOB;
-- The console's access log filters by user.
CREATE INDEX audit_log_by_actor ON audit_log(actor, id);
-- An erasure keeps, with each removed feed row's mark, what the mark was computed from (the
-- case, the change's hash, the audience; no content), so `verify` recomputes the chain across
-- erased rows and checks each names an erased case. Rows erased before this migration keep
-- their marks only.
ALTER TABLE erased_feed_marks ADD COLUMN case_id TEXT;
ALTER TABLE erased_feed_marks ADD COLUMN hash TEXT;
ALTER TABLE erased_feed_marks ADD COLUMN audience TEXT;
-- `verify` asks of every change whether a feed row holds it.
CREATE INDEX feed_by_change ON feed(change_id);
