//! Errors the CLI reports, each with an exit code and hints.

use refinery_core::{ManifestError, RuntimeError, UnreachableCause};
use refinery_git::GitError;
use refinery_store::LedgerError;
use refinery_store::audit_log::AuditLogError;

use refinery_controller::ControllerError;

use crate::exit_code;

/// Errors of the same kind keep their variant: a manifest error stays [`CliError::Manifest`]
/// (its issues are printed), a ledger error [`CliError::Ledger`] (its exit code).
impl From<ControllerError> for CliError {
    fn from(e: ControllerError) -> CliError {
        match e {
            ControllerError::Git(e) => CliError::Git(e),
            ControllerError::Manifest(e) => CliError::Manifest(e),
            ControllerError::Ledger(e) => CliError::Ledger(e),
            ControllerError::State(e) => CliError::State(e),
            ControllerError::Io { action, source } => CliError::Io { action, source },
            other @ (ControllerError::NotUtf8 { .. }
            | ControllerError::BadTls { .. }
            | ControllerError::UnknownNode { .. }) => CliError::Controller(other),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("failed to reach node `{node}`")]
    Unreachable {
        node: String,
        #[source]
        source: RuntimeError,
    },
    #[error("failed to use `{flag}` for the election: {message}")]
    BadHaTls { flag: String, message: String },
    /// Choosing nodes and engines, loading the desired state: see [`ControllerError`].
    #[error(transparent)]
    Controller(ControllerError),
    #[error(transparent)]
    State(#[from] refinery_store::StateError),
    #[error(transparent)]
    AuditLog(#[from] AuditLogError),
    #[error("failed to find stack `{stack}` in the manifest")]
    UnknownStack { stack: String, known: Vec<String> },
    #[error("failed to find a container chaos may hurt")]
    NothingToHurt,
    #[error("failed to parse resource id `{given}`")]
    BadResourceId { given: String },
    #[error("failed to ask for confirmation: standard input is not a terminal")]
    NeedsYes,
    #[error(
        "failed to listen on `{addr}`: it is not a loopback address and no bearer token is set"
    )]
    ListenNeedsToken { addr: std::net::SocketAddr },
    #[error("failed to listen on `{addr}`")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to find an alert channel in the manifest")]
    NoAlertChannels,
    #[error("failed to use `{url}` for high availability: {message}")]
    Ha { url: String, message: String },
    #[error(
        "failed to hand the apply to the running daemon (pid {pid}): it enforces `{enforcing}` (following `{follow}`), not `{wanted}`"
    )]
    DaemonRevision {
        pid: u32,
        enforcing: String,
        follow: String,
        wanted: String,
    },
    #[error(
        "failed to hand the apply to the running daemon (pid {pid}): it is a standby under `--ha`"
    )]
    DaemonStandby { pid: u32, leader: Option<String> },
    #[error("failed to hand the apply to the running daemon (pid {pid}): {reason}")]
    DaemonRefused { pid: u32, reason: String },
    #[error("failed to open the ledger: the running daemon (pid {pid}) holds it")]
    DaemonHoldsLedger { pid: u32 },
    #[error("failed to get an answer from the running daemon (pid {pid}): {what}")]
    DaemonNoAnswer { pid: u32, what: String },
    #[error("failed to write to stdout")]
    Stdout(#[source] std::io::Error),
    #[error("failed to {action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// Whether stdout's reader went away (`| head`): not a failure, the command just stops.
    #[must_use]
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The exit code: one exhaustive match, no catch-all.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Git(_)
            | CliError::Manifest(_)
            | CliError::BadHaTls { .. }
            | CliError::UnknownStack { .. }
            | CliError::NeedsYes
            | CliError::BadResourceId { .. } => exit_code::USAGE,
            CliError::Controller(e) => match e {
                ControllerError::NotUtf8 { .. }
                | ControllerError::BadTls { .. }
                | ControllerError::UnknownNode { .. }
                | ControllerError::Git(_)
                | ControllerError::Manifest(_) => exit_code::USAGE,
                ControllerError::Ledger(_)
                | ControllerError::State(_)
                | ControllerError::Io { .. } => exit_code::UNEXPECTED,
            },
            CliError::NothingToHurt => exit_code::CHAOS_UNHEALED,
            CliError::State(_) | CliError::AuditLog(_) => exit_code::UNEXPECTED,
            CliError::Unreachable { .. } => exit_code::UNREACHABLE,
            CliError::Io { .. } | CliError::Stdout(_) => exit_code::UNEXPECTED,
            CliError::Ledger(LedgerError::Broken { .. }) => exit_code::LEDGER_BROKEN,
            CliError::Ledger(
                LedgerError::Io { .. } | LedgerError::Locked { .. } | LedgerError::Seal(_),
            ) => exit_code::UNEXPECTED,
            CliError::ListenNeedsToken { .. } | CliError::NoAlertChannels => exit_code::USAGE,
            CliError::Listen { .. } => exit_code::UNEXPECTED,
            CliError::Ha { .. } => exit_code::UNEXPECTED,
            CliError::DaemonRevision { .. }
            | CliError::DaemonStandby { .. }
            | CliError::DaemonRefused { .. } => exit_code::USAGE,
            CliError::DaemonNoAnswer { .. } | CliError::DaemonHoldsLedger { .. } => {
                exit_code::UNEXPECTED
            }
        }
    }

    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            CliError::Git(e) => e.hints(),
            CliError::Manifest(e) => e.hints(),
            CliError::Ledger(e) => e.hints(),
            CliError::Controller(e) => e.hints(),
            CliError::Unreachable { source, .. } => unreachable_hints(source),
            CliError::State(e) => e.hints(),
            CliError::UnknownStack { stack, known } => {
                match refinery_core::suggestion::suggest(stack, known.iter().map(String::as_str)) {
                    Some(s) => vec![format!("did you mean `{s}`?")],
                    None if known.is_empty() => vec!["the manifest declares no `stacks:`".into()],
                    None => vec![format!("declared stacks: {}", known.join(", "))],
                }
            }
            CliError::NothingToHurt => vec![
                "chaos only touches declared, running, unprotected containers on nodes in `enforce` mode".into(),
                "start the daemon (`refinery run`) and let it create them first".into(),
            ],
            CliError::BadResourceId { .. } => vec![
                "write it as `docker/<node>/container/<name>`, as `refinery status --json` prints it"
                    .into(),
            ],
            CliError::NeedsYes => vec!["pass `--yes` to apply without asking".into()],
            CliError::BadHaTls { .. } => vec![
                "`--ha-cacert`, `--ha-cert` and `--ha-key` name PEM files readable by this process, and are for `etcd://` only (a `k8s://` Lease uses the kubeconfig's TLS)".into(),
            ],
            CliError::Io { .. } | CliError::AuditLog(_) | CliError::Stdout(_) => Vec::new(),
            CliError::ListenNeedsToken { .. } => vec![
                "set `REFINERY_STATUS_TOKEN` or pass `--token-file`, or listen on `127.0.0.1`".into(),
            ],
            CliError::Listen { .. } => vec![
                "is another process (another `refinery run`?) using that port? pick another with `--listen`".into(),
            ],
            CliError::Ha { url, .. } if url.starts_with("k8s://") => vec![
                "is the API server reachable through that context of KUBECONFIG (or ~/.kube/config)? try `kubectl --context CONTEXT -n NAMESPACE get lease NAME`".into(),
            ],
            CliError::Ha { .. } => vec![
                "is etcd running and reachable? try `etcdctl --endpoints HOST:2379 endpoint health`".into(),
            ],
            CliError::DaemonRevision { enforcing, .. } => vec![
                format!("pass `--rev {enforcing}` to have the daemon apply what it enforces"),
                "to deploy another revision, commit it to the branch the daemon follows (or `refinery rollback --to REV`)".into(),
            ],
            CliError::DaemonStandby { leader, .. } => vec![match leader {
                Some(l) => format!("the leader `{l}` acts: run `refinery apply` where it runs"),
                None => "no leader is elected right now: wait for one, then run `refinery apply` where it runs".into(),
            }],
            CliError::DaemonRefused { .. } => Vec::new(),
            CliError::DaemonHoldsLedger { pid } => vec![
                format!("`refinery cleanup --apply` records its removals itself: stop the daemon (`kill -TERM {pid}`), run it, start the daemon again"),
                "without `--apply` (a dry run) it runs beside the daemon".into(),
            ],
            CliError::DaemonNoAnswer { .. } => vec![
                "see the daemon's log; `refinery status` shows what it did".into(),
                "pass a longer `--timeout` for slow pulls".into(),
            ],
            CliError::NoAlertChannels => vec![
                "add `alerting.channels` (or `config.discord_webhook`) to the manifest and commit it".into(),
            ],
        }
    }
}

