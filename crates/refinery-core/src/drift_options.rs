//! Diff of the engine settings in [`RuntimeOptions`]: networks and aliases, user, working
//! directory, read-only root, security options, limits and extra hosts.

use std::collections::BTreeSet;

use crate::drift::FieldChange;
use crate::observed::ObservedContainer;
use crate::spec::{ContainerSpec, RuntimeOptions};

fn change(field: &str, desired: String, observed: String) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        desired,
        observed,
        ignored: false,
    }
}

fn or_default(v: Option<&str>) -> String {
    v.map_or_else(|| "(image default)".to_owned(), str::to_owned)
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".to_owned()
    } else {
        v.join(", ")
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// The field changes between the declared options and the observed ones. A spec that declares
/// no networks keeps whatever network the engine gave the container; a declared user or working
/// directory of `None` keeps the image's. Declared aliases must all be there; the engine adds
/// the container's short id (and compose the service name) on its own.
#[must_use]
pub fn option_changes(spec: &ContainerSpec, o: &ObservedContainer) -> Vec<FieldChange> {
    let (want, have): (&RuntimeOptions, &RuntimeOptions) = (&spec.options, &o.options);
    let mut out = Vec::new();

    if !want.networks.is_empty() {
        let names = |opts: &RuntimeOptions| -> Vec<String> {
            let mut v: Vec<String> = opts.networks.iter().map(|n| n.name.clone()).collect();
            v.sort();
            v
        };
        let (dn, on) = (names(want), names(have));
        if dn != on {
            out.push(change("networks", list(&dn), list(&on)));
        } else {
            for n in &want.networks {
                let seen: BTreeSet<&str> = have
                    .networks
                    .iter()
                    .find(|h| h.name == n.name)
                    .map(|h| h.aliases.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                let missing: Vec<String> = n
                    .aliases
                    .iter()
                    .filter(|a| !seen.contains(a.as_str()))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    let mut observed: Vec<String> = seen.iter().map(|s| (*s).to_owned()).collect();
                    observed.sort();
                    out.push(change(
                        &format!("networks.{}.aliases", n.name),
                        list(&n.aliases),
                        list(&observed),
                    ));
                }
            }
        }
    }
    if let Some(user) = &want.user
        && have.user.as_deref().unwrap_or("") != user
    {
        out.push(change(
            "user",
            user.clone(),
            or_default(have.user.as_deref()),
        ));
    }
    if let Some(dir) = &want.working_dir
        && have.working_dir.as_deref().unwrap_or("") != dir
    {
        out.push(change(
            "working_dir",
            dir.clone(),
            or_default(have.working_dir.as_deref()),
        ));
    }
    if want.read_only != have.read_only {
        out.push(change(
            "read_only",
            want.read_only.to_string(),
            have.read_only.to_string(),
        ));
    }
    let (ds, os) = (sorted(&want.security_opt), sorted(&have.security_opt));
    if ds != os {
        out.push(change("security_opt", list(&ds), list(&os)));
    }
    let limit = |v: Option<i64>| v.filter(|n| *n != 0);
    let show = |v: Option<i64>| v.map_or_else(|| "(none)".to_owned(), |n| n.to_string());
    if limit(want.memory_bytes) != limit(have.memory_bytes) {
        out.push(change(
            "mem_limit",
            show(limit(want.memory_bytes)),
            show(limit(have.memory_bytes)),
        ));
    }
    if limit(want.nano_cpus) != limit(have.nano_cpus) {
        out.push(change(
            "cpus",
            show(limit(want.nano_cpus)),
            show(limit(have.nano_cpus)),
        ));
    }
    let (dh, oh) = (sorted(&want.extra_hosts), sorted(&have.extra_hosts));
    if dh != oh {
        out.push(change("extra_hosts", list(&dh), list(&oh)));
    }
    out
}
