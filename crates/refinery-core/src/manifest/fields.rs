//! Field readers several sections share (names, lists of globs, actions, `ignore_differences`
//! paths, healthchecks); compose services read their `x-refinery` and `healthcheck` keys with
//! them too.

use super::Issue;
use super::reader::{self, MapView, Reader};
use crate::action::Action;
use crate::spec::Healthcheck;
use crate::suggestion::suggest;
use crate::yaml::{self, Loc, Node};

pub(super) fn name_ok(s: &str) -> bool {
    super::grammar::object_name("", s).is_ok()
}

pub(super) fn read_name(
    r: &mut Reader<'_>,
    m: &mut MapView<'_>,
    what: &str,
) -> Option<(String, Loc)> {
    let path = m.path_of("name");
    match m.get("name") {
        Some(n) => {
            let s = r.string(n, &path)?;
            r.check(n.loc, &path, super::grammar::object_name(what, &s))?;
            Some((s, n.loc))
        }
        None => {
            r.error(m.node.loc, &path, format!("every {what} needs a `name`"));
            None
        }
    }
}

/// A list at `path`; a scalar or mapping is an error whose hint shows the list form `example`.
pub(super) fn list_of<'n>(
    r: &mut Reader<'_>,
    node: &'n Node,
    path: &str,
    example: &str,
) -> Option<&'n [Node]> {
    match &node.value {
        yaml::Value::Seq(items) => Some(items),
        _ if node.is_null() => Some(&[]),
        _ => {
            r.error_hint(
                node.loc,
                path,
                format!("expected a list, found {}", node.kind_name()),
                format!("write a list, like `{example}`"),
            );
            None
        }
    }
}

/// Reports every item that is not a valid glob pattern, at the item.
pub(super) fn check_globs(r: &mut Reader<'_>, items: &[reader::Located]) {
    for item in items {
        if let Err(e) = globset::Glob::new(&item.value) {
            r.error_hint(item.loc, &item.field, format!("`{}` is not a valid pattern: {}", item.value, e.kind()), "patterns use `*`, `?`, `[abc]` and `{a,b}`; escape a literal `[` or `{` as `[[]` or `[{]`");
        }
    }
}

