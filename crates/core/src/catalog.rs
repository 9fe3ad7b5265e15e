//! Harbor's management model: projects, their repositories, artifacts and
//! tags, as the `/api/v2.0` API and the portal present them. Every method
//! authorizes through [`access::authorize`] against the owning project.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_oci::{ProjectName, Reference, RepoName, Tag};

use crate::access::{self, Action, ProjectRef, Resource, Subject};
use crate::clock;
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::model::*;
use crate::ports::{BlobStore, MetaStore};
use crate::query::{ArtifactQuery, Page, ProjectQuery, RepositoryQuery};
use crate::settings::Settings;

/// How an API path names a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectKey {
    Id(ProjectId),
    Name(String),
}

impl ProjectKey {
    /// Harbor's rule: a value that parses as an integer is an id unless the
    /// caller says it is a name (`X-Is-Resource-Name: true`).
    pub fn from_path(value: &str, is_name: bool) -> Self {
        match value.parse::<i64>() {
            Ok(id) if !is_name => ProjectKey::Id(id),
            _ => ProjectKey::Name(value.to_owned()),
        }
    }
}

impl std::fmt::Display for ProjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectKey::Id(id) => write!(f, "{id}"),
            ProjectKey::Name(n) => f.write_str(n),
        }
    }
}

/// A request to create a project.
#[derive(Debug, Clone, Default)]
pub struct CreateProject {
    pub name: String,
    pub public: Option<bool>,
    pub metadata: BTreeMap<String, String>,
    pub storage_limit: Option<i64>,
    pub registry_id: Option<i64>,
}

/// Harbor's project metadata keys and the values each accepts.
const METADATA_KEYS: &[(&str, MetaValue)] = &[
    ("public", MetaValue::Bool),
    ("enable_content_trust", MetaValue::Bool),
    ("enable_content_trust_cosign", MetaValue::Bool),
    ("prevent_vul", MetaValue::Bool),
    (
        "severity",
        MetaValue::OneOf(&["none", "low", "medium", "high", "critical"]),
    ),
    ("auto_scan", MetaValue::Bool),
    ("auto_sbom_generation", MetaValue::Bool),
    ("reuse_sys_cve_allowlist", MetaValue::Bool),
    ("retention_id", MetaValue::Any),
    ("proxy_speed_kb", MetaValue::Int),
    ("max_upstream_conn", MetaValue::Int),
    ("proxy_cache_local_on_not_found", MetaValue::Bool),
    ("proxy_referrer_api", MetaValue::Bool),
    ("proxy_cache_filter_pattern", MetaValue::Any),
    (
        "proxy_cache_filter_kind",
        MetaValue::OneOf(&["doublestar", "regex"]),
    ),
];

#[derive(Debug, Clone, Copy)]
enum MetaValue {
    Bool,
    Int,
    Any,
    OneOf(&'static [&'static str]),
}

