//! One task per node following the engine's events; it reconnects with backoff and says when the
//! engine went away and when it is back.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use refinery_core::backoff::Backoff;
use refinery_core::{ContainerRuntime, EngineEvent, LabelSelector};
use refinery_docker::DockerRuntime;
use tokio::sync::mpsc::UnboundedSender;

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
}

/// Follows `rt`'s container events until the receiver is gone.
pub async fn follow(
    node: String,
    rt: DockerRuntime,
    selector: Option<LabelSelector>,
    tx: UnboundedSender<Trigger>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut lost = false;
    loop {
        // Subscribe first: the stream is lazy, and whatever happens before it is live is caught
        // by the pass that `Back` (or the daemon's start) triggers.
        let mut events = Box::pin(rt.events(selector.as_ref()));
        let why = match rt.info().await {
            Err(e) => e.to_string(),
            Ok(_) => {
                if lost {
                    lost = false;
                    if tx.send(Trigger::Back { node: node.clone() }).is_err() {
                        return;
                    }
                }
                backoff.reset();
                loop {
                    match events.next().await {
                        Some(Ok(event)) => {
                            if event.triggers()
                                && tx
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
                        Some(Err(e)) => break e.to_string(),
                        None => break "the engine closed the event stream".to_owned(),
                    }
                }
            }
        };
        if !lost {
            lost = true;
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
        let delay = backoff.next().unwrap_or(Duration::from_secs(10));
        tokio::time::sleep(delay).await;
        if tx.is_closed() {
            return;
        }
    }
}
