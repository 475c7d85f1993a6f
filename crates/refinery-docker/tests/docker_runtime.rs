//! `DockerRuntime` against the real engine (`DOCKER_HOST` or /var/run/docker.sock). An engine
//! that cannot be reached fails these tests: every machine and CI job here has one.
//!
//! Every test owns a `TestRun`: unique names, a run label, cleanup on drop (panics included).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use refinery_core::{
    ContainerRuntime, ContainerState, Health, Healthcheck, LabelSelector, Mount, MountKind,
    ObservedContainer, PortBinding, Protocol, RestartPolicy, RuntimeError, Secret,
    UnreachableCause,
};
use refinery_docker::DockerRuntime;
use refinery_docker::testsupport::{
    self, DEFAULT_CMD, IMAGE_PATH, SimEngine, TEST_IMAGE_LABEL, TEST_IMAGE_REPO, TestRun,
    minimal_spec,
};

/// The shared test image (kept between runs; rebuilding an unchanged one is a lookup).
const IMAGE: &str = "refinery-test-busybox:latest";

async fn setup() -> (DockerRuntime, TestRun, String) {
    let rt = DockerRuntime::from_env().expect("DOCKER_HOST must name a supported endpoint");
    let info = rt.info().await.unwrap_or_else(|e| {
        panic!(
            "these tests need a running Docker engine at `{}`: {e}",
            rt.endpoint()
        )
    });
    assert!(!info.version.is_empty());
    let run = TestRun::new(&rt);
    let image_id = testsupport::build_busybox_image(&rt, IMAGE)
        .await
        .expect("build the busybox test image");
    (rt, run, image_id)
}

/// The same engine with everything a test needs: the real one from [`setup`], or a
/// [`SimEngine`] holding a copy of the test image (same config, so containers get the same
/// defaults). The run is dropped before the simulator, so its cleanup still reaches it.
struct Sim {
    run: TestRun,
    rt: DockerRuntime,
    image_id: String,
    _sim: SimEngine,
}

async fn sim_setup() -> Sim {
    let (real, _real_run, _) = setup().await;
    let sim = SimEngine::start()
        .await
        .expect("start the engine simulator");
    let image_id = sim
        .copy_image_from(&real, IMAGE)
        .await
        .expect("copy the test image into the simulator");
    let rt = sim.runtime();
    let run = TestRun::new(&rt);
    Sim {
        run,
        rt,
        image_id,
        _sim: sim,
    }
}

/// One scenario, two tests: `$real` against the engine, `$sim` against the simulator, so the
/// simulator is held to what the engine does.
macro_rules! both_engines {
    ($real:ident, $sim:ident, $body:ident) => {
        #[tokio::test]
        async fn $real() {
            let (rt, run, image_id) = setup().await;
            $body(&rt, &run, &image_id).await;
        }

        #[tokio::test]
        async fn $sim() {
            let s = sim_setup().await;
            $body(&s.rt, &s.run, &s.image_id).await;
        }
    };
}

/// A host port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind an ephemeral port");
    listener
        .local_addr()
        .expect("ephemeral port address")
        .port()
}

