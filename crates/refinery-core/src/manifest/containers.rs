//! `containers:`: single containers, one spec per (node, name).

use std::collections::{BTreeMap, BTreeSet};

use super::env_files::{self, EnvFileRef};
use super::fields::{list_of, read_action, read_healthcheck, read_ignore_list, read_name};
use super::grammar;
use super::nodes::{NodeNames, read_node_refs};
use super::reader::{MapView, Reader};
use super::specs::{parse_port, parse_volume};
use crate::action::Action;
use crate::extra_options::UpdateOrder;
use crate::secret::Secret;
use crate::spec::{Bloodline, ContainerSpec, RestartPolicy};
use crate::suggestion::suggest;
use crate::yaml::Node;

pub(super) fn read_containers(
    r: &mut Reader<'_>,
    node: &Node,
    node_names: &NodeNames,
    base_dir: Option<&str>,
    env_files: &mut Vec<EnvFileRef>,
) -> Vec<ContainerSpec> {
    let mut out: Vec<ContainerSpec> = Vec::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let Some(items) = list_of(
        r,
        node,
        "containers",
        "containers: [{name: web, image: \"nginx:1.27\"}]",
    ) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("containers[{i}]");
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let name = read_name(r, &mut m, "container");
        let kind = m.get("type").and_then(|n| {
            let p = format!("{path}.type");
            let s = r.string(n, &p)?;
            if s == "docker" || s == "k8s" {
                Some(s)
            } else {
                r.error_hint(
                    n.loc,
                    &p,
                    format!("`{s}` is not a container type"),
                    "use `docker` or `k8s`",
                );
                None
            }
        });
        let image = match m.get("image") {
            Some(n) => {
                let p = format!("{path}.image");
                r.string(n, &p)
                    .and_then(|s| r.check(n.loc, &p, grammar::image_reference(&s)).map(|()| s))
            }
            None => {
                r.error(
                    item.loc,
                    &format!("{path}.image"),
                    "every container needs an `image`",
                );
                None
            }
        };
        let image_policy = m.get("image_policy").and_then(|n| {
            super::image_policy::read_image_policy(
                r,
                n,
                &format!("{path}.image_policy"),
                image.as_deref(),
            )
            .map(|(policy, _)| policy)
        });
        let nodes = read_node_refs(r, &mut m, node_names);
        let mut ports = Vec::new();
        if let Some(n) = m.get("ports") {
            let p = format!("{path}.ports");
            let mut published: BTreeMap<(String, u16, crate::spec::Protocol), String> =
                BTreeMap::new();
            if let Some(items) = list_of(r, n, &p, "ports: [\"8080:80\"]") {
                for (j, pn) in items.iter().enumerate() {
                    let pp = format!("{p}[{j}]");
                    let Some(s) = r.string(pn, &pp) else { continue };
                    match parse_port(&s) {
                        Ok(v) => {
                            for pb in v {
                                if let Some(hp) = pb.host_port {
                                    let key = (pb.host_ip.clone(), hp, pb.protocol);
                                    if let Some(first) = published.get(&key) {
                                        r.error(pn.loc, &pp, format!("host port {hp}/{} is published twice (first at `{first}`)", pb.protocol));
                                        continue;
                                    }
                                    published.insert(key, pp.clone());
                                }
                                ports.push(pb);
                            }
                        }
                        Err(e) => r.error_hint(pn.loc, &pp, e, "write `HOST:CONTAINER`, `IP:HOST:CONTAINER` or `CONTAINER`, optionally with `/tcp` or `/udp`"),
                    }
                }
            }
        }
        let mut fallback_ports = BTreeMap::new();
        if let Some(n) = m.get("fallback_ports") {
            let p = format!("{path}.fallback_ports");
            if let Some(mut fm) = r.map(n, &p) {
                if let crate::yaml::Value::Map(entries) = &n.value {
                    for (k, v) in entries {
                        let key = k.scalar().unwrap_or_default();
                        let kp = format!("{p}.{key}");
                        let Ok(hp) = key.parse::<u16>() else {
                            r.error(k.loc, &kp, format!("`{key}` is not a port number"));
                            continue;
                        };
                        if !ports.iter().any(|pb| pb.host_port == Some(hp)) {
                            r.error_hint(
                                k.loc,
                                &kp,
                                format!("port {hp} is not a published host port of this container"),
                                "key fallbacks by a host port listed under `ports`",
                            );
                        }
                        let mut alts = Vec::new();
                        for alt in r.strings_at(v, &kp).unwrap_or_default() {
                            match alt.value.parse::<u16>() {
                                Ok(p) if p > 0 => alts.push(p),
                                _ => r.error(
                                    alt.loc,
                                    &alt.field,
                                    format!("`{}` is not a port number (1-65535)", alt.value),
                                ),
                            }
                        }
                        fallback_ports.insert(hp, alts);
                    }
                }
                // Keys are ports, not fields: nothing is unknown here.
                let _ = &mut fm;
            }
        }
        let mut env = BTreeMap::new();
        let env_node = match (m.get("env"), m.get("environment")) {
            (Some(_), Some(_)) => {
                let loc = m.key_loc("environment").unwrap_or(item.loc);
                r.error_hint(
                    loc,
                    &format!("{path}.environment"),
                    "set either `env` or `environment`, not both",
                    "`environment` is another name for `env`; merge the two",
                );
                None
            }
            (Some(n), None) => Some((n, "env")),
            (None, Some(n)) => Some((n, "environment")),
            (None, None) => None,
        };
        if let Some((n, key)) = env_node {
            let p = format!("{path}.{key}");
            for e in r.key_values_at(n, &p).unwrap_or_default() {
                if r.check(e.loc, &e.field, grammar::env_name(&e.key))
                    .is_none()
                    || r.check(
                        e.loc,
                        &e.field,
                        grammar::no_nul(&format!("`{}`", e.field), &e.value),
                    )
                    .is_none()
                {
                    continue;
                }
                env.insert(e.key.clone(), Secret::for_name(&e.key, e.value));
            }
        }
        // Read from the commit (and decrypted when SOPS) by `read_env_files`.
        let env_file = m
            .get("env_file")
            .map(|n| env_files::read_refs(r, n, &format!("{path}.env_file")))
            .unwrap_or_default();
        let mut mounts = Vec::new();
        let mut content = Vec::new();
        if let Some(n) = m.get("volumes") {
            let p = format!("{path}.volumes");
            if let Some(items) = list_of(r, n, &p, "volumes: [\"data:/var/lib/data\"]") {
                for (j, vn) in items.iter().enumerate() {
                    let vp = format!("{p}[{j}]");
                    if let Some(s) = r.string(vn, &vp) {
                        match parse_volume(&s, base_dir) {
                            Ok(mnt) => {
                                if mounts.iter().any(|x: &crate::spec::Mount| x.target == mnt.target) {
                                    r.error(vn.loc, &vp, format!("`{}` is mounted twice", mnt.target));
                                }
                                // A `./` source is a repository file or folder: desired by content.
                                if s.starts_with('.')
                                    && let Some(rel) = crate::content::repo_relative("", s.split(':').next().unwrap_or_default())
                                {
                                    let mut cm = crate::content::ContentMount::new(&mnt.target, &rel);
                                    cm.declared = Some((vn.loc, vp.clone()));
                                    content.push(cm);
                                }
                                mounts.push(mnt);
                            }
                            Err(e) => r.error_hint(vn.loc, &vp, e, "write `VOLUME:/path`, `/host/path:/path[:ro]`, `./in/repo:/path[:ro]` or `/path`"),
                        }
                    }
                }
            }
        }
        mounts.sort();
        let mut argv = |key: &str| {
            let n = m.get(if key == "command" {
                "command"
            } else {
                "entrypoint"
            })?;
            let p = format!("{path}.{key}");
            let words = r.command(n, &p)?;
            for w in &words {
                r.check(n.loc, &p, grammar::no_nul(&format!("`{p}`"), w))?;
            }
            Some(words)
        };
        let command = argv("command");
        let entrypoint = argv("entrypoint");
        let mut labels = BTreeMap::new();
        if let Some(n) = m.get("labels") {
            for e in r
                .key_values_at(n, &format!("{path}.labels"))
                .unwrap_or_default()
            {
                if e.key.starts_with(crate::labels::PREFIX) {
                    r.error_hint(
                        e.loc,
                        &e.field,
                        format!("label `{}` is reserved for Refinery", e.key),
                        format!(
                            "Refinery sets the `{}*` labels itself; choose another prefix",
                            crate::labels::PREFIX
                        ),
                    );
                } else if r
                    .check(e.loc, &e.field, grammar::label_key(&e.key))
                    .is_none()
                    || r.check(
                        e.loc,
                        &e.field,
                        grammar::no_nul(&format!("`{}`", e.field), &e.value),
                    )
                    .is_none()
                {
                } else {
                    labels.insert(e.key, e.value);
                }
            }
        }
        let restart = m.get("restart").and_then(|n| {
            let p = format!("{path}.restart");
            let s = r.string(n, &p)?;
            match s.parse::<RestartPolicy>() {
                Ok(rp) => Some(rp),
                Err(e) => {
                    match suggest(&s, ["no", "always", "unless-stopped", "on-failure"]) {
                        Some(sug) => r.error_hint(n.loc, &p, e, format!("did you mean `{sug}`?")),
                        None => r.error(n.loc, &p, e),
                    }
                    None
                }
            }
        });
        let healthcheck = m
            .get("healthcheck")
            .and_then(|n| read_healthcheck(r, n, &format!("{path}.healthcheck")));
        let bloodline = m
            .get("bloodline")
            .and_then(|n| {
                let p = format!("{path}.bloodline");
                let mut b = r.map(n, &p)?;
                let creator = b
                    .get("creator")
                    .and_then(|v| r.string(v, &format!("{p}.creator")));
                let purpose = b
                    .get("purpose")
                    .and_then(|v| r.string(v, &format!("{p}.purpose")));
                b.finish(r);
                Some(Bloodline { creator, purpose })
            })
            .unwrap_or_default();
        let ignore_differences = m
            .get("ignore_differences")
            .map(|n| read_ignore_list(r, n, &format!("{path}.ignore_differences")))
            .unwrap_or_default();
        let drift_action = m.get("drift_action").and_then(|n| {
            read_action(
                r,
                n,
                &format!("{path}.drift_action"),
                &[
                    Action::Alert,
                    Action::Ignore,
                    Action::Recreate,
                    Action::Restart,
                ],
            )
        });
        let update_order = read_update_order(r, &mut m, &path, &name, &ports);
        let options = crate::spec::RuntimeOptions {
            extra: crate::extra_options::ExtraOptions {
                update_order,
                ..Default::default()
            }
            .boxed(),
            privileged: m
                .get("privileged")
                .and_then(|n| r.bool(n, &format!("{path}.privileged")))
                .unwrap_or(false),
            cap_add: read_capabilities(r, &mut m, &path, "cap_add"),
            cap_drop: read_capabilities(r, &mut m, &path, "cap_drop"),
            image_policy,
            ..Default::default()
        };
        m.finish(r);
        let (Some((name, name_loc)), Some(image)) = (name, image) else {
            continue;
        };
        if kind.as_deref() == Some("k8s") {
            r.warn(item.loc, &path, "containers of `type: k8s` are managed through `kubernetes:` entries; this one is not enforced on Docker");
            continue;
        }
        for node_name in nodes {
            env_files.extend(env_file.iter().map(|f| EnvFileRef {
                node: node_name.clone(),
                container: name.clone(),
                ..f.clone()
            }));
            if !seen.insert((node_name.clone(), name.clone())) {
                r.error(
                    name_loc,
                    &format!("{path}.name"),
                    format!("container `{name}` is declared twice on node `{node_name}`"),
                );
                continue;
            }
            out.push(ContainerSpec {
                name: name.clone(),
                node: node_name,
                image: image.clone(),
                ports: ports.clone(),
                fallback_ports: fallback_ports.clone(),
                env: env.clone(),
                mounts: mounts.clone(),
                command: command.clone(),
                entrypoint: entrypoint.clone(),
                labels: labels.clone(),
                restart: restart.unwrap_or_default(),
                healthcheck: healthcheck.clone(),
                bloodline: bloodline.clone(),
                ignore_differences: ignore_differences.clone(),
                drift_action,
                options: options.clone(),
                stack: None,
                content: content.clone(),
            });
        }
    }
    out
}

