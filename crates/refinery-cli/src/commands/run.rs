//! `refinery run`: resolves the settings, builds the controller with real adapters (the hub as
//! its reporter: alert channels, metrics, the status page; the election with `--ha`), and runs it
//! until SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use refinery_controller::node_engines::DockerConnector;
use refinery_controller::ports::SystemClock;
use refinery_controller::{Boot, Controller, ControllerOptions};
use refinery_ha::{HaUrl, Leadership};

use crate::args::{HaArgs, RunArgs};
use crate::error::CliError;
use crate::exit_code;
use crate::gitops::GitopsHook;
use crate::settings::Settings;

pub async fn run(settings: &Settings, args: &RunArgs) -> Result<u8, CliError> {
    let options = ControllerOptions {
        repo: settings.repo.clone(),
        nodes: settings.nodes.clone(),
        shard: args.shard,
        max_concurrent_nodes: usize::from(args.max_concurrent_nodes),
        state_dir: args.state_dir.clone(),
        check_interval_ms: args.check_interval,
        poll_interval_ms: args.poll_interval,
        event_backlog: u64::from(args.event_backlog),
    };
    let clock = Arc::new(SystemClock);
    // What is followed, webhooks and sync requests, commit statuses (issue 25).
    let mut gitops = GitopsHook::start(settings, args, args.shard)?;
    let routes = gitops.take_routes();
    let boot = Boot::load(options, Box::new(gitops))?;
    // With `--ha`, the ledger (and its writer lock) is opened on being elected.
    let ha = match &args.ha.ha {
        Some(url) => Some(start_ha(&url.for_shard(args.shard), &args.ha)?),
        None => None,
    };
    let boot = match ha {
        Some(_) => boot,
        None => boot.open_ledger(jiff::Timestamp::now())?,
    };
    let hub = crate::web::start_reporter(
        settings,
        args,
        &boot.desired().manifest,
        boot.state(),
        routes,
    )
    .await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| CliError::Io {
            action: "listen for SIGTERM".into(),
            source,
        })?;
    // Every node's engine through the Docker adapter (`tls:` paths relative to the repository).
    let engines = Box::new(DockerConnector::new(&settings.repo));
    let controller = Controller::new(boot, engines, ha, Box::new(hub), clock);
    let signal = async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    };
    controller.run(signal).await;
    Ok(exit_code::OK)
}

/// Starts campaigning (a TLS file that cannot be used is a usage error).
fn start_ha(url: &HaUrl, args: &HaArgs) -> Result<Leadership, CliError> {
    let tls = crate::settings::etcd_tls(&args.tls, url)?;
    let id = args.ha_id.clone().unwrap_or_else(refinery_ha::default_id);
    let lease = Duration::from_millis(args.ha_lease);
    tracing::info!(ha = %url, id = %id, lease_secs = lease.as_secs(), "campaigning for leadership");
    Ok(Leadership::start(url, tls, lease, id))
}
