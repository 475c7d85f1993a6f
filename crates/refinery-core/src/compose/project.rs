//! One compose project as its files declare it: which files (the stack's, or compose's own file
//! names), the variables they are read with (the process environment over the project's `.env`),
//! and each file's top level handed to the reader of its section, merged in order.

use std::collections::BTreeMap;

use crate::content::ContentMount;
use crate::manifest::reader::Reader;
use crate::manifest::{Issue, StackSpec};
use crate::yaml::{self, Loc, Node, Value};

use super::configs::{Configs, read_configs};
use super::networks::{Section, TopLevel, read_section};
use super::service::{FileContext, FileKind, Service};
use super::services::read_service;
use super::{StackSource, join_rel, parent_dir};

/// Compose's file names, in its order of preference: a stack without `files:` uses the first
/// of these the commit has at its root.
pub const COMPOSE_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Compose's override file names, in its order of preference: the first the commit has is read
/// after the file found among [`COMPOSE_FILES`].
pub const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// Every file's declarations, merged.
#[derive(Debug, Default)]
pub(super) struct Model {
    pub services: Vec<Service>,
    pub networks: BTreeMap<String, TopLevel>,
    pub volumes: BTreeMap<String, TopLevel>,
    /// Top-level `configs:` and `secrets:`.
    pub configs: Configs,
    /// The top-level `name:` (the last file's that has one), and where.
    pub name: Option<(String, String, Loc)>,
}

/// A project read: its files, directory, variables file and model.
#[derive(Debug, Default)]
pub(super) struct Project {
    /// Repository-relative compose files, in merge order.
    pub files: Vec<String>,
    /// Repository-relative directory of the first file.
    pub dir: String,
    /// Its absolute path in the checkout.
    pub abs_dir: String,
    /// The stack's variables file, desired by content for every service.
    pub env_file: Option<ContentMount>,
    pub model: Model,
    pub warnings: Vec<Issue>,
    /// `COMPOSE_PROJECT_NAME` of the environment or the project's `.env`, as docker compose
    /// reads it.
    pub env_name: Option<String>,
    /// The profiles enabled: the stack's, else `COMPOSE_PROFILES` (comma-separated) of the
    /// environment or the project's `.env`.
    pub profiles: Vec<String>,
}

/// A problem with the `stacks:` entry itself, at its place in the manifest.
pub(super) fn stack_issue(
    stack: &StackSpec,
    manifest_file: &str,
    loc: Option<Loc>,
    field: &str,
    message: impl Into<String>,
) -> Issue {
    Issue::new(
        manifest_file,
        loc.unwrap_or(stack.at.entry),
        &stack.at.field(field),
        message,
    )
}

/// The files of a stack: its `files:`, else compose's own names found at the repository root.
fn project_files(
    stack: &StackSpec,
    src: &StackSource<'_>,
    issues: &mut Vec<Issue>,
    warnings: &mut Vec<Issue>,
) -> Vec<String> {
    if !stack.files.is_empty() {
        return stack.files.clone();
    }
    let found: Vec<&str> = COMPOSE_FILES
        .iter()
        .copied()
        .filter(|f| (src.read)(f).is_some())
        .collect();
    let Some(first) = found.first() else {
        issues.push(
            stack_issue(
                stack,
                src.manifest_file,
                None,
                "files",
                format!(
                    "failed to find a compose file: the commit has none of {} at its root",
                    COMPOSE_FILES.join(", ")
                ),
            )
            .with_hint("commit the compose file, or list it under the stack's `files:`"),
        );
        return Vec::new();
    };
    if found.len() > 1 {
        warnings.push(stack_issue(
            stack,
            src.manifest_file,
            None,
            "files",
            format!(
                "found several compose files ({}); using `{first}`, as docker compose does",
                found.join(", ")
            ),
        ));
    }
    let mut files = vec![(*first).to_owned()];
    if let Some(over) = OVERRIDE_FILES.iter().find(|f| (src.read)(f).is_some()) {
        files.push((*over).to_owned());
    }
    files
}

