//! `refinery run --ha URL`: leader election, so one of several instances acts and the others
//! stand by, on an engine that already exists, never a home-made consensus:
//! - `etcd://HOST:PORT/PREFIX`: an etcd lease and a create-if-absent key ([`etcd`]);
//! - `k8s://CONTEXT/NAMESPACE/NAME`: a `coordination.k8s.io` Lease ([`kube`]).
//!
//! Both publish the same [`Leadership`]: the role, the leader, its term (a number that grows with
//! every election) and the standbys; and both fence the same way: a leader acts only while its
//! last renewal that the store accepted was *sent* less than half a lease ago
//! ([`Leadership::acting_term`]), so a leader cut off from the store stops acting at least half a
//! lease before a standby may take over.

mod etcd;
mod kube;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

/// Where the leader lease lives, as `--ha` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaUrl {
    /// `etcd://HOST:PORT/PREFIX`: `endpoint` is `http://HOST:PORT`, keys start with `prefix`.
    Etcd { endpoint: String, prefix: String },
    /// `k8s://CONTEXT/NAMESPACE/NAME`: a `coordination.k8s.io` Lease in the kubeconfig's
    /// (`KUBECONFIG`, else `~/.kube/config`) context `CONTEXT`.
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

impl HaUrl {
    /// Shard `shard`'s own election: `PREFIX/shard-I-of-N` in etcd, the Lease `NAME-shard-I-of-N`.
    #[must_use]
    pub fn for_shard(&self, shard: Option<refinery_core::Shard>) -> HaUrl {
        let Some(shard) = shard else {
            return self.clone();
        };
        match self {
            HaUrl::Etcd { endpoint, prefix } => HaUrl::Etcd {
                endpoint: endpoint.clone(),
                prefix: format!("{prefix}/{}", shard.suffix()),
            },
            HaUrl::Kube {
                context,
                namespace,
                name,
            } => HaUrl::Kube {
                context: context.clone(),
                namespace: namespace.clone(),
                name: format!("{name}-{}", shard.suffix()),
            },
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
            "`{s}` is not an HA URL: use `etcd://HOST:PORT/PREFIX` or `k8s://CONTEXT/NAMESPACE/NAME`"
        ))
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

/// The registered instances other than the leader, sorted, each once.
fn standbys(leader: Option<&String>, mut members: Vec<String>) -> Vec<String> {
    members.retain(|m| leader != Some(m));
    members.sort();
    members.dedup();
    members
}

impl HaStatus {
    /// The election as `refinery status --ha` reads it from the store: `members` are every
    /// registered instance (the leader's among them).
    fn seen_from_outside(
        url: &HaUrl,
        leader: Option<String>,
        term: Option<u64>,
        members: Vec<String>,
    ) -> HaStatus {
        let members = standbys(leader.as_ref(), members);
        HaStatus {
            url: url.to_string(),
            id: String::new(),
            role: if leader.is_some() {
                Role::Leader
            } else {
                Role::None
            },
            leader,
            term,
            standbys: members,
            lease_secs: 0,
        }
    }
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
    /// Starts campaigning at `url` (over `tls`, for etcd) as `id`, with a lease of `lease`.
    #[must_use]
    pub fn start(url: &HaUrl, tls: Option<EtcdTls>, lease: Duration, id: String) -> Self {
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
        let campaign = Campaign {
            lease,
            id,
            tx,
            stop: stop_rx,
        };
        let task = match url {
            HaUrl::Etcd { endpoint, prefix } => {
                let mut store = etcd::Etcd::new(endpoint, prefix, tls);
                tokio::spawn(async move { campaign.sessions(&mut store).await })
            }
            HaUrl::Kube {
                context,
                namespace,
                name,
            } => {
                let mut store = kube::Kube::new(context, namespace, name);
                tokio::spawn(async move { campaign.sessions(&mut store).await })
            }
        };
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

/// What both electors share: who campaigns, for how long a lease, where they publish, and the
/// signal to resign.
struct Campaign {
    lease: Duration,
    id: String,
    tx: watch::Sender<Shared>,
    stop: watch::Receiver<bool>,
}

impl Campaign {
    fn publish(&self, f: impl FnOnce(&mut Shared)) {
        self.tx.send_modify(f);
    }

    fn role(&self) -> Role {
        self.tx.borrow().status.role
    }

    /// Bounds one call to the store: a call that hangs (the store cut off) fails instead.
    fn call_timeout(&self) -> Duration {
        (self.lease / 4).max(Duration::from_millis(500))
    }

    /// How often the lease is renewed (and a standby looks again).
    fn renew_every(&self) -> Duration {
        (self.lease / 6).max(Duration::from_millis(200))
    }

    /// Leading under `term`; acting allowed until half a lease after `renewed` (when the last
    /// accepted renewal was sent).
    fn lead(&self, holder: &str, term: u64, renewed: Instant) {
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
    fn renewed(&self, at: Instant) -> bool {
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
    fn stand_by(&self, leader: Option<String>, term: Option<u64>) {
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
    fn step_down(&self) {
        self.publish(|s| {
            s.status.role = Role::Standby;
            s.act_until = None;
        });
    }

    /// Stops acting at once (the session with the store ended).
    fn disconnected(&self) {
        self.publish(|s| {
            s.status.role = Role::Connecting;
            s.act_until = None;
        });
    }

    /// The registered instances (leader included), sorted: the standbys are the others.
    fn members(&self, members: Vec<String>) {
        self.tx.send_if_modified(|s| {
            let standbys = standbys(s.status.leader.as_ref(), members);
            let changed = s.status.standbys != standbys;
            s.status.standbys = standbys;
            changed
        });
    }

    /// Runs `store`'s sessions until told to stop, reconnecting with a backoff.
    async fn sessions(&self, store: &mut impl Store) {
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
trait Store {
    /// `etcd`, `Kubernetes`: for the log.
    fn name(&self) -> &'static str;

    /// One session: campaigns, leads or stands by until the store is lost (`Err(why)`) or the
    /// campaign is told to stop (`Ok`, after resigning).
    async fn session(&mut self, c: &Campaign) -> Result<(), String>;
}

/// A call to the election store bounded by `t`: a call that hangs (the store cut off) fails
/// instead; the error with its causes.
async fn timed<T, E: std::error::Error>(
    t: Duration,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(t, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let mut why = e.to_string();
            let mut cause = e.source();
            while let Some(c) = cause {
                let c_text = c.to_string();
                // Many errors say their cause already.
                if !why.contains(&c_text) {
                    why.push_str(": ");
                    why.push_str(&c_text);
                }
                cause = c.source();
            }
            Err(why)
        }
        Err(_) => Err(format!("no answer within {t:?}")),
    }
}

/// TLS to etcd: the CA that signed its server certificate, and a client certificate and key
/// (PEM), read once at start.
#[derive(Clone)]
pub struct EtcdTls {
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl EtcdTls {
    /// `--ha-cacert`, `--ha-cert`, `--ha-key` for `url`: `None` without them; a usage error when
    /// a file cannot be read or is not PEM, or when they are given for a `k8s://` Lease.
    pub fn load(
        args: &crate::args::HaTlsArgs,
        url: &HaUrl,
    ) -> Result<Option<EtcdTls>, crate::error::CliError> {
        let Some(ca) = &args.ha_cacert else {
            return Ok(None);
        };
        if let HaUrl::Kube { .. } = url {
            return Err(crate::error::CliError::BadHaTls {
                flag: "--ha-cacert".into(),
                message: format!(
                    "`{url}` is a Kubernetes Lease, reached with the kubeconfig's TLS settings"
                ),
            });
        }
        let read = |flag: &str, path: &std::path::Path| {
            let bytes = std::fs::read(path).map_err(|e| crate::error::CliError::BadHaTls {
                flag: flag.to_owned(),
                message: format!("failed to read `{}`: {e}", path.display()),
            })?;
            if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(crate::error::CliError::BadHaTls {
                    flag: flag.to_owned(),
                    message: format!("`{}` is not a PEM file", path.display()),
                });
            }
            Ok(bytes)
        };
        let ca = read("--ha-cacert", ca)?;
        let identity = match (&args.ha_cert, &args.ha_key) {
            (Some(cert), Some(key)) => Some((read("--ha-cert", cert)?, read("--ha-key", key)?)),
            _ => None,
        };
        Ok(Some(EtcdTls { ca, identity }))
    }
}

/// Reads who leads and who stands by, for `refinery status --ha`.
pub async fn read_status(url: &HaUrl, tls: Option<EtcdTls>) -> Result<HaStatus, String> {
    match url {
        HaUrl::Etcd { endpoint, prefix } => etcd::read_status(url, endpoint, prefix, tls).await,
        HaUrl::Kube {
            context,
            namespace,
            name,
        } => kube::read_status(url, context, namespace, name).await,
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
