//! Compose projects (`stacks:`) expanded into the specs everything downstream already handles:
//! one [`ContainerSpec`] per service replica, carrying docker-compose's own labels, plus the
//! project's networks and named volumes. Files are merged in order, as `docker compose -f a -f b`
//! does; `${VAR}` comes from the environment over the project's `.env` (or the stack's
//! `env_file`). Every problem names file, line, column and service; keys Refinery does not
//! support are reported by name.

mod service;

use std::collections::{BTreeMap, BTreeSet};

pub use crate::dotenv::parse_env_file;
pub use crate::drift_resources::{
    StackResources, diff_stack_resources, is_network_or_volume, network_id, volume_id,
};

use crate::manifest::reader::Reader;
use crate::manifest::{Issue, Manifest, ManifestError, StackSpec};
use crate::spec::{
    BuildSpec, ContainerSpec, ContextFile, Dependency, NetworkAttachment, NetworkSpec,
    RuntimeOptions, StackMember, VolumeSpec, capabilities,
};
use crate::yaml::{self, Loc, Node, Value};
use service::{FileKind, Service, read_service};
use sha2::{Digest, Sha256};

pub use crate::labels::{
    COMPOSE_VERSION, LABEL_BUILD_DIGEST, LABEL_CONFIG_FILES, LABEL_CONFIG_HASH, LABEL_NETWORK,
    LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE, LABEL_VERSION, LABEL_VOLUME,
    LABEL_WORKING_DIR, compose_labels,
};
pub use crate::spec::container_name;

/// What one stack expands into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    pub containers: Vec<ContainerSpec>,
    pub networks: Vec<NetworkSpec>,
    pub volumes: Vec<VolumeSpec>,
    /// Problems that do not stop the stack (an `ignore_differences` path matching nothing).
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

