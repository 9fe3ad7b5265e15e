//! The internal event stream. Use-cases publish what happened (push, pull,
//! delete, …); subscribers such as pull statistics, and later audit,
//! webhooks and replication, consume it. Delivery is in-process and
//! best-effort: a subscriber that falls behind by more than the channel's
//! capacity loses the oldest events and is told how many.

use std::sync::{Arc, Mutex};

use berth_oci::Digest;
use tokio::sync::{broadcast, mpsc};

use crate::clock::Millis;
use crate::model::{ArtifactId, ProjectId, RepositoryId};

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ArtifactPushed {
        project_id: ProjectId,
        repository: String,
        digest: Digest,
        tag: Option<String>,
        media_type: String,
        operator: String,
        time: Millis,
    },
    ArtifactPulled {
        project_id: ProjectId,
        repository_id: RepositoryId,
        repository: String,
        artifact_id: ArtifactId,
        digest: Digest,
        tag: Option<String>,
        operator: String,
        time: Millis,
    },
    ArtifactDeleted {
        project_id: ProjectId,
        repository: String,
        digest: Digest,
        tags: Vec<String>,
        operator: String,
        time: Millis,
    },
    TagCreated {
        project_id: ProjectId,
        repository: String,
        digest: Digest,
        tag: String,
        operator: String,
        time: Millis,
    },
    TagDeleted {
        project_id: ProjectId,
        repository: String,
        tag: String,
        operator: String,
        time: Millis,
    },
    RepositoryDeleted {
        project_id: ProjectId,
        repository: String,
        operator: String,
        time: Millis,
    },
    ProjectCreated {
        project_id: ProjectId,
        name: String,
        operator: String,
        time: Millis,
    },
    ProjectUpdated {
        project_id: ProjectId,
        name: String,
        operator: String,
        time: Millis,
    },
    ProjectDeleted {
        project_id: ProjectId,
        name: String,
        operator: String,
        time: Millis,
    },
    /// A login attempt (portal, API or registry credentials exchange).
    Login {
        username: String,
        success: bool,
        time: Millis,
    },
    Logout {
        username: String,
        time: Millis,
    },
    UserCreated {
        username: String,
        operator: String,
        time: Millis,
    },
    UserUpdated {
        username: String,
        /// What changed, in words ("profile", "password", "sysadmin flag").
        what: String,
        operator: String,
        time: Millis,
    },
    UserDeleted {
        username: String,
        operator: String,
        time: Millis,
    },
    MemberCreated {
        project_id: ProjectId,
        project: String,
        member: String,
        role: String,
        operator: String,
        time: Millis,
    },
    MemberUpdated {
        project_id: ProjectId,
        project: String,
        member: String,
        role: String,
        operator: String,
        time: Millis,
    },
    MemberDeleted {
        project_id: ProjectId,
        project: String,
        member: String,
        operator: String,
        time: Millis,
    },
    RobotCreated {
        project_id: ProjectId,
        name: String,
        operator: String,
        time: Millis,
    },
    RobotUpdated {
        project_id: ProjectId,
        name: String,
        what: String,
        operator: String,
        time: Millis,
    },
    RobotDeleted {
        project_id: ProjectId,
        name: String,
        operator: String,
        time: Millis,
    },
    /// Keys only, never values: configuration holds secrets.
    ConfigurationUpdated {
        keys: Vec<String>,
        operator: String,
        time: Millis,
    },
    /// Harbor's QUOTA_WARNING: a push took the project's usage past 85 %
    /// of its quota.
    QuotaWarning {
        project_id: ProjectId,
        repository: String,
        used: i64,
        limit: i64,
        operator: String,
        time: Millis,
    },
    /// Harbor's QUOTA_EXCEED: a push was refused because of the quota.
    QuotaExceeded {
        project_id: ProjectId,
        repository: String,
        message: String,
        operator: String,
        time: Millis,
    },
    /// A project admin asked for a storage limit of `storage` bytes.
    StorageRequested {
        project_id: ProjectId,
        project: String,
        request_id: i64,
        storage: i64,
        operator: String,
        time: Millis,
    },
    /// A system admin approved (the limit is now `storage`) or declined a
    /// storage request.
    StorageRequestDecided {
        project_id: ProjectId,
        project: String,
        request_id: i64,
        storage: i64,
        approved: bool,
        operator: String,
        time: Millis,
    },
    /// A pending storage request was withdrawn.
    StorageRequestWithdrawn {
        project_id: ProjectId,
        project: String,
        request_id: i64,
        operator: String,
        time: Millis,
    },
}

/// Fan-out of [`Event`]s to every subscriber.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    reliable: Arc<Mutex<Vec<mpsc::UnboundedSender<Arc<Event>>>>>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        EventBus {
            tx,
            reliable: Arc::default(),
        }
    }

    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        if let Ok(mut subs) = self.reliable.lock() {
            subs.retain(|s| s.send(event.clone()).is_ok());
        }
        // No subscribers is not an error.
        let _ = self.tx.send(event);
    }

    /// A best-effort subscription: a subscriber that falls too far behind
    /// loses the oldest events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// A subscription that never loses an event (for the audit log): its
    /// queue grows instead, so its consumer must keep up.
    pub fn subscribe_reliable(&self) -> mpsc::UnboundedReceiver<Arc<Event>> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut subs) = self.reliable.lock() {
            subs.push(tx);
        }
        rx
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(8192)
    }
}
