//! `--ha etcd://HOST:PORT/PREFIX`: leader election on an etcd lease.
//!
//! Each instance grants itself a lease of `--ha-lease` seconds, keeps it alive, registers under
//! `<prefix>/members/<id>` with it, and campaigns for `<prefix>/leader` with a create-if-absent
//! transaction carrying the lease. Whoever holds the key is the leader; the key's create revision
//! is its term (etcd revisions only grow, so a later leader always has a higher term). Standbys
//! watch the key and campaign again the moment it is deleted (the leader's lease ran out, or it
//! resigned on SIGTERM). All of it through etcd's JSON gateway ([`crate::etcd_gateway`]).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use refinery_core::error_text::error_chain as chain;

use crate::campaign::{Campaign, Store, timed};
use crate::etcd_gateway::{Gateway, GatewayError, WatchEvent};
use crate::{EtcdTls, HaStatus, HaUrl};

/// The etcd keys of one election.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub leader: String,
    pub members: String,
}

impl Keys {
    #[must_use]
    pub fn under(prefix: &str) -> Keys {
        Keys {
            leader: format!("{prefix}/leader"),
            members: format!("{prefix}/members/"),
        }
    }
}

/// One etcd election's connection state.
pub(crate) struct EtcdElector {
    /// `HOST:PORT`.
    host: String,
    tls: Option<EtcdTls>,
    keys: Keys,
    /// The lease of the last session, revoked once etcd answers again.
    old_lease: Option<i64>,
}

