//! What both electors share: who campaigns, for how long a lease, where the state of the
//! election is published, the fencing rule, and the loop of sessions with the store.

use std::time::{Duration, Instant};

use refinery_core::error_text::error_chain as chain;
use tokio::sync::watch;

use crate::ha_status::standbys;
use crate::{HaStatus, Role};

/// The election's state as published to [`crate::Leadership`].
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) status: HaStatus,
    /// While leader: acting is allowed until then (half a lease after the last keep-alive
    /// etcd answered was sent).
    pub(crate) act_until: Option<Instant>,
}

/// What both electors share: who campaigns, for how long a lease, where they publish, and the
/// signal to resign.
pub(crate) struct Campaign {
    pub(crate) lease: Duration,
    pub(crate) id: String,
    pub(crate) tx: watch::Sender<Shared>,
    pub(crate) stop: watch::Receiver<bool>,
}

impl Campaign {
    pub(crate) fn publish(&self, f: impl FnOnce(&mut Shared)) {
        self.tx.send_modify(f);
    }

    pub(crate) fn role(&self) -> Role {
        self.tx.borrow().status.role
    }

    /// Bounds one call to the store: a call that hangs (the store cut off) fails instead.
    pub(crate) fn call_timeout(&self) -> Duration {
        (self.lease / 4).max(Duration::from_millis(500))
    }

    /// How often the lease is renewed (and a standby looks again).
    pub(crate) fn renew_every(&self) -> Duration {
        (self.lease / 6).max(Duration::from_millis(200))
    }

    /// Leading under `term`; acting allowed until half a lease after `renewed` (when the last
    /// accepted renewal was sent).
    pub(crate) fn lead(&self, holder: &str, term: u64, renewed: Instant) {
        let act_until = renewed + self.lease / 2;
        self.publish(|s| {
            s.status.role = Role::Leader;
            s.status.leader = Some(holder.to_owned());
            s.status.term = Some(term);
            s.act_until = Some(act_until);
        });
    }

    /// The leader's renewal sent at `at` was accepted: acting goes on until half a lease after
    /// it. Unless acting had lapsed already (a renewal answered too late): then this term is over
    /// for good, `false`, and the store must win a new term before this instance acts again (so
    /// no term is ever taken up twice).
    #[must_use]
    pub(crate) fn renewed(&self, at: Instant) -> bool {
        let mut fresh = false;
        self.publish(|s| {
            if let (Role::Leader, Some(until)) = (s.status.role, s.act_until)
                && Instant::now() < until
            {
                s.act_until = Some(until.max(at + self.lease / 2));
                fresh = true;
            } else {
                s.status.role = Role::Standby;
                s.act_until = None;
            }
        });
        fresh
    }

    /// Another instance leads (or nobody: `leader` `None`).
    pub(crate) fn stand_by(&self, leader: Option<String>, term: Option<u64>) {
        self.tx.send_if_modified(|s| {
            let before = (s.status.role, s.status.leader.clone(), s.status.term);
            s.status.role = Role::Standby;
            s.act_until = None;
            s.status.leader = leader;
            s.status.term = term;
            before != (s.status.role, s.status.leader.clone(), s.status.term)
        });
    }

    /// Stops leading (resigned, or another instance took the lease).
    pub(crate) fn step_down(&self) {
        self.publish(|s| {
            s.status.role = Role::Standby;
            s.act_until = None;
        });
    }

    /// Stops acting at once (the session with the store ended).
    pub(crate) fn disconnected(&self) {
        self.publish(|s| {
            s.status.role = Role::Connecting;
            s.act_until = None;
        });
    }

    /// The registered instances (leader included), sorted: the standbys are the others.
    pub(crate) fn members(&self, members: Vec<String>) {
        self.tx.send_if_modified(|s| {
            let standbys = standbys(s.status.leader.as_ref(), members);
            let changed = s.status.standbys != standbys;
            s.status.standbys = standbys;
            changed
        });
    }

    /// Runs `store`'s sessions until told to stop, reconnecting with a backoff.
    pub(crate) async fn sessions(&self, store: &mut impl Store) {
        let mut backoff = Duration::from_millis(200);
        let mut last_why = String::new();
        loop {
            let began = Instant::now();
            let why = match store.session(self).await {
                Ok(()) => return,
                Err(why) => why,
            };
            let again = why == last_why;
            last_why.clone_from(&why);
            let was_leader = self.role() == Role::Leader;
            self.disconnected();
            if was_leader {
                tracing::error!(reason = %why, "lost the leader lease; stopped acting");
            } else if again {
                tracing::debug!(reason = %why, "{} still unreachable; reconnecting", store.name());
            } else {
                tracing::warn!(reason = %why, "{} session ended; reconnecting", store.name());
            }
            // A session that held up for a lease starts the backoff over.
            if began.elapsed() > self.lease {
                backoff = Duration::from_millis(200);
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// Where an election is held.
pub(crate) trait Store {
    /// `etcd`, `Kubernetes`: for the log.
    fn name(&self) -> &'static str;

    /// One session: campaigns, leads or stands by until the store is lost (`Err(why)`) or the
    /// campaign is told to stop (`Ok`, after resigning).
    async fn session(&mut self, c: &Campaign) -> Result<(), String>;
}

/// A call to the election store bounded by `t`: a call that hangs (the store cut off) fails
/// instead; the error with its causes.
pub(crate) async fn timed<T, E: std::error::Error + 'static>(
    t: Duration,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(t, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(chain(&e)),
        Err(_) => Err(format!("no answer within {t:?}")),
    }
}
