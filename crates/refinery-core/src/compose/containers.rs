//! A checked project turned into what everything downstream handles: one [`ContainerSpec`] per
//! service replica (named and labelled as docker compose names and labels them), and the
//! networks and named volumes the enabled services use.

use std::collections::{BTreeMap, BTreeSet};

use crate::content::ContentMount;
use crate::extra_options::ExtraOptions;
use crate::labels::{COMPOSE_VERSION, LABEL_NETWORK, LABEL_PROJECT, LABEL_VERSION, LABEL_VOLUME};
use crate::manifest::{Issue, StackSpec};
use crate::spec::{
    Bloodline, BuildSpec, ContainerSpec, Declared, Dependency, DependencyCondition, Mount,
    MountKind, NetworkAttachment, NetworkSpec, PortBinding, RuntimeOptions, StackMember,
    VolumeSpec, capabilities, container_name,
};

use super::build::{build_tag, resolve_build};
use super::networks::TopLevel;
use super::project::Project;
use super::service::Service;
use super::{Expanded, StackSource};

/// The containers, networks and volumes of the enabled services (`active`, in declaration
/// order); problems (a build context missing, a service without an image) go to `issues`. Each
/// part of a service is made by its own function below (build, image, dependencies, networks,
/// mounts, ports, options), then one container per replica.
pub(super) fn emit(
    stack: &StackSpec,
    project_name: &str,
    src: &StackSource<'_>,
    project: &Project,
    active: &[&Service],
    issues: &mut Vec<Issue>,
) -> Expanded {
    let cx = Stack {
        stack,
        project_name,
        src,
        project,
        by_name: active.iter().map(|s| (s.name.as_str(), *s)).collect(),
        default_network: TopLevel::default(),
    };
    let mut out = Expanded {
        project: project_name.to_owned(),
        ..Expanded::default()
    };
    let mut used_networks: BTreeSet<String> = BTreeSet::new();
    for s in active {
        let Some(build) = cx.build(s, issues, &mut out.warnings) else {
            continue;
        };
        let Some(image) = cx.image(s, build.as_ref(), issues) else {
            continue;
        };
        let (mut depends_on, extra) = cx.dependencies(s);
        let network_mode = cx.network_mode(s, &mut depends_on);
        let attachments = cx.attachments(s, network_mode.is_some(), &mut used_networks);
        let (mounts, content) = cx.mounts(s);
        let ports = cx.ports(s, network_mode.as_deref(), &mut out.warnings);
        if let Some(w) = start_first_blocked(s, &extra, &ports) {
            out.warnings.push(w);
        }
        let mut options = options(s, attachments, network_mode, extra);
        options.image_policy = image_policy(s, &image, build.is_some(), issues);
        let member = StackMember {
            project: project_name.to_owned(),
            service: s.name.clone(),
            number: 0,
            working_dir: project.abs_dir.clone(),
            config_files: project.files.join(","),
            depends_on,
            build,
        };
        // Docker compose makes `deploy.restart_policy` the container's policy, over `restart`.
        let restart = s.deploy_restart.or(s.restart).unwrap_or_default();
        for n in 1..=s.replicas.unwrap_or(1) {
            out.containers.push(ContainerSpec {
                name: cx.name_of(s, n),
                node: stack.node.clone(),
                image: image.clone(),
                ports: ports.clone(),
                fallback_ports: BTreeMap::new(),
                env: s.env.clone(),
                mounts: mounts.clone(),
                command: s.command.clone(),
                entrypoint: s.entrypoint.clone(),
                labels: s.labels.clone(),
                restart,
                healthcheck: s.healthcheck.clone(),
                bloodline: Bloodline::default(),
                ignore_differences: s.ignore_differences.clone(),
                drift_action: s.drift_action,
                options: options.clone(),
                stack: Some(Box::new(StackMember {
                    number: n,
                    ..member.clone()
                })),
                content: content.clone(),
            });
        }
    }
    out.networks = cx.networks(&used_networks);
    out.volumes = cx.volumes(active);
    out
}

