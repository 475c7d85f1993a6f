//! Every compose key Refinery applies is compared: a container observed as declared is in sync,
//! and a change to any one setting on the engine is config drift naming that field (so it is
//! reported and, under the default rule, healed by a recreate). The engine's own defaults read as
//! unset match a declared default.

use std::collections::BTreeMap;

use refinery_core::drift::{DiffContext, config_changes};
use refinery_core::testing::{observed_from_spec, spec};
use refinery_core::{
    Blkio, ContainerSpec, Device, DeviceRequest, ExtraOptions, ImageDefaults, NetworkAttachment,
    ObservedContainer, Ulimit,
};

fn declared() -> ContainerSpec {
    let mut s = spec("web");
    s.options.networks = vec![NetworkAttachment {
        name: "shop_back".into(),
        aliases: vec!["web".into()],
        ipv4_address: Some("172.28.5.10".into()),
        ipv6_address: Some("2001:db8:5::10".into()),
        link_local_ips: vec!["169.254.8.8".into()],
        mac_address: Some("02:42:ac:11:00:02".into()),
        priority: 10,
    }];
    s.options.extra = ExtraOptions {
        expose: vec!["3000/tcp".into()],
        ulimits: BTreeMap::from([(
            "nofile".into(),
            Ulimit {
                soft: 1024,
                hard: 2048,
            },
        )]),
        runtime: Some("runc".into()),
        sysctls: BTreeMap::from([("net.core.somaxconn".into(), "1024".into())]),
        stdin_open: true,
        tty: true,
        shm_size: Some(128 << 20),
        devices: vec![Device {
            host: "/dev/null".into(),
            container: "/dev/mynull".into(),
            permissions: "rw".into(),
        }],
        device_cgroup_rules: vec!["c 1:3 mr".into()],
        pid: Some("host".into()),
        ipc: Some("private".into()),
        uts: Some("host".into()),
        userns_mode: Some("host".into()),
        cgroup: Some("host".into()),
        cgroup_parent: Some("/refinery".into()),
        group_add: vec!["123".into()],
        oom_kill_disable: Some(true),
        oom_score_adj: Some(100),
        pids_limit: Some(100),
        mem_reservation: Some(32 << 20),
        memswap_limit: Some(128 << 20),
        mem_swappiness: Some(10),
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        cpuset: Some("0".into()),
        cpu_rt_period: Some(1_000_000),
        cpu_rt_runtime: Some(950_000),
        cpu_count: Some(2),
        cpu_percent: Some(50),
        blkio: Blkio {
            weight: Some(300),
            weight_device: vec![("/dev/sda".into(), 400)],
            device_read_bps: vec![("/dev/sda".into(), 12 << 20)],
            device_write_bps: vec![("/dev/sda".into(), 6 << 20)],
            device_read_iops: vec![("/dev/sda".into(), 30)],
            device_write_iops: vec![("/dev/sda".into(), 20)],
        },
        storage_opt: BTreeMap::from([("size".into(), "20G".into())]),
        dns: vec!["1.1.1.1".into()],
        dns_search: vec!["example.com".into()],
        dns_opt: vec!["ndots:2".into()],
        domainname: Some("example.org".into()),
        mac_address: Some("02:42:ac:11:00:02".into()),
        links: vec!["shop_db_1:db".into()],
        isolation: Some("default".into()),
        annotations: BTreeMap::from([("com.example.a".into(), "b".into())]),
        volumes_from: vec!["shop_db_1:ro".into()],
        device_requests: vec![DeviceRequest {
            driver: "nvidia".into(),
            count: 1,
            capabilities: vec!["gpu".into()],
            ..DeviceRequest::default()
        }],
        bind_propagation: BTreeMap::from([("/host".into(), "rslave".into())]),
        health_start_interval_ms: Some(2_000),
        ..ExtraOptions::default()
    }
    .boxed();
    s
}

/// The container as the engine reports one made from `s`: the engine's defaults read as unset.
fn as_created(s: &ContainerSpec) -> ObservedContainer {
    let mut o = observed_from_spec(s, &ImageDefaults::default());
    let mut x = o.options.extra().clone();
    x.runtime = None;
    x.ipc = None;
    x.cgroup = None;
    // Not part of the container.
    x.platform = None;
    x.pull_policy = None;
    o.options.extra = x.boxed();
    o
}

fn fields(s: &ContainerSpec, o: &ObservedContainer) -> Vec<String> {
    config_changes(s, o, &DiffContext::default())
        .into_iter()
        .map(|c| c.field)
        .collect()
}

#[test]
fn compose_keys_observed_as_declared_are_in_sync() {
    let s = declared();
    assert_eq!(fields(&s, &as_created(&s)), Vec::<String>::new());
}

