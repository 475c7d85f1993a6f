//! Shared harness for the end-to-end tests: the real `refinery` binary, a real git repository and
//! the real Docker engine.
//!
//! Every test owns an [`Env`]: a [`TestRun`] (unique run id, label `io.refinery.test=<id>`,
//! everything it labels or names removed on drop, panics included) and a [`TestRepo`] whose
//! manifests all start with `config: {selector: "io.refinery.test=<id>"}`, so the binary only ever
//! sees that test's containers. Tests run in parallel on one engine.
//!
//! The snapshot filters live here, in [`Env::settings`], and nowhere else.

// Each test binary that includes this module uses a different subset of it.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use refinery_core::{
    ContainerRuntime, ContainerSpec, ContainerState, ObservedContainer, RuntimeError,
};
use refinery_docker::DockerRuntime;
use refinery_docker::testsupport::{self, RUN_LABEL, TestRun, minimal_spec};
use refinery_git::TestRepo;

/// The shared test image (kept between runs; building an unchanged one is a lookup).
pub const IMAGE: &str = "refinery-test-busybox:latest";

/// How long one `refinery` invocation may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One test's world: engine, run guard, repository.
pub struct Env {
    pub rt: DockerRuntime,
    pub run: TestRun,
    pub repo: TestRepo,
    /// Id of [`IMAGE`] (empty for [`Env::offline`]).
    pub image_id: String,
    /// Every commit made through this env, for the `[HASH]` filter.
    commits: Mutex<Vec<String>>,
}

impl Env {
    /// An env on the real engine, with the shared test image present. An engine that cannot be
    /// reached fails the test loudly: every machine and CI job here has one.
    pub async fn new() -> Env {
        let rt = DockerRuntime::from_env().expect("DOCKER_HOST must name a supported endpoint");
        if let Err(e) = rt.info().await {
            panic!(
                "these tests need a running Docker engine at `{}`: {e}",
                rt.endpoint()
            );
        }
        let image_id = testsupport::build_busybox_image(&rt, IMAGE)
            .await
            .expect("build the busybox test image");
        Env::with(rt, image_id)
    }

    /// An env for tests that must fail before any engine is contacted (the run guard still
    /// cleans up after itself).
    pub fn offline() -> Env {
        let rt = DockerRuntime::from_env().expect("DOCKER_HOST must name a supported endpoint");
        Env::with(rt, String::new())
    }

    fn with(rt: DockerRuntime, image_id: String) -> Env {
        let run = TestRun::new(&rt);
        Env {
            rt,
            run,
            repo: TestRepo::new(),
            image_id,
            commits: Mutex::new(Vec::new()),
        }
    }

    /// `rt-<run id>-<suffix>`: a container, volume or image name unique to this test.
    pub fn name(&self, suffix: &str) -> String {
        self.run.name(suffix)
    }

    /// `io.refinery.test=<run id>`.
    pub fn selector(&self) -> String {
        format!("{RUN_LABEL}={}", self.run.id())
    }

    /// A manifest: this run's selector, then `body` (YAML with top-level keys other than
    /// `config`).
    pub fn manifest(&self, body: &str) -> String {
        format!("config: {{selector: \"{}\"}}\n{body}", self.selector())
    }

    /// Commits [`Env::manifest`]`(body)` as `refinery.yaml`; returns the commit id.
    pub fn commit_manifest(&self, body: &str) -> String {
        self.commit_file("refinery.yaml", &self.manifest(body))
    }

    /// Writes and commits one file as is; returns the commit id.
    pub fn commit_file(&self, path: &str, contents: &str) -> String {
        self.repo.write(path, contents);
        let id = self.repo.commit(&format!("update {path}"));
        if let Ok(mut c) = self.commits.lock() {
            c.push(id.clone());
        }
        id
    }

    /// `refinery <args> --repo <repo>` with `NO_COLOR=1 CI=1`, stdin closed.
    pub async fn refinery(&self, args: &[&str]) -> Run {
        self.refinery_env(args, Vec::new()).await
    }

    /// [`Env::refinery`] with extra environment variables.
    pub async fn refinery_env(
        &self,
        args: &[&str],
        vars: Vec<(String, std::ffi::OsString)>,
    ) -> Run {
        let mut full: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        full.push("--repo".into());
        full.push(self.repo.path().to_string_lossy().into_owned());
        run_refinery_env(full, vars).await
    }

    /// The container `name(suffix)` as the engine reports it, if it exists.
    pub async fn container(&self, suffix: &str) -> Option<ObservedContainer> {
        match self.rt.inspect(&self.name(suffix)).await {
            Ok(c) => Some(c),
            Err(RuntimeError::NotFound { .. }) => None,
            Err(e) => panic!("inspect `{}`: {e}", self.name(suffix)),
        }
    }

    /// The container `name(suffix)`, which must exist.
    pub async fn existing(&self, suffix: &str) -> ObservedContainer {
        self.container(suffix)
            .await
            .unwrap_or_else(|| panic!("container `{}` should exist", self.name(suffix)))
    }

    /// A spec for `name(suffix)` running [`IMAGE`] with nothing else set.
    pub fn spec(&self, suffix: &str) -> ContainerSpec {
        minimal_spec(&self.name(suffix), IMAGE)
    }