/// One stack's project and its enabled services, by name.
struct Stack<'a> {
    stack: &'a StackSpec,
    project_name: &'a str,
    src: &'a StackSource<'a>,
    project: &'a Project,
    by_name: BTreeMap<&'a str, &'a Service>,
    /// A `default` network the files do not declare.
    default_network: TopLevel,
}

impl Stack<'_> {
    /// The container of replica `n` of `svc`: its `container_name`, else compose's name.
    fn name_of(&self, svc: &Service, n: u32) -> String {
        svc.container_name
            .clone()
            .unwrap_or_else(|| container_name(self.project_name, &svc.name, n))
    }

    fn replicas_of(&self, name: &str) -> u32 {
        self.by_name
            .get(name)
            .map_or(1, |s| s.replicas.unwrap_or(1))
    }

    /// The first container of the service `svc`.
    fn first_of(&self, svc: &str) -> String {
        self.by_name
            .get(svc)
            .map(|d| self.name_of(d, 1))
            .unwrap_or_default()
    }

    fn network(&self, key: &str) -> &TopLevel {
        self.project
            .model
            .networks
            .get(key)
            .unwrap_or(&self.default_network)
    }

    /// `build:` read from the commit (`Some(None)` without one); `None` when its context is
    /// wrong, reported in `issues`. Build keys the classic builder does without are a warning.
    fn build(
        &self,
        s: &Service,
        issues: &mut Vec<Issue>,
        warnings: &mut Vec<Issue>,
    ) -> Option<Option<BuildSpec>> {
        let build = match &s.build {
            Some(b) => match resolve_build(b, &self.project.dir, self.src.read_tree) {
                Ok(spec) => Some(spec),
                Err(issue) => {
                    issues.push(issue.with_field(&format!("services.{}.build", s.name), &s.name));
                    return None;
                }
            },
            None => None,
        };
        warnings.extend(super::checks::pull_build_without_build(s));
        if let Some(b) = &s.build
            && !b.ignored.is_empty()
        {
            let keys: Vec<String> = b
                .ignored
                .iter()
                .map(|(k, _)| format!("`build.{k}`"))
                .collect();
            warnings.push(
                Issue::new(
                    &b.file,
                    b.ignored[0].1,
                    &format!("services.{}.build", s.name),
                    format!(
                        "service `{}`: {} {} ignored: Refinery builds with the engine's classic builder, which does without",
                        s.name,
                        keys.join(", "),
                        if keys.len() == 1 { "is" } else { "are" }
                    ),
                ),
            );
        }
        Some(build)
    }

    /// `image:`, else the tag its build is given; `None` (reported) without either.
    fn image(
        &self,
        s: &Service,
        build: Option<&BuildSpec>,
        issues: &mut Vec<Issue>,
    ) -> Option<String> {
        match (&s.image, build) {
            (Some(image), _) => Some(image.clone()),
            (None, Some(b)) => Some(build_tag(self.project_name, &s.name, b)),
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
                None
            }
        }
    }

    /// `depends_on`, and the other services' containers named by `links`, `volumes_from`,
    /// `pid` and `ipc` (those are created first too), with the engine options they make.
    fn dependencies(&self, s: &Service) -> (Vec<Dependency>, ExtraOptions) {
        let mut depends_on = Vec::new();
        for d in &s.depends_on {
            // An absent dependency is an error found before, unless it is `required: false`.
            let Some(dep) = self.by_name.get(d.service.as_str()) else {
                continue;
            };
            for n in 1..=self.replicas_of(&d.service) {
                depends_on.push(Dependency {
                    container: self.name_of(dep, n),
                    condition: d.condition,
                    restart: d.restart,
                    required: d.required,
                });
            }
        }
        let mut extra = s.extra.clone();
        // Other services' containers, named: they are created first.
        for r in &s.refs {
            let Some(dep) = self.by_name.get(r.service.as_str()) else {
                continue;
            };
            let first = self.name_of(dep, 1);
            match r.key {
                "links" => extra.links.push(format!("{first}:{}", r.detail)),
                "volumes_from" if r.detail == "ro" => {
                    extra.volumes_from.push(format!("{first}:ro"))
                }
                "volumes_from" => extra.volumes_from.push(first.clone()),
                "pid" => extra.pid = Some(format!("container:{first}")),
                _ => extra.ipc = Some(format!("container:{first}")),
            }
            if !depends_on.iter().any(|d| d.container == first) {
                depends_on.push(started(first));
            }
        }
        extra.stdin_open = s.stdin_open.unwrap_or(false);
        extra.tty = s.tty.unwrap_or(false);
        extra.expose.sort();
        extra.expose.dedup();
        extra.links.sort();
        extra.links.dedup();
        extra.group_add.sort();
        extra.group_add.dedup();
        extra.devices.sort();
        extra.device_requests.sort();
        (depends_on, extra)
    }

    /// `network_mode:`; `service:NAME` shares the network of that service's first container,
    /// which is then created first.
    fn network_mode(&self, s: &Service, depends_on: &mut Vec<Dependency>) -> Option<String> {
        s.network_mode
            .as_ref()
            .map(|(m, _)| match m.split_once(':') {
                Some(("service", svc)) => {
                    let first = self.first_of(svc);
                    if !depends_on.iter().any(|d| d.container == first) {
                        depends_on.push(started(first.clone()));
                    }
                    format!("container:{first}")
                }
                _ => m.clone(),
            })
    }

    /// The networks a service joins (none with a `network_mode`; `default` without `networks:`),
    /// each with the service's name as an alias; the networks used are noted in `used`.
    fn attachments(
        &self,
        s: &Service,
        has_network_mode: bool,
        used: &mut BTreeSet<String>,
    ) -> Vec<NetworkAttachment> {
        let mut attachments: Vec<NetworkAttachment> = match &s.networks {
            _ if has_network_mode => Vec::new(),
            Some(n) if !n.is_empty() => n
                .iter()
                .map(|(k, net)| {
                    used.insert(k.clone());
                    let mut aliases = net.aliases.clone();
                    aliases.push(s.name.clone());
                    aliases.sort();
                    aliases.dedup();
                    NetworkAttachment {
                        name: self.network(k).engine_name(self.project_name, k),
                        aliases,
                        ipv4_address: net.ipv4_address.clone(),
                        ipv6_address: net.ipv6_address.clone(),
                        link_local_ips: net.link_local_ips.clone(),
                        mac_address: net.mac_address.clone(),
                        priority: net.priority,
                    }
                })
                .collect(),
            _ => {
                used.insert("default".to_owned());
                vec![NetworkAttachment {
                    name: self
                        .network("default")
                        .engine_name(self.project_name, "default"),
                    aliases: vec![s.name.clone()],
                    ..NetworkAttachment::default()
                }]
            }
        };
        attachments.sort();
        attachments
    }

    /// The mounts (named volumes by their engine names, configs and secrets as read-only binds
    /// of their files) and the content-tracked ones among them (with the stack's env file).
    fn mounts(&self, s: &Service) -> (Vec<Mount>, Vec<ContentMount>) {
        let model = &self.project.model;
        let mut mounts = s.mounts.clone();
        for m in &mut mounts {
            if m.kind == MountKind::Volume
                && let Some(t) = model.volumes.get(&m.source)
            {
                m.source = t.engine_name(self.project_name, &m.source);
            }
        }
        let mut content = s.content.clone();
        for c in &s.configs {
            let Some(rel) = model.configs.files.get(&(c.kind, c.name.clone())) else {
                continue;
            };
            mounts.retain(|m| m.target != c.target);
            content.retain(|m| m.target != c.target);
            mounts.push(Mount {
                kind: MountKind::Bind,
                source: abs_path(self.src.base_dir, rel),
                target: c.target.clone(),
                read_only: true,
            });
            content.push(ContentMount::new(&c.target, rel));
        }
        content.extend(self.project.env_file.clone());
        mounts.sort();
        content.sort_by(|a, b| (&a.target, &a.repo_path).cmp(&(&b.target, &b.repo_path)));
        content.dedup_by(|a, b| a.target == b.target && a.repo_path == b.repo_path);
        (mounts, content)
    }

    /// The published ports; none (with a warning) on the host's network.
    fn ports(
        &self,
        s: &Service,
        network_mode: Option<&str>,
        warnings: &mut Vec<Issue>,
    ) -> Vec<PortBinding> {
        let mut ports = s.ports.clone();
        ports.sort();
        ports.dedup();
        if network_mode == Some("host") && !ports.is_empty() {
            // The engine drops them (the container listens on the host's ports): declared, they
            // would be drift forever.
            warnings.push(
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
        ports
    }

    /// The networks the enabled services use, labelled as docker compose labels them.
    fn networks(&self, used: &BTreeSet<String>) -> Vec<NetworkSpec> {
        used.iter()
            .map(|key| {
                let t = self.network(key);
                let external = t.is_external();
                NetworkSpec {
                    node: self.stack.node.clone(),
                    name: t.engine_name(self.project_name, key),
                    driver: t.driver.clone().unwrap_or_else(|| "bridge".into()),
                    labels: self.labels(t, LABEL_NETWORK, key, external),
                    external,
                    options: t.options.clone(),
                    ipam: t.ipam.clone(),
                    internal: t.internal.unwrap_or(false),
                    attachable: t.attachable.unwrap_or(false),
                    enable_ipv6: t.enable_ipv6.unwrap_or(false),
                    declared: (!t.file.is_empty()).then(|| Declared {
                        file: t.file.clone(),
                        loc: t.loc,
                    }),
                }
            })
            .collect()
    }

    /// The named volumes the enabled services use, labelled as docker compose labels them.
    fn volumes(&self, active: &[&Service]) -> Vec<VolumeSpec> {
        let used: BTreeSet<&str> = active
            .iter()
            .flat_map(|s| s.named_volumes.iter().map(|(v, _)| v.as_str()))
            .collect();
        self.project
            .model
            .volumes
            .iter()
            .filter(|(key, _)| used.contains(key.as_str()))
            .map(|(key, t)| {
                let external = t.is_external();
                VolumeSpec {
                    node: self.stack.node.clone(),
                    name: t.engine_name(self.project_name, key),
                    driver: t.driver.clone().unwrap_or_else(|| "local".into()),
                    labels: self.labels(t, LABEL_VOLUME, key, external),
                    external,
                    options: t.options.clone(),
                    declared: Some(Declared {
                        file: t.file.clone(),
                        loc: t.loc,
                    }),
                }
            })
            .collect()
    }

    /// A network's or volume's labels: its own, and compose's (not on an external one).
    fn labels(
        &self,
        t: &TopLevel,
        label_key: &str,
        key: &str,
        external: bool,
    ) -> BTreeMap<String, String> {
        let mut labels = t.labels.clone();
        if !external {
            labels.insert(label_key.into(), key.to_owned());
            labels.insert(LABEL_PROJECT.into(), self.project_name.to_owned());
            labels.insert(LABEL_VERSION.into(), COMPOSE_VERSION.into());
        }
        labels
    }
}

/// The engine options of a service's containers.
fn options(
    s: &Service,
    networks: Vec<NetworkAttachment>,
    network_mode: Option<String>,
    extra: ExtraOptions,
) -> RuntimeOptions {
    let mut security_opt = s.security_opt.clone();
    security_opt.sort();
    let mut extra_hosts = s.extra_hosts.clone();
    extra_hosts.sort();
    RuntimeOptions {
        networks,
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
        network_mode,
        extra: extra.boxed(),
        // Checked against the merged image by `image_policy`.
        image_policy: None,
    }
}

/// A dependency on `container` having started.
fn started(container: String) -> Dependency {
    Dependency {
        container,
        condition: DependencyCondition::ServiceStarted,
        restart: false,
        required: true,
    }
}

/// One warning for the whole stack naming the swarm settings its files use: docker compose
/// ignores them on a single engine, and so does Refinery.
pub(super) fn swarm_warning(active: &[&Service]) -> Option<Issue> {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut first = None;
    for s in active {
        for k in &s.swarm_keys {
            let names = by_key.entry(k.key.as_str()).or_default();
            if !names.contains(&k.service.as_str()) {
                names.push(k.service.as_str());
            }
            first.get_or_insert(k);
        }
    }
    let first = first?;
    let listed: Vec<String> = by_key
        .iter()
        .map(|(k, services)| {
            let names: Vec<String> = services.iter().map(|s| format!("`{s}`")).collect();
            format!("`{k}` ({})", names.join(", "))
        })
        .collect();
    Some(
        Issue::new(
            &first.file,
            first.loc,
            &format!(
                "services.{}.{}",
                first.service,
                first.key.split(':').next().unwrap_or_default()
            ),
            format!(
                "swarm settings are ignored on a single engine, as docker compose ignores them: {}",
                listed.join(", ")
            ),
        )
        .with_hint("they take effect only with `docker stack deploy` on a swarm"),
    )
}

/// The warning for `update_order: start-first` on a service that publishes a fixed host port
/// (or asks for a fixed address): two containers cannot hold it at once, so it is replaced
/// stop-first.
fn start_first_blocked(
    s: &Service,
    extra: &crate::extra_options::ExtraOptions,
    ports: &[crate::spec::PortBinding],
) -> Option<Issue> {
    if extra.update_order != Some(crate::extra_options::UpdateOrder::StartFirst) {
        return None;
    }
    let port = ports.iter().find_map(|p| p.host_port)?;
    let at = s.update_order_at.as_ref()?;
    Some(
        Issue::new(
            &at.file,
            at.loc,
            &at.field,
            format!(
                "service `{}` publishes host port {port}, which the old and the new container cannot hold at once: it is replaced stop-first",
                s.name
            ),
        )
        .with_hint("publish no fixed host port (`ports: [\"80\"]`, or reach it by its network alias) for a replacement without downtime, or write `stop-first`"),
    )
}

/// The absolute path of a repository-relative path in the checkout (or the relative path itself
/// when there is no checkout).
fn abs_path(base_dir: Option<&str>, rel: &str) -> String {
    match base_dir {
        Some(b) => format!("{}/{rel}", b.trim_end_matches('/')),
        None => rel.to_owned(),
    }
}

/// A service's `x-refinery.image_policy`, checked against its merged image: a service built here
/// has no registry tags to follow, and a declared tag must match the range.
fn image_policy(
    s: &Service,
    image: &str,
    built: bool,
    issues: &mut Vec<Issue>,
) -> Option<crate::image_policy::ImagePolicy> {
    let (policy, file, loc) = s.image_policy.clone()?;
    let field = format!("services.{}.x-refinery.image_policy.semver", s.name);
    let refused = if built {
        Err((
            format!(
                "service `{}` is built here (`build:`): it has no registry tags to follow",
                s.name
            ),
            "remove `build:` to pull versions from the registry, or remove `image_policy`"
                .to_owned(),
        ))
    } else {
        crate::image_policy::check_declared(image, &policy.semver)
    };
    match refused {
        Ok(()) => Some(policy),
        Err((message, hint)) => {
            issues.push(Issue::new(&file, loc, &field, message).with_hint(hint));
            None
        }
    }
}
