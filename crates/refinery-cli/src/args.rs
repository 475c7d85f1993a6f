//! Command-line arguments: parsed and validated, nothing resolved yet.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keep Docker hosts exactly as a git commit says.
#[derive(Debug, Parser)]
#[command(
    name = "refinery",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit codes: 0 ok / in sync, 1 unexpected error, 2 bad usage or invalid manifest, 3 drift found,\n4 an engine unreachable, 5 ledger chain broken, 6 an apply action failed, 7 a chaos fault not healed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Git repository holding `refinery.yaml` (the desired state is read from a commit, never the
    /// work tree).
    #[arg(long, global = true, default_value = ".", env = "REFINERY_REPO")]
    pub repo: PathBuf,
    /// Commit, branch or tag to read the desired state from.
    #[arg(long, global = true, default_value = "HEAD", env = "REFINERY_REV")]
    pub rev: String,
    /// Only this node (repeatable).
    #[arg(long, global = true)]
    pub node: Vec<String>,
    /// Print JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to use color.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the manifest from a commit and report every problem in it.
    Validate,
    /// Show how each node differs from the commit and what `apply` would do.
    ///
    /// Exit codes: 0 in sync, 3 drift found, 2 invalid manifest, 4 a node unreachable.
    Plan(PlanArgs),
    /// Make every node match the commit: create, recreate, restart, remove.
    ///
    /// Exit codes: 0 done, 6 an action failed, 2 invalid manifest, 4 a node unreachable.
    Apply(ApplyArgs),
    /// One row per declared container: node, image, state, health, drift, revision.
    ///
    /// Exit codes: 0 all in sync, 3 drift found, 4 a node unreachable.
    Status(StatusArgs),
    /// Run the self-healing daemon in the foreground: watch engine events, poll the branch, and
    /// keep every node as the newest good commit says.
    ///
    /// Stops cleanly on SIGINT/SIGTERM (exit 0). Exit codes: 2 no loadable manifest at start,
    /// 5 ledger chain broken, 1 state directory unusable.
    Run(Box<RunArgs>),
    /// Lift flap protection from a resource, so the daemon acts on it again.
    Resume(ResumeArgs),
    /// Make the daemon enforce an older revision until a newer commit arrives.
    Rollback(RollbackArgs),
    /// Inject faults into managed containers and measure how fast the running daemon heals them.
    ///
    /// Exit codes: 0 every fault healed, 7 a fault did not heal within --heal-timeout.
    Chaos(ChaosArgs),
    /// Check and read the hash-chained ledger of everything that happened.
    ///
    /// Exit codes: 0 chain intact, 5 chain broken.
    Ledger(LedgerArgs),
    /// One row per node: endpoint, engine version, mode, reachability, containers, drift.
    ///
    /// Exit codes: 0 all in sync, 3 drift found, 4 a node unreachable.
    Nodes(NodesArgs),
    /// Classify every container, image, volume and network as expected, protected,
    /// safe-to-delete or extra; append one line per node to the audit log. Never writes to an
    /// engine.
    ///
    /// Exit codes: 0 nothing extra, 3 extras found (a human has to look), 4 a node unreachable.
    Audit(AuditArgs),
    /// List what the inventory rules say is safe to delete (a dry run); with `--apply`, remove
    /// exactly that, record each removal in the ledger. Never on a read-only node.
    ///
    /// Exit codes: 0 done, 6 a removal failed, 4 a node unreachable.
    Cleanup(CleanupArgs),
    /// Alert channels (`alerting.channels`, `config.discord_webhook`).
    Alert(AlertArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Where Refinery remembers what it saw in use [default: `refinery/` in the git directory].
    #[arg(long, env = "REFINERY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Remove the safe-to-delete resources (without it: only list them).
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Where Refinery remembers what it saw in use [default: `refinery/` in the git directory].
    #[arg(long, env = "REFINERY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AlertArgs {
    #[command(subcommand)]
    pub command: AlertCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Send a test message to every channel of the manifest at --rev and report each result.
    ///
    /// Exit codes: 0 every channel took it, 1 a channel failed, 2 no channel configured.
    Test,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Also show differences in fields listed under `ignore_differences`.
    #[arg(long)]
    pub show_ignored: bool,
    /// The state directory of a `refinery run` on this repository, whose image updates rolled
    /// back are shown held back [default: `refinery/` in the git directory].
    #[arg(long, env = "REFINERY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Only the services of this compose stack (a `stacks:` name).
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// The state directory of a `refinery run` on this repository: when it holds the ledger,
    /// the apply is handed to it [default: `refinery/` in the git directory].
    #[arg(long, env = "REFINERY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// How long to wait for the running daemon to carry out a handed-over apply (`90s`, `10m`).
    #[arg(long, default_value = "5m", value_parser = parse_since)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Branch to follow: each new commit on it is deployed [default: --rev, i.e. `HEAD`].
    #[arg(long)]
    pub branch: Option<String>,
    /// Where the daemon keeps its state and takes requests [default: `refinery/` in the git
    /// directory].
    #[arg(long, env = "REFINERY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Log lines as text or JSON (stderr).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How often to take requests from `refinery apply`, `resume` and `rollback`, and to look at
    /// the followed ref as the last fetch left it (`2s`, `500ms`); the remote itself is fetched
    /// every `--fetch-interval`.
    #[arg(long, default_value = "2s", value_parser = parse_since)]
    pub poll_interval: u64,
    /// Seconds between full passes, overriding `config.check_interval` (`30s`, `5m`).
    #[arg(long, value_parser = parse_since)]
    pub check_interval: Option<u64>,
    /// Serve the status page, `/api/v1/status`, `/metrics`, `/healthz` and `/readyz` here
    /// (`127.0.0.1:9470`); an address other than loopback needs a bearer token.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// File holding the bearer token for --listen [default: `REFINERY_STATUS_TOKEN`].
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Run as shard I of N controllers (`2/3`): only the nodes whose name hashes to this shard,
    /// with the shard's own ledger file, ledger ref and state directory.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<refinery_core::Shard>,
    /// How many nodes a pass observes or acts on at once; the others wait their turn.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONCURRENT_NODES,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_nodes: u16,
    /// How many engine events may wait for the daemon (all nodes together). Past that (an event
    /// storm) a node's further events are dropped, said once in the ledger, and the node is
    /// observed afresh instead.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_EVENT_BACKLOG,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub event_backlog: u32,
    #[command(flatten)]
    pub ha: HaArgs,
    /// `--follow-tag`, `--fetch-interval`, `--webhook-secret-file`, `--public-url`.
    #[command(flatten)]
    pub gitops: crate::gitops::GitopsArgs,
}

/// `--max-concurrent-nodes` when not given.
pub const DEFAULT_MAX_CONCURRENT_NODES: u16 = 32;

/// `--event-backlog` when not given: how many engine events may wait for the daemon (all nodes
/// together).
pub const DEFAULT_EVENT_BACKLOG: u32 = 10_000;

/// High availability: several `refinery run`, one leader at a time.
#[derive(Debug, Args)]
pub struct HaArgs {
    /// Elect one leader among several daemons: `etcd://HOST:PORT/PREFIX` (an etcd lease under
    /// PREFIX) or `k8s://CONTEXT/NAMESPACE/NAME` (a coordination.k8s.io Lease, through
    /// KUBECONFIG's context). Only the leader writes to engines and the ledger; the others stand
    /// by. With `--shard`, each shard has its own election.
    #[arg(long, value_name = "URL", value_parser = parse_ha)]
    pub ha: Option<refinery_ha::HaUrl>,
    /// Lease time: a dead leader is replaced within it; a leader that cannot renew its lease
    /// stops acting after half of it (at least 2s).
    #[arg(long, default_value = "10s", value_parser = parse_lease, requires = "ha")]
    pub ha_lease: u64,
    /// This instance's name in the election [default: `<hostname>-<pid>`].
    #[arg(long, value_name = "ID", requires = "ha")]
    pub ha_id: Option<String>,
    #[command(flatten)]
    pub tls: HaTlsArgs,
}

/// TLS to etcd (`https://`), as `etcdctl --cacert --cert --key` takes it.
#[derive(Debug, Clone, Default, Args)]
pub struct HaTlsArgs {
    /// The CA that signed etcd's server certificate: speak TLS to etcd.
    #[arg(long, value_name = "FILE", requires = "ha")]
    pub ha_cacert: Option<PathBuf>,
    /// A client certificate for etcd (`--client-cert-auth`), with `--ha-key`.
    #[arg(long, value_name = "FILE", requires_all = ["ha_key", "ha_cacert"])]
    pub ha_cert: Option<PathBuf>,
    /// The client certificate's key.
    #[arg(long, value_name = "FILE", requires = "ha_cert")]
    pub ha_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also show the leader, its term and the standbys of this election
    /// (`etcd://HOST:PORT/PREFIX` or `k8s://CONTEXT/NAMESPACE/NAME`, as given to `refinery run --ha`).
    #[arg(long, value_name = "URL", value_parser = parse_ha)]
    pub ha: Option<refinery_ha::HaUrl>,
    /// Only the nodes shard I of N owns (`2/3`); with `--ha`, that shard's election.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<refinery_core::Shard>,
    #[command(flatten)]
    pub tls: HaTlsArgs,
}

/// `--ha`: an election URL.
fn parse_ha(s: &str) -> Result<refinery_ha::HaUrl, String> {
    s.parse()
}

/// `--ha-lease`: whole seconds, at least 2 (etcd's shortest lease; a Lease counts in seconds).
fn parse_lease(s: &str) -> Result<u64, String> {
    let ms = parse_since(s)?;
    if ms < 2000 || ms % 1000 != 0 {
        return Err(format!(
            "the lease must be whole seconds, at least 2s (etcd's shortest lease), not `{s}`"
        ));
    }
    Ok(ms)
}

#[derive(Debug, Args)]
pub struct NodesArgs {
    /// Only the nodes shard I of N owns (`2/3`), with a SHARD column.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<refinery_core::Shard>,
    /// Every node with the shard (of N) that owns it, in a SHARD column.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: Option<u32>,
}

/// A fault `refinery chaos` injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// SIGKILL through the engine.
    Kill,
    /// `docker stop`.
    Stop,
    /// `docker pause`.
    Pause,
    /// `docker rm -f`.
    Remove,
    /// An undeclared container next to the target.
    Rogue,
    /// Recreated by hand on another image (needs a second image; reported as skipped).
    Image,
    /// Recreated by hand with an extra environment variable.
    Env,
    /// Removed, and its declared host port held by another program (needs `fallback_ports`).
    Port,
}

