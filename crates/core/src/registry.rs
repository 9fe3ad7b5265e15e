//! The registry use-cases of the OCI Distribution Spec v1.1: blobs, upload
//! sessions, manifests, tags, referrers and the catalog. Each public method
//! names the (project, resource, action) it needs and is authorized through
//! [`access::authorize`] before it touches storage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_oci::{
    media, Algorithm, Digest, Hasher, Manifest, ManifestError, ManifestKind, Reference, RepoName,
    Tag,
};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use crate::access::{self, Action, Granted, ProjectRef, Subject};
use crate::clock::{self, Millis};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::immutable;
use crate::model::*;
use crate::ports::{BlobPresence, BlobStore, ByteStream, MetaStore};

/// Tunables of the registry use-cases.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Largest manifest accepted, in bytes (413 above).
    pub max_manifest_bytes: u64,
    /// Identifies this process in upload leases.
    pub node_id: String,
    /// How long an upload lease lasts without renewal.
    pub upload_lease: Duration,
    /// A pull or HEAD of a blob unused for this long refreshes its time;
    /// half of GC's time window, so that a blob a client was just told
    /// about is never old enough to be marked.
    pub blob_touch_after: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_manifest_bytes: 4 * 1024 * 1024,
            node_id: uuid::Uuid::new_v4().to_string(),
            upload_lease: Duration::from_secs(30),
            blob_touch_after: crate::gc::DEFAULT_TIME_WINDOW / 2,
        }
    }
}

/// Refusal to delete an immutable tag (Harbor's wording).
pub(crate) fn immutable_tag(repository: &str, tag: &str) -> CoreError {
    CoreError::Precondition(format!(
        "the tag {repository}:{tag} configured as immutable, cannot be deleted"
    ))
}

/// A store answer that may carry a quota charge.
trait QuotaOutcome {
    fn charge(&self) -> Option<QuotaCharge>;
}

impl QuotaOutcome for Option<QuotaCharge> {
    fn charge(&self) -> Option<QuotaCharge> {
        *self
    }
}

impl QuotaOutcome for PutManifestOutcome {
    fn charge(&self) -> Option<QuotaCharge> {
        Some(self.charge)
    }
}

/// Largest page of tags or catalog entries returned at once.
pub const MAX_LIST: u64 = 10_000;

/// A blob the caller may read, as returned by [`Registry::open_blob`].
#[derive(Debug, Clone)]
pub struct BlobHandle {
    pub digest: Digest,
    pub size: u64,
    _granted: Granted,
}

/// Where an upload session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: String,
    pub size: u64,
}

/// What `POST /blobs/uploads/` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStart {
    /// A new session.
    Session(UploadStatus),
    /// The blob was mounted from another repository.
    Mounted(Digest),
}

/// A pushed manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
    /// Every tag now pointing at it.
    pub tags: Vec<String>,
}

/// What [`Registry::health`] found.
#[derive(Debug, Clone)]
pub struct Health {
    pub database: Result<(), String>,
    pub storage: Result<(), String>,
}

pub struct Registry {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    events: EventBus,
    config: RegistryConfig,
}

