//! Diff of the engine settings in [`RuntimeOptions`]: networks, aliases and addresses, user,
//! working directory, read-only root, security options, privileges and capabilities, limits,
//! extra hosts, and the rest of the compose service schema ([`crate::ExtraOptions`]).

use std::collections::BTreeSet;

use crate::drift_report::FieldChange;
use crate::observed::{ImageDefaults, ObservedContainer};
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
    out.extend(address_changes(want, have));
    out.extend(extra_changes(spec, o));
    out
}

/// The addresses a container asked for on its networks (`ipv4_address`, …), compared where
/// declared: the engine picks them otherwise.
fn address_changes(want: &RuntimeOptions, have: &RuntimeOptions) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for n in &want.networks {
        let Some(h) = have.networks.iter().find(|h| h.name == n.name) else {
            continue;
        };
        for (key, d, o) in [
            ("ipv4_address", &n.ipv4_address, &h.ipv4_address),
            ("ipv6_address", &n.ipv6_address, &h.ipv6_address),
            ("mac_address", &n.mac_address, &h.mac_address),
        ] {
            // A stopped container has no MAC address to show.
            let unknown = key == "mac_address" && o.is_none();
            if let Some(d) = d
                && !unknown
                && o.as_deref().map(str::to_ascii_lowercase) != Some(d.to_ascii_lowercase())
            {
                out.push(change(
                    &format!("networks.{}.{key}", n.name),
                    d.clone(),
                    or_none(o.as_deref()),
                ));
            }
        }
        if !n.link_local_ips.is_empty() && sorted(&n.link_local_ips) != sorted(&h.link_local_ips) {
            out.push(change(
                &format!("networks.{}.link_local_ips", n.name),
                list(&n.link_local_ips),
                list(&h.link_local_ips),
            ));
        }
    }
    out
}

fn or_none(v: Option<&str>) -> String {
    v.map_or_else(|| "(none)".to_owned(), str::to_owned)
}

fn num(v: Option<i64>) -> String {
    v.map_or_else(|| "(none)".to_owned(), |n| n.to_string())
}

/// The ports a container made from `spec` exposes: declared (`expose`), published (`ports`) and
/// the image's, as `3000/tcp`, sorted.
#[must_use]
pub fn exposed(spec: &ContainerSpec, image: &ImageDefaults) -> Vec<String> {
    let mut v: Vec<String> = spec.options.extra().expose.clone();
    v.extend(
        spec.ports
            .iter()
            .map(|p| format!("{}/{}", p.container_port, p.protocol)),
    );
    v.extend(image.exposed_ports.iter().cloned());
    v.sort();
    v.dedup();
    v
}

/// Whether two namespace modes are the same: `container:NAME` and the engine's `container:ID`
/// compare by kind only.
fn same_mode(want: &str, have: Option<&str>) -> bool {
    match want.split_once(':') {
        Some((kind, _)) => have
            .and_then(|h| h.split_once(':'))
            .is_some_and(|(k, _)| k == kind),
        None => have == Some(want),
    }
}

