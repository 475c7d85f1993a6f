//! `--ha k8s://CONTEXT/NAMESPACE/NAME`: leader election on a `coordination.k8s.io` Lease.
//!
//! The Lease `NAME` in `NAMESPACE` says who leads (`holderIdentity`), when it was last renewed and
//! for how long (`renewTime`, `leaseDurationSeconds`), and how many times it changed hands
//! (`leaseTransitions`: the term). Every write is conditional on the `resourceVersion` it was
//! decided on, so of two instances racing for the Lease exactly one wins.
//!
//! The leader renews it every sixth of a lease, writing the Lease as it last wrote it, conditional
//! on that `resourceVersion` (as client-go does): no read before a renewal, and a write that
//! loses means another writer got in. A standby reads it every sixth of a lease and takes it over (adding one to
//! `leaseTransitions`) when it was released (no holder: a leader stopped with SIGTERM), or when it
//! has not changed for a whole lease *as this standby saw it*: timed on the standby's own
//! monotonic clock from the moment it first read that version, as client-go's leader election
//! does, so the machines' clocks need not agree. A leader renews at some instant `T` and acts
//! until `T` + half a lease; a standby reads that renewal after `T`, so it cannot take over before
//! `T` + a lease.
//!
//! Each instance also keeps a Lease of its own, `NAME-member-<hash of the id>`, labelled
//! `io.refinery.election=<hash of NAME>`, renewed (and the members listed) every half lease: the
//! fresh ones are the members, the standbys being all but the leader.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use refinery_core::shard::fnv1a64;
use refinery_kube::KubeCluster;
use refinery_kube::lease::{LeaseRecord, Leases, Write};

use crate::campaign::{Campaign, Store, timed};
use crate::{HaStatus, HaUrl};

/// The label that ties a member Lease to its election.
const ELECTION_LABEL: &str = "io.refinery.election";

/// One Lease election.
pub(crate) struct LeaseElector {
    context: String,
    namespace: String,
    name: String,
    /// The term this instance last held. While the Lease still says this instance under that
    /// term, nobody took it since, so it may take it back at once (a new term) after a lost
    /// session; held by anyone else, or under another term, it waits a lease like any standby.
    last_term: Option<i32>,
}

/// What one session with the API server keeps.
struct Session {
    leases: Leases,
    /// The election Lease's version last read, and when (this instance's clock) it was first seen.
    observed: Option<(String, Instant)>,
    /// The election Lease as this instance last wrote it, while leading.
    held: Option<LeaseRecord>,
    /// This instance's member Lease as last written.
    member: Option<LeaseRecord>,
    /// The leader last logged as standing by for.
    logged: Option<(String, i32)>,
    /// When the member Lease is renewed and the members listed next.
    members_due: Instant,
}

impl Store for LeaseElector {
    fn name(&self) -> &'static str {
        "Kubernetes"
    }

    async fn session(&mut self, c: &Campaign) -> Result<(), String> {
        let t = c.call_timeout();
        let cluster = timed(t, KubeCluster::connect(None, Some(&self.context))).await?;
        let mut s = Session {
            leases: cluster.leases(&self.namespace),
            observed: None,
            held: None,
            member: None,
            logged: None,
            members_due: Instant::now(),
        };
        let mut tick = tokio::time::interval(c.renew_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = c.stop.clone();
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    self.resign(c, &mut s, t).await;
                    return Ok(());
                }
                _ = tick.tick() => self.step(c, &mut s, t).await?,
            }
        }
    }
}

impl LeaseElector {
    pub(crate) fn new(context: &str, namespace: &str, name: &str) -> LeaseElector {
        LeaseElector {
            context: context.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            last_term: None,
        }
    }

