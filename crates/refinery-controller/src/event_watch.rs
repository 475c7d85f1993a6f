//! One task per node following the engine's events; it reconnects with backoff and says when the
//! engine went away and when it is back. What the followers send waits in a bounded backlog: when
//! events come faster than the daemon takes them (an event storm), a node's further events are
//! dropped and the node is marked for a full resync instead, so memory stays bounded and nothing
//! that matters is lost (the resync observes the node afresh).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use futures_util::StreamExt;
use refinery_core::{EngineEvent, LabelSelector, RuntimeError, UnreachableCause};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::ports::Engine;
use crate::requeue::on_error;

/// What wakes the daemon besides its timers.
#[derive(Debug, Clone)]
pub enum Trigger {
    Event {
        node: String,
        event: EngineEvent,
        /// When the follower received it.
        received: Instant,
    },
    /// The engine stopped answering or the event stream broke.
    Lost { node: String, why: String },
    /// The engine answers again after `Lost`: a full pass is due.
    Back { node: String },
    /// Something changed in a namespace a `kubernetes:` source manages: a full pass is due.
    Kube { source: String, what: String },
    /// The backlog was full: events of this node were dropped; it is to be observed afresh.
    Resync {
        node: String,
        overflow: Arc<Overflow>,
    },
}

/// The engine events waiting for the daemon, counted against a limit.
#[derive(Debug)]
pub struct Backlog {
    limit: usize,
    queued: AtomicUsize,
    /// The most that waited at once.
    peak: AtomicUsize,
}

impl Backlog {
    #[must_use]
    pub fn new(limit: usize) -> Backlog {
        Backlog {
            limit: limit.max(1),
            queued: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// How many events may wait.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes a place for one event; `false` when the backlog is full.
    fn admit(&self) -> bool {
        let n = self.queued.fetch_add(1, Ordering::SeqCst);
        if n >= self.limit {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        self.peak.fetch_max(n + 1, Ordering::Relaxed);
        true
    }

    /// The daemon took one event off the backlog.
    pub fn taken(&self) {
        let _ = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// The most events that waited at once since the last call.
    pub fn take_peak(&self) -> usize {
        self.peak
            .swap(self.queued.load(Ordering::SeqCst), Ordering::Relaxed)
    }
}

/// A node's events dropped since its resync was asked for.
#[derive(Debug, Default)]
pub struct Overflow {
    /// A `Resync` is on its way to the daemon.
    pending: AtomicBool,
    dropped: AtomicU64,
}

impl Overflow {
    /// The daemon takes the resync: events dropped after this ask for another one. Returns how
    /// many were dropped.
    /// Counts one dropped event; true when it is the first since the last resync was taken (a
    /// resync must be asked for).
    fn drop_one(&self) -> bool {
        self.dropped.fetch_add(1, Ordering::SeqCst);
        !self.pending.swap(true, Ordering::SeqCst)
    }

    pub fn take(&self) -> u64 {
        self.pending.store(false, Ordering::SeqCst);
        self.dropped.swap(0, Ordering::SeqCst)
    }
}

/// What a follower says when the engine ended its event stream.
const CLOSED: &str = "the engine closed the event stream";

/// Follows `rt`'s container events until the receiver is gone; after a failure it waits as
/// [`on_error`] says before trying again.
pub async fn follow<R: Engine>(
    node: String,
    rt: R,
    selector: Option<LabelSelector>,
    tx: UnboundedSender<Trigger>,
    backlog: Arc<Backlog>,
) {
    // Failures in a row: how long to wait before trying again is `on_error`'s.
    let mut attempt: u32 = 0;
    let mut lost = false;
    let overflow = Arc::new(Overflow::default());
    loop {
        // Subscribe first: the stream is lazy, and whatever happens before it is live is caught
        // by the pass that `Back` (or the daemon's start) triggers.
        let mut events = Box::pin(rt.events(selector.as_ref()));
        let err = match rt.info().await {
            Err(e) => e,
            Ok(_) => {
                if lost {
                    lost = false;
                    if tx.send(Trigger::Back { node: node.clone() }).is_err() {
                        return;
                    }
                }
                attempt = 0;
                loop {
                    match events.next().await {
                        Some(Ok(mut event)) => {
                            if !event.triggers() {
                                continue;
                            }
                            if !backlog.admit() {
                                // The engine's view of the node is what the resync reads; the
                                // event itself is dropped (counted, and said in the ledger).
                                if overflow.drop_one()
                                    && tx
                                        .send(Trigger::Resync {
                                            node: node.clone(),
                                            overflow: Arc::clone(&overflow),
                                        })
                                        .is_err()
                                {
                                    return;
                                }
                                continue;
                            }
                            // The daemon never reads an event's labels: a waiting one stays small.
                            event.labels = BTreeMap::new();
                            if tx
                                .send(Trigger::Event {
                                    node: node.clone(),
                                    event,
                                    received: Instant::now(),
                                })
                                .is_err()
                            {
                                return;
                            }
                        }
                        Some(Err(e)) => break e,
                        None => {
                            break RuntimeError::Unreachable {
                                endpoint: rt.endpoint().to_owned(),
                                cause: UnreachableCause::Closed,
                                reason: CLOSED.to_owned(),
                            };
                        }
                    }
                }
            }
        };
        if !lost {
            lost = true;
            // An ended stream is said as such (not as a failure to reach the engine).
            let why = match &err {
                RuntimeError::Unreachable { reason, .. } if reason == CLOSED => CLOSED.to_owned(),
                e => e.to_string(),
            };
            if tx
                .send(Trigger::Lost {
                    node: node.clone(),
                    why,
                })
                .is_err()
            {
                return;
            }
        }
        let delay = on_error(&err, attempt).delay();
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
        if tx.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_admits_up_to_its_limit_and_again_once_taken() {
        let b = Backlog::new(2);
        assert!(b.admit());
        assert!(b.admit());
        assert!(!b.admit(), "full");
        b.taken();
        assert!(b.admit());
        assert_eq!(b.take_peak(), 2);
    }

    #[test]
    fn overflow_take_counts_and_rearms() {
        let o = Overflow::default();
        assert!(o.drop_one(), "the first drop asks for a resync");
        assert!(!o.drop_one(), "one resync at a time");
        assert!(!o.drop_one(), "one resync at a time");
        assert_eq!(o.take(), 3);
        assert!(o.drop_one(), "the next drop asks again");
    }
}