/// The rest of the compose service schema ([`crate::ExtraOptions`]). Settings the engine always
/// has a value for (`shm_size`, `ipc`, `cgroup`, `runtime`, `ulimits`, `sysctls`, swap) are
/// compared where declared; a declared one the engine reads as its default matches when it is
/// that default. Settings a kernel or engine may not apply (`mem_swappiness`, `blkio_config`,
/// real-time CPU, `annotations`, `isolation`, a healthcheck's `start_interval`) are compared
/// where both sides have them.
/// `platform` and `pull_policy` shape the pull, not the container: never compared.
#[must_use]
pub fn extra_changes(spec: &ContainerSpec, o: &ObservedContainer) -> Vec<FieldChange> {
    let (want, have) = (spec.options.extra(), o.options.extra());
    let mut out = Vec::new();
    let empty = ImageDefaults::default();
    let image = o.image_defaults.as_ref().unwrap_or(&empty);

    // Full comparisons: unset on one side is unset on the other.
    let want_exposed = exposed(spec, image);
    let mut have_exposed = sorted(&have.expose);
    // Containers from before `expose` was read report what their ports and image expose.
    if have_exposed.is_empty() && want.expose.is_empty() {
        have_exposed.clone_from(&want_exposed);
    }
    if want_exposed != have_exposed {
        out.push(change("expose", list(&want_exposed), list(&have_exposed)));
    }
    for (field, d, h) in [
        ("stdin_open", want.stdin_open, have.stdin_open),
        ("tty", want.tty, have.tty),
    ] {
        if d != h {
            out.push(change(field, d.to_string(), h.to_string()));
        }
    }
    let shown = |v: &[crate::extra_options::Device]| -> Vec<String> {
        let mut s: Vec<String> = v.iter().map(ToString::to_string).collect();
        s.sort();
        s
    };
    let (dd, hd) = (shown(&want.devices), shown(&have.devices));
    if dd != hd {
        out.push(change("devices", list(&dd), list(&hd)));
    }
    for (field, d, h) in [
        (
            "device_cgroup_rules",
            &want.device_cgroup_rules,
            &have.device_cgroup_rules,
        ),
        ("group_add", &want.group_add, &have.group_add),
        ("links", &want.links, &have.links),
    ] {
        let (d, h) = (sorted(d), sorted(h));
        if d != h {
            out.push(change(field, list(&d), list(&h)));
        }
    }
    for (field, d, h) in [
        ("dns", &want.dns, &have.dns),
        ("dns_search", &want.dns_search, &have.dns_search),
        ("dns_opt", &want.dns_opt, &have.dns_opt),
        ("volumes_from", &want.volumes_from, &have.volumes_from),
    ] {
        if d != h {
            out.push(change(field, list(d), list(h)));
        }
    }
    for (field, d, h) in [
        ("pid", &want.pid, &have.pid),
        ("uts", &want.uts, &have.uts),
        ("userns_mode", &want.userns_mode, &have.userns_mode),
        ("cgroup_parent", &want.cgroup_parent, &have.cgroup_parent),
        ("cpuset", &want.cpuset, &have.cpuset),
        ("domainname", &want.domainname, &have.domainname),
    ] {
        let same = match d {
            Some(d) => same_mode(d, h.as_deref()),
            None => h.is_none(),
        };
        if !same {
            out.push(change(field, or_none(d.as_deref()), or_none(h.as_deref())));
        }
    }
    // Zero (or a negative pids limit) is the engine's "unset".
    let set = |v: Option<i64>| v.filter(|n| *n > 0);
    let signed = |v: Option<i64>| v.filter(|n| *n != 0);
    for (field, d, h) in [
        (
            "oom_score_adj",
            signed(want.oom_score_adj),
            signed(have.oom_score_adj),
        ),
        ("pids_limit", set(want.pids_limit), set(have.pids_limit)),
        (
            "mem_reservation",
            set(want.mem_reservation),
            set(have.mem_reservation),
        ),
        ("cpu_shares", set(want.cpu_shares), set(have.cpu_shares)),
        ("cpu_quota", set(want.cpu_quota), set(have.cpu_quota)),
        ("cpu_period", set(want.cpu_period), set(have.cpu_period)),
        ("cpu_count", set(want.cpu_count), set(have.cpu_count)),
        ("cpu_percent", set(want.cpu_percent), set(have.cpu_percent)),
    ] {
        if d != h {
            out.push(change(field, num(d), num(h)));
        }
    }
    let reqs = |v: &[crate::extra_options::DeviceRequest]| -> Vec<String> {
        let mut s: Vec<String> = v.iter().map(ToString::to_string).collect();
        s.sort();
        s
    };
    let (dr, hr) = (reqs(&want.device_requests), reqs(&have.device_requests));
    if dr != hr {
        out.push(change("device_requests", list(&dr), list(&hr)));
    }
    if want.storage_opt != have.storage_opt {
        out.push(change(
            "storage_opt",
            pairs(&want.storage_opt),
            pairs(&have.storage_opt),
        ));
    }

    // Compared where declared; the engine's default reads as unset.
    for (name, limit) in &want.ulimits {
        let h = have.ulimits.get(name);
        if h != Some(limit) {
            out.push(change(
                &format!("ulimits.{name}"),
                format!("{}:{}", limit.soft, limit.hard),
                h.map_or_else(
                    || "(engine default)".to_owned(),
                    |u| format!("{}:{}", u.soft, u.hard),
                ),
            ));
        }
    }
    for (key, value) in &want.sysctls {
        let h = have.sysctls.get(key);
        if h != Some(value) {
            out.push(change(
                &format!("sysctls.{key}"),
                value.clone(),
                h.cloned().unwrap_or_else(|| "(engine default)".to_owned()),
            ));
        }
    }
    if let Some(d) = want.shm_size
        && have.shm_size.unwrap_or(DEFAULT_SHM_SIZE) != d
    {
        out.push(change(
            "shm_size",
            d.to_string(),
            have.shm_size.unwrap_or(DEFAULT_SHM_SIZE).to_string(),
        ));
    }
    for (field, d, h, defaults) in [
        ("ipc", &want.ipc, &have.ipc, &["private", "shareable"][..]),
        (
            "cgroup",
            &want.cgroup,
            &have.cgroup,
            &["host", "private"][..],
        ),
        ("runtime", &want.runtime, &have.runtime, &["runc"][..]),
        (
            "isolation",
            &want.isolation,
            &have.isolation,
            &["default", ""][..],
        ),
    ] {
        let Some(d) = d else { continue };
        let same = match h {
            Some(h) => same_mode(d, Some(h)) || h.eq_ignore_ascii_case(d),
            None => defaults.contains(&d.as_str()),
        };
        if !same {
            out.push(change(
                field,
                d.clone(),
                h.clone().unwrap_or_else(|| "(engine default)".to_owned()),
            ));
        }
    }
    // The engine reports a container's MAC address on its networks (none while it is stopped).
    if let Some(d) = &want.mac_address {
        let seen: Vec<String> = o
            .options
            .networks
            .iter()
            .filter_map(|n| n.mac_address.as_deref().map(str::to_ascii_lowercase))
            .collect();
        if !seen.is_empty() && !seen.contains(&d.to_ascii_lowercase()) {
            out.push(change("mac_address", d.clone(), list(&seen)));
        }
    }
    if let Some(d) = want.oom_kill_disable
        && have.oom_kill_disable.unwrap_or(false) != d
    {
        out.push(change(
            "oom_kill_disable",
            d.to_string(),
            have.oom_kill_disable.unwrap_or(false).to_string(),
        ));
    }
    if let Some(d) = want.memswap_limit
        && have.memswap_limit != Some(d)
    {
        out.push(change(
            "memswap_limit",
            d.to_string(),
            num(have.memswap_limit),
        ));
    }

    // Compared where both sides have them: a kernel or an older engine may not apply them.
    for (field, d, h) in [
        ("mem_swappiness", want.mem_swappiness, have.mem_swappiness),
        ("cpu_rt_period", want.cpu_rt_period, have.cpu_rt_period),
        ("cpu_rt_runtime", want.cpu_rt_runtime, have.cpu_rt_runtime),
        (
            "blkio_config.weight",
            want.blkio.weight.map(i64::from),
            have.blkio.weight.map(i64::from),
        ),
    ] {
        if let (Some(d), Some(h)) = (d, h)
            && d != h
        {
            out.push(change(field, d.to_string(), h.to_string()));
        }
    }
    for (field, d, h) in [
        (
            "blkio_config.device_read_bps",
            &want.blkio.device_read_bps,
            &have.blkio.device_read_bps,
        ),
        (
            "blkio_config.device_write_bps",
            &want.blkio.device_write_bps,
            &have.blkio.device_write_bps,
        ),
        (
            "blkio_config.device_read_iops",
            &want.blkio.device_read_iops,
            &have.blkio.device_read_iops,
        ),
        (
            "blkio_config.device_write_iops",
            &want.blkio.device_write_iops,
            &have.blkio.device_write_iops,
        ),
    ] {
        if !d.is_empty() && !h.is_empty() && d != h {
            let show = |v: &[(String, i64)]| {
                list(
                    &v.iter()
                        .map(|(p, r)| format!("{p}:{r}"))
                        .collect::<Vec<_>>(),
                )
            };
            out.push(change(field, show(d), show(h)));
        }
    }
    if !want.blkio.weight_device.is_empty()
        && !have.blkio.weight_device.is_empty()
        && want.blkio.weight_device != have.blkio.weight_device
    {
        let show = |v: &[(String, u16)]| {
            list(
                &v.iter()
                    .map(|(p, w)| format!("{p}:{w}"))
                    .collect::<Vec<_>>(),
            )
        };
        out.push(change(
            "blkio_config.weight_device",
            show(&want.blkio.weight_device),
            show(&have.blkio.weight_device),
        ));
    }
    // A bind's propagation: the engine reports every bind's, `rprivate` (its default) reading as
    // unset.
    if want.bind_propagation != have.bind_propagation {
        out.push(change(
            "volumes.propagation",
            pairs(&want.bind_propagation),
            pairs(&have.bind_propagation),
        ));
    }
    if let (Some(d), Some(h)) = (want.health_start_interval_ms, have.health_start_interval_ms)
        && d != h
    {
        out.push(change(
            "healthcheck.start_interval",
            format!("{d}ms"),
            format!("{h}ms"),
        ));
    }
    if !have.annotations.is_empty() && want.annotations != have.annotations {
        out.push(change(
            "annotations",
            pairs(&want.annotations),
            pairs(&have.annotations),
        ));
    }
    out
}

/// The engine's `/dev/shm` size when none is asked for (64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

fn pairs(m: &std::collections::BTreeMap<String, String>) -> String {
    let v: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    list(&v)
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
