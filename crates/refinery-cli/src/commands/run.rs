//! `refinery run`

use crate::args::RunArgs;
use crate::daemon;
use crate::error::CliError;
use crate::settings::Settings;

pub async fn run(settings: &Settings, args: &RunArgs) -> Result<u8, CliError> {
    let mut settings = settings.clone();
    settings.shard = args.shard;
    settings.max_concurrent_nodes = usize::from(args.max_concurrent_nodes);
    daemon::run(&settings, args).await
}