impl Fault {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Stop => "stop",
            Fault::Pause => "pause",
            Fault::Remove => "remove",
            Fault::Rogue => "rogue",
            Fault::Image => "image",
            Fault::Env => "env",
            Fault::Port => "port",
        }
    }
}

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// How long to keep injecting faults (`60s`, `5m`).
    #[arg(long, default_value = "60s", value_parser = parse_since)]
    pub duration: u64,
    /// Seed of the random choices (the same seed makes the same run) [default: from the clock].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Which faults, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill,stop,pause,remove,rogue,env"
    )]
    pub faults: Vec<Fault>,
    /// A fault not healed within this long counts as a failure.
    #[arg(long, default_value = "30s", value_parser = parse_since)]
    pub heal_timeout: u64,
    /// Pause between faults (`1s`, `200ms`).
    #[arg(long, default_value = "500ms", value_parser = parse_since)]
    pub pause: u64,
    /// The daemon's state directory, to record the run in its ledger [default: `refinery/` in the
    /// git directory].
    #[arg(long, env = "REFINERY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The resource to act on again (`docker/lyra/container/web`).
    pub resource: String,
    /// The daemon's state directory [default: `refinery/` in the git directory].
    #[arg(long, env = "REFINERY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The revision to return to [default: the last healthy one].
    #[arg(long)]
    pub to: Option<String>,
    /// The daemon's state directory [default: `refinery/` in the git directory].
    #[arg(long, env = "REFINERY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Check the hash chain; name the first bad line and why.
    ///
    /// Exit codes: 0 chain intact, 5 chain broken.
    Verify(LedgerPathArgs),
    /// Print ledger entries as a table (or JSON with --json); `--node` filters by node.
    ///
    /// Views: `--kind drift` (drift events), `--kind rollback` (rollback actions), `--kind action`
    /// (everything Refinery did: births, deaths, mutations, rollbacks, other outcomes).
    Show(LedgerShowArgs),
    /// Append entries as fast as possible, printing each seq once it is fsynced (crash tests).
    #[command(hide = true)]
    AppendStress(LedgerStressArgs),
}

