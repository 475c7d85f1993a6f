//! `refinery apply`

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use refinery_core::{Outcome, ResourceId, StepKind};
use refinery_engine::{ApplyEvent, StepResult, apply_plan};
use refinery_store::request_queue::StepOutcome;
use serde::Serialize;

use crate::args::ApplyArgs;
use crate::commands::handover::{self, Writer};
use crate::commands::plan::{render_plan, report, report_unreachable};
use crate::commands::{ledger, load_desired};
use crate::error::CliError;
use crate::exit_code;
use crate::render::Styles;
use crate::settings::Settings;
use refinery_controller::node_pass as pass;
use refinery_docker::DockerRuntime;

#[derive(Serialize)]
struct ApplyReport<'a> {
    revision: &'a str,
    results: &'a [StepOutcome],
    unchanged: &'a [String],
    unreachable: &'a [String],
}

pub async fn run(settings: &Settings, args: &ApplyArgs) -> Result<u8, CliError> {
    let desired = load_desired(settings)?;
    // An image update the daemon rolled back is not tried again until its tag moves.
    let rejected =
        refinery_controller::daemon_rejected_updates(&settings.repo, args.state_dir.as_deref());
    let selection = pass::Selection {
        rejected: &rejected,
        ..settings.selection()
    };
    let mut passes = pass::run(&desired, &selection).await?;
    if let Some(stack) = &args.stack {
        crate::stack_scope::retain_stack(&mut passes, &desired.manifest, stack)?;
    }
    super::plan::check_externals(&passes, &desired.manifest)?;
    // `--stack` scopes apply to one compose stack: no Kubernetes source is touched then.
    let kube = if args.stack.is_some() {
        Vec::new()
    } else {
        refinery_controller::kube_sources::run(
            &desired,
            &settings.repo,
            settings.now,
            &refinery_controller::node_pass::NOTHING_SUSPENDED,
        )
        .await
    };
    // When `refinery run` holds the ledger, it does the work (see `handover.rs`).
    let writer = handover::open_or_daemon(settings, &desired, args.state_dir.as_deref())?;
    report_unreachable(&passes);
    refinery_controller::kube_sources::report_errors(&kube);
    let styles = Styles {
        color: settings.color,
    };
    let mut plan_report = report(&desired.commit.id, &passes, &desired.manifest);
    plan_report.add_kube(&kube, &desired.manifest);
    let writes: usize = plan_report
        .nodes
        .iter()
        .map(|n| n.steps.iter().filter(|s| s.kind.writes()).count())
        .sum();
    if !settings.json {
        eprint!("{}", render_plan(&plan_report, false, styles));
    }
    if writes > 0 && !args.yes {
        if !settings.interactive {
            return Err(CliError::NeedsYes);
        }
        let noun = if writes == 1 { "change" } else { "changes" };
        if !super::confirm(&format!("apply {writes} {noun}?"))? {
            eprintln!("nothing applied");
            return Ok(exit_code::OK);
        }
    }
    // The nodes this apply could not reach; handed to a daemon, also those the daemon could not.
    let mut unreachable: Vec<String> = plan_report
        .nodes
        .iter()
        .filter(|n| !n.reachable)
        .map(|n| n.node.to_owned())
        .collect();
    let mut ledger_file = match writer {
        Writer::Own(file) => file,
        Writer::Daemon { daemon, state_dir } => {
            let timeout = Duration::from_millis(args.timeout);
            let done =
                handover::hand_over(settings, &daemon, &state_dir, &desired.commit.id, timeout)
                    .await?;
            // What this apply covers: its nodes; with `--stack`, that stack's resources.
            let nodes: BTreeSet<&str> = passes.iter().map(|p| p.node.name.as_str()).collect();
            let ids: BTreeSet<String> = passes
                .iter()
                .filter_map(|p| p.result.as_ref().ok())
                .flat_map(|(_, e)| {
                    e.report
                        .in_sync
                        .iter()
                        .chain(e.plan.steps.iter().map(|s| &s.id))
                })
                .map(ToString::to_string)
                .collect();
            let covers = |id: &String| match &args.stack {
                Some(_) => ids.contains(id),
                None => id
                    .parse::<ResourceId>()
                    .is_ok_and(|r| nodes.contains(r.node())),
            };
            for n in done.unreachable {
                if nodes.contains(n.as_str()) && !unreachable.contains(&n) {
                    unreachable.push(n);
                }
            }
            let results: Vec<_> = done.results.into_iter().filter(|r| covers(&r.id)).collect();
            let unchanged: Vec<_> = done.unchanged.into_iter().filter(covers).collect();
            print_outcome(
                settings,
                styles,
                &desired.commit.id,
                &results,
                &unchanged,
                &unreachable,
            )?;
            return Ok(exit_for(
                refinery_controller::kube_sources::any_invalid(&kube),
                &results,
                &unreachable,
            ));
        }
    };
    let bar = settings.progress.then(|| {
        let b = indicatif::ProgressBar::new(u64::try_from(writes).unwrap_or(0));
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let pulls = Mutex::new(std::collections::BTreeSet::new());
    let on_event = |ev: ApplyEvent| match ev {
        ApplyEvent::Started { id, kind } => {
            if let Some(b) = &bar {
                b.set_message(format!("{kind} {id}"));
            }
        }
        ApplyEvent::Pulling { image, progress } => {
            if let Ok(mut seen) = pulls.lock()
                && seen.insert(image.clone())
                && !settings.quiet
            {
                eprintln!("pulling `{image}`…");
            }
            if let Some(b) = &bar {
                b.set_message(format!(
                    "pull {image}: {} {}/{}",
                    progress.status, progress.current, progress.total
                ));
            }
        }
        ApplyEvent::Finished(r) => {
            if let Some(b) = &bar
                && r.step.writes()
            {
                b.inc(1);
            }
        }
    };
    let mut unchanged = Vec::new();
    let mut per_node = Vec::new();
    for p in &passes {
        let (Some(engine), Ok((observed, eval))) = (&p.engine, &p.result) else {
            continue;
        };
        unchanged.extend(eval.report.in_sync.iter().map(ToString::to_string));
        let steps: Vec<_> = eval
            .plan
            .steps
            .iter()
            .filter(|s| s.kind != StepKind::Ignore)
            .cloned()
            .collect();
        per_node.push((engine, observed, steps));
    }
    // `pull_policy: daily | weekly | every_…`: what the daemon last pulled (it keeps the times).
    let pulled = refinery_controller::pull_refresh::daemon_pulled_times(
        &settings.repo,
        args.state_dir.as_deref(),
    );
    let pulled = &pulled;
    let on_event = &on_event;
    let manifest = &desired.manifest;
    let revision = desired.commit.id.as_str();
    // Every node at once: a slow node does not hold up the others.
    let mut results: Vec<StepResult> = futures_util::future::join_all(per_node.iter().map(
        |(engine, observed, steps)| async move {
            // Images refreshed before the containers made from them are created or replaced.
            refinery_controller::pull_refresh::refresh_for_steps(
                *engine,
                manifest,
                steps,
                observed,
                pulled,
                settings.now,
                on_event,
            )
            .await;
            apply_plan(*engine, manifest, steps, observed, revision, on_event).await
        },
    ))
    .await
    .into_iter()
    .flatten()
    .collect();
    for p in &kube {
        if let Ok(eval) = &p.result {
            unchanged.extend(eval.report.in_sync.iter().map(ToString::to_string));
        }
    }
    results.extend(refinery_controller::kube_sources::execute(&kube, settings.now).await);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // Written and fsynced before any outcome is reported.
    let drifts: Vec<_> = passes
        .iter()
        .filter_map(|p| p.result.as_ref().ok())
        .flat_map(|(_, e)| &e.report.drifts)
        .chain(
            kube.iter()
                .filter_map(|p| p.result.as_ref().ok())
                .flat_map(|e| &e.report.drifts),
        )
        .filter(|d| d.counts())
        .collect();
    let recorded = ledger::record_apply(
        &mut ledger_file,
        &desired,
        &drifts,
        &results,
        &kube,
        settings.now,
    );
    if args.stack.is_none() {
        collect_content(settings, &desired, &passes, &results);
    }
    let results: Vec<StepOutcome> = results
        .iter()
        .map(refinery_controller::ledger_records::step_outcome)
        .collect();
    let printed = print_outcome(
        settings,
        styles,
        &desired.commit.id,
        &results,
        &unchanged,
        &unreachable,
    );
    recorded?;
    ledger::commit_after_apply(settings, &desired, &ledger_file);
    // What was done is recorded even when the reader of stdout went away.
    printed?;
    Ok(exit_for(
        refinery_controller::kube_sources::any_invalid(&kube),
        &results,
        &unreachable,
    ))
}

/// Removes the content copies no container uses any more (see
/// [`refinery_controller::content_copies::collect_garbage`]), when this apply saw every node.
fn collect_content(
    settings: &Settings,
    desired: &refinery_controller::desired::Desired,
    passes: &[pass::NodePass<'_, DockerRuntime>],
    results: &[StepResult],
) {
    if !settings.nodes.is_empty() {
        return;
    }
    let acted: Vec<_> = results.iter().map(|r| (r.id.clone(), r.outcome)).collect();
    let root = &desired.content_root;
    let seen = refinery_controller::node_pass::mounts_of(passes);
    match refinery_controller::content_copies::collect_after(
        &desired.manifest,
        root,
        seen.as_deref(),
        &acted,
    ) {
        Some(Ok(removed)) if !removed.is_empty() && !settings.quiet => {
            let n = removed.len();
            eprintln!(
                "removed {n} content cop{} no container uses from `{}`",
                if n == 1 { "y" } else { "ies" },
                root.display()
            );
        }
        None | Some(Ok(_)) => {}
        Some(Err(e)) => eprintln!(
            "warning: failed to remove unused content copies from `{}`: {e}",
            root.display()
        ),
    }
}

/// Prints what was done per resource (stdout: a line each, or `--json`).
fn print_outcome(
    settings: &Settings,
    styles: Styles,
    revision: &str,
    results: &[StepOutcome],
    unchanged: &[String],
    unreachable: &[String],
) -> Result<(), CliError> {
    if settings.json {
        let r = ApplyReport {
            revision,
            results,
            unchanged,
            unreachable,
        };
        crate::output::json(&r)
    } else {
        let (text, hints) = render_apply(results, unchanged, styles);
        let printed = crate::output::print(&text);
        for h in hints {
            eprintln!("\n{h}");
        }
        printed
    }
}

/// The human form of an apply: a line per resource (`unchanged` first), the message of what was
/// done or failed in brackets; and the `hint:` lines of those messages, each once, for stderr.
#[must_use]
pub fn render_apply(
    results: &[StepOutcome],
    unchanged: &[String],
    styles: Styles,
) -> (String, Vec<String>) {
    let mut text = String::new();
    for id in unchanged {
        text.push_str(&format!("{id} {}\n", styles.outcome(Outcome::Unchanged)));
    }
    let mut hint_lines: Vec<String> = Vec::new();
    for r in results {
        match (&r.message, r.outcome) {
            (
                Some(m),
                Outcome::Failed
                | Outcome::Skipped
                | Outcome::Deferred
                | Outcome::Created
                | Outcome::Recreated
                | Outcome::RolledBack,
            ) => {
                // `hint:` lines of a message go to stderr, after the outcome lines.
                let (first, hints) = m.split_once("\nhint: ").unwrap_or((m, ""));
                text.push_str(&format!(
                    "{} {} ({first})\n",
                    r.id,
                    styles.outcome(r.outcome)
                ));
                let hint = format!("hint: {hints}");
                if !hints.is_empty() && !hint_lines.contains(&hint) {
                    hint_lines.push(hint);
                }
            }
            _ => text.push_str(&format!("{} {}\n", r.id, styles.outcome(r.outcome))),
        }
    }
    (text, hint_lines)
}

/// The exit code of an apply: an invalid Kubernetes source, then a failed action, then an
/// unreachable node.
fn exit_for(kube_invalid: bool, results: &[StepOutcome], unreachable: &[String]) -> u8 {
    if kube_invalid {
        exit_code::USAGE
    } else if results.iter().any(|r| r.outcome == Outcome::Failed) {
        exit_code::ACTION_FAILED
    } else if !unreachable.is_empty() {
        exit_code::UNREACHABLE
    } else {
        exit_code::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(id: &str, outcome: Outcome, message: Option<&str>) -> StepOutcome {
        StepOutcome {
            id: id.to_owned(),
            step: String::new(),
            outcome,
            message: message.map(str::to_owned),
            container_id: None,
        }
    }

    #[test]
    fn apply_renders_a_line_per_resource_and_each_hint_once() {
        let refused = "image `127.0.0.1:5000/app:1` is not present locally and could not be pulled: no basic auth credentials\nhint: run `docker login 127.0.0.1:5000` as the user running refinery\nhint: or add `127.0.0.1:5000` under `registries:` in the manifest";
        let results = [
            outcome(
                "docker/lyra/container/web",
                Outcome::Recreated,
                Some("image_update: sha256:0123456789ab → sha256:89abcdef0123"),
            ),
            outcome("docker/lyra/container/api", Outcome::Failed, Some(refused)),
            outcome(
                "docker/lyra/container/worker",
                Outcome::Failed,
                Some(refused),
            ),
            outcome("docker/lyra/container/old", Outcome::Removed, None),
            outcome(
                "docker/lyra/container/db",
                Outcome::Deferred,
                Some("grace period until 2026-12-07T10:00:30Z"),
            ),
        ];
        let (text, hints) = render_apply(
            &results,
            &["docker/lyra/container/cache".to_owned()],
            Styles { color: false },
        );
        insta::assert_snapshot!(text);
        assert_eq!(
            hints,
            vec![
                "hint: run `docker login 127.0.0.1:5000` as the user running refinery\nhint: or add `127.0.0.1:5000` under `registries:` in the manifest"
                    .to_owned()
            ]
        );
    }
}
