//! A `refinery run` child process for one test: its own state directory, its log captured in a
//! file, SIGTERM on `stop`, SIGKILL on drop (a failing test never leaves a daemon behind).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use refinery_core::ledger::Entry;

use crate::common::Env;

/// How long a test waits for the daemon to heal something before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
    pub state_dir: PathBuf,
    pub ledger: PathBuf,
    /// The extra environment it was started with (a restart keeps it).
    vars: Vec<(String, std::ffi::OsString)>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `refinery run --repo <env repo> --poll-interval 100ms` plus `extra`.
    pub fn start(env: &Env, extra: &[&str]) -> Daemon {
        Daemon::start_in(env.repo.path(), extra)
    }

    /// Starts the daemon on the repository at `repo`.
    pub fn start_in(repo: &std::path::Path, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(repo, extra, &[])
    }

    /// Starts the daemon on the repository at `repo` with extra environment variables.
    pub fn start_with_env(
        repo: &std::path::Path,
        extra: &[&str],
        vars: &[(&str, &std::ffi::OsStr)],
    ) -> Daemon {
        Daemon::spawn(tempfile::tempdir().expect("temp dir"), repo, extra, vars)
    }

    /// SIGKILLs the daemon (nothing flushed, no `daemon_stop`) and starts it again on the same
    /// repository and state directory, as a supervisor would.
    #[allow(dead_code)] // used by the fault tests
    pub fn kill_and_restart(mut self, repo: &std::path::Path, extra: &[&str]) -> Daemon {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let kept = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        let vars = std::mem::take(&mut self.vars);
        let vars: Vec<(&str, &std::ffi::OsStr)> = vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .collect();
        Daemon::spawn(kept, repo, extra, &vars)
    }

    fn spawn(
        dir: tempfile::TempDir,
        repo: &std::path::Path,
        extra: &[&str],
        vars: &[(&str, &std::ffi::OsStr)],
    ) -> Daemon {
        let log = dir.path().join("daemon.log");
        let state_dir = dir.path().join("state");
        // Appended to: a restarted daemon's log follows the killed one's.
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let bin = assert_cmd::cargo::cargo_bin("refinery");
        let child = Command::new(bin)
            .arg("run")
            .arg("--repo")
            .arg(repo)
            .arg("--state-dir")
            .arg(&state_dir)
            .args(["--poll-interval", "100ms", "--log-format", "json"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("REFINERY_REPO")
            .env_remove("REFINERY_REV")
            .env_remove("REFINERY_SELF_CONTAINER")
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("REFINERY_LOG", "info,refinery=debug")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn `refinery run`");
        Daemon {
            child: Some(child),
            log,
            state_dir,
            ledger: repo.join("ledger/container_ledger.jsonl"),
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            _dir: dir,
        }
    }

    /// The daemon's process id, while it runs.
    #[allow(dead_code)] // used by the fault tests
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every ledger entry written so far.
    pub fn entries(&self) -> Vec<Entry> {
        std::fs::read_to_string(&self.ledger)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Ledger entries as JSON values (for matching on fields).
    pub fn entry_values(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.ledger)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until some ledger entry satisfies `pred`; returns it.
    pub async fn wait_entry(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(e) = self.entry_values().into_iter().find(|e| pred(e)) {
                return e;
            }
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "no ledger entry {what} within {PATIENCE:?}\nledger:\n{}\nlog:\n{}",
                std::fs::read_to_string(&self.ledger).unwrap_or_default(),
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[track_caller]
    pub fn assert_alive(&mut self) {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!("the daemon exited with {status}\nlog:\n{}", self.log_text());
        }
    }

    /// SIGTERM, then waits for a clean exit (code 0) and a `daemon_stop` entry.
    pub async fn stop(self) -> String {
        let (log, entries) = self.stop_process().await;
        assert!(
            entries
                .last()
                .is_some_and(|e| e.event.kind().as_str() == "daemon_stop"),
            "the last ledger entry is `daemon_stop`\nlog:\n{log}"
        );
        log
    }

    /// SIGTERM, then waits for a clean exit (code 0); returns the log and the ledger's entries
    /// (a standby under `--ha` writes no `daemon_stop`).
    pub async fn stop_process(mut self) -> (String, Vec<Entry>) {
        let Some(mut child) = self.child.take() else {
            return (self.log_text(), self.entries());
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the daemon did not stop on SIGTERM\nlog:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let log = self.log_text();
        assert_eq!(status.code(), Some(0), "daemon exit\nlog:\n{log}");
        let entries = self.entries();
        (log, entries)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until `check` returns `Some`, polling every 25 ms, for at most [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, daemon: &mut Daemon, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        daemon.assert_alive();
        assert!(
            Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}\nledger:\n{}\nlog:\n{}",
            std::fs::read_to_string(&daemon.ledger).unwrap_or_default(),
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `kind` of a ledger entry value.
pub fn kind(e: &serde_json::Value) -> &str {
    e.get("kind").and_then(|k| k.as_str()).unwrap_or_default()
}

/// The resource id of a ledger entry value.
pub fn resource(e: &serde_json::Value) -> &str {
    e.get("resource")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
}