/// Expands every stack of `manifest` into its containers, networks and volumes, appended to
/// `manifest.containers`, `stack_networks` and `stack_volumes`. Nothing is appended unless every
/// stack is valid. Returns the warnings found.
pub fn expand_stacks(
    manifest: &mut Manifest,
    src: &StackSource<'_>,
) -> Result<Vec<Issue>, ManifestError> {
    let mut issues = Vec::new();
    let mut all = Expanded::default();
    for stack in &manifest.stacks {
        match expand_stack(stack, src) {
            Ok(e) => {
                all.containers.extend(e.containers);
                all.networks.extend(e.networks);
                all.volumes.extend(e.volumes);
                all.warnings.extend(e.warnings);
            }
            Err(mut i) => issues.append(&mut i),
        }
    }
    let mut names: BTreeSet<(String, String)> = manifest
        .containers
        .iter()
        .map(|c| (c.node.clone(), c.name.clone()))
        .collect();
    for c in &all.containers {
        if !names.insert((c.node.clone(), c.name.clone())) {
            issues.push(Issue::new(
                src.manifest_file,
                Loc { line: 1, column: 1 },
                "stacks",
                format!(
                    "container `{}` on node `{}` is declared twice (by a stack and elsewhere)",
                    c.name, c.node
                ),
            ));
        }
    }
    if !issues.is_empty() {
        return Err(ManifestError::Invalid {
            file: src.manifest_file.to_owned(),
            issues,
        });
    }
    manifest.containers.extend(all.containers);
    manifest.stack_networks.extend(all.networks);
    manifest.stack_volumes.extend(all.volumes);
    Ok(all.warnings)
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

/// A declared top-level network or volume.
#[derive(Debug, Clone)]
struct TopLevel {
    engine_name: String,
    driver: String,
    external: bool,
    labels: BTreeMap<String, String>,
}

fn valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Expands one stack, or returns every problem found.
pub fn expand_stack(stack: &StackSpec, src: &StackSource<'_>) -> Result<Expanded, Vec<Issue>> {
    let mut issues: Vec<Issue> = Vec::new();
    let stack_issue = |field: &str, message: String| {
        Issue::new(
            src.manifest_file,
            Loc { line: 1, column: 1 },
            &format!("stacks.{}.{field}", stack.name),
            message,
        )
    };
    if !valid_project_name(&stack.name) {
        issues.push(stack_issue(
            "name",
            format!(
                "`{}` is not a compose project name: use lowercase letters, digits, `-` and `_`",
                stack.name
            ),
        ).with_hint("docker-compose lowercases project names and drops other characters; name the stack as it does"));
        return Err(issues);
    }
    let Some(first) = stack.files.first() else {
        issues.push(stack_issue(
            "files",
            "a stack needs at least one compose file".into(),
        ));
        return Err(issues);
    };
    let project_dir = parent_dir(first).to_owned();

    // Variables: the stack's env_file (or the project's `.env`), under the process environment.
    let env_path = match &stack.env_file {
        Some(p) => Some(p.clone()),
        None => Some(join_rel(&project_dir, ".env")),
    };
    let mut dotenv: BTreeMap<String, String> = BTreeMap::new();
    // The stack's variables file is desired by content for every service of the stack.
    let mut stack_env_file = None;
    if let Some(p) = &env_path {
        match (src.read)(p) {
            Some(text) if crate::sops::is_sops(&text, crate::sops::SopsFormat::for_path(p)) => {
                issues.push(stack_issue(
                    "env_file",
                    format!("`{p}` is SOPS-encrypted, but a stack's `env_file` only feeds `${{VAR}}` interpolation, where values would appear in clear"),
                ).with_hint("give the secrets to the services instead: `env_file:` under a service accepts SOPS files"));
            }
            Some(text) => match parse_env_file(&text) {
                Ok(vars) => {
                    dotenv = vars;
                    stack_env_file = Some(crate::content::ContentMount::env_file(p));
                }
                Err((line, message)) => {
                    issues.push(Issue::new(p, Loc { line, column: 1 }, "", message))
                }
            },
            None if stack.env_file.is_some() => issues.push(stack_issue(
                "env_file",
                format!("failed to find `{p}` in the commit"),
            )),
            None => {}
        }
    }
    let lookup = |name: &str| (src.env)(name).or_else(|| dotenv.get(name).cloned());

    let abs_project_dir = match src.base_dir {
        Some(base) if project_dir.is_empty() => base.trim_end_matches('/').to_owned(),
        Some(base) => format!("{}/{project_dir}", base.trim_end_matches('/')),
        None => project_dir.clone(),
    };

    // Read every file, merging services, networks and volumes in order.
    let mut services: Vec<Service> = Vec::new();
    let mut networks: BTreeMap<String, (TopLevel, Loc, String)> = BTreeMap::new();
    let mut volumes: BTreeMap<String, (TopLevel, Loc, String)> = BTreeMap::new();
    // Top-level `configs:` and `secrets:`: (kind, name) → repository-relative file.
    let mut configs: BTreeMap<(FileKind, String), String> = BTreeMap::new();
    let mut warnings: Vec<Issue> = Vec::new();
    for file in &stack.files {
        let Some(text) = (src.read)(file) else {
            issues.push(stack_issue(
                "files",
                format!("failed to find compose file `{file}` in the commit"),
            ));
            continue;
        };
        let root = match yaml::parse(&text) {
            Ok(n) => n,
            Err(e) => {
                issues.push(Issue::new(
                    file,
                    e.loc,
                    "",
                    format!("invalid YAML: {}", e.message),
                ));
                continue;
            }
        };
        let mut r = Reader::new(file, &lookup, true);
        let ctx = service::FileContext {
            file,
            abs_dir: &abs_project_dir,
            read: src.read,
            project_dir: &project_dir,
            keys: src.keys,
        };
        read_file(
            &mut r,
            &root,
            &ctx,
            &stack.name,
            &mut services,
            &mut networks,
            &mut volumes,
            &mut configs,
        );
        issues.append(&mut r.issues);
        warnings.append(&mut r.warnings);
    }
    if !issues.is_empty() {
        return Err(issues);
    }

    // Profiles: a service with profiles runs only when one of them is selected.
    let all_profiles: BTreeSet<&str> = services
        .iter()
        .flat_map(|s| s.profiles.iter().map(String::as_str))
        .collect();
    for p in &stack.profiles {
        if !all_profiles.contains(p.as_str()) {
            let known: Vec<&str> = all_profiles.iter().copied().collect();
            let mut issue = stack_issue(
                "profiles",
                format!(
                    "profile `{p}` is used by no service of stack `{}`",
                    stack.name
                ),
            );
            issue = match crate::suggestion::suggest(p, known.iter().copied()) {
                Some(s) => issue.with_hint(format!("did you mean `{s}`?")),
                None if known.is_empty() => issue.with_hint("no service declares `profiles:`"),
                None => issue.with_hint(format!("profiles in the files: {}", known.join(", "))),
            };
            issues.push(issue);
        }
    }
    let enabled = |s: &Service| {
        s.profiles.is_empty() || s.profiles.iter().any(|p| stack.profiles.contains(p))
    };
    let active: Vec<&Service> = services.iter().filter(|s| enabled(s)).collect();
    let by_name: BTreeMap<&str, &Service> = active.iter().map(|s| (s.name.as_str(), *s)).collect();

    // depends_on: known, enabled services, no cycle.
    for s in &active {
        for d in &s.depends_on {
            if !by_name.contains_key(d.service.as_str()) {
                let why = if services.iter().any(|x| x.name == d.service) {
                    format!(
                        "service `{}` depends on `{}`, which is not enabled by the stack's profiles",
                        s.name, d.service
                    )
                } else {
                    format!(
                        "service `{}` depends on `{}`, which no compose file declares",
                        s.name, d.service
                    )
                };
                let mut issue = Issue::new(
                    &d.file,
                    d.loc,
                    &format!("services.{}.depends_on", s.name),
                    why,
                );
                if let Some(sug) = crate::suggestion::suggest(&d.service, by_name.keys().copied()) {
                    issue = issue.with_hint(format!("did you mean `{sug}`?"));
                }
                issues.push(issue);
            }
        }
    }
    if issues.is_empty()
        && let Some(cycle) = find_cycle(&active)
    {
        let s = by_name.get(cycle[0].as_str()).copied();
        let (file, loc) = s.map_or((stack.files[0].clone(), Loc::default()), |s| {
            (s.file.clone(), s.loc)
        });
        issues.push(
            Issue::new(
                &file,
                loc,
                &format!("services.{}.depends_on", cycle[0]),
                format!("`depends_on` forms a cycle: {}", cycle.join(" → ")),
            )
            .with_hint("remove one of these dependencies"),
        );
    }

    // Named volumes and networks must be declared at the top level.
    for s in &active {
        for (vol, loc) in &s.named_volumes {
            if !volumes.contains_key(vol) {
                issues.push(
                    Issue::new(
                        &s.file,
                        *loc,
                        &format!("services.{}.volumes", s.name),
                        format!("service `{}` mounts volume `{vol}`, which is not declared under the top-level `volumes:`", s.name),
                    )
                    .with_hint(format!("add `volumes: {{{vol}: {{}}}}` at the top level, or write `./{vol}` for a directory in the repository")),
                );
            }
        }
        for c in &s.configs {
            if !configs.contains_key(&(c.kind, c.name.clone())) {
                let word = c.kind.word();
                let mut issue = Issue::new(
                    &c.file,
                    c.loc,
                    &format!("services.{}.{word}s", s.name),
                    format!(
                        "service `{}` uses {word} `{}`, which is not declared under the top-level `{word}s:`",
                        s.name, c.name
                    ),
                );
                let declared = configs
                    .keys()
                    .filter(|(k, _)| *k == c.kind)
                    .map(|(_, n)| n.as_str());
                issue = match crate::suggestion::suggest(&c.name, declared) {
                    Some(sug) => issue.with_hint(format!("did you mean `{sug}`?")),
                    None => issue.with_hint(format!(
                        "add `{word}s: {{{}: {{file: ./{}}}}}` at the top level",
                        c.name, c.name
                    )),
                };
                issues.push(issue);
            }
        }
        if let Some((mode, loc)) = &s.network_mode
            && let Some(issue) = check_network_mode(s, mode, *loc, &by_name)
        {
            issues.push(issue);
        }
        if let Some(nets) = &s.networks {
            for (net, (_, loc)) in nets {
                if net != "default" && !networks.contains_key(net) {
                    issues.push(Issue::new(
                        &s.file,
                        *loc,
                        &format!("services.{}.networks", s.name),
                        format!("service `{}` uses network `{net}`, which is not declared under the top-level `networks:`", s.name),
                    ));
                }
            }
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }

    let mut out = Expanded {
        warnings,
        ..Expanded::default()
    };
    let default_network = TopLevel {
        engine_name: format!("{}_default", stack.name),
        driver: "bridge".into(),
        external: false,
        labels: BTreeMap::new(),
    };
    let network = |name: &str| -> TopLevel {
        networks
            .get(name)
            .map(|(t, _, _)| t.clone())
            .unwrap_or_else(|| default_network.clone())
    };
    let mut used_networks: BTreeSet<String> = BTreeSet::new();
    let config_files = stack.files.join(",");
    let replicas_of = |name: &str| by_name.get(name).map_or(1, |s| s.replicas.unwrap_or(1));
    let name_of = |svc: &Service, n: u32| {
        svc.container_name
            .clone()
            .unwrap_or_else(|| container_name(&stack.name, &svc.name, n))
    };
    for s in &active {
        let replicas = s.replicas.unwrap_or(1);
        if s.container_name.is_some() && replicas > 1 {
            issues.push(Issue::new(
                &s.file,
                s.loc,
                &format!("services.{}.container_name", s.name),
                format!("service `{}` sets `container_name` and runs {replicas} replicas; a name can be used once", s.name),
            ));
            continue;
        }
        let build = match &s.build {
            Some(b) => match resolve_build(b, &project_dir, src.read_tree) {
                Ok(spec) => Some(spec),
                Err(issue) => {
                    issues.push(issue.with_field(&format!("services.{}.build", s.name), &s.name));
                    continue;
                }
            },
            None => None,
        };
        let image = match (&s.image, &build) {
            (Some(image), _) => image.clone(),
            (None, Some(b)) => build_tag(&stack.name, &s.name, b),
            (None, None) => {
                issues.push(
                    Issue::new(
                        &s.file,
                        s.loc,
                        &format!("services.{}", s.name),
                        format!("service `{}` has no `image` and no `build`", s.name),
                    )
                    .with_hint(
                        "give the service an `image:` that exists on the node, or a `build:` context in the repository",
                    ),
                );
                continue;
            }
        };
        let mut depends_on = Vec::new();
        for d in &s.depends_on {
            let Some(dep) = by_name.get(d.service.as_str()) else {
                continue;
            };
            for n in 1..=replicas_of(&d.service) {
                depends_on.push(Dependency {
                    container: name_of(dep, n),
                    condition: d.condition,
                });
            }
        }
        // `service:NAME` shares the network of that service's first container, created first.
        let network_mode = s
            .network_mode
            .as_ref()
            .map(|(m, _)| match m.split_once(':') {
                Some(("service", svc)) => {
                    let first = by_name.get(svc).map(|d| name_of(d, 1)).unwrap_or_default();
                    depends_on.push(Dependency {
                        container: first.clone(),
                        condition: crate::spec::DependencyCondition::ServiceStarted,
                    });
                    format!("container:{first}")
                }
                _ => m.clone(),
            });
        let nets: Vec<(String, Vec<String>)> = match &s.networks {
            _ if network_mode.is_some() => Vec::new(),
            Some(n) if !n.is_empty() => n
                .iter()
                .map(|(k, (aliases, _))| (k.clone(), aliases.clone()))
                .collect(),
            _ => vec![("default".to_owned(), Vec::new())],
        };
        let mut attachments: Vec<NetworkAttachment> = nets
            .into_iter()
            .map(|(k, aliases)| {
                used_networks.insert(k.clone());
                let mut aliases = aliases;
                aliases.push(s.name.clone());
                aliases.sort();
                aliases.dedup();
                NetworkAttachment {
                    name: network(&k).engine_name,
                    aliases,
                }
            })
            .collect();
        attachments.sort();
        let mut mounts = s.mounts.clone();
        for m in &mut mounts {
            if m.kind == crate::spec::MountKind::Volume
                && let Some((t, _, _)) = volumes.get(&m.source)
            {
                m.source.clone_from(&t.engine_name);
            }
        }
        let mut content = s.content.clone();
        for c in &s.configs {
            let Some(rel) = configs.get(&(c.kind, c.name.clone())) else {
                continue;
            };
            mounts.retain(|m| m.target != c.target);
            content.retain(|m| m.target != c.target);
            mounts.push(crate::spec::Mount {
                kind: crate::spec::MountKind::Bind,
                source: abs_path(src.base_dir, rel),
                target: c.target.clone(),
                read_only: true,
            });
            content.push(crate::content::ContentMount::new(&c.target, rel));
        }
        content.extend(stack_env_file.clone());
        mounts.sort();
        content.sort_by(|a, b| (&a.target, &a.repo_path).cmp(&(&b.target, &b.repo_path)));
        content.dedup_by(|a, b| a.target == b.target && a.repo_path == b.repo_path);
        let mut ports = s.ports.clone();
        ports.sort();
        ports.dedup();
        if network_mode.as_deref() == Some("host") && !ports.is_empty() {
            // The engine drops them (the container listens on the host's ports): declared, they
            // would be drift forever.
            out.warnings.push(
                Issue::new(
                    &s.file,
                    s.loc,
                    &format!("services.{}.ports", s.name),
                    format!(
                        "service `{}` uses `network_mode: host`: its `ports` are not published and are ignored",
                        s.name
                    ),
                )
                .with_hint("the container listens on the host's ports directly; remove `ports`"),
            );
            ports.clear();
        }
        let mut security_opt = s.security_opt.clone();
        security_opt.sort();
        let mut extra_hosts = s.extra_hosts.clone();
        extra_hosts.sort();
        let options = RuntimeOptions {
            networks: attachments,
            user: s.user.clone(),
            working_dir: s.working_dir.clone(),
            read_only: s.read_only.unwrap_or(false),
            security_opt,
            memory_bytes: s.memory_bytes,
            nano_cpus: s.nano_cpus,
            extra_hosts,
            privileged: s.privileged.unwrap_or(false),
            cap_add: capabilities(&s.cap_add),
            cap_drop: capabilities(&s.cap_drop),
            hostname: s.hostname.clone(),
            init: s.init,
            stop_signal: s.stop_signal.clone(),
            stop_timeout_secs: s.stop_timeout_secs,
            tmpfs: s.tmpfs.clone(),
            logging: s.logging.clone(),
            network_mode: network_mode.clone(),
        };
        for n in 1..=replicas {
            out.containers.push(ContainerSpec {
                name: name_of(s, n),
                node: stack.node.clone(),
                image: image.clone(),
                ports: ports.clone(),
                fallback_ports: BTreeMap::new(),
                env: s.env.clone(),
                mounts: mounts.clone(),
                command: s.command.clone(),
                entrypoint: s.entrypoint.clone(),
                labels: s.labels.clone(),
                restart: s.restart.unwrap_or_default(),
                healthcheck: s.healthcheck.clone(),
                bloodline: crate::spec::Bloodline::default(),
                ignore_differences: s.ignore_differences.clone(),
                drift_action: s.drift_action,
                options: options.clone(),
                stack: Some(Box::new(StackMember {
                    project: stack.name.clone(),
                    service: s.name.clone(),
                    number: n,
                    working_dir: abs_project_dir.clone(),
                    config_files: config_files.clone(),
                    depends_on: depends_on.clone(),
                    build: build.clone(),
                })),
                content: content.clone(),
            });
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    for key in &used_networks {
        let t = network(key);
        let mut labels = t.labels.clone();
        if !t.external {
            labels.insert(LABEL_NETWORK.into(), key.clone());
            labels.insert(LABEL_PROJECT.into(), stack.name.clone());
            labels.insert(LABEL_VERSION.into(), COMPOSE_VERSION.into());
        }
        out.networks.push(NetworkSpec {
            node: stack.node.clone(),
            name: t.engine_name,
            driver: t.driver,
            labels,
            external: t.external,
        });
    }
    let used_volumes: BTreeSet<&str> = active
        .iter()
        .flat_map(|s| s.named_volumes.iter().map(|(v, _)| v.as_str()))
        .collect();
    for (key, (t, _, _)) in &volumes {
        if !used_volumes.contains(key.as_str()) {
            continue;
        }
        let mut labels = t.labels.clone();
        if !t.external {
            labels.insert(LABEL_VOLUME.into(), key.clone());
            labels.insert(LABEL_PROJECT.into(), stack.name.clone());
            labels.insert(LABEL_VERSION.into(), COMPOSE_VERSION.into());
        }
        out.volumes.push(VolumeSpec {
            node: stack.node.clone(),
            name: t.engine_name.clone(),
            driver: t.driver.clone(),
            labels,
            external: t.external,
        });
    }
    Ok(out)
}

/// The tag of an image built for a service without `image:`: `<project>-<service>` tagged with
/// the context's digest, so a changed context is another image and an unchanged one is reused.
fn build_tag(project: &str, service: &str, b: &BuildSpec) -> String {
    format!(
        "{project}-{}:refinery-{}",
        service.to_ascii_lowercase(),
        b.short_digest()
    )
}

/// Why a build context cannot be used; the caller adds the field and service.
struct BuildIssue {
    file: String,
    loc: Loc,
    message: String,
    hint: Option<String>,
}

impl BuildIssue {
    fn with_field(self, field: &str, service: &str) -> Issue {
        let issue = Issue::new(
            &self.file,
            self.loc,
            field,
            format!("service `{service}`: {}", self.message),
        );
        match self.hint {
            Some(h) => issue.with_hint(h),
            None => issue,
        }
    }
}

/// The context's files that its `.dockerignore` keeps, by Docker's rules: `#` comments, patterns
/// relative to the context (`*` and `?` within a path segment, `**` across them), a leading `!`
/// keeps again, the last matching line wins, and a pattern matching a directory covers all under
/// it. `.dockerignore` itself and the Dockerfile are sent anyway (the builder needs them; Docker
/// does the same). What is left out is not built and not digested.
fn apply_dockerignore(
    files: BTreeMap<String, ContextFile>,
    dockerfile: &str,
) -> Result<BTreeMap<String, ContextFile>, String> {
    let Some(ignore) = files.get(".dockerignore") else {
        return Ok(files);
    };
    let text = String::from_utf8_lossy(&ignore.data).into_owned();
    let mut rules: Vec<(bool, globset::GlobMatcher)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keep, pattern) = match line.strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, line),
        };
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
        let pattern = pattern.trim_end_matches('/');
        if pattern.is_empty() {
            continue;
        }
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("failed to read `.dockerignore` pattern `{line}`: {e}"))?;
        rules.push((keep, glob.compile_matcher()));
    }
    let excluded = |path: &str| {
        // The path and each directory above it; the last rule matching any of them decides.
        let mut prefixes: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        prefixes.push(path);
        let mut out = false;
        for (keep, m) in &rules {
            if prefixes.iter().any(|p| m.is_match(p)) {
                out = !keep;
            }
        }
        out
    };
    Ok(files
        .into_iter()
        .filter(|(path, _)| path == ".dockerignore" || path == dockerfile || !excluded(path))
        .collect())
}