async fn wait_for(
    rt: &DockerRuntime,
    id: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&ObservedContainer) -> bool,
) -> ObservedContainer {
    let deadline = Instant::now() + timeout;
    loop {
        let c = rt.inspect(id).await.expect("inspect while waiting");
        if pred(&c) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last state {} (exit {:?})",
            c.state,
            c.exit_code
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::test]
async fn runtime_futures_are_send() {
    let rt = DockerRuntime::from_env().expect("endpoint");
    let selector = LabelSelector::parse("x=y");
    {
        let observe = rt.observe(selector.as_ref());
        assert_send(&observe);
        let run = TestRun::new(&rt);
        let req = run.request("x", minimal_spec("x", IMAGE));
        let create = rt.create(&req);
        assert_send(&create);
        let pull = rt.pull("x", &|_| {});
        assert_send(&pull);
    }
    let handle = tokio::spawn(async move { rt.info().await });
    let info = handle.await.expect("join").expect("engine info");
    assert!(!info.api_version.is_empty());
}

#[tokio::test]
async fn info_reports_negotiated_engine() {
    let (rt, _run, _) = setup().await;
    let info = rt.info().await.expect("info");
    assert_eq!(info.endpoint, rt.endpoint());
    assert!(info.api_version.starts_with("1."), "{info:?}");
}

#[tokio::test]
async fn connect_missing_socket_is_unreachable_no_such_file() {
    let rt = DockerRuntime::connect("unix:///nonexistent/refinery-test.sock").expect("lazy");
    let err = rt.info().await.expect_err("no engine there");
    match &err {
        RuntimeError::Unreachable {
            endpoint,
            cause,
            reason,
        } => {
            assert_eq!(endpoint, "unix:///nonexistent/refinery-test.sock");
            assert_eq!(*cause, UnreachableCause::NoSocket);
            assert!(reason.contains("no such file"), "{reason}");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("failed to reach the engine at `unix:///nonexistent")
    );
    // Observe fails the same way (and does not panic).
    assert!(
        rt.observe(None)
            .await
            .expect_err("still no engine")
            .is_unreachable()
    );
}

#[tokio::test]
async fn connect_refused_tcp_is_unreachable_connection_refused() {
    let port = free_port();
    let rt = DockerRuntime::connect(&format!("tcp://127.0.0.1:{port}")).expect("lazy");
    let err = rt.info().await.expect_err("nothing listens there");
    match err {
        RuntimeError::Unreachable { cause, reason, .. } => {
            assert_eq!(cause, UnreachableCause::Refused);
            assert!(reason.contains("connection refused"), "{reason}");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

both_engines!(
    create_full_spec_observe_round_trips,
    create_full_spec_observe_round_trips_on_sim,
    create_full_spec_observe_round_trips_on
);

async fn create_full_spec_observe_round_trips_on(
    rt: &DockerRuntime,
    run: &TestRun,
    image_id: &str,
) {
    let host_port = free_port();
    let conf = run.temp_dir("conf").expect("temp dir");
    let conf = conf.to_str().expect("utf-8 temp dir").to_owned();

    let mut spec = minimal_spec("web", IMAGE);
    spec.ports = vec![
        PortBinding {
            host_ip: String::new(),
            host_port: Some(host_port),
            container_port: 8080,
            protocol: Protocol::Tcp,
        },
        PortBinding {
            host_ip: "127.0.0.1".into(),
            host_port: None,
            container_port: 53,
            protocol: Protocol::Udp,
        },
    ];
    spec.env = BTreeMap::from([
        (
            "LOG_LEVEL".to_owned(),
            Secret::for_name("LOG_LEVEL", "info"),
        ),
        (
            "API_TOKEN".to_owned(),
            Secret::for_name("API_TOKEN", "s3cr=t"),
        ),
        ("EMPTY".to_owned(), Secret::for_name("EMPTY", "")),
    ]);
    spec.mounts = vec![
        Mount {
            kind: MountKind::Volume,
            source: run.name("data"),
            target: "/data".into(),
            read_only: false,
        },
        Mount {
            kind: MountKind::Bind,
            source: conf.clone(),
            target: "/etc/conf".into(),
            read_only: true,
        },
        Mount {
            kind: MountKind::Anonymous,
            source: String::new(),
            target: "/cache".into(),
            read_only: false,
        },
    ];
    spec.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "trap 'exit 0' TERM; sleep 1000 & wait $!".into(),
    ]);
    spec.labels = BTreeMap::from([("team".to_owned(), "core".to_owned())]);
    spec.restart = RestartPolicy::UnlessStopped;
    spec.healthcheck = Some(Healthcheck {
        test: vec!["CMD".into(), "true".into()],
        interval_ms: 1000,
        timeout_ms: 500,
        start_period_ms: 2000,
        retries: 3,
    });
    // Capabilities as a compose file may spell them; the engine reports `CAP_…`.
    spec.options.cap_add = vec!["net_admin".into()];
    spec.options.cap_drop = vec!["CAP_MKNOD".into()];
    spec.options.hostname = Some("web-host".into());
    spec.options.init = Some(true);
    spec.options.stop_signal = Some("SIGINT".into());
    spec.options.stop_timeout_secs = Some(3);
    spec.options.tmpfs = BTreeMap::from([("/run/scratch".to_owned(), "size=1m".to_owned())]);
    spec.options.logging = Some(refinery_core::spec::Logging {
        driver: "json-file".into(),
        options: BTreeMap::from([("max-size".to_owned(), "1m".to_owned())]),
    });
    let req = run.request("web", spec.clone());

    // A second shape: entrypoint, on-failure with a limit, an anonymous volume only, no ports.
    let mut spec2 = minimal_spec("worker", IMAGE);
    spec2.entrypoint = Some(vec!["sh".into(), "-c".into()]);
    spec2.command = Some(vec!["trap 'exit 0' TERM; sleep 1000 & wait $!".into()]);
    spec2.restart = RestartPolicy::OnFailure(3);
    spec2.mounts = vec![Mount {
        kind: MountKind::Anonymous,
        source: String::new(),
        target: "/scratch".into(),
        read_only: false,
    }];
    let req2 = run.request("worker", spec2.clone());

    // The engine has no read-only anonymous volumes: refused with its own words, not dropped.
    let mut ro = spec2.clone();
    ro.mounts[0].read_only = true;
    let err = rt
        .create(&run.request("ro", ro))
        .await
        .expect_err("read-only anonymous volume");
    assert!(
        matches!(err, RuntimeError::Other { ref message, .. } if message.contains("ReadOnly")),
        "{err:?}"
    );

    // Privileged is read back (created only: this engine, itself in a container, may not be
    // allowed to start one).
    // On the host's network too.
    let mut privileged = spec2.clone();
    privileged.options.privileged = true;
    privileged.options.network_mode = Some("host".into());
    let preq = run.request("privileged", privileged);
    let pid = rt.create(&preq).await.expect("create privileged");
    let seen = rt.inspect(&pid).await.expect("inspect privileged");
    assert!(seen.options.privileged);
    assert_eq!(seen.options.network_mode.as_deref(), Some("host"));
    let changes = refinery_core::drift_options::option_changes(&preq.spec, &seen);
    assert!(changes.is_empty(), "{changes:#?}");
    rt.remove(&pid).await.expect("remove privileged");

    let id = rt.create(&req).await.expect("create web");
    rt.start(&id).await.expect("start web");
    let id2 = rt.create(&req2).await.expect("create worker");
    rt.start(&id2).await.expect("start worker");

    let observed = rt.observe(Some(&run.selector())).await.expect("observe");
    assert_eq!(observed.containers.len(), 2, "{:#?}", observed.containers);
    let web = observed.container(&req.name).expect("web is observed");
    let defaults = web.image_defaults.clone().expect("image defaults");

    assert_eq!(web.id, id);
    assert_eq!(web.name, req.name);
    assert_eq!(web.image, IMAGE);
    assert_eq!(web.image_id, image_id);
    assert_eq!(web.state, ContainerState::Running);
    assert_eq!(web.options.cap_add, ["CAP_NET_ADMIN"]);
    assert_eq!(web.options.cap_drop, ["CAP_MKNOD"]);
    assert!(!web.options.privileged);
    assert_eq!(web.options.hostname.as_deref(), Some("web-host"));
    assert_eq!(web.options.init, Some(true));
    assert_eq!(web.options.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(web.options.stop_timeout_secs, Some(3));
    assert_eq!(web.options.tmpfs, spec.options.tmpfs);
    let logging = web.options.logging.clone().expect("a log driver");
    assert_eq!(logging.driver, "json-file");
    // (The daemon may add its own `log-opts`.)
    assert_eq!(
        logging.options.get("max-size").map(String::as_str),
        Some("1m")
    );
    // What was declared is what is observed: no drift in the engine settings.
    let changes = refinery_core::drift_options::option_changes(&req.spec, web);
    assert!(changes.is_empty(), "{changes:#?}");
    assert!(
        observed
            .container(&req2.name)
            .is_some_and(|w| !w.options.privileged)
    );
    assert!(
        matches!(web.health, Health::Starting | Health::Healthy),
        "{:?}",
        web.health
    );
    assert!(web.started_at.is_some());
    assert!(!web.created.is_empty());

    let mut want_ports = spec.ports.clone();
    want_ports.sort();
    assert_eq!(web.ports, want_ports);

    let mut want_env = defaults.env.clone();
    want_env.extend(
        spec.env
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned())),
    );
    assert_eq!(web.env, want_env);
    assert_eq!(web.env.get("PATH").map(String::as_str), Some(IMAGE_PATH));

    let mut want_mounts = spec.mounts.clone();
    want_mounts.sort();
    assert_eq!(web.mounts, want_mounts);

    assert_eq!(web.command, spec.command);
    assert_eq!(web.entrypoint, None);

    let mut want_labels = defaults.labels.clone();
    want_labels.extend(req.labels.clone());
    assert_eq!(web.labels, want_labels);
    assert_eq!(web.labels.get("team").map(String::as_str), Some("core"));

    assert_eq!(web.restart, spec.restart);
    assert_eq!(web.healthcheck, spec.healthcheck);

    let worker = observed.container(&req2.name).expect("worker is observed");
    assert_eq!(worker.state, ContainerState::Running);
    assert_eq!(worker.entrypoint, spec2.entrypoint);
    assert_eq!(worker.command, spec2.command);
    assert_eq!(worker.restart, RestartPolicy::OnFailure(3));
    assert_eq!(worker.mounts, spec2.mounts);
    assert_eq!(worker.ports, Vec::new());
    assert_eq!(worker.healthcheck, None);
    assert_eq!(worker.health, Health::None);

    // inspect converts the same way.
    let mut one = rt.inspect(&req.name).await.expect("inspect web");
    one.health = web.health;
    assert_eq!(&one, web);
}

/// The rest of the compose service schema, created on the real engine and read back: what
/// was declared compares equal to what is observed (the engine's own defaults normalized on
/// both sides), and a hand change (`docker update`) is config drift naming the field.
#[tokio::test]
async fn create_with_the_compose_schema_reads_back_equal_and_a_hand_change_is_drift() {
    let (rt, run, _) = setup().await;
    let sleeper = || {
        Some(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "trap 'exit 0' TERM; sleep 1000 & wait $!".to_owned(),
        ])
    };
    // A container to take volumes from and to link to.
    let mut data = minimal_spec("data", IMAGE);
    data.command = sleeper();
    data.mounts = vec![Mount {
        kind: MountKind::Anonymous,
        source: String::new(),
        target: "/shared".into(),
        read_only: false,
    }];
    let dreq = run.request("data", data);
    let did = rt.create(&dreq).await.expect("create data");
    rt.start(&did).await.expect("start data");

    let mut spec = minimal_spec("full", IMAGE);
    spec.command = sleeper();
    spec.options.memory_bytes = Some(64 << 20);
    let x = refinery_core::ExtraOptions {
        expose: vec!["3000/tcp".into(), "8000/udp".into()],
        ulimits: BTreeMap::from([(
            "nofile".to_owned(),
            refinery_core::Ulimit {
                soft: 1024,
                hard: 2048,
            },
        )]),
        // The engine's defaults, declared: they read back as unset and match.
        runtime: Some("runc".into()),
        ipc: Some("private".into()),
        sysctls: BTreeMap::from([("net.core.somaxconn".to_owned(), "1024".to_owned())]),
        stdin_open: true,
        tty: true,
        shm_size: Some(128 << 20),
        devices: vec![refinery_core::Device {
            host: "/dev/null".into(),
            container: "/dev/mynull".into(),
            permissions: "rw".into(),
        }],
        device_cgroup_rules: vec!["c 1:3 mr".into()],
        group_add: vec!["123".into()],
        oom_score_adj: Some(100),
        pids_limit: Some(100),
        mem_reservation: Some(32 << 20),
        memswap_limit: Some(128 << 20),
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        cpuset: Some("0".into()),
        dns: vec!["1.1.1.1".into(), "9.9.9.9".into()],
        dns_search: vec!["example.com".into()],
        dns_opt: vec!["ndots:2".into()],
        domainname: Some("example.org".into()),
        mac_address: Some("02:42:ac:11:00:99".into()),
        links: vec![format!("{}:db", dreq.name)],
        volumes_from: vec![format!("{}:ro", dreq.name)],
        ..Default::default()
    };
    spec.options.extra = x.clone().boxed();
    let req = run.request("full", spec);
    let id = rt.create(&req).await.expect("create with the whole schema");
    rt.start(&id).await.expect("start");
    let seen = rt.inspect(&id).await.expect("inspect");
    let have = seen.options.extra();
    assert_eq!(have.ulimits, x.ulimits);
    assert_eq!(have.sysctls, x.sysctls);
    assert_eq!(have.shm_size, x.shm_size);
    assert_eq!(have.devices, x.devices);
    assert_eq!(have.pids_limit, Some(100));
    assert_eq!(have.dns, x.dns);
    assert!(have.tty && have.stdin_open);
    assert_eq!(have.links, x.links);
    assert_eq!(have.volumes_from, x.volumes_from);
    assert!(
        have.expose.contains(&"3000/tcp".to_owned()),
        "{:?}",
        have.expose
    );
    assert_eq!(have.runtime, None, "`runc` is the engine's default");
    assert!(
        seen.options
            .networks
            .iter()
            .any(|n| n.mac_address.as_deref() == Some("02:42:ac:11:00:99")),
        "{:?}",
        seen.options.networks
    );
    let changes = refinery_core::drift_options::option_changes(&req.spec, &seen);
    assert!(changes.is_empty(), "{changes:#?}");

    // A hand change the engine allows on a running container: config drift on that field.
    let out = tokio::process::Command::new("docker")
        .args(["update", "--pids-limit", "200", "--cpu-shares", "256", &id])
        .output()
        .await
        .expect("run docker update");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = rt.inspect(&id).await.expect("inspect after the change");
    let fields: Vec<String> = refinery_core::drift_options::option_changes(&req.spec, &seen)
        .into_iter()
        .map(|c| format!("{}: {} → {}", c.field, c.observed, c.desired))
        .collect();
    assert_eq!(
        fields,
        ["pids_limit: 200 → 100", "cpu_shares: 256 → 512"],
        "{fields:#?}"
    );
}

both_engines!(
    observe_with_selector_returns_only_labelled_containers,
    observe_with_selector_returns_only_labelled_containers_on_sim,
    observe_with_selector_returns_only_labelled_containers_on
);

async fn observe_with_selector_returns_only_labelled_containers_on(
    rt: &DockerRuntime,
    run: &TestRun,
    _image_id: &str,
) {
    let picked_key = format!("io.refinery.test.pick-{}", run.id());

    let mut labelled = run.request("picked", minimal_spec("picked", IMAGE));
    labelled.labels.insert(picked_key.clone(), "yes".into());
    let plain = run.request("plain", minimal_spec("plain", IMAGE));
    rt.create(&labelled).await.expect("create picked");
    rt.create(&plain).await.expect("create plain");

    let by_key = rt
        .observe(LabelSelector::parse(&picked_key).as_ref())
        .await
        .expect("observe by key");
    let names: Vec<_> = by_key.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec![labelled.name.as_str()]);

    let by_value = rt
        .observe(LabelSelector::parse(&format!("{picked_key}=no")).as_ref())
        .await
        .expect("observe by value");
    assert!(by_value.containers.is_empty());

    let by_run = rt
        .observe(Some(&run.selector()))
        .await
        .expect("observe run");
    let mut names: Vec<_> = by_run.containers.iter().map(|c| c.name.clone()).collect();
    names.sort();
    let mut want = vec![labelled.name.clone(), plain.name.clone()];
    want.sort();
    assert_eq!(names, want);
    assert!(
        by_run
            .containers
            .iter()
            .all(|c| c.state == ContainerState::Created)
    );

    // Images are listed whatever the selector.
    assert!(by_key.image(IMAGE).is_some());

    let all = rt.observe(None).await.expect("observe all");
    assert!(all.container(&plain.name).is_some());
}

