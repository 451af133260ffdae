-- A pull reads only its caseload's rows. Each feed row carries its case's owner (creator) and
-- team, which never change (assignments add readers, in `assignments` and audience rows), and
-- indexes put them before the position: "anything new?" is a few index range scans in the
-- device's scope, not a walk over every team's rows since its cursor.
ALTER TABLE feed ADD COLUMN owner TEXT;
ALTER TABLE feed ADD COLUMN team TEXT;
UPDATE feed SET
    owner = (SELECT k.created_by FROM cases k WHERE k.case_id = feed.case_id),
    team = (SELECT k.team FROM cases k WHERE k.case_id = feed.case_id);
CREATE INDEX feed_by_owner ON feed(owner, seq) WHERE audience IS NULL;
CREATE INDEX feed_by_team ON feed(team, seq) WHERE audience IS NULL;
CREATE INDEX feed_by_audience ON feed(audience, seq) WHERE audience IS NOT NULL;
CREATE INDEX feed_by_case ON feed(case_id, seq);