/// Reads a service's build context from the commit and digests it.
fn resolve_build(
    b: &service::BuildDecl,
    project_dir: &str,
    read_tree: &dyn Fn(&str) -> BTreeMap<String, ContextFile>,
) -> Result<BuildSpec, BuildIssue> {
    let issue = |message: String, hint: &str| BuildIssue {
        file: b.file.clone(),
        loc: b.loc,
        message,
        hint: Some(hint.to_owned()),
    };
    let ctx = b.context.trim();
    if ctx.contains("://") || ctx.starts_with("git@") {
        return Err(issue(
            format!("build context `{ctx}` is remote; Refinery builds only from the repository"),
            "commit the context to the repository and point `build:` at its directory",
        ));
    }
    if ctx.starts_with('/') || ctx.starts_with('~') {
        return Err(issue(
            format!("build context `{ctx}` is outside the repository"),
            "the context is read from the commit: use a directory of the repository, relative to the compose file",
        ));
    }
    let Some(dir) = crate::content::repo_relative(project_dir, ctx) else {
        return Err(issue(
            format!("build context `{ctx}` is outside the repository"),
            "the context is read from the commit: use a directory of the repository, relative to the compose file",
        ));
    };
    let shown = if dir.is_empty() { "." } else { dir.as_str() };
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let files: BTreeMap<String, ContextFile> = read_tree(&dir)
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rel| (rel.to_owned(), v)))
        .collect();
    if files.is_empty() {
        return Err(issue(
            format!("failed to find build context `{shown}` in the commit"),
            "commit the directory (with its Dockerfile) or fix the path",
        ));
    }
    let written = b.dockerfile.as_deref().unwrap_or("Dockerfile");
    let dockerfile = match crate::content::repo_relative("", written) {
        Some(d) if !written.starts_with('/') && !d.is_empty() => d,
        _ => {
            return Err(issue(
                format!("dockerfile `{written}` is outside the build context `{shown}`"),
                "give a path inside the context",
            ));
        }
    };
    let files = match apply_dockerignore(files, &dockerfile) {
        Ok(f) => f,
        Err(message) => {
            return Err(issue(
                message,
                "`.dockerignore` takes one pattern a line (`*`, `?`, `**`, `!` to keep)",
            ));
        }
    };
    if !files.contains_key(&dockerfile) {
        return Err(issue(
            format!("failed to find `{dockerfile}` in the build context `{shown}` of the commit"),
            "commit the Dockerfile, or name it with `build.dockerfile`",
        ));
    }
    let mut hasher = Sha256::new();
    hasher.update(b"refinery-build-v1\0");
    for (path, file) in &files {
        hasher.update(path.as_bytes());
        let mode = if file.executable { "x" } else { "-" };
        hasher.update(format!("\0{mode}\0{}\0", file.data.len()).as_bytes());
        hasher.update(&file.data);
    }
    hasher.update(format!("dockerfile\0{dockerfile}\0").as_bytes());
    for (k, v) in &b.args {
        hasher.update(format!("arg\0{k}\0{v}\0").as_bytes());
    }
    if let Some(t) = &b.target {
        hasher.update(format!("target\0{t}\0").as_bytes());
    }
    Ok(BuildSpec {
        context: dir,
        dockerfile,
        args: b.args.clone(),
        target: b.target.clone(),
        digest: crate::hex::hex(&hasher.finalize()),
        files: std::sync::Arc::new(files),
    })
}

