//! `refinery`: keep Docker hosts exactly as a git commit says.

mod allocator;
mod args;
mod commands;
mod error;
mod exit_code;
mod gitops;
mod output;
mod render;
mod settings;
mod stack_scope;
mod web;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, LogFormat};
use crate::error::CliError;
use crate::settings::Settings;

fn main() -> ExitCode {
    // One crypto provider for every TLS client (webhooks, https fetch): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let settings = Settings::resolve(&cli.global);
    let daemon_log = match &cli.command {
        Command::Run(a) => Some(a.log_format),
        _ => None,
    };
    init_tracing(&settings, daemon_log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprint!("{}", render::error(&e, &[]));
            return ExitCode::from(exit_code::UNEXPECTED);
        }
    };
    let result: Result<u8, CliError> = runtime.block_on(async {
        match &cli.command {
            Command::Validate => commands::validate::run(&settings),
            Command::Plan(a) => commands::plan::run(&settings, a).await,
            Command::Apply(a) => commands::apply::run(&settings, a).await,
            Command::Status(a) => commands::status::run(&settings, a).await,
            Command::Run(a) => commands::run::run(&settings, a).await,
            Command::Chaos(a) => commands::chaos::run(&settings, a).await,
            Command::Resume(a) => commands::resume::resume(&settings, a),
            Command::Rollback(a) => commands::resume::rollback(&settings, a),
            Command::Ledger(a) => commands::ledger::run(&settings, a),
            Command::Nodes(args) => commands::nodes::run(&settings, args).await,
            Command::Audit(a) => commands::audit::run(&settings, a).await,
            Command::Cleanup(a) => commands::cleanup::run(&settings, a).await,
            Command::Alert(a) => commands::alert::run(&settings, a).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // The reader of stdout went away (`| head`): stop quietly, as ripgrep does.
        Err(e) if e.is_broken_pipe() => ExitCode::from(exit_code::OK),
        Err(e) => {
            if let CliError::Manifest(m) = &e {
                eprint!("{}", render::issues(m.issues(), "error"));
            }
            eprint!("{}", render::error(&e, &e.hints()));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Logs go to stderr. The daemon logs at `info` by default, in the format asked for.
fn init_tracing(settings: &Settings, daemon: Option<LogFormat>) {
    let level = if settings.quiet {
        "error"
    } else {
        match settings.verbose {
            0 if daemon.is_some() => "info",
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REFINERY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match daemon {
        Some(LogFormat::Json) => builder.json().flatten_event(true).try_init(),
        Some(LogFormat::Text) => builder.with_ansi(settings.color).try_init(),
        None => builder.try_init(),
    };
}
