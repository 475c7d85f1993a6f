//! Compose projects (`stacks:`) expanded into the specs everything downstream already handles:
//! one [`ContainerSpec`] per service replica, carrying docker compose's own labels, plus the
//! project's networks and named volumes. The files are found as docker compose finds them (the
//! stack's `files:`, else `compose.yaml` … and the override file), merged in order as
//! `docker compose -f a -f b` does; `${VAR}` comes from the environment over the project's `.env`
//! (or the stack's `env_file`).
//!
//! One reader per section: `project` finds and reads the files and hands each top-level section
//! to its reader (`services` with `service_fields` and `resources` for the bigger keys,
//! `networks` for `networks:` and `volumes:`, `configs` for `configs:` and `secrets:`); `checks`
//! looks across services; `containers` makes the specs; `build` reads build contexts. Every
//! problem is reported at once, naming file, line, column and service.

mod build;
mod checks;
mod configs;
mod containers;
mod networks;
mod order;
mod project;
mod resources;
mod restarts;
mod service;
mod service_fields;
mod services;

use std::collections::{BTreeMap, BTreeSet};

pub use crate::dotenv::parse_env_file;
pub use crate::drift_resources::{
    StackResources, diff_stack_resources, is_network_or_volume, network_id, volume_id,
};
pub use crate::labels::{
    COMPOSE_VERSION, LABEL_BUILD_DIGEST, LABEL_CONFIG_FILES, LABEL_CONFIG_HASH, LABEL_NETWORK,
    LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE, LABEL_VERSION, LABEL_VOLUME,
    LABEL_WORKING_DIR, compose_labels,
};
pub use crate::spec::container_name;
pub use order::start_order;
pub use project::{COMPOSE_FILES, OVERRIDE_FILES};
pub use resources::{parse_bytes, parse_cpus, parse_micros};
pub use restarts::restart_dependants;

use crate::manifest::{Issue, Manifest, ManifestError, StackSpec};
use crate::spec::{ContainerSpec, ContextFile, NetworkSpec, VolumeSpec};
use project::stack_issue;
use service::Service;

/// What one stack expands into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The project name: the stack's, else `COMPOSE_PROJECT_NAME`, else the compose files'
    /// top-level `name:`.
    pub project: String,
    /// The compose files read, in merge order (the stack's, or those found by compose's names).
    pub files: Vec<String>,
    /// The profiles enabled (the stack's, else `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    pub containers: Vec<ContainerSpec>,
    pub networks: Vec<NetworkSpec>,
    pub volumes: Vec<VolumeSpec>,
    /// Problems that do not stop the stack (swarm settings ignored, an `ignore_differences` path
    /// matching nothing).
    pub warnings: Vec<Issue>,
}

/// Inputs of one stack's expansion besides the stack entry.
pub struct StackSource<'a> {
    /// Reads a repository-relative file from the commit (`None` when absent).
    pub read: &'a dyn Fn(&str) -> Option<String>,
    /// Every file under a repository-relative directory of the commit (`""` for the root), keyed
    /// by repository-relative path; empty when there is no such directory. Build contexts.
    pub read_tree: &'a dyn Fn(&str) -> BTreeMap<String, ContextFile>,
    /// The process environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Absolute path of the checkout; relative bind mounts and the working-dir label use it.
    pub base_dir: Option<&'a str>,
    /// The manifest file, for problems with the `stacks:` entry itself.
    pub manifest_file: &'a str,
    /// Age keys for SOPS-encrypted `env_file`s.
    pub keys: &'a crate::sops::AgeKeys,
}

/// What every stack of a manifest expands into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpandedStacks {
    /// The manifest's `stacks:`, each named (a stack may take its name from its files) and with
    /// the compose files and profiles it was read with.
    pub stacks: Vec<StackSpec>,
    pub containers: Vec<ContainerSpec>,
    pub networks: Vec<NetworkSpec>,
    pub volumes: Vec<VolumeSpec>,
    pub warnings: Vec<Issue>,
}

/// Expands every stack of `manifest` into its containers, networks and volumes, or returns every
/// problem found (a container declared twice, by a stack and elsewhere, is one).
pub fn expand_stacks(
    manifest: &Manifest,
    src: &StackSource<'_>,
) -> Result<ExpandedStacks, ManifestError> {
    let mut issues = Vec::new();
    let mut all = Expanded::default();
    let mut names: Vec<String> = Vec::new();
    let mut resolved: Vec<Option<(Vec<String>, Vec<String>)>> = Vec::new();
    let mut made_by: BTreeMap<(String, String), usize> = BTreeMap::new();
    for c in &manifest.containers {
        made_by.insert((c.node.clone(), c.name.clone()), usize::MAX);
    }
    for (i, stack) in manifest.stacks.iter().enumerate() {
        match expand_stack(stack, src) {
            Ok(e) => {
                // Two entries on one node with one project name would fight over its containers.
                let twice = manifest.stacks[..i].iter().zip(&names).any(|(s, n)| {
                    s.node == stack.node && *n == e.project && s.at.index != stack.at.index
                });
                if twice {
                    issues.push(
                        stack_issue(
                            stack,
                            src.manifest_file,
                            stack.at.name,
                            "name",
                            format!(
                                "stack `{}` is declared twice on node `{}`",
                                e.project, stack.node
                            ),
                        )
                        .with_hint("give each stack its own `name:`"),
                    );
                }
                for c in &e.containers {
                    let key = (c.node.clone(), c.name.clone());
                    if made_by.get(&key).is_some_and(|by| *by != i) {
                        issues.push(stack_issue(
                            stack,
                            src.manifest_file,
                            None,
                            "",
                            format!(
                                "container `{}` on node `{}` is declared twice (by this stack and elsewhere)",
                                c.name, c.node
                            ),
                        ).with_hint("give the service a `container_name` of its own, or the stack another name"));
                    }
                    made_by.insert(key, i);
                }
                names.push(e.project.clone());
                resolved.push(Some((e.files, e.profiles)));
                all.containers.extend(e.containers);
                all.networks.extend(e.networks);
                all.volumes.extend(e.volumes);
                all.warnings.extend(e.warnings);
            }
            Err(mut found) => {
                names.push(stack.name.clone());
                resolved.push(None);
                issues.append(&mut found);
            }
        }
    }
    if !issues.is_empty() {
        return Err(ManifestError::Invalid {
            file: src.manifest_file.to_owned(),
            issues,
        });
    }
    let mut stacks = manifest.stacks.clone();
    for ((stack, name), found) in stacks.iter_mut().zip(names).zip(resolved) {
        stack.name = name;
        if let Some((files, profiles)) = found {
            stack.files = files;
            stack.profiles = profiles;
        }
    }
    Ok(ExpandedStacks {
        stacks,
        containers: all.containers,
        networks: all.networks,
        volumes: all.volumes,
        warnings: all.warnings,
    })
}