/// The first `depends_on` cycle (a `network_mode: service:NAME` counts as a dependency), as
/// service names ending where they began.
fn find_cycle(services: &[&Service]) -> Option<Vec<String>> {
    let deps: BTreeMap<&str, Vec<&str>> = services
        .iter()
        .map(|s| {
            let shared = s
                .network_mode
                .as_ref()
                .and_then(|(m, _)| m.strip_prefix("service:"));
            (
                s.name.as_str(),
                s.depends_on
                    .iter()
                    .map(|d| d.service.as_str())
                    .chain(shared)
                    .collect(),
            )
        })
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    fn visit<'a>(
        n: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(n).copied().unwrap_or(0) {
            1 => {
                let start = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut cycle: Vec<String> =
                    stack[start..].iter().map(|s| (*s).to_owned()).collect();
                cycle.push(n.to_owned());
                return Some(cycle);
            }
            2 => return None,
            _ => {}
        }
        state.insert(n, 1);
        stack.push(n);
        for d in deps.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, deps, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for s in services {
        let mut stack = Vec::new();
        if let Some(c) = visit(&s.name, &deps, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
}

/// Reads one compose file's top level into the running merge (one accumulator per top-level
/// section).
#[allow(clippy::too_many_arguments)]
fn read_file(
    r: &mut Reader<'_>,
    root: &Node,
    ctx: &service::FileContext<'_>,
    project: &str,
    services: &mut Vec<Service>,
    networks: &mut BTreeMap<String, (TopLevel, Loc, String)>,
    volumes: &mut BTreeMap<String, (TopLevel, Loc, String)>,
    configs: &mut BTreeMap<(FileKind, String), String>,
) {
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
            "version" | "name" => {}
            "services" => {
                if r.map(v, "services").is_none() {
                    continue;
                }
                let Value::Map(svcs) = &v.value else { continue };
                for (sk, sv) in svcs {
                    let Some(name) = sk.scalar() else { continue };
                    let Some(parsed) = read_service(r, ctx, name, sk.loc, sv) else {
                        continue;
                    };
                    match services.iter_mut().find(|s| s.name == name) {
                        Some(existing) => existing.merge(parsed),
                        None => services.push(parsed),
                    }
                }
            }
            "networks" | "volumes" => {
                if r.map(v, key).is_none() {
                    continue;
                }
                let Value::Map(items) = &v.value else {
                    continue;
                };
                for (nk, nv) in items {
                    let Some(name) = nk.scalar() else { continue };
                    let path = format!("{key}.{name}");
                    if let Some(t) = read_top_level(r, nv, &path, project, name) {
                        let target = if key == "networks" {
                            &mut *networks
                        } else {
                            &mut *volumes
                        };
                        target.insert(name.to_owned(), (t, nk.loc, ctx.file.to_owned()));
                    }
                }
            }
            "configs" => read_configs(r, v, ctx, FileKind::Config, configs),
            "secrets" => read_configs(r, v, ctx, FileKind::Secret, configs),
            other if other.starts_with("x-") => {}
            other => r.error_hint(
                k.loc,
                other,
                format!("top-level key `{other}` is not supported by Refinery"),
                "supported top-level keys: version, name, services, networks, volumes, configs, secrets, x-*",
            ),
        }
    }
}

