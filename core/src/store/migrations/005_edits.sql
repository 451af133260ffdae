-- Local saves counted per case. A sync no longer holds the store while a request is on the
-- network, so a case can be edited between the push that sent it and the reply that accepts
-- it: the reply marks it synced only if no save came in between.
ALTER TABLE case_sync ADD COLUMN edits INTEGER NOT NULL DEFAULT 0;
