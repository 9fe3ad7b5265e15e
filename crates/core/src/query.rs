//! Typed list queries. The API parses Harbor's `q`/`sort`/`page` syntax into
//! these; stores translate them into their own query language. Sort keys are
//! enums, so nothing a caller writes reaches a query as text except as a
//! bound value.

use berth_oci::Digest;

use crate::access::Visibility;
use crate::model::{ProjectId, RepositoryId};

/// 1-based page of `size` items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub number: u64,
    pub size: u64,
}

impl Page {
    pub const MAX_SIZE: u64 = 100;

    /// A page with its number and size clamped to sane bounds.
    pub fn new(number: u64, size: u64) -> Self {
        Page {
            number: number.max(1),
            size: size.clamp(1, Self::MAX_SIZE),
        }
    }

    pub fn offset(&self) -> u64 {
        (self.number - 1).saturating_mul(self.size)
    }
}

impl Default for Page {
    fn default() -> Self {
        Page::new(1, 10)
    }
}

/// A string condition: exact or substring ("fuzzy") match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextMatch {
    Exact(String),
    Fuzzy(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort<F> {
    pub field: F,
    pub descending: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectSortField {
    Id,
    Name,
    CreationTime,
    UpdateTime,
    /// Quota listings: `hard.storage`, `used.storage`.
    StorageLimit,
    StorageUsed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProjectQuery {
    pub name: Option<TextMatch>,
    pub public: Option<bool>,
    pub owner: Option<String>,
    pub visibility: Visibility,
    pub sort: Vec<Sort<ProjectSortField>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepositorySortField {
    Id,
    Name,
    CreationTime,
    UpdateTime,
    PullCount,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RepositoryQuery {
    pub project_id: Option<ProjectId>,
    pub name: Option<TextMatch>,
    pub visibility: Visibility,
    pub sort: Vec<Sort<RepositorySortField>>,
}

/// Harbor's `tags=` artifact filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagFilter {
    /// `tags=*`: only tagged artifacts.
    Tagged,
    /// `tags=nil`: only untagged artifacts.
    Untagged,
    Name(TextMatch),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactSortField {
    Id,
    PushTime,
    PullTime,
    Size,
    Digest,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactQuery {
    pub repository_id: RepositoryId,
    pub tags: Option<TagFilter>,
    pub digest: Option<Digest>,
    pub kind: Option<String>,
    pub media_type: Option<TextMatch>,
    pub sort: Vec<Sort<ArtifactSortField>>,
}

impl ArtifactQuery {
    pub fn all(repository_id: RepositoryId) -> Self {
        ArtifactQuery {
            repository_id,
            tags: None,
            digest: None,
            kind: None,
            media_type: None,
            sort: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_clamped() {
        assert_eq!(Page::new(0, 0), Page { number: 1, size: 1 });
        assert_eq!(Page::new(3, 1_000_000_000).size, Page::MAX_SIZE);
        assert_eq!(Page::new(3, 10).offset(), 20);
        assert_eq!(Page::new(u64::MAX, 100).offset(), u64::MAX);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserSortField {
    Id,
    Username,
    Email,
    CreationTime,
    UpdateTime,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct UserQuery {
    pub username: Option<TextMatch>,
    pub email: Option<TextMatch>,
    pub sort: Vec<Sort<UserSortField>>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct RobotQuery {
    pub level: Option<crate::model::RobotLevel>,
    pub project_id: Option<ProjectId>,
    pub name: Option<TextMatch>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditSortField {
    Id,
    OpTime,
    Operation,
    ResourceType,
    Username,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditQuery {
    /// `None`: every project and system entries; `Some`: these projects only.
    pub projects: Option<Vec<ProjectId>>,
    pub operation: Option<TextMatch>,
    pub resource_type: Option<TextMatch>,
    pub resource: Option<TextMatch>,
    pub username: Option<TextMatch>,
    pub from: Option<crate::clock::Millis>,
    pub to: Option<crate::clock::Millis>,
    pub sort: Vec<Sort<AuditSortField>>,
}

/// The audit entries a purge deletes: those older than `before` and, when
/// `operations` or `event_types` name any, only those matching one of them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuditPurgeQuery {
    pub before: crate::clock::Millis,
    /// Operations (`create`, `delete`, `pull`, …).
    pub operations: Vec<String>,
    /// (operation, resource type) pairs: Harbor's event types
    /// (`create_artifact` is `("create", "artifact")`).
    pub event_types: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StorageRequestQuery {
    pub project_id: Option<ProjectId>,
    pub status: Option<crate::model::StorageRequestStatus>,
}