both_engines!(
    lifecycle_start_twice_stop_restart_pause_rename_remove,
    lifecycle_start_twice_stop_restart_pause_rename_remove_on_sim,
    lifecycle_start_twice_stop_restart_pause_rename_remove_on
);

async fn lifecycle_start_twice_stop_restart_pause_rename_remove_on(
    rt: &DockerRuntime,
    run: &TestRun,
    _image_id: &str,
) {
    let req = run.request("life", minimal_spec("life", IMAGE));
    let id = rt.create(&req).await.expect("create");

    let conflict = rt.create(&req).await.expect_err("same name twice");
    assert!(
        matches!(conflict, RuntimeError::Conflict { ref what, .. } if what.contains(&req.name)),
        "{conflict:?}"
    );

    rt.start(&id).await.expect("start");
    rt.start(&id)
        .await
        .expect("starting a running container is ok");
    assert_eq!(
        rt.inspect(&id).await.expect("inspect").state,
        ContainerState::Running
    );

    let t = Instant::now();
    rt.stop(&id, 10).await.expect("stop");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the test image stops on SIGTERM"
    );
    let stopped = rt.inspect(&id).await.expect("inspect stopped");
    assert_eq!(stopped.state, ContainerState::Exited);
    assert_eq!(stopped.exit_code, Some(0));
    rt.stop(&id, 1)
        .await
        .expect("stopping a stopped container is ok");

    rt.restart(&id).await.expect("restart");
    assert_eq!(
        rt.inspect(&id).await.expect("inspect").state,
        ContainerState::Running
    );

    testsupport::pause(rt, &id).await.expect("pause");
    assert_eq!(
        rt.inspect(&id).await.expect("inspect").state,
        ContainerState::Paused
    );
    rt.unpause(&id).await.expect("unpause");
    assert_eq!(
        rt.inspect(&id).await.expect("inspect").state,
        ContainerState::Running
    );

    let new_name = run.name("renamed");
    rt.rename(&id, &new_name).await.expect("rename");
    assert_eq!(rt.inspect(&id).await.expect("inspect").name, new_name);

    rt.remove(&id).await.expect("remove a running container");
    rt.remove(&id).await.expect("removing what is gone is ok");
    rt.remove(&run.name("never-existed"))
        .await
        .expect("removing a missing name is ok");

    let err = rt.inspect(&id).await.expect_err("gone");
    assert!(err.is_not_found(), "{err:?}");
    let err = rt
        .start(&run.name("never-existed"))
        .await
        .expect_err("missing");
    assert_eq!(
        err,
        RuntimeError::NotFound {
            what: format!("container `{}`", run.name("never-existed"))
        }
    );
}

