//! `refinery run --ha etcd://HOST:PORT/PREFIX`: leader election on an etcd lease.
//!
//! Each instance grants itself a lease of `--ha-lease` seconds, keeps it alive, registers under
//! `<prefix>/members/<id>` with it, and campaigns for `<prefix>/leader` with a create-if-absent
//! transaction carrying the lease. Whoever holds the key is the leader; the key's create revision
//! is its term (etcd revisions only grow, so a later leader always has a higher term). Standbys
//! watch the key and campaign again the moment it is deleted (the leader's lease ran out, or it
//! resigned on SIGTERM).
//!
//! Fencing: the leader acts only while its last answered keep-alive was *sent* less than half a
//! lease ago ([`Leadership::acting_term`]), so a leader cut off from etcd stops acting at least
//! half a lease before etcd lets the key go and a standby takes over.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use serde::Serialize;
use tokio::sync::watch;

/// Where the leader lease lives, as `--ha` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaUrl {
    /// `etcd://HOST:PORT/PREFIX`: `endpoint` is `http://HOST:PORT`, keys start with `prefix`.
    Etcd { endpoint: String, prefix: String },
    /// `k8s://CONTEXT/NAMESPACE/NAME`: a `coordination.k8s.io` Lease (not supported yet).
    Kube {
        context: String,
        namespace: String,
        name: String,
    },
}

impl fmt::Display for HaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HaUrl::Etcd { endpoint, prefix } => {
                let host = endpoint.strip_prefix("http://").unwrap_or(endpoint);
                write!(f, "etcd://{host}{prefix}")
            }
            HaUrl::Kube {
                context,
                namespace,
                name,
            } => write!(f, "k8s://{context}/{namespace}/{name}"),
        }
    }
}

const URL_HINT: &str =
    "write it as `etcd://HOST:PORT/PREFIX` (e.g. `etcd://127.0.0.1:2379/refinery`)";

impl FromStr for HaUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("etcd://") {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            if host.is_empty() {
                return Err(format!("`{s}` names no etcd host; {URL_HINT}"));
            }
            let port_ok = host
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !port_ok {
                return Err(format!(
                    "`{s}`: `{host}` is not HOST:PORT (etcd's client port is usually 2379); {URL_HINT}"
                ));
            }
            let path = path.trim_end_matches('/');
            if path.is_empty() {
                return Err(format!(
                    "`{s}` names no key prefix (the election key lives under it); {URL_HINT}"
                ));
            }
            return Ok(HaUrl::Etcd {
                endpoint: format!("http://{host}"),
                prefix: format!("/{path}"),
            });
        }
        if let Some(rest) = s.strip_prefix("k8s://") {
            let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
            return match parts.as_slice() {
                [c, ns, n] if !c.is_empty() && !ns.is_empty() && !n.is_empty() => Ok(HaUrl::Kube {
                    context: (*c).to_owned(),
                    namespace: (*ns).to_owned(),
                    name: (*n).to_owned(),
                }),
                _ => Err(format!(
                    "`{s}` is not `k8s://CONTEXT/NAMESPACE/NAME` (a coordination.k8s.io Lease)"
                )),
            };
        }
        Err(format!(
            "`{s}` is not an HA URL: use `etcd://HOST:PORT/PREFIX` (`k8s://CONTEXT/NAMESPACE/NAME` is planned)"
        ))
    }
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

/// An instance's role in the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Holds the leader key: acts while its lease is fresh.
    Leader,
    /// Another instance leads; this one observes and waits.
    Standby,
    /// etcd not reached (yet, or any more): acts on nothing.
    Connecting,
    /// `refinery status --ha`: nobody holds the leader key.
    None,
}

/// This instance's place in the election, for the log, the status page and `refinery status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HaStatus {
    /// `etcd://…` as given.
    pub url: String,
    /// This instance's id (`<host>-<pid>`).
    pub id: String,
    pub role: Role,
    /// The leader's id, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The leader's term: the create revision of the leader key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// Every registered instance but the leader.
    pub standbys: Vec<String>,
    pub lease_secs: u64,
}

#[derive(Debug, Clone)]
struct Shared {
    status: HaStatus,
    /// While leader: acting is allowed until then (half a lease after the last keep-alive
    /// etcd answered was sent).
    act_until: Option<Instant>,
}

/// The daemon's view of the election: a running elector task.
pub struct Leadership {
    rx: watch::Receiver<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Starts campaigning for `prefix`'s leader key at `endpoint` as `id`.
    #[must_use]
    pub fn start(url: &HaUrl, endpoint: &str, prefix: &str, lease: Duration, id: String) -> Self {
        let status = HaStatus {
            url: url.to_string(),
            id: id.clone(),
            role: Role::Connecting,
            leader: None,
            term: None,
            standbys: Vec::new(),
            lease_secs: lease.as_secs(),
        };
        let (tx, rx) = watch::channel(Shared {
            status,
            act_until: None,
        });
        let (stop, stop_rx) = watch::channel(false);
        let elector = Elector {
            endpoint: endpoint.to_owned(),
            keys: Keys::under(prefix),
            lease,
            id,
            tx,
            stop: stop_rx,
            old_lease: None,
        };
        let task = tokio::spawn(elector.run());
        Leadership { rx, stop, task }
    }