/// `update_order: start-first | stop-first`; a container that publishes a fixed host port
/// cannot have two copies running at once, so start-first falls back to stop-first, with a
/// warning here.
fn read_update_order(
    r: &mut Reader<'_>,
    m: &mut MapView<'_>,
    path: &str,
    name: &Option<(String, crate::yaml::Loc)>,
    ports: &[crate::spec::PortBinding],
) -> Option<UpdateOrder> {
    let n = m.get("update_order")?;
    let p = format!("{path}.update_order");
    let text = r.string(n, &p)?;
    let Some(order) = UpdateOrder::parse(&text) else {
        let names = UpdateOrder::NAMES;
        let hint = match suggest(&text, names) {
            Some(sug) => format!("did you mean `{sug}`?"),
            None => format!("write `{}` or `{}`", names[0], names[1]),
        };
        r.error_hint(n.loc, &p, format!("`{text}` is not an update order"), hint);
        return None;
    };
    if order == UpdateOrder::StartFirst
        && let Some(port) = ports.iter().find_map(|pb| pb.host_port)
    {
        let who = name.as_ref().map_or_else(
            || "this container".to_owned(),
            |(n, _)| format!("container `{n}`"),
        );
        r.warn_hint(
            n.loc,
            &p,
            format!("{who} publishes host port {port}, which the old and the new container cannot hold at once: it is replaced stop-first"),
            "publish no fixed host port (`ports: [\"80\"]`) for a replacement without downtime, or write `stop-first`",
        );
    }
    Some(order)
}

/// `cap_add: [NET_ADMIN]` of a container, in the form the engine reports.
fn read_capabilities(
    r: &mut Reader<'_>,
    m: &mut MapView<'_>,
    path: &str,
    key: &'static str,
) -> Vec<String> {
    let Some(n) = m.get(key) else {
        return Vec::new();
    };
    let items = r
        .strings_at(n, &format!("{path}.{key}"))
        .unwrap_or_default();
    let mut names = Vec::new();
    for item in items {
        if r.check(item.loc, &item.field, grammar::capability(&item.value))
            .is_some()
        {
            names.push(item.value);
        }
    }
    crate::spec::capabilities(&names)
}