#[tokio::test]
async fn start_with_taken_host_port_is_port_taken() {
    let (rt, run, _) = setup().await;
    let port = free_port();
    let published = |suffix: &str| {
        let mut spec = minimal_spec(suffix, IMAGE);
        spec.ports = vec![PortBinding {
            host_ip: String::new(),
            host_port: Some(port),
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        run.request(suffix, spec)
    };
    let first = rt.create(&published("first")).await.expect("create first");
    rt.start(&first).await.expect("start first");
    let second = rt
        .create(&published("second"))
        .await
        .expect("create second");
    let err = rt.start(&second).await.expect_err("the port is taken");
    assert_eq!(err, RuntimeError::PortTaken { port });
    assert_eq!(
        err.to_string(),
        format!("failed to bind host port {port}: it is already taken")
    );
}

both_engines!(
    create_with_unknown_image_is_not_found,
    create_with_unknown_image_is_not_found_on_sim,
    create_with_unknown_image_is_not_found_on
);

async fn create_with_unknown_image_is_not_found_on(
    rt: &DockerRuntime,
    run: &TestRun,
    _image_id: &str,
) {
    let image = format!("{TEST_IMAGE_REPO}:no-such-{}", run.id());
    let req = run.request("ghost", minimal_spec("ghost", &image));
    let err = rt.create(&req).await.expect_err("no such image");
    assert_eq!(
        err,
        RuntimeError::NotFound {
            what: format!("image `{image}`")
        }
    );
}

both_engines!(
    pull_without_registry_is_other_naming_the_image,
    pull_without_registry_is_other_naming_the_image_on_sim,
    pull_without_registry_is_other_naming_the_image_on
);

async fn pull_without_registry_is_other_naming_the_image_on(
    rt: &DockerRuntime,
    run: &TestRun,
    _image_id: &str,
) {
    let image = format!("refinery-test-nowhere/app:{}", run.id());
    let err = rt
        .pull(&image, &|_| {})
        .await
        .expect_err("no registry here");
    match &err {
        RuntimeError::Other { action, message } => {
            assert_eq!(action, &format!("pull image `{image}`"));
            assert!(!message.is_empty());
        }
        other => panic!("expected other, got {other:?}"),
    }
}

#[tokio::test]
async fn exited_container_reports_exit_code() {
    let (rt, run, _) = setup().await;
    let mut spec = minimal_spec("exits", IMAGE);
    spec.command = Some(vec!["sh".into(), "-c".into(), "exit 3".into()]);
    let id = rt
        .create(&run.request("exits", spec))
        .await
        .expect("create");
    assert_eq!(
        rt.inspect(&id).await.expect("inspect").state,
        ContainerState::Created
    );
    rt.start(&id).await.expect("start");
    let c = wait_for(&rt, &id, Duration::from_secs(5), "exit", |c| {
        c.state == ContainerState::Exited
    })
    .await;
    assert_eq!(c.exit_code, Some(3));
}

#[tokio::test]
async fn crashing_container_with_restart_always_is_restarting() {
    let (rt, run, _) = setup().await;
    let mut spec = minimal_spec("flaps", IMAGE);
    spec.command = Some(vec!["sh".into(), "-c".into(), "sleep 0.1; exit 1".into()]);
    spec.restart = RestartPolicy::Always;
    let id = rt
        .create(&run.request("flaps", spec))
        .await
        .expect("create");
    rt.start(&id).await.expect("start");
    let c = wait_for(&rt, &id, Duration::from_secs(10), "restarting", |c| {
        c.state == ContainerState::Restarting
    })
    .await;
    assert_eq!(c.restart, RestartPolicy::Always);
    // Observe agrees (the engine says running=true while restarting; we read Restarting).
    let observed = rt.observe(Some(&run.selector())).await.expect("observe");
    assert_eq!(observed.containers.len(), 1);
}

#[tokio::test]
async fn host_sigkill_crash_is_restarted_by_policy() {
    let (rt, run, _) = setup().await;
    let mut spec = minimal_spec("crash", IMAGE);
    spec.restart = RestartPolicy::Always;
    let id = rt
        .create(&run.request("crash", spec))
        .await
        .expect("create");
    rt.start(&id).await.expect("start");
    let before = rt.inspect(&id).await.expect("inspect");
    assert!(testsupport::crash(0).is_err(), "pid 0 is never signalled");
    testsupport::crash_container(&rt, &id).await.expect("crash");
    let after = wait_for(
        &rt,
        &id,
        Duration::from_secs(10),
        "restart after crash",
        |c| c.state == ContainerState::Running && c.started_at != before.started_at,
    )
    .await;
    assert_eq!(after.id, before.id);
}

#[tokio::test]
async fn observe_reports_images_and_container_image_defaults() {
    let (rt, run, shared_id) = setup().await;
    let (tag, own_id) = run.own_image(&rt, "img").await.expect("build own image");
    assert_ne!(own_id, shared_id, "each tag is its own image");
    let again = testsupport::build_busybox_image(&rt, &tag)
        .await
        .expect("rebuild");
    assert_eq!(again, own_id, "building the same tag again is a lookup");

    let extra = format!("{TEST_IMAGE_REPO}:{}-alias", run.id());
    run.track_image(&extra);
    testsupport::tag_image(&rt, &tag, &extra)
        .await
        .expect("tag");

    let id = rt
        .create(&run.request("img", minimal_spec("img", &tag)))
        .await
        .expect("create");
    let observed = rt.observe(Some(&run.selector())).await.expect("observe");

    let info = observed.image(&tag).expect("own image is listed by tag");
    assert_eq!(info.id, own_id);
    assert!(
        info.tags.contains(&tag) && info.tags.contains(&extra),
        "{:?}",
        info.tags
    );
    assert_eq!(observed.image(&extra).map(|i| &i.id), Some(&own_id));

    let defaults = &info.defaults;
    let cmd: Vec<String> = DEFAULT_CMD.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(defaults.command.as_ref(), Some(&cmd));
    assert_eq!(defaults.entrypoint, None);
    assert_eq!(
        defaults.env.get("PATH").map(String::as_str),
        Some(IMAGE_PATH)
    );
    assert_eq!(defaults.labels.get(TEST_IMAGE_LABEL), Some(&tag));
    assert_eq!(defaults.healthcheck, None);

    let c = observed.container(&run.name("img")).expect("container");
    assert_eq!(c.id, id);
    assert_eq!(c.image_id, own_id);
    assert_eq!(c.image_defaults.as_ref(), Some(defaults));
    // An unset command inherits the image's.
    assert_eq!(c.command.as_ref(), Some(&cmd));

    // Observing twice gives the same snapshot.
    let again = rt
        .observe(Some(&run.selector()))
        .await
        .expect("observe again");
    assert_eq!(again.containers, observed.containers);
}

both_engines!(
    events_report_lifecycle_and_observe_with_a_live_stream_sees_every_change,
    events_report_lifecycle_and_observe_with_a_live_stream_sees_every_change_on_sim,
    events_report_lifecycle_and_observe_with_a_live_stream_sees_every_change_on
);

async fn events_report_lifecycle_and_observe_with_a_live_stream_sees_every_change_on(
    rt: &DockerRuntime,
    run: &TestRun,
    _image_id: &str,
) {
    use futures_util::StreamExt;
    let selector = run.selector();
    let mut events = Box::pin(rt.events(Some(&selector)));
    // Subscribe: the stream is lazy; poll it in the background, collecting actions.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn(async move {
        while let Some(Ok(e)) = events.next().await {
            let _ = tx.send((e.action, e.name));
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let req = run.request("ev", minimal_spec("ignored", IMAGE));
    let id = rt.create(&req).await.expect("create");
    rt.start(&id).await.expect("start");
    let first = rt.observe(Some(&selector)).await.expect("observe");
    assert_eq!(
        first.container(&req.name).map(|c| c.state),
        Some(ContainerState::Running)
    );
    // Cached now; a change the list shows (stop) and one it may not (rename) are both seen.
    rt.stop(&id, 5).await.expect("stop");
    let stopped = rt.observe(Some(&selector)).await.expect("observe");
    assert_eq!(
        stopped.container(&req.name).map(|c| c.state),
        Some(ContainerState::Exited)
    );
    let renamed = run.name("ev2");
    rt.rename(&id, &renamed).await.expect("rename");
    let after = rt.observe(Some(&selector)).await.expect("observe");
    assert!(after.container(&renamed).is_some(), "renamed seen");

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !["create", "start", "die", "stop", "rename"]
        .iter()
        .all(|a| seen.iter().any(|(s, _): &(String, Option<String>)| s == a))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(e)) => seen.push(e),
            _ => panic!("missing events; saw {seen:?}"),
        }
    }
    assert!(
        seen.iter()
            .any(|(a, n)| a == "create" && n.as_deref() == Some(req.name.as_str()))
    );
    follower.abort();
}

