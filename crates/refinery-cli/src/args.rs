//! Command-line arguments: parsed and validated, nothing resolved yet.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keep Docker hosts exactly as a git commit says.
#[derive(Debug, Parser)]
#[command(name = "refinery", version, about, long_about = None, propagate_version = true)]
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
