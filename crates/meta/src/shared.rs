// The MetaStore implementation shared by both backends. This file is
// `include!`d by `sqlite.rs` and `postgres.rs`, each of which defines
// `Db` (the sqlx database), `Store` (with `reader()` / `writer()` pools)
// and the few dialect helpers used here. SQL is written once, in the
// subset both dialects accept: `$n` placeholders, `ON CONFLICT`,
// `RETURNING`, and explicit casts where result types differ.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use berth_core::access::{ProjectRef, Role, Visibility};
use berth_core::clock::Millis;
use berth_core::error::{CoreError, CoreResult};
use berth_core::model::*;
use berth_core::ports::{AccountStore, BlobPresence, GcStore, TagGuard, MetaStore, ProjectStore, RegistryStore, StorageRequestStore, SystemStore, UntaggedArtifact, UntaggedPreview, UserStore};
use berth_core::query::*;
use berth_oci::{Digest, Platform, Reference, RepoName, Tag};
use bytes::Bytes;
use sqlx::{QueryBuilder, Row};

// Durability: operations whose success a client is told about (a 201 for a
// blob or manifest, a created or deleted project, a deletion) run on a
// connection from `durable()`, which on SQLite commits with
// `synchronous = FULL`; progress records (upload sessions, leases, pull
// counts) use the default connection and survive a process crash but may
// roll back on a power cut, which only makes a client retry.

fn db(e: sqlx::Error) -> CoreError {
    if let sqlx::Error::Database(d) = &e {
        // PostgreSQL refuses NUL in text (22021, 22P05): the input was bad,
        // not the store.
        if matches!(d.code().as_deref(), Some("22021") | Some("22P05")) {
            return CoreError::BadRequest("text must not contain NUL characters".into());
        }
    }
    if is_aborted(&e) {
        return CoreError::Internal(format!("{ABORTED}: {e}"));
    }
    CoreError::Internal(format!("metadata store: {e}"))
}

/// The start of the message of a transaction PostgreSQL aborted to break a
/// deadlock (40P01) or a serialization failure (40001): nothing of it was
/// committed, and running it again is the documented remedy.
const ABORTED: &str = "metadata store: transaction aborted by the database";

fn is_aborted(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01") | Some("40001")))
}

