//! The ports: what the domain needs from storage, as object-safe traits.
//! Each method's doc comment is its contract; every backend must pass the
//! shared conformance suites in `berth-meta` and `berth-blob`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use berth_oci::{Digest, Reference, RepoName, Tag};
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::access::{ProjectRef, Role, Visibility};
use crate::clock::Millis;
use crate::error::CoreResult;
use crate::model::*;
use crate::query::{
    ArtifactQuery, AuditPurgeQuery, AuditQuery, Page, ProjectQuery, RepositoryQuery, RobotQuery,
    StorageRequestQuery, UserQuery,
};

/// A stream of bytes read from or written to storage.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Content-addressed blob storage plus the scratch space of uploads.
///
/// Blobs are immutable once committed. "Not found" from `read` is
/// `CoreError::BlobNotFound`. All methods are safe to call concurrently,
/// including several commits of the same digest.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// A short name for logs and `systeminfo` (`filesystem`, `s3`).
    fn kind(&self) -> &'static str;

    /// Prepares storage for upload `id` (a UUID) and returns the initial
    /// backend state, which the domain persists with the session.
    async fn create_upload(&self, id: &str) -> CoreResult<String>;

    /// Opens a writer that appends to upload `id` at `offset`, the size the
    /// domain has recorded. Bytes beyond `offset` left by a failed request
    /// are overwritten. Nothing written is durable until `finish`.
    async fn append_upload(
        &self,
        id: &str,
        state: &str,
        offset: u64,
    ) -> CoreResult<Box<dyn UploadWriter>>;

    /// Reads the first `size` bytes of upload `id`.
    async fn read_upload(&self, id: &str, state: &str, size: u64) -> CoreResult<ByteStream>;

    /// Makes the first `size` bytes of upload `id` the blob `digest`,
    /// atomically and durably: afterwards the blob is complete or, after a
    /// crash, absent — never partial. Succeeds if the blob already exists.
    /// The upload's storage is released.
    async fn commit_upload(
        &self,
        id: &str,
        state: &str,
        size: u64,
        digest: &Digest,
    ) -> CoreResult<()>;

    /// Releases an upload's storage. Idempotent.
    async fn abort_upload(&self, id: &str, state: &str) -> CoreResult<()>;

    /// Streams the blob, or the inclusive byte range `[start, end]` of it.
    async fn read(&self, digest: &Digest, range: Option<(u64, u64)>) -> CoreResult<ByteStream>;

    /// The blob's size, or `None` when it is not stored.
    async fn stat(&self, digest: &Digest) -> CoreResult<Option<u64>>;

    /// Removes the blob. Idempotent.
    async fn delete(&self, digest: &Digest) -> CoreResult<()>;

    /// Removes many blobs, `parallel` at a time (S3 sends batched deletes).
    /// Idempotent; on error some may be gone and some not.
    async fn delete_many(&self, digests: &[Digest], parallel: usize) -> CoreResult<()> {
        for chunk in digests.chunks(parallel.max(1)) {
            let mut pending = Vec::with_capacity(chunk.len());
            for d in chunk {
                pending.push(self.delete(d));
            }
            for r in futures::future::join_all(pending).await {
                r?;
            }
        }
        Ok(())
    }
}

/// Appends the chunks of one request to an upload.
#[async_trait]
pub trait UploadWriter: Send {
    async fn write(&mut self, chunk: Bytes) -> CoreResult<()>;
    /// Makes everything written durable and returns the new backend state.
    async fn finish(self: Box<Self>) -> CoreResult<String>;
}

/// The state of a blob as the metadata store sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPresence {
    Absent,
    /// Present and usable; a GC mark, if any, has been cleared.
    Present {
        size: u64,
    },
    /// Being swept by GC: treat as absent, and do not write it yet.
    Deleting,
}

