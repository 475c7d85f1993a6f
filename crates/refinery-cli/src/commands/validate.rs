//! `refinery validate`

use serde::Serialize;

use crate::commands::load_desired;
use crate::error::CliError;
use crate::exit_code;
use crate::settings::Settings;

#[derive(Serialize)]
struct Report<'a> {
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
    let report = Report {
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
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!(
            "{} at {} is valid: {} container{} on {} node{}, {} stack{}, {} kubernetes source{}",
            m.file,
            d.commit.short,
            m.containers.len(),
            plural(m.containers.len()),
            m.nodes.len(),
            plural(m.nodes.len()),
            m.stacks.len(),
            plural(m.stacks.len()),
            m.kubernetes.len(),
            plural(m.kubernetes.len()),
        );
    }
    Ok(exit_code::OK)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