#[test]
fn compose_key_changed_on_the_engine_is_config_drift_naming_it() {
    type Edit = fn(&mut ExtraOptions);
    let cases: Vec<(&str, Edit)> = vec![
        ("expose", |x| x.expose.push("4000/tcp".into())),
        ("ulimits.nofile", |x| {
            x.ulimits
                .insert("nofile".into(), Ulimit { soft: 1, hard: 2 });
        }),
        ("runtime", |x| x.runtime = Some("runsc".into())),
        ("sysctls.net.core.somaxconn", |x| {
            x.sysctls.insert("net.core.somaxconn".into(), "64".into());
        }),
        ("stdin_open", |x| x.stdin_open = false),
        ("tty", |x| x.tty = false),
        ("shm_size", |x| x.shm_size = None),
        ("devices", |x| x.devices.clear()),
        ("device_cgroup_rules", |x| x.device_cgroup_rules.clear()),
        ("pid", |x| x.pid = None),
        ("ipc", |x| x.ipc = Some("host".into())),
        ("uts", |x| x.uts = None),
        ("userns_mode", |x| x.userns_mode = None),
        ("cgroup", |x| x.cgroup = Some("private".into())),
        ("cgroup_parent", |x| x.cgroup_parent = Some("/other".into())),
        ("group_add", |x| x.group_add.push("999".into())),
        ("oom_kill_disable", |x| x.oom_kill_disable = None),
        ("oom_score_adj", |x| x.oom_score_adj = Some(-5)),
        ("pids_limit", |x| x.pids_limit = Some(999)),
        ("mem_reservation", |x| x.mem_reservation = None),
        ("memswap_limit", |x| x.memswap_limit = Some(1 << 30)),
        ("mem_swappiness", |x| x.mem_swappiness = Some(60)),
        ("cpu_shares", |x| x.cpu_shares = Some(256)),
        ("cpu_quota", |x| x.cpu_quota = Some(1)),
        ("cpu_period", |x| x.cpu_period = Some(2)),
        ("cpuset", |x| x.cpuset = Some("1".into())),
        ("cpu_rt_period", |x| x.cpu_rt_period = Some(1)),
        ("cpu_rt_runtime", |x| x.cpu_rt_runtime = Some(1)),
        ("cpu_count", |x| x.cpu_count = Some(8)),
        ("cpu_percent", |x| x.cpu_percent = Some(10)),
        ("blkio_config.weight", |x| x.blkio.weight = Some(10)),
        ("blkio_config.weight_device", |x| {
            x.blkio.weight_device = vec![("/dev/sda".into(), 10)];
        }),
        ("blkio_config.device_read_bps", |x| {
            x.blkio.device_read_bps = vec![("/dev/sda".into(), 1)];
        }),
        ("blkio_config.device_write_bps", |x| {
            x.blkio.device_write_bps = vec![("/dev/sda".into(), 1)];
        }),
        ("blkio_config.device_read_iops", |x| {
            x.blkio.device_read_iops = vec![("/dev/sda".into(), 1)];
        }),
        ("blkio_config.device_write_iops", |x| {
            x.blkio.device_write_iops = vec![("/dev/sda".into(), 1)];
        }),
        ("storage_opt", |x| x.storage_opt.clear()),
        ("dns", |x| x.dns = vec!["8.8.8.8".into()]),
        ("dns_search", |x| x.dns_search.clear()),
        ("dns_opt", |x| x.dns_opt.clear()),
        ("domainname", |x| x.domainname = None),
        ("links", |x| x.links.clear()),
        ("isolation", |x| x.isolation = Some("hyperv".into())),
        ("annotations", |x| {
            x.annotations.insert("com.example.a".into(), "c".into());
        }),
        ("volumes_from", |x| x.volumes_from.clear()),
        ("device_requests", |x| x.device_requests.clear()),
        // `rprivate`, the engine's default, reads as unset.
        ("volumes.propagation", |x| x.bind_propagation.clear()),
        ("healthcheck.start_interval", |x| {
            x.health_start_interval_ms = Some(5_000);
        }),
    ];
    let s = declared();
    for (field, edit) in cases {
        let mut o = as_created(&s);
        let mut x = o.options.extra().clone();
        edit(&mut x);
        o.options.extra = x.boxed();
        let found = fields(&s, &o);
        assert_eq!(found, [field], "a changed `{field}`");
    }
    // On the networks: static addresses and the MAC address.
    type NetEdit = fn(&mut NetworkAttachment);
    let net_cases: Vec<(&str, NetEdit)> = vec![
        ("networks.shop_back.ipv4_address", |n| {
            n.ipv4_address = Some("172.28.5.11".into());
        }),
        ("networks.shop_back.ipv6_address", |n| n.ipv6_address = None),
        ("networks.shop_back.link_local_ips", |n| {
            n.link_local_ips.clear()
        }),
    ];
    for (field, edit) in net_cases {
        let mut o = as_created(&s);
        edit(&mut o.options.networks[0]);
        assert_eq!(fields(&s, &o), [field], "a changed `{field}`");
    }
    let mut o = as_created(&s);
    o.options.networks[0].mac_address = Some("02:42:ac:11:00:09".into());
    assert_eq!(
        fields(&s, &o),
        ["networks.shop_back.mac_address", "mac_address"],
        "another MAC address"
    );
    // Stopped: no MAC address to show, and no drift for it.
    o.options.networks[0].mac_address = None;
    assert_eq!(fields(&s, &o), Vec::<String>::new());
}

#[test]
fn compose_engine_defaults_read_as_unset_match_declared_defaults() {
    let mut s = spec("web");
    s.options.extra = ExtraOptions {
        ipc: Some("shareable".into()),
        cgroup: Some("private".into()),
        runtime: Some("runc".into()),
        shm_size: Some(64 << 20),
        isolation: Some("default".into()),
        ..ExtraOptions::default()
    }
    .boxed();
    let mut o = observed_from_spec(&s, &ImageDefaults::default());
    o.options.extra = None;
    assert_eq!(fields(&s, &o), Vec::<String>::new());
}

#[test]
fn compose_start_interval_an_older_engine_drops_is_in_sync() {
    // Docker 20.10 (API 1.41) takes the create with `StartInterval` and keeps none of it.
    let mut s = spec("web");
    s.options.extra = ExtraOptions {
        health_start_interval_ms: Some(2_000),
        ..ExtraOptions::default()
    }
    .boxed();
    let mut o = observed_from_spec(&s, &ImageDefaults::default());
    o.options.extra = None;
    assert_eq!(fields(&s, &o), Vec::<String>::new());
}