/// Users and their project roles.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user. `Conflict` if the username is taken.
    async fn create_user(&self, user: &NewUser) -> CoreResult<User>;
    async fn user_by_name(&self, username: &str) -> CoreResult<Option<User>>;
    async fn user_by_id(&self, id: UserId) -> CoreResult<Option<User>>;
    async fn set_password_hash(&self, id: UserId, hash: &str) -> CoreResult<()>;
    /// Every project role the user holds, by project.
    async fn roles_of_user(&self, id: UserId) -> CoreResult<HashMap<ProjectId, Vec<Role>>>;
}

/// Everything about who may act: the users' profiles, project members,
/// robot accounts and portal sessions.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// A page of (not deleted) users and the total.
    async fn list_users(&self, query: &UserQuery, page: Page) -> CoreResult<(Vec<User>, i64)>;
    /// `Conflict` if the email is used by another user.
    async fn update_user_profile(
        &self,
        id: UserId,
        email: &str,
        realname: &str,
        comment: &str,
    ) -> CoreResult<()>;
    async fn set_sysadmin(&self, id: UserId, sysadmin: bool) -> CoreResult<()>;
    /// Soft delete: the row stays (audit), renamed `<name>#<id>` so the
    /// name and email are free again; memberships and sessions go.
    async fn delete_user(&self, id: UserId) -> CoreResult<()>;

    /// A page of a project's members, optionally those whose name contains
    /// `entity_name`, and the total.
    async fn list_members(
        &self,
        project_id: ProjectId,
        entity_name: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<Member>, i64)>;
    /// The member `id` of `project_id`; `None` when it belongs elsewhere.
    async fn member(&self, project_id: ProjectId, id: i64) -> CoreResult<Option<Member>>;
    /// Adds a user as a member. `Conflict` if already one.
    async fn add_member(
        &self,
        project_id: ProjectId,
        user_id: UserId,
        role: Role,
    ) -> CoreResult<Member>;
    /// `false` when no such member of `project_id`.
    async fn update_member_role(
        &self,
        project_id: ProjectId,
        id: i64,
        role: Role,
    ) -> CoreResult<bool>;
    /// `false` when no such member of `project_id`.
    async fn delete_member(&self, project_id: ProjectId, id: i64) -> CoreResult<bool>;

    /// `Conflict` if the name is taken.
    async fn create_robot(&self, robot: &NewRobot) -> CoreResult<Robot>;
    async fn robot_by_id(&self, id: i64) -> CoreResult<Option<Robot>>;
    async fn robot_by_name(&self, name: &str) -> CoreResult<Option<Robot>>;
    async fn list_robots(&self, query: &RobotQuery, page: Page) -> CoreResult<(Vec<Robot>, i64)>;
    /// Saves description, permissions, disabled, duration and expiry.
    async fn update_robot(&self, robot: &Robot) -> CoreResult<()>;
    /// Stores a new secret hash and bumps the secret version.
    async fn set_robot_secret(&self, id: i64, hash: &str) -> CoreResult<()>;
    async fn delete_robot(&self, id: i64) -> CoreResult<bool>;

    async fn create_session(&self, token_hash: &str, session: &Session) -> CoreResult<()>;
    /// The session if it exists and has not expired at `now`.
    async fn session(&self, token_hash: &str, now: Millis) -> CoreResult<Option<Session>>;
    async fn extend_session(&self, token_hash: &str, expires_at: Millis) -> CoreResult<()>;
    async fn delete_session(&self, token_hash: &str) -> CoreResult<()>;
}

