-- The list rows of cases a first sync announces before their histories arrive (protocol 8):
-- listed and searched beside the cases held, read-only, hidden once the case itself is held,
-- and deleted at the end of the sync that brought them (and by a wipe). The same columns as
-- `cases`, plus the statuses of the case's referrals (space-separated, a space at each end).
CREATE TABLE arriving_cases (
    case_id           TEXT PRIMARY KEY,
    first_name        TEXT NOT NULL,
    last_name         TEXT NOT NULL,
    name_folded       TEXT NOT NULL,
    sex               TEXT,
    province          TEXT,
    commune           TEXT,
    village           TEXT,
    village_folded    TEXT,
    work_sector       TEXT,
    risk_level        TEXT,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    next_followup_due TEXT,
    referral_count    INTEGER NOT NULL,
    followup_count    INTEGER NOT NULL,
    conflict_count    INTEGER NOT NULL,
    name_terms        TEXT NOT NULL,
    village_key       TEXT,
    referral_statuses TEXT NOT NULL
);
