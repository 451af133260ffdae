-- What each device said at its last sync (as the SQLite store's 007_device_status.sql).
ALTER TABLE devices ADD COLUMN last_sync_at BIGINT;
ALTER TABLE devices ADD COLUMN app_version TEXT;
ALTER TABLE devices ADD COLUMN waiting_cases BIGINT;