fn build_spec(files: &[(&str, &str)], target: Option<&str>) -> refinery_core::BuildSpec {
    refinery_core::BuildSpec {
        context: "app".into(),
        dockerfile: "Dockerfile".into(),
        args: BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]),
        target: target.map(str::to_owned),
        digest: "d1".into(),
        files: std::sync::Arc::new(
            files
                .iter()
                .map(|(k, v)| {
                    let file = refinery_core::ContextFile {
                        data: v.as_bytes().to_vec(),
                        executable: k.ends_with(".sh"),
                    };
                    ((*k).to_owned(), file)
                })
                .collect(),
        ),
        ..refinery_core::BuildSpec::default()
    }
}

#[tokio::test]
async fn build_image_uses_context_args_target_and_labels() {
    let (rt, run, _) = setup().await;
    let tag = format!("{}:built", run.name("img"));
    run.track_image(&tag);
    let build = build_spec(
        &[
            (
                "Dockerfile",
                "FROM refinery-test-busybox:latest AS base\nARG GREETING\nFROM base AS run\nARG GREETING\nENV GREETING=$GREETING\nCOPY sub/file.txt /file.txt\nFROM base AS other\nENV GREETING=wrong\n",
            ),
            ("sub/file.txt", "content\n"),
        ],
        Some("run"),
    );
    let labels = BTreeMap::from([("io.refinery.build-digest".to_owned(), "d1".to_owned())]);
    rt.build_image(&tag, &build, &labels)
        .await
        .expect("build from the in-memory context");
    let observed = rt.observe(None).await.expect("observe");
    let info = observed.image(&tag).expect("the tag exists");
    assert_eq!(
        info.defaults
            .labels
            .get("io.refinery.build-digest")
            .map(String::as_str),
        Some("d1")
    );
    assert!(
        info.defaults
            .env
            .get("GREETING")
            .is_some_and(|v| v == "hello"),
        "{:?}",
        info.defaults.env
    );

    // A failing build (a base neither local nor reachable) names the image and says why.
    let bad = build_spec(&[("Dockerfile", "FROM refinery-absent-base:1\n")], None);
    let err = rt
        .build_image(&format!("{}:bad", run.name("img")), &bad, &BTreeMap::new())
        .await
        .expect_err("no such base image");
    let text = err.to_string();
    assert!(text.contains("build image"), "{text}");

    // The compose build keys the classic builder takes: the network `RUN` steps use, the size of
    // their `/dev/shm`, extra hosts (each reaches `/etc/hosts`), the image's own labels.
    let tag = format!("{}:keys", run.name("img"));
    run.track_image(&tag);
    let mut keys = build_spec(
        &[(
            "Dockerfile",
            "FROM refinery-test-busybox:latest\nRUN grep -q 'mirror.local' /etc/hosts && grep -q 'cache.local' /etc/hosts\nRUN df -k /dev/shm | grep -q 65536\n",
        )],
        None,
    );
    keys.network = Some("host".into());
    keys.shm_size = Some(64 << 20);
    keys.extra_hosts = vec![
        "cache.local:10.0.0.8".into(),
        "mirror.local:10.0.0.9".into(),
    ];
    keys.labels = BTreeMap::from([("org.example.team".to_owned(), "core".to_owned())]);
    rt.build_image(&tag, &keys, &labels)
        .await
        .expect("build with network, shm_size, extra_hosts and labels");
    let observed = rt.observe(None).await.expect("observe");
    let info = observed.image(&tag).expect("the tag exists");
    assert_eq!(
        info.defaults
            .labels
            .get("org.example.team")
            .map(String::as_str),
        Some("core")
    );
}

