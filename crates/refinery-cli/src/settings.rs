//! Resolved settings: environment, TTY, color and time decided once, here (ripgrep's low and
//! high arguments: `args.rs` only parses and validates, this resolves). Nothing else in the CLI
//! reads the environment, asks whether a stream is a terminal or reads the clock for a command.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use refinery_ha::{EtcdTls, HaUrl};

use crate::args::{ColorChoice, GlobalArgs, HaTlsArgs};
use crate::error::CliError;
use crate::render::Styles;

#[derive(Debug, Clone)]
pub struct Settings {
    pub repo: PathBuf,
    pub rev: String,
    pub nodes: Vec<String>,
    /// `--shard I/N` (`run`, `nodes`): only the nodes this shard owns.
    pub shard: Option<refinery_core::Shard>,
    pub json: bool,
    pub verbose: u8,
    pub quiet: bool,
    pub color: bool,
    /// stdin and stderr are terminals (prompts, progress bars).
    pub interactive: bool,
    /// Progress bars: stderr a terminal, not CI, not JSON, not verbose or quiet.
    pub progress: bool,
    pub now: jiff::Timestamp,
    /// The environment as it was at start.
    pub env: Environment,
}

/// The environment, read once at start ([`Environment::capture`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `NO_COLOR` set and not empty: no color unless `--color always`.
    pub no_color: bool,
    /// `CI` set: no progress bars.
    pub ci: bool,
    /// `DOCKER_HOST` (not blank): the engine of nodes without `docker:`.
    pub docker_host: Option<String>,
    /// `KUBECONFIG`: the kubeconfig files of `kubernetes:` sources and `--ha k8s://`.
    pub kubeconfig: Option<OsString>,
    /// `REFINERY_STATUS_TOKEN`: the bearer token of `run --listen` without `--token-file`.
    pub status_token: Option<String>,
    /// `REFINERY_SELF_CONTAINER`: the id of the container Refinery runs in.
    pub self_container: Option<String>,
    /// `REFINERY_CONTENT_DIR`: where content-tracked mounts are copied.
    pub content_dir: Option<PathBuf>,
    /// Every variable with a UTF-8 name and value, for `${VAR}` in the manifest.
    pub vars: BTreeMap<String, String>,
}

impl Settings {
    /// The nodes a command works on (`--node`, `--shard`) and the time it decides at.
    #[must_use]
    pub fn selection(&self) -> refinery_controller::node_pass::Selection<'_> {
        refinery_controller::node_pass::Selection {
            repo: &self.repo,
            nodes: &self.nodes,
            shard: self.shard,
            now: self.now,
            suspended: &refinery_controller::node_pass::NOTHING_SUSPENDED,
            rejected: &refinery_controller::node_pass::NOTHING_REJECTED,
        }
    }
}

impl Environment {
    /// Reads the process's environment.
    #[must_use]
    pub fn capture() -> Environment {
        let vars: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Environment {
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            ci: std::env::var_os("CI").is_some(),
            docker_host: vars
                .get("DOCKER_HOST")
                .filter(|h| !h.trim().is_empty())
                .cloned(),
            kubeconfig: std::env::var_os("KUBECONFIG"),
            status_token: vars.get("REFINERY_STATUS_TOKEN").cloned(),
            self_container: vars.get("REFINERY_SELF_CONTAINER").cloned(),
            content_dir: std::env::var_os("REFINERY_CONTENT_DIR").map(PathBuf::from),
            vars,
        }
    }
}

/// Which standard streams are terminals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Terminals {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Terminals {
    #[must_use]
    pub fn detect() -> Terminals {
        Terminals {
            stdin: std::io::stdin().is_terminal(),
            stdout: std::io::stdout().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
        }
    }
}

impl Settings {
    /// How output is styled: color as resolved once from `--color`, the TTY and `NO_COLOR`.
    #[must_use]
    pub fn styles(&self) -> Styles {
        Styles { color: self.color }
    }

