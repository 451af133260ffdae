-- A search as forgiving as an agent types, the same as the console's (core::names): each case's
-- name keys and their prefixes, space-separated with a space at each end, and its village's
-- place key. Existing rows are filled in from their own names when the store opens
-- (projection::fill_search_keys), no document read.
ALTER TABLE cases ADD COLUMN name_terms TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN village_key TEXT;
CREATE INDEX cases_by_village_key ON cases(village_key);