impl Store for EtcdElector {
    fn name(&self) -> &'static str {
        "etcd"
    }

    async fn session(&mut self, c: &Campaign) -> Result<(), String> {
        let t = c.call_timeout();
        let etcd = Gateway::new(&self.host, self.tls.as_ref(), t).map_err(|e| chain(&e))?;
        if let Some(old) = self.old_lease {
            // The last session's lease, and the leader key with it if it was ours: a standby
            // need not wait for it to run out. Forgotten once etcd answered.
            match tokio::time::timeout(t, etcd.lease_revoke(old)).await {
                Err(_) => return Err(format!("`{}` did not answer within {t:?}", self.host)),
                Ok(Err(e @ GatewayError::Http { .. })) => {
                    return Err(format!(
                        "failed to connect to `{}`: {}",
                        self.host,
                        chain(&e)
                    ));
                }
                Ok(_) => self.old_lease = None,
            }
        }
        let ttl = i64::try_from(c.lease.as_secs().max(1)).unwrap_or(i64::MAX);
        let granted_at = Instant::now();
        let lease = timed(t, etcd.lease_grant(ttl))
            .await
            .map_err(|e| format!("failed to grant a lease: {e}"))?;
        self.old_lease = Some(lease);
        let mut last_ok = granted_at;
        let member = format!("{}{}", self.keys.members, c.id);
        timed(t, etcd.put(&member, &c.id, lease))
            .await
            .map_err(|e| format!("failed to register under `{}`: {e}", self.keys.members))?;
        // Keep-alives in flight, each with when it was sent: an answer proves the lease was
        // alive then. One that hangs is cut at half a lease, when acting has stopped anyway.
        let mut renewals = FuturesUnordered::new();
        let mut tick = tokio::time::interval(c.renew_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = c.stop.clone();
        let leader_key = self.keys.leader.clone();
        loop {
            // Campaign: take the key if nobody holds it; else learn who does.
            let txn = timed(t, etcd.create_if_absent(&leader_key, &c.id, lease))
                .await
                .map_err(|e| format!("failed to campaign for `{leader_key}`: {e}"))?;
            let (holder, term, mine) = if txn.created {
                (c.id.clone(), txn.revision, true)
            } else {
                match txn.holder {
                    Some(kv) => (kv.text(), kv.create_revision, kv.lease == lease),
                    // Gone between the compare and the read: campaign again.
                    None => continue,
                }
            };
            let term = u64::try_from(term).unwrap_or(0);
            if mine {
                c.lead(&holder, term, last_ok);
                tracing::info!(term, id = %c.id, "elected leader");
            } else {
                c.stand_by(Some(holder.clone()), Some(term));
                tracing::info!(leader = %holder, term, "standing by");
            }
            let mut watch = timed(t, etcd.watch(&leader_key, txn.revision + 1))
                .await
                .map_err(|e| format!("failed to watch `{leader_key}`: {e}"))?;
            // Keep the lease alive and wait for the key to go.
            'held: loop {
                tokio::select! {
                    _ = stop.changed() => {
                        c.step_down();
                        let _ = tokio::time::timeout(t, etcd.lease_revoke(lease)).await;
                        self.old_lease = None;
                        tracing::info!("resigned: the lease is revoked");
                        return Ok(());
                    }
                    _ = tick.tick() => {
                        if last_ok.elapsed() >= c.lease / 2 {
                            return Err(format!(
                                "no keep-alive answered for {}ms (half the {}s lease)",
                                last_ok.elapsed().as_millis(),
                                c.lease.as_secs()
                            ));
                        }
                        let sent = Instant::now();
                        let keep_alive = etcd.lease_keep_alive(lease);
                        renewals.push(async move { (sent, timed(c.lease / 2, keep_alive).await) });
                        self.refresh_members(c, &etcd, t).await;
                    }
                    Some((at, answer)) = renewals.next() => {
                        let ttl = answer.map_err(|e| format!("failed to keep the lease alive: {e}"))?;
                        if ttl <= 0 {
                            return Err("the lease expired".into());
                        }
                        // Answers may come out of order: only a later sending time counts.
                        if at > last_ok {
                            last_ok = at;
                            if mine && !c.renewed(at) {
                                return Err(format!(
                                    "a keep-alive was answered more than half a lease ({}s) after the last one; this term is over",
                                    c.lease.as_secs()
                                ));
                            }
                        }
                    }
                    batch = watch.next() => {
                        let events = batch
                            .map_err(|e| format!("the watch on `{leader_key}` failed: {}", chain(&e)))?
                            .ok_or("etcd closed the watch")?;
                        for event in events {
                            match event {
                                WatchEvent::Delete => {
                                    if mine {
                                        c.step_down();
                                        tracing::error!("the leader key was deleted; stopped acting");
                                    }
                                    break 'held;
                                }
                                WatchEvent::Put(kv) => {
                                    let holder = kv.text();
                                    let term = u64::try_from(kv.create_revision).unwrap_or(0);
                                    if mine && kv.lease != lease {
                                        c.step_down();
                                        break 'held;
                                    }
                                    c.publish(|s| { s.status.leader = Some(holder); s.status.term = Some(term); });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

impl EtcdElector {
    pub(crate) fn new(host: &str, prefix: &str, tls: Option<EtcdTls>) -> EtcdElector {
        EtcdElector {
            host: host.to_owned(),
            tls,
            keys: Keys::under(prefix),
            old_lease: None,
        }
    }

    /// Who else is registered (for the status page); a failure keeps the last list.
    async fn refresh_members(&self, c: &Campaign, etcd: &Gateway, t: Duration) {
        let Ok(Ok(kvs)) = tokio::time::timeout(t, etcd.get_prefix(&self.keys.members)).await else {
            return;
        };
        c.members(kvs.iter().map(|kv| kv.text()).collect());
    }
}

/// Reads who leads and who stands by, for `refinery status --ha`.
pub(crate) async fn read_status(
    url: &HaUrl,
    host: &str,
    prefix: &str,
    tls: Option<EtcdTls>,
) -> Result<HaStatus, String> {
    let t = Duration::from_secs(3);
    let etcd = Gateway::new(host, tls.as_ref(), t).map_err(|e| chain(&e))?;
    let keys = Keys::under(prefix);
    let (leader, term) = match timed(t, etcd.get(&keys.leader)).await? {
        Some(kv) => (Some(kv.text()), u64::try_from(kv.create_revision).ok()),
        None => (None, None),
    };
    let members = timed(t, etcd.get_prefix(&keys.members))
        .await?
        .iter()
        .map(|kv| kv.text())
        .collect();
    Ok(HaStatus::seen_from_outside(url, leader, term, members))
}