    /// The term to act under, if this instance leads and may act now (fencing: its lease was
    /// renewed less than half a lease ago).
    #[must_use]
    pub fn acting_term(&self) -> Option<u64> {
        let s = self.rx.borrow();
        match (s.status.role, s.act_until) {
            (Role::Leader, Some(until)) if Instant::now() < until => s.status.term,
            _ => None,
        }
    }

    #[must_use]
    pub fn status(&self) -> HaStatus {
        self.rx.borrow().status.clone()
    }

    #[must_use]
    pub fn id(&self) -> String {
        self.rx.borrow().status.id.clone()
    }

    /// Resolves when the election's state changed (never, once the elector is gone).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resigns (revokes the lease, so a standby takes over at once) and stops campaigning.
    pub async fn resign(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
    }
}

/// `k8s://` parses but has no elector yet: a usage error (exit 2).
pub fn check_supported(url: &HaUrl) -> Result<(), crate::error::CliError> {
    match url {
        HaUrl::Etcd { .. } => Ok(()),
        HaUrl::Kube { .. } => Err(crate::error::CliError::HaNotSupported {
            url: url.to_string(),
        }),
    }
}

/// One line: `leader: web-1 (term 42); standbys: web-2`.
#[must_use]
pub fn summary(s: &HaStatus) -> String {
    let leader = match (&s.leader, s.term) {
        (Some(l), Some(t)) => format!("leader: {l} (term {t})"),
        (Some(l), None) => format!("leader: {l}"),
        _ => "leader: none".to_owned(),
    };
    let standbys = if s.standbys.is_empty() {
        "none".to_owned()
    } else {
        s.standbys.join(", ")
    };
    format!("{leader}; standbys: {standbys}")
}

/// This instance's id: `<hostname>-<pid>`.
#[must_use]
pub fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "refinery".into());
    format!("{host}-{}", std::process::id())
}

struct Elector {
    endpoint: String,
    keys: Keys,
    lease: Duration,
    id: String,
    tx: watch::Sender<Shared>,
    stop: watch::Receiver<bool>,
    /// The lease of the last session, revoked once etcd answers again.
    old_lease: Option<i64>,
}

/// How one session with etcd ended.
enum End {
    Stopped,
    Failed(String),
}

