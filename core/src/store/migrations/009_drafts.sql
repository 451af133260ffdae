-- A form's answers kept as the agent types them (drafts survive Android killing the app), one
-- per form and case ('' for a new case), in the encrypted store like everything else about a
-- child. Deleted with the case (erasure, removal), by a revocation's wipe, and with the store.
CREATE TABLE drafts (
    form_id    TEXT NOT NULL,
    case_id    TEXT NOT NULL DEFAULT '',
    inputs     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (form_id, case_id)
);