impl Registry {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        events: EventBus,
        config: RegistryConfig,
    ) -> Self {
        Registry {
            meta,
            blobs,
            events,
            config,
        }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Checks that the metadata store and the blob store answer.
    pub async fn health(&self) -> Health {
        let database = self
            .meta
            .project_by_name("library")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let storage = self
            .blobs
            .stat(&Digest::sha256(b""))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        Health { database, storage }
    }

    /// Loads the repository's project and authorizes `action` on its
    /// repositories. An anonymous caller learns nothing about projects it
    /// cannot see: missing and private both answer `Unauthenticated`.
    async fn authorize(
        &self,
        subject: &Subject,
        repo: &RepoName,
        action: Action,
    ) -> CoreResult<(ProjectRef, Granted)> {
        let project = match self.meta.project_ref(repo.project()).await? {
            Some(p) => p,
            None if subject.is_anonymous() => return Err(CoreError::Unauthenticated),
            None => return Err(CoreError::ProjectNotFound(repo.project().to_owned())),
        };
        let granted = access::authorize_repository(subject, project, repo.as_str(), action)?;
        Ok((project, granted))
    }

    /// Whether `subject` may do `action` on `repo`, for requests refused
    /// before they reach a use-case (a malformed parameter): an
    /// unauthorized caller hears 401/403 first, as from Harbor, not what was
    /// wrong with its request.
    pub async fn check(
        &self,
        subject: &Subject,
        repo: &RepoName,
        action: Action,
    ) -> CoreResult<()> {
        self.authorize(subject, repo, action).await.map(|_| ())
    }

    // ---- blobs -----------------------------------------------------------

    /// Spec "Checking if content exists" / "Pulling blobs": the blob if it is
    /// linked to `repo`. Using a blob clears any GC mark on it.
    pub async fn open_blob(
        &self,
        subject: &Subject,
        repo: &RepoName,
        digest: &Digest,
    ) -> CoreResult<BlobHandle> {
        let (_, granted) = self.authorize(subject, repo, Action::Pull).await?;
        let blob = self
            .meta
            .linked_blob(repo, digest)
            .await?
            .ok_or_else(|| CoreError::BlobNotFound(digest.clone()))?;
        // A use refreshes the blob's time when it is old enough for GC to
        // consider (and clears a mark), so a client that has just been told
        // the blob exists can still reference it in its manifest: GC only
        // marks blobs unused for its whole time window.
        let now = clock::now();
        let stale =
            blob.used < now.saturating_sub(self.config.blob_touch_after.as_millis() as Millis);
        let touch = match blob.status {
            BlobStatus::Deleting => return Err(CoreError::BlobNotFound(digest.clone())),
            BlobStatus::Delete => true,
            BlobStatus::None => stale,
        };
        if touch && self.meta.touch_blob(digest, now).await? == BlobPresence::Deleting {
            return Err(CoreError::BlobNotFound(digest.clone()));
        }
        Ok(BlobHandle {
            digest: digest.clone(),
            size: blob.size,
            _granted: granted,
        })
    }

    /// Streams an opened blob or the inclusive range `[start, end]` of it.
    pub async fn read_blob(
        &self,
        blob: &BlobHandle,
        range: Option<(u64, u64)>,
    ) -> CoreResult<ByteStream> {
        self.blobs.read(&blob.digest, range).await
    }

    /// Spec "Deleting blobs": unlinks the blob from the repository; its
    /// bytes stay until garbage collection finds them unreferenced.
    pub async fn delete_blob(
        &self,
        subject: &Subject,
        repo: &RepoName,
        digest: &Digest,
    ) -> CoreResult<()> {
        self.authorize(subject, repo, Action::Delete).await?;
        if self.meta.unlink_blob(repo, digest).await? {
            Ok(())
        } else {
            Err(CoreError::BlobNotFound(digest.clone()))
        }
    }

    // ---- uploads ---------------------------------------------------------

    /// Spec "Pushing blobs" (POST): mounts `mount` from `from` when the
    /// caller may pull there and the blob is linked there; otherwise opens a
    /// session hashing with `algorithm`. A blob readable only in a repository
    /// the caller cannot read is never revealed: that is a new session too.
    pub async fn start_upload(
        &self,
        subject: &Subject,
        repo: &RepoName,
        mount: Option<(&Digest, Option<&RepoName>)>,
        algorithm: Algorithm,
    ) -> CoreResult<UploadStart> {
        let (project, _granted) = self.authorize(subject, repo, Action::Push).await?;
        if let Some((digest, Some(from))) = mount {
            if from != repo && self.authorize(subject, from, Action::Pull).await.is_ok() {
                let mounted = self
                    .meta
                    .mount_blob(project.id, repo, from, digest, clock::now())
                    .await;
                let mounted = self.after_charge(
                    subject,
                    project.id,
                    repo,
                    mounted.map(|m| m.map(|(_, c)| c)),
                )?;
                if mounted.is_some() {
                    return Ok(UploadStart::Mounted(digest.clone()));
                }
            } else if from == repo && self.meta.linked_blob(repo, digest).await?.is_some() {
                self.meta.touch_blob(digest, clock::now()).await?;
                return Ok(UploadStart::Mounted(digest.clone()));
            }
        }
        let status = self
            .create_session(subject, &project, repo, algorithm)
            .await?;
        Ok(UploadStart::Session(status))
    }

    async fn create_session(
        &self,
        subject: &Subject,
        project: &ProjectRef,
        repo: &RepoName,
        algorithm: Algorithm,
    ) -> CoreResult<UploadStatus> {
        let id = uuid::Uuid::new_v4().to_string();
        let backend_state = self.blobs.create_upload(&id).await?;
        let now = clock::now();
        let upload = Upload {
            id: id.clone(),
            project_id: project.id,
            repository: repo.as_str().to_owned(),
            size: 0,
            hash_state: Hasher::new(algorithm).save(),
            backend_state,
            owner: subject.name().to_owned(),
            creation_time: now,
            update_time: now,
        };
        self.meta.create_upload(&upload).await?;
        Ok(UploadStatus { id, size: 0 })
    }

    /// Spec "Pushing a blob monolithically" (POST with `?digest=`).
    pub async fn upload_monolithic(
        &self,
        subject: &Subject,
        repo: &RepoName,
        digest: &Digest,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> CoreResult<BlobInfo> {
        let (project, _granted) = self.authorize(subject, repo, Action::Push).await?;
        let status = self
            .create_session(subject, &project, repo, digest.algorithm())
            .await?;
        self.finish_session(
            subject,
            repo,
            &status.id,
            digest,
            None,
            content_length,
            Some(body),
        )
        .await
    }

    /// Spec "GET upload status".
    pub async fn upload_status(
        &self,
        subject: &Subject,
        repo: &RepoName,
        id: &str,
    ) -> CoreResult<UploadStatus> {
        self.authorize(subject, repo, Action::Push).await?;
        let upload = self
            .meta
            .get_upload(repo, id)
            .await?
            .filter(|u| u.owner == subject.name())
            .ok_or(CoreError::UploadNotFound)?;
        Ok(UploadStatus {
            id: upload.id,
            size: upload.size,
        })
    }

    /// Spec "Canceling an upload".
    pub async fn cancel_upload(
        &self,
        subject: &Subject,
        repo: &RepoName,
        id: &str,
    ) -> CoreResult<()> {
        self.authorize(subject, repo, Action::Push).await?;
        let upload = self
            .meta
            .get_upload(repo, id)
            .await?
            .filter(|u| u.owner == subject.name())
            .ok_or(CoreError::UploadNotFound)?;
        self.meta.delete_upload(&upload.id).await?;
        self.blobs
            .abort_upload(&upload.id, &upload.backend_state)
            .await?;
        Ok(())
    }

    /// Takes the session's write lease. A session is bound to its
    /// repository and to the principal that opened it: anyone else is told
    /// it does not exist.
    async fn claim(&self, subject: &Subject, repo: &RepoName, id: &str) -> CoreResult<Upload> {
        match self.meta.get_upload(repo, id).await? {
            Some(u) if u.owner == subject.name() => {}
            _ => return Err(CoreError::UploadNotFound),
        }
        let now = clock::now();
        let until = now + self.config.upload_lease.as_millis() as Millis;
        match self
            .meta
            .claim_upload(repo, id, &self.config.node_id, until, now)
            .await?
        {
            UploadClaim::Claimed(u) => Ok(u),
            UploadClaim::Busy => Err(CoreError::UploadBusy),
            UploadClaim::NotFound => Err(CoreError::UploadNotFound),
        }
    }

    /// Spec "Pushing a blob in chunks" / "streamed" (PATCH). `range` is the
    /// `Content-Range` (inclusive), which must start at the upload's size.
    pub async fn patch_upload(
        &self,
        subject: &Subject,
        repo: &RepoName,
        id: &str,
        range: Option<(u64, u64)>,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> CoreResult<UploadStatus> {
        self.authorize(subject, repo, Action::Push).await?;
        let upload = self.claim(subject, repo, id).await?;
        let result = async {
            let expected = check_chunk(&upload, range, content_length)?;
            let (size, hasher, state) = self.append(&upload, body, expected).await?;
            self.meta
                .save_upload(
                    &upload.id,
                    &self.config.node_id,
                    size,
                    &hasher.save(),
                    &state,
                    clock::now(),
                )
                .await?;
            Ok(UploadStatus {
                id: upload.id.clone(),
                size,
            })
        }
        .await;
        if result.is_err() {
            self.release(&upload).await;
        }
        result
    }

    async fn release(&self, upload: &Upload) {
        if let Err(e) = self
            .meta
            .release_upload(&upload.id, &self.config.node_id)
            .await
        {
            tracing::warn!(upload = %upload.id, error = %e, "could not release upload lease");
        }
    }

    /// Streams `body` onto the end of the upload, hashing as it goes.
    async fn append(
        &self,
        upload: &Upload,
        mut body: ByteStream,
        expected_len: Option<u64>,
    ) -> CoreResult<(u64, Hasher, String)> {
        let mut hasher = Hasher::restore(&upload.hash_state).ok_or_else(|| {
            CoreError::Internal(format!("upload {} has a corrupt hash state", upload.id))
        })?;
        let mut writer = self
            .blobs
            .append_upload(&upload.id, &upload.backend_state, upload.size)
            .await?;
        let mut written: u64 = 0;
        let renew_every = self.config.upload_lease / 3;
        let mut renewed = Instant::now();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                CoreError::UploadInvalid(format!("reading the request body failed: {e}"))
            })?;
            if let Some(exp) = expected_len {
                if written + chunk.len() as u64 > exp {
                    return Err(CoreError::SizeInvalid(
                        "the body is longer than Content-Length or Content-Range say".into(),
                    ));
                }
            }
            hasher.update(&chunk);
            written += chunk.len() as u64;
            writer.write(chunk).await?;
            if renewed.elapsed() > renew_every {
                let until = clock::now() + self.config.upload_lease.as_millis() as Millis;
                if !self
                    .meta
                    .renew_upload(&upload.id, &self.config.node_id, until)
                    .await?
                {
                    return Err(CoreError::UploadBusy);
                }
                renewed = Instant::now();
            }
        }
        if let Some(exp) = expected_len {
            if written != exp {
                return Err(CoreError::SizeInvalid(format!(
                    "received {written} bytes but Content-Length or Content-Range announced {exp}"
                )));
            }
        }
        let state = writer.finish().await?;
        Ok((upload.size + written, hasher, state))
    }

    /// Spec "closing an upload" (PUT with `?digest=`, optionally carrying the
    /// last chunk). Verifies the digest, commits the blob atomically and
    /// links it to the repository. On a digest mismatch nothing is stored
    /// or linked and the session ends.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_upload(
        &self,
        subject: &Subject,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        content_length: Option<u64>,
        body: Option<ByteStream>,
    ) -> CoreResult<BlobInfo> {
        self.authorize(subject, repo, Action::Push).await?;
        self.finish_session(subject, repo, id, digest, range, content_length, body)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_session(
        &self,
        subject: &Subject,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        content_length: Option<u64>,
        body: Option<ByteStream>,
    ) -> CoreResult<BlobInfo> {
        let upload = self.claim(subject, repo, id).await?;
        let result = self
            .finish_claimed(subject, &upload, repo, digest, range, content_length, body)
            .await;
        match &result {
            Ok(_) => {}
            Err(CoreError::DigestMismatch { .. }) | Err(CoreError::SizeInvalid(_)) => {
                // The session is over: drop it and its bytes.
                let _ = self.meta.delete_upload(&upload.id).await;
                let _ = self
                    .blobs
                    .abort_upload(&upload.id, &upload.backend_state)
                    .await;
            }
            Err(_) => self.release(&upload).await,
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_claimed(
        &self,
        subject: &Subject,
        upload: &Upload,
        repo: &RepoName,
        digest: &Digest,
        range: Option<(u64, u64)>,
        content_length: Option<u64>,
        body: Option<ByteStream>,
    ) -> CoreResult<BlobInfo> {
        let (size, hasher, state) = match body {
            Some(body) if content_length != Some(0) => {
                let expected = check_chunk(upload, range, content_length)?;
                self.append(upload, body, expected).await?
            }
            _ => {
                let hasher = Hasher::restore(&upload.hash_state).ok_or_else(|| {
                    CoreError::Internal(format!("upload {} has a corrupt hash state", upload.id))
                })?;
                (upload.size, hasher, upload.backend_state.clone())
            }
        };
        let actual = if hasher.algorithm() == digest.algorithm() {
            hasher.finish()
        } else {
            // The session hashed with another algorithm than the client
            // finally asked for: re-derive from the stored bytes.
            let mut h = Hasher::new(digest.algorithm());
            let mut data = self.blobs.read_upload(&upload.id, &state, size).await?;
            while let Some(chunk) = data.next().await {
                h.update(&chunk.map_err(CoreError::internal)?);
            }
            h.finish()
        };
        if &actual != digest {
            return Err(CoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        match self.wait_unless_deleting(digest).await? {
            BlobPresence::Present { .. } => {
                // Stored already (another repository, or a parallel push):
                // keep one copy.
                self.blobs.abort_upload(&upload.id, &state).await?;
            }
            BlobPresence::Absent => {
                self.blobs
                    .commit_upload(&upload.id, &state, size, digest)
                    .await?;
            }
            BlobPresence::Deleting => unreachable!("wait_unless_deleting never returns Deleting"),
        }
        let charge = self
            .meta
            .commit_blob(
                upload.project_id,
                repo,
                digest,
                size,
                Some(&upload.id),
                clock::now(),
            )
            .await;
        self.after_charge(subject, upload.project_id, repo, charge.map(Some))?;
        Ok(BlobInfo { size })
    }

    /// Publishes Harbor's quota events for a store operation that counted
    /// storage against the project: QUOTA_WARNING when it took usage past
    /// 85 %, QUOTA_EXCEED when the quota refused it.
    fn after_charge<T: QuotaOutcome>(
        &self,
        subject: &Subject,
        project_id: ProjectId,
        repo: &RepoName,
        result: CoreResult<T>,
    ) -> CoreResult<T> {
        match &result {
            Ok(outcome) => {
                if let Some(c) = outcome.charge().filter(|c| c.crossed_warning()) {
                    self.events.publish(Event::QuotaWarning {
                        project_id,
                        repository: repo.as_str().to_owned(),
                        used: c.used,
                        limit: c.limit,
                        operator: subject.name().to_owned(),
                        time: clock::now(),
                    });
                }
            }
            Err(e @ CoreError::QuotaExceeded { .. }) => {
                self.events.publish(Event::QuotaExceeded {
                    project_id,
                    repository: repo.as_str().to_owned(),
                    message: e.to_string(),
                    operator: subject.name().to_owned(),
                    time: clock::now(),
                });
            }
            Err(_) => {}
        }
        result
    }

    /// Clears a GC mark on `digest`; if GC is sweeping it right now, waits
    /// for the sweep to finish so the new bytes are not swept with it.
    async fn wait_unless_deleting(&self, digest: &Digest) -> CoreResult<BlobPresence> {
        for _ in 0..100 {
            match self.meta.touch_blob(digest, clock::now()).await? {
                BlobPresence::Deleting => tokio::time::sleep(Duration::from_millis(100)).await,
                other => return Ok(other),
            }
        }
        Err(CoreError::Busy(format!(
            "blob {digest} is being garbage-collected; retry the upload"
        )))
    }

    // ---- manifests -------------------------------------------------------

    /// Spec "Pushing Manifests". Validates the body (digest, media type,
    /// structure), requires every referenced blob to be linked to the
    /// repository and every index child to be an artifact of it, then
    /// records manifest, artifact and tag in one transaction.
    pub async fn put_manifest(
        &self,
        subject: &Subject,
        repo: &RepoName,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&str>,
        body: Bytes,
    ) -> CoreResult<PushedManifest> {
        let (project, _granted) = self.authorize(subject, repo, Action::Push).await?;
        if body.len() as u64 > self.config.max_manifest_bytes {
            return Err(CoreError::ManifestTooLarge {
                limit: self.config.max_manifest_bytes,
            });
        }
        let digest = match reference {
            Reference::Digest(d) => {
                let actual = Digest::of(d.algorithm(), &body);
                if &actual != d {
                    return Err(CoreError::DigestMismatch {
                        expected: d.clone(),
                        actual,
                    });
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256(&body),
        };
        let manifest = Manifest::parse(&body, content_type).map_err(|e| match e {
            ManifestError::Invalid(m) => CoreError::InvalidManifest(m),
            ManifestError::Unsupported(m) => CoreError::UnsupportedManifest(m),
        })?;
        let extra_attrs = self.config_attributes(repo, &manifest).await?;
        let tags: Vec<Tag> = reference
            .as_tag()
            .cloned()
            .into_iter()
            .chain(extra_tags.iter().cloned())
            .collect();
        let immutable_tags = if tags.is_empty() {
            vec![]
        } else {
            let guard = immutable::matcher(&*self.meta, project.id, repo.project()).await?;
            tags.iter()
                .filter(|t| guard.is_immutable(repo.as_str(), t.as_str()))
                .cloned()
                .collect()
        };
        let new = NewArtifact {
            project_id: project.id,
            repository: repo.clone(),
            digest: digest.clone(),
            manifest_media_type: manifest.media_type.clone(),
            media_type: match manifest.kind {
                ManifestKind::Index => manifest.media_type.clone(),
                ManifestKind::Image => manifest
                    .config
                    .as_ref()
                    .map(|c| c.media_type.clone())
                    .unwrap_or_default(),
            },
            artifact_type: manifest
                .effective_artifact_type()
                .unwrap_or(&manifest.media_type)
                .to_owned(),
            kind: artifact_kind(&manifest).to_owned(),
            subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
            annotations: manifest.annotations.clone(),
            extra_attrs,
            blobs: {
                let mut v: Vec<Digest> = manifest
                    .required_blobs()
                    .map(|d| d.digest.clone())
                    .collect();
                v.sort();
                v.dedup();
                v
            },
            foreign_size: manifest
                .layers
                .iter()
                .filter(|l| !l.is_distributable())
                .map(|l| l.size)
                .sum(),
            children: manifest
                .manifests
                .iter()
                .map(|m| NewChild {
                    digest: m.digest.clone(),
                    platform: m.platform.clone(),
                    annotations: m.annotations.clone(),
                    urls: m.urls.clone(),
                })
                .collect(),
            tags,
            immutable_tags,
            push_time: clock::now(),
            body,
        };
        let outcome = self.meta.put_manifest(&new).await;
        self.after_charge(subject, project.id, repo, outcome)?;
        let tags: Vec<Option<String>> = if new.tags.is_empty() {
            vec![None]
        } else {
            new.tags
                .iter()
                .map(|t| Some(t.as_str().to_owned()))
                .collect()
        };
        for tag in tags {
            self.events.publish(Event::ArtifactPushed {
                project_id: project.id,
                repository: repo.as_str().to_owned(),
                digest: digest.clone(),
                tag,
                media_type: manifest.media_type.clone(),
                operator: subject.name().to_owned(),
                time: new.push_time,
            });
        }
        Ok(PushedManifest {
            digest,
            subject: manifest.subject.map(|s| s.digest),
            tags: new.tags.iter().map(|t| t.as_str().to_owned()).collect(),
        })
    }

    /// Harbor's `extra_attrs` from an image config: architecture, os,
    /// author, created and the config itself. Missing config blobs are left
    /// to the transactional check, which reports them precisely.
    async fn config_attributes(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
    ) -> CoreResult<serde_json::Value> {
        const MAX_CONFIG: i64 = 1024 * 1024;
        let Some(config) = manifest.config.as_ref() else {
            return Ok(json!({}));
        };
        if !media::is_image_config(&config.media_type) || config.size > MAX_CONFIG {
            return Ok(json!({}));
        }
        let Some(blob) = self.meta.linked_blob(repo, &config.digest).await? else {
            return Ok(json!({}));
        };
        if blob.status == BlobStatus::Deleting || blob.size as i64 > MAX_CONFIG {
            return Ok(json!({}));
        }
        let mut stream = match self.blobs.read(&config.digest, None).await {
            Ok(s) => s,
            Err(_) => return Ok(json!({})),
        };
        let mut buf = Vec::with_capacity(blob.size as usize);
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk.map_err(CoreError::internal)?);
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&buf) else {
            return Ok(json!({}));
        };
        let pick = |k: &str| value.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let mut attrs = serde_json::Map::new();
        for key in ["architecture", "os", "author", "created", "variant"] {
            let v = pick(key);
            if !v.is_null() {
                attrs.insert(key.to_owned(), v);
            }
        }
        if let Some(c) = value.get("config") {
            attrs.insert("config".into(), c.clone());
        }
        Ok(serde_json::Value::Object(attrs))
    }

    /// Spec "Pulling manifests" (GET/HEAD). A client that does not accept
    /// the manifest's media type and the manifest is an index gets
    /// `ManifestNotFound`, as distribution does. `count_pull` is set for GET.
    pub async fn get_manifest(
        &self,
        subject: &Subject,
        repo: &RepoName,
        reference: &Reference,
        accept: &[String],
        count_pull: bool,
    ) -> CoreResult<ManifestRecord> {
        let (project, _granted) = self.authorize(subject, repo, Action::Pull).await?;
        let record = self
            .meta
            .resolve_manifest(repo, reference)
            .await?
            .ok_or_else(|| CoreError::ManifestNotFound(format!("{repo}:{reference}")))?;
        if media::is_index(&record.media_type) && !accepts(accept, &record.media_type) {
            return Err(CoreError::ManifestNotFound(format!(
                "{repo}:{reference} is an index ({}), which the Accept header does not allow",
                record.media_type
            )));
        }
        if count_pull {
            self.events.publish(Event::ArtifactPulled {
                project_id: project.id,
                repository_id: record.repository_id,
                repository: repo.as_str().to_owned(),
                artifact_id: record.artifact_id,
                digest: record.digest.clone(),
                tag: reference.as_tag().map(|t| t.as_str().to_owned()),
                operator: subject.name().to_owned(),
                time: clock::now(),
            });
        }
        Ok(record)
    }

    /// Spec "Deleting tags" and "Deleting manifests". Deleting by digest
    /// removes the artifact with all its tags and its accessories.
    pub async fn delete_manifest(
        &self,
        subject: &Subject,
        repo: &RepoName,
        reference: &Reference,
    ) -> CoreResult<()> {
        let (project, _granted) = self.authorize(subject, repo, Action::Delete).await?;
        let now = clock::now();
        match reference {
            Reference::Tag(tag) => {
                let guard = immutable::matcher(&*self.meta, project.id, repo.project()).await?;
                if guard.is_immutable(repo.as_str(), tag.as_str()) {
                    return Err(immutable_tag(repo.as_str(), tag.as_str()));
                }
                if !self.meta.delete_tag(repo, tag).await? {
                    return Err(CoreError::ManifestNotFound(format!("{repo}:{tag}")));
                }
                self.events.publish(Event::TagDeleted {
                    project_id: project.id,
                    repository: repo.as_str().to_owned(),
                    tag: tag.as_str().to_owned(),
                    operator: subject.name().to_owned(),
                    time: now,
                });
            }
            Reference::Digest(digest) => {
                let guard = immutable::matcher(&*self.meta, project.id, repo.project()).await?;
                let name = repo.as_str();
                let deleted = self
                    .meta
                    .delete_manifest(repo, digest, &|t| guard.is_immutable(name, t))
                    .await?;
                if deleted.artifacts.is_empty() {
                    return Err(CoreError::ManifestNotFound(format!("{repo}@{digest}")));
                }
                self.publish_deleted(project.id, repo.as_str(), deleted, subject, now);
            }
        }
        Ok(())
    }

    fn publish_deleted(
        &self,
        project_id: ProjectId,
        repo: &str,
        deleted: DeletedArtifacts,
        subject: &Subject,
        now: Millis,
    ) {
        for (digest, tags) in deleted.artifacts {
            self.events.publish(Event::ArtifactDeleted {
                project_id,
                repository: repo.to_owned(),
                digest,
                tags,
                operator: subject.name().to_owned(),
                time: now,
            });
        }
    }

    /// Harbor's artifact copy (`POST …/artifacts?from=`): the artifact
    /// `reference` of `from` becomes an artifact of `target` (under the same
    /// tag when `reference` is one), its blobs linked (mounted) and, for an
    /// index, its children copied first, then its accessories (signatures,
    /// SBOMs: its referrers in `from`), as Harbor copies them. Needs pull
    /// on `from` and push on `target`; the target project's quota counts
    /// what is new to it, and its immutability rules apply to the tag. A
    /// refused copy (over quota, immutable tag) leaves no blob it mounted
    /// linked or counted, unless an artifact of `target` uses it.
    pub async fn copy_artifact(
        &self,
        subject: &Subject,
        target: &RepoName,
        from: &RepoName,
        reference: &Reference,
    ) -> CoreResult<Digest> {
        self.authorize(subject, from, Action::Pull).await?;
        let (project, _granted) = self.authorize(subject, target, Action::Push).await?;
        let record = self
            .meta
            .resolve_manifest(from, reference)
            .await?
            .ok_or_else(|| CoreError::ManifestNotFound(format!("{from}:{reference}")))?;
        let target_ref = match reference {
            Reference::Tag(t) => Reference::Tag(t.clone()),
            Reference::Digest(_) => Reference::Digest(record.digest.clone()),
        };
        let mut mounted = vec![];
        let copy = CopyScope {
            subject,
            project_id: project.id,
            target,
            from,
        };
        let result = self
            .copy_artifact_deep(&copy, &record, &target_ref, &mut mounted, 0)
            .await;
        if result.is_err() && !mounted.is_empty() {
            if let Err(e) = self.meta.unlink_unused_blobs(target, &mounted).await {
                tracing::warn!(error = %e, repository = %target, "could not undo the mounts of a refused copy");
            }
        }
        result
    }

    /// Copies one artifact (content, manifest under `target_ref`), then its
    /// accessories, recording the blobs it mounted in `mounted`.
    fn copy_artifact_deep<'a>(
        &'a self,
        copy: &'a CopyScope<'a>,
        record: &'a ManifestRecord,
        target_ref: &'a Reference,
        mounted: &'a mut Vec<Digest>,
        depth: u32,
    ) -> futures::future::BoxFuture<'a, CoreResult<Digest>> {
        Box::pin(async move {
            self.copy_content(copy, record, mounted, 0).await?;
            let pushed = self
                .put_manifest(
                    copy.subject,
                    copy.target,
                    target_ref,
                    &[],
                    Some(&record.media_type),
                    record.body.clone(),
                )
                .await?;
            // Accessories of accessories (a signature of an SBOM) too, to
            // a bounded depth.
            if depth < 4 {
                for r in self.meta.referrers(copy.from, &record.digest, None).await? {
                    let reference = Reference::Digest(r.digest.clone());
                    let Some(acc) = self.meta.resolve_manifest(copy.from, &reference).await? else {
                        continue; // deleted meanwhile
                    };
                    self.copy_artifact_deep(copy, &acc, &reference, mounted, depth + 1)
                        .await?;
                }
            }
            Ok(pushed.digest)
        })
    }

    /// Links a manifest's blobs into the target and copies its children.
    fn copy_content<'a>(
        &'a self,
        copy: &'a CopyScope<'a>,
        record: &'a ManifestRecord,
        mounted: &'a mut Vec<Digest>,
        depth: u32,
    ) -> futures::future::BoxFuture<'a, CoreResult<()>> {
        let CopyScope {
            subject,
            project_id,
            target,
            from,
        } = *copy;
        Box::pin(async move {
            if depth > 4 {
                return Err(CoreError::UnsupportedManifest(
                    "indexes nested deeper than 4 levels are not copied".into(),
                ));
            }
            let manifest =
                Manifest::parse(&record.body, Some(&record.media_type)).map_err(|e| match e {
                    ManifestError::Invalid(m) => CoreError::InvalidManifest(m),
                    ManifestError::Unsupported(m) => CoreError::UnsupportedManifest(m),
                })?;
            for d in manifest.required_blobs() {
                if self.meta.linked_blob(target, &d.digest).await?.is_some() {
                    self.meta.touch_blob(&d.digest, clock::now()).await?;
                    continue;
                }
                let m = self
                    .meta
                    .mount_blob(project_id, target, from, &d.digest, clock::now())
                    .await;
                let m =
                    self.after_charge(subject, project_id, target, m.map(|m| m.map(|(_, c)| c)))?;
                if m.is_none() {
                    return Err(CoreError::ManifestBlobUnknown(d.digest.clone()));
                }
                mounted.push(d.digest.clone());
            }
            for child in &manifest.manifests {
                let reference = Reference::Digest(child.digest.clone());
                let child_record = self
                    .meta
                    .resolve_manifest(from, &reference)
                    .await?
                    .ok_or_else(|| CoreError::ManifestBlobUnknown(child.digest.clone()))?;
                self.copy_content(copy, &child_record, mounted, depth + 1)
                    .await?;
                self.put_manifest(
                    subject,
                    target,
                    &reference,
                    &[],
                    Some(&child_record.media_type),
                    child_record.body.clone(),
                )
                .await?;
            }
            Ok(())
        })
    }

    /// Spec "Listing Tags": `None` when the repository does not exist.
    pub async fn list_tags(
        &self,
        subject: &Subject,
        repo: &RepoName,
        n: Option<u64>,
        last: Option<&str>,
    ) -> CoreResult<(Vec<String>, bool)> {
        self.authorize(subject, repo, Action::Pull).await?;
        let limit = n.unwrap_or(MAX_LIST).min(MAX_LIST);
        if limit == 0 {
            return match self.meta.list_tags(repo, last, 0).await? {
                Some(_) => Ok((vec![], false)),
                None => Err(CoreError::RepositoryNotFound(repo.as_str().to_owned())),
            };
        }
        let mut tags = self
            .meta
            .list_tags(repo, last, limit + 1)
            .await?
            .ok_or_else(|| CoreError::RepositoryNotFound(repo.as_str().to_owned()))?;
        let more = tags.len() as u64 > limit;
        tags.truncate(limit as usize);
        Ok((tags, more))
    }

    /// Spec "Listing Referrers": always an answer, empty for unknown digests.
    pub async fn referrers(
        &self,
        subject: &Subject,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> CoreResult<Vec<Referrer>> {
        self.authorize(subject, repo, Action::Pull).await?;
        self.meta.referrers(repo, digest, artifact_type).await
    }

    /// `GET /v2/_catalog`: repositories of projects the caller may see.
    pub async fn catalog(
        &self,
        subject: &Subject,
        n: Option<u64>,
        last: Option<&str>,
    ) -> CoreResult<(Vec<String>, bool)> {
        if let Some(token) = subject.token() {
            // A registry token reaches the catalog only with that scope.
            if !token.catalog {
                return Err(if subject.is_anonymous() {
                    CoreError::Unauthenticated
                } else {
                    CoreError::denied()
                });
            }
        }
        let visibility = access::visibility(subject);
        let limit = n.unwrap_or(MAX_LIST).min(MAX_LIST);
        if limit == 0 {
            return Ok((vec![], false));
        }
        let mut names = self.meta.catalog(&visibility, last, limit + 1).await?;
        let more = names.len() as u64 > limit;
        names.truncate(limit as usize);
        Ok((names, more))
    }
}

/// Checks a chunk's `Content-Range`/`Content-Length` against the upload and
/// returns the number of bytes the body must have, if known.
fn check_chunk(
    upload: &Upload,
    range: Option<(u64, u64)>,
    content_length: Option<u64>,
) -> CoreResult<Option<u64>> {
    match range {
        Some((start, end)) => {
            if start != upload.size {
                return Err(CoreError::UploadOutOfOrder { size: upload.size });
            }
            if end < start {
                return Err(CoreError::UploadOutOfOrder { size: upload.size });
            }
            let len = end - start + 1;
            if let Some(cl) = content_length {
                if cl != len {
                    return Err(CoreError::SizeInvalid(format!(
                        "Content-Length {cl} does not match Content-Range {start}-{end}"
                    )));
                }
            }
            Ok(Some(len))
        }
        None => Ok(content_length),
    }
}

/// Whether an `Accept` list allows `media_type`. An empty list allows all.
fn accepts(accept: &[String], media_type: &str) -> bool {
    if accept.is_empty() {
        return true;
    }
    accept.iter().any(|a| {
        let a = media::essence(a);
        a == media_type || a == "*/*" || a == "application/*"
    })
}

/// Harbor's artifact `type`.
fn artifact_kind(m: &Manifest) -> &'static str {
    let config = m.config.as_ref().map(|c| c.media_type.as_str());
    match (m.kind, config, m.artifact_type.as_deref()) {
        (ManifestKind::Index, _, None) => "IMAGE",
        (_, Some(c), None) if media::is_image_config(c) => "IMAGE",
        (_, Some(media::HELM_CONFIG), _) => "CHART",
        (_, Some(media::CNAB_CONFIG), _) => "CNAB",
        (_, Some(media::WASM_CONFIG), _) => "WASM",
        _ => "UNKNOWN",
    }
}