impl Elector {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(200);
        let mut last_why = String::new();
        loop {
            let began = Instant::now();
            match self.session().await {
                End::Stopped => return,
                End::Failed(why) => {
                    let again = why == last_why;
                    last_why.clone_from(&why);
                    let was_leader = self.tx.borrow().status.role == Role::Leader;
                    self.publish(|s| {
                        s.status.role = Role::Connecting;
                        s.act_until = None;
                    });
                    if was_leader {
                        tracing::error!(reason = %why, "lost the leader lease; stopped acting");
                    } else if again {
                        tracing::debug!(reason = %why, "etcd still unreachable; reconnecting");
                    } else {
                        tracing::warn!(reason = %why, "etcd session ended; reconnecting");
                    }
                }
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

    fn publish(&self, f: impl FnOnce(&mut Shared)) {
        self.tx.send_modify(f);
    }

    /// Bounds one etcd call: a call that hangs (etcd cut off) fails instead.
    fn call_timeout(&self) -> Duration {
        (self.lease / 4).max(Duration::from_millis(500))
    }

    async fn session(&mut self) -> End {
        match self.session_inner().await {
            Ok(()) => End::Stopped,
            Err(e) => End::Failed(e),
        }
    }

    async fn session_inner(&mut self) -> Result<(), String> {
        let t = self.call_timeout();
        let options = ConnectOptions::new()
            .with_connect_timeout(t)
            .with_timeout(t)
            .with_keep_alive(t, t);
        let mut client = tokio::time::timeout(t, Client::connect([&self.endpoint], Some(options)))
            .await
            .map_err(|_| format!("`{}` did not answer within {t:?}", self.endpoint))?
            .map_err(|e| format!("failed to connect to `{}`: {e}", self.endpoint))?;
        if let Some(old) = self.old_lease.take() {
            // The last session's lease, and the leader key with it if it was ours: a standby
            // need not wait for it to run out.
            let _ = tokio::time::timeout(t, client.lease_revoke(old)).await;
        }
        let ttl = i64::try_from(self.lease.as_secs().max(1)).unwrap_or(i64::MAX);
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
        let member = format!("{}{}", self.keys.members, self.id);
        timed(
            t,
            client.put(
                member,
                self.id.clone(),
                Some(PutOptions::new().with_lease(lease)),
            ),
        )
        .await
        .map_err(|e| format!("failed to register under `{}`: {e}", self.keys.members))?;
        let mut sent: VecDeque<Instant> = VecDeque::new();
        let mut tick = tokio::time::interval((self.lease / 6).max(Duration::from_millis(200)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = self.stop.clone();
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
                    self.id.clone(),
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
                (self.id.clone(), revision, true)
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
            let act_until = last_ok + self.lease / 2;
            self.publish(|s| {
                s.status.role = if mine { Role::Leader } else { Role::Standby };
                s.status.leader = Some(holder.clone());
                s.status.term = Some(term);
                s.act_until = mine.then_some(act_until);
            });
            if mine {
                tracing::info!(term, id = %self.id, "elected leader");
            } else {
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
                        self.publish(|s| { s.status.role = Role::Standby; s.act_until = None; });
                        let _ = tokio::time::timeout(t, client.lease_revoke(lease)).await;
                        self.old_lease = None;
                        tracing::info!("resigned: the lease is revoked");
                        return Ok(());
                    }
                    _ = tick.tick() => {
                        if last_ok.elapsed() >= self.lease / 2 {
                            return Err(format!(
                                "no keep-alive answered for {}ms (half the {}s lease)",
                                last_ok.elapsed().as_millis(),
                                self.lease.as_secs()
                            ));
                        }
                        sent.push_back(Instant::now());
                        timed_unit(t, keeper.keep_alive())
                            .await
                            .map_err(|e| format!("failed to send a keep-alive: {e}"))?;
                        self.refresh_members(&mut client, t).await;
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
                            if mine {
                                self.publish(|s| s.act_until = Some(at + self.lease / 2));
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
                                        self.publish(|s| { s.status.role = Role::Standby; s.act_until = None; });
                                        tracing::error!("the leader key was deleted; stopped acting");
                                    }
                                    break 'held;
                                }
                                EventType::Put => {
                                    if let Some(kv) = e.kv() {
                                        let holder = String::from_utf8_lossy(kv.value()).into_owned();
                                        let term = u64::try_from(kv.create_revision()).unwrap_or(0);
                                        if mine && kv.lease() != lease {
                                            self.publish(|s| { s.status.role = Role::Standby; s.act_until = None; });
                                            break 'held;
                                        }
                                        self.publish(|s| { s.status.leader = Some(holder); s.status.term = Some(term); });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Who else is registered (for the status page); a failure keeps the last list.
    async fn refresh_members(&self, client: &mut Client, t: Duration) {
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
        let mut members: Vec<String> = resp
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
            .collect();
        members.sort();
        self.tx.send_if_modified(|s| {
            let standbys: Vec<String> = members
                .iter()
                .filter(|m| s.status.leader.as_ref() != Some(m))
                .cloned()
                .collect();
            let changed = s.status.standbys != standbys;
            s.status.standbys = standbys;
            changed
        });
    }
}

/// An etcd call bounded by `t`.
async fn timed<T>(
    t: Duration,
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(t, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("etcd did not answer within {t:?}")),
    }
}

async fn timed_unit(
    t: Duration,
    f: impl std::future::Future<Output = Result<(), etcd_client::Error>>,
) -> Result<(), String> {
    timed(t, f).await
}

/// Reads who leads and who stands by, for `refinery status --ha`.
pub async fn read_status(url: &HaUrl) -> Result<HaStatus, String> {
    let HaUrl::Etcd { endpoint, prefix } = url else {
        return Err("only `etcd://` is supported yet".into());
    };
    let t = Duration::from_secs(3);
    let options = ConnectOptions::new()
        .with_connect_timeout(t)
        .with_timeout(t);
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
    let mut standbys: Vec<String> = members
        .kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
        .filter(|m| leader.as_ref() != Some(m))
        .collect();
    standbys.sort();
    Ok(HaStatus {
        url: url.to_string(),
        id: String::new(),
        role: if leader.is_some() {
            Role::Leader
        } else {
            Role::None
        },
        leader,
        term,
        standbys,
        lease_secs: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha_url_etcd_with_prefix_parses() {
        assert_eq!(
            "etcd://127.0.0.1:2379/refinery".parse::<HaUrl>(),
            Ok(HaUrl::Etcd {
                endpoint: "http://127.0.0.1:2379".into(),
                prefix: "/refinery".into()
            })
        );
        let url: HaUrl = "etcd://etcd.local:2379/a/b/"
            .parse()
            .unwrap_or(HaUrl::Etcd {
                endpoint: String::new(),
                prefix: String::new(),
            });
        assert_eq!(url.to_string(), "etcd://etcd.local:2379/a/b");
    }

    #[test]
    fn ha_url_k8s_parses_as_kube() {
        assert_eq!(
            "k8s://lyra/refinery/leader".parse::<HaUrl>(),
            Ok(HaUrl::Kube {
                context: "lyra".into(),
                namespace: "refinery".into(),
                name: "leader".into()
            })
        );
    }

    #[test]
    fn ha_url_bad_forms_are_errors_with_the_expected_form() {
        for bad in [
            "etcd://127.0.0.1:2379",
            "etcd://127.0.0.1/refinery",
            "etcd:///refinery",
            "http://127.0.0.1:2379/refinery",
            "k8s://lyra/refinery",
        ] {
            let e = bad.parse::<HaUrl>().err().unwrap_or_default();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
