-- Requests for more storage (core::storage_requests): a project admin asks
-- for a larger quota, a system admin approves or declines. At most one
-- pending request per project; requests go with their project.
CREATE TABLE storage_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    requested_storage BIGINT NOT NULL,
    -- the project's limit when the request was made (-1: unlimited)
    current_storage_limit BIGINT NOT NULL,
    reason TEXT NOT NULL,
    -- pending, approved or declined
    status TEXT NOT NULL DEFAULT 'pending',
    requester TEXT NOT NULL,
    reviewer TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE UNIQUE INDEX storage_requests_one_pending ON storage_requests (project_id) WHERE status = 'pending';
CREATE INDEX storage_requests_project ON storage_requests (project_id, id);
CREATE INDEX storage_requests_status ON storage_requests (status, id);
