//! `refinery cleanup`: list what the inventory rules say is safe to delete; with `--apply`,
//! remove exactly that (never on a read-only node) and record each removal in the ledger.

use refinery_core::Outcome;
use refinery_core::inventory::{Item, cleanup_set};
use refinery_core::ledger::{ActionDetail, Event, Record};
use refinery_core::manifest::Mode;
use refinery_engine::inventory_actions::{Removal, cleanup};
use serde::Serialize;

use crate::args::CleanupArgs;
use crate::commands::audit::{audit_nodes, human_bytes, report_unreachable, state_dir};
use crate::commands::{ledger, load_desired};
use crate::error::CliError;
use crate::exit_code;
use crate::output;
use crate::render::{self, Styles};
use crate::settings::Settings;

/// Something a cleanup removes.
#[derive(Debug, Serialize)]
pub struct Candidate<'a> {
    node: &'a str,
    id: String,
    #[serde(flatten)]
    item: &'a Item,
}

/// What `cleanup` would remove, or removed.
#[derive(Debug, Serialize)]
pub struct CleanupReport<'a> {
    revision: &'a str,
    applied: bool,
    /// What a cleanup removes (before `--apply`: would remove).
    candidates: Vec<Candidate<'a>>,
    reclaimable_bytes: u64,
    /// Nodes left alone because they are read-only.
    read_only: Vec<&'a str>,
    unreachable: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    removals: Vec<RemovalReport>,
}

/// One removal's outcome.
#[derive(Debug, Serialize)]
pub struct RemovalReport {
    id: String,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// The ledger entry for one removal: `death` when it went, `action` (failed) when it did not.
fn record(node: &str, r: &Removal, revision: &str) -> Record {
    let detail = ActionDetail {
        step: "cleanup".to_owned(),
        message: Some(match &r.message {
            Some(m) => m.clone(),
            None => r.item.reason.clone(),
        }),
        container_id: match r.item.kind {
            refinery_core::inventory::Kind::Container => r.item.id.clone(),
            _ => None,
        },
    };
    let event = match r.outcome {
        Outcome::Removed => Event::Death(detail),
        _ => Event::Action(detail),
    };
    Record::new(event)
        .resource(r.item.resource_id(node))
        .node(node)
        .outcome(r.outcome)
        .revision(revision)
}

pub async fn run(settings: &Settings, args: &CleanupArgs) -> Result<u8, CliError> {
    let desired = load_desired(settings)?;
    let dir = state_dir(settings, args.state_dir.as_deref())?;
    let results = audit_nodes(settings, &desired, &dir).await?;
    report_unreachable(&results);
    let styles = settings.styles();
    let mut candidates = Vec::new();
    let mut read_only = Vec::new();
    for r in &results {
        let Ok(audit) = &r.audit else { continue };
        if audit.mode == Mode::ReadOnly {
            read_only.push(r.node.name.as_str());
            if !settings.quiet {
                eprintln!(
                    "node `{}` is read-only: nothing on it is removed",
                    r.node.name
                );
            }
        }
        for item in cleanup_set(audit) {
            candidates.push(Candidate {
                node: &r.node.name,
                id: item.resource_id(&r.node.name).to_string(),
                item,
            });
        }
    }
    let reclaimable: u64 = candidates.iter().map(|c| c.item.frees).sum();
    let unreachable: Vec<&str> = results
        .iter()
        .filter(|r| r.audit.is_err())
        .map(|r| r.node.name.as_str())
        .collect();
    let mut report = CleanupReport {
        revision: &desired.commit.id,
        applied: args.apply,
        candidates,
        reclaimable_bytes: reclaimable,
        read_only,
        unreachable,
        removals: Vec::new(),
    };

    if !settings.json {
        if report.candidates.is_empty() {
            eprintln!("nothing is safe to delete");
        } else {
            output::print(&render_candidates(&report, &styles))?;
            eprintln!(
                "{} resource{}, {} to free{}",
                report.candidates.len(),
                if report.candidates.len() == 1 {
                    ""
                } else {
                    "s"
                },
                human_bytes(Some(reclaimable)),
                if args.apply {
                    ""
                } else {
                    " (dry run: pass `--apply` to remove them)"
                }
            );
        }
    }

    let mut removals: Vec<(String, Removal)> = Vec::new();
    if args.apply && !report.candidates.is_empty() {
        // Before asking: a running daemon holding the ledger is said at once.
        let mut ledger_file =
            super::handover::open_beside_daemon(settings, &desired, args.state_dir.as_deref())?;
        if !args.yes {
            if !settings.interactive {
                return Err(CliError::NeedsYes);
            }
            let n = report.candidates.len();
            let noun = if n == 1 { "resource" } else { "resources" };
            if !super::confirm(&format!("remove {n} {noun}?"))? {
                eprintln!("nothing removed");
                return Ok(exit_code::OK);
            }
        }
        let bar = settings.progress.then(|| {
            let b =
                indicatif::ProgressBar::new(u64::try_from(report.candidates.len()).unwrap_or(0));
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        let on_done = |r: &Removal| {
            if let Some(b) = &bar {
                b.set_message(format!("{} {}", r.item.kind, r.item.name));
                b.inc(1);
            }
        };
        let mut recorded = Ok(Vec::new());
        for r in &results {
            let (Some(engine), Ok(audit)) = (&r.engine, &r.audit) else {
                continue;
            };
            let done = cleanup(engine, audit, &on_done).await;
            // Written and fsynced before the outcome is reported.
            let records: Vec<Record> = done
                .iter()
                .map(|d| record(&r.node.name, d, &desired.commit.id))
                .collect();
            if recorded.is_ok() {
                recorded = ledger_file.append(records, settings.now);
            }
            removals.extend(done.into_iter().map(|d| (r.node.name.clone(), d)));
        }
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        recorded?;
        ledger::commit_after_apply(settings, &desired, &ledger_file);
    }

    let any_failed = removals.iter().any(|(_, r)| r.outcome == Outcome::Failed);
    report.removals = removals
        .iter()
        .map(|(node, r)| RemovalReport {
            id: r.item.resource_id(node).to_string(),
            outcome: r.outcome,
            message: r.message.clone(),
        })
        .collect();
    if settings.json {
        output::json(&report)?;
    } else {
        output::print(&render_removals(&report, &styles))?;
    }
    Ok(if any_failed {
        exit_code::ACTION_FAILED
    } else if !report.unreachable.is_empty() {
        exit_code::UNREACHABLE
    } else {
        exit_code::OK
    })
}

/// `RESOURCE SIZE WHY`: what a cleanup removes (or would).
#[must_use]
pub fn render_candidates(r: &CleanupReport<'_>, _styles: &Styles) -> String {
    let rows = r
        .candidates
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                human_bytes(c.item.size),
                c.item.reason.clone(),
            ]
        })
        .collect();
    render::table(&["RESOURCE", "SIZE", "WHY"], rows)
}

