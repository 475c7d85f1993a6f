//! The daemon's view of the election: a running elector task it asks whether it may act.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::campaign::{Campaign, Shared};
use crate::etcd_elector::EtcdElector;
use crate::lease_elector::LeaseElector;
use crate::{EtcdTls, HaStatus, HaUrl, Role};

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
            HaUrl::Etcd { host, prefix } => {
                let mut store = EtcdElector::new(host, prefix, tls);
                tokio::spawn(async move { campaign.sessions(&mut store).await })
            }
            HaUrl::Kube {
                context,
                namespace,
                name,
            } => {
                let mut store = LeaseElector::new(context, namespace, name);
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