/// A service's `network_mode`: `host`, `none`, `bridge`, `container:NAME` or `service:NAME`
/// (an active service), and never beside `networks`.
fn check_network_mode(
    s: &Service,
    mode: &str,
    loc: Loc,
    services: &BTreeMap<&str, &Service>,
) -> Option<Issue> {
    let field = format!("services.{}.network_mode", s.name);
    let issue = |message: String, hint: String| {
        Some(Issue::new(&s.file, loc, &field, message).with_hint(hint))
    };
    if s.networks.as_ref().is_some_and(|n| !n.is_empty()) {
        return issue(
            format!(
                "service `{}` sets both `network_mode` and `networks`",
                s.name
            ),
            "keep one: `network_mode` replaces the stack's networks".into(),
        );
    }
    match mode.split_once(':') {
        None if ["host", "none", "bridge"].contains(&mode) => None,
        Some(("container", c)) if !c.is_empty() => None,
        Some(("service", svc)) if services.contains_key(svc) => None,
        Some(("service", svc)) => issue(
            format!(
                "service `{}` shares the network of `{svc}`, which is no active service",
                s.name
            ),
            match crate::suggestion::suggest(svc, services.keys().copied()) {
                Some(sug) => format!("did you mean `service:{sug}`?"),
                None => "name a service of this stack (and its profile)".into(),
            },
        ),
        _ => issue(
            format!("`{mode}` is not a network mode"),
            "write `host`, `none`, `bridge`, `service:NAME` or `container:NAME`".into(),
        ),
    }
}

