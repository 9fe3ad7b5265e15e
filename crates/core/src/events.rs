//! The internal event stream. Use-cases publish what happened (push, pull,
//! delete, …); subscribers such as pull statistics, and later audit,
//! webhooks and replication, consume it. Delivery is in-process and
//! best-effort: a subscriber that falls behind by more than the channel's
//! capacity loses the oldest events and is told how many.

use std::sync::Arc;

use berth_oci::Digest;
use tokio::sync::broadcast;

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
}

/// Fan-out of [`Event`]s to every subscriber.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        EventBus { tx }
    }

    pub fn publish(&self, event: Event) {
        // No subscribers is not an error.
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(8192)
    }
}
