//! A read cache in front of a `MetaStore` that only this process writes to
//! (the embedded SQLite store): users, roles, robots, project access facts,
//! resolved manifests and repository blob links — the reads behind every
//! authenticated pull — are answered from memory. Every write that can change them invalidates them first, and a
//! generation counter keeps a read that raced with a write from caching a
//! stale answer. Not for stores shared by several nodes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use berth_core::access::{ProjectRef, Role, Visibility};
use berth_core::clock::Millis;
use berth_core::error::CoreResult;
use berth_core::model::*;
use berth_core::ports::{
    AccountStore, BlobPresence, GcStore, JobStore, MetaStore, ProjectStore, RegistryStore,
    StorageRequestStore, SystemStore, TagGuard, UntaggedArtifact, UserStore,
};
use berth_core::query::{
    ArtifactQuery, AuditPurgeQuery, AuditQuery, Page, ProjectQuery, RepositoryQuery, RobotQuery,
    StorageRequestQuery, UserQuery,
};
use berth_oci::{Digest, Reference, RepoName, Tag};

/// Entries kept before a map is simply emptied.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
struct Maps {
    users_by_name: HashMap<String, Option<User>>,
    users_by_id: HashMap<UserId, Option<User>>,
    roles: HashMap<UserId, HashMap<ProjectId, Vec<Role>>>,
    robots_by_name: HashMap<String, Option<Robot>>,
    robots_by_id: HashMap<i64, Option<Robot>>,
    projects: HashMap<String, Option<ProjectRef>>,
    manifests: HashMap<String, HashMap<String, Option<ManifestRecord>>>,
    blobs: HashMap<String, HashMap<String, Option<LinkedBlob>>>,
    entries: usize,
}

impl Maps {
    fn count(&mut self) {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            *self = Maps::default();
        }
    }
}

pub struct CachedStore {
    inner: Arc<dyn MetaStore>,
    generation: AtomicU64,
    maps: Mutex<Maps>,
}

