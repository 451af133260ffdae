-- What each device said at its last sync, for its supervisor's console: when, its app's
-- version, and the cases still waiting on it once that sync's push was accepted.
ALTER TABLE devices ADD COLUMN last_sync_at INTEGER;
ALTER TABLE devices ADD COLUMN app_version TEXT;
ALTER TABLE devices ADD COLUMN waiting_cases INTEGER;