/// Hints for an engine that does not answer, chosen by why.
#[must_use]
pub fn unreachable_hints(e: &RuntimeError) -> Vec<String> {
    let cause = match e {
        RuntimeError::Unreachable { cause, .. } => *cause,
        _ => UnreachableCause::Other,
    };
    match cause {
        UnreachableCause::Ssh => vec![
            "check that `ssh USER@HOST docker version` works without a password prompt (an ssh-agent or a key without passphrase, the host in `known_hosts`)".into(),
        ],
        UnreachableCause::Tls => vec![
            "the node's `tls:` files are `docker --tlsverify` style: `ca.pem`, `cert.pem`, `key.pem` (relative paths are relative to the repository)".into(),
        ],
        UnreachableCause::PermissionDenied => {
            vec!["run as root or add your user to the `docker` group".into()]
        }
        UnreachableCause::NoSocket
        | UnreachableCause::Refused
        | UnreachableCause::Closed
        | UnreachableCause::Timeout
        | UnreachableCause::Other => vec![
            "is the Docker daemon running? try `docker info`".into(),
            "set the node's `docker:` endpoint or `DOCKER_HOST` if the engine listens elsewhere"
                .into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable(cause: UnreachableCause) -> RuntimeError {
        RuntimeError::Unreachable {
            endpoint: "unix:///var/run/docker.sock".into(),
            cause,
            reason: "whatever the engine said".into(),
        }
    }

    #[test]
    fn unreachable_hints_follow_the_cause_not_the_text() {
        let first = |cause| unreachable_hints(&unreachable(cause)).remove(0);
        assert!(first(UnreachableCause::Ssh).contains("ssh USER@HOST docker version"));
        assert!(first(UnreachableCause::Tls).contains("`tls:` files"));
        assert!(first(UnreachableCause::PermissionDenied).contains("`docker` group"));
        for cause in [
            UnreachableCause::NoSocket,
            UnreachableCause::Refused,
            UnreachableCause::Closed,
            UnreachableCause::Timeout,
            UnreachableCause::Other,
        ] {
            assert!(first(cause).contains("docker info"), "{cause:?}");
        }
        let other = RuntimeError::Other {
            action: "list containers".into(),
            message: "ssh to `x` failed".into(),
        };
        assert!(unreachable_hints(&other)[0].contains("docker info"));
    }
}
