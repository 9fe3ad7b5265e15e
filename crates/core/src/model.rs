//! The records the domain works with. Identifiers are plain integers from
//! the metadata store; names and digests are validated types.

use std::collections::BTreeMap;

use berth_oci::{Digest, Platform, ProjectName, RepoName, Tag};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::clock::Millis;

pub type ProjectId = i64;
pub type RepositoryId = i64;
pub type ArtifactId = i64;
pub type UserId = i64;

/// A Harbor project. `metadata` holds Harbor's string-valued project
/// metadata (`public`, `auto_scan`, …), `public` mirrored there.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub owner_id: UserId,
    pub owner_name: String,
    pub public: bool,
    pub metadata: BTreeMap<String, String>,
    pub registry_id: Option<i64>,
    pub storage_limit: i64,
    /// Bytes counted against the quota: each blob and manifest once.
    pub storage_used: i64,
    pub creation_time: Millis,
    pub update_time: Millis,
    pub repo_count: i64,
}

#[derive(Debug, Clone)]
pub struct NewProject {
    pub name: ProjectName,
    pub owner_id: UserId,
    pub public: bool,
    pub metadata: BTreeMap<String, String>,
    pub storage_limit: i64,
    pub registry_id: Option<i64>,
}

/// Counts shown by a project's summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectSummary {
    pub repo_count: i64,
    pub artifact_count: i64,
    pub member_counts: BTreeMap<Role, i64>,
    pub storage_used: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Repository {
    pub id: RepositoryId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub artifact_count: i64,
    pub pull_count: i64,
    pub creation_time: Millis,
    pub update_time: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagRecord {
    pub id: i64,
    pub repository_id: RepositoryId,
    pub artifact_id: ArtifactId,
    pub name: String,
    pub push_time: Millis,
    pub pull_time: Option<Millis>,
}

/// A child of an index, as recorded on the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactReference {
    pub parent_id: ArtifactId,
    pub child_id: Option<ArtifactId>,
    pub child_digest: Digest,
    pub platform: Option<Platform>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub urls: Option<Vec<String>>,
}

/// An artifact: one manifest (by digest) in one repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub id: ArtifactId,
    pub project_id: ProjectId,
    pub repository_id: RepositoryId,
    pub repository_name: String,
    pub digest: Digest,
    /// Harbor's `type`: IMAGE, CHART, CNAB, WASM or UNKNOWN.
    pub kind: String,
    /// The config media type (Harbor's `media_type`); the manifest's own
    /// media type for indexes.
    pub media_type: String,
    pub manifest_media_type: String,
    pub artifact_type: String,
    pub size: i64,
    pub manifest_size: i64,
    pub subject: Option<Digest>,
    pub annotations: BTreeMap<String, String>,
    pub extra_attrs: serde_json::Value,
    pub push_time: Millis,
    pub pull_time: Option<Millis>,
    pub tags: Vec<TagRecord>,
    pub references: Vec<ArtifactReference>,
}

/// A child manifest named by an index being pushed.
#[derive(Debug, Clone)]
pub struct NewChild {
    pub digest: Digest,
    pub platform: Option<Platform>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub urls: Option<Vec<String>>,
}

/// Everything the store needs to record a pushed manifest atomically.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    pub project_id: ProjectId,
    pub repository: RepoName,
    pub digest: Digest,
    pub body: Bytes,
    pub manifest_media_type: String,
    pub media_type: String,
    pub artifact_type: String,
    pub kind: String,
    pub subject: Option<Digest>,
    pub annotations: BTreeMap<String, String>,
    pub extra_attrs: serde_json::Value,
    /// Config and distributable layers; each must be linked to the
    /// repository. Foreign layers are recorded in `foreign_size` only.
    pub blobs: Vec<Digest>,
    pub foreign_size: i64,
    /// Children of an index; each must be an artifact of the repository.
    pub children: Vec<NewChild>,
    /// Tags to point at the artifact (the PUT's tag and any `?tag=`).
    pub tags: Vec<Tag>,
    /// Those of `tags` that immutability rules protect: they may be
    /// created, but not moved from another artifact.
    pub immutable_tags: Vec<Tag>,
    pub push_time: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PutManifestOutcome {
    pub artifact_id: ArtifactId,
    /// What the manifest and its blobs added to the project's storage.
    pub charge: QuotaCharge,
    /// `false` when the same digest was already an artifact of the repository.
    pub created: bool,
    /// Tags that pointed at another artifact before, with that digest.
    pub moved_tags: Vec<(String, Digest)>,
}