/// System-wide records: configuration and the audit log.
#[async_trait]
pub trait SystemStore: Send + Sync {
    /// Every stored configuration value, as JSON text by key.
    async fn configuration(&self) -> CoreResult<BTreeMap<String, String>>;
    /// Stores the given keys (JSON text values) in one transaction.
    async fn save_configuration(&self, values: &BTreeMap<String, String>) -> CoreResult<()>;
    async fn insert_audit(&self, entries: &[AuditEntry]) -> CoreResult<()>;
    async fn list_audit(
        &self,
        query: &AuditQuery,
        page: Page,
    ) -> CoreResult<(Vec<AuditEntry>, i64)>;
    /// Deletes up to `limit` of the entries `query` selects, oldest first,
    /// in one short statement (callers loop, so the writer is never held
    /// long); returns how many were deleted.
    async fn purge_audit(&self, query: &AuditPurgeQuery, limit: i64) -> CoreResult<i64>;
    /// How many entries `query` selects now (a dry run's answer).
    async fn count_audit_purge(&self, query: &AuditPurgeQuery) -> CoreResult<i64>;
}

/// Persisted background work: executions, their tasks and task logs. Any
/// number of workers (in one process or on several nodes sharing the
/// database) claim tasks; a task is held by one worker at a time.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Creates an execution and its tasks (all `Pending`) in one
    /// transaction.
    async fn create_execution(&self, new: &NewExecution, now: Millis) -> CoreResult<Execution>;
    async fn execution(&self, id: i64) -> CoreResult<Option<Execution>>;
    /// Executions of one kind (and vendor id, when given), newest first.
    async fn list_executions(
        &self,
        vendor_type: &str,
        vendor_id: Option<i64>,
        page: Page,
    ) -> CoreResult<(Vec<Execution>, i64)>;
    async fn tasks(&self, execution_id: i64) -> CoreResult<Vec<Task>>;
    async fn task(&self, id: i64) -> CoreResult<Option<Task>>;
    /// Takes the oldest task of one of `vendor_types` that is pending, or
    /// running under a worker silent since before `stale_before` (it
    /// crashed): it becomes `Running` under `worker`, and its execution
    /// too. Never gives one task to two workers at once.
    async fn claim_task(
        &self,
        vendor_types: &[&str],
        worker: &str,
        now: Millis,
        stale_before: Millis,
    ) -> CoreResult<Option<Task>>;
    /// Records progress of a task `worker` holds.
    async fn heartbeat_task(
        &self,
        id: i64,
        worker: &str,
        now: Millis,
        done: i64,
        total: i64,
    ) -> CoreResult<Heartbeat>;
    /// Ends a task `worker` holds; when it was its execution's last open
    /// task, the execution ends too (`Error` if any task failed, else
    /// `Stopped` if any stopped, else `Success`). `false` if the task was
    /// not the worker's any more.
    async fn finish_task(
        &self,
        id: i64,
        worker: &str,
        status: JobStatus,
        message: &str,
        now: Millis,
    ) -> CoreResult<bool>;
    /// Asks an execution to stop: its pending tasks stop at once, running
    /// ones at their next heartbeat. `false` if it had already ended.
    async fn stop_execution(&self, id: i64, now: Millis) -> CoreResult<bool>;
    async fn append_task_log(&self, id: i64, now: Millis, lines: &[String]) -> CoreResult<()>;
    /// A task's log lines, oldest first.
    async fn task_log(&self, id: i64) -> CoreResult<Vec<(Millis, String)>>;

    /// The schedule of one kind of work for one vendor, if any.
    async fn schedule(&self, vendor_type: &str, vendor_id: i64) -> CoreResult<Option<Schedule>>;
    /// Creates or replaces it (by vendor type and id).
    async fn put_schedule(&self, schedule: &Schedule) -> CoreResult<Schedule>;
    async fn delete_schedule(&self, vendor_type: &str, vendor_id: i64) -> CoreResult<bool>;
    /// Schedules whose next run is at or before `now`.
    async fn due_schedules(&self, now: Millis) -> CoreResult<Vec<Schedule>>;
    /// Moves a schedule's next run from `from` to `to`; `false` when it was
    /// not at `from` any more (another node fired it, or it changed), so
    /// each run fires once.
    async fn advance_schedule(&self, id: i64, from: Millis, to: Millis) -> CoreResult<bool>;
}

