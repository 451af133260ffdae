-- Per-device daily quotas. Usage counts what a device stored on each UTC day (day = unix time
-- / 86400): new cases and bytes of changes. Old days are pruned as new ones are written.
CREATE TABLE device_usage (
    device_id TEXT NOT NULL,
    day       INTEGER NOT NULL,
    new_cases INTEGER NOT NULL DEFAULT 0,
    bytes     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, day)
);

-- An admin's override of the default quotas, for one device (an import, the benchmark).
CREATE TABLE device_quotas (
    device_id         TEXT PRIMARY KEY REFERENCES devices(device_id),
    new_cases_per_day INTEGER NOT NULL,
    bytes_per_day     INTEGER NOT NULL
);
