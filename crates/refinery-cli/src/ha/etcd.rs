//! `--ha etcd://HOST:PORT/PREFIX`: leader election on an etcd lease.
//!
//! Each instance grants itself a lease of `--ha-lease` seconds, keeps it alive, registers under
//! `<prefix>/members/<id>` with it, and campaigns for `<prefix>/leader` with a create-if-absent
//! transaction carrying the lease. Whoever holds the key is the leader; the key's create revision
//! is its term (etcd revisions only grow, so a later leader always has a higher term). Standbys
//! watch the key and campaign again the moment it is deleted (the leader's lease ran out, or it
//! resigned on SIGTERM).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};

use super::{Campaign, EtcdTls, HaStatus, HaUrl, Store, timed};

/// The endpoint to dial and the connection options: `https://` and the certificates with TLS.
fn connection(endpoint: &str, tls: Option<&EtcdTls>, t: Duration) -> (String, ConnectOptions) {
    let options = ConnectOptions::new()
        .with_connect_timeout(t)
        .with_timeout(t);
    let Some(tls) = tls else {
        return (endpoint.to_owned(), options);
    };
    let mut config = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca));
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    let endpoint = match endpoint.strip_prefix("http://") {
        Some(host) => format!("https://{host}"),
        None => endpoint.to_owned(),
    };
    (endpoint, options.with_tls(config))
}

/// The etcd keys of one election.
#[derive(Debug, Clone)]
pub struct Keys {
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
pub(super) struct Etcd {
    endpoint: String,
    tls: Option<EtcdTls>,
    keys: Keys,
    /// The lease of the last session, revoked once etcd answers again.
    old_lease: Option<i64>,
}

impl Store for Etcd {
    fn name(&self) -> &'static str {
        "etcd"
    }

