//! `refinery plan`

use refinery_core::{Step, StepKind};
use serde::Serialize;

use crate::args::PlanArgs;
use crate::commands::load_desired;
use crate::error::{CliError, unreachable_hints};
use crate::exit_code;
use crate::render::{self, Styles};
use crate::settings::Settings;
use refinery_controller::node_pass::{self as pass, NodePass};
use refinery_docker::DockerRuntime;

#[derive(Serialize)]
pub struct NodePlan<'a> {
    pub node: &'a str,
    pub mode: &'static str,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub in_sync: Vec<String>,
    pub steps: Vec<&'a Step>,
    /// Containers on a declared fallback host port (not drift while the primary is taken).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<&'a refinery_core::port_fallback::Degraded>,
    /// The containers this plan starts, in the order their `depends_on` imposes (layer by
    /// layer); empty when none waits for another.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub start_order: Vec<Vec<String>>,
}

/// The start order of the containers a node's steps create, recreate or start.
fn start_order(
    manifest: &refinery_core::Manifest,
    node: &str,
    steps: &[refinery_core::Step],
) -> Vec<Vec<String>> {
    let starting: Vec<&str> = steps
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                StepKind::Create | StepKind::Recreate | StepKind::Rollback | StepKind::Start
            )
        })
        .map(|s| s.id.name())
        .collect();
    refinery_core::compose::start_order(manifest, node, &starting)
}

/// Stops before anything is done when a network or volume a stack declares `external` is not on
/// its node: Refinery never creates one, and nothing that uses it could be created.
pub fn check_externals(
    passes: &[NodePass<'_, DockerRuntime>],
    manifest: &refinery_core::Manifest,
) -> Result<(), CliError> {
    let issues: Vec<refinery_core::Issue> = passes
        .iter()
        .filter_map(|p| p.result.as_ref().ok().map(|(_, e)| (p.node, e)))
        .flat_map(|(node, e)| {
            refinery_core::drift_resources::missing_externals(manifest, &node.name, &e.report)
        })
        .collect();
    if issues.is_empty() {
        return Ok(());
    }
    Err(CliError::Manifest(
        refinery_core::ManifestError::MissingExternal {
            file: manifest.file.clone(),
            issues,
        },
    ))
}

/// The JSON document `plan --json` prints on stdout when it fails before planning: what
/// failed, every problem with its place, the hints and the exit code.
#[must_use]
pub fn error_document(e: &CliError) -> String {
    #[derive(Serialize)]
    struct Document<'a> {
        error: Body<'a>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        kind: &'static str,
        message: String,
        exit_code: u8,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        issues: &'a [refinery_core::Issue],
        #[serde(skip_serializing_if = "Vec::is_empty")]
        hints: Vec<String>,
    }
    use refinery_core::ManifestError;
    let (kind, issues): (&'static str, &[refinery_core::Issue]) = match e {
        CliError::Manifest(m @ ManifestError::Invalid { .. }) => ("invalid_manifest", m.issues()),
        CliError::Manifest(m @ ManifestError::MissingExternal { .. }) => {
            ("missing_external", m.issues())
        }
        CliError::Manifest(ManifestError::NotFound { .. }) => ("manifest_not_found", &[]),
        _ => ("error", &[]),
    };
    let doc = Document {
        error: Body {
            kind,
            message: e.to_string(),
            exit_code: e.exit_code(),
            issues,
            hints: e.hints(),
        },
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[derive(Serialize)]
pub struct PlanReport<'a> {
    pub revision: &'a str,
    pub in_sync: bool,
    pub nodes: Vec<NodePlan<'a>>,
}

/// Builds the report every plan-like command prints.
pub fn report<'a>(
    revision: &'a str,
    passes: &'a [NodePass<'_, DockerRuntime>],
    manifest: &refinery_core::Manifest,
) -> PlanReport<'a> {
    let nodes: Vec<NodePlan<'a>> = passes
        .iter()
        .map(|p| match &p.result {
            Ok((_, eval)) => NodePlan {
                node: &p.node.name,
                mode: manifest.mode_of(&p.node.name).as_str(),
                reachable: true,
                error: None,
                in_sync: eval
                    .report
                    .in_sync
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                steps: eval.plan.steps.iter().collect(),
                degraded: eval.report.degraded.iter().collect(),
                start_order: start_order(manifest, &p.node.name, &eval.plan.steps),
            },
            Err(e) => NodePlan {
                node: &p.node.name,
                mode: manifest.mode_of(&p.node.name).as_str(),
                reachable: false,
                error: Some(e.to_string()),
                in_sync: Vec::new(),
                steps: Vec::new(),
                degraded: Vec::new(),
                start_order: Vec::new(),
            },
        })
        .collect();
    let in_sync = nodes
        .iter()
        .all(|n| n.reachable && n.steps.iter().all(|s| s.kind == StepKind::Ignore));
    PlanReport {
        revision,
        in_sync,
        nodes,
    }
}

