//! Finishing or undoing a recreate that a crash or a kill interrupted.

use refinery_core::{ContainerRuntime, ContainerState, Observed};

use crate::apply::recreate_temp_name;

/// What recovery did about one set-aside container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The replacement runs: the set-aside old container was removed.
    Finished { name: String },
    /// The replacement never got running: it was removed and the old container put back.
    Undone { name: String },
    /// Recovery itself failed; the next pass sees the leftover as drift.
    Failed { name: String, error: String },
}

/// For every `NAME.refinery-old` container (a recreate set it aside and did not finish): if
/// `NAME` runs, the recreate is finished by removing the old one; otherwise the half-made
/// replacement (if any) is removed and the old container renamed back and started.
pub async fn recover_interrupted<R: ContainerRuntime>(
    rt: &R,
    observed: &Observed,
) -> Vec<Recovered> {
    let mut done = Vec::new();
    for old in &observed.containers {
        let Some(name) = old.name.strip_suffix(&recreate_temp_name("")) else {
            continue;
        };
        let name = name.to_owned();
        let replacement = observed.container(&name);
        let result = match replacement {
            Some(new) if new.state == ContainerState::Running => rt
                .remove(&old.id)
                .await
                .map(|()| Recovered::Finished { name: name.clone() }),
            _ => {
                let undo = async {
                    if let Some(new) = replacement {
                        rt.remove(&new.id).await?;
                    }
                    rt.rename(&old.id, &name).await?;
                    rt.start(&old.id).await
                };
                undo.await
                    .map(|()| Recovered::Undone { name: name.clone() })
            }
        };
        done.push(result.unwrap_or_else(|e| Recovered::Failed {
            name,
            error: e.to_string(),
        }));
    }
    done
}