/// `a/b/c.yml` → `a/b`; `c.yml` → ``.
fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

fn join_rel(dir: &str, file: &str) -> String {
    let joined = if dir.is_empty() {
        file.to_owned()
    } else {
        format!("{dir}/{file}")
    };
    let mut out: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

fn valid_project_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Expands one stack, or returns every problem found.
pub fn expand_stack(stack: &StackSpec, src: &StackSource<'_>) -> Result<Expanded, Vec<Issue>> {
    let mut issues: Vec<Issue> = Vec::new();
    let project = project::read_project(stack, src, &mut issues);

    // The project name: the stack's, else `COMPOSE_PROJECT_NAME`, else the files' top-level
    // `name:`, as docker compose takes `-p`, the variable, then `name:`.
    let name = if stack.name.is_empty() {
        match project
            .env_name
            .as_ref()
            .map(|n| (n.clone(), String::new(), crate::yaml::Loc::default()))
            .or_else(|| project.model.name.clone())
            .as_ref()
        {
            Some((n, file, loc)) => {
                if !valid_project_name(n) {
                    let message = format!(
                        "`{n}` is not a compose project name: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"
                    );
                    let issue = if file.is_empty() {
                        stack_issue(
                            stack,
                            src.manifest_file,
                            None,
                            "name",
                            format!("COMPOSE_PROJECT_NAME {message}"),
                        )
                    } else {
                        Issue::new(file, *loc, "name", message)
                    };
                    issues.push(issue.with_hint(
                        "docker compose refuses it too; or give the stack a `name:` in the manifest",
                    ));
                }
                n.clone()
            }
            None => {
                if !project.files.is_empty() {
                    issues.push(
                        stack_issue(stack, src.manifest_file, None, "name", "the stack has no name, and its compose files give none")
                            .with_hint("add `name: PROJECT` to the stack, or a top-level `name:` to the compose file"),
                    );
                }
                String::new()
            }
        }
    } else {
        if !valid_project_name(&stack.name) {
            issues.push(stack_issue(
                stack,
                src.manifest_file,
                stack.at.name,
                "name",
                format!(
                    "`{}` is not a compose project name: use lowercase letters, digits, `-` and `_`",
                    stack.name
                ),
            ).with_hint("docker compose lowercases project names and drops other characters; name the stack as it does"));
        }
        stack.name.clone()
    };

    let by_name = checks::active(&project);
    issues.extend(checks::check(stack, src.manifest_file, &project, &by_name));
    // In declaration order.
    let active: Vec<&Service> = project
        .model
        .services
        .iter()
        .filter(|s| by_name.contains_key(s.name.as_str()))
        .collect();
    let mut out = containers::emit(stack, &name, src, &project, &active, &mut issues);
    out.files.clone_from(&project.files);
    out.profiles.clone_from(&project.profiles);
    if !issues.is_empty() {
        return Err(once_per_place(issues));
    }
    let mut warnings = project.warnings;
    warnings.extend(containers::swarm_warning(&active));
    warnings.append(&mut out.warnings);
    out.warnings = once_per_place(warnings);
    Ok(out)
}

/// Problems found once per service at the same place (keys merged into several services from
/// one YAML anchor) are reported once, at the anchor.
fn once_per_place(issues: Vec<Issue>) -> Vec<Issue> {
    fn general(i: &Issue) -> (String, u32, u32, String, String) {
        // `service `web`: key …` and `services.web.x` say the same for every service.
        let message = match i.message.split_once("`: ") {
            Some((head, rest)) if head.starts_with("service `") => rest.to_owned(),
            _ => i.message.clone(),
        };
        let field = match i.field.strip_prefix("services.") {
            Some(rest) => rest
                .split_once('.')
                .map_or(String::new(), |(_, f)| f.to_owned()),
            None => i.field.clone(),
        };
        (i.file.clone(), i.line, i.column, field, message)
    }
    let mut seen: BTreeSet<(String, u32, u32, String, String)> = BTreeSet::new();
    let mut out: Vec<Issue> = issues
        .into_iter()
        .filter(|i| seen.insert(general(i)))
        .collect();
    // File by file, in the order they come up, and top to bottom in each.
    let mut order: Vec<String> = Vec::new();
    for i in &out {
        if !order.contains(&i.file) {
            order.push(i.file.clone());
        }
    }
    out.sort_by_key(|i| (order.iter().position(|f| *f == i.file), i.line, i.column));
    out
}

#[cfg(test)]
mod tests;