impl<'a> PlanReport<'a> {
    /// Adds the `kubernetes:` sources as nodes of their own (`k8s/<source>`).
    pub fn add_kube(
        &mut self,
        kube: &'a [refinery_controller::kube_sources::KubePass],
        manifest: &refinery_core::Manifest,
    ) {
        for p in kube {
            let mode = manifest
                .mode_of(p.context.as_deref().unwrap_or_default())
                .as_str();
            self.nodes.push(match &p.result {
                Ok(eval) => NodePlan {
                    node: &p.label,
                    mode,
                    reachable: true,
                    error: None,
                    in_sync: eval
                        .report
                        .in_sync
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    steps: eval.plan.steps.iter().collect(),
                    degraded: Vec::new(),
                    start_order: Vec::new(),
                },
                Err(e) => NodePlan {
                    node: &p.label,
                    mode,
                    reachable: false,
                    error: Some(e.to_string()),
                    in_sync: Vec::new(),
                    steps: Vec::new(),
                    degraded: Vec::new(),
                    start_order: Vec::new(),
                },
            });
        }
        self.in_sync = self
            .nodes
            .iter()
            .all(|n| n.reachable && n.steps.iter().all(|s| s.kind == StepKind::Ignore));
    }
}

/// The human form of a plan: a table, the field changes, a summary line.
#[must_use]
pub fn render_plan(r: &PlanReport<'_>, show_ignored: bool, styles: Styles) -> String {
    let mut rows = Vec::new();
    let mut changes = String::new();
    let mut drifted = 0;
    let mut acting = 0;
    let mut synced = 0;
    for n in &r.nodes {
        synced += n.in_sync.len();
        for s in &n.steps {
            if s.kind == StepKind::Ignore && !show_ignored {
                continue;
            }
            drifted += 1;
            if s.kind.writes() {
                acting += 1;
            }
            let kinds: Vec<&str> = s.drifts.iter().map(|k| k.as_str()).collect();
            let detail: Vec<&str> = s
                .details
                .iter()
                .map(|d| d.split_once(": ").map_or(d.as_str(), |(_, x)| x))
                .collect();
            rows.push(vec![
                s.id.to_string(),
                kinds.join(","),
                s.kind.to_string(),
                detail.join("; "),
            ]);
            let shown: Vec<_> = s
                .changes
                .iter()
                .filter(|c| show_ignored || !c.ignored)
                .collect();
            if !shown.is_empty() {
                changes.push_str(&format!("{}\n", styles.bold(&s.id.to_string())));
                for c in shown {
                    let mark = if c.ignored { " (ignored)" } else { "" };
                    // An empty side (no ports, no volumes) reads `(none)`, not a blank.
                    let side = |v: &str| {
                        if v.is_empty() {
                            "(none)".to_owned()
                        } else {
                            v.to_owned()
                        }
                    };
                    changes.push_str(&format!(
                        "  {}: {} → {}{mark}\n",
                        c.field,
                        side(&c.observed),
                        side(&c.desired)
                    ));
                }
            }
        }
    }
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&render::table(
            &["RESOURCE", "DRIFT", "ACTION", "DETAIL"],
            rows,
        ));
        if !changes.is_empty() {
            out.push('\n');
            out.push_str(&changes);
        }
        out.push('\n');
    }
    for d in r.nodes.iter().flat_map(|n| &n.degraded) {
        out.push_str(&format!("{} degraded ({d})\n", d.id));
    }
    for n in r.nodes.iter().filter(|n| !n.start_order.is_empty()) {
        let layers: Vec<String> = n.start_order.iter().map(|l| l.join(", ")).collect();
        out.push_str(&format!(
            "start order on `{}` (depends_on): {}\n",
            n.node,
            layers.join(" → ")
        ));
    }
    let unreachable: Vec<&str> = r
        .nodes
        .iter()
        .filter(|n| !n.reachable)
        .map(|n| n.node)
        .collect();
    let short = r.revision.get(..12).unwrap_or(r.revision);
    if drifted == 0 && unreachable.is_empty() {
        out.push_str(&format!(
            "in sync with {short}: {synced} resource{} the commit\n",
            if synced == 1 { " matches" } else { "s match" }
        ));
    } else if unreachable.len() < r.nodes.len() {
        out.push_str(&format!(
            "{drifted} drifted, {synced} in sync; apply would change {acting} (revision {short})\n"
        ));
    }
    for n in unreachable {
        if n.starts_with("k8s/") {
            // A `kubernetes:` source (node names have no `/`).
            out.push_str(&format!(
                "kubernetes source `{n}` failed: nothing is known about it\n"
            ));
        } else {
            out.push_str(&format!(
                "node `{n}` is unreachable: nothing is known about it\n"
            ));
        }
    }
    out
}

