-- Cron schedules of background work (GC, retention, audit-log purge): one
-- per kind of work and vendor (a project's retention policy, say).
CREATE TABLE schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor_type TEXT NOT NULL,
    vendor_id INTEGER NOT NULL DEFAULT 0,
    -- Harbor's schedule type: Hourly, Daily, Weekly, Custom
    kind TEXT NOT NULL,
    cron TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    next_run INTEGER NOT NULL,
    creation_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    UNIQUE (vendor_type, vendor_id)
);
CREATE INDEX schedules_next_run ON schedules (next_run);
