//! The top-level `networks:` and `volumes:` sections: what each declares, merged over the files
//! key by key; engine names are given once the project name is known.

use std::collections::BTreeMap;

use crate::manifest::reader::Reader;
use crate::spec::{Ipam, IpamPool};
use crate::yaml::{Loc, Node, Value};

/// A network or volume as the files declare it. `None` is "not said" (so a later file can set
/// one key without resetting the others).
#[derive(Debug, Clone, Default)]
pub(super) struct TopLevel {
    /// `name:`: the engine name as is, instead of `<project>_<key>`.
    pub name: Option<String>,
    pub driver: Option<String>,
    pub external: Option<bool>,
    pub labels: BTreeMap<String, String>,
    /// `driver_opts`.
    pub options: BTreeMap<String, String>,
    pub ipam: Option<Ipam>,
    pub internal: Option<bool>,
    pub attachable: Option<bool>,
    pub enable_ipv6: Option<bool>,
    /// Where it was (last) declared.
    pub file: String,
    pub loc: Loc,
}

impl TopLevel {
    fn merge(&mut self, o: TopLevel) {
        fn over<T>(a: &mut Option<T>, b: Option<T>) {
            if b.is_some() {
                *a = b;
            }
        }
        over(&mut self.name, o.name);
        over(&mut self.driver, o.driver);
        over(&mut self.external, o.external);
        self.labels.extend(o.labels);
        self.options.extend(o.options);
        over(&mut self.ipam, o.ipam);
        over(&mut self.internal, o.internal);
        over(&mut self.attachable, o.attachable);
        over(&mut self.enable_ipv6, o.enable_ipv6);
        self.file = o.file;
        self.loc = o.loc;
    }

    /// The name on the engine: `name:`, else the key for an external one, else
    /// `<project>_<key>`.
    pub fn engine_name(&self, project: &str, key: &str) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None if self.external == Some(true) => key.to_owned(),
            None => format!("{project}_{key}"),
        }
    }

    pub fn is_external(&self) -> bool {
        self.external == Some(true)
    }
}

/// Whether the section read is `networks:` or `volumes:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Networks,
    Volumes,
}

impl Section {
    fn key(self) -> &'static str {
        match self {
            Section::Networks => "networks",
            Section::Volumes => "volumes",
        }
    }
}

/// Reads one file's `networks:` or `volumes:` into `out`, merging over earlier files.
pub(super) fn read_section(
    r: &mut Reader<'_>,
    node: &Node,
    file: &str,
    section: Section,
    out: &mut BTreeMap<String, TopLevel>,
) {
    let key = section.key();
    if r.map(node, key).is_none() {
        return;
    }
    let Value::Map(items) = &node.value else {
        return;
    };
    for (k, v) in items {
        let Some(name) = k.scalar() else { continue };
        let path = format!("{key}.{name}");
        if let Some(mut t) = read_one(r, v, &path, section) {
            t.file = file.to_owned();
            t.loc = k.loc;
            match out.get_mut(name) {
                Some(existing) => existing.merge(t),
                None => {
                    out.insert(name.to_owned(), t);
                }
            }
        }
    }
}

fn read_one(r: &mut Reader<'_>, node: &Node, path: &str, section: Section) -> Option<TopLevel> {
    let mut t = TopLevel::default();
    if node.is_null() {
        return Some(t);
    }
    let mut m = r.map(node, path)?;
    if let Some(n) = m.get("name") {
        t.name = r.string(n, &format!("{path}.name"));
    }
    if let Some(n) = m.get("driver") {
        t.driver = r.string(n, &format!("{path}.driver"));
    }
    if let Some(n) = m.get("external") {
        let p = format!("{path}.external");
        match &n.value {
            // The old form `external: {name: NAME}`.
            Value::Map(_) => {
                if let Some(mut e) = r.map(n, &p) {
                    if let Some(en) = e.get("name") {
                        t.name = r.string(en, &format!("{p}.name"));
                    }
                    e.finish(r);
                }
                t.external = Some(true);
            }
            _ => t.external = r.bool(n, &p),
        }
    }
    if let Some(n) = m.get("labels") {
        for kv in r
            .key_values_at(n, &format!("{path}.labels"))
            .unwrap_or_default()
        {
            t.labels.insert(kv.key, kv.value);
        }
    }
    if let Some(n) = m.get("driver_opts") {
        for kv in r
            .key_values_at(n, &format!("{path}.driver_opts"))
            .unwrap_or_default()
        {
            t.options.insert(kv.key, kv.value);
        }
    }
    if section == Section::Networks {
        if let Some(n) = m.get("ipam") {
            t.ipam = read_ipam(r, n, &format!("{path}.ipam"));
        }
        for (key, slot) in [
            ("internal", &mut t.internal),
            ("attachable", &mut t.attachable),
            ("enable_ipv6", &mut t.enable_ipv6),
        ] {
            if let Some(n) = m.get(key) {
                *slot = r.bool(n, &format!("{path}.{key}"));
            }
        }
        if let Some(n) = m.get("enable_ipv4") {
            let p = format!("{path}.enable_ipv4");
            if r.bool(n, &p) == Some(false) {
                r.error_hint(
                    n.loc,
                    &p,
                    "an IPv6-only network is not supported by Refinery",
                    "it needs Docker API 1.47 or later; leave `enable_ipv4` out",
                );
            }
        }
    }
    let declares_more = t.driver.is_some()
        || !t.options.is_empty()
        || t.ipam.is_some()
        || t.internal.is_some()
        || t.attachable.is_some()
        || t.enable_ipv6.is_some();
    if t.is_external() && declares_more {
        r.error_hint(
            node.loc,
            path,
            "an `external` network or volume is made elsewhere: it takes only `name`",
            "remove the other keys, or `external: true` to have it created",
        );
    }
    m.with_extensions().finish(r);
    Some(t)
}

/// `ipam: {driver, config: [{subnet, ip_range, gateway, aux_addresses}], options}`.
fn read_ipam(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<Ipam> {
    let mut m = r.map(node, path)?;
    let mut ipam = Ipam::default();
    if let Some(n) = m.get("driver") {
        ipam.driver = r.string(n, &format!("{path}.driver"));
    }
    if let Some(n) = m.get("options") {
        ipam.options = r
            .string_map(n, &format!("{path}.options"))
            .unwrap_or_default();
    }
    if let Some(n) = m.get("config")
        && let Some(items) = r.seq(n, &format!("{path}.config"))
    {
        for (i, item) in items.iter().enumerate() {
            let f = format!("{path}.config[{i}]");
            let Some(mut c) = r.map(item, &f) else {
                continue;
            };
            let mut pool = IpamPool::default();
            for (key, slot) in [
                ("subnet", &mut pool.subnet),
                ("ip_range", &mut pool.ip_range),
                ("gateway", &mut pool.gateway),
            ] {
                if let Some(v) = c.get(key) {
                    *slot = r.string(v, &format!("{f}.{key}"));
                }
            }
            if let Some(v) = c.get("aux_addresses") {
                pool.aux_addresses = r
                    .string_map(v, &format!("{f}.aux_addresses"))
                    .unwrap_or_default();
            }
            c.with_extensions().finish(r);
            ipam.pools.push(pool);
        }
    }
    m.with_extensions().finish(r);
    Some(ipam)
}