/// Top-level `configs: {name: {file: ./app.conf}}` (or `secrets:`): (kind, name) →
/// repository-relative file.
fn read_configs(
    r: &mut Reader<'_>,
    node: &Node,
    ctx: &service::FileContext<'_>,
    kind: FileKind,
    out: &mut BTreeMap<(FileKind, String), String>,
) {
    let word = kind.word();
    let top = format!("{word}s");
    if r.map(node, &top).is_none() {
        return;
    }
    let Value::Map(items) = &node.value else {
        return;
    };
    for (k, v) in items {
        let Some(name) = k.scalar() else { continue };
        let path = format!("{top}.{name}");
        let Some(mut m) = r.map(v, &path) else {
            continue;
        };
        let file = m
            .get("file")
            .and_then(|n| r.string(n, &format!("{path}.file")).map(|f| (f, n.loc)));
        for key in ["external", "name", "content", "environment"] {
            if let Some(n) = m.get(key) {
                r.error_hint(
                    n.loc,
                    &format!("{path}.{key}"),
                    format!("{word} `{name}`: `{key}` is not supported by Refinery"),
                    match kind {
                        FileKind::Config => {
                            "declare the config with `file: ./path/in/the/repository`".to_owned()
                        }
                        FileKind::Secret => "declare the secret with `file: ./path/in/the/repository` (encrypted with SOPS, it is mounted decrypted)".to_owned(),
                    },
                );
            }
        }
        m.finish(r);
        let Some((file, loc)) = file else {
            r.error_hint(
                v.loc,
                &path,
                format!("{word} `{name}` has no `file`"),
                format!("declare the {word} with `file: ./path/in/the/repository`"),
            );
            continue;
        };
        if file.starts_with('/') {
            r.error_hint(
                loc,
                &format!("{path}.file"),
                format!("{word} `{name}`: `{file}` is outside the repository"),
                format!("a {word} is a file of the repository, desired by content: write `./path`"),
            );
            continue;
        }
        match crate::content::repo_relative(ctx.project_dir, &file) {
            Some(rel) => {
                out.insert((kind, name.to_owned()), rel);
            }
            None => r.error_hint(
                loc,
                &format!("{path}.file"),
                format!("{word} `{name}`: `{file}` points outside the repository"),
                format!("a {word} is a file of the repository: write `./path` below the repository's top"),
            ),
        }
    }
}

