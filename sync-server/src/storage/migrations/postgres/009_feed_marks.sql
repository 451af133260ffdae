-- Feed marks cover each row's case id from the first row written after this upgrade on
-- (`FeedMarks`). Rows before keep the marks they have: phones hold them and send back the one
-- at their cursor, and a different one would mean a reset.
CREATE TABLE feed_mark_formula (
    one          INTEGER PRIMARY KEY CHECK (one = 1),
    case_id_from BIGINT NOT NULL
);
INSERT INTO feed_mark_formula (one, case_id_from) SELECT 1, seq + 1 FROM feed_head;

-- A device's own changes, listed back to it with each page (protocol 6) so it can witness one
-- it never wrote.
CREATE INDEX changes_by_origin ON changes(origin_device, id);

-- An erasure is acted on only when its `case.erased` row is in the audit log; a phone's forgery
-- report is recorded once: both looked up by action and exact subject.
CREATE INDEX audit_by_action_subject ON audit_log(action, subject);
