//! Diff of the engine settings in [`RuntimeOptions`]: networks and aliases, user, working
//! directory, read-only root, security options, privileges and capabilities, limits and extra
//! hosts.

use std::collections::BTreeSet;

use crate::drift_report::FieldChange;
use crate::observed::ObservedContainer;
use crate::spec::{ContainerSpec, Logging, RuntimeOptions, capabilities, signal};

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
    let (ds, mut os) = (sorted(&want.security_opt), sorted(&have.security_opt));
    if have.privileged {
        // The engine turns labelling off for a privileged container on its own.
        os.retain(|o| ds.contains(o) || !matches!(o.as_str(), "label=disable" | "label:disable"));
    }
    if ds != os {
        out.push(change("security_opt", list(&ds), list(&os)));
    }
    // Never left to the engine: a container given more power than declared is drift.
    if want.privileged != have.privileged {
        out.push(change(
            "privileged",
            want.privileged.to_string(),
            have.privileged.to_string(),
        ));
    }
    for (field, d, o) in [
        ("cap_add", &want.cap_add, &have.cap_add),
        ("cap_drop", &want.cap_drop, &have.cap_drop),
    ] {
        let (d, o) = (capabilities(d), capabilities(o));
        if d != o {
            out.push(change(field, list(&d), list(&o)));
        }
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
    out.extend(declared_only_changes(want, have));
    out
}

/// The settings the engine or the image gives a value of its own (a hostname, a stop signal, a
/// log driver): compared only when declared.
fn declared_only_changes(want: &RuntimeOptions, have: &RuntimeOptions) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let text = |v: Option<String>| v.unwrap_or_else(|| "(engine default)".to_owned());
    if let Some(h) = &want.hostname
        && have.hostname.as_ref() != Some(h)
    {
        out.push(change("hostname", h.clone(), text(have.hostname.clone())));
    }
    if let Some(i) = want.init
        && have.init.unwrap_or(false) != i
    {
        out.push(change(
            "init",
            i.to_string(),
            have.init.unwrap_or(false).to_string(),
        ));
    }
    if let Some(s) = &want.stop_signal
        && have.stop_signal.as_deref().map(signal) != Some(signal(s))
    {
        out.push(change(
            "stop_signal",
            signal(s),
            text(have.stop_signal.clone()),
        ));
    }
    if let Some(t) = want.stop_timeout_secs
        && have.stop_timeout_secs != Some(t)
    {
        out.push(change(
            "stop_grace_period",
            format!("{t}s"),
            text(have.stop_timeout_secs.map(|t| format!("{t}s"))),
        ));
    }
    if let Some(m) = &want.network_mode {
        // The engine keeps `container:NAME` as `container:ID`: only the kind compares.
        let kind = |m: &str| m.split_once(':').map_or(m, |(k, _)| k).to_owned();
        let same = match m.split_once(':') {
            Some(_) => have.network_mode.as_deref().map(kind) == Some(kind(m)),
            None => have.network_mode.as_ref() == Some(m),
        };
        if !same {
            out.push(change(
                "network_mode",
                m.clone(),
                text(have.network_mode.clone()),
            ));
        }
    }
    if !want.tmpfs.is_empty() && want.tmpfs != have.tmpfs {
        let show = |m: &std::collections::BTreeMap<String, String>| {
            let v: Vec<String> = m
                .iter()
                .map(|(p, o)| {
                    if o.is_empty() {
                        p.clone()
                    } else {
                        format!("{p}:{o}")
                    }
                })
                .collect();
            list(&v)
        };
        out.push(change("tmpfs", show(&want.tmpfs), show(&have.tmpfs)));
    }
    if let Some(l) = &want.logging {
        let show = |l: &Logging| {
            let opts: Vec<String> = l.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if opts.is_empty() {
                l.driver.clone()
            } else {
                format!("{} ({})", l.driver, opts.join(", "))
            }
        };
        // The daemon adds its own defaults (`log-opts` in daemon.json): only what is declared
        // must be there, with the declared value.
        let same = have.logging.as_ref().is_some_and(|h| {
            h.driver == l.driver && l.options.iter().all(|(k, v)| h.options.get(k) == Some(v))
        });
        if !same {
            out.push(change(
                "logging",
                show(l),
                text(have.logging.as_ref().map(show)),
            ));
        }
    }
    out
}