#[tokio::test]
async fn networks_and_volumes_report_their_settings_and_compare_equal() {
    let (rt, run, _) = setup().await;
    let net = refinery_core::NetworkSpec {
        node: "local".into(),
        name: run.name("net"),
        driver: "bridge".into(),
        labels: BTreeMap::from([("com.docker.compose.project".to_owned(), "p".to_owned())]),
        external: false,
        options: BTreeMap::from([(
            "com.docker.network.bridge.enable_icc".to_owned(),
            "false".to_owned(),
        )]),
        ipam: Some(refinery_core::spec::Ipam {
            pools: vec![refinery_core::spec::IpamPool {
                subnet: Some("10.231.251.0/24".into()),
                gateway: Some("10.231.251.1".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        internal: true,
        attachable: true,
        ..Default::default()
    };
    assert!(rt.ensure_network(&net).await.expect("create the network"));
    let vol = refinery_core::VolumeSpec {
        node: "local".into(),
        name: run.name("vol"),
        driver: "local".into(),
        labels: BTreeMap::from([("com.docker.compose.volume".to_owned(), "v".to_owned())]),
        external: false,
        options: BTreeMap::from([
            ("type".to_owned(), "tmpfs".to_owned()),
            ("device".to_owned(), "tmpfs".to_owned()),
            ("o".to_owned(), "size=1m".to_owned()),
        ]),
        ..Default::default()
    };
    run.track_volume(&vol.name);
    assert!(rt.ensure_volume(&vol).await.expect("create the volume"));
    let (networks, volumes) = rt.networks_and_volumes().await.expect("list");
    let n = networks
        .iter()
        .find(|n| n.name == net.name)
        .expect("network listed");
    assert_eq!(n.driver, "bridge");
    assert_eq!(n.labels, net.labels);
    let v = volumes
        .iter()
        .find(|v| v.name == vol.name)
        .expect("volume listed");
    assert_eq!(v.driver, "local");
    assert_eq!(v.labels, vol.labels);
    assert_eq!(v.options, vol.options);
    assert!(n.internal && n.attachable, "{n:?}");
    // What the engine reports compares equal to what was declared.
    let mut report = refinery_core::DriftReport::default();
    refinery_core::drift_resources::diff_stack_resources(
        "local",
        &refinery_core::drift_resources::StackResources {
            networks: vec![net.clone()],
            volumes: vec![vol.clone()],
            observed_networks: networks.clone(),
            observed_volumes: volumes.clone(),
        },
        &mut report,
    );
    assert!(report.drifts.is_empty(), "{report:#?}");
}

/// Drives one container through every transition Refinery causes (and a pause), collecting
/// the event actions the engine reports for it, in order.
async fn transition_events_on(rt: &DockerRuntime, run: &TestRun) -> Vec<String> {
    use futures_util::StreamExt;
    let selector = run.selector();
    let mut events = Box::pin(rt.events(Some(&selector)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn(async move {
        while let Some(Ok(e)) = events.next().await {
            let _ = tx.send(e.action);
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let id = rt
        .create(&run.request("seq", minimal_spec("seq", IMAGE)))
        .await
        .expect("create");
    rt.start(&id).await.expect("start");
    rt.stop(&id, 5).await.expect("stop");
    rt.start(&id).await.expect("start again");
    rt.restart(&id).await.expect("restart");
    testsupport::pause(rt, &id).await.expect("pause");
    rt.unpause(&id).await.expect("unpause");
    rt.rename(&id, &run.name("seq2")).await.expect("rename");
    rt.remove(&id).await.expect("remove running");

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.last().map(String::as_str) != Some("destroy") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(a)) => seen.push(a),
            _ => panic!("no `destroy` event; saw {seen:?}"),
        }
    }
    follower.abort();
    seen
}

#[tokio::test]
async fn simulator_emits_the_engines_event_sequence() {
    let (real, real_run, _) = setup().await;
    let s = sim_setup().await;
    let on_engine = transition_events_on(&real, &real_run).await;
    let on_sim = transition_events_on(&s.rt, &s.run).await;
    // Health and exec events are the engine's own business; the rest must match one for one.
    // A stop right after a start can reach the shell before it set its TERM trap: the engine
    // then kills twice (TERM, then KILL after the timeout), so repeated kills count once.
    let lifecycle = |v: Vec<String>| -> Vec<String> {
        let mut out: Vec<String> = v
            .into_iter()
            .filter(|a| !a.starts_with("exec_") && !a.starts_with("health_status"))
            .collect();
        out.dedup_by(|a, b| a == "kill" && b == "kill");
        out
    };
    let on_engine = lifecycle(on_engine);
    assert_eq!(
        on_engine,
        [
            "create", "start", "kill", "die", "stop", "start", "kill", "die", "stop", "start",
            "restart", "pause", "unpause", "rename", "kill", "die", "destroy"
        ],
        "the engine itself"
    );
    assert_eq!(lifecycle(on_sim), on_engine);
}

#[tokio::test]
async fn simulator_observes_what_the_engine_observes() {
    let (real, real_run, real_image) = setup().await;
    let s = sim_setup().await;
    let conf = real_run.temp_dir("conf").expect("temp dir");
    let conf = conf.to_str().expect("utf-8 temp dir").to_owned();

    let mut web = minimal_spec("web", IMAGE);
    web.ports = vec![PortBinding {
        host_ip: "127.0.0.1".into(),
        host_port: None,
        container_port: 8080,
        protocol: Protocol::Tcp,
    }];
    web.env = BTreeMap::from([(
        "LOG_LEVEL".to_owned(),
        Secret::for_name("LOG_LEVEL", "info"),
    )]);
    web.mounts = vec![
        Mount {
            kind: MountKind::Bind,
            source: conf,
            target: "/etc/conf".into(),
            read_only: true,
        },
        Mount {
            kind: MountKind::Anonymous,
            source: String::new(),
            target: "/cache".into(),
            read_only: false,
        },
    ];
    web.labels = BTreeMap::from([("team".to_owned(), "core".to_owned())]);
    web.restart = RestartPolicy::UnlessStopped;
    let mut worker = minimal_spec("worker", IMAGE);
    worker.entrypoint = Some(vec!["sh".into(), "-c".into()]);
    worker.command = Some(vec!["trap 'exit 0' TERM; sleep 1000 & wait $!".into()]);
    worker.restart = RestartPolicy::OnFailure(3);
    let idle = minimal_spec("idle", IMAGE);

    let mut observed = Vec::new();
    for (rt, run, image_id) in [
        (&real, &real_run, real_image.as_str()),
        (&s.rt, &s.run, s.image_id.as_str()),
    ] {
        for (suffix, spec) in [("web", &web), ("worker", &worker)] {
            let id = rt
                .create(&run.request(suffix, spec.clone()))
                .await
                .expect("create");
            rt.start(&id).await.expect("start");
        }
        rt.create(&run.request("idle", idle.clone()))
            .await
            .expect("create idle");
        let mut seen = rt.observe(Some(&run.selector())).await.expect("observe");
        // What differs between any two engines: ids, times, names carrying the run id.
        for c in &mut seen.containers {
            assert_eq!(c.image_id, image_id);
            assert!(!c.created.is_empty());
            assert_eq!(c.started_at.is_some(), !c.name.ends_with("idle"));
            c.id.clear();
            c.image_id.clear();
            c.created.clear();
            c.started_at = None;
            c.name = c.name.replacen(run.id(), "RUN", 1);
            // The hostname is the container's short id; the log driver's options are the
            // daemon's own configuration (`log-opts`).
            c.options.hostname = None;
            c.options.logging = None;
            // The MAC addresses are the engine's own picks.
            for n in &mut c.options.networks {
                n.mac_address = None;
            }
            c.labels
                .insert(testsupport::RUN_LABEL.to_owned(), "RUN".to_owned());
        }
        observed.push(seen.containers);
    }
    assert_eq!(observed[1], observed[0]);
}
