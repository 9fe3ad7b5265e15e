-- Identity and access: system configuration, robot accounts, portal
-- sessions, the audit log. Timestamps are milliseconds since the epoch.

CREATE UNIQUE INDEX users_email ON users (email) WHERE NOT deleted AND email <> '';

CREATE TABLE configurations (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    update_time BIGINT NOT NULL
);

-- name: "ci" (system level) or "<project>+ci" (project level); the login
-- name is the configured prefix (robot$) followed by it.
CREATE TABLE robots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    level TEXT NOT NULL,
    project_id BIGINT REFERENCES projects (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    secret_version BIGINT NOT NULL DEFAULT 1,
    permissions TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    duration BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    creator TEXT NOT NULL DEFAULT '',
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX robots_project ON robots (project_id);

-- A portal session; the cookie holds a random token, stored here hashed.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    creation_time BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE audit_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL DEFAULT 0,
    operation TEXT NOT NULL,
    operation_description TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource TEXT NOT NULL,
    username TEXT NOT NULL,
    is_successful BOOLEAN NOT NULL,
    op_time BIGINT NOT NULL
);
CREATE INDEX audit_logs_time ON audit_logs (op_time);
CREATE INDEX audit_logs_project ON audit_logs (project_id, op_time);
