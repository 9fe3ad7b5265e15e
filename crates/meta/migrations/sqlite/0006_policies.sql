-- Tag immutability rules, per project; selectors as Harbor's JSON.
CREATE TABLE immutable_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    priority INTEGER NOT NULL DEFAULT 0,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    tag_selectors TEXT NOT NULL,
    scope_selectors TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);
CREATE INDEX immutable_rules_project ON immutable_rules (project_id, id);

-- Tag retention: one policy per project (Harbor's policy JSON).
CREATE TABLE retention_policies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL UNIQUE REFERENCES projects (id) ON DELETE CASCADE,
    policy TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);
