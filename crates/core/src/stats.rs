//! Pull statistics: folds `ArtifactPulled` events into pull counts and pull
//! times in batches, off the request path, so that a pull costs no write.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::events::{Event, EventBus};
use crate::model::PullRecord;
use crate::ports::MetaStore;

/// Runs until `shutdown` turns true, then flushes what it holds.
pub async fn run_pull_recorder(
    meta: Arc<dyn MetaStore>,
    events: EventBus,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut rx = events.subscribe();
    let mut batch: Vec<PullRecord> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if let Event::ArtifactPulled { repository_id, artifact_id, tag, time, .. } = ev.as_ref() {
                        batch.push(PullRecord { repository_id: *repository_id, artifact_id: *artifact_id, tag: tag.clone(), time: *time });
                        if batch.len() >= 10_000 {
                            flush(&meta, &mut batch).await;
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "pull statistics fell behind; some pulls were not counted"),
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => flush(&meta, &mut batch).await,
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    flush(&meta, &mut batch).await;
}

async fn flush(meta: &Arc<dyn MetaStore>, batch: &mut Vec<PullRecord>) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = meta.record_pulls(batch).await {
        tracing::warn!(error = %e, pulls = batch.len(), "could not record pull statistics");
    }
    batch.clear();
}