/// One line per removal: `docker/lyra/image/tmp:1 removed`, with the message when there is one.
#[must_use]
pub fn render_removals(r: &CleanupReport<'_>, styles: &Styles) -> String {
    let mut out = String::new();
    for removal in &r.removals {
        out.push_str(&removal.id);
        out.push(' ');
        out.push_str(&styles.outcome(removal.outcome));
        if let Some(m) = &removal.message {
            out.push_str(&format!(" ({m})"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use refinery_core::inventory::{Class, Kind};

    use super::*;

    #[test]
    fn cleanup_renders_candidates_and_removals() {
        let image = Item {
            kind: Kind::Image,
            name: "tmp-build:1".into(),
            id: Some("sha256:0b1c".into()),
            class: Class::SafeToDelete,
            reason: "matches `inventory.safe_to_delete` `tmp-*`".into(),
            size: Some(1_500_000),
            frees: 1_500_000,
            used_by: Vec::new(),
            unused_since: None,
        };
        let volume = Item {
            kind: Kind::Volume,
            name: "tmp-scratch".into(),
            id: None,
            size: None,
            frees: 0,
            ..image.clone()
        };
        let report = CleanupReport {
            revision: "1ff767bb0c6e2a9d4f5b8c7e1a2b3c4d5e6f7a8b",
            applied: true,
            candidates: vec![
                Candidate {
                    node: "lyra",
                    id: image.resource_id("lyra").to_string(),
                    item: &image,
                },
                Candidate {
                    node: "lyra",
                    id: volume.resource_id("lyra").to_string(),
                    item: &volume,
                },
            ],
            reclaimable_bytes: 1_500_000,
            read_only: Vec::new(),
            unreachable: Vec::new(),
            removals: vec![
                RemovalReport {
                    id: image.resource_id("lyra").to_string(),
                    outcome: Outcome::Removed,
                    message: None,
                },
                RemovalReport {
                    id: volume.resource_id("lyra").to_string(),
                    outcome: Outcome::Failed,
                    message: Some("volume is in use".into()),
                },
            ],
        };
        let styles = Styles { color: false };
        insta::assert_snapshot!(format!(
            "{}---\n{}",
            render_candidates(&report, &styles),
            render_removals(&report, &styles)
        ));
    }
}