/// Who copies what where, for `Registry::copy_artifact`.
#[derive(Clone, Copy)]
struct CopyScope<'a> {
    subject: &'a Subject,
    project_id: ProjectId,
    target: &'a RepoName,
    from: &'a RepoName,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(size: u64) -> Upload {
        Upload {
            id: "u".into(),
            project_id: 1,
            repository: "p/r".into(),
            size,
            hash_state: vec![],
            backend_state: String::new(),
            owner: String::new(),
            creation_time: 0,
            update_time: 0,
        }
    }

    #[test]
    fn chunk_checks() {
        assert_eq!(
            check_chunk(&upload(0), Some((0, 21)), Some(22)).unwrap(),
            Some(22)
        );
        assert!(matches!(
            check_chunk(&upload(0), Some((22, 41)), None),
            Err(CoreError::UploadOutOfOrder { size: 0 })
        ));
        assert!(matches!(
            check_chunk(&upload(22), Some((0, 21)), None),
            Err(CoreError::UploadOutOfOrder { size: 22 })
        ));
        assert!(matches!(
            check_chunk(&upload(0), Some((0, 21)), Some(5)),
            Err(CoreError::SizeInvalid(_))
        ));
        assert_eq!(check_chunk(&upload(5), None, Some(7)).unwrap(), Some(7));
        assert_eq!(check_chunk(&upload(5), None, None).unwrap(), None);
    }

    #[test]
    fn accept_negotiation() {
        assert!(accepts(&[], media::OCI_INDEX));
        assert!(accepts(&[media::OCI_INDEX.into()], media::OCI_INDEX));
        assert!(accepts(&["*/*".into()], media::OCI_INDEX));
        assert!(!accepts(&[media::DOCKER_MANIFEST.into()], media::OCI_INDEX));
        assert!(accepts(
            &[format!("{}; q=0.5", media::DOCKER_MANIFEST_LIST)],
            media::DOCKER_MANIFEST_LIST
        ));
    }
}
