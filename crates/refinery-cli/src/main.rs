//! `refinery`: keep Docker hosts exactly as a git commit says.

mod args;
mod commands;
mod desired;
mod engines;
mod error;
mod exit_code;
mod ledger_commit;
mod ledger_file;
mod pass;
mod render;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::error::CliError;
use crate::settings::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = Settings::resolve(&cli.global);
    init_tracing(&settings);
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
            Command::Status => commands::status::run(&settings).await,
            Command::Ledger(a) => commands::ledger::run(&settings, a),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let CliError::Manifest(m) = &e {
                eprint!("{}", render::issues(m.issues(), "error"));
            }
            eprint!("{}", render::error(&e, &e.hints()));
            ExitCode::from(e.exit_code())
        }
    }
}

fn init_tracing(settings: &Settings) {
    let level = if settings.quiet {
        "error"
    } else {
        match settings.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REFINERY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
