//! Resolved settings: environment, TTY, color and time decided once, here.

use std::io::IsTerminal;
use std::path::PathBuf;

use refinery_ha::{EtcdTls, HaUrl};

use crate::args::{ColorChoice, GlobalArgs, HaTlsArgs};
use crate::error::CliError;

#[derive(Debug, Clone)]
pub struct Settings {
    pub repo: PathBuf,
    pub rev: String,
    pub nodes: Vec<String>,
    /// `--shard I/N` (`run`, `nodes`): only the nodes this shard owns.
    pub shard: Option<refinery_core::Shard>,
    /// `--max-concurrent-nodes` (`run`): how many nodes a pass observes at once.
    pub max_concurrent_nodes: usize,
    pub json: bool,
    pub verbose: u8,
    pub quiet: bool,
    pub color: bool,
    /// stdin and stderr are terminals (prompts, progress bars).
    pub interactive: bool,
    /// Progress bars: interactive, not CI, not JSON, not verbose.
    pub progress: bool,
    pub now: jiff::Timestamp,
}

impl Settings {
    #[must_use]
    pub fn resolve(g: &GlobalArgs) -> Settings {
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match g.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_tty && !no_color,
        };
        let ci = std::env::var_os("CI").is_some();
        let interactive = std::io::stdin().is_terminal() && stderr_tty;
        Settings {
            repo: g.repo.clone(),
            rev: g.rev.clone(),
            nodes: g.node.clone(),
            shard: None,
            max_concurrent_nodes: usize::from(crate::args::DEFAULT_MAX_CONCURRENT_NODES),
            json: g.json,
            verbose: g.verbose,
            quiet: g.quiet,
            color,
            interactive,
            progress: stderr_tty && !ci && !g.json && g.verbose == 0 && !g.quiet,
            now: jiff::Timestamp::now(),
        }
    }
}

/// TLS to etcd for `url` from `--ha-cacert`, `--ha-cert`, `--ha-key`: `None` without them; a
/// usage error when a file cannot be read or is not PEM, or when they are given for a Lease.
pub fn etcd_tls(args: &HaTlsArgs, url: &HaUrl) -> Result<Option<EtcdTls>, CliError> {
    EtcdTls::load(
        url,
        args.ha_cacert.as_deref(),
        args.ha_cert.as_deref(),
        args.ha_key.as_deref(),
    )
    .map_err(|e| CliError::BadHaTls {
        flag: e.flag,
        message: e.message,
    })
}