/// Harbor's management model: projects, repositories, artifacts as lists.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Creates a project and makes its owner ProjectAdmin, in one
    /// transaction. `Conflict` if the name is taken.
    async fn create_project(&self, project: &NewProject) -> CoreResult<Project>;
    async fn project_by_name(&self, name: &str) -> CoreResult<Option<Project>>;
    /// Just what an access decision needs about a project.
    async fn project_ref(&self, name: &str) -> CoreResult<Option<ProjectRef>>;
    async fn project_by_id(&self, id: ProjectId) -> CoreResult<Option<Project>>;
    /// A page of projects matching the query, and the total count.
    async fn list_projects(
        &self,
        query: &ProjectQuery,
        page: Page,
    ) -> CoreResult<(Vec<Project>, i64)>;
    async fn update_project(
        &self,
        id: ProjectId,
        public: bool,
        metadata: &BTreeMap<String, String>,
    ) -> CoreResult<()>;
    /// Sets the project's storage quota (bytes, -1 unlimited). `false` if
    /// the project does not exist.
    async fn set_storage_limit(&self, id: ProjectId, limit: i64, now: Millis) -> CoreResult<bool>;
    /// Deletes a project with its members and blob links. `Precondition`
    /// while it holds repositories. Returns the upload sessions it dropped
    /// so their storage can be released.
    async fn delete_project(&self, id: ProjectId) -> CoreResult<Vec<Upload>>;
    async fn project_summary(&self, id: ProjectId) -> CoreResult<ProjectSummary>;

    async fn list_repositories(
        &self,
        query: &RepositoryQuery,
        page: Page,
    ) -> CoreResult<(Vec<Repository>, i64)>;
    async fn repository_by_name(&self, name: &str) -> CoreResult<Option<Repository>>;
    async fn update_repository_description(
        &self,
        id: RepositoryId,
        description: &str,
    ) -> CoreResult<()>;
    /// Deletes a repository, its artifacts, tags and blob links;
    /// `Precondition` (nothing deleted) if `immutable` protects one of its
    /// tags.
    async fn delete_repository(
        &self,
        id: RepositoryId,
        immutable: TagGuard<'_>,
    ) -> CoreResult<DeletedArtifacts>;

    /// A page of artifacts with their tags and references, and the total.
    async fn list_artifacts(
        &self,
        query: &ArtifactQuery,
        page: Page,
    ) -> CoreResult<(Vec<Artifact>, i64)>;
    async fn artifact_by_reference(
        &self,
        repository_id: RepositoryId,
        reference: &Reference,
    ) -> CoreResult<Option<Artifact>>;
    /// Points a new tag at an artifact. `Conflict` if the tag exists.
    async fn create_tag(
        &self,
        artifact: &Artifact,
        tag: &Tag,
        now: Millis,
    ) -> CoreResult<TagRecord>;
}

