-- Berth schema, SQLite dialect. Timestamps are milliseconds since the epoch.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    realname TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    sysadmin BOOLEAN NOT NULL DEFAULT FALSE,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (username) WHERE NOT deleted;

CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    owner_id BIGINT NOT NULL REFERENCES users (id),
    public BOOLEAN NOT NULL DEFAULT FALSE,
    metadata TEXT NOT NULL DEFAULT '{}',
    registry_id BIGINT,
    storage_limit BIGINT NOT NULL DEFAULT -1,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

CREATE TABLE project_members (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    role BIGINT NOT NULL,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    UNIQUE (project_id, entity_type, entity_id)
);
CREATE INDEX project_members_entity ON project_members (entity_type, entity_id);

CREATE TABLE repositories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    pull_count BIGINT NOT NULL DEFAULT 0,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX repositories_project ON repositories (project_id);

-- status: none | delete (marked by GC) | deleting (being swept)
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'none',
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX blobs_status ON blobs (status, update_time);

-- Which repository may read which blob.
CREATE TABLE repository_blobs (
    repository TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES blobs (digest),
    project_id BIGINT NOT NULL REFERENCES projects (id),
    creation_time BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);
CREATE INDEX repository_blobs_project ON repository_blobs (project_id, digest);

-- Manifest bytes, content-addressed and shared by every artifact with the digest.
CREATE TABLE manifests (
    digest TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    body BLOB NOT NULL,
    creation_time BIGINT NOT NULL
);

CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL,
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES manifests (digest),
    kind TEXT NOT NULL,
    media_type TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    artifact_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    manifest_size BIGINT NOT NULL,
    subject_digest TEXT,
    annotations TEXT NOT NULL DEFAULT '{}',
    extra_attrs TEXT NOT NULL DEFAULT '{}',
    push_time BIGINT NOT NULL,
    pull_time BIGINT,
    UNIQUE (repository_id, digest)
);
CREATE INDEX artifacts_subject ON artifacts (repository_id, subject_digest);
CREATE INDEX artifacts_digest ON artifacts (digest);

-- Which manifest references which blob (config and layers).
CREATE TABLE artifact_blobs (
    artifact_id BIGINT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    PRIMARY KEY (artifact_id, digest)
);
CREATE INDEX artifact_blobs_digest ON artifact_blobs (digest);

-- Children of an index.
CREATE TABLE artifact_references (
    parent_id BIGINT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    child_id BIGINT NOT NULL REFERENCES artifacts (id),
    child_digest TEXT NOT NULL,
    platform TEXT,
    annotations TEXT,
    urls TEXT,
    PRIMARY KEY (parent_id, child_digest)
);
CREATE INDEX artifact_references_child ON artifact_references (child_id);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    artifact_id BIGINT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    push_time BIGINT NOT NULL,
    pull_time BIGINT,
    UNIQUE (repository_id, name)
);
CREATE INDEX tags_artifact ON tags (artifact_id);

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    project_id BIGINT NOT NULL,
    repository TEXT NOT NULL,
    size BIGINT NOT NULL DEFAULT 0,
    hash_state BLOB NOT NULL,
    backend_state TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX uploads_project ON uploads (project_id);
CREATE INDEX uploads_update_time ON uploads (update_time);