impl CachedStore {
    pub fn new(inner: Arc<dyn MetaStore>) -> Self {
        CachedStore {
            inner,
            generation: AtomicU64::new(0),
            maps: Mutex::new(Maps::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Maps> {
        // A poisoned lock only means another thread panicked mid-update of a
        // cache; start from an empty cache.
        match self.maps.lock() {
            Ok(g) => g,
            Err(p) => {
                let mut g = p.into_inner();
                *g = Maps::default();
                g
            }
        }
    }

    /// Called after every write: drops what it may have changed.
    fn invalidate(&self, f: impl FnOnce(&mut Maps)) {
        let mut m = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        f(&mut m);
    }

    fn clear_all(&self) {
        self.invalidate(|m| *m = Maps::default());
    }

    /// Reads through the cache: `get` finds a cached value, `load` asks the
    /// store, `put` caches its answer unless a write happened meanwhile.
    async fn read_through<T: Clone, F>(
        &self,
        get: impl Fn(&Maps) -> Option<T>,
        load: F,
        put: impl FnOnce(&mut Maps, T),
    ) -> CoreResult<T>
    where
        F: std::future::Future<Output = CoreResult<T>>,
    {
        if let Some(hit) = get(&self.lock()) {
            return Ok(hit);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let value = load.await?;
        let mut m = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            put(&mut m, value.clone());
            m.count();
        }
        Ok(value)
    }

    fn forget_accounts(&self) {
        self.invalidate(|m| {
            m.users_by_name.clear();
            m.users_by_id.clear();
            m.roles.clear();
            m.robots_by_name.clear();
            m.robots_by_id.clear();
        });
    }
}

#[async_trait]
impl UserStore for CachedStore {
    async fn create_user(&self, user: &NewUser) -> CoreResult<User> {
        let r = self.inner.create_user(user).await;
        self.forget_accounts();
        r
    }
    async fn user_by_name(&self, username: &str) -> CoreResult<Option<User>> {
        self.read_through(
            |m| m.users_by_name.get(username).cloned(),
            self.inner.user_by_name(username),
            |m, v| {
                m.users_by_name.insert(username.to_owned(), v);
            },
        )
        .await
    }
    async fn user_by_id(&self, id: UserId) -> CoreResult<Option<User>> {
        self.read_through(
            |m| m.users_by_id.get(&id).cloned(),
            self.inner.user_by_id(id),
            |m, v| {
                m.users_by_id.insert(id, v);
            },
        )
        .await
    }
    async fn set_password_hash(&self, id: UserId, hash: &str) -> CoreResult<()> {
        let r = self.inner.set_password_hash(id, hash).await;
        self.forget_accounts();
        r
    }
    async fn roles_of_user(&self, id: UserId) -> CoreResult<HashMap<ProjectId, Vec<Role>>> {
        self.read_through(
            |m| m.roles.get(&id).cloned(),
            self.inner.roles_of_user(id),
            |m, v| {
                m.roles.insert(id, v);
            },
        )
        .await
    }
}

#[async_trait]
impl ProjectStore for CachedStore {
    async fn create_project(&self, project: &NewProject) -> CoreResult<Project> {
        let r = self.inner.create_project(project).await;
        // The owner became a member.
        self.invalidate(|m| {
            m.projects.remove(project.name.as_str());
            m.roles.clear();
        });
        r
    }
    async fn project_by_name(&self, name: &str) -> CoreResult<Option<Project>> {
        self.inner.project_by_name(name).await
    }
    async fn project_ref(&self, name: &str) -> CoreResult<Option<ProjectRef>> {
        if let Some(hit) = self.lock().projects.get(name) {
            return Ok(*hit);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let value = self.inner.project_ref(name).await?;
        let mut m = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            m.projects.insert(name.to_owned(), value);
            m.count();
        }
        Ok(value)
    }
    async fn project_by_id(&self, id: ProjectId) -> CoreResult<Option<Project>> {
        self.inner.project_by_id(id).await
    }
    async fn list_projects(
        &self,
        query: &ProjectQuery,
        page: Page,
    ) -> CoreResult<(Vec<Project>, i64)> {
        self.inner.list_projects(query, page).await
    }
    async fn update_project(
        &self,
        id: ProjectId,
        public: bool,
        metadata: &BTreeMap<String, String>,
    ) -> CoreResult<()> {
        let r = self.inner.update_project(id, public, metadata).await;
        self.invalidate(|m| m.projects.clear());
        r
    }
    async fn set_storage_limit(&self, id: ProjectId, limit: i64, now: Millis) -> CoreResult<bool> {
        self.inner.set_storage_limit(id, limit, now).await
    }
    async fn delete_project(&self, id: ProjectId) -> CoreResult<Vec<Upload>> {
        let r = self.inner.delete_project(id).await;
        self.clear_all();
        r
    }
    async fn project_summary(&self, id: ProjectId) -> CoreResult<ProjectSummary> {
        self.inner.project_summary(id).await
    }
    async fn list_repositories(
        &self,
        query: &RepositoryQuery,
        page: Page,
    ) -> CoreResult<(Vec<Repository>, i64)> {
        self.inner.list_repositories(query, page).await
    }
    async fn repository_by_name(&self, name: &str) -> CoreResult<Option<Repository>> {
        self.inner.repository_by_name(name).await
    }
    async fn update_repository_description(
        &self,
        id: RepositoryId,
        description: &str,
    ) -> CoreResult<()> {
        self.inner
            .update_repository_description(id, description)
            .await
    }
    async fn delete_repository(
        &self,
        id: RepositoryId,
        immutable: TagGuard<'_>,
    ) -> CoreResult<DeletedArtifacts> {
        let r = self.inner.delete_repository(id, immutable).await;
        self.clear_all();
        r
    }
    async fn list_artifacts(
        &self,
        query: &ArtifactQuery,
        page: Page,
    ) -> CoreResult<(Vec<Artifact>, i64)> {
        self.inner.list_artifacts(query, page).await
    }
    async fn artifact_by_reference(
        &self,
        repository_id: RepositoryId,
        reference: &Reference,
    ) -> CoreResult<Option<Artifact>> {
        self.inner
            .artifact_by_reference(repository_id, reference)
            .await
    }
    async fn create_tag(
        &self,
        artifact: &Artifact,
        tag: &Tag,
        now: Millis,
    ) -> CoreResult<TagRecord> {
        let r = self.inner.create_tag(artifact, tag, now).await;
        self.invalidate(|m| {
            m.manifests.remove(&artifact.repository_name);
        });
        r
    }
}

#[async_trait]
impl RegistryStore for CachedStore {
    async fn linked_blob(
        &self,
        repository: &RepoName,
        digest: &Digest,
    ) -> CoreResult<Option<LinkedBlob>> {
        if let Some(hit) = self
            .lock()
            .blobs
            .get(repository.as_str())
            .and_then(|r| r.get(digest.as_str()))
        {
            return Ok(*hit);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let value = self.inner.linked_blob(repository, digest).await?;
        // Blobs GC has marked are not cached: their next use must reach the
        // store and clear the mark.
        if value.is_none_or(|b| b.status == BlobStatus::None) {
            let mut m = self.lock();
            if self.generation.load(Ordering::SeqCst) == generation {
                m.blobs
                    .entry(repository.as_str().to_owned())
                    .or_default()
                    .insert(digest.as_str().to_owned(), value);
                m.count();
            }
        }
        Ok(value)
    }
    async fn touch_blob(&self, digest: &Digest, now: Millis) -> CoreResult<BlobPresence> {
        let r = self.inner.touch_blob(digest, now).await;
        // The blob's time (and maybe status) changed in every repository
        // linking it: drop those entries, and only those (upload
        // completions touch too, so clearing the whole map would empty
        // the read cache on every push).
        self.invalidate(|m| {
            for links in m.blobs.values_mut() {
                links.remove(digest.as_str());
            }
        });
        r
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
        let r = self
            .inner
            .commit_blob(project_id, repository, digest, size, upload_id, now)
            .await;
        self.invalidate(|m| {
            if let Some(b) = m.blobs.get_mut(repository.as_str()) {
                b.remove(digest.as_str());
            }
        });
        r
    }
    async fn mount_blob(
        &self,
        project_id: ProjectId,
        repository: &RepoName,
        from: &RepoName,
        digest: &Digest,
        now: Millis,
    ) -> CoreResult<Option<(BlobInfo, QuotaCharge)>> {
        let r = self
            .inner
            .mount_blob(project_id, repository, from, digest, now)
            .await;
        self.invalidate(|m| {
            if let Some(b) = m.blobs.get_mut(repository.as_str()) {
                b.remove(digest.as_str());
            }
        });
        r
    }
    async fn unlink_blob(&self, repository: &RepoName, digest: &Digest) -> CoreResult<bool> {
        let r = self.inner.unlink_blob(repository, digest).await;
        self.invalidate(|m| {
            if let Some(b) = m.blobs.get_mut(repository.as_str()) {
                b.remove(digest.as_str());
            }
        });
        r
    }
    async fn unlink_unused_blobs(
        &self,
        repository: &RepoName,
        digests: &[Digest],
    ) -> CoreResult<()> {
        let r = self.inner.unlink_unused_blobs(repository, digests).await;
        self.invalidate(|m| {
            if let Some(b) = m.blobs.get_mut(repository.as_str()) {
                for d in digests {
                    b.remove(d.as_str());
                }
            }
        });
        r
    }
    async fn create_upload(&self, upload: &Upload) -> CoreResult<()> {
        self.inner.create_upload(upload).await
    }
    async fn get_upload(&self, repository: &RepoName, id: &str) -> CoreResult<Option<Upload>> {
        self.inner.get_upload(repository, id).await
    }
    async fn claim_upload(
        &self,
        repository: &RepoName,
        id: &str,
        owner: &str,
        until: Millis,
        now: Millis,
    ) -> CoreResult<UploadClaim> {
        self.inner
            .claim_upload(repository, id, owner, until, now)
            .await
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
        self.inner
            .save_upload(id, owner, size, hash_state, backend_state, now)
            .await
    }
    async fn renew_upload(&self, id: &str, owner: &str, until: Millis) -> CoreResult<bool> {
        self.inner.renew_upload(id, owner, until).await
    }
    async fn release_upload(&self, id: &str, owner: &str) -> CoreResult<()> {
        self.inner.release_upload(id, owner).await
    }
    async fn delete_upload(&self, id: &str) -> CoreResult<Option<Upload>> {
        self.inner.delete_upload(id).await
    }
    async fn stale_uploads(&self, before: Millis, limit: i64) -> CoreResult<Vec<Upload>> {
        self.inner.stale_uploads(before, limit).await
    }
    async fn delete_stale_upload(
        &self,
        id: &str,
        before: Millis,
        now: Millis,
    ) -> CoreResult<Option<Upload>> {
        self.inner.delete_stale_upload(id, before, now).await
    }
    async fn put_manifest(&self, artifact: &NewArtifact) -> CoreResult<PutManifestOutcome> {
        let r = self.inner.put_manifest(artifact).await;
        self.invalidate(|m| {
            m.manifests.remove(artifact.repository.as_str());
        });
        r
    }
    async fn resolve_manifest(
        &self,
        repository: &RepoName,
        reference: &Reference,
    ) -> CoreResult<Option<ManifestRecord>> {
        let key = reference.to_string();
        if let Some(hit) = self
            .lock()
            .manifests
            .get(repository.as_str())
            .and_then(|r| r.get(&key))
        {
            return Ok(hit.clone());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let value = self.inner.resolve_manifest(repository, reference).await?;
        let mut m = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            m.manifests
                .entry(repository.as_str().to_owned())
                .or_default()
                .insert(key, value.clone());
            m.count();
        }
        Ok(value)
    }
    async fn delete_manifest(
        &self,
        repository: &RepoName,
        digest: &Digest,
        immutable: TagGuard<'_>,
    ) -> CoreResult<DeletedArtifacts> {
        let r = self
            .inner
            .delete_manifest(repository, digest, immutable)
            .await;
        self.invalidate(|m| {
            m.manifests.remove(repository.as_str());
        });
        r
    }
    async fn delete_tag(&self, repository: &RepoName, tag: &Tag) -> CoreResult<bool> {
        let r = self.inner.delete_tag(repository, tag).await;
        self.invalidate(|m| {
            m.manifests.remove(repository.as_str());
        });
        r
    }
    async fn list_tags(
        &self,
        repository: &RepoName,
        last: Option<&str>,
        limit: u64,
    ) -> CoreResult<Option<Vec<String>>> {
        self.inner.list_tags(repository, last, limit).await
    }
    async fn referrers(
        &self,
        repository: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> CoreResult<Vec<Referrer>> {
        self.inner
            .referrers(repository, subject, artifact_type)
            .await
    }
    async fn catalog(
        &self,
        visibility: &Visibility,
        last: Option<&str>,
        limit: u64,
    ) -> CoreResult<Vec<String>> {
        self.inner.catalog(visibility, last, limit).await
    }
    async fn record_pulls(&self, pulls: &[PullRecord]) -> CoreResult<()> {
        self.inner.record_pulls(pulls).await
    }
}

impl MetaStore for CachedStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[async_trait]
impl AccountStore for CachedStore {
    async fn list_users(&self, query: &UserQuery, page: Page) -> CoreResult<(Vec<User>, i64)> {
        self.inner.list_users(query, page).await
    }
    async fn update_user_profile(
        &self,
        id: UserId,
        email: &str,
        realname: &str,
        comment: &str,
    ) -> CoreResult<()> {
        let r = self
            .inner
            .update_user_profile(id, email, realname, comment)
            .await;
        self.forget_accounts();
        r
    }
    async fn set_sysadmin(&self, id: UserId, sysadmin: bool) -> CoreResult<()> {
        let r = self.inner.set_sysadmin(id, sysadmin).await;
        self.forget_accounts();
        r
    }
    async fn delete_user(&self, id: UserId) -> CoreResult<()> {
        let r = self.inner.delete_user(id).await;
        self.forget_accounts();
        r
    }
    async fn list_members(
        &self,
        project_id: ProjectId,
        entity_name: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<Member>, i64)> {
        self.inner.list_members(project_id, entity_name, page).await
    }
    async fn member(&self, project_id: ProjectId, id: i64) -> CoreResult<Option<Member>> {
        self.inner.member(project_id, id).await
    }
    async fn add_member(
        &self,
        project_id: ProjectId,
        user_id: UserId,
        role: Role,
    ) -> CoreResult<Member> {
        let r = self.inner.add_member(project_id, user_id, role).await;
        self.forget_accounts();
        r
    }
    async fn update_member_role(
        &self,
        project_id: ProjectId,
        id: i64,
        role: Role,
    ) -> CoreResult<bool> {
        let r = self.inner.update_member_role(project_id, id, role).await;
        self.forget_accounts();
        r
    }
    async fn delete_member(&self, project_id: ProjectId, id: i64) -> CoreResult<bool> {
        let r = self.inner.delete_member(project_id, id).await;
        self.forget_accounts();
        r
    }
    async fn create_robot(&self, robot: &NewRobot) -> CoreResult<Robot> {
        let r = self.inner.create_robot(robot).await;
        self.forget_accounts();
        r
    }
    async fn robot_by_id(&self, id: i64) -> CoreResult<Option<Robot>> {
        self.read_through(
            |m| m.robots_by_id.get(&id).cloned(),
            self.inner.robot_by_id(id),
            |m, v| {
                m.robots_by_id.insert(id, v);
            },
        )
        .await
    }
    async fn robot_by_name(&self, name: &str) -> CoreResult<Option<Robot>> {
        self.read_through(
            |m| m.robots_by_name.get(name).cloned(),
            self.inner.robot_by_name(name),
            |m, v| {
                m.robots_by_name.insert(name.to_owned(), v);
            },
        )
        .await
    }
    async fn list_robots(&self, query: &RobotQuery, page: Page) -> CoreResult<(Vec<Robot>, i64)> {
        self.inner.list_robots(query, page).await
    }
    async fn update_robot(&self, robot: &Robot) -> CoreResult<()> {
        let r = self.inner.update_robot(robot).await;
        self.forget_accounts();
        r
    }
    async fn set_robot_secret(&self, id: i64, hash: &str) -> CoreResult<()> {
        let r = self.inner.set_robot_secret(id, hash).await;
        self.forget_accounts();
        r
    }
    async fn delete_robot(&self, id: i64) -> CoreResult<bool> {
        let r = self.inner.delete_robot(id).await;
        self.forget_accounts();
        r
    }
    async fn create_session(&self, token_hash: &str, session: &Session) -> CoreResult<()> {
        self.inner.create_session(token_hash, session).await
    }
    async fn session(&self, token_hash: &str, now: Millis) -> CoreResult<Option<Session>> {
        self.inner.session(token_hash, now).await
    }
    async fn extend_session(&self, token_hash: &str, expires_at: Millis) -> CoreResult<()> {
        self.inner.extend_session(token_hash, expires_at).await
    }
    async fn delete_session(&self, token_hash: &str) -> CoreResult<()> {
        self.inner.delete_session(token_hash).await
    }
}

#[async_trait]
impl SystemStore for CachedStore {
    async fn configuration(&self) -> CoreResult<BTreeMap<String, String>> {
        self.inner.configuration().await
    }
    async fn save_configuration(&self, values: &BTreeMap<String, String>) -> CoreResult<()> {
        self.inner.save_configuration(values).await
    }
    async fn insert_audit(&self, entries: &[AuditEntry]) -> CoreResult<()> {
        self.inner.insert_audit(entries).await
    }
    async fn list_audit(
        &self,
        query: &AuditQuery,
        page: Page,
    ) -> CoreResult<(Vec<AuditEntry>, i64)> {
        self.inner.list_audit(query, page).await
    }
    async fn purge_audit(&self, query: &AuditPurgeQuery, limit: i64) -> CoreResult<i64> {
        self.inner.purge_audit(query, limit).await
    }
    async fn count_audit_purge(&self, query: &AuditPurgeQuery) -> CoreResult<i64> {
        self.inner.count_audit_purge(query).await
    }
}

#[async_trait]
impl JobStore for CachedStore {
    async fn create_execution(&self, new: &NewExecution, now: Millis) -> CoreResult<Execution> {
        self.inner.create_execution(new, now).await
    }
    async fn execution(&self, id: i64) -> CoreResult<Option<Execution>> {
        self.inner.execution(id).await
    }
    async fn list_executions(
        &self,
        vendor_type: &str,
        vendor_id: Option<i64>,
        page: Page,
    ) -> CoreResult<(Vec<Execution>, i64)> {
        self.inner
            .list_executions(vendor_type, vendor_id, page)
            .await
    }
    async fn tasks(&self, execution_id: i64) -> CoreResult<Vec<Task>> {
        self.inner.tasks(execution_id).await
    }
    async fn task(&self, id: i64) -> CoreResult<Option<Task>> {
        self.inner.task(id).await
    }
    async fn claim_task(
        &self,
        vendor_types: &[&str],
        worker: &str,
        now: Millis,
        stale_before: Millis,
    ) -> CoreResult<Option<Task>> {
        self.inner
            .claim_task(vendor_types, worker, now, stale_before)
            .await
    }
    async fn heartbeat_task(
        &self,
        id: i64,
        worker: &str,
        now: Millis,
        done: i64,
        total: i64,
    ) -> CoreResult<Heartbeat> {
        self.inner
            .heartbeat_task(id, worker, now, done, total)
            .await
    }
    async fn finish_task(
        &self,
        id: i64,
        worker: &str,
        status: JobStatus,
        message: &str,
        now: Millis,
    ) -> CoreResult<bool> {
        self.inner
            .finish_task(id, worker, status, message, now)
            .await
    }
    async fn stop_execution(&self, id: i64, now: Millis) -> CoreResult<bool> {
        self.inner.stop_execution(id, now).await
    }
    async fn append_task_log(&self, id: i64, now: Millis, lines: &[String]) -> CoreResult<()> {
        self.inner.append_task_log(id, now, lines).await
    }
    async fn task_log(&self, id: i64) -> CoreResult<Vec<(Millis, String)>> {
        self.inner.task_log(id).await
    }

    async fn schedule(&self, vendor_type: &str, vendor_id: i64) -> CoreResult<Option<Schedule>> {
        self.inner.schedule(vendor_type, vendor_id).await
    }
    async fn put_schedule(&self, schedule: &Schedule) -> CoreResult<Schedule> {
        self.inner.put_schedule(schedule).await
    }
    async fn delete_schedule(&self, vendor_type: &str, vendor_id: i64) -> CoreResult<bool> {
        self.inner.delete_schedule(vendor_type, vendor_id).await
    }
    async fn due_schedules(&self, now: Millis) -> CoreResult<Vec<Schedule>> {
        self.inner.due_schedules(now).await
    }
    async fn advance_schedule(&self, id: i64, from: Millis, to: Millis) -> CoreResult<bool> {
        self.inner.advance_schedule(id, from, to).await
    }
}

/// Garbage collection changes blob states and removes links: every step
/// drops the cached blob links, so the next use of a marked blob reaches
/// the store and clears its mark.
#[async_trait]
impl GcStore for CachedStore {
    async fn untagged_artifacts(
        &self,
        before: Millis,
        after_id: i64,
        limit: i64,
    ) -> CoreResult<Vec<UntaggedArtifact>> {
        self.inner.untagged_artifacts(before, after_id, limit).await
    }
    async fn unreferenced_blobs(&self, before: Millis) -> CoreResult<(i64, i64)> {
        self.inner.unreferenced_blobs(before).await
    }
    async fn untagged_preview(
        &self,
        before: Millis,
        roots: &[i64],
    ) -> CoreResult<berth_core::ports::UntaggedPreview> {
        self.inner.untagged_preview(before, roots).await
    }
    async fn mark_blobs(&self, before: Millis) -> CoreResult<(i64, i64)> {
        self.invalidate(|m| m.blobs.clear());
        let r = self.inner.mark_blobs(before).await;
        self.invalidate(|m| m.blobs.clear());
        r
    }
    async fn claim_sweep(&self, limit: i64) -> CoreResult<Vec<(Digest, i64)>> {
        let r = self.inner.claim_sweep(limit).await;
        self.invalidate(|m| m.blobs.clear());
        r
    }
    async fn deleting_blobs(&self, limit: i64) -> CoreResult<Vec<(Digest, i64)>> {
        self.inner.deleting_blobs(limit).await
    }
    async fn finish_sweep(&self, digests: &[Digest]) -> CoreResult<()> {
        let r = self.inner.finish_sweep(digests).await;
        self.invalidate(|m| m.blobs.clear());
        r
    }
    async fn unmark_blobs(&self) -> CoreResult<i64> {
        let r = self.inner.unmark_blobs().await;
        self.invalidate(|m| m.blobs.clear());
        r
    }
    async fn unreferenced_manifests(&self, before: Millis) -> CoreResult<(i64, i64)> {
        self.inner.unreferenced_manifests(before).await
    }
    // Only manifests no artifact uses: nothing cached resolves to them.
    async fn delete_manifests(&self, before: Millis, limit: i64) -> CoreResult<(i64, i64)> {
        self.inner.delete_manifests(before, limit).await
    }
}

#[async_trait]
impl berth_core::ports::PolicyStore for CachedStore {
    async fn immutable_rules(
        &self,
        project_id: ProjectId,
    ) -> CoreResult<Vec<berth_core::immutable::ImmutableRule>> {
        self.inner.immutable_rules(project_id).await
    }
    async fn create_immutable_rule(
        &self,
        rule: &berth_core::immutable::ImmutableRule,
    ) -> CoreResult<berth_core::immutable::ImmutableRule> {
        self.inner.create_immutable_rule(rule).await
    }
    async fn update_immutable_rule(
        &self,
        rule: &berth_core::immutable::ImmutableRule,
    ) -> CoreResult<bool> {
        self.inner.update_immutable_rule(rule).await
    }
    async fn delete_immutable_rule(&self, project_id: ProjectId, id: i64) -> CoreResult<bool> {
        self.inner.delete_immutable_rule(project_id, id).await
    }
    async fn retention_policy(
        &self,
        id: i64,
    ) -> CoreResult<Option<berth_core::retention::StoredPolicy>> {
        self.inner.retention_policy(id).await
    }
    async fn create_retention_policy(
        &self,
        project_id: ProjectId,
        policy: &str,
        now: Millis,
    ) -> CoreResult<i64> {
        self.inner
            .create_retention_policy(project_id, policy, now)
            .await
    }
    async fn update_retention_policy(
        &self,
        id: i64,
        policy: &str,
        now: Millis,
    ) -> CoreResult<bool> {
        self.inner.update_retention_policy(id, policy, now).await
    }
    async fn delete_retention_policy(&self, id: i64) -> CoreResult<bool> {
        self.inner.delete_retention_policy(id).await
    }
    async fn retention_candidates(
        &self,
        repository_id: RepositoryId,
    ) -> CoreResult<Vec<berth_core::retention::Candidate>> {
        self.inner.retention_candidates(repository_id).await
    }
    async fn delete_artifacts(
        &self,
        repository: &RepoName,
        ids: &[i64],
        immutable: TagGuard<'_>,
    ) -> CoreResult<DeletedArtifacts> {
        let r = self
            .inner
            .delete_artifacts(repository, ids, immutable)
            .await;
        self.invalidate(|m| {
            m.manifests.remove(repository.as_str());
        });
        r
    }
}

/// Nothing here is cached: approving changes only a project's storage
/// limit, which the cache does not hold.
#[async_trait]
impl StorageRequestStore for CachedStore {
    async fn create_storage_request(&self, new: &NewStorageRequest) -> CoreResult<StorageRequest> {
        self.inner.create_storage_request(new).await
    }
    async fn storage_request(&self, id: i64) -> CoreResult<Option<StorageRequest>> {
        self.inner.storage_request(id).await
    }
    async fn list_storage_requests(
        &self,
        query: &StorageRequestQuery,
        page: Page,
    ) -> CoreResult<(Vec<StorageRequest>, i64)> {
        self.inner.list_storage_requests(query, page).await
    }
    async fn decide_storage_request(
        &self,
        id: i64,
        decision: &StorageDecision,
    ) -> CoreResult<Option<StorageRequest>> {
        self.inner.decide_storage_request(id, decision).await
    }
    async fn withdraw_storage_request(&self, id: i64) -> CoreResult<bool> {
        self.inner.withdraw_storage_request(id).await
    }
}