/// The registry's own records: blobs and their links, upload sessions,
/// manifests, tags, referrers.
#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// The blob, its GC status and last use if it is linked to `repository`.
    async fn linked_blob(
        &self,
        repository: &RepoName,
        digest: &Digest,
    ) -> CoreResult<Option<LinkedBlob>>;

    /// Declares an intent to use blob `digest`: clears a GC mark and
    /// refreshes its time so GC leaves it alone. Reports whether it exists.
    async fn touch_blob(&self, digest: &Digest, now: Millis) -> CoreResult<BlobPresence>;

    /// Records a committed blob and links it to `repository`; deletes the
    /// upload session `upload_id` if given. One transaction.
    async fn commit_blob(
        &self,
        project_id: ProjectId,
        repository: &RepoName,
        digest: &Digest,
        size: u64,
        upload_id: Option<&str>,
        now: Millis,
    ) -> CoreResult<QuotaCharge>;

    /// Links a blob already linked to `from` into `repository`. `None` if
    /// `from` does not hold it (or it is being swept).
    async fn mount_blob(
        &self,
        project_id: ProjectId,
        repository: &RepoName,
        from: &RepoName,
        digest: &Digest,
        now: Millis,
    ) -> CoreResult<Option<(BlobInfo, QuotaCharge)>>;

    /// Removes the link between a repository and a blob; `false` if absent.
    async fn unlink_blob(&self, repository: &RepoName, digest: &Digest) -> CoreResult<bool>;

    /// Undoes mounts of an operation that failed (a refused artifact
    /// copy): removes the links of `digests` from `repository` that no
    /// artifact of the repository references, and stops counting what the
    /// project then no longer needs. One transaction.
    async fn unlink_unused_blobs(
        &self,
        repository: &RepoName,
        digests: &[Digest],
    ) -> CoreResult<()>;

    async fn create_upload(&self, upload: &Upload) -> CoreResult<()>;
    /// The session if it exists and belongs to `repository`.
    async fn get_upload(&self, repository: &RepoName, id: &str) -> CoreResult<Option<Upload>>;
    /// Takes the write lease of a session of `repository` for `owner` until
    /// `until`. A lease held by another owner that has not expired at `now`
    /// makes the claim `Busy`.
    async fn claim_upload(
        &self,
        repository: &RepoName,
        id: &str,
        owner: &str,
        until: Millis,
        now: Millis,
    ) -> CoreResult<UploadClaim>;
    /// Saves the progress of a session claimed by `owner` and ends the lease.
    async fn save_upload(
        &self,
        id: &str,
        owner: &str,
        size: u64,
        hash_state: &[u8],
        backend_state: &str,
        now: Millis,
    ) -> CoreResult<()>;
    /// Extends `owner`'s lease; `false` if the lease was lost.
    async fn renew_upload(&self, id: &str, owner: &str, until: Millis) -> CoreResult<bool>;
    /// Ends `owner`'s lease without saving anything.
    async fn release_upload(&self, id: &str, owner: &str) -> CoreResult<()>;
    /// Deletes a session, returning it if it existed.
    async fn delete_upload(&self, id: &str) -> CoreResult<Option<Upload>>;
    /// Up to `limit` sessions untouched since before `before`, oldest first.
    async fn stale_uploads(&self, before: Millis, limit: i64) -> CoreResult<Vec<Upload>>;
    /// Deletes session `id` only if it is still untouched since before
    /// `before` and no request holds its lease at `now`; returns it then.
    async fn delete_stale_upload(
        &self,
        id: &str,
        before: Millis,
        now: Millis,
    ) -> CoreResult<Option<Upload>>;

    /// Records a pushed manifest atomically: the manifest bytes, the
    /// artifact, its blob and child references and the tag. Fails with
    /// `ManifestBlobUnknown` if a blob is not linked to the repository (or
    /// is being swept) or a child is not an artifact of the repository.
    async fn put_manifest(&self, artifact: &NewArtifact) -> CoreResult<PutManifestOutcome>;

    /// The manifest `reference` names in `repository`.
    async fn resolve_manifest(
        &self,
        repository: &RepoName,
        reference: &Reference,
    ) -> CoreResult<Option<ManifestRecord>>;

    /// Deletes the artifact `digest` of `repository` with its tags and,
    /// recursively, its accessories. `Precondition` if an index of the
    /// repository still references it, or if `immutable` protects a tag of
    /// one of the artifacts it would delete. Empty result if absent.
    async fn delete_manifest(
        &self,
        repository: &RepoName,
        digest: &Digest,
        immutable: TagGuard<'_>,
    ) -> CoreResult<DeletedArtifacts>;

    /// Deletes one tag; `false` if absent.
    async fn delete_tag(&self, repository: &RepoName, tag: &Tag) -> CoreResult<bool>;

    /// Up to `limit` tags sorted by name (byte order) after `last`; `None`
    /// when the repository does not exist.
    async fn list_tags(
        &self,
        repository: &RepoName,
        last: Option<&str>,
        limit: u64,
    ) -> CoreResult<Option<Vec<String>>>;

    /// Referrers of `subject` within `repository`, optionally of one type.
    async fn referrers(
        &self,
        repository: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> CoreResult<Vec<Referrer>>;

    /// Up to `limit` repository names after `last`, sorted, restricted to
    /// visible projects.
    async fn catalog(
        &self,
        visibility: &Visibility,
        last: Option<&str>,
        limit: u64,
    ) -> CoreResult<Vec<String>>;

    /// Folds pulls into pull counts and pull times.
    async fn record_pulls(&self, pulls: &[PullRecord]) -> CoreResult<()>;
}

