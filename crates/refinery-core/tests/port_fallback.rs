//! Port fallback in the diff: a container on a declared fallback host port is degraded, not
//! drift, until the engine finds its primary free; anything else is ordinary `ports` drift.

use std::collections::{BTreeMap, BTreeSet};

use refinery_core::drift::{DiffContext, DriftReport, diff_node};
use refinery_core::labels;
use refinery_core::port_fallback::{self, Degraded, degraded_primaries};
use refinery_core::testing::{self, manifest, observed_node, spec};
use refinery_core::{
    ContainerSpec, DriftKind, ImageDefaults, Observed, PortBinding, Protocol, ResourceId, StepKind,
};

fn web() -> ContainerSpec {
    let mut s = spec("web");
    s.ports = vec![PortBinding {
        host_ip: String::new(),
        host_port: Some(8085),
        container_port: 80,
        protocol: Protocol::Tcp,
    }];
    s.fallback_ports = BTreeMap::from([(8085, vec![8086, 8087])]);
    s
}

/// The engine holding `web` as Refinery made it, then on host port `host_port` with `label`.
fn running_on(s: &ContainerSpec, host_port: u16, label: Option<&str>) -> Observed {
    let mut o = observed_node(&[s], &ImageDefaults::default());
    let c = &mut o.containers[0];
    c.ports[0].host_port = Some(host_port);
    if let Some(l) = label {
        c.labels.insert(labels::PORT_FALLBACK.into(), l.into());
    }
    o
}

fn diff(s: &ContainerSpec, o: &Observed, free: &[u16]) -> DriftReport {
    let ctx = DiffContext {
        node: testing::NODE.into(),
        ..DiffContext::default()
    }
    .with_free_ports(free.iter().copied().collect::<BTreeSet<u16>>());
    diff_node(&[s], o, &ctx)
}

fn id() -> ResourceId {
    ResourceId::container(testing::NODE, "web")
}

fn degraded(primary_free: bool) -> Degraded {
    Degraded {
        id: id(),
        container_id: testing::container_id("web"),
        primary: 8085,
        fallback: 8086,
        primary_free,
    }
}

/// `(drift kinds with acted-on fields, in sync?, degraded)` for each case.
struct Case {
    name: &'static str,
    host_port: u16,
    label: Option<&'static str>,
    free: &'static [u16],
    /// Whether `ports` is config drift.
    ports_drift: bool,
    degraded: Option<bool>,
}

const CASES: &[Case] = &[
    Case {
        name: "on the primary, no label: in sync",
        host_port: 8085,
        label: None,
        free: &[],
        ports_drift: false,
        degraded: None,
    },
    Case {
        name: "on a declared fallback, primary taken: degraded, in sync",
        host_port: 8086,
        label: Some("8085:8086"),
        free: &[],
        ports_drift: false,
        degraded: Some(false),
    },
    Case {
        name: "on a declared fallback, primary free: degraded and ports drift",
        host_port: 8086,
        label: Some("8085:8086"),
        free: &[8085],
        ports_drift: true,
        degraded: Some(true),
    },
    Case {
        name: "another port free: still degraded, in sync",
        host_port: 8086,
        label: Some("8085:8086"),
        free: &[9999],
        ports_drift: false,
        degraded: Some(false),
    },
    Case {
        name: "on a fallback without the label: ports drift",
        host_port: 8086,
        label: None,
        free: &[],
        ports_drift: true,
        degraded: None,
    },
    Case {
        name: "label names a port that is not a declared fallback: ports drift",
        host_port: 9000,
        label: Some("8085:9000"),
        free: &[],
        ports_drift: true,
        degraded: None,
    },
    Case {
        name: "label says 8086, container publishes 8087: ports drift",
        host_port: 8087,
        label: Some("8085:8086"),
        free: &[],
        ports_drift: true,
        degraded: None,
    },
    Case {
        name: "stale label, container on its primary: in sync, not degraded",
        host_port: 8085,
        label: Some("8085:8086"),
        free: &[8085],
        ports_drift: false,
        degraded: None,
    },
];