    /// Resolves the global flags against this process's environment, terminals and clock.
    #[must_use]
    pub fn resolve(g: &GlobalArgs) -> Settings {
        Settings::from_parts(
            g,
            Environment::capture(),
            Terminals::detect(),
            jiff::Timestamp::now(),
        )
    }

    /// Resolves the global flags against `env`, `ttys` and `now` (no I/O).
    #[must_use]
    pub fn from_parts(
        g: &GlobalArgs,
        env: Environment,
        ttys: Terminals,
        now: jiff::Timestamp,
    ) -> Settings {
        let color = match g.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => ttys.stdout && !env.no_color,
        };
        Settings {
            repo: g.repo.clone(),
            rev: g.rev.clone(),
            nodes: g.node.clone(),
            shard: None,
            json: g.json,
            verbose: g.verbose,
            quiet: g.quiet,
            color,
            interactive: ttys.stdin && ttys.stderr,
            progress: ttys.stderr && !env.ci && !g.json && g.verbose == 0 && !g.quiet,
            now,
            env,
        }
    }

    /// The engine endpoint of a node without `docker:`: `DOCKER_HOST`, else the default socket.
    #[must_use]
    pub fn default_docker_endpoint(&self) -> String {
        self.env
            .docker_host
            .clone()
            .unwrap_or_else(|| refinery_docker::DEFAULT_ENDPOINT.to_owned())
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::Cli;

    fn settings(args: &[&str], env: Environment, ttys: Terminals) -> Settings {
        let mut argv = vec!["refinery"];
        argv.extend_from_slice(args);
        argv.push("validate");
        let cli = Cli::try_parse_from(argv).expect("valid arguments");
        Settings::from_parts(&cli.global, env, ttys, jiff::Timestamp::UNIX_EPOCH)
    }

    const ALL_TTYS: Terminals = Terminals {
        stdin: true,
        stdout: true,
        stderr: true,
    };

    #[test]
    fn color_auto_follows_stdout_and_no_color_always_and_never_do_not() {
        let no_color = Environment {
            no_color: true,
            ..Environment::default()
        };
        assert!(settings(&[], Environment::default(), ALL_TTYS).color);
        assert!(!settings(&[], no_color.clone(), ALL_TTYS).color);
        let piped = Terminals {
            stdout: false,
            ..ALL_TTYS
        };
        assert!(!settings(&[], Environment::default(), piped).color);
        assert!(settings(&["--color", "always"], no_color, piped).color);
        assert!(!settings(&["--color", "never"], Environment::default(), ALL_TTYS).color);
    }

    #[test]
    fn progress_only_on_a_terminal_outside_ci_without_json_or_verbosity() {
        let ci = Environment {
            ci: true,
            ..Environment::default()
        };
        assert!(settings(&[], Environment::default(), ALL_TTYS).progress);
        assert!(!settings(&[], ci, ALL_TTYS).progress);
        assert!(!settings(&["--json"], Environment::default(), ALL_TTYS).progress);
        assert!(!settings(&["-v"], Environment::default(), ALL_TTYS).progress);
        assert!(!settings(&["-q"], Environment::default(), ALL_TTYS).progress);
        let no_stderr = Terminals {
            stderr: false,
            ..ALL_TTYS
        };
        assert!(!settings(&[], Environment::default(), no_stderr).progress);
        assert!(!settings(&[], Environment::default(), no_stderr).interactive);
    }

    #[test]
    fn docker_endpoint_defaults_to_docker_host_then_the_socket() {
        let s = settings(&[], Environment::default(), ALL_TTYS);
        assert_eq!(
            s.default_docker_endpoint(),
            refinery_docker::DEFAULT_ENDPOINT
        );
        let env = Environment {
            docker_host: Some("tcp://10.0.0.2:2376".into()),
            ..Environment::default()
        };
        let s = settings(&[], env, ALL_TTYS);
        assert_eq!(s.default_docker_endpoint(), "tcp://10.0.0.2:2376");
    }
}