/// Says whether a tag (of the repository an operation is on) is immutable.
pub type TagGuard<'a> = &'a (dyn Fn(&str) -> bool + Send + Sync);

/// The guard for projects without immutability rules.
pub fn no_guard(_tag: &str) -> bool {
    false
}

/// Per-project policies: tag immutability rules and the retention policy.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// A project's immutable rules, by id.
    async fn immutable_rules(
        &self,
        project_id: ProjectId,
    ) -> CoreResult<Vec<crate::immutable::ImmutableRule>>;
    async fn create_immutable_rule(
        &self,
        rule: &crate::immutable::ImmutableRule,
    ) -> CoreResult<crate::immutable::ImmutableRule>;
    /// `false` if no such rule in that project.
    async fn update_immutable_rule(
        &self,
        rule: &crate::immutable::ImmutableRule,
    ) -> CoreResult<bool>;
    async fn delete_immutable_rule(&self, project_id: ProjectId, id: i64) -> CoreResult<bool>;

    async fn retention_policy(&self, id: i64)
        -> CoreResult<Option<crate::retention::StoredPolicy>>;
    /// `Conflict` if the project has a policy already.
    async fn create_retention_policy(
        &self,
        project_id: ProjectId,
        policy: &str,
        now: Millis,
    ) -> CoreResult<i64>;
    async fn update_retention_policy(&self, id: i64, policy: &str, now: Millis)
        -> CoreResult<bool>;
    async fn delete_retention_policy(&self, id: i64) -> CoreResult<bool>;
    /// The artifacts of a repository retention judges, with their tags:
    /// not index children, not accessories of an artifact still there.
    async fn retention_candidates(
        &self,
        repository_id: RepositoryId,
    ) -> CoreResult<Vec<crate::retention::Candidate>>;
    /// Deletes artifacts of one repository (with accessories and untagged
    /// index children) in one transaction; `Precondition` (nothing
    /// deleted) if `immutable` protects a tag of one of them.
    async fn delete_artifacts(
        &self,
        repository: &RepoName,
        ids: &[i64],
        immutable: TagGuard<'_>,
    ) -> CoreResult<DeletedArtifacts>;
}

/// An untagged artifact that garbage collection may delete.
#[derive(Debug, Clone, PartialEq)]
pub struct UntaggedArtifact {
    pub id: i64,
    pub project_id: ProjectId,
    pub repository: RepoName,
    pub digest: Digest,
    pub size: i64,
}

/// What deleting some untagged artifacts would delete and free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UntaggedPreview {
    pub artifacts: i64,
    pub blobs: i64,
    pub bytes: i64,
    /// Manifests (stored bytes) no artifact would use any more.
    pub manifests: i64,
    pub manifest_bytes: i64,
}

