//! `refinery cleanup`: list what the inventory rules say is safe to delete; with `--apply`,
//! remove exactly that (never on a read-only node) and record each removal in the ledger.

use refinery_core::Outcome;
use refinery_core::inventory::{Item, cleanup_set};
use refinery_core::ledger::{ActionDetail, Event, Record};
use refinery_core::manifest::Mode;
use refinery_engine::inventory::{Removal, cleanup};
use serde::Serialize;

use crate::args::CleanupArgs;
use crate::commands::audit::{audit_nodes, human_bytes, report_unreachable, state_dir};
use crate::commands::{ledger, load_desired};
use crate::error::CliError;
use crate::exit_code;
use crate::render::{self, Styles};
use crate::settings::Settings;

#[derive(Serialize)]
struct Candidate<'a> {
    node: &'a str,
    id: String,
    #[serde(flatten)]
    item: &'a Item,
}

#[derive(Serialize)]
struct CleanupReport<'a> {
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

#[derive(Serialize)]
struct RemovalReport {
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
    let styles = Styles {
        color: settings.color,
    };
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

    if !settings.json {
        if candidates.is_empty() {
            eprintln!("nothing is safe to delete");
        } else {
            let rows = candidates
                .iter()
                .map(|c| {
                    vec![
                        c.id.clone(),
                        human_bytes(c.item.size),
                        c.item.reason.clone(),
                    ]
                })
                .collect();
            print!("{}", render::table(&["RESOURCE", "SIZE", "WHY"], rows));
            eprintln!(
                "{} resource{}, {} to free{}",
                candidates.len(),
                if candidates.len() == 1 { "" } else { "s" },
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
    if args.apply && !candidates.is_empty() {
        // Before asking: a running daemon holding the ledger is said at once.
        let mut ledger_file =
            super::handover::open_beside_daemon(settings, &desired, args.state_dir.as_deref())?;
        if !args.yes {
            if !settings.interactive {
                return Err(CliError::NeedsYes);
            }
            let n = candidates.len();
            let noun = if n == 1 { "resource" } else { "resources" };
            if !super::confirm(&format!("remove {n} {noun}?"))? {
                eprintln!("nothing removed");
                return Ok(exit_code::OK);
            }
        }
        let bar = settings.progress.then(|| {
            let b = indicatif::ProgressBar::new(u64::try_from(candidates.len()).unwrap_or(0));
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
    if settings.json {
        let report = CleanupReport {
            revision: &desired.commit.id,
            applied: args.apply,
            candidates,
            reclaimable_bytes: reclaimable,
            read_only,
            unreachable: unreachable.clone(),
            removals: removals
                .iter()
                .map(|(node, r)| RemovalReport {
                    id: r.item.resource_id(node).to_string(),
                    outcome: r.outcome,
                    message: r.message.clone(),
                })
                .collect(),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for (node, r) in &removals {
            match &r.message {
                Some(m) => println!(
                    "{} {} ({m})",
                    r.item.resource_id(node),
                    styles.outcome(r.outcome)
                ),
                None => println!("{} {}", r.item.resource_id(node), styles.outcome(r.outcome)),
            }
        }
    }
    Ok(if any_failed {
        exit_code::ACTION_FAILED
    } else if !unreachable.is_empty() {
        exit_code::UNREACHABLE
    } else {
        exit_code::OK
    })
}