/// Reads a stack's files; every problem found goes to `issues`.
pub(super) fn read_project(
    stack: &StackSpec,
    src: &StackSource<'_>,
    issues: &mut Vec<Issue>,
) -> Project {
    let mut p = Project::default();
    p.files = project_files(stack, src, issues, &mut p.warnings);
    let Some(first) = p.files.first() else {
        return p;
    };
    p.dir = parent_dir(first).to_owned();
    p.abs_dir = match src.base_dir {
        Some(base) if p.dir.is_empty() => base.trim_end_matches('/').to_owned(),
        Some(base) => format!("{}/{}", base.trim_end_matches('/'), p.dir),
        None => p.dir.clone(),
    };

    // Variables: the stack's env_file (or the project's `.env`), under the process environment.
    let env_path = stack
        .env_file
        .clone()
        .unwrap_or_else(|| join_rel(&p.dir, ".env"));
    let mut dotenv: BTreeMap<String, String> = BTreeMap::new();
    match (src.read)(&env_path) {
        Some(text) if crate::sops::is_sops(&text, crate::sops::SopsFormat::for_path(&env_path)) => {
            issues.push(stack_issue(
                stack,
                src.manifest_file,
                stack.at.env_file,
                "env_file",
                format!("`{env_path}` is SOPS-encrypted, but a stack's `env_file` only feeds `${{VAR}}` interpolation, where values would appear in clear"),
            ).with_hint("give the secrets to the services instead: `env_file:` under a service accepts SOPS files"));
        }
        Some(text) => match crate::dotenv::parse_env_file(&text) {
            Ok(vars) => {
                dotenv = vars;
                p.env_file = Some(ContentMount::env_file(&env_path));
            }
            Err((line, message)) => {
                issues.push(Issue::new(&env_path, Loc { line, column: 1 }, "", message));
            }
        },
        None if stack.env_file.is_some() => issues.push(stack_issue(
            stack,
            src.manifest_file,
            stack.at.env_file,
            "env_file",
            format!("failed to find `{env_path}` in the commit"),
        )),
        None => {}
    }
    let lookup = |name: &str| (src.env)(name).or_else(|| dotenv.get(name).cloned());
    p.env_name = lookup("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty());
    p.profiles = if stack.profiles.is_empty() {
        lookup("COMPOSE_PROFILES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        stack.profiles.clone()
    };

    for (i, file) in p.files.iter().enumerate() {
        let Some(text) = (src.read)(file) else {
            issues.push(stack_issue(
                stack,
                src.manifest_file,
                stack.at.files.get(i).copied(),
                &format!("files[{i}]"),
                format!("failed to find compose file `{file}` in the commit"),
            ));
            continue;
        };
        let root = match yaml::parse(&text) {
            Ok(n) => n,
            Err(e) => {
                issues.push(
                    Issue::new(file, e.loc, "", format!("invalid YAML: {}", e.message))
                        .with_hint("check indentation, quoting and unclosed `[` or `{` on this line and the lines above it"),
                );
                continue;
            }
        };
        let mut r = Reader::new(file, &lookup, true).with_strict_dollars();
        let tags = yaml::local_tags(&text);
        let ctx = FileContext {
            file,
            tags: &tags,
            abs_dir: &p.abs_dir,
            read: src.read,
            project_dir: &p.dir,
            keys: src.keys,
        };
        read_file(&mut r, &root, &ctx, &mut p.model);
        issues.append(&mut r.issues);
        p.warnings.append(&mut r.warnings);
    }
    p
}

/// Reads one compose file's top level into the running merge, each section by its reader.
fn read_file(r: &mut Reader<'_>, root: &Node, ctx: &FileContext<'_>, model: &mut Model) {
    if root.is_null() {
        return;
    }
    if r.map(root, "").is_none() {
        return;
    }
    let Value::Map(entries) = &root.value else {
        return;
    };
    for (k, v) in entries {
        let Some(key) = k.scalar() else { continue };
        match key {
            "version" => {}
            "name" => {
                if let Some(name) = r.string(v, "name") {
                    model.name = Some((name, ctx.file.to_owned(), v.loc));
                }
            }
            "services" => read_services(r, v, ctx, &mut model.services),
            "networks" => read_section(r, v, ctx.file, Section::Networks, &mut model.networks),
            "volumes" => read_section(r, v, ctx.file, Section::Volumes, &mut model.volumes),
            "configs" => read_configs(r, v, ctx, FileKind::Config, &mut model.configs),
            "secrets" => read_configs(r, v, ctx, FileKind::Secret, &mut model.configs),
            "include" => r.error_hint(
                k.loc,
                key,
                "top-level key `include` is not supported by Refinery",
                "list the included compose files under the stack's `files:` instead (they are merged in order)",
            ),
            "models" => r.error_hint(
                k.loc,
                key,
                "top-level key `models` is not supported by Refinery",
                "AI models are served by Docker Model Runner, not by the engine",
            ),
            other if other.starts_with("x-") => {}
            other => {
                let known = [
                    "version", "name", "services", "networks", "volumes", "configs", "secrets",
                ];
                let hint = match crate::suggestion::suggest(other, known) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "top-level keys: version, name, services, networks, volumes, configs, secrets, x-*".to_owned(),
                };
                r.error_hint(k.loc, other, format!("unknown top-level key `{other}`"), hint);
            }
        }
    }
}

/// `services:` of one file, each service merged over its earlier declarations.
fn read_services(r: &mut Reader<'_>, node: &Node, ctx: &FileContext<'_>, out: &mut Vec<Service>) {
    if r.map(node, "services").is_none() {
        return;
    }
    let Value::Map(svcs) = &node.value else {
        return;
    };
    for (sk, sv) in svcs {
        let Some(name) = sk.scalar() else { continue };
        let Some(parsed) = read_service(r, ctx, name, sk.loc, sv) else {
            continue;
        };
        match out.iter_mut().find(|s| s.name == name) {
            Some(existing) => existing.merge(parsed),
            None => out.push(parsed),
        }
    }
}
