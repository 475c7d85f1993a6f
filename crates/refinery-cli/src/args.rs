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
    after_help = "Exit codes: 0 ok / in sync, 1 unexpected error, 2 bad usage or invalid manifest, 3 drift found,\n4 an engine unreachable, 5 ledger chain broken, 6 an apply action failed."
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
    Status,
    /// Run the self-healing daemon in the foreground: watch engine events, poll the branch, and
    /// keep every node as the newest good commit says.
    ///
    /// Stops cleanly on SIGINT/SIGTERM (exit 0). Exit codes: 2 no loadable manifest at start,
    /// 5 ledger chain broken, 1 state directory unusable.
    Run(RunArgs),
    /// Lift flap protection from a resource, so the daemon acts on it again.
    Resume(ResumeArgs),
    /// Make the daemon enforce an older revision until a newer commit arrives.
    Rollback(RollbackArgs),
    /// Check and read the hash-chained ledger of everything that happened.
    ///
    /// Exit codes: 0 chain intact, 5 chain broken.
    Ledger(LedgerArgs),
    /// Alert channels (`alerting.channels`, `config.discord_webhook`).
    Alert(AlertArgs),
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
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
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
    /// How often to look for a new commit and for requests (`2s`, `500ms`).
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
