//! `refinery resume ID` and `refinery rollback [--to REV]`: requests to the running daemon.

use std::path::{Path, PathBuf};

use refinery_core::ResourceId;
use refinery_store::request_queue::{self as requests, Request};

use crate::args::{ResumeArgs, RollbackArgs};
use crate::error::CliError;
use crate::exit_code;
use crate::settings::Settings;
use refinery_controller::default_state_dir;

pub fn state_dir(settings: &Settings, given: Option<&Path>) -> Result<PathBuf, CliError> {
    match given {
        Some(d) => Ok(d.to_owned()),
        None => Ok(default_state_dir(&settings.repo)?),
    }
}

fn submit(settings: &Settings, dir: &Path, request: &Request, what: &str) -> Result<u8, CliError> {
    requests::submit(dir, request).map_err(|source| CliError::Io {
        action: format!("queue the request in `{}`", dir.display()),
        source,
    })?;
    if !settings.quiet {
        eprintln!(
            "{what}: requested; the daemon using `{}` carries it out within its poll interval",
            dir.display()
        );
    }
    Ok(exit_code::OK)
}

pub fn resume(settings: &Settings, args: &ResumeArgs) -> Result<u8, CliError> {
    let id: ResourceId = args.resource.parse().map_err(|_| CliError::BadResourceId {
        given: args.resource.clone(),
    })?;
    let dir = state_dir(settings, args.state_dir.as_deref())?;
    let request = Request::Resume {
        resource: id.to_string(),
    };
    submit(settings, &dir, &request, &format!("resume `{id}`"))
}

pub fn rollback(settings: &Settings, args: &RollbackArgs) -> Result<u8, CliError> {
    let dir = state_dir(settings, args.state_dir.as_deref())?;
    let to = match &args.to {
        // Fail now on a revision that does not exist, not later in the daemon's log.
        Some(rev) => Some(
            refinery_git::GitSource::open(&settings.repo)?
                .resolve(rev)?
                .id,
        ),
        None => None,
    };
    let what = match &to {
        Some(rev) => format!("rollback to `{}`", &rev[..rev.len().min(12)]),
        None => "rollback to the last healthy revision".to_owned(),
    };
    submit(settings, &dir, &Request::Rollback { to }, &what)
}