/// The absolute path of a repository-relative path in the checkout (or the relative path itself
/// when there is no checkout).
fn abs_path(base_dir: Option<&str>, rel: &str) -> String {
    match base_dir {
        Some(b) => format!("{}/{rel}", b.trim_end_matches('/')),
        None => rel.to_owned(),
    }
}

fn read_top_level(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
    project: &str,
    key: &str,
) -> Option<TopLevel> {
    let mut t = TopLevel {
        engine_name: format!("{project}_{key}"),
        driver: if path.starts_with("networks") {
            "bridge".into()
        } else {
            "local".into()
        },
        external: false,
        labels: BTreeMap::new(),
    };
    if node.is_null() {
        return Some(t);
    }
    r.map(node, path)?;
    let Value::Map(entries) = &node.value else {
        return Some(t);
    };
    let mut explicit_name = None;
    for (k, v) in entries {
        let Some(field) = k.scalar() else { continue };
        let p = format!("{path}.{field}");
        match field {
            "driver" => {
                if let Some(d) = r.string(v, &p) {
                    t.driver = d;
                }
            }
            "name" => explicit_name = r.string(v, &p),
            "external" => t.external = r.bool(v, &p).unwrap_or(false),
            "labels" => {
                for kv in r.key_values_at(v, &p).unwrap_or_default() {
                    t.labels.insert(kv.key, kv.value);
                }
            }
            other if other.starts_with("x-") => {}
            other => r.error_hint(
                k.loc,
                &p,
                format!("key `{other}` is not supported by Refinery"),
                "supported here: driver, name, external, labels",
            ),
        }
    }
    if let Some(n) = explicit_name {
        t.engine_name = n;
    } else if t.external {
        key.clone_into(&mut t.engine_name);
    }
    Some(t)
}

#[cfg(test)]
mod tests;