/// Garbage collection's view of blobs (see `docs/architecture.md`, "Blob
/// states"). A blob is unreferenced when no artifact references it; GC
/// marks unreferenced blobs older than its time window (`delete`), claims
/// marked ones that are still unreferenced for sweeping (`deleting`),
/// deletes their bytes, then their rows.
#[async_trait]
pub trait GcStore: Send + Sync {
    /// Untagged artifacts pushed before `before`, by id after `after_id`:
    /// neither a child of an index nor an accessory of an artifact that is
    /// still there (those go with their parent or subject).
    async fn untagged_artifacts(
        &self,
        before: Millis,
        after_id: i64,
        limit: i64,
    ) -> CoreResult<Vec<UntaggedArtifact>>;
    /// What marking would mark now: (blobs, bytes).
    async fn unreferenced_blobs(&self, before: Millis) -> CoreResult<(i64, i64)>;
    /// A dry run's view of deleting the untagged artifacts `roots` (ids),
    /// each with what goes with it (accessories, untagged children no
    /// other index needs; a root still needed by an index stays, as the
    /// real delete refuses it): how many artifacts would go, and the
    /// blobs not used since `before` that only they reference (blobs,
    /// bytes). Reads only.
    async fn untagged_preview(&self, before: Millis, roots: &[i64]) -> CoreResult<UntaggedPreview>;
    /// Marks unreferenced blobs not used since `before`: (blobs, bytes).
    async fn mark_blobs(&self, before: Millis) -> CoreResult<(i64, i64)>;
    /// Moves up to `limit` marked, still unreferenced blobs to `deleting`
    /// and returns them with their sizes.
    async fn claim_sweep(&self, limit: i64) -> CoreResult<Vec<(Digest, i64)>>;
    /// Blobs left in `deleting` (a sweep that did not finish).
    async fn deleting_blobs(&self, limit: i64) -> CoreResult<Vec<(Digest, i64)>>;
    /// Removes swept blobs' rows: the blob, its repository links and its
    /// quota entries (usage falls accordingly).
    async fn finish_sweep(&self, digests: &[Digest]) -> CoreResult<()>;
    /// Clears every remaining mark (the end of a run).
    async fn unmark_blobs(&self) -> CoreResult<i64>;
    /// Stored manifests no artifact uses, last pushed before `before`:
    /// (manifests, bytes).
    async fn unreferenced_manifests(&self, before: Millis) -> CoreResult<(i64, i64)>;
    /// Deletes up to `limit` of those: (manifests, bytes). A manifest a
    /// push is storing meanwhile stays (the push refreshes and locks its
    /// row in its own transaction).
    async fn delete_manifests(&self, before: Millis, limit: i64) -> CoreResult<(i64, i64)>;
}

/// Requests for more storage (`core::storage_requests`). A project has at
/// most one pending request.
#[async_trait]
pub trait StorageRequestStore: Send + Sync {
    /// Records a pending request. `Conflict` if the project already has a
    /// pending one; `ProjectNotFound` if the project is gone.
    async fn create_storage_request(&self, new: &NewStorageRequest) -> CoreResult<StorageRequest>;
    async fn storage_request(&self, id: i64) -> CoreResult<Option<StorageRequest>>;
    /// A page of requests matching the query, newest first, and the total.
    async fn list_storage_requests(
        &self,
        query: &StorageRequestQuery,
        page: Page,
    ) -> CoreResult<(Vec<StorageRequest>, i64)>;
    /// Decides a pending request in one transaction: its status, reviewer
    /// and comment and, when approved, the project's storage limit becomes
    /// the requested storage. `Conflict` if it is not pending any more
    /// (two deciders: exactly one wins); `None` if there is no such
    /// request.
    async fn decide_storage_request(
        &self,
        id: i64,
        decision: &StorageDecision,
    ) -> CoreResult<Option<StorageRequest>>;
    /// Deletes a pending request. `Conflict` if it was decided; `false` if
    /// there is no such request.
    async fn withdraw_storage_request(&self, id: i64) -> CoreResult<bool>;
}

/// The whole metadata store.
pub trait MetaStore:
    UserStore
    + AccountStore
    + ProjectStore
    + RegistryStore
    + GcStore
    + PolicyStore
    + SystemStore
    + JobStore
    + StorageRequestStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
}