/// Prints unreachable-node errors on stderr.
pub fn report_unreachable(passes: &[NodePass<'_, DockerRuntime>]) {
    for p in passes {
        if let Err(e) = &p.result {
            let err = CliError::Unreachable {
                node: p.node.name.clone(),
                source: e.clone(),
            };
            eprint!("{}", render::error(&err, &unreachable_hints(e)));
        }
    }
}

pub async fn run(settings: &Settings, args: &PlanArgs) -> Result<u8, CliError> {
    let result = plan(settings, args).await;
    // With `--json`, stdout is a document even when there is no plan to print.
    if settings.json
        && let Err(e) = &result
    {
        // The error itself is what the command reports; a closed stdout changes nothing.
        let _ = crate::output::print(&format!("{}\n", error_document(e)));
    }
    result
}

async fn plan(settings: &Settings, args: &PlanArgs) -> Result<u8, CliError> {
    let desired = load_desired(settings)?;
    // What the daemon holds back (flap protection) is shown as it would act: an alert.
    let suspended = refinery_controller::daemon_suspensions(&settings.repo);
    // So are the image updates it rolled back, until their tag moves.
    let rejected =
        refinery_controller::daemon_rejected_updates(&settings.repo, args.state_dir.as_deref());
    let selection = pass::Selection {
        suspended: &suspended,
        rejected: &rejected,
        ..settings.selection()
    };
    let passes = pass::run(&desired, &selection).await?;
    check_externals(&passes, &desired.manifest)?;
    report_unreachable(&passes);
    let kube =
        refinery_controller::kube_sources::run(&desired, &settings.repo, settings.now, &suspended)
            .await;
    refinery_controller::kube_sources::report_errors(&kube);
    let mut r = report(&desired.commit.id, &passes, &desired.manifest);
    r.add_kube(&kube, &desired.manifest);
    if settings.json {
        crate::output::json(&r)?;
    } else {
        crate::output::print(&render_plan(
            &r,
            args.show_ignored,
            Styles {
                color: settings.color,
            },
        ))?;
    }
    Ok(if refinery_controller::kube_sources::any_invalid(&kube) {
        exit_code::USAGE
    } else if r.nodes.iter().any(|n| !n.reachable) {
        exit_code::UNREACHABLE
    } else if r.in_sync {
        exit_code::OK
    } else {
        exit_code::DRIFT
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use refinery_core::drift_report::FieldChange;
    use refinery_core::{DriftKind, ResourceId};

    fn change(field: &str, observed: &str, desired: &str, ignored: bool) -> FieldChange {
        FieldChange {
            field: field.to_owned(),
            desired: desired.to_owned(),
            observed: observed.to_owned(),
            ignored,
        }
    }

    fn step(
        name: &str,
        kind: StepKind,
        drift: DriftKind,
        detail: &str,
        changes: Vec<FieldChange>,
    ) -> Step {
        Step {
            id: ResourceId::container("lyra", name),
            kind,
            container_id: Some("0123456789ab".to_owned()),
            drifts: vec![drift],
            details: vec![format!("{}: {detail}", drift.as_str())],
            changes,
            reason: String::new(),
        }
    }

    #[test]
    fn plan_renders_steps_changes_an_image_update_and_an_unreachable_node() {
        let update = step(
            "web",
            StepKind::Alert,
            DriftKind::ImageUpdate,
            "update available for `reg.example/app:stable`: sha256:0123456789ab → sha256:89abcdef0123",
            vec![change(
                "image_digest",
                "sha256:0123456789abcdef",
                "sha256:89abcdef01234567",
                false,
            )],
        );
        let config = step(
            "api",
            StepKind::Recreate,
            DriftKind::Config,
            "env.LOG_LEVEL, ports differ",
            vec![
                change("env.LOG_LEVEL", "debug", "info", false),
                change("ports", "", "8080:80/tcp", false),
                change("labels.team", "a", "b", true),
            ],
        );
        let quiet = step(
            "db",
            StepKind::Ignore,
            DriftKind::Status,
            "exited (0)",
            Vec::new(),
        );
        let report = PlanReport {
            revision: "0123456789abcdef0123",
            in_sync: false,
            nodes: vec![
                NodePlan {
                    node: "lyra",
                    mode: "enforce",
                    reachable: true,
                    error: None,
                    in_sync: vec!["docker/lyra/container/cache".to_owned()],
                    steps: vec![&update, &config, &quiet],
                    degraded: Vec::new(),
                    start_order: vec![vec!["db".to_owned()], vec!["api".to_owned()]],
                },
                NodePlan {
                    node: "vega",
                    mode: "enforce",
                    reachable: false,
                    error: Some("connection refused".to_owned()),
                    in_sync: Vec::new(),
                    steps: Vec::new(),
                    degraded: Vec::new(),
                    start_order: Vec::new(),
                },
            ],
        };
        insta::assert_snapshot!(render_plan(&report, false, Styles { color: false }));
        let with_ignored = render_plan(&report, true, Styles { color: false });
        assert!(
            with_ignored.contains("labels.team: a → b (ignored)")
                && with_ignored.contains("docker/lyra/container/db"),
            "{with_ignored}"
        );
    }

    #[test]
    fn plan_in_sync_says_how_many_match() {
        let report = PlanReport {
            revision: "0123456789abcdef",
            in_sync: true,
            nodes: vec![NodePlan {
                node: "lyra",
                mode: "enforce",
                reachable: true,
                error: None,
                in_sync: vec!["docker/lyra/container/web".to_owned()],
                steps: Vec::new(),
                degraded: Vec::new(),
                start_order: Vec::new(),
            }],
        };
        assert_eq!(
            render_plan(&report, false, Styles { color: false }),
            "in sync with 0123456789ab: 1 resource matches the commit\n"
        );
    }
}