    async fn session(&mut self, c: &Campaign) -> Result<(), String> {
        let t = c.call_timeout();
        let (endpoint, options) = connection(&self.endpoint, self.tls.as_ref(), t);
        let options = options.with_keep_alive(t, t);
        let mut client = tokio::time::timeout(t, Client::connect([&endpoint], Some(options)))
            .await
            .map_err(|_| format!("`{}` did not answer within {t:?}", self.endpoint))?
            .map_err(|e| format!("failed to connect to `{}`: {e}", self.endpoint))?;
        if let Some(old) = self.old_lease.take() {
            // The last session's lease, and the leader key with it if it was ours: a standby
            // need not wait for it to run out.
            let _ = tokio::time::timeout(t, client.lease_revoke(old)).await;
        }
        let ttl = i64::try_from(c.lease.as_secs().max(1)).unwrap_or(i64::MAX);
        let granted_at = Instant::now();
        let lease = timed(t, client.lease_grant(ttl, None))
            .await
            .map_err(|e| format!("failed to grant a lease: {e}"))?
            .id();
        self.old_lease = Some(lease);
        let mut last_ok = granted_at;
        let (mut keeper, mut answers) = timed(t, client.lease_keep_alive(lease))
            .await
            .map_err(|e| format!("failed to keep the lease alive: {e}"))?;
        let member = format!("{}{}", self.keys.members, c.id);
        timed(
            t,
            client.put(
                member,
                c.id.clone(),
                Some(PutOptions::new().with_lease(lease)),
            ),
        )
        .await
        .map_err(|e| format!("failed to register under `{}`: {e}", self.keys.members))?;
        let mut sent: VecDeque<Instant> = VecDeque::new();
        let mut tick = tokio::time::interval(c.renew_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = c.stop.clone();
        loop {
            // Campaign: take the key if nobody holds it; else learn who does.
            let leader_key = self.keys.leader.clone();
            let txn = Txn::new()
                .when([Compare::create_revision(
                    leader_key.clone(),
                    CompareOp::Equal,
                    0,
                )])
                .and_then([TxnOp::put(
                    leader_key.clone(),
                    c.id.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(leader_key.clone(), None)]);
            let resp = timed(t, client.txn(txn))
                .await
                .map_err(|e| format!("failed to campaign for `{leader_key}`: {e}"))?;
            let revision = resp
                .header()
                .map_or(0, etcd_client::ResponseHeader::revision);
            let (holder, term, mine) = if resp.succeeded() {
                (c.id.clone(), revision, true)
            } else {
                let kv = resp.op_responses().into_iter().find_map(|r| match r {
                    TxnOpResponse::Get(g) => g.kvs().first().cloned(),
                    _ => None,
                });
                match kv {
                    Some(kv) => (
                        String::from_utf8_lossy(kv.value()).into_owned(),
                        kv.create_revision(),
                        kv.lease() == lease,
                    ),
                    // Gone between the compare and the get: campaign again.
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
            let mut watch = timed(
                t,
                client.watch(
                    leader_key.clone(),
                    Some(WatchOptions::new().with_start_revision(revision + 1)),
                ),
            )
            .await
            .map_err(|e| format!("failed to watch `{leader_key}`: {e}"))?;
            // Keep the lease alive and wait for the key to go.
            'held: loop {
                tokio::select! {
                    _ = stop.changed() => {
                        c.step_down();
                        let _ = tokio::time::timeout(t, client.lease_revoke(lease)).await;
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
                        sent.push_back(Instant::now());
                        timed(t, keeper.keep_alive())
                            .await
                            .map_err(|e| format!("failed to send a keep-alive: {e}"))?;
                        self.refresh_members(c, &mut client, t).await;
                    }
                    answer = answers.message() => {
                        let r = answer
                            .map_err(|e| format!("the keep-alive stream failed: {e}"))?
                            .ok_or("etcd closed the keep-alive stream")?;
                        if r.ttl() <= 0 {
                            return Err("the lease expired".into());
                        }
                        if let Some(at) = sent.pop_front() {
                            last_ok = at;
                            if mine && !c.renewed(at) {
                                return Err(format!(
                                    "a keep-alive was answered more than half a lease ({}s) after the last one; this term is over",
                                    c.lease.as_secs()
                                ));
                            }
                        }
                    }
                    event = watch.message() => {
                        let w = event
                            .map_err(|e| format!("the watch on `{leader_key}` failed: {e}"))?
                            .ok_or("etcd closed the watch")?;
                        for e in w.events() {
                            match e.event_type() {
                                EventType::Delete => {
                                    if mine {
                                        c.step_down();
                                        tracing::error!("the leader key was deleted; stopped acting");
                                    }
                                    break 'held;
                                }
                                EventType::Put => {
                                    if let Some(kv) = e.kv() {
                                        let holder = String::from_utf8_lossy(kv.value()).into_owned();
                                        let term = u64::try_from(kv.create_revision()).unwrap_or(0);
                                        if mine && kv.lease() != lease {
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
}

impl Etcd {
    pub(super) fn new(endpoint: &str, prefix: &str, tls: Option<EtcdTls>) -> Etcd {
        Etcd {
            endpoint: endpoint.to_owned(),
            tls,
            keys: Keys::under(prefix),
            old_lease: None,
        }
    }

    /// Who else is registered (for the status page); a failure keeps the last list.
    async fn refresh_members(&self, c: &Campaign, client: &mut Client, t: Duration) {
        let Ok(Ok(resp)) = tokio::time::timeout(
            t,
            client.get(
                self.keys.members.clone(),
                Some(GetOptions::new().with_prefix()),
            ),
        )
        .await
        else {
            return;
        };
        c.members(
            resp.kvs()
                .iter()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
                .collect(),
        );
    }
}

/// Reads who leads and who stands by, for `refinery status --ha`.
pub(super) async fn read_status(
    url: &HaUrl,
    endpoint: &str,
    prefix: &str,
    tls: Option<EtcdTls>,
) -> Result<HaStatus, String> {
    let t = Duration::from_secs(3);
    let (endpoint, options) = connection(endpoint, tls.as_ref(), t);
    let mut client = timed(t, Client::connect([endpoint], Some(options))).await?;
    let keys = Keys::under(prefix);
    let leader = timed(t, client.get(keys.leader.clone(), None)).await?;
    let (leader, term) = match leader.kvs().first() {
        Some(kv) => (
            Some(String::from_utf8_lossy(kv.value()).into_owned()),
            u64::try_from(kv.create_revision()).ok(),
        ),
        None => (None, None),
    };
    let members = timed(
        t,
        client.get(keys.members.clone(), Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let members = members
        .kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
        .collect();
    Ok(HaStatus::seen_from_outside(url, leader, term, members))
}
