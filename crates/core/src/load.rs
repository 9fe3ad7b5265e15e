//! Foreground load, and the pacing of background work around it.
//!
//! The HTTP layer counts the requests it is serving (`Foreground::enter`).
//! Jobs that walk many rows or objects — GC's sweep, retention, the
//! audit-log purge — call `Pacer::pace` between batches: on an idle
//! registry they run flat out; while clients are being served they work
//! at most a fifth of the time, in small batches, and start each batch in
//! a gap between requests, so that pushes and pulls keep their latency.
//! Progress never stops: every wait is bounded.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A job rests this many times as long as its last batch took while
/// clients are served (a duty cycle of 1 / (1 + REST_FACTOR)).
const REST_FACTOR: u32 = 4;
/// Bounds on one rest.
const MIN_REST: Duration = Duration::from_millis(2);
const MAX_REST: Duration = Duration::from_secs(1);
/// After resting, how long a job waits for no request to be in flight.
const MAX_GAP_WAIT: Duration = Duration::from_millis(250);
const GAP_POLL: Duration = Duration::from_millis(1);

/// Requests in flight, shared by the HTTP layer and the jobs of a process.
#[derive(Clone, Default)]
pub struct Foreground(Arc<Counters>);

#[derive(Default)]
struct Counters {
    in_flight: AtomicUsize,
    started: AtomicU64,
}

/// Held while a request is served.
pub struct Serving(Arc<Counters>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Foreground {
    /// Counts a request until the guard drops.
    pub fn enter(&self) -> Serving {
        self.0.started.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        Serving(self.0.clone())
    }

    pub fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::Relaxed)
    }

    fn started(&self) -> u64 {
        self.0.started.load(Ordering::Relaxed)
    }

    /// A pacer for one job's loop.
    pub fn pacer(&self) -> Pacer {
        Pacer {
            fg: self.clone(),
            since: Instant::now(),
            seen: self.started(),
        }
    }
}

/// Paces one background loop; see the module documentation.
pub struct Pacer {
    fg: Foreground,
    since: Instant,
    seen: u64,
}

impl Pacer {
    /// Whether clients were served since the last `pace` (or are now).
    pub fn busy(&self) -> bool {
        self.fg.in_flight() > 0 || self.fg.started() != self.seen
    }

    /// A batch size: `idle` on an idle registry, `busy` otherwise.
    pub fn batch(&self, idle: i64, busy: i64) -> i64 {
        if self.busy() {
            busy
        } else {
            idle
        }
    }

    /// Called after each batch of background work.
    pub async fn pace(&mut self) {
        if self.busy() {
            let rest = (self.since.elapsed() * REST_FACTOR).clamp(MIN_REST, MAX_REST);
            tokio::time::sleep(rest).await;
            let waited = Instant::now();
            while self.fg.in_flight() > 0 && waited.elapsed() < MAX_GAP_WAIT {
                tokio::time::sleep(GAP_POLL).await;
            }
        }
        self.since = Instant::now();
        self.seen = self.fg.started();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_runs_flat_out_and_busy_rests() {
        let fg = Foreground::default();
        let mut p = fg.pacer();
        assert!(!p.busy());
        let t = Instant::now();
        p.pace().await;
        assert!(t.elapsed() < MIN_REST, "no rest when idle");
        assert_eq!(p.batch(1000, 100), 1000);

        // A request served since the last batch: the pacer rests about
        // REST_FACTOR times the batch's time.
        drop(fg.enter());
        assert!(p.busy());
        assert_eq!(p.batch(1000, 100), 100);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = Instant::now();
        p.pace().await;
        assert!(
            t.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t.elapsed()
        );
        assert!(!p.busy(), "the request was accounted for");

        // A request still in flight: the pacer waits for it, but only so long.
        let held = fg.enter();
        let t = Instant::now();
        p.pace().await;
        assert!(t.elapsed() >= MAX_GAP_WAIT, "{:?}", t.elapsed());
        assert!(t.elapsed() < MAX_REST + MAX_GAP_WAIT * 2);
        assert_eq!(fg.in_flight(), 1);
        drop(held);
        assert_eq!(fg.in_flight(), 0);
    }
}