/// What counting new storage against a project's quota did: `added` bytes
/// that the project did not hold before, and the usage and limit after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaCharge {
    pub added: i64,
    pub used: i64,
    pub limit: i64,
}

/// Harbor warns when a project's usage reaches this share of its quota.
pub const QUOTA_WARNING_PERCENT: i64 = 85;

impl QuotaCharge {
    /// Whether this charge took usage across the warning threshold.
    pub fn crossed_warning(&self) -> bool {
        let at =
            |used: i64| used as i128 * 100 >= self.limit as i128 * QUOTA_WARNING_PERCENT as i128;
        self.limit > 0 && self.added > 0 && at(self.used) && !at(self.used - self.added)
    }
}

/// A byte count as Harbor writes it in quota messages: `12.3 MiB`.
pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A stored manifest as served on pull.
#[derive(Debug, Clone)]
pub struct ManifestRecord {
    pub repository_id: RepositoryId,
    pub artifact_id: ArtifactId,
    pub digest: Digest,
    pub media_type: String,
    pub body: Bytes,
    pub subject: Option<Digest>,
}

/// A referrer of a subject, as listed by the referrers API.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: String,
    pub size: i64,
    pub annotations: BTreeMap<String, String>,
}

/// What deleting a manifest removed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeletedArtifacts {
    /// `(digest, tags)` of every artifact removed: the one asked for and its
    /// accessories (referrers), recursively.
    pub artifacts: Vec<(Digest, Vec<String>)>,
}

/// A blob as linked to one repository: its size, GC state, and when it was
/// last used (uploaded, mounted, referenced, or refreshed by a pull).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkedBlob {
    pub size: u64,
    pub status: BlobStatus,
    pub used: Millis,
}

/// The GC state of a blob (see `docs/architecture.md`, "Blob states").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobStatus {
    /// Live (or not yet judged by GC).
    None,
    /// Marked by GC as a candidate; any use resets it to `None`.
    Delete,
    /// Being swept; treated as absent.
    Deleting,
}

impl BlobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobStatus::None => "none",
            BlobStatus::Delete => "delete",
            BlobStatus::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> BlobStatus {
        match s {
            "delete" => BlobStatus::Delete,
            "deleting" => BlobStatus::Deleting,
            _ => BlobStatus::None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
}

/// A blob upload session. `hash_state` is the saved [`berth_oci::Hasher`];
/// `backend_state` is opaque to the domain and owned by the blob store.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub id: String,
    pub project_id: ProjectId,
    pub repository: String,
    pub size: u64,
    pub hash_state: Vec<u8>,
    pub backend_state: String,
    pub owner: String,
    pub creation_time: Millis,
    pub update_time: Millis,
}

/// Result of trying to take the write lease of an upload session.
#[derive(Debug, Clone)]
pub enum UploadClaim {
    Claimed(Upload),
    Busy,
    NotFound,
}

/// A local user (database authentication).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub password_hash: String,
    pub sysadmin: bool,
    pub creation_time: Millis,
    pub update_time: Millis,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub password_hash: String,
    pub sysadmin: bool,
}

/// One pull, folded into pull counts and times in batches.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRecord {
    pub repository_id: RepositoryId,
    pub artifact_id: ArtifactId,
    pub tag: Option<String>,
    pub time: Millis,
}

