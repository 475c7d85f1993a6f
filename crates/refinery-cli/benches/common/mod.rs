//! What the benchmarks share: knobs, percentiles, and a `refinery run` process to measure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A numeric knob from the environment.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p`th percentile (nearest rank); NaN for no samples.
pub fn pct(v: &[f64], p: u32) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((f64::from(p) / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// `refinery run` on a repository, logging JSON to a file; SIGTERMed on drop.
pub struct DaemonProc {
    child: Child,
    log: PathBuf,
}

impl DaemonProc {
    /// Starts the daemon with `extra` arguments and `REFINERY_LOG=log_filter`; under
    /// `REFINERY_BENCH_WRAPPER` (a program taking the daemon's command line, such as a script
    /// running `exec "$@" --max-concurrent-nodes 16`) when that is set. RSS and CPU are then the
    /// wrapper's, unless it `exec`s the daemon.
    pub fn start(repo: &Path, dir: &Path, extra: &[&str], log_filter: &str) -> DaemonProc {
        DaemonProc::start_with_env(repo, dir, extra, log_filter, &[])
    }

    /// [`DaemonProc::start`] with `vars` added to the daemon's environment.
    pub fn start_with_env(
        repo: &Path,
        dir: &Path,
        extra: &[&str],
        log_filter: &str,
        vars: &[(&str, &std::ffi::OsStr)],
    ) -> DaemonProc {
        let log = dir.join("daemon.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = match std::env::var("REFINERY_BENCH_WRAPPER") {
            Ok(w) if !w.is_empty() => {
                let mut c = Command::new(w);
                c.arg(env!("CARGO_BIN_EXE_refinery"));
                c
            }
            _ => Command::new(env!("CARGO_BIN_EXE_refinery")),
        };
        let child = cmd
            .args(["run", "--log-format", "json", "--poll-interval", "1s"])
            .arg("--repo")
            .arg(repo)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(extra)
            .env("REFINERY_LOG", log_filter)
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn refinery run");
        DaemonProc { child, log }
    }

    /// The daemon's log file.
    #[allow(dead_code)] // one benchmark names it in its failures
    pub fn log(&self) -> &Path {
        &self.log
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far, parsed.
    #[allow(dead_code)] // one benchmark reads lines, the other only pass times
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let Ok(f) = std::fs::File::open(&self.log) else {
            return Vec::new();
        };
        BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    /// Durations of the passes logged after the first `from` passes.
    pub fn pass_ms(&self, from: usize) -> Vec<f64> {
        let Ok(f) = std::fs::File::open(&self.log) else {
            return Vec::new();
        };
        BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("pass done"))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .filter_map(|l| l["micros"].as_f64().map(|m| m / 1000.0))
            .skip(from)
            .collect()
    }

    pub fn rss_kib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(f64::NAN)
    }

    /// utime + stime, in clock ticks (100 per second on Linux).
    pub fn cpu_ticks(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1;
                let f: Vec<&str> = rest.split_whitespace().collect();
                Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
            })
            .unwrap_or(f64::NAN)
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
