//! What no single service can check on its own: profiles select services that exist, every
//! service another one names (`depends_on`, `links`, `volumes_from`, `network_mode`, `pid`,
//! `ipc`) is declared and enabled, those references form no cycle, and the volumes, networks,
//! configs and secrets services use are declared at the top level.

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::{Issue, StackSpec};
use crate::suggestion::suggest;
use crate::yaml::Loc;

use super::project::{Project, stack_issue};
use super::service::Service;

/// The services the enabled profiles select, by name.
pub(super) fn active(project: &Project) -> BTreeMap<&str, &Service> {
    project
        .model
        .services
        .iter()
        .filter(|s| {
            s.profiles.is_empty() || s.profiles.iter().any(|p| project.profiles.contains(p))
        })
        .map(|s| (s.name.as_str(), s))
        .collect()
}

/// Every cross-service problem of the project.
pub(super) fn check(
    stack: &StackSpec,
    manifest_file: &str,
    project: &Project,
    by_name: &BTreeMap<&str, &Service>,
) -> Vec<Issue> {
    let mut issues = Vec::new();
    let model = &project.model;
    let services = &model.services;

    // Profiles: a service with profiles runs only when one of them is selected.
    let all_profiles: BTreeSet<&str> = services
        .iter()
        .flat_map(|s| s.profiles.iter().map(String::as_str))
        .collect();
    for (i, p) in project.profiles.iter().enumerate() {
        if !all_profiles.contains(p.as_str()) {
            let known: Vec<&str> = all_profiles.iter().copied().collect();
            let mut issue = stack_issue(
                stack,
                manifest_file,
                stack.at.profiles.get(i).copied(),
                &format!("profiles[{i}]"),
                format!("profile `{p}` is used by no service of the stack"),
            );
            issue = match suggest(p, known.iter().copied()) {
                Some(s) => issue.with_hint(format!("did you mean `{s}`?")),
                None if known.is_empty() => issue.with_hint("no service declares `profiles:`"),
                None => issue.with_hint(format!("profiles in the files: {}", known.join(", "))),
            };
            issues.push(issue);
        }
    }

    let why_missing = |s: &Service, other: &str, verb: &str| {
        if services.iter().any(|x| x.name == other) {
            format!(
                "service `{}` {verb} `{other}`, which is not enabled by the stack's profiles",
                s.name
            )
        } else {
            format!(
                "service `{}` {verb} `{other}`, which no compose file declares",
                s.name
            )
        }
    };
    for s in by_name.values() {
        // depends_on: known, enabled services (unless `required: false`).
        for d in s.depends_on.iter().filter(|d| d.required) {
            if !by_name.contains_key(d.service.as_str()) {
                let mut issue = Issue::new(
                    &d.file,
                    d.loc,
                    &format!("services.{}.depends_on", s.name),
                    why_missing(s, &d.service, "depends on"),
                );
                issue = match suggest(&d.service, by_name.keys().copied()) {
                    Some(sug) => issue.with_hint(format!("did you mean `{sug}`?")),
                    None => issue
                        .with_hint("declare the service, or mark the dependency `required: false`"),
                };
                issues.push(issue);
            }
        }
        for r in &s.refs {
            if !by_name.contains_key(r.service.as_str()) {
                let verb = match r.key {
                    "links" => "links to",
                    "volumes_from" => "takes volumes from",
                    "pid" => "shares the process namespace of",
                    _ => "shares the IPC namespace of",
                };
                let mut issue = Issue::new(
                    &r.file,
                    r.loc,
                    &format!("services.{}.{}", s.name, r.key),
                    why_missing(s, &r.service, verb),
                );
                if let Some(sug) = suggest(&r.service, by_name.keys().copied()) {
                    issue = issue.with_hint(format!("did you mean `{sug}`?"));
                }
                issues.push(issue);
            }
        }
        if let Some((mode, loc)) = &s.network_mode
            && let Some(issue) = check_network_mode(s, mode, *loc, by_name)
        {
            issues.push(issue);
        }
        if let Some(issue) = check_memswap(s) {
            issues.push(issue);
        }
        if s.container_name.is_some() && s.replicas.unwrap_or(1) > 1 {
            issues.push(Issue::new(
                &s.file,
                s.loc,
                &format!("services.{}.container_name", s.name),
                format!(
                    "service `{}` sets `container_name` and runs {} replicas; a name can be used once",
                    s.name,
                    s.replicas.unwrap_or(1)
                ),
            ));
        }
    }
    if let Some(cycle) = find_cycle(by_name)
        && let Some(s) = by_name.get(cycle[0].as_str())
    {
        issues.push(
            Issue::new(
                &s.file,
                s.loc,
                &format!("services.{}.depends_on", cycle[0]),
                format!(
                    "the services' dependencies form a cycle: {}",
                    cycle.join(" → ")
                ),
            )
            .with_hint("remove one of these dependencies (`depends_on`, `links`, `volumes_from`, `network_mode`, `pid` or `ipc` naming a service)"),
        );
    }

    // Named volumes, networks, configs and secrets must be declared at the top level.
    for s in by_name.values() {
        for (vol, loc) in &s.named_volumes {
            if !model.volumes.contains_key(vol) {
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
            let key = (c.kind, c.name.clone());
            if !model.configs.files.contains_key(&key) && !model.configs.refused.contains(&key) {
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
                let declared = model
                    .configs
                    .files
                    .keys()
                    .filter(|(k, _)| *k == c.kind)
                    .map(|(_, n)| n.as_str());
                issue = match suggest(&c.name, declared) {
                    Some(sug) => issue.with_hint(format!("did you mean `{sug}`?")),
                    None => issue.with_hint(format!(
                        "add `{word}s: {{{}: {{file: ./{}}}}}` at the top level",
                        c.name, c.name
                    )),
                };
                issues.push(issue);
            }
        }
        if let Some(nets) = &s.networks {
            for (net, n) in nets {
                if net != "default" && !model.networks.contains_key(net) {
                    let mut issue = Issue::new(
                        &s.file,
                        n.loc,
                        &format!("services.{}.networks", s.name),
                        format!(
                            "service `{}` uses network `{net}`, which is not declared under the top-level `networks:`",
                            s.name
                        ),
                    );
                    issue = match suggest(net, model.networks.keys().map(String::as_str)) {
                        Some(sug) => issue.with_hint(format!("did you mean `{sug}`?")),
                        None => issue
                            .with_hint(format!("add `networks: {{{net}: {{}}}}` at the top level")),
                    };
                    issues.push(issue);
                }
            }
        }
    }
    issues
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
            match suggest(svc, services.keys().copied()) {
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

/// The services a service needs created first: `depends_on` (the active ones), and those whose
/// container it names (`links`, `volumes_from`, `network_mode`/`pid`/`ipc: service:NAME`).
pub(super) fn needs<'s>(s: &'s Service, by_name: &BTreeMap<&str, &Service>) -> Vec<&'s str> {
    let shared = s
        .network_mode
        .as_ref()
        .and_then(|(m, _)| m.strip_prefix("service:"));
    let mut out: Vec<&str> = s
        .depends_on
        .iter()
        .map(|d| d.service.as_str())
        .chain(shared)
        .chain(s.refs.iter().map(|r| r.service.as_str()))
        .filter(|n| by_name.contains_key(n))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The first dependency cycle, as service names ending where they began.
fn find_cycle(by_name: &BTreeMap<&str, &Service>) -> Option<Vec<String>> {
    let deps: BTreeMap<&str, Vec<&str>> = by_name
        .iter()
        .map(|(n, s)| (*n, needs(s, by_name)))
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
    // In declaration order, as before (so the cycle reported starts where the files start it).
    let mut names: Vec<(&str, (String, u32, u32))> = by_name
        .iter()
        .map(|(n, s)| (*n, (s.file.clone(), s.loc.line, s.loc.column)))
        .collect();
    names.sort_by(|a, b| a.1.cmp(&b.1));
    for (n, _) in names {
        let mut stack = Vec::new();
        if let Some(c) = visit(n, &deps, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
}

/// `memswap_limit` is memory plus swap: the engine refuses one below `mem_limit`, or one set
/// without a memory limit (issue 27: accepted at validate, refused at create).
fn check_memswap(s: &Service) -> Option<Issue> {
    let swap = s.extra.memswap_limit.filter(|w| *w > 0)?;
    let field = format!("services.{}.memswap_limit", s.name);
    let (message, hint) = match s.memory_bytes {
        None => (
            format!("service `{}` sets `memswap_limit` without `mem_limit`; the engine refuses that", s.name),
            "set `mem_limit` too, or `memswap_limit: -1` for unlimited swap".to_owned(),
        ),
        Some(mem) if swap < mem => (
            format!(
                "service `{}`: `memswap_limit` ({swap} bytes) is below `mem_limit` ({mem} bytes); the engine refuses that",
                s.name
            ),
            "`memswap_limit` counts memory plus swap: set it to at least `mem_limit`, or `-1` for unlimited swap".to_owned(),
        ),
        Some(_) => return None,
    };
    Some(Issue::new(&s.file, s.loc, &field, message).with_hint(hint))
}

/// `pull_policy: build` on a service that has no `build:` section (in any of the merged files):
/// there is nothing to build the image from, so it acts as `missing`. A warning, not an error:
/// docker-compose 1.29 accepts the file (and ignores `pull_policy`).
pub(super) fn pull_build_without_build(s: &Service) -> Option<Issue> {
    if s.extra.pull_policy != Some(crate::extra_options::PullPolicy::Build) || s.build.is_some() {
        return None;
    }
    let at = s.pull_policy_at.as_ref()?;
    Some(
        Issue::new(
            &at.file,
            at.loc,
            &at.field,
            format!(
                "service `{}` has `pull_policy: build` but no `build:` section: there is nothing to build, so its image is pulled only when missing (as `pull_policy: missing`)",
                s.name
            ),
        )
        .with_hint("add a `build:` section (`build: .`) to build the image, or write `pull_policy: missing`"),
    )
}