/// A list of glob patterns, each checked.
pub(super) fn read_globs(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<String> {
    let items = r.strings_at(node, path).unwrap_or_default();
    check_globs(r, &items);
    items.into_iter().map(|i| i.value).collect()
}

pub(crate) fn read_action(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
    allowed: &[Action],
) -> Option<Action> {
    let s = r.string(node, path)?;
    let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
    match Action::parse(&s) {
        Some(a) if allowed.contains(&a) => Some(a),
        Some(_) => {
            r.error_hint(
                node.loc,
                path,
                format!("`{s}` is not an action for this rule"),
                format!("allowed here: {}", names.join(", ")),
            );
            None
        }
        None => {
            let hint = match suggest(&s, names.iter().copied()) {
                Some(sug) => format!("did you mean `{sug}`? allowed here: {}", names.join(", ")),
                None => format!("allowed here: {}", names.join(", ")),
            };
            r.error_hint(node.loc, path, format!("`{s}` is not an action"), hint);
            None
        }
    }
}

/// The fields a drift can name, for `ignore_differences` (`env`, `labels`, `content`,
/// `networks`, `ulimits`, `sysctls` and `blkio_config` take a `.KEY` too).
pub const DRIFT_FIELDS: [&str; 71] = [
    "image",
    "status",
    "env",
    "labels",
    "ports",
    "volumes",
    "content",
    "command",
    "entrypoint",
    "restart",
    "healthcheck",
    "networks",
    "user",
    "working_dir",
    "read_only",
    "security_opt",
    "privileged",
    "cap_add",
    "cap_drop",
    "hostname",
    "init",
    "stop_signal",
    "stop_grace_period",
    "tmpfs",
    "logging",
    "network_mode",
    "mem_limit",
    "cpus",
    "extra_hosts",
    "expose",
    "ulimits",
    "sysctls",
    "stdin_open",
    "tty",
    "shm_size",
    "devices",
    "device_cgroup_rules",
    "pid",
    "ipc",
    "uts",
    "userns_mode",
    "cgroup",
    "cgroup_parent",
    "group_add",
    "oom_kill_disable",
    "oom_score_adj",
    "pids_limit",
    "mem_reservation",
    "memswap_limit",
    "mem_swappiness",
    "cpu_shares",
    "cpu_quota",
    "cpu_period",
    "cpuset",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_count",
    "cpu_percent",
    "blkio_config",
    "storage_opt",
    "dns",
    "dns_search",
    "dns_opt",
    "domainname",
    "mac_address",
    "links",
    "runtime",
    "isolation",
    "annotations",
    "volumes_from",
    "device_requests",
];

/// Warns when an `ignore_differences` path can match no drift field, suggesting the closest.
pub(crate) fn check_ignore_path(r: &mut Reader<'_>, loc: Loc, field: &str, pattern: &str) {
    let head = pattern
        .split(['.', '*', '?', '[', '{'])
        .next()
        .unwrap_or_default();
    // A pattern starting with a glob (`*`, `{env,labels}.X`) may match anything.
    if head.is_empty() || DRIFT_FIELDS.contains(&head) {
        return;
    }
    let mut issue = Issue::new(
        &r.file,
        loc,
        field,
        format!("`{pattern}` matches no field Refinery compares; it ignores nothing"),
    );
    // Other tools' names for the same fields, so `environment.X` suggests `env.X`.
    const ALIASES: [(&str, &str); 9] = [
        ("environment", "env"),
        ("label", "labels"),
        ("port", "ports"),
        ("volume", "volumes"),
        ("mounts", "volumes"),
        ("cmd", "command"),
        ("health", "healthcheck"),
        ("memory", "mem_limit"),
        ("files", "content"),
    ];
    let candidates = DRIFT_FIELDS
        .iter()
        .copied()
        .chain(ALIASES.iter().map(|(a, _)| *a));
    let found = suggest(head, candidates)
        .map(|s| ALIASES.iter().find(|(a, _)| *a == s).map_or(s, |(_, f)| *f));
    issue = match found {
        Some(s) => issue.with_hint(format!("did you mean `{}`?", pattern.replacen(head, s, 1))),
        None => issue.with_hint(format!("fields: {}", DRIFT_FIELDS.join(", "))),
    };
    r.warnings.push(issue);
}

/// An `ignore_differences` list, every path checked against the drift fields.
pub(super) fn read_ignore_list(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<String> {
    let items = r.strings_at(node, path).unwrap_or_default();
    for item in &items {
        check_ignore_path(r, item.loc, &item.field, &item.value);
    }
    items.into_iter().map(|i| i.value).collect()
}

pub(crate) fn read_healthcheck(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<Healthcheck> {
    let mut m = r.map(node, path)?;
    let mut h = Healthcheck::default();
    let disable = m
        .get("disable")
        .and_then(|n| r.bool(n, &format!("{path}.disable")))
        .unwrap_or(false);
    if let Some(n) = m.get("test") {
        let p = format!("{path}.test");
        if n.scalar().is_some() {
            if let Some(s) = r.string(n, &p) {
                h.test = vec!["CMD-SHELL".into(), s];
            }
        } else if let Some(list) = r.strings(n, &p) {
            match list.first().map(String::as_str) {
                Some("CMD" | "CMD-SHELL" | "NONE") => h.test = list,
                _ => r.error_hint(n.loc, &p, "a healthcheck test list must start with `CMD`, `CMD-SHELL` or `NONE`", "write `[\"CMD\", \"wget\", \"-q\", \"localhost\"]` or a plain string for a shell command"),
            }
        }
    } else if !disable {
        r.error(
            node.loc,
            &format!("{path}.test"),
            "a healthcheck needs a `test`",
        );
    }
    for (key, slot) in [
        ("interval", &mut h.interval_ms),
        ("timeout", &mut h.timeout_ms),
        ("start_period", &mut h.start_period_ms),
    ] {
        if let Some(n) = m.get(key) {
            *slot = r.duration_ms(n, &format!("{path}.{key}")).unwrap_or(0);
        }
    }
    if let Some(n) = m.get("retries") {
        let p = format!("{path}.retries");
        h.retries = match r.u64(n, &p).map(u32::try_from) {
            Some(Ok(v)) => v,
            // Too large to send: refused, not silently read as 0 (issue 27).
            Some(Err(_)) => {
                r.error_hint(
                    n.loc,
                    &p,
                    "the number of retries is too large",
                    format!("write at most {}", u32::MAX),
                );
                0
            }
            None => 0,
        };
    }
    m.finish(r);
    if disable {
        h = Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        };
    }
    Some(h)
}