/// Runs a write transaction again (up to five times in all, after a short
/// random pause) when the database aborted it. Only for operations that are
/// one transaction, so that an aborted try left nothing behind.
async fn retry_aborted<T, F, Fut>(op: F) -> CoreResult<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = CoreResult<T>>,
{
    let mut tries = 1;
    loop {
        match op().await {
            Err(CoreError::Internal(m)) if m.starts_with(ABORTED) && tries < 5 => {
                tracing::debug!(tries, error = %m, "retrying an aborted transaction");
                let jitter = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos() % 20)
                    .unwrap_or(0);
                let pause = 5 * tries + jitter as u64;
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                tries += 1;
            }
            r => return r,
        }
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn parse_digest(s: &str) -> CoreResult<Digest> {
    Digest::parse(s).map_err(|_| CoreError::Internal(format!("corrupt digest in metadata store: {s:?}")))
}

fn json_map(s: &str) -> BTreeMap<String, String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// `%`, `_` and `\` in a user's search text match literally.
fn like_pattern(text: &str, fuzzy: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    if fuzzy {
        out.push('%');
    }
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    if fuzzy {
        out.push('%');
    }
    out
}

fn push_text_match(qb: &mut QueryBuilder<'_, Db>, column: &str, m: &TextMatch) {
    match m {
        TextMatch::Exact(v) => {
            qb.push(format!(" AND {column} = "));
            qb.push_bind(v.clone());
        }
        TextMatch::Fuzzy(v) => {
            qb.push(format!(" AND lower({column}) LIKE "));
            qb.push_bind(like_pattern(v, true));
            qb.push(" ESCAPE '\\'");
        }
    }
}

/// Restricts `projects p` to what `visibility` allows.
fn push_visibility(qb: &mut QueryBuilder<'_, Db>, visibility: &Visibility) {
    if let Visibility::Some { public, projects } = visibility {
        qb.push(" AND (");
        qb.push(if *public { "p.public = TRUE" } else { "1 = 0" });
        if !projects.is_empty() {
            qb.push(" OR p.id IN (");
            let mut sep = qb.separated(", ");
            for id in projects {
                sep.push_bind(*id);
            }
            sep.push_unseparated(")");
        }
        qb.push(")");
    }
}

fn push_order<F: Copy>(qb: &mut QueryBuilder<'_, Db>, sort: &[Sort<F>], column: impl Fn(F) -> &'static str, default: &str) {
    qb.push(" ORDER BY ");
    for s in sort {
        qb.push(column(s.field));
        qb.push(if s.descending { " DESC, " } else { " ASC, " });
    }
    qb.push(default);
}

const PROJECT_COLUMNS: &str = "p.id, p.name, p.owner_id, COALESCE(u.username, ''), p.public, p.metadata, p.registry_id, p.storage_limit, p.storage_used, p.creation_time, p.update_time, (SELECT COUNT(*) FROM repositories r WHERE r.project_id = p.id)";

type ProjectRow = (i64, String, i64, String, bool, String, Option<i64>, i64, i64, i64, i64, i64);

fn project_from(r: ProjectRow) -> Project {
    Project {
        id: r.0,
        name: r.1,
        owner_id: r.2,
        owner_name: r.3,
        public: r.4,
        metadata: json_map(&r.5),
        registry_id: r.6,
        storage_limit: r.7,
        storage_used: r.8,
        creation_time: r.9,
        update_time: r.10,
        repo_count: r.11,
    }
}

const REPOSITORY_COLUMNS: &str = "r.id, r.project_id, r.name, r.description, (SELECT COUNT(*) FROM artifacts a WHERE a.repository_id = r.id), r.pull_count, r.creation_time, r.update_time";

type RepositoryRow = (i64, i64, String, String, i64, i64, i64, i64);

fn repository_from(r: RepositoryRow) -> Repository {
    Repository {
        id: r.0,
        project_id: r.1,
        name: r.2,
        description: r.3,
        artifact_count: r.4,
        pull_count: r.5,
        creation_time: r.6,
        update_time: r.7,
    }
}

const ARTIFACT_COLUMNS: &str = "a.id, a.project_id, a.repository_id, r.name AS repository_name, a.digest, a.kind, a.media_type, a.manifest_media_type, a.artifact_type, a.size, a.manifest_size, a.subject_digest, a.annotations, a.extra_attrs, a.push_time, a.pull_time";

#[derive(sqlx::FromRow)]
struct ArtifactRow {
    id: i64,
    project_id: i64,
    repository_id: i64,
    repository_name: String,
    digest: String,
    kind: String,
    media_type: String,
    manifest_media_type: String,
    artifact_type: String,
    size: i64,
    manifest_size: i64,
    subject_digest: Option<String>,
    annotations: String,
    extra_attrs: String,
    push_time: i64,
    pull_time: Option<i64>,
}

impl ArtifactRow {
    fn into_artifact(self) -> CoreResult<Artifact> {
        Ok(Artifact {
            id: self.id,
            project_id: self.project_id,
            repository_id: self.repository_id,
            repository_name: self.repository_name,
            digest: parse_digest(&self.digest)?,
            kind: self.kind,
            media_type: self.media_type,
            manifest_media_type: self.manifest_media_type,
            artifact_type: self.artifact_type,
            size: self.size,
            manifest_size: self.manifest_size,
            subject: self.subject_digest.as_deref().map(parse_digest).transpose()?,
            annotations: json_map(&self.annotations),
            extra_attrs: serde_json::from_str(&self.extra_attrs).unwrap_or(serde_json::Value::Null),
            push_time: self.push_time,
            pull_time: self.pull_time,
            tags: vec![],
            references: vec![],
        })
    }
}

type ReferenceRow = (i64, i64, String, Option<String>, Option<String>, Option<String>);

type UploadRow = (String, i64, String, i64, Vec<u8>, String, String, i64, i64);

fn upload_from(r: UploadRow) -> Upload {
    Upload {
        id: r.0,
        project_id: r.1,
        repository: r.2,
        size: r.3 as u64,
        hash_state: r.4,
        backend_state: r.5,
        owner: r.6,
        creation_time: r.7,
        update_time: r.8,
    }
}

const UPLOAD_COLUMNS: &str = "id, project_id, repository, size, hash_state, backend_state, owner, creation_time, update_time";

type UserRow = (i64, String, String, String, String, String, bool, i64, i64);

fn user_from(r: UserRow) -> User {
    User {
        id: r.0,
        username: r.1,
        email: r.2,
        realname: r.3,
        comment: r.4,
        password_hash: r.5,
        sysadmin: r.6,
        creation_time: r.7,
        update_time: r.8,
    }
}

const USER_COLUMNS: &str = "id, username, email, realname, comment, password_hash, sysadmin, creation_time, update_time";

impl Store {
    /// Sets a project's storage quota; `false` if there is no such project.
    async fn update_storage_limit(conn: &mut <Db as sqlx::Database>::Connection, id: ProjectId, limit: i64, now: Millis) -> CoreResult<bool> {
        let r = sqlx::query("UPDATE projects SET storage_limit = $1, update_time = $2 WHERE id = $3")
            .bind(limit)
            .bind(now)
            .bind(id)
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    /// Tags and references of the given artifacts, attached in place.
    async fn attach_details(&self, artifacts: &mut [Artifact]) -> CoreResult<()> {
        if artifacts.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = artifacts.iter().map(|a| a.id).collect();
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, repository_id, artifact_id, name, push_time, pull_time FROM tags WHERE artifact_id IN (",
        );
        let mut sep = qb.separated(", ");
        for id in &ids {
            sep.push_bind(*id);
        }
        sep.push_unseparated(") ORDER BY push_time DESC, id DESC");
        let tags: Vec<(i64, i64, i64, String, i64, Option<i64>)> =
            qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT parent_id, child_id, child_digest, platform, annotations, urls FROM artifact_references WHERE parent_id IN (",
        );
        let mut sep = qb.separated(", ");
        for id in &ids {
            sep.push_bind(*id);
        }
        sep.push_unseparated(") ORDER BY parent_id, child_digest");
        let refs: Vec<ReferenceRow> =
            qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        let mut by_id: HashMap<i64, &mut Artifact> = artifacts.iter_mut().map(|a| (a.id, a)).collect();
        for t in tags {
            if let Some(a) = by_id.get_mut(&t.2) {
                a.tags.push(TagRecord {
                    id: t.0,
                    repository_id: t.1,
                    artifact_id: t.2,
                    name: t.3,
                    push_time: t.4,
                    pull_time: t.5,
                });
            }
        }
        for r in refs {
            if let Some(a) = by_id.get_mut(&r.0) {
                a.references.push(ArtifactReference {
                    parent_id: r.0,
                    child_id: Some(r.1),
                    child_digest: parse_digest(&r.2)?,
                    platform: r.3.as_deref().and_then(|p| serde_json::from_str::<Platform>(p).ok()),
                    annotations: r.4.as_deref().and_then(|p| serde_json::from_str(p).ok()),
                    urls: r.5.as_deref().and_then(|p| serde_json::from_str(p).ok()),
                });
            }
        }
        Ok(())
    }

    /// Deletes the artifacts with `ids` (their tags, blob and child
    /// references cascade), plus, recursively, their accessories and the
    /// children of deleted indexes that nothing else references or tags.
    /// Refuses if something outside the set still references one of them.
    /// Counts `items` (digest, size) against the project's storage quota:
    /// those the project does not hold yet are added to `project_blobs` and
    /// their size to `storage_used`, in one conditional `UPDATE` that fails
    /// when the limit would be passed. The project row's lock (PostgreSQL)
    /// or the single writer (SQLite) serialises parallel pushes, so they
    /// can never take a project over its limit together. On refusal nothing
    /// of the charge is left (a savepoint) and the caller's transaction is
    /// still usable.
    async fn charge(tx: &mut sqlx::Transaction<'_, Db>, project_id: i64, items: &[(String, i64)], now: Millis) -> CoreResult<QuotaCharge> {
        let mut items: Vec<&(String, i64)> = items.iter().collect();
        // One order for every transaction, so two never wait on each other.
        items.sort();
        items.dedup_by(|a, b| a.0 == b.0);
        let mut sp = sqlx::Connection::begin(&mut **tx).await.map_err(db)?;
        let mut added = 0i64;
        for (digest, size) in items {
            let r = sqlx::query(
                "INSERT INTO project_blobs (project_id, digest, size, creation_time) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (project_id, digest) DO NOTHING",
            )
            .bind(project_id)
            .bind(digest)
            .bind(*size)
            .bind(now)
            .execute(&mut *sp)
            .await
            .map_err(db)?;
            if r.rows_affected() > 0 {
                added += *size;
            }
        }
        if added == 0 {
            sp.commit().await.map_err(db)?;
            return Ok(QuotaCharge::default());
        }
        // With `quota_per_project_enable` off, usage is still counted (so
        // that turning it on needs no recount) but no limit applies: the
        // charge reports an unlimited quota and raises no quota events.
        let row: Option<(i64, i64)> = sqlx::query_as(&format!(
            "UPDATE projects SET storage_used = storage_used + $1
             WHERE id = $2 AND (storage_limit < 0 OR storage_used + $1 <= storage_limit OR NOT {QUOTA_ON})
             RETURNING storage_used, CASE WHEN {QUOTA_ON} THEN storage_limit ELSE -1 END"
        ))
        .bind(added)
        .bind(project_id)
        .fetch_optional(&mut *sp)
        .await
        .map_err(db)?;
        match row {
            Some((used, limit)) => {
                sp.commit().await.map_err(db)?;
                Ok(QuotaCharge { added, used, limit })
            }
            None => {
                sp.rollback().await.map_err(db)?;
                let (used, limit): (i64, i64) = sqlx::query_as("SELECT storage_used, storage_limit FROM projects WHERE id = $1")
                    .bind(project_id)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(db)?;
                Err(CoreError::QuotaExceeded { adding: added, used, limit })
            }
        }
    }

    /// Stops counting `digests` against the project where nothing in it
    /// needs them any more: no artifact of the project is that manifest or
    /// references that blob and, with `unless_linked`, no repository of the
    /// project links it. As Harbor does, deleting an artifact frees its
    /// blobs at once even though the repository may still link them; GC
    /// removes such links later.
    async fn release(tx: &mut sqlx::Transaction<'_, Db>, project_id: i64, digests: &[String], unless_linked: bool) -> CoreResult<()> {
        let sql = format!(
            "DELETE FROM project_blobs WHERE project_id = $1 AND digest = $2
               AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.project_id = $1 AND a.digest = $2)
               AND NOT EXISTS (SELECT 1 FROM artifact_blobs ab JOIN artifacts a ON a.id = ab.artifact_id
                               WHERE ab.digest = $2 AND a.project_id = $1){}
             RETURNING size",
            if unless_linked {
                " AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.project_id = $1 AND rb.digest = $2)"
            } else {
                ""
            }
        );
        let mut digests: Vec<&String> = digests.iter().collect();
        digests.sort();
        digests.dedup();
        let mut freed = 0i64;
        for d in digests {
            let row: Option<(i64,)> = sqlx::query_as(&sql)
                .bind(project_id)
                .bind(d)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db)?;
            freed += row.map(|r| r.0).unwrap_or(0);
        }
        if freed > 0 {
            sqlx::query("UPDATE projects SET storage_used = storage_used - $1 WHERE id = $2")
                .bind(freed)
                .bind(project_id)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    /// Lets `repository` read the blob (upload completion and mount).
    async fn link_blob(
        tx: &mut sqlx::Transaction<'_, Db>,
        project_id: ProjectId,
        repository: &RepoName,
        digest: &Digest,
        now: Millis,
    ) -> CoreResult<()> {
        sqlx::query(
            "INSERT INTO repository_blobs (repository, digest, project_id, creation_time) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repository, digest) DO NOTHING",
        )
        .bind(repository.as_str())
        .bind(digest.as_str())
        .bind(project_id)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn delete_artifacts_deep(
        tx: &mut sqlx::Transaction<'_, Db>,
        repository_id: i64,
        start: Vec<i64>,
        check_parents: bool,
        immutable: TagGuard<'_>,
    ) -> CoreResult<DeletedArtifacts> {
        let mut set: Vec<i64> = vec![];
        let mut queue = start;
        while let Some(id) = queue.pop() {
            if set.contains(&id) {
                continue;
            }
            set.push(id);
            let digest: (String,) = sqlx::query_as("SELECT digest FROM artifacts WHERE id = $1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await
                .map_err(db)?;
            let accessories: Vec<(i64,)> =
                sqlx::query_as("SELECT id FROM artifacts WHERE repository_id = $1 AND subject_digest = $2")
                    .bind(repository_id)
                    .bind(&digest.0)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(db)?;
            queue.extend(accessories.into_iter().map(|r| r.0));
            let children: Vec<(i64,)> = sqlx::query_as(
                "SELECT ar.child_id FROM artifact_references ar WHERE ar.parent_id = $1
                   AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = ar.child_id)
                   AND NOT EXISTS (SELECT 1 FROM artifact_references o WHERE o.child_id = ar.child_id AND o.parent_id <> $1)",
            )
            .bind(id)
            .fetch_all(&mut **tx)
            .await
            .map_err(db)?;
            queue.extend(children.into_iter().map(|r| r.0));
        }
        if check_parents {
            for id in &set {
                let parents: Vec<(i64,)> = sqlx::query_as("SELECT parent_id FROM artifact_references WHERE child_id = $1")
                    .bind(*id)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(db)?;
                if parents.iter().any(|p| !set.contains(&p.0)) {
                    return Err(CoreError::Precondition(
                        "the artifact is referenced by an index; delete the index first".into(),
                    ));
                }
            }
        }
        let mut deleted = DeletedArtifacts::default();
        let mut freed: Vec<String> = Vec::new();
        // Parents first, so that child references are gone before children.
        for id in &set {
            let blobs: Vec<(String,)> = sqlx::query_as("SELECT digest FROM artifact_blobs WHERE artifact_id = $1")
                .bind(*id)
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?;
            freed.extend(blobs.into_iter().map(|b| b.0));
            let digest: (String,) = sqlx::query_as("SELECT digest FROM artifacts WHERE id = $1")
                .bind(*id)
                .fetch_one(&mut **tx)
                .await
                .map_err(db)?;
            let tags: Vec<(String,)> = sqlx::query_as("SELECT name FROM tags WHERE artifact_id = $1 ORDER BY name")
                .bind(*id)
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?;
            if let Some((t,)) = tags.iter().find(|(t,)| immutable(t)) {
                let (repo,): (String,) = sqlx::query_as("SELECT name FROM repositories WHERE id = $1")
                    .bind(repository_id)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(db)?;
                return Err(CoreError::Precondition(format!(
                    "Failed to process request due to '{repo}:{t}' configured as immutable."
                )));
            }
            sqlx::query("DELETE FROM artifact_references WHERE parent_id = $1")
                .bind(*id)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
            deleted
                .artifacts
                .push((parse_digest(&digest.0)?, tags.into_iter().map(|t| t.0).collect()));
            freed.push(digest.0);
        }
        for id in &set {
            sqlx::query("DELETE FROM artifacts WHERE id = $1")
                .bind(*id)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
        }
        let (project_id,): (i64,) = sqlx::query_as("SELECT project_id FROM repositories WHERE id = $1")
            .bind(repository_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(db)?;
        Self::release(tx, project_id, &freed, false).await?;
        Ok(deleted)
    }
}

#[async_trait]
impl UserStore for Store {
    async fn create_user(&self, user: &NewUser) -> CoreResult<User> {
        let now = berth_core::clock::now();
        let row: Result<UserRow, _> = sqlx::query_as(&format!(
            "INSERT INTO users (username, email, realname, comment, password_hash, sysadmin, creation_time, update_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {USER_COLUMNS}"
        ))
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.realname)
        .bind(&user.comment)
        .bind(&user.password_hash)
        .bind(user.sysadmin)
        .bind(now)
        .fetch_one(&mut *self.durable().await?)
        .await;
        match row {
            Ok(r) => Ok(user_from(r)),
            Err(e) if is_unique_violation(&e) => Err(CoreError::Conflict(format!("username {} is already used", user.username))),
            Err(e) => Err(db(e)),
        }
    }

    async fn user_by_name(&self, username: &str) -> CoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1 AND NOT deleted"
        ))
        .bind(username)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        Ok(row.map(user_from))
    }

    async fn user_by_id(&self, id: UserId) -> CoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND NOT deleted"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        Ok(row.map(user_from))
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> CoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1, update_time = $2 WHERE id = $3")
            .bind(hash)
            .bind(berth_core::clock::now())
            .bind(id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn roles_of_user(&self, id: UserId) -> CoreResult<HashMap<ProjectId, Vec<Role>>> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT project_id, role FROM project_members WHERE entity_type = 'u' AND entity_id = $1")
                .bind(id)
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
        let mut out: HashMap<ProjectId, Vec<Role>> = HashMap::new();
        for (project, role) in rows {
            if let Some(role) = Role::from_id(role) {
                out.entry(project).or_default().push(role);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ProjectStore for Store {
    async fn create_project(&self, project: &NewProject) -> CoreResult<Project> {
        let now = berth_core::clock::now();
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        let id: Result<(i64,), _> = sqlx::query_as(
            "INSERT INTO projects (name, owner_id, public, metadata, registry_id, storage_limit, creation_time, update_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(project.name.as_str())
        .bind(project.owner_id)
        .bind(project.public)
        .bind(to_json(&project.metadata))
        .bind(project.registry_id)
        .bind(project.storage_limit)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id = match id {
            Ok(r) => r.0,
            Err(e) if is_unique_violation(&e) => {
                return Err(CoreError::Conflict(format!(
                    "The project named {} already exists",
                    project.name
                )))
            }
            Err(e) => return Err(db(e)),
        };
        sqlx::query(
            "INSERT INTO project_members (project_id, entity_type, entity_id, role, creation_time, update_time)
             VALUES ($1, 'u', $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(project.owner_id)
        .bind(Role::ProjectAdmin.id())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.project_by_id(id)
            .await?
            .ok_or_else(|| CoreError::Internal("created project vanished".into()))
    }

    async fn project_by_name(&self, name: &str) -> CoreResult<Option<Project>> {
        let row: Option<ProjectRow> = sqlx::query_as(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p LEFT JOIN users u ON u.id = p.owner_id WHERE p.name = $1"
        ))
        .bind(name)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        Ok(row.map(project_from))
    }

    async fn project_ref(&self, name: &str) -> CoreResult<Option<ProjectRef>> {
        let row: Option<(i64, bool)> = sqlx::query_as("SELECT id, public FROM projects WHERE name = $1")
            .bind(name)
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        Ok(row.map(|(id, public)| ProjectRef { id, public }))
    }

    async fn project_by_id(&self, id: ProjectId) -> CoreResult<Option<Project>> {
        let row: Option<ProjectRow> = sqlx::query_as(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p LEFT JOIN users u ON u.id = p.owner_id WHERE p.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        Ok(row.map(project_from))
    }

    async fn list_projects(&self, query: &ProjectQuery, page: Page) -> CoreResult<(Vec<Project>, i64)> {
        fn filters(qb: &mut QueryBuilder<'_, Db>, query: &ProjectQuery) {
            qb.push(" FROM projects p LEFT JOIN users u ON u.id = p.owner_id WHERE 1 = 1");
            if let Some(m) = &query.name {
                push_text_match(qb, "p.name", m);
            }
            if let Some(public) = query.public {
                qb.push(" AND p.public = ");
                qb.push_bind(public);
            }
            if let Some(owner) = &query.owner {
                qb.push(" AND u.username = ");
                qb.push_bind(owner.clone());
            }
            push_visibility(qb, &query.visibility);
        }
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*)");
        filters(&mut count, query);
        let total: (i64,) = count.build_query_as().fetch_one(self.reader()).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {PROJECT_COLUMNS}"));
        filters(&mut qb, query);
        push_order(
            &mut qb,
            &query.sort,
            |f| match f {
                ProjectSortField::Id => "p.id",
                ProjectSortField::Name => "p.name",
                ProjectSortField::CreationTime => "p.creation_time",
                ProjectSortField::UpdateTime => "p.update_time",
                ProjectSortField::StorageLimit => "p.storage_limit",
                ProjectSortField::StorageUsed => "p.storage_used",
            },
            "p.name ASC",
        );
        qb.push(" LIMIT ");
        qb.push_bind(page.size as i64);
        qb.push(" OFFSET ");
        qb.push_bind(page.offset().min(i64::MAX as u64) as i64);
        let rows: Vec<ProjectRow> = qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        Ok((rows.into_iter().map(project_from).collect(), total.0))
    }

    async fn update_project(&self, id: ProjectId, public: bool, metadata: &BTreeMap<String, String>) -> CoreResult<()> {
        sqlx::query("UPDATE projects SET public = $1, metadata = $2, update_time = $3 WHERE id = $4")
            .bind(public)
            .bind(to_json(metadata))
            .bind(berth_core::clock::now())
            .bind(id)
            .execute(self.writer())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn set_storage_limit(&self, id: ProjectId, limit: i64, now: Millis) -> CoreResult<bool> {
        Self::update_storage_limit(&mut *self.durable().await?, id, limit, now).await
    }

    async fn delete_project(&self, id: ProjectId) -> CoreResult<Vec<Upload>> {
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        let repos: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM repositories WHERE project_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if repos.0 > 0 {
            return Err(CoreError::Precondition(
                "the project contains repositories, can not be deleted".into(),
            ));
        }
        let uploads: Vec<UploadRow> = sqlx::query_as(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE project_id = $1"))
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        for stmt in [
            "DELETE FROM uploads WHERE project_id = $1",
            "DELETE FROM repository_blobs WHERE project_id = $1",
            "DELETE FROM project_blobs WHERE project_id = $1",
            "DELETE FROM project_members WHERE project_id = $1",
            "DELETE FROM projects WHERE id = $1",
        ] {
            sqlx::query(stmt).bind(id).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(uploads.into_iter().map(upload_from).collect())
    }

    async fn project_summary(&self, id: ProjectId) -> CoreResult<ProjectSummary> {
        let repo_count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM repositories WHERE project_id = $1")
            .bind(id)
            .fetch_one(self.reader())
            .await
            .map_err(db)?;
        let artifact_count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM artifacts WHERE project_id = $1")
            .bind(id)
            .fetch_one(self.reader())
            .await
            .map_err(db)?;
        let members: Vec<(i64, i64)> =
            sqlx::query_as("SELECT role, COUNT(*) FROM project_members WHERE project_id = $1 GROUP BY role")
                .bind(id)
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
        let used: (i64,) = sqlx::query_as("SELECT CAST(COALESCE((SELECT storage_used FROM projects WHERE id = $1), 0) AS BIGINT)")
        .bind(id)
        .fetch_one(self.reader())
        .await
        .map_err(db)?;
        Ok(ProjectSummary {
            repo_count: repo_count.0,
            artifact_count: artifact_count.0,
            member_counts: members
                .into_iter()
                .filter_map(|(r, n)| Role::from_id(r).map(|r| (r, n)))
                .collect(),
            storage_used: used.0,
        })
    }

    async fn list_repositories(&self, query: &RepositoryQuery, page: Page) -> CoreResult<(Vec<Repository>, i64)> {
        fn filters(qb: &mut QueryBuilder<'_, Db>, query: &RepositoryQuery) {
            qb.push(" FROM repositories r JOIN projects p ON p.id = r.project_id WHERE 1 = 1");
            if let Some(pid) = query.project_id {
                qb.push(" AND r.project_id = ");
                qb.push_bind(pid);
            }
            if let Some(m) = &query.name {
                push_text_match(qb, "r.name", m);
            }
            push_visibility(qb, &query.visibility);
        }
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*)");
        filters(&mut count, query);
        let total: (i64,) = count.build_query_as().fetch_one(self.reader()).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {REPOSITORY_COLUMNS}"));
        filters(&mut qb, query);
        push_order(
            &mut qb,
            &query.sort,
            |f| match f {
                RepositorySortField::Id => "r.id",
                RepositorySortField::Name => "r.name",
                RepositorySortField::CreationTime => "r.creation_time",
                RepositorySortField::UpdateTime => "r.update_time",
                RepositorySortField::PullCount => "r.pull_count",
            },
            "r.creation_time DESC, r.id DESC",
        );
        qb.push(" LIMIT ");
        qb.push_bind(page.size as i64);
        qb.push(" OFFSET ");
        qb.push_bind(page.offset().min(i64::MAX as u64) as i64);
        let rows: Vec<RepositoryRow> = qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        Ok((rows.into_iter().map(repository_from).collect(), total.0))
    }

    async fn repository_by_name(&self, name: &str) -> CoreResult<Option<Repository>> {
        let row: Option<RepositoryRow> =
            sqlx::query_as(&format!("SELECT {REPOSITORY_COLUMNS} FROM repositories r WHERE r.name = $1"))
                .bind(name)
                .fetch_optional(self.reader())
                .await
                .map_err(db)?;
        Ok(row.map(repository_from))
    }

    async fn update_repository_description(&self, id: RepositoryId, description: &str) -> CoreResult<()> {
        sqlx::query("UPDATE repositories SET description = $1, update_time = $2 WHERE id = $3")
            .bind(description)
            .bind(berth_core::clock::now())
            .bind(id)
            .execute(self.writer())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delete_repository(&self, id: RepositoryId, immutable: TagGuard<'_>) -> CoreResult<DeletedArtifacts> {
        retry_aborted(move || async move {
            let mut conn = self.durable().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
            let name: Option<(String,)> = sqlx::query_as("SELECT name FROM repositories WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let Some((name,)) = name else {
                return Err(CoreError::RepositoryNotFound(id.to_string()));
            };
            let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM artifacts WHERE repository_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            let deleted = Self::delete_artifacts_deep(&mut tx, id, ids.into_iter().map(|r| r.0).collect(), false, immutable).await?;
            let links: Vec<(String, i64)> =
                sqlx::query_as("DELETE FROM repository_blobs WHERE repository = $1 RETURNING digest, project_id")
                    .bind(&name)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
            if let Some((_, project_id)) = links.first() {
                let digests: Vec<String> = links.iter().map(|l| l.0.clone()).collect();
                Self::release(&mut tx, *project_id, &digests, true).await?;
            }
            sqlx::query("DELETE FROM uploads WHERE repository = $1")
                .bind(&name)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("DELETE FROM repositories WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(deleted)
        })
        .await
    }

    async fn list_artifacts(&self, query: &ArtifactQuery, page: Page) -> CoreResult<(Vec<Artifact>, i64)> {
        fn filters(qb: &mut QueryBuilder<'_, Db>, query: &ArtifactQuery) {
            qb.push(" FROM artifacts a JOIN repositories r ON r.id = a.repository_id WHERE a.repository_id = ");
            qb.push_bind(query.repository_id);
            // Index children are shown under their index, accessories under
            // their subject, as Harbor lists them.
            qb.push(
                " AND NOT EXISTS (SELECT 1 FROM artifact_references ar WHERE ar.child_id = a.id)
                  AND (a.subject_digest IS NULL OR NOT EXISTS (SELECT 1 FROM artifacts s WHERE s.repository_id = a.repository_id AND s.digest = a.subject_digest))",
            );
            match &query.tags {
                None => {}
                Some(TagFilter::Tagged) => {
                    qb.push(" AND EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id)");
                }
                Some(TagFilter::Untagged) => {
                    qb.push(" AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id)");
                }
                Some(TagFilter::Name(m)) => {
                    qb.push(" AND EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id");
                    push_text_match(qb, "t.name", m);
                    qb.push(")");
                }
            }
            if let Some(d) = &query.digest {
                qb.push(" AND a.digest = ");
                qb.push_bind(d.as_str().to_owned());
            }
            if let Some(k) = &query.kind {
                qb.push(" AND a.kind = ");
                qb.push_bind(k.clone());
            }
            if let Some(m) = &query.media_type {
                push_text_match(qb, "a.media_type", m);
            }
        }
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*)");
        filters(&mut count, query);
        let total: (i64,) = count.build_query_as().fetch_one(self.reader()).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {ARTIFACT_COLUMNS}"));
        filters(&mut qb, query);
        push_order(
            &mut qb,
            &query.sort,
            |f| match f {
                ArtifactSortField::Id => "a.id",
                ArtifactSortField::PushTime => "a.push_time",
                ArtifactSortField::PullTime => "a.pull_time",
                ArtifactSortField::Size => "a.size",
                ArtifactSortField::Digest => "a.digest",
            },
            "a.push_time DESC, a.id DESC",
        );
        qb.push(" LIMIT ");
        qb.push_bind(page.size as i64);
        qb.push(" OFFSET ");
        qb.push_bind(page.offset().min(i64::MAX as u64) as i64);
        let rows: Vec<ArtifactRow> = qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        let mut artifacts = rows.into_iter().map(ArtifactRow::into_artifact).collect::<CoreResult<Vec<_>>>()?;
        self.attach_details(&mut artifacts).await?;
        Ok((artifacts, total.0))
    }

    async fn artifact_by_reference(&self, repository_id: RepositoryId, reference: &Reference) -> CoreResult<Option<Artifact>> {
        let row: Option<ArtifactRow> = match reference {
            Reference::Digest(d) => sqlx::query_as(&format!(
                "SELECT {ARTIFACT_COLUMNS} FROM artifacts a JOIN repositories r ON r.id = a.repository_id
                 WHERE a.repository_id = $1 AND a.digest = $2"
            ))
            .bind(repository_id)
            .bind(d.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?,
            Reference::Tag(t) => sqlx::query_as(&format!(
                "SELECT {ARTIFACT_COLUMNS} FROM tags t JOIN artifacts a ON a.id = t.artifact_id
                 JOIN repositories r ON r.id = a.repository_id WHERE t.repository_id = $1 AND t.name = $2"
            ))
            .bind(repository_id)
            .bind(t.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?,
        };
        let Some(row) = row else { return Ok(None) };
        let mut v = vec![row.into_artifact()?];
        self.attach_details(&mut v).await?;
        Ok(v.pop())
    }

    async fn create_tag(&self, artifact: &Artifact, tag: &Tag, now: Millis) -> CoreResult<TagRecord> {
        let row: Result<(i64,), _> = sqlx::query_as(
            "INSERT INTO tags (repository_id, artifact_id, name, push_time) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(artifact.repository_id)
        .bind(artifact.id)
        .bind(tag.as_str())
        .bind(now)
        .fetch_one(&mut *self.durable().await?)
        .await;
        match row {
            Ok((id,)) => Ok(TagRecord {
                id,
                repository_id: artifact.repository_id,
                artifact_id: artifact.id,
                name: tag.as_str().to_owned(),
                push_time: now,
                pull_time: None,
            }),
            Err(e) if is_unique_violation(&e) => Err(CoreError::Conflict(format!("the tag {tag} already exists"))),
            Err(e) => Err(db(e)),
        }
    }
}

#[async_trait]
impl RegistryStore for Store {
    async fn linked_blob(&self, repository: &RepoName, digest: &Digest) -> CoreResult<Option<LinkedBlob>> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT b.size, b.status, b.update_time FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
             WHERE rb.repository = $1 AND rb.digest = $2",
        )
        .bind(repository.as_str())
        .bind(digest.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        Ok(row.map(|(size, status, used)| LinkedBlob {
            size: size as u64,
            status: BlobStatus::parse(&status),
            used,
        }))
    }

    async fn touch_blob(&self, digest: &Digest, now: Millis) -> CoreResult<BlobPresence> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE blobs SET status = 'none', update_time = $1 WHERE digest = $2 AND status <> 'deleting' RETURNING size",
        )
        .bind(now)
        .bind(digest.as_str())
        .fetch_optional(self.writer())
        .await
        .map_err(db)?;
        if let Some((size,)) = row {
            return Ok(BlobPresence::Present { size: size as u64 });
        }
        let exists: Option<(String,)> = sqlx::query_as("SELECT status FROM blobs WHERE digest = $1")
            .bind(digest.as_str())
            .fetch_optional(self.writer())
            .await
            .map_err(db)?;
        Ok(match exists {
            Some(_) => BlobPresence::Deleting,
            None => BlobPresence::Absent,
        })
    }

    async fn commit_blob(
        &self,
        project_id: ProjectId,
        repository: &RepoName,
        digest: &Digest,
        size: u64,
        upload_id: Option<&str>,
        now: Millis,
    ) -> CoreResult<QuotaCharge> {
        retry_aborted(move || async move {
            let mut conn = self.durable().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
            sqlx::query(
                "INSERT INTO blobs (digest, size, status, creation_time, update_time) VALUES ($1, $2, 'none', $3, $3)
                 ON CONFLICT (digest) DO UPDATE SET status = 'none', update_time = excluded.update_time",
            )
            .bind(digest.as_str())
            .bind(size as i64)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            // Over quota, the blob row still commits (unlinked, so GC reclaims
            // the stored bytes) and the session ends; the link does not.
            let charge = Self::charge(&mut tx, project_id, &[(digest.as_str().to_owned(), size as i64)], now).await;
            if charge.is_ok() {
                Self::link_blob(&mut tx, project_id, repository, digest, now).await?;
            }
            if let Some(id) = upload_id {
                sqlx::query("DELETE FROM uploads WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            charge
        })
        .await
    }

    async fn mount_blob(
        &self,
        project_id: ProjectId,
        repository: &RepoName,
        from: &RepoName,
        digest: &Digest,
        now: Millis,
    ) -> CoreResult<Option<(BlobInfo, QuotaCharge)>> {
        retry_aborted(move || async move {
            let mut conn = self.durable().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
            let row: Option<(i64,)> = sqlx::query_as(
                "UPDATE blobs SET status = 'none', update_time = $1 WHERE digest = $2 AND status <> 'deleting'
                   AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository = $3 AND rb.digest = $2)
                 RETURNING size",
            )
            .bind(now)
            .bind(digest.as_str())
            .bind(from.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let Some((size,)) = row else {
                return Ok(None);
            };
            let charge = Self::charge(&mut tx, project_id, &[(digest.as_str().to_owned(), size)], now).await?;
            Self::link_blob(&mut tx, project_id, repository, digest, now).await?;
            tx.commit().await.map_err(db)?;
            Ok(Some((BlobInfo { size: size as u64 }, charge)))
        })
        .await
    }

    async fn unlink_blob(&self, repository: &RepoName, digest: &Digest) -> CoreResult<bool> {
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        let row: Option<(i64,)> =
            sqlx::query_as("DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2 RETURNING project_id")
                .bind(repository.as_str())
                .bind(digest.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let Some((project_id,)) = row else {
            return Ok(false);
        };
        Self::release(&mut tx, project_id, &[digest.as_str().to_owned()], true).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn unlink_unused_blobs(&self, repository: &RepoName, digests: &[Digest]) -> CoreResult<()> {
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        let mut unlinked: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for d in digests {
            let row: Option<(i64,)> = sqlx::query_as(
                "DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2
                   AND NOT EXISTS (SELECT 1 FROM artifact_blobs ab JOIN artifacts a ON a.id = ab.artifact_id
                                   JOIN repositories r ON r.id = a.repository_id
                                   WHERE ab.digest = $2 AND r.name = $1)
                 RETURNING project_id",
            )
            .bind(repository.as_str())
            .bind(d.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if let Some((project_id,)) = row {
                unlinked.entry(project_id).or_default().push(d.as_str().to_owned());
            }
        }
        for (project_id, digests) in unlinked {
            Self::release(&mut tx, project_id, &digests, true).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn create_upload(&self, upload: &Upload) -> CoreResult<()> {
        sqlx::query(
            "INSERT INTO uploads (id, project_id, repository, size, hash_state, backend_state, owner, creation_time, update_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&upload.id)
        .bind(upload.project_id)
        .bind(&upload.repository)
        .bind(upload.size as i64)
        .bind(&upload.hash_state)
        .bind(&upload.backend_state)
        .bind(&upload.owner)
        .bind(upload.creation_time)
        .bind(upload.update_time)
        .execute(self.writer())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get_upload(&self, repository: &RepoName, id: &str) -> CoreResult<Option<Upload>> {
        let row: Option<UploadRow> =
            sqlx::query_as(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1 AND repository = $2"))
                .bind(id)
                .bind(repository.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(db)?;
        Ok(row.map(upload_from))
    }

    async fn claim_upload(&self, repository: &RepoName, id: &str, owner: &str, until: Millis, now: Millis) -> CoreResult<UploadClaim> {
        let row: Option<UploadRow> = sqlx::query_as(&format!(
            "UPDATE uploads SET lease_owner = $1, lease_until = $2
             WHERE id = $3 AND repository = $4 AND (lease_until IS NULL OR lease_until < $5)
             RETURNING {UPLOAD_COLUMNS}"
        ))
        .bind(owner)
        .bind(until)
        .bind(id)
        .bind(repository.as_str())
        .bind(now)
        .fetch_optional(self.writer())
        .await
        .map_err(db)?;
        if let Some(r) = row {
            return Ok(UploadClaim::Claimed(upload_from(r)));
        }
        Ok(match self.get_upload(repository, id).await? {
            Some(_) => UploadClaim::Busy,
            None => UploadClaim::NotFound,
        })
    }

    async fn save_upload(
        &self,
        id: &str,
        owner: &str,
        size: u64,
        hash_state: &[u8],
        backend_state: &str,
        now: Millis,
    ) -> CoreResult<()> {
        let r = sqlx::query(
            "UPDATE uploads SET size = $1, hash_state = $2, backend_state = $3, update_time = $4, lease_owner = NULL, lease_until = NULL
             WHERE id = $5 AND lease_owner = $6",
        )
        .bind(size as i64)
        .bind(hash_state)
        .bind(backend_state)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(self.writer())
        .await
        .map_err(db)?;
        if r.rows_affected() == 0 {
            return Err(CoreError::UploadBusy);
        }
        Ok(())
    }

    async fn renew_upload(&self, id: &str, owner: &str, until: Millis) -> CoreResult<bool> {
        let r = sqlx::query("UPDATE uploads SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
            .bind(until)
            .bind(id)
            .bind(owner)
            .execute(self.writer())
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn release_upload(&self, id: &str, owner: &str) -> CoreResult<()> {
        sqlx::query("UPDATE uploads SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .execute(self.writer())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delete_upload(&self, id: &str) -> CoreResult<Option<Upload>> {
        let row: Option<UploadRow> = sqlx::query_as(&format!("DELETE FROM uploads WHERE id = $1 RETURNING {UPLOAD_COLUMNS}"))
            .bind(id)
            .fetch_optional(self.writer())
            .await
            .map_err(db)?;
        Ok(row.map(upload_from))
    }

    async fn stale_uploads(&self, before: Millis, limit: i64) -> CoreResult<Vec<Upload>> {
        let rows: Vec<UploadRow> = sqlx::query_as(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE update_time < $1 ORDER BY update_time, id LIMIT $2"))
            .bind(before)
            .bind(limit)
            .fetch_all(self.reader())
            .await
            .map_err(db)?;
        Ok(rows.into_iter().map(upload_from).collect())
    }

    async fn delete_stale_upload(&self, id: &str, before: Millis, now: Millis) -> CoreResult<Option<Upload>> {
        let row: Option<UploadRow> = sqlx::query_as(&format!(
            "DELETE FROM uploads WHERE id = $1 AND update_time < $2 AND (lease_until IS NULL OR lease_until < $3) RETURNING {UPLOAD_COLUMNS}"
        ))
        .bind(id)
        .bind(before)
        .bind(now)
        .fetch_optional(self.writer())
        .await
        .map_err(db)?;
        Ok(row.map(upload_from))
    }

    async fn put_manifest(&self, a: &NewArtifact) -> CoreResult<PutManifestOutcome> {
        retry_aborted(move || async move {
            let now = a.push_time;
            let mut conn = self.durable().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
            // Every referenced blob must be linked to this repository and not
            // being swept. Touching it here (a row lock on PostgreSQL) keeps GC
            // from sweeping it until this transaction is over.
            let mut size: i64 = a.body.len() as i64 + a.foreign_size;
            let mut counted: Vec<(String, i64)> = vec![(a.digest.as_str().to_owned(), a.body.len() as i64)];
            for d in &a.blobs {
                let row: Option<(i64,)> = sqlx::query_as(
                    "UPDATE blobs SET status = 'none', update_time = $1 WHERE digest = $2 AND status <> 'deleting'
                       AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository = $3 AND rb.digest = $2)
                     RETURNING size",
                )
                .bind(now)
                .bind(d.as_str())
                .bind(a.repository.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                match row {
                    Some((s,)) => {
                        size += s;
                        counted.push((d.as_str().to_owned(), s));
                    }
                    None => return Err(CoreError::ManifestBlobUnknown(d.clone())),
                }
            }
            let repo_id: (i64,) = match sqlx::query_as::<_, (i64,)>("SELECT id FROM repositories WHERE name = $1")
                .bind(a.repository.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
            {
                Some(r) => r,
                None => sqlx::query_as(
                    "INSERT INTO repositories (project_id, name, creation_time, update_time) VALUES ($1, $2, $3, $3) RETURNING id",
                )
                .bind(a.project_id)
                .bind(a.repository.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?,
            };
            let repo_id = repo_id.0;
            let mut children: Vec<(i64, &NewChild)> = Vec::with_capacity(a.children.len());
            for c in &a.children {
                let row: Option<(i64, i64)> =
                    sqlx::query_as("SELECT id, size FROM artifacts WHERE repository_id = $1 AND digest = $2")
                        .bind(repo_id)
                        .bind(c.digest.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?;
                match row {
                    Some((id, s)) => {
                        if !children.iter().any(|(cid, _)| *cid == id) {
                            size += s;
                        }
                        children.push((id, c));
                    }
                    None => return Err(CoreError::ManifestBlobUnknown(c.digest.clone())),
                }
            }
            let charge = Self::charge(&mut tx, a.project_id, &counted, now).await?;
            sqlx::query(
                "INSERT INTO manifests (digest, media_type, body, creation_time) VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO UPDATE SET creation_time = excluded.creation_time",
            )
            .bind(a.digest.as_str())
            .bind(&a.manifest_media_type)
            .bind(a.body.as_ref())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            let existing: Option<(i64,)> = sqlx::query_as("SELECT id FROM artifacts WHERE repository_id = $1 AND digest = $2")
                .bind(repo_id)
                .bind(a.digest.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let (artifact_id, created) = match existing {
                Some((id,)) => {
                    sqlx::query("UPDATE artifacts SET push_time = $1 WHERE id = $2")
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    (id, false)
                }
                None => {
                    let (id,): (i64,) = sqlx::query_as(
                        "INSERT INTO artifacts (project_id, repository_id, digest, kind, media_type, manifest_media_type, artifact_type,
                            size, manifest_size, subject_digest, annotations, extra_attrs, push_time)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                    )
                    .bind(a.project_id)
                    .bind(repo_id)
                    .bind(a.digest.as_str())
                    .bind(&a.kind)
                    .bind(&a.media_type)
                    .bind(&a.manifest_media_type)
                    .bind(&a.artifact_type)
                    .bind(size)
                    .bind(a.body.len() as i64)
                    .bind(a.subject.as_ref().map(|s| s.as_str().to_owned()))
                    .bind(to_json(&a.annotations))
                    .bind(a.extra_attrs.to_string())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
                    for d in &a.blobs {
                        sqlx::query("INSERT INTO artifact_blobs (artifact_id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(id)
                            .bind(d.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                    }
                    for (child_id, c) in &children {
                        sqlx::query(
                            "INSERT INTO artifact_references (parent_id, child_id, child_digest, platform, annotations, urls)
                             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(*child_id)
                        .bind(c.digest.as_str())
                        .bind(c.platform.as_ref().map(to_json))
                        .bind(c.annotations.as_ref().map(to_json))
                        .bind(c.urls.as_ref().map(to_json))
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    }
                    (id, true)
                }
            };
            let mut moved_tags = Vec::new();
            for tag in &a.tags {
                let prev: Option<(i64, String)> = sqlx::query_as(
                    "SELECT t.artifact_id, a.digest FROM tags t JOIN artifacts a ON a.id = t.artifact_id
                     WHERE t.repository_id = $1 AND t.name = $2",
                )
                .bind(repo_id)
                .bind(tag.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                match prev {
                    Some((prev_id, _)) if prev_id == artifact_id => {
                        sqlx::query("UPDATE tags SET push_time = $1 WHERE repository_id = $2 AND name = $3")
                            .bind(now)
                            .bind(repo_id)
                            .bind(tag.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                    }
                    Some((_, _)) if a.immutable_tags.contains(tag) => {
                        return Err(CoreError::Precondition(format!(
                            "Failed to process request due to '{}:{tag}' configured as immutable.",
                            a.repository
                        )));
                    }
                    Some((_, prev_digest)) => {
                        sqlx::query("UPDATE tags SET artifact_id = $1, push_time = $2, pull_time = NULL WHERE repository_id = $3 AND name = $4")
                            .bind(artifact_id)
                            .bind(now)
                            .bind(repo_id)
                            .bind(tag.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                        moved_tags.push((tag.as_str().to_owned(), parse_digest(&prev_digest)?));
                    }
                    None => {
                        sqlx::query("INSERT INTO tags (repository_id, artifact_id, name, push_time) VALUES ($1, $2, $3, $4)")
                            .bind(repo_id)
                            .bind(artifact_id)
                            .bind(tag.as_str())
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                    }
                }
            }
            sqlx::query("UPDATE repositories SET update_time = $1 WHERE id = $2")
                .bind(now)
                .bind(repo_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(PutManifestOutcome {
                artifact_id,
                charge,
                created,
                moved_tags,
            })
        })
        .await
    }

    async fn resolve_manifest(&self, repository: &RepoName, reference: &Reference) -> CoreResult<Option<ManifestRecord>> {
        let row = match reference {
            Reference::Tag(t) => sqlx::query(
                "SELECT r.id, a.id, a.digest, m.media_type, m.body, a.subject_digest FROM repositories r
                 JOIN tags t ON t.repository_id = r.id JOIN artifacts a ON a.id = t.artifact_id
                 JOIN manifests m ON m.digest = a.digest WHERE r.name = $1 AND t.name = $2",
            )
            .bind(repository.as_str())
            .bind(t.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?,
            Reference::Digest(d) => sqlx::query(
                "SELECT r.id, a.id, a.digest, m.media_type, m.body, a.subject_digest FROM repositories r
                 JOIN artifacts a ON a.repository_id = r.id JOIN manifests m ON m.digest = a.digest
                 WHERE r.name = $1 AND a.digest = $2",
            )
            .bind(repository.as_str())
            .bind(d.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?,
        };
        let Some(row) = row else { return Ok(None) };
        let digest: String = row.try_get(2).map_err(db)?;
        let subject: Option<String> = row.try_get(5).map_err(db)?;
        Ok(Some(ManifestRecord {
            repository_id: row.try_get(0).map_err(db)?,
            artifact_id: row.try_get(1).map_err(db)?,
            digest: parse_digest(&digest)?,
            media_type: row.try_get(3).map_err(db)?,
            body: Bytes::from(row.try_get::<Vec<u8>, _>(4).map_err(db)?),
            subject: subject.as_deref().map(parse_digest).transpose()?,
        }))
    }

    async fn delete_manifest(&self, repository: &RepoName, digest: &Digest, immutable: TagGuard<'_>) -> CoreResult<DeletedArtifacts> {
        retry_aborted(move || async move {
            let mut conn = self.durable().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT a.id, r.id FROM artifacts a JOIN repositories r ON r.id = a.repository_id WHERE r.name = $1 AND a.digest = $2",
            )
            .bind(repository.as_str())
            .bind(digest.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let Some((artifact_id, repo_id)) = row else {
                return Ok(DeletedArtifacts::default());
            };
            let deleted = Self::delete_artifacts_deep(&mut tx, repo_id, vec![artifact_id], true, immutable).await?;
            tx.commit().await.map_err(db)?;
            Ok(deleted)
        })
        .await
    }

    async fn delete_tag(&self, repository: &RepoName, tag: &Tag) -> CoreResult<bool> {
        let r = sqlx::query(
            "DELETE FROM tags WHERE name = $1 AND repository_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(tag.as_str())
        .bind(repository.as_str())
        .execute(&mut *self.durable().await?)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn list_tags(&self, repository: &RepoName, last: Option<&str>, limit: u64) -> CoreResult<Option<Vec<String>>> {
        let repo: Option<(i64,)> = sqlx::query_as("SELECT id FROM repositories WHERE name = $1")
            .bind(repository.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        let Some((repo_id,)) = repo else {
            return Ok(None);
        };
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM tags WHERE repository_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(repo_id)
        .bind(last.unwrap_or(""))
        .bind(limit.min(i64::MAX as u64) as i64)
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        Ok(Some(rows.into_iter().map(|r| r.0).collect()))
    }

    async fn referrers(&self, repository: &RepoName, subject: &Digest, artifact_type: Option<&str>) -> CoreResult<Vec<Referrer>> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT a.digest, a.manifest_media_type, a.artifact_type, a.manifest_size, a.annotations
             FROM artifacts a JOIN repositories r ON r.id = a.repository_id WHERE r.name = ",
        );
        qb.push_bind(repository.as_str().to_owned());
        qb.push(" AND a.subject_digest = ");
        qb.push_bind(subject.as_str().to_owned());
        if let Some(t) = artifact_type {
            qb.push(" AND a.artifact_type = ");
            qb.push_bind(t.to_owned());
        }
        qb.push(" ORDER BY a.push_time, a.id");
        let rows: Vec<(String, String, String, i64, String)> =
            qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        rows.into_iter()
            .map(|r| {
                Ok(Referrer {
                    digest: parse_digest(&r.0)?,
                    media_type: r.1,
                    artifact_type: r.2,
                    size: r.3,
                    annotations: json_map(&r.4),
                })
            })
            .collect()
    }

    async fn catalog(&self, visibility: &Visibility, last: Option<&str>, limit: u64) -> CoreResult<Vec<String>> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT r.name FROM repositories r JOIN projects p ON p.id = r.project_id WHERE r.name > ",
        );
        qb.push_bind(last.unwrap_or("").to_owned());
        push_visibility(&mut qb, visibility);
        qb.push(" ORDER BY r.name LIMIT ");
        qb.push_bind(limit.min(i64::MAX as u64) as i64);
        let rows: Vec<(String,)> = qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn record_pulls(&self, pulls: &[PullRecord]) -> CoreResult<()> {
        if pulls.is_empty() {
            return Ok(());
        }
        let mut per_repo: BTreeMap<i64, i64> = BTreeMap::new();
        let mut per_artifact: BTreeMap<i64, Millis> = BTreeMap::new();
        let mut per_tag: BTreeMap<(i64, String), Millis> = BTreeMap::new();
        for p in pulls {
            *per_repo.entry(p.repository_id).or_default() += 1;
            let t = per_artifact.entry(p.artifact_id).or_default();
            *t = (*t).max(p.time);
            if let Some(tag) = &p.tag {
                let t = per_tag.entry((p.repository_id, tag.clone())).or_default();
                *t = (*t).max(p.time);
            }
        }
        // This runs beside every delete, push and GC, so it must never wait
        // for a row while it holds another (a deadlock PostgreSQL would
        // break by failing one side, perhaps a client's delete). One
        // transaction updates the rows nobody holds; the rest then go one
        // statement at a time, each holding a single row. Pull times only
        // move forward, whatever order nodes write them in.
        const ARTIFACT: &str = "UPDATE artifacts SET pull_time = $1 WHERE id = $2 AND (pull_time IS NULL OR pull_time < $1)";
        const TAG: &str = "UPDATE tags SET pull_time = $1 WHERE repository_id = $2 AND name = $3 AND (pull_time IS NULL OR pull_time < $1)";
        let mut artifacts_left: Vec<(i64, Millis)> = vec![];
        let mut tags_left: Vec<((i64, String), Millis)> = vec![];
        let mut tx = self.writer().begin().await.map_err(db)?;
        // A row another transaction holds is left out, not waited for.
        let artifact_free = format!("{ARTIFACT} AND id IN (SELECT id FROM artifacts WHERE id = $2{SKIP_LOCKED_UPDATE})");
        let tag_free = format!(
            "{TAG} AND id IN (SELECT id FROM tags WHERE repository_id = $2 AND name = $3{SKIP_LOCKED_UPDATE})"
        );
        for (artifact, t) in per_artifact {
            let r = sqlx::query(&artifact_free).bind(t).bind(artifact).execute(&mut *tx).await.map_err(db)?;
            if r.rows_affected() == 0 {
                artifacts_left.push((artifact, t));
            }
        }
        for ((repo, tag), t) in per_tag {
            let r = sqlx::query(&tag_free).bind(t).bind(repo).bind(&tag).execute(&mut *tx).await.map_err(db)?;
            if r.rows_affected() == 0 {
                tags_left.push(((repo, tag), t));
            }
        }
        tx.commit().await.map_err(db)?;
        // Rows that were held, already newer, or deleted: one statement each.
        for (artifact, t) in artifacts_left {
            sqlx::query(ARTIFACT).bind(t).bind(artifact).execute(self.writer()).await.map_err(db)?;
        }
        for ((repo, tag), t) in tags_left {
            sqlx::query(TAG).bind(t).bind(repo).bind(tag).execute(self.writer()).await.map_err(db)?;
        }
        for (repo, n) in per_repo {
            sqlx::query("UPDATE repositories SET pull_count = pull_count + $1 WHERE id = $2")
                .bind(n)
                .bind(repo)
                .execute(self.writer())
                .await
                .map_err(db)?;
        }
        Ok(())
    }
}

impl MetaStore for Store {
    fn kind(&self) -> &'static str {
        KIND
    }
}

type MemberRow = (i64, i64, i64, String, String, i64);

fn member_from(r: MemberRow) -> Option<Member> {
    Some(Member {
        id: r.0,
        project_id: r.1,
        entity_id: r.2,
        entity_name: r.3,
        entity_type: r.4,
        role: Role::from_id(r.5)?,
    })
}

const MEMBER_SELECT: &str = "SELECT m.id, m.project_id, m.entity_id, u.username, m.entity_type, m.role
     FROM project_members m JOIN users u ON u.id = m.entity_id AND m.entity_type = 'u'";

#[derive(sqlx::FromRow)]
struct RobotRow {
    id: i64,
    name: String,
    description: String,
    level: String,
    project_id: Option<i64>,
    secret_hash: String,
    secret_version: i64,
    permissions: String,
    disabled: bool,
    duration: i64,
    expires_at: i64,
    creator: String,
    creation_time: i64,
    update_time: i64,
}

impl RobotRow {
    fn into_robot(self) -> Robot {
        Robot {
            id: self.id,
            name: self.name,
            description: self.description,
            level: if self.level == "system" { RobotLevel::System } else { RobotLevel::Project },
            project_id: self.project_id,
            secret_hash: self.secret_hash,
            secret_version: self.secret_version,
            permissions: serde_json::from_str(&self.permissions).unwrap_or_default(),
            disabled: self.disabled,
            duration: self.duration,
            expires_at: self.expires_at,
            creator: self.creator,
            creation_time: self.creation_time,
            update_time: self.update_time,
        }
    }
}

const ROBOT_COLUMNS: &str = "id, name, description, level, project_id, secret_hash, secret_version, permissions, disabled, duration, expires_at, creator, creation_time, update_time";

type AuditRow = (i64, i64, String, String, String, String, String, bool, i64);

fn audit_from(r: AuditRow) -> AuditEntry {
    AuditEntry {
        id: r.0,
        project_id: r.1,
        operation: r.2,
        operation_description: r.3,
        resource_type: r.4,
        resource: r.5,
        username: r.6,
        is_successful: r.7,
        op_time: r.8,
    }
}

#[async_trait]
impl AccountStore for Store {
    async fn list_users(&self, query: &UserQuery, page: Page) -> CoreResult<(Vec<User>, i64)> {
        fn filters(qb: &mut QueryBuilder<'_, Db>, query: &UserQuery) {
            qb.push(" FROM users WHERE NOT deleted");
            if let Some(m) = &query.username {
                push_text_match(qb, "username", m);
            }
            if let Some(m) = &query.email {
                push_text_match(qb, "email", m);
            }
        }
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*)");
        filters(&mut count, query);
        let total: (i64,) = count.build_query_as().fetch_one(self.reader()).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {USER_COLUMNS}"));
        filters(&mut qb, query);
        push_order(
            &mut qb,
            &query.sort,
            |f| match f {
                UserSortField::Id => "id",
                UserSortField::Username => "username",
                UserSortField::Email => "email",
                UserSortField::CreationTime => "creation_time",
                UserSortField::UpdateTime => "update_time",
            },
            "id ASC",
        );
        qb.push(" LIMIT ");
        qb.push_bind(page.size as i64);
        qb.push(" OFFSET ");
        qb.push_bind(page.offset().min(i64::MAX as u64) as i64);
        let rows: Vec<UserRow> = qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        Ok((rows.into_iter().map(user_from).collect(), total.0))
    }

    async fn update_user_profile(&self, id: UserId, email: &str, realname: &str, comment: &str) -> CoreResult<()> {
        let r = sqlx::query("UPDATE users SET email = $1, realname = $2, comment = $3, update_time = $4 WHERE id = $5 AND NOT deleted")
            .bind(email)
            .bind(realname)
            .bind(comment)
            .bind(berth_core::clock::now())
            .bind(id)
            .execute(&mut *self.durable().await?)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(CoreError::Conflict(format!("the email {email} is already used"))),
            Err(e) => Err(db(e)),
        }
    }

    async fn set_sysadmin(&self, id: UserId, sysadmin: bool) -> CoreResult<()> {
        sqlx::query("UPDATE users SET sysadmin = $1, update_time = $2 WHERE id = $3 AND NOT deleted")
            .bind(sysadmin)
            .bind(berth_core::clock::now())
            .bind(id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delete_user(&self, id: UserId) -> CoreResult<()> {
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        sqlx::query(
            "UPDATE users SET deleted = TRUE, username = username || '#' || CAST(id AS TEXT),
               email = CASE WHEN email = '' THEN '' ELSE email || '#' || CAST(id AS TEXT) END, update_time = $1
             WHERE id = $2 AND NOT deleted",
        )
        .bind(berth_core::clock::now())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        for stmt in [
            "DELETE FROM project_members WHERE entity_type = 'u' AND entity_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
        ] {
            sqlx::query(stmt).bind(id).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn list_members(&self, project_id: ProjectId, entity_name: Option<&str>, page: Page) -> CoreResult<(Vec<Member>, i64)> {
        let mut count = QueryBuilder::<Db>::new(
            "SELECT COUNT(*) FROM project_members m JOIN users u ON u.id = m.entity_id AND m.entity_type = 'u' WHERE m.project_id = ",
        );
        count.push_bind(project_id);
        let mut qb = QueryBuilder::<Db>::new(format!("{MEMBER_SELECT} WHERE m.project_id = "));
        qb.push_bind(project_id);
        if let Some(n) = entity_name.filter(|n| !n.is_empty()) {
            let m = TextMatch::Fuzzy(n.to_owned());
            push_text_match(&mut count, "u.username", &m);
            push_text_match(&mut qb, "u.username", &m);
        }
        let total: (i64,) = count.build_query_as().fetch_one(self.reader()).await.map_err(db)?;
        qb.push(" ORDER BY m.id LIMIT ");
        qb.push_bind(page.size as i64);
        qb.push(" OFFSET ");
        qb.push_bind(page.offset().min(i64::MAX as u64) as i64);
        let rows: Vec<MemberRow> = qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        Ok((rows.into_iter().filter_map(member_from).collect(), total.0))
    }

    async fn member(&self, project_id: ProjectId, id: i64) -> CoreResult<Option<Member>> {
        let row: Option<MemberRow> = sqlx::query_as(&format!("{MEMBER_SELECT} WHERE m.project_id = $1 AND m.id = $2"))
            .bind(project_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        Ok(row.and_then(member_from))
    }

    async fn add_member(&self, project_id: ProjectId, user_id: UserId, role: Role) -> CoreResult<Member> {
        let now = berth_core::clock::now();
        let r: Result<(i64,), _> = sqlx::query_as(
            "INSERT INTO project_members (project_id, entity_type, entity_id, role, creation_time, update_time)
             VALUES ($1, 'u', $2, $3, $4, $4) RETURNING id",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role.id())
        .bind(now)
        .fetch_one(&mut *self.durable().await?)
        .await;
        let id = match r {
            Ok((id,)) => id,
            Err(e) if is_unique_violation(&e) => {
                return Err(CoreError::Conflict("the user is already a member of the project".into()))
            }
            Err(e) => return Err(db(e)),
        };
        self.member(project_id, id)
            .await?
            .ok_or_else(|| CoreError::Internal("created member vanished".into()))
    }

    async fn update_member_role(&self, project_id: ProjectId, id: i64, role: Role) -> CoreResult<bool> {
        let r = sqlx::query("UPDATE project_members SET role = $1, update_time = $2 WHERE project_id = $3 AND id = $4")
            .bind(role.id())
            .bind(berth_core::clock::now())
            .bind(project_id)
            .bind(id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_member(&self, project_id: ProjectId, id: i64) -> CoreResult<bool> {
        let r = sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND id = $2")
            .bind(project_id)
            .bind(id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_robot(&self, robot: &NewRobot) -> CoreResult<Robot> {
        let now = berth_core::clock::now();
        let r: Result<RobotRow, _> = sqlx::query_as(&format!(
            "INSERT INTO robots (name, description, level, project_id, secret_hash, permissions, disabled, duration, expires_at, creator, creation_time, update_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {ROBOT_COLUMNS}"
        ))
        .bind(&robot.name)
        .bind(&robot.description)
        .bind(robot.level.as_str())
        .bind(robot.project_id)
        .bind(&robot.secret_hash)
        .bind(to_json(&robot.permissions))
        .bind(robot.disabled)
        .bind(robot.duration)
        .bind(robot.expires_at)
        .bind(&robot.creator)
        .bind(now)
        .fetch_one(&mut *self.durable().await?)
        .await;
        match r {
            Ok(row) => Ok(row.into_robot()),
            Err(e) if is_unique_violation(&e) => Err(CoreError::Conflict(format!("the robot account {} already exists", robot.name))),
            Err(e) => Err(db(e)),
        }
    }

    async fn robot_by_id(&self, id: i64) -> CoreResult<Option<Robot>> {
        let row: Option<RobotRow> = sqlx::query_as(&format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        Ok(row.map(RobotRow::into_robot))
    }

    async fn robot_by_name(&self, name: &str) -> CoreResult<Option<Robot>> {
        let row: Option<RobotRow> = sqlx::query_as(&format!("SELECT {ROBOT_COLUMNS} FROM robots WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        Ok(row.map(RobotRow::into_robot))
    }

    async fn list_robots(&self, query: &RobotQuery, page: Page) -> CoreResult<(Vec<Robot>, i64)> {
        fn filters(qb: &mut QueryBuilder<'_, Db>, query: &RobotQuery) {
            qb.push(" FROM robots WHERE 1 = 1");
            if let Some(level) = query.level {
                qb.push(" AND level = ");
                qb.push_bind(level.as_str());
            }
            if let Some(pid) = query.project_id {
                qb.push(" AND project_id = ");
                qb.push_bind(pid);
            }
            if let Some(m) = &query.name {
                push_text_match(qb, "name", m);
            }
        }
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*)");
        filters(&mut count, query);
        let total: (i64,) = count.build_query_as().fetch_one(self.reader()).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {ROBOT_COLUMNS}"));
        filters(&mut qb, query);
        qb.push(" ORDER BY id LIMIT ");
        qb.push_bind(page.size as i64);
        qb.push(" OFFSET ");
        qb.push_bind(page.offset().min(i64::MAX as u64) as i64);
        let rows: Vec<RobotRow> = qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        Ok((rows.into_iter().map(RobotRow::into_robot).collect(), total.0))
    }

    async fn update_robot(&self, robot: &Robot) -> CoreResult<()> {
        sqlx::query(
            "UPDATE robots SET description = $1, permissions = $2, disabled = $3, duration = $4, expires_at = $5, update_time = $6 WHERE id = $7",
        )
        .bind(&robot.description)
        .bind(to_json(&robot.permissions))
        .bind(robot.disabled)
        .bind(robot.duration)
        .bind(robot.expires_at)
        .bind(berth_core::clock::now())
        .bind(robot.id)
        .execute(&mut *self.durable().await?)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn set_robot_secret(&self, id: i64, hash: &str) -> CoreResult<()> {
        sqlx::query("UPDATE robots SET secret_hash = $1, secret_version = secret_version + 1, update_time = $2 WHERE id = $3")
            .bind(hash)
            .bind(berth_core::clock::now())
            .bind(id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delete_robot(&self, id: i64) -> CoreResult<bool> {
        let r = sqlx::query("DELETE FROM robots WHERE id = $1")
            .bind(id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_session(&self, token_hash: &str, session: &Session) -> CoreResult<()> {
        let now = berth_core::clock::now();
        let mut conn = self.durable().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, creation_time) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(session.user_id)
            .bind(&session.csrf_token)
            .bind(session.expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: Millis) -> CoreResult<Option<Session>> {
        let row: Option<(i64, String, i64)> =
            sqlx::query_as("SELECT user_id, csrf_token, expires_at FROM sessions WHERE token_hash = $1 AND expires_at >= $2")
                .bind(token_hash)
                .bind(now)
                .fetch_optional(self.reader())
                .await
                .map_err(db)?;
        Ok(row.map(|(user_id, csrf_token, expires_at)| Session {
            user_id,
            csrf_token,
            expires_at,
        }))
    }

    async fn extend_session(&self, token_hash: &str, expires_at: Millis) -> CoreResult<()> {
        sqlx::query("UPDATE sessions SET expires_at = $1 WHERE token_hash = $2")
            .bind(expires_at)
            .bind(token_hash)
            .execute(self.writer())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> CoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl SystemStore for Store {
    async fn configuration(&self) -> CoreResult<BTreeMap<String, String>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM configurations")
            .fetch_all(self.reader())
            .await
            .map_err(db)?;
        Ok(rows.into_iter().collect())
    }

    async fn save_configuration(&self, values: &BTreeMap<String, String>) -> CoreResult<()> {
        let now = berth_core::clock::now();
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        for (k, v) in values {
            sqlx::query(
                "INSERT INTO configurations (key, value, update_time) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, update_time = excluded.update_time",
            )
            .bind(k)
            .bind(v)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn insert_audit(&self, entries: &[AuditEntry]) -> CoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        for e in entries {
            sqlx::query(
                "INSERT INTO audit_logs (project_id, operation, operation_description, resource_type, resource, username, is_successful, op_time)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(e.project_id)
            .bind(&e.operation)
            .bind(&e.operation_description)
            .bind(&e.resource_type)
            .bind(&e.resource)
            .bind(&e.username)
            .bind(e.is_successful)
            .bind(e.op_time)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery, page: Page) -> CoreResult<(Vec<AuditEntry>, i64)> {
        fn filters(qb: &mut QueryBuilder<'_, Db>, query: &AuditQuery) {
            qb.push(" FROM audit_logs WHERE 1 = 1");
            if let Some(projects) = &query.projects {
                if projects.is_empty() {
                    qb.push(" AND 1 = 0");
                } else {
                    qb.push(" AND project_id IN (");
                    let mut sep = qb.separated(", ");
                    for id in projects {
                        sep.push_bind(*id);
                    }
                    sep.push_unseparated(")");
                }
            }
            for (col, m) in [
                ("operation", &query.operation),
                ("resource_type", &query.resource_type),
                ("resource", &query.resource),
                ("username", &query.username),
            ] {
                if let Some(m) = m {
                    push_text_match(qb, col, m);
                }
            }
            if let Some(from) = query.from {
                qb.push(" AND op_time >= ");
                qb.push_bind(from);
            }
            if let Some(to) = query.to {
                qb.push(" AND op_time <= ");
                qb.push_bind(to);
            }
        }
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*)");
        filters(&mut count, query);
        let total: (i64,) = count.build_query_as().fetch_one(self.reader()).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, project_id, operation, operation_description, resource_type, resource, username, is_successful, op_time",
        );
        filters(&mut qb, query);
        push_order(
            &mut qb,
            &query.sort,
            |f| match f {
                AuditSortField::Id => "id",
                AuditSortField::OpTime => "op_time",
                AuditSortField::Operation => "operation",
                AuditSortField::ResourceType => "resource_type",
                AuditSortField::Username => "username",
            },
            "op_time DESC, id DESC",
        );
        qb.push(" LIMIT ");
        qb.push_bind(page.size as i64);
        qb.push(" OFFSET ");
        qb.push_bind(page.offset().min(i64::MAX as u64) as i64);
        let rows: Vec<AuditRow> = qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        Ok((rows.into_iter().map(audit_from).collect(), total.0))
    }

    async fn purge_audit(&self, query: &AuditPurgeQuery, limit: i64) -> CoreResult<i64> {
        let mut qb = QueryBuilder::<Db>::new("DELETE FROM audit_logs WHERE id IN (SELECT id");
        push_audit_purge(&mut qb, query);
        qb.push(" ORDER BY op_time, id LIMIT ");
        qb.push_bind(limit);
        qb.push(")");
        let r = qb.build().execute(self.writer()).await.map_err(db)?;
        Ok(r.rows_affected() as i64)
    }

    async fn count_audit_purge(&self, query: &AuditPurgeQuery) -> CoreResult<i64> {
        let mut qb = QueryBuilder::<Db>::new("SELECT COUNT(*)");
        push_audit_purge(&mut qb, query);
        let n: (i64,) = qb.build_query_as().fetch_one(self.reader()).await.map_err(db)?;
        Ok(n.0)
    }
}

/// `FROM audit_logs WHERE …` for the entries a purge selects: older than
/// its time and, when it names operations or event types, matching one.
fn push_audit_purge(qb: &mut QueryBuilder<'_, Db>, query: &AuditPurgeQuery) {
    qb.push(" FROM audit_logs WHERE op_time < ");
    qb.push_bind(query.before);
    if query.operations.is_empty() && query.event_types.is_empty() {
        return;
    }
    qb.push(" AND (1 = 0");
    if !query.operations.is_empty() {
        qb.push(" OR operation IN (");
        let mut sep = qb.separated(", ");
        for op in &query.operations {
            sep.push_bind(op.clone());
        }
        sep.push_unseparated(")");
    }
    for (op, resource_type) in &query.event_types {
        qb.push(" OR (operation = ");
        qb.push_bind(op.clone());
        qb.push(" AND resource_type = ");
        qb.push_bind(resource_type.clone());
        qb.push(")");
    }
    qb.push(")");
}

/// Whether quotas are enforced: the system setting
/// `quota_per_project_enable`, stored as JSON, unless set to `false`.
const QUOTA_ON: &str =
    "NOT EXISTS (SELECT 1 FROM configurations WHERE key = 'quota_per_project_enable' AND value = 'false')";

/// A blob is referenced while some artifact's manifest names it.
const UNREFERENCED: &str = "NOT EXISTS (SELECT 1 FROM artifact_blobs ab WHERE ab.digest = blobs.digest)";
/// A stored manifest (`manifests m`) that no artifact uses.
const MANIFEST_UNUSED: &str = "NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.digest = m.digest)";

/// What deleting the artifacts `set` frees of what they use through
/// `uses` (a table and its artifact column, each row an artifact's use of
/// a `digest`): the digests no other artifact uses, counted and summed by
/// `totals` (a query prefix ending where `before` is bound).
async fn freed_by(
    conn: &mut <Db as sqlx::Database>::Connection,
    set: &std::collections::HashSet<i64>,
    (table, artifact): (&str, &str),
    totals: &str,
    before: Millis,
) -> CoreResult<(i64, i64)> {
    let ids: Vec<i64> = set.iter().copied().collect();
    let mut used: Vec<String> = vec![];
    for chunk in ids.chunks(500) {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT DISTINCT digest FROM {table} WHERE {artifact} IN ("));
        let mut sep = qb.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        sep.push_unseparated(")");
        let rows: Vec<(String,)> = qb.build_query_as().fetch_all(&mut *conn).await.map_err(db)?;
        used.extend(rows.into_iter().map(|r| r.0));
    }
    used.sort();
    used.dedup();
    let (mut n, mut bytes) = (0, 0);
    for chunk in used.chunks(500) {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT digest, {artifact} FROM {table} WHERE digest IN ("));
        let mut sep = qb.separated(", ");
        for d in chunk {
            sep.push_bind(d.clone());
        }
        sep.push_unseparated(")");
        let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *conn).await.map_err(db)?;
        let kept: std::collections::HashSet<&str> =
            rows.iter().filter(|(_, a)| !set.contains(a)).map(|(d, _)| d.as_str()).collect();
        let freed: Vec<&String> = chunk.iter().filter(|d| !kept.contains(d.as_str())).collect();
        if freed.is_empty() {
            continue;
        }
        let mut qb = QueryBuilder::<Db>::new(totals);
        qb.push_bind(before);
        qb.push(" AND digest IN (");
        let mut sep = qb.separated(", ");
        for d in freed {
            sep.push_bind(d.clone());
        }
        sep.push_unseparated(")");
        let (c, b): (i64, i64) = qb.build_query_as().fetch_one(&mut *conn).await.map_err(db)?;
        n += c;
        bytes += b;
    }
    Ok((n, bytes))
}

fn push_digests(qb: &mut QueryBuilder<'_, Db>, digests: &[Digest]) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for d in digests {
        sep.push_bind(d.as_str().to_owned());
    }
    sep.push_unseparated(")");
}

#[async_trait]
impl GcStore for Store {
    async fn untagged_artifacts(&self, before: Millis, after_id: i64, limit: i64) -> CoreResult<Vec<UntaggedArtifact>> {
        let rows: Vec<(i64, i64, String, String, i64)> = sqlx::query_as(
            "SELECT a.id, a.project_id, r.name, a.digest, a.size FROM artifacts a JOIN repositories r ON r.id = a.repository_id
             WHERE a.id > $1 AND a.push_time < $2
               AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id)
               AND NOT EXISTS (SELECT 1 FROM artifact_references ar WHERE ar.child_id = a.id)
               AND (a.subject_digest IS NULL OR NOT EXISTS
                    (SELECT 1 FROM artifacts s WHERE s.repository_id = a.repository_id AND s.digest = a.subject_digest))
             ORDER BY a.id LIMIT $3",
        )
        .bind(after_id)
        .bind(before)
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(id, project_id, repo, digest, size)| {
                Ok(UntaggedArtifact {
                    id,
                    project_id,
                    repository: RepoName::parse(&repo)
                        .map_err(|_| CoreError::Internal(format!("corrupt repository name in metadata store: {repo:?}")))?,
                    digest: parse_digest(&digest)?,
                    size,
                })
            })
            .collect()
    }

    async fn unreferenced_blobs(&self, before: Millis) -> CoreResult<(i64, i64)> {
        let row: (i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs
             WHERE status = 'none' AND update_time < $1 AND {UNREFERENCED}"
        ))
        .bind(before)
        .fetch_one(self.reader())
        .await
        .map_err(db)?;
        Ok(row)
    }

    async fn untagged_preview(&self, before: Millis, roots: &[i64]) -> CoreResult<UntaggedPreview> {
        // The same closure as `delete_artifacts_deep`, read on one
        // connection: accessories, and untagged children no other index
        // needs; a root whose closure another index still needs stays.
        let mut conn = self.reader().acquire().await.map_err(db)?;
        let mut set: std::collections::HashSet<i64> = std::collections::HashSet::new();
        for &root in roots {
            if set.contains(&root) {
                continue;
            }
            let mut closure: Vec<i64> = vec![];
            let mut queue = vec![root];
            while let Some(id) = queue.pop() {
                if closure.contains(&id) || set.contains(&id) {
                    continue;
                }
                closure.push(id);
                let accessories: Vec<(i64,)> = sqlx::query_as(
                    "SELECT s.id FROM artifacts a JOIN artifacts s ON s.repository_id = a.repository_id AND s.subject_digest = a.digest
                     WHERE a.id = $1",
                )
                .bind(id)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                queue.extend(accessories.into_iter().map(|r| r.0));
                let children: Vec<(i64,)> = sqlx::query_as(
                    "SELECT ar.child_id FROM artifact_references ar WHERE ar.parent_id = $1
                       AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = ar.child_id)
                       AND NOT EXISTS (SELECT 1 FROM artifact_references o WHERE o.child_id = ar.child_id AND o.parent_id <> $1)",
                )
                .bind(id)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                queue.extend(children.into_iter().map(|r| r.0));
            }
            let mut needed = false;
            for id in &closure {
                let parents: Vec<(i64,)> = sqlx::query_as("SELECT parent_id FROM artifact_references WHERE child_id = $1")
                    .bind(*id)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db)?;
                if parents.iter().any(|p| !closure.contains(&p.0)) {
                    needed = true;
                    break;
                }
            }
            if !needed {
                set.extend(closure);
            }
        }
        // A blob goes when every artifact that references it goes, and GC
        // would then mark it (not used since `before`); a manifest goes when
        // every artifact with its digest goes.
        let (blobs, bytes) = freed_by(
            &mut conn,
            &set,
            ("artifact_blobs", "artifact_id"),
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs WHERE status = 'none' AND update_time < ",
            before,
        )
        .await?;
        let (manifests, manifest_bytes) = freed_by(
            &mut conn,
            &set,
            ("artifacts", "id"),
            "SELECT COUNT(*), CAST(COALESCE(SUM(LENGTH(body)), 0) AS BIGINT) FROM manifests WHERE creation_time < ",
            before,
        )
        .await?;
        Ok(UntaggedPreview { artifacts: set.len() as i64, blobs, bytes, manifests, manifest_bytes })
    }

    async fn mark_blobs(&self, before: Millis) -> CoreResult<(i64, i64)> {
        let rows: Vec<(i64,)> = sqlx::query_as(&format!(
            "UPDATE blobs SET status = 'delete' WHERE status = 'none' AND update_time < $1 AND {UNREFERENCED} RETURNING size"
        ))
        .bind(before)
        .fetch_all(&mut *self.durable().await?)
        .await
        .map_err(db)?;
        Ok((rows.len() as i64, rows.iter().map(|r| r.0).sum()))
    }

    async fn claim_sweep(&self, limit: i64) -> CoreResult<Vec<(Digest, i64)>> {
        // The status test is repeated in the outer statement: on PostgreSQL
        // a blob used meanwhile (its row locked and set back to 'none' by a
        // HEAD, mount, upload or manifest PUT) fails it after the wait.
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "UPDATE blobs SET status = 'deleting'
             WHERE digest IN (SELECT digest FROM blobs WHERE status = 'delete' AND {UNREFERENCED} ORDER BY digest LIMIT $1)
               AND status = 'delete' AND {UNREFERENCED}
             RETURNING digest, size"
        ))
        .bind(limit)
        .fetch_all(&mut *self.durable().await?)
        .await
        .map_err(db)?;
        rows.into_iter().map(|(d, s)| Ok((parse_digest(&d)?, s))).collect()
    }

    async fn deleting_blobs(&self, limit: i64) -> CoreResult<Vec<(Digest, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT digest, size FROM blobs WHERE status = 'deleting' ORDER BY digest LIMIT $1")
                .bind(limit)
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
        rows.into_iter().map(|(d, s)| Ok((parse_digest(&d)?, s))).collect()
    }

    async fn finish_sweep(&self, digests: &[Digest]) -> CoreResult<()> {
        if digests.is_empty() {
            return Ok(());
        }
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        // Quota entries of swept blobs; a digest that is also a manifest of
        // the project (someone uploaded the manifest bytes as a blob) stays
        // counted as that manifest.
        let mut qb = QueryBuilder::<Db>::new(
            "DELETE FROM project_blobs WHERE NOT EXISTS
               (SELECT 1 FROM artifacts a WHERE a.project_id = project_blobs.project_id AND a.digest = project_blobs.digest)
             AND digest IN ",
        );
        push_digests(&mut qb, digests);
        qb.push(" RETURNING project_id, size");
        let freed: Vec<(i64, i64)> = qb.build_query_as().fetch_all(&mut *tx).await.map_err(db)?;
        let mut per_project: BTreeMap<i64, i64> = BTreeMap::new();
        for (p, s) in freed {
            *per_project.entry(p).or_default() += s;
        }
        for (p, s) in per_project {
            sqlx::query("UPDATE projects SET storage_used = storage_used - $1 WHERE id = $2")
                .bind(s)
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let mut qb = QueryBuilder::<Db>::new("DELETE FROM repository_blobs WHERE digest IN ");
        push_digests(&mut qb, digests);
        qb.build().execute(&mut *tx).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new("DELETE FROM blobs WHERE status = 'deleting' AND digest IN ");
        push_digests(&mut qb, digests);
        qb.build().execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn unmark_blobs(&self) -> CoreResult<i64> {
        let r = sqlx::query("UPDATE blobs SET status = 'none' WHERE status = 'delete'")
            .execute(self.writer())
            .await
            .map_err(db)?;
        Ok(r.rows_affected() as i64)
    }

    async fn unreferenced_manifests(&self, before: Millis) -> CoreResult<(i64, i64)> {
        let row: (i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(LENGTH(body)), 0) AS BIGINT) FROM manifests m
             WHERE creation_time < $1 AND {MANIFEST_UNUSED}"
        ))
        .bind(before)
        .fetch_one(self.reader())
        .await
        .map_err(db)?;
        Ok(row)
    }

    async fn delete_manifests(&self, before: Millis, limit: i64) -> CoreResult<(i64, i64)> {
        // A manifest PUT upserts the row (refreshing `creation_time`, and
        // on PostgreSQL locking it) before it inserts its artifact: the
        // sub-select skips a row a push holds, and one a push refreshed
        // since fails the time test when PostgreSQL re-reads it.
        let rows: Vec<(i64,)> = sqlx::query_as(&format!(
            "DELETE FROM manifests
             WHERE digest IN (SELECT digest FROM manifests m WHERE creation_time < $1 AND {MANIFEST_UNUSED}
                              ORDER BY digest LIMIT $2{SKIP_LOCKED})
               AND creation_time < $1
               AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.digest = manifests.digest)
             RETURNING CAST(LENGTH(body) AS BIGINT)"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *self.durable().await?)
        .await
        .map_err(db)?;
        Ok((rows.len() as i64, rows.iter().map(|r| r.0).sum()))
    }
}

type ImmutableRow = (i64, i64, i64, bool, String, String, i64, i64);

fn immutable_from(r: ImmutableRow) -> berth_core::immutable::ImmutableRule {
    berth_core::immutable::ImmutableRule {
        id: r.0,
        project_id: r.1,
        priority: r.2,
        disabled: r.3,
        tag_selectors: serde_json::from_str(&r.4).unwrap_or_default(),
        repo_selectors: serde_json::from_str(&r.5).unwrap_or_default(),
        creation_time: r.6,
        update_time: r.7,
    }
}

const IMMUTABLE_COLUMNS: &str = "id, project_id, priority, disabled, tag_selectors, scope_selectors, creation_time, update_time";

#[async_trait]
impl berth_core::ports::PolicyStore for Store {
    async fn immutable_rules(&self, project_id: ProjectId) -> CoreResult<Vec<berth_core::immutable::ImmutableRule>> {
        let rows: Vec<ImmutableRow> =
            sqlx::query_as(&format!("SELECT {IMMUTABLE_COLUMNS} FROM immutable_rules WHERE project_id = $1 ORDER BY id"))
                .bind(project_id)
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
        Ok(rows.into_iter().map(immutable_from).collect())
    }

    async fn create_immutable_rule(&self, r: &berth_core::immutable::ImmutableRule) -> CoreResult<berth_core::immutable::ImmutableRule> {
        let row: ImmutableRow = sqlx::query_as(&format!(
            "INSERT INTO immutable_rules (project_id, priority, disabled, tag_selectors, scope_selectors, creation_time, update_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {IMMUTABLE_COLUMNS}"
        ))
        .bind(r.project_id)
        .bind(r.priority)
        .bind(r.disabled)
        .bind(serde_json::to_string(&r.tag_selectors).map_err(CoreError::internal)?)
        .bind(serde_json::to_string(&r.repo_selectors).map_err(CoreError::internal)?)
        .bind(r.creation_time)
        .bind(r.update_time)
        .fetch_one(&mut *self.durable().await?)
        .await
        .map_err(db)?;
        Ok(immutable_from(row))
    }

    async fn update_immutable_rule(&self, r: &berth_core::immutable::ImmutableRule) -> CoreResult<bool> {
        let res = sqlx::query(
            "UPDATE immutable_rules SET priority = $1, disabled = $2, tag_selectors = $3, scope_selectors = $4, update_time = $5
             WHERE id = $6 AND project_id = $7",
        )
        .bind(r.priority)
        .bind(r.disabled)
        .bind(serde_json::to_string(&r.tag_selectors).map_err(CoreError::internal)?)
        .bind(serde_json::to_string(&r.repo_selectors).map_err(CoreError::internal)?)
        .bind(r.update_time)
        .bind(r.id)
        .bind(r.project_id)
        .execute(&mut *self.durable().await?)
        .await
        .map_err(db)?;
        Ok(res.rows_affected() > 0)
    }

    async fn delete_immutable_rule(&self, project_id: ProjectId, id: i64) -> CoreResult<bool> {
        let res = sqlx::query("DELETE FROM immutable_rules WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(res.rows_affected() > 0)
    }

    async fn retention_policy(&self, id: i64) -> CoreResult<Option<berth_core::retention::StoredPolicy>> {
        let row: Option<(i64, i64, String, i64, i64)> =
            sqlx::query_as("SELECT id, project_id, policy, creation_time, update_time FROM retention_policies WHERE id = $1")
                .bind(id)
                .fetch_optional(self.reader())
                .await
                .map_err(db)?;
        Ok(row.map(|r| berth_core::retention::StoredPolicy {
            id: r.0,
            project_id: r.1,
            policy: r.2,
            creation_time: r.3,
            update_time: r.4,
        }))
    }

    async fn create_retention_policy(&self, project_id: ProjectId, policy: &str, now: Millis) -> CoreResult<i64> {
        let row: Result<(i64,), _> = sqlx::query_as(
            "INSERT INTO retention_policies (project_id, policy, creation_time, update_time) VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(project_id)
        .bind(policy)
        .bind(now)
        .fetch_one(&mut *self.durable().await?)
        .await;
        match row {
            Ok((id,)) => Ok(id),
            Err(e) if is_unique_violation(&e) => Err(CoreError::Conflict("the project has a retention policy already".into())),
            Err(e) => Err(db(e)),
        }
    }

    async fn update_retention_policy(&self, id: i64, policy: &str, now: Millis) -> CoreResult<bool> {
        let r = sqlx::query("UPDATE retention_policies SET policy = $1, update_time = $2 WHERE id = $3")
            .bind(policy)
            .bind(now)
            .bind(id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_retention_policy(&self, id: i64) -> CoreResult<bool> {
        let r = sqlx::query("DELETE FROM retention_policies WHERE id = $1")
            .bind(id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn retention_candidates(&self, repository_id: RepositoryId) -> CoreResult<Vec<berth_core::retention::Candidate>> {
        let rows: Vec<(i64, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT a.id, a.digest, a.push_time, a.pull_time FROM artifacts a WHERE a.repository_id = $1
               AND NOT EXISTS (SELECT 1 FROM artifact_references ar WHERE ar.child_id = a.id)
               AND (a.subject_digest IS NULL OR NOT EXISTS (SELECT 1 FROM artifacts s WHERE s.repository_id = a.repository_id AND s.digest = a.subject_digest))
             ORDER BY a.id",
        )
        .bind(repository_id)
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        let tags: Vec<(i64, String)> = sqlx::query_as("SELECT artifact_id, name FROM tags WHERE repository_id = $1 ORDER BY name")
            .bind(repository_id)
            .fetch_all(self.reader())
            .await
            .map_err(db)?;
        let mut by_artifact: HashMap<i64, Vec<String>> = HashMap::new();
        for (a, t) in tags {
            by_artifact.entry(a).or_default().push(t);
        }
        rows.into_iter()
            .map(|(id, digest, push_time, pull_time)| {
                Ok(berth_core::retention::Candidate {
                    id,
                    digest: parse_digest(&digest)?,
                    tags: by_artifact.remove(&id).unwrap_or_default(),
                    push_time,
                    pull_time,
                })
            })
            .collect()
    }

    async fn delete_artifacts(&self, repository: &RepoName, ids: &[i64], immutable: TagGuard<'_>) -> CoreResult<DeletedArtifacts> {
        retry_aborted(move || async move {
            let mut conn = self.durable().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
            let Some((repo_id,)): Option<(i64,)> = sqlx::query_as("SELECT id FROM repositories WHERE name = $1")
                .bind(repository.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
            else {
                return Ok(DeletedArtifacts::default());
            };
            // Only ids still in the repository (a concurrent delete is fine).
            let mut qb = QueryBuilder::<Db>::new("SELECT id FROM artifacts WHERE repository_id = ");
            qb.push_bind(repo_id);
            qb.push(" AND id IN (");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            sep.push_unseparated(")");
            let present: Vec<(i64,)> = qb.build_query_as().fetch_all(&mut *tx).await.map_err(db)?;
            if present.is_empty() {
                return Ok(DeletedArtifacts::default());
            }
            let deleted = Self::delete_artifacts_deep(&mut tx, repo_id, present.into_iter().map(|r| r.0).collect(), true, immutable).await?;
            tx.commit().await.map_err(db)?;
            Ok(deleted)
        })
        .await
    }
}

const STORAGE_REQUEST_SELECT: &str = "SELECT s.id, s.project_id, p.name, s.requested_storage, s.current_storage_limit, s.reason, s.status, s.requester, s.reviewer, s.comment, s.creation_time, s.update_time
     FROM storage_requests s JOIN projects p ON p.id = s.project_id";

type StorageRequestRow = (i64, i64, String, i64, i64, String, String, String, String, String, i64, i64);

fn storage_request_from(r: StorageRequestRow) -> CoreResult<StorageRequest> {
    Ok(StorageRequest {
        id: r.0,
        project_id: r.1,
        project_name: r.2,
        requested_storage: r.3,
        current_storage_limit: r.4,
        reason: r.5,
        status: StorageRequestStatus::parse(&r.6)
            .ok_or_else(|| CoreError::Internal(format!("corrupt storage request status in metadata store: {:?}", r.6)))?,
        requester: r.7,
        reviewer: r.8,
        comment: r.9,
        creation_time: r.10,
        update_time: r.11,
    })
}

#[async_trait]
impl StorageRequestStore for Store {
    async fn create_storage_request(&self, new: &NewStorageRequest) -> CoreResult<StorageRequest> {
        let id: Result<(i64,), _> = sqlx::query_as(
            "INSERT INTO storage_requests (project_id, requested_storage, current_storage_limit, reason, status, requester, creation_time, update_time)
             SELECT id, $2, $3, $4, 'pending', $5, $6, $6 FROM projects WHERE id = $1 RETURNING id",
        )
        .bind(new.project_id)
        .bind(new.requested_storage)
        .bind(new.current_storage_limit)
        .bind(&new.reason)
        .bind(&new.requester)
        .bind(new.now)
        .fetch_one(&mut *self.durable().await?)
        .await;
        let id = match id {
            Ok(r) => r.0,
            Err(sqlx::Error::RowNotFound) => return Err(CoreError::ProjectNotFound(new.project_id.to_string())),
            Err(e) if is_unique_violation(&e) => {
                return Err(CoreError::Conflict("the project has a pending storage request already".into()))
            }
            Err(e) => return Err(db(e)),
        };
        self.storage_request(id)
            .await?
            .ok_or_else(|| CoreError::Internal("created storage request vanished".into()))
    }

    async fn storage_request(&self, id: i64) -> CoreResult<Option<StorageRequest>> {
        let row: Option<StorageRequestRow> = sqlx::query_as(&format!("{STORAGE_REQUEST_SELECT} WHERE s.id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        row.map(storage_request_from).transpose()
    }

    async fn list_storage_requests(&self, query: &StorageRequestQuery, page: Page) -> CoreResult<(Vec<StorageRequest>, i64)> {
        fn filters(qb: &mut QueryBuilder<'_, Db>, query: &StorageRequestQuery) {
            qb.push(" WHERE 1 = 1");
            if let Some(p) = query.project_id {
                qb.push(" AND s.project_id = ");
                qb.push_bind(p);
            }
            if let Some(status) = query.status {
                qb.push(" AND s.status = ");
                qb.push_bind(status.as_str());
            }
        }
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM storage_requests s JOIN projects p ON p.id = s.project_id");
        filters(&mut count, query);
        let total: (i64,) = count.build_query_as().fetch_one(self.reader()).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new(STORAGE_REQUEST_SELECT);
        filters(&mut qb, query);
        qb.push(" ORDER BY s.id DESC LIMIT ");
        qb.push_bind(page.size as i64);
        qb.push(" OFFSET ");
        qb.push_bind(page.offset().min(i64::MAX as u64) as i64);
        let rows: Vec<StorageRequestRow> = qb.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        let rows = rows.into_iter().map(storage_request_from).collect::<CoreResult<_>>()?;
        Ok((rows, total.0))
    }

    async fn decide_storage_request(&self, id: i64, decision: &StorageDecision) -> CoreResult<Option<StorageRequest>> {
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        // Conditional on 'pending': on PostgreSQL a second decider waits for
        // the first one's row lock, then finds the request decided.
        let row: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE storage_requests SET status = $1, reviewer = $2, comment = $3, update_time = $4
             WHERE id = $5 AND status = 'pending' RETURNING project_id, requested_storage",
        )
        .bind(decision.status.as_str())
        .bind(&decision.reviewer)
        .bind(&decision.comment)
        .bind(decision.now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some((project_id, storage)) = row else {
            let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM storage_requests WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            return match exists {
                Some(_) => Err(CoreError::Conflict(format!("storage request {id} was decided already"))),
                None => Ok(None),
            };
        };
        if decision.status == StorageRequestStatus::Approved {
            Self::update_storage_limit(&mut tx, project_id, storage, decision.now).await?;
        }
        tx.commit().await.map_err(db)?;
        drop(conn);
        self.storage_request(id).await
    }

    async fn withdraw_storage_request(&self, id: i64) -> CoreResult<bool> {
        let mut conn = self.durable().await?;
        let r = sqlx::query("DELETE FROM storage_requests WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        if r.rows_affected() > 0 {
            return Ok(true);
        }
        let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM storage_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        match exists {
            Some(_) => Err(CoreError::Conflict(format!("storage request {id} was decided already"))),
            None => Ok(false),
        }
    }
}