#[test]
fn port_fallback_diff_table() {
    let s = web();
    for c in CASES {
        let r = diff(&s, &running_on(&s, c.host_port, c.label), c.free);
        let ports: Vec<_> = r
            .drifts
            .iter()
            .flat_map(|d| d.changes.iter().map(move |ch| (d.kind, ch)))
            .filter(|(_, ch)| ch.field == "ports" && !ch.ignored)
            .collect();
        assert_eq!(!ports.is_empty(), c.ports_drift, "{}: {r:?}", c.name);
        for (kind, _) in &ports {
            assert_eq!(*kind, DriftKind::Config, "{}", c.name);
        }
        assert_eq!(r.in_sync.contains(&id()), !c.ports_drift, "{}", c.name);
        let want: Vec<Degraded> = c.degraded.map(degraded).into_iter().collect();
        assert_eq!(r.degraded, want, "{}", c.name);
    }
}

#[test]
fn port_fallback_primary_free_shows_fallback_to_primary() {
    let s = web();
    let r = diff(&s, &running_on(&s, 8086, Some("8085:8086")), &[8085]);
    let change = &r.drifts[0].changes[0];
    assert_eq!(change.field, "ports");
    assert_eq!(change.observed, "8086:80/tcp");
    assert_eq!(change.desired, "8085:80/tcp");
    assert_eq!(r.drifts[0].summary, "ports differs");
}

#[test]
fn port_fallback_degraded_reads_port_instead_of_primary() {
    assert_eq!(degraded(false).to_string(), "port 8086 instead of 8085");
    assert_eq!(
        degraded(true).to_string(),
        "port 8086 instead of 8085, primary free again"
    );
}

#[test]
fn port_fallback_plan_ignores_degraded_and_recreates_when_free() {
    let s = web();
    let m = manifest(vec![s.clone()]);
    let o = running_on(&s, 8086, Some("8085:8086"));
    let eval = testing::Pass::default().honor_grace(false).run(&m, &o);
    assert!(eval.plan.steps.is_empty(), "{:?}", eval.plan);

    let ctx = DiffContext::for_node(&m, testing::NODE).with_free_ports(BTreeSet::from([8085]));
    let report = diff_node(&m.containers_on(testing::NODE), &o, &ctx);
    let pctx = refinery_core::PolicyContext {
        manifest: &m,
        mode: m.mode_of(testing::NODE),
        now: testing::now(),
        first_seen: &BTreeMap::new(),
        honor_grace: false,
        self_container_id: None,
        prune: false,
    };
    let plan = refinery_core::plan(&refinery_core::decide(&report, &o, &pctx), &o);
    let kinds: Vec<StepKind> = plan.steps.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [StepKind::Recreate]);
}

#[test]
fn port_fallback_degraded_primaries_lists_what_to_probe() {
    let s = web();
    let mut o = running_on(&s, 8086, Some("8085:8086"));
    let listed = degraded_primaries(&[&s], &o);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].container, "web");
    assert_eq!(listed[0].binding.host_port, Some(8085));
    assert_eq!(listed[0].fallback, 8086);
    assert!(!listed[0].held_by_container);

    o.containers[0]
        .labels
        .insert(labels::PORT_FALLBACK_HELD.into(), "8085".into());
    assert!(degraded_primaries(&[&s], &o)[0].held_by_container);

    let on_primary = running_on(&s, 8085, None);
    assert!(degraded_primaries(&[&s], &on_primary).is_empty());
}

#[test]
fn port_fallback_published_host_ports_names_holders() {
    let s = web();
    let o = running_on(&s, 8086, Some("8085:8086"));
    let held = port_fallback::published_host_ports(&o.containers);
    assert_eq!(held.get(&8086), Some(&vec!["web".to_owned()]));
    assert!(!held.contains_key(&8085));
    // A stopped container's configured bindings hold nothing.
    let mut stopped = o.clone();
    stopped.containers[0].state = refinery_core::ContainerState::Exited;
    assert!(port_fallback::published_host_ports(&stopped.containers).is_empty());
}
