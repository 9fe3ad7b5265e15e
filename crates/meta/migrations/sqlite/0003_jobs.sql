-- Background work: executions, their tasks, and task logs.
CREATE TABLE executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor_type TEXT NOT NULL,
    vendor_id INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    extra_attrs TEXT NOT NULL DEFAULT '{}',
    stop_requested BOOLEAN NOT NULL DEFAULT FALSE,
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    update_time INTEGER NOT NULL
);
CREATE INDEX executions_vendor ON executions (vendor_type, vendor_id, id);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    vendor_type TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL DEFAULT '',
    run_count INTEGER NOT NULL DEFAULT 0,
    extra_attrs TEXT NOT NULL DEFAULT '{}',
    worker TEXT,
    heartbeat INTEGER,
    progress_done INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    creation_time INTEGER NOT NULL,
    start_time INTEGER,
    update_time INTEGER NOT NULL,
    end_time INTEGER
);
CREATE INDEX tasks_execution ON tasks (execution_id, id);
CREATE INDEX tasks_open ON tasks (status, vendor_type, id);

CREATE TABLE task_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    time INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX task_logs_task ON task_logs (task_id, id);