/// Where a robot account belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RobotLevel {
    System,
    Project,
}

impl RobotLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RobotLevel::System => "system",
            RobotLevel::Project => "project",
        }
    }
}

/// One (resource, action) a robot may use, as Harbor's API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotAccess {
    pub resource: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

/// Permissions of a robot in one namespace: `kind` "system" with namespace
/// "/", or "project" with a project name or "*" (every project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotPermission {
    pub kind: String,
    pub namespace: String,
    pub access: Vec<RobotAccess>,
    /// The project `namespace` names, resolved when the robot was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
}

/// A robot account. `name` is the stored name (`ci` or `<project>+ci`);
/// the login name adds the configured prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Robot {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub level: RobotLevel,
    pub project_id: Option<ProjectId>,
    pub secret_hash: String,
    /// Bumped by every secret refresh; tokens carry it.
    pub secret_version: i64,
    pub permissions: Vec<RobotPermission>,
    pub disabled: bool,
    /// Days; -1 never expires.
    pub duration: i64,
    /// Unix seconds; -1 never.
    pub expires_at: i64,
    pub creator: String,
    pub creation_time: Millis,
    pub update_time: Millis,
}

#[derive(Debug, Clone)]
pub struct NewRobot {
    pub name: String,
    pub description: String,
    pub level: RobotLevel,
    pub project_id: Option<ProjectId>,
    pub secret_hash: String,
    pub permissions: Vec<RobotPermission>,
    pub disabled: bool,
    pub duration: i64,
    pub expires_at: i64,
    pub creator: String,
}

/// A project member (a user; groups arrive with LDAP/OIDC).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: i64,
    pub project_id: ProjectId,
    pub entity_id: i64,
    pub entity_name: String,
    /// "u" for users, "g" for groups.
    pub entity_type: String,
    pub role: Role,
}

/// A portal session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user_id: UserId,
    pub csrf_token: String,
    pub expires_at: Millis,
}

/// An audit log entry (Harbor's `audit_log_ext`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub project_id: ProjectId,
    pub operation: String,
    pub operation_description: String,
    pub resource_type: String,
    pub resource: String,
    pub username: String,
    pub is_successful: bool,
    pub op_time: Millis,
}

// ---- background jobs ----------------------------------------------------------

/// The state of an execution or one of its tasks, spelled as Harbor's
/// job service spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Pending,
    Running,
    Success,
    Error,
    Stopped,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Success,
        JobStatus::Error,
        JobStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "Pending",
            JobStatus::Running => "Running",
            JobStatus::Success => "Success",
            JobStatus::Error => "Error",
            JobStatus::Stopped => "Stopped",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|j| j.as_str() == s)
    }

    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Success | JobStatus::Error | JobStatus::Stopped
        )
    }
}

/// One run of a piece of background work (a GC, a retention run, a purge),
/// as Harbor's executions: `vendor_type` names the kind of work,
/// `vendor_id` the policy or schedule it belongs to (0 for none).
#[derive(Clone, Debug, PartialEq)]
pub struct Execution {
    pub id: i64,
    pub vendor_type: String,
    pub vendor_id: i64,
    pub status: JobStatus,
    /// `MANUAL`, `SCHEDULE` or `EVENT`.
    pub trigger: String,
    /// JSON object: the run's parameters (dry run, …).
    pub extra_attrs: String,
    pub stop_requested: bool,
    pub start_time: Millis,
    pub end_time: Option<Millis>,
    pub update_time: Millis,
}

/// One unit of an execution that one worker runs (a retention run has a
/// task per repository; a GC has one).
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: i64,
    pub execution_id: i64,
    /// Its execution's kind of work.
    pub vendor_type: String,
    pub status: JobStatus,
    pub status_message: String,
    /// How many times a worker has started it (a crash makes it run again).
    pub run_count: i64,
    /// JSON object: what this task works on.
    pub extra_attrs: String,
    /// The worker holding it while it runs, and when it last said so.
    pub worker: Option<String>,
    pub heartbeat: Option<Millis>,
    pub progress_done: i64,
    pub progress_total: i64,
    pub creation_time: Millis,
    pub start_time: Option<Millis>,
    pub update_time: Millis,
    pub end_time: Option<Millis>,
}