    /// One look at the Lease: renew it (leading), or read it and take it or stand by; then the
    /// members, when due.
    async fn step(&mut self, c: &Campaign, s: &mut Session, t: Duration) -> Result<(), String> {
        let at = Instant::now();
        let secs = lease_secs(c);
        if let Some(held) = &s.held {
            let mut renewed = held.clone();
            renewed.renewed = Some(Timestamp::now());
            renewed.duration_secs = secs;
            self.renew(c, s, t, &renewed, at).await?;
            return self.members(c, s, t).await;
        }
        let fresh = |holder: &str, transitions: i32, rv: String| LeaseRecord {
            holder: holder.to_owned(),
            duration_secs: secs,
            transitions,
            acquired: Some(Timestamp::now()),
            renewed: Some(Timestamp::now()),
            resource_version: rv,
            ..LeaseRecord::default()
        };
        let read = timed(t, s.leases.get(&self.name)).await?;
        let Some(rec) = read else {
            // Nobody ever held it: the first term.
            let new = fresh(&c.id, 1, String::new());
            if let Write::Done(r) = timed(t, s.leases.write(&self.name, &new, &no_labels())).await?
            {
                self.took(c, s, r, at);
            }
            return self.members(c, s, t).await;
        };
        if s.observed.as_ref().map(|(v, _)| v) != Some(&rec.resource_version) {
            s.observed = Some((rec.resource_version.clone(), at));
        }
        let seen_since = s.observed.as_ref().map_or(at, |(_, since)| *since);
        let ours = rec.holder == c.id && Some(rec.transitions) == self.last_term;
        let expired = seen_since.elapsed()
            >= Duration::from_secs(u64::try_from(rec.duration_secs.max(1)).unwrap_or(1));
        if ours || rec.holder.is_empty() || expired {
            let new = fresh(&c.id, rec.transitions + 1, rec.resource_version.clone());
            if let Write::Done(r) = timed(t, s.leases.write(&self.name, &new, &no_labels())).await?
            {
                self.took(c, s, r, at);
            }
        } else {
            c.stand_by(Some(rec.holder.clone()), Some(term(rec.transitions)));
            let now = (rec.holder.clone(), rec.transitions);
            if s.logged.as_ref() != Some(&now) {
                tracing::info!(leader = %rec.holder, term = term(rec.transitions), "standing by");
                s.logged = Some(now);
            }
        }
        self.members(c, s, t).await
    }

    /// Renews the held Lease (sent at `at`) as `renewed`, conditional on the version last
    /// written: still leading, or stepped down because another writer got in.
    async fn renew(
        &self,
        c: &Campaign,
        s: &mut Session,
        t: Duration,
        renewed: &LeaseRecord,
        at: Instant,
    ) -> Result<(), String> {
        match timed(t, s.leases.write(&self.name, renewed, &no_labels())).await? {
            Write::Done(r) => {
                s.observed = Some((r.resource_version.clone(), at));
                if c.renewed(at) {
                    s.held = Some(r);
                } else {
                    // Still ours, but acting lapsed: the next look takes it under a new term.
                    s.held = None;
                    tracing::error!(
                        "the lease was renewed more than half a lease after the last renewal; stopped acting, this term is over"
                    );
                }
            }
            Write::Lost => {
                s.held = None;
                c.step_down();
                tracing::error!("the lease was written by someone else; stopped acting");
            }
        }
        Ok(())
    }

    /// Won the Lease (written at `at`): leading under its term.
    fn took(&mut self, c: &Campaign, s: &mut Session, r: LeaseRecord, at: Instant) {
        let t = term(r.transitions);
        self.last_term = Some(r.transitions);
        s.observed = Some((r.resource_version.clone(), at));
        s.logged = None;
        s.held = Some(r);
        c.lead(&c.id, t, at);
        tracing::info!(term = t, id = %c.id, "elected leader");
    }

    /// Every half lease: renews this instance's member Lease and publishes the fresh ones. A
    /// failure here is only logged: the list is for the status page, and the election goes on
    /// without it.
    async fn members(&self, c: &Campaign, s: &mut Session, t: Duration) -> Result<(), String> {
        if Instant::now() < s.members_due {
            return Ok(());
        }
        s.members_due = Instant::now() + c.lease / 2;
        let name = member_name(&self.name, &c.id);
        let labels = election_labels(&self.name);
        let mut rec = s.member.take().unwrap_or_else(|| LeaseRecord {
            holder: c.id.clone(),
            acquired: Some(Timestamp::now()),
            ..LeaseRecord::default()
        });
        rec.duration_secs = lease_secs(c);
        rec.renewed = Some(Timestamp::now());
        match timed(t, s.leases.write(&name, &rec, &labels)).await {
            Ok(Write::Done(r)) => s.member = Some(r),
            // Changed or gone since: read again (or create) next time.
            Ok(Write::Lost) => {
                s.member = timed(t, s.leases.get(&name)).await.ok().flatten();
            }
            Err(e) => tracing::debug!(error = %e, "failed to renew the member lease"),
        }
        let all = match timed(t, s.leases.list(ELECTION_LABEL, &election_hash(&self.name))).await {
            Ok(all) => all,
            Err(e) => {
                tracing::debug!(error = %e, "failed to list the members");
                return Ok(());
            }
        };
        c.members(fresh_holders(&all));
        if s.held.is_some() {
            // The leader removes what dead instances left behind, long after they stopped.
            let now = Timestamp::now();
            for gone in all.iter().filter(|l| is_long_gone(l, now)) {
                tracing::debug!(member = %gone.holder, "removing a long-stale member lease");
                let _ = timed(t, s.leases.delete(&gone.name)).await;
            }
        }
        Ok(())
    }