    /// Creates and starts `spec` by hand (not through Refinery) as `name(suffix)`, with the run
    /// label so this run's selector sees it; returns its id.
    pub async fn create_by_hand(&self, suffix: &str, spec: ContainerSpec) -> String {
        let req = self.run.request(suffix, spec);
        let id = self
            .rt
            .create(&req)
            .await
            .unwrap_or_else(|e| panic!("create `{}` by hand: {e}", req.name));
        self.rt
            .start(&id)
            .await
            .unwrap_or_else(|e| panic!("start `{}` by hand: {e}", req.name));
        id
    }

    /// Waits until `name(suffix)` is in `state`.
    pub async fn wait_state(&self, suffix: &str, state: ContainerState) -> ObservedContainer {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let c = self.existing(suffix).await;
            if c.state == state {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "`{}` did not become {state} (still {})",
                c.name,
                c.state
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Snapshot settings: the shared snapshot directory and the shared redaction filters.
    /// Placeholders for values that sit inside table columns keep their width.
    pub fn settings(&self) -> insta::Settings {
        let mut s = insta::Settings::clone_current();
        s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"));
        s.set_prepend_module_to_snapshot(false);
        s.set_omit_expression(true);
        let repo = self.repo.path().to_string_lossy().into_owned();
        let mut paths = vec![repo.clone()];
        if let Ok(canon) = std::fs::canonicalize(self.repo.path()) {
            paths.push(canon.to_string_lossy().into_owned());
        }
        for p in paths {
            s.add_filter(&regex_escape(&p), "[TEMP_DIR]");
        }
        // The run id (10 hex digits) in names and selectors; same width.
        s.add_filter(&regex_escape(self.run.id()), "[TEST-RUN]");
        let commits = self.commits.lock().map(|c| c.clone()).unwrap_or_default();
        for c in commits {
            s.add_filter(&regex_escape(&c), "[HASH]");
            s.add_filter(&regex_escape(&c[..12]), "[HASH]");
        }
        s.add_filter(r"sha256:[0-9a-f]{64}", "[IMAGE_ID]");
        s.add_filter(r"\b[0-9a-f]{64}\b", "[CONTAINER_ID]");
        s.add_filter(r"\b[0-9a-f]{40}\b", "[HASH]");
        // Short image ids, as in `image (56e7bfbbd2da)`: 12 hex digits, same width.
        s.add_filter(r"\b[0-9a-f]{12}\b", "[IMAGE--ID]");
        s.add_filter(r"/tmp/refinery-git-test-[A-Za-z0-9]+", "[TEMP_DIR]");
        s.add_filter(r"refinery \d+\.\d+\.\d+", "refinery [VERSION]");
        s
    }
}

/// Runs the binary with `args` exactly (no `--repo` added), `NO_COLOR=1 CI=1`, stdin closed.
pub async fn run_refinery(args: Vec<String>) -> Run {
    run_refinery_env(args, Vec::new()).await
}

/// [`run_refinery`] with extra environment variables.
pub async fn run_refinery_env(args: Vec<String>, vars: Vec<(String, std::ffi::OsString)>) -> Run {
    tokio::task::spawn_blocking(move || {
        let output = assert_cmd::Command::cargo_bin("refinery")
            .expect("the `refinery` binary is built for integration tests")
            .args(&args)
            .env("NO_COLOR", "1")
            .env("CI", "1")
            .env_remove("REFINERY_REPO")
            .env_remove("REFINERY_REV")
            .env_remove("REFINERY_LOG")
            .env_remove("REFINERY_SELF_CONTAINER")
            // Age keys come only from what a test's manifest names.
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_FILE")
            .envs(vars)
            .write_stdin("")
            .timeout(COMMAND_TIMEOUT)
            .output()
            .expect("run `refinery`");
        Run {
            args,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .expect("the `refinery` runner thread panicked")
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One finished invocation.
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code, stdout and stderr, as a snapshot holds them.
    pub fn transcript(&self) -> String {
        format!(
            "$ refinery {}\nexit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the exit code, showing the whole transcript when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code,
            expected,
            "unexpected exit code\n{}",
            self.transcript()
        );
        self
    }

    /// Asserts stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.transcript()
        );
        self
    }

    /// Asserts stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.transcript()
        );
        self
    }

    /// Asserts stdout has a table row whose first cells are `cells` (padding ignored).
    #[track_caller]
    pub fn row(&self, cells: &[&str]) -> &Run {
        let want: Vec<&str> = cells.iter().flat_map(|c| c.split_whitespace()).collect();
        assert!(
            self.stdout.lines().any(|l| {
                let got: Vec<&str> = l.split_whitespace().collect();
                got.starts_with(&want)
            }),
            "no row starting with {want:?}\n{}",
            self.transcript()
        );
        self
    }

    /// Asserts stdout has a line `<id> <outcome>` (an apply change set).
    #[track_caller]
    pub fn outcome(&self, name: &str, outcome: &str) -> &Run {
        let line = format!("docker/local/container/{name} {outcome}");
        assert!(
            self.stdout
                .lines()
                .any(|l| l == line || l.starts_with(&format!("{line} ("))),
            "no line {line:?}\n{}",
            self.transcript()
        );
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.transcript()))
    }
}
