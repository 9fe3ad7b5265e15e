-- Storage quotas: which blobs (and manifests) count against a project, once
-- each, and the running total that quota checks compare with the limit.
ALTER TABLE projects ADD COLUMN storage_used INTEGER NOT NULL DEFAULT 0;

CREATE TABLE project_blobs (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    creation_time INTEGER NOT NULL,
    PRIMARY KEY (project_id, digest)
);
CREATE INDEX project_blobs_digest ON project_blobs (digest);

INSERT OR IGNORE INTO project_blobs (project_id, digest, size, creation_time)
    SELECT rb.project_id, rb.digest, MAX(b.size), MIN(rb.creation_time)
    FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
    GROUP BY rb.project_id, rb.digest;
INSERT OR IGNORE INTO project_blobs (project_id, digest, size, creation_time)
    SELECT project_id, digest, MAX(manifest_size), MIN(push_time) FROM artifacts GROUP BY project_id, digest;
UPDATE projects SET storage_used = (SELECT COALESCE(SUM(pb.size), 0) FROM project_blobs pb WHERE pb.project_id = projects.id);