    /// Stops acting, then releases the Lease (a standby takes it at once) and removes the member.
    async fn resign(&self, c: &Campaign, s: &mut Session, t: Duration) {
        c.step_down();
        if let Some(mut held) = s.held.take() {
            held.holder.clear();
            held.duration_secs = 1;
            held.renewed = Some(Timestamp::now());
            match timed(t, s.leases.write(&self.name, &held, &no_labels())).await {
                Ok(Write::Done(_)) => tracing::info!("resigned: the lease is released"),
                Ok(Write::Lost) => tracing::info!("resigned: the lease had already changed hands"),
                Err(e) => {
                    tracing::warn!(error = %e, "resigned, but the lease could not be released: a standby takes over when it runs out");
                }
            }
        }
        let _ = timed(t, s.leases.delete(&member_name(&self.name, &c.id))).await;
    }
}

fn lease_secs(c: &Campaign) -> i32 {
    i32::try_from(c.lease.as_secs().max(1)).unwrap_or(i32::MAX)
}

fn term(transitions: i32) -> u64 {
    u64::try_from(transitions).unwrap_or(0)
}

fn no_labels() -> BTreeMap<String, String> {
    BTreeMap::new()
}

/// The label value of an election: a hash, as a Lease name may be longer than a label allows.
fn election_hash(name: &str) -> String {
    format!("{:016x}", fnv1a64(name.as_bytes()))
}

fn election_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(ELECTION_LABEL.to_owned(), election_hash(name))])
}

/// An instance's member Lease: ids may hold characters a name may not, hence the hash.
fn member_name(name: &str, id: &str) -> String {
    format!("{name}-member-{:016x}", fnv1a64(id.as_bytes()))
}

/// The holders of the member Leases renewed within twice their duration (by this machine's
/// clock, and lenient: the list is only for display, and a busy instance renews late).
fn fresh_holders(leases: &[LeaseRecord]) -> Vec<String> {
    let now = Timestamp::now();
    leases
        .iter()
        .filter(|l| !l.holder.is_empty() && renewed_within(l, now, 2))
        .map(|l| l.holder.clone())
        .collect()
}

/// Whether `l` was renewed less than `durations` of its duration before `now`.
fn renewed_within(l: &LeaseRecord, now: Timestamp, durations: i64) -> bool {
    l.renewed.is_some_and(|r| {
        r + jiff::SignedDuration::from_secs(i64::from(l.duration_secs.max(1)) * durations) > now
    })
}

/// A member Lease not renewed for ten of its durations (at least an hour): its instance is gone.
fn is_long_gone(l: &LeaseRecord, now: Timestamp) -> bool {
    let keep = (i64::from(l.duration_secs.max(1)) * 10).max(3600);
    l.renewed
        .is_none_or(|r| r + jiff::SignedDuration::from_secs(keep) < now)
}

/// Who leads and who stands by, for `refinery status --ha k8s://…`.
pub(crate) async fn read_status(
    url: &HaUrl,
    context: &str,
    namespace: &str,
    name: &str,
) -> Result<HaStatus, String> {
    let t = Duration::from_secs(3);
    let cluster = timed(t, KubeCluster::connect(None, Some(context))).await?;
    let leases = cluster.leases(namespace);
    let lease = timed(t, leases.get(name)).await?;
    let (leader, term) = match lease {
        Some(l) if !l.holder.is_empty() && renewed_within(&l, Timestamp::now(), 1) => {
            (Some(l.holder.clone()), Some(term(l.transitions)))
        }
        Some(l) => (None, Some(term(l.transitions))),
        None => (None, None),
    };
    let members = timed(t, leases.list(ELECTION_LABEL, &election_hash(name))).await?;
    Ok(HaStatus::seen_from_outside(
        url,
        leader,
        term,
        fresh_holders(&members),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_valid_lease_names_whatever_the_id() {
        for id in ["a", "Web_1.example:42", "ümlaut host-7"] {
            let n = member_name("refinery", id);
            assert!(n.starts_with("refinery-member-"), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
        }
        assert_ne!(member_name("r", "a"), member_name("r", "b"));
    }

    #[test]
    fn a_lease_is_fresh_within_its_duration_and_a_member_within_two() {
        let now = Timestamp::now();
        let l = |ago: i64| LeaseRecord {
            holder: "a".into(),
            duration_secs: 10,
            renewed: Some(now - jiff::SignedDuration::from_secs(ago)),
            ..LeaseRecord::default()
        };
        assert!(renewed_within(&l(3), now, 1));
        assert!(!renewed_within(&l(11), now, 1));
        assert_eq!(fresh_holders(&[l(3), l(11), l(21)]), ["a", "a"]);
        assert!(!is_long_gone(&l(11), now));
        assert!(is_long_gone(&l(3601), now));
    }
}
