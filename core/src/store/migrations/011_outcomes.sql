-- A case's outcome and closure in its list row (core::outcome, case_doc::closure): the stage,
-- withdrawn or prevented, whether a visit not yet acknowledged counted, and the closure's
-- status when the case is not simply open. Rows projected before are projected again from
-- their documents when the store opens (`Store::project_outcomes`).
ALTER TABLE cases ADD COLUMN stage TEXT;
ALTER TABLE cases ADD COLUMN classification TEXT;
ALTER TABLE cases ADD COLUMN outcome_provisional INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN closure TEXT;
-- The day the child reaches the programme's age limit (YYYY-MM-DD): read against today.
ALTER TABLE cases ADD COLUMN age_limit_on TEXT;