/// Validates and normalises project metadata (booleans become
/// "true"/"false", as Harbor stores them).
pub fn normalize_metadata(
    input: &BTreeMap<String, String>,
) -> CoreResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in input {
        let Some((_, kind)) = METADATA_KEYS.iter().find(|(name, _)| name == k) else {
            return Err(CoreError::BadRequest(format!(
                "unknown project metadata key {k:?}"
            )));
        };
        let value = match kind {
            MetaValue::Bool => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => "true".to_owned(),
                "false" | "0" => "false".to_owned(),
                _ => {
                    return Err(CoreError::BadRequest(format!(
                        "metadata {k} must be \"true\" or \"false\""
                    )))
                }
            },
            MetaValue::Int => {
                v.parse::<i64>().map_err(|_| {
                    CoreError::BadRequest(format!("metadata {k} must be an integer"))
                })?;
                v.clone()
            }
            MetaValue::OneOf(allowed) => {
                if !allowed.contains(&v.as_str()) {
                    return Err(CoreError::BadRequest(format!(
                        "metadata {k} must be one of {}",
                        allowed.join(", ")
                    )));
                }
                v.clone()
            }
            MetaValue::Any => v.clone(),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

pub struct Catalog {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    events: EventBus,
    settings: Arc<Settings>,
}

/// The project `key` names, authorized for `action` on `resource`.
/// Anonymous callers cannot tell a missing project from a private one.
pub(crate) async fn authorized_project(
    meta: &dyn MetaStore,
    subject: &Subject,
    key: &ProjectKey,
    resource: Resource,
    action: Action,
) -> CoreResult<Project> {
    let found = match key {
        ProjectKey::Id(id) => meta.project_by_id(*id).await?,
        ProjectKey::Name(name) => meta.project_by_name(name).await?,
    };
    let project = match found {
        Some(p) => p,
        None if subject.is_anonymous() => return Err(CoreError::Unauthenticated),
        None => return Err(CoreError::ProjectNotFound(key.to_string())),
    };
    access::authorize(subject, Some(project_ref(&project)), resource, action)?;
    Ok(project)
}

pub(crate) fn project_ref(p: &Project) -> ProjectRef {
    ProjectRef {
        id: p.id,
        public: p.public,
    }
}

impl Catalog {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        events: EventBus,
        settings: Arc<Settings>,
    ) -> Self {
        Catalog {
            meta,
            blobs,
            events,
            settings,
        }
    }

    async fn project_for(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        resource: Resource,
        action: Action,
    ) -> CoreResult<Project> {
        authorized_project(&*self.meta, subject, key, resource, action).await
    }

    /// Creates `library` (public, owned by the admin) if no project exists
    /// with that name. Runs at start-up.
    pub async fn ensure_default_project(&self, owner_id: UserId) -> CoreResult<()> {
        if self.meta.project_by_name("library").await?.is_none() {
            let name = ProjectName::parse("library").map_err(CoreError::internal)?;
            let mut metadata = BTreeMap::new();
            metadata.insert("public".to_owned(), "true".to_owned());
            match self
                .meta
                .create_project(&NewProject {
                    name,
                    owner_id,
                    public: true,
                    metadata,
                    storage_limit: self.settings.current().await?.storage_per_project,
                    registry_id: None,
                })
                .await
            {
                Ok(_) | Err(CoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub async fn create_project(
        &self,
        subject: &Subject,
        req: CreateProject,
    ) -> CoreResult<Project> {
        let cfg = self.settings.current().await?;
        let admin_only = cfg.project_creation_restriction == "adminonly" && !subject.is_sysadmin();
        let owner_id = match subject.user_id() {
            None if subject.is_anonymous() => return Err(CoreError::Unauthenticated),
            _ if admin_only => {
                return Err(CoreError::Denied(
                    "Only system admin can create project".into(),
                ))
            }
            Some(id) => id,
            None => {
                // Robots need the system-level project:create permission and
                // the project is owned by the admin, as in Harbor.
                access::authorize(subject, None, Resource::Project, Action::Create)?;
                1
            }
        };
        let name =
            ProjectName::parse(&req.name).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        let mut metadata = normalize_metadata(&req.metadata)?;
        if metadata.contains_key("retention_id") {
            return Err(CoreError::BadRequest(
                "retention_id must not be set when creating a project".into(),
            ));
        }
        let public = match (req.public, metadata.get("public")) {
            (_, Some(v)) => v == "true",
            (Some(p), None) => p,
            (None, None) => false,
        };
        metadata.insert("public".into(), public.to_string());
        if req.registry_id.is_some() {
            return Err(CoreError::BadRequest(
                "proxy-cache projects (registry_id) are not supported by this Berth version".into(),
            ));
        }
        let storage_limit = match req.storage_limit {
            Some(limit) if subject.is_sysadmin() => crate::quotas::check_limit(limit)?,
            _ => cfg.storage_per_project,
        };
        let project = self
            .meta
            .create_project(&NewProject {
                name,
                owner_id,
                public,
                metadata,
                storage_limit,
                registry_id: None,
            })
            .await?;
        self.events.publish(Event::ProjectCreated {
            project_id: project.id,
            name: project.name.clone(),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(project)
    }

    /// `HEAD /projects?project_name=`: whether the name is taken.
    pub async fn project_name_taken(&self, subject: &Subject, name: &str) -> CoreResult<bool> {
        if subject.is_anonymous() {
            return Err(CoreError::Unauthenticated);
        }
        Ok(self.meta.project_by_name(name).await?.is_some())
    }

    pub async fn get_project(&self, subject: &Subject, key: &ProjectKey) -> CoreResult<Project> {
        self.project_for(subject, key, Resource::Project, Action::Read)
            .await
    }

    /// Projects the caller may see, filtered and paged.
    pub async fn list_projects(
        &self,
        subject: &Subject,
        mut query: ProjectQuery,
        page: Page,
    ) -> CoreResult<(Vec<Project>, i64)> {
        query.visibility = access::visibility(subject);
        self.meta.list_projects(&query, page).await
    }

    pub async fn update_project(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        public: Option<bool>,
        metadata: &BTreeMap<String, String>,
    ) -> CoreResult<()> {
        let project = self
            .project_for(subject, key, Resource::Project, Action::Update)
            .await?;
        let updates = normalize_metadata(metadata)?;
        let mut merged = project.metadata.clone();
        for (k, v) in updates {
            if k != "retention_id" {
                merged.insert(k, v);
            }
        }
        let public = match (metadata.contains_key("public"), public) {
            (true, _) => merged.get("public").map(|v| v == "true").unwrap_or(false),
            (false, Some(p)) => p,
            (false, None) => project.public,
        };
        merged.insert("public".into(), public.to_string());
        self.meta
            .update_project(project.id, public, &merged)
            .await?;
        self.events.publish(Event::ProjectUpdated {
            project_id: project.id,
            name: project.name,
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }

    /// Whether the project may be deleted, and why not.
    pub async fn project_deletable(
        &self,
        subject: &Subject,
        key: &ProjectKey,
    ) -> CoreResult<(bool, String)> {
        let project = self
            .project_for(subject, key, Resource::Project, Action::Delete)
            .await?;
        let summary = self.meta.project_summary(project.id).await?;
        if summary.repo_count > 0 {
            Ok((
                false,
                "the project contains repositories, can not be deleted".into(),
            ))
        } else {
            Ok((true, String::new()))
        }
    }

    pub async fn delete_project(&self, subject: &Subject, key: &ProjectKey) -> CoreResult<()> {
        let project = self
            .project_for(subject, key, Resource::Project, Action::Delete)
            .await?;
        let uploads = self.meta.delete_project(project.id).await?;
        for u in uploads {
            if let Err(e) = self.blobs.abort_upload(&u.id, &u.backend_state).await {
                tracing::warn!(upload = %u.id, error = %e, "could not release upload storage of a deleted project");
            }
        }
        self.events.publish(Event::ProjectDeleted {
            project_id: project.id,
            name: project.name,
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }

    pub async fn project_summary(
        &self,
        subject: &Subject,
        key: &ProjectKey,
    ) -> CoreResult<(Project, ProjectSummary)> {
        let project = self
            .project_for(subject, key, Resource::Project, Action::Read)
            .await?;
        let summary = self.meta.project_summary(project.id).await?;
        Ok((project, summary))
    }

    // ---- repositories ----------------------------------------------------

    fn repo_name(project: &str, path: &str) -> CoreResult<RepoName> {
        RepoName::parse(&format!("{project}/{path}"))
            .map_err(|e| CoreError::BadRequest(e.to_string()))
    }

    /// Repositories of one project, or of every visible project.
    pub async fn list_repositories(
        &self,
        subject: &Subject,
        project: Option<&ProjectKey>,
        mut query: RepositoryQuery,
        page: Page,
    ) -> CoreResult<(Vec<Repository>, i64)> {
        match project {
            Some(key) => {
                let p = self
                    .project_for(subject, key, Resource::Repository, Action::List)
                    .await?;
                query.project_id = Some(p.id);
                query.visibility = access::Visibility::All;
            }
            None => {
                query.project_id = None;
                query.visibility = access::visibility(subject);
            }
        }
        self.meta.list_repositories(&query, page).await
    }

    async fn repository_for(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        resource: Resource,
        action: Action,
    ) -> CoreResult<(Project, Repository)> {
        let p = self
            .project_for(
                subject,
                &ProjectKey::Name(project.to_owned()),
                resource,
                action,
            )
            .await?;
        let name = Self::repo_name(project, path)?;
        let repo = self
            .meta
            .repository_by_name(name.as_str())
            .await?
            .ok_or_else(|| CoreError::RepositoryNotFound(name.as_str().to_owned()))?;
        Ok((p, repo))
    }

    pub async fn get_repository(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
    ) -> CoreResult<Repository> {
        Ok(self
            .repository_for(subject, project, path, Resource::Repository, Action::Read)
            .await?
            .1)
    }

    pub async fn update_repository(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        description: &str,
    ) -> CoreResult<()> {
        let (_, repo) = self
            .repository_for(subject, project, path, Resource::Repository, Action::Update)
            .await?;
        self.meta
            .update_repository_description(repo.id, description)
            .await
    }

    pub async fn delete_repository(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
    ) -> CoreResult<()> {
        let (p, repo) = self
            .repository_for(subject, project, path, Resource::Repository, Action::Delete)
            .await?;
        let guard = crate::immutable::matcher(&*self.meta, p.id, &p.name).await?;
        let name = repo.name.clone();
        let deleted = self
            .meta
            .delete_repository(repo.id, &|t| guard.is_immutable(&name, t))
            .await?;
        let now = clock::now();
        for (digest, tags) in deleted.artifacts {
            self.events.publish(Event::ArtifactDeleted {
                project_id: p.id,
                repository: repo.name.clone(),
                digest,
                tags,
                operator: subject.name().to_owned(),
                time: now,
            });
        }
        self.events.publish(Event::RepositoryDeleted {
            project_id: p.id,
            repository: repo.name,
            operator: subject.name().to_owned(),
            time: now,
        });
        Ok(())
    }

    // ---- artifacts and tags ----------------------------------------------

    pub async fn list_artifacts(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        mut query: ArtifactQuery,
        page: Page,
    ) -> CoreResult<(Vec<Artifact>, i64)> {
        let (_, repo) = self
            .repository_for(subject, project, path, Resource::Artifact, Action::List)
            .await?;
        query.repository_id = repo.id;
        self.meta.list_artifacts(&query, page).await
    }

    async fn artifact_for(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        reference: &Reference,
        resource: Resource,
        action: Action,
    ) -> CoreResult<(Project, Repository, Artifact)> {
        let (p, repo) = self
            .repository_for(subject, project, path, resource, action)
            .await?;
        let artifact = self
            .meta
            .artifact_by_reference(repo.id, reference)
            .await?
            .ok_or_else(|| CoreError::ArtifactNotFound(format!("{}:{reference}", repo.name)))?;
        Ok((p, repo, artifact))
    }

    pub async fn get_artifact(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        reference: &Reference,
    ) -> CoreResult<Artifact> {
        Ok(self
            .artifact_for(
                subject,
                project,
                path,
                reference,
                Resource::Artifact,
                Action::Read,
            )
            .await?
            .2)
    }

    /// Deletes an artifact with all its tags and accessories.
    pub async fn delete_artifact(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        reference: &Reference,
    ) -> CoreResult<()> {
        let (p, repo, artifact) = self
            .artifact_for(
                subject,
                project,
                path,
                reference,
                Resource::Artifact,
                Action::Delete,
            )
            .await?;
        let name = Self::repo_name(project, path)?;
        let guard = crate::immutable::matcher(&*self.meta, p.id, &p.name).await?;
        let deleted = self
            .meta
            .delete_manifest(&name, &artifact.digest, &|t| {
                guard.is_immutable(name.as_str(), t)
            })
            .await?;
        let now = clock::now();
        for (digest, tags) in deleted.artifacts {
            self.events.publish(Event::ArtifactDeleted {
                project_id: p.id,
                repository: repo.name.clone(),
                digest,
                tags,
                operator: subject.name().to_owned(),
                time: now,
            });
        }
        Ok(())
    }

    /// Harbor's `build_history` addition: the image config's `history`.
    pub async fn build_history(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        reference: &Reference,
    ) -> CoreResult<serde_json::Value> {
        let (_, _, artifact) = self
            .artifact_for(
                subject,
                project,
                path,
                reference,
                Resource::ArtifactAddition,
                Action::Read,
            )
            .await?;
        let name = Self::repo_name(project, path)?;
        let manifest = self
            .meta
            .resolve_manifest(&name, &Reference::Digest(artifact.digest.clone()))
            .await?
            .ok_or_else(|| CoreError::ArtifactNotFound(artifact.digest.to_string()))?;
        let parsed = berth_oci::Manifest::parse(&manifest.body, Some(&manifest.media_type))
            .map_err(|e| CoreError::Internal(format!("stored manifest does not parse: {e}")))?;
        let Some(config) = parsed
            .config
            .filter(|c| berth_oci::media::is_image_config(&c.media_type))
        else {
            return Err(CoreError::NotFound(
                "build history of a non-image artifact".into(),
            ));
        };
        let mut stream = self.blobs.read(&config.digest, None).await?;
        let mut buf = Vec::new();
        while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
            buf.extend_from_slice(&chunk.map_err(CoreError::internal)?);
            if buf.len() > 4 * 1024 * 1024 {
                return Err(CoreError::BadRequest(
                    "the image config is too large".into(),
                ));
            }
        }
        let value: serde_json::Value =
            serde_json::from_slice(&buf).unwrap_or(serde_json::Value::Null);
        Ok(value
            .get("history")
            .cloned()
            .unwrap_or_else(|| serde_json::json!([])))
    }

    pub async fn list_tags(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        reference: &Reference,
    ) -> CoreResult<Vec<TagRecord>> {
        Ok(self
            .artifact_for(
                subject,
                project,
                path,
                reference,
                Resource::Tag,
                Action::List,
            )
            .await?
            .2
            .tags)
    }

    pub async fn create_tag(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        reference: &Reference,
        tag: &str,
    ) -> CoreResult<TagRecord> {
        let tag = Tag::parse(tag).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        let (p, repo, artifact) = self
            .artifact_for(
                subject,
                project,
                path,
                reference,
                Resource::Tag,
                Action::Create,
            )
            .await?;
        let now = clock::now();
        let record = self.meta.create_tag(&artifact, &tag, now).await?;
        self.events.publish(Event::TagCreated {
            project_id: p.id,
            repository: repo.name,
            digest: artifact.digest,
            tag: tag.as_str().to_owned(),
            operator: subject.name().to_owned(),
            time: now,
        });
        Ok(record)
    }

    /// Deletes a tag of the artifact `reference` names.
    pub async fn delete_tag(
        &self,
        subject: &Subject,
        project: &str,
        path: &str,
        reference: &Reference,
        tag: &str,
    ) -> CoreResult<()> {
        let (p, repo, artifact) = self
            .artifact_for(
                subject,
                project,
                path,
                reference,
                Resource::Tag,
                Action::Delete,
            )
            .await?;
        if !artifact.tags.iter().any(|t| t.name == tag) {
            return Err(CoreError::TagNotFound(tag.to_owned()));
        }
        let tag = Tag::parse(tag).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        let name = Self::repo_name(project, path)?;
        let guard = crate::immutable::matcher(&*self.meta, p.id, &p.name).await?;
        if guard.is_immutable(name.as_str(), tag.as_str()) {
            return Err(crate::registry::immutable_tag(name.as_str(), tag.as_str()));
        }
        self.meta.delete_tag(&name, &tag).await?;
        self.events.publish(Event::TagDeleted {
            project_id: p.id,
            repository: repo.name,
            tag: tag.as_str().to_owned(),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_keys() {
        assert_eq!(ProjectKey::from_path("12", false), ProjectKey::Id(12));
        assert_eq!(
            ProjectKey::from_path("12", true),
            ProjectKey::Name("12".into())
        );
        assert_eq!(
            ProjectKey::from_path("lib", false),
            ProjectKey::Name("lib".into())
        );
    }

    #[test]
    fn metadata_validation() {
        let mut m = BTreeMap::new();
        m.insert("public".to_owned(), "TRUE".to_owned());
        m.insert("severity".to_owned(), "high".to_owned());
        let n = normalize_metadata(&m).unwrap();
        assert_eq!(n["public"], "true");
        m.insert("severity".to_owned(), "urgent".to_owned());
        assert!(normalize_metadata(&m).is_err());
        let mut m = BTreeMap::new();
        m.insert("password".to_owned(), "x".to_owned());
        assert!(normalize_metadata(&m).is_err());
    }
}