#[derive(Debug, Args)]
pub struct LedgerPathArgs {
    /// The ledger file [default: the manifest's `ledger.path` in the --repo work tree, else
    /// `ledger/container_ledger.jsonl`].
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// The ledger of shard I of N (`2/3`, as given to `refinery run --shard`): the manifest's
    /// `ledger.path` with `.shard-I-of-N` before the extension.
    #[arg(long, value_name = "I/N", conflicts_with = "path")]
    pub shard: Option<refinery_core::Shard>,
}

#[derive(Debug, Args)]
pub struct LedgerShowArgs {
    #[command(flatten)]
    pub path: LedgerPathArgs,
    /// Only entries from this long ago until now (`30m`, `1h`, `7d`).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<u64>,
    /// Only entries about this resource id (`docker/lyra/container/web`).
    #[arg(long)]
    pub resource: Option<String>,
    /// Only entries of this kind (repeatable); `action` covers every action kind.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Vec<refinery_core::ledger::EventKind>,
}

#[derive(Debug, Args)]
pub struct LedgerStressArgs {
    #[arg(long)]
    pub path: PathBuf,
    /// How many entries to append.
    #[arg(long, default_value_t = 1_000_000)]
    pub count: u64,
    /// Rotate the file past this size (`ledger.max_size`), e.g. `2KiB`.
    #[arg(long, value_parser = parse_max_size)]
    pub max_size: Option<u64>,
}

/// `--max-size`: a size in bytes, at least 1.
fn parse_max_size(s: &str) -> Result<u64, String> {
    match refinery_core::ledger::parse_size(s) {
        Ok(0) => Err("the maximum size must be at least 1 byte".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}; {}", refinery_core::ledger::SIZE_HINT)),
    }
}

/// `--since`: a duration in milliseconds.
fn parse_since(s: &str) -> Result<u64, String> {
    refinery_core::duration::parse_duration_ms(s)
        .map_err(|e| format!("{e}; {}", refinery_core::duration::duration_hint(s)))
}

/// `--kind`: one of the ledger's entry kinds.
fn parse_kind(s: &str) -> Result<refinery_core::ledger::EventKind, String> {
    s.parse().map_err(|e| {
        let kinds: Vec<&str> = refinery_core::ledger::EventKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        format!("{e}; expected one of {}", kinds.join(", "))
    })
}