/// An execution to create, with its tasks' `extra_attrs`.
#[derive(Clone, Debug, Default)]
pub struct NewExecution {
    pub vendor_type: String,
    pub vendor_id: i64,
    pub trigger: String,
    pub extra_attrs: String,
    pub tasks: Vec<String>,
}

/// A cron schedule of background work (see `core::schedule`).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub id: i64,
    pub vendor_type: String,
    pub vendor_id: i64,
    /// Harbor's schedule type: `Hourly`, `Daily`, `Weekly` or `Custom`.
    pub kind: String,
    /// Harbor's 6-field cron (seconds first).
    pub cron: String,
    /// JSON object handed to the run (GC's parameters, …).
    pub params: String,
    pub next_run: Millis,
    pub creation_time: Millis,
    pub update_time: Millis,
}

/// What a worker learns when it reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    /// Carry on.
    Continue,
    /// Someone asked the execution to stop: finish as `Stopped`.
    Stop,
    /// The task is no longer this worker's (its lease ran out and another
    /// worker took it over): stop without writing anything.
    Lost,
}

// ---- storage requests ---------------------------------------------------------

/// Where a request for more storage stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageRequestStatus {
    Pending,
    Approved,
    Declined,
}

impl StorageRequestStatus {
    pub const ALL: [StorageRequestStatus; 3] = [
        StorageRequestStatus::Pending,
        StorageRequestStatus::Approved,
        StorageRequestStatus::Declined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StorageRequestStatus::Pending => "pending",
            StorageRequestStatus::Approved => "approved",
            StorageRequestStatus::Declined => "declined",
        }
    }

    pub fn parse(s: &str) -> Option<StorageRequestStatus> {
        StorageRequestStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A project admin's request for a larger storage quota, and what a
/// system admin decided.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRequest {
    pub id: i64,
    pub project_id: ProjectId,
    pub project_name: String,
    /// The new limit asked for, in bytes.
    pub requested_storage: i64,
    /// The project's limit when the request was made (-1: unlimited).
    pub current_storage_limit: i64,
    pub reason: String,
    pub status: StorageRequestStatus,
    /// Usernames; `reviewer` is empty while pending.
    pub requester: String,
    pub reviewer: String,
    pub comment: String,
    pub creation_time: Millis,
    pub update_time: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewStorageRequest {
    pub project_id: ProjectId,
    pub requested_storage: i64,
    pub current_storage_limit: i64,
    pub reason: String,
    pub requester: String,
    pub now: Millis,
}

/// A system admin's decision on a pending request.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageDecision {
    /// `Approved` or `Declined`.
    pub status: StorageRequestStatus,
    pub reviewer: String,
    pub comment: String,
    pub now: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_messages_use_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(12_897_485), "12.3 MiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
        let e = crate::CoreError::QuotaExceeded {
            adding: 12_897_485,
            used: 1 << 30,
            limit: 1 << 30,
        };
        assert_eq!(
            e.to_string(),
            "adding 12.3 MiB of storage resource, which when updated to current usage of 1.0 GiB will exceed the configured upper limit of 1.0 GiB."
        );
    }

    #[test]
    fn warning_fires_once_when_crossing_85_percent() {
        let c = |added, used| QuotaCharge {
            added,
            used,
            limit: 100,
        };
        assert!(c(10, 85).crossed_warning());
        assert!(!c(5, 90).crossed_warning());
        assert!(!c(10, 80).crossed_warning());
        assert!(!QuotaCharge {
            added: 10,
            used: 90,
            limit: -1
        }
        .crossed_warning());
    }
}
