//! `refinery validate`

use serde::Serialize;

use crate::commands::load_desired;
use crate::error::CliError;
use crate::exit_code;
use crate::output;
use crate::render::Styles;
use crate::settings::Settings;

/// What `validate` found: the manifest loaded, with what it declares.
#[derive(Debug, Serialize)]
pub struct ValidateReport<'a> {
    valid: bool,
    file: &'a str,
    commit: &'a str,
    nodes: usize,
    containers: usize,
    stacks: usize,
    kubernetes: usize,
    warnings: &'a [refinery_core::Issue],
}

pub fn run(settings: &Settings) -> Result<u8, CliError> {
    let d = load_desired(settings)?;
    let m = &d.manifest;
    let report = ValidateReport {
        valid: true,
        file: &m.file,
        commit: &d.commit.id,
        nodes: m.nodes.len(),
        containers: m.containers.len(),
        stacks: m.stacks.len(),
        kubernetes: m.kubernetes.len(),
        warnings: &d.warnings,
    };
    if settings.json {
        output::json(&report)?;
    } else {
        output::print(&render_validate(&report, &settings.styles()))?;
    }
    Ok(exit_code::OK)
}

/// `refinery.yaml at 1a2b3c4d5e6f is valid: 2 containers on 1 node, 0 stacks, 0 kubernetes sources`
#[must_use]
pub fn render_validate(r: &ValidateReport<'_>, _styles: &Styles) -> String {
    format!(
        "{} at {} is valid: {} container{} on {} node{}, {} stack{}, {} kubernetes source{}\n",
        r.file,
        refinery_core::short_id(r.commit),
        r.containers,
        plural(r.containers),
        r.nodes,
        plural(r.nodes),
        r.stacks,
        plural(r.stacks),
        r.kubernetes,
        plural(r.kubernetes),
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_report_renders_counts_with_plurals() {
        let report = ValidateReport {
            valid: true,
            file: "refinery.yaml",
            commit: "1ff767bb0c6e2a9d4f5b8c7e1a2b3c4d5e6f7a8b",
            nodes: 1,
            containers: 2,
            stacks: 0,
            kubernetes: 1,
            warnings: &[],
        };
        insta::assert_snapshot!(render_validate(&report, &Styles { color: false }), @"refinery.yaml at 1ff767bb0c6e is valid: 2 containers on 1 node, 0 stacks, 1 kubernetes source");
    }
}
