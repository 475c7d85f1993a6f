//! Finishing or undoing a recreate that a crash or a kill interrupted.

use refinery_core::{ContainerRuntime, ContainerState, Observed};

use crate::apply::{recreate_temp_name, start_first_temp_name};

/// What recovery did about one interrupted replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The replacement runs: the set-aside old container was removed (or the start-first
    /// replacement took the name).
    Finished { name: String },
    /// The replacement never got running: it was removed and the old container put back.
    Undone { name: String },
    /// Recovery itself failed; the next pass sees the leftover as drift.
    Failed { name: String, error: String },
}

/// Whether `name` is a container an interrupted replacement left under a temporary name
/// (`NAME.refinery-old`, `NAME.refinery-new`); returns `NAME`.
#[must_use]
pub fn interrupted_base(name: &str) -> Option<&str> {
    name.strip_suffix(&recreate_temp_name(""))
        .or_else(|| name.strip_suffix(&start_first_temp_name("")))
}

/// Finishes or undoes every replacement a crash interrupted.
///
/// Stop-first (`NAME.refinery-old`, the old container set aside): if `NAME` runs, the recreate
/// is finished by removing the old one; otherwise the half-made replacement (if any) is removed
/// and the old container renamed back and started.
///
/// Start-first (`NAME.refinery-new`, the new container started beside the old one): while the
/// old `NAME` runs, the new one is removed (the next pass replaces it again); if the old one is
/// gone, or stopped while the new one runs, the replacement is finished: the old one removed,
/// the new one renamed `NAME` and started.
pub async fn recover_interrupted<R: ContainerRuntime>(
    rt: &R,
    observed: &Observed,
) -> Vec<Recovered> {
    let mut done = Vec::new();
    for leftover in &observed.containers {
        let (name, result) = if let Some(name) = leftover.name.strip_suffix(&recreate_temp_name(""))
        {
            (name, finish_stop_first(rt, observed, leftover, name).await)
        } else if let Some(name) = leftover.name.strip_suffix(&start_first_temp_name("")) {
            (name, finish_start_first(rt, observed, leftover, name).await)
        } else {
            continue;
        };
        done.push(result.unwrap_or_else(|e| Recovered::Failed {
            name: name.to_owned(),
            error: e.to_string(),
        }));
    }
    done
}

async fn finish_stop_first<R: ContainerRuntime>(
    rt: &R,
    observed: &Observed,
    old: &refinery_core::ObservedContainer,
    name: &str,
) -> refinery_core::runtime::RuntimeResult<Recovered> {
    let replacement = observed.container(name);
    match replacement {
        Some(new) if new.state == ContainerState::Running => {
            rt.remove(&old.id).await?;
            Ok(Recovered::Finished {
                name: name.to_owned(),
            })
        }
        _ => {
            if let Some(new) = replacement {
                rt.remove(&new.id).await?;
            }
            rt.rename(&old.id, name).await?;
            rt.start(&old.id).await?;
            Ok(Recovered::Undone {
                name: name.to_owned(),
            })
        }
    }
}

async fn finish_start_first<R: ContainerRuntime>(
    rt: &R,
    observed: &Observed,
    new: &refinery_core::ObservedContainer,
    name: &str,
) -> refinery_core::runtime::RuntimeResult<Recovered> {
    let new_runs = new.state == ContainerState::Running;
    match observed.container(name) {
        Some(old) if old.state == ContainerState::Running || !new_runs => {
            rt.remove(&new.id).await?;
            rt.start(&old.id).await?;
            Ok(Recovered::Undone {
                name: name.to_owned(),
            })
        }
        old => {
            if let Some(old) = old {
                rt.remove(&old.id).await?;
            }
            rt.rename(&new.id, name).await?;
            rt.start(&new.id).await?;
            Ok(Recovered::Finished {
                name: name.to_owned(),
            })
        }
    }
}
