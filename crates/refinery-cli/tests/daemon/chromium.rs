//! Headless Chromium (Debian's `chromium` package) loading a page once and printing its DOM when
//! its time is up: what the page shows after live updates, without a reload.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Page {
    child: Child,
    out: std::path::PathBuf,
    started: Instant,
    _dir: tempfile::TempDir,
}

/// The browser binary; the tests fail loudly without it, as they do without Docker.
fn binary() -> &'static str {
    for b in ["chromium", "chromium-browser"] {
        if Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return b;
        }
    }
    panic!("the status page test needs headless Chromium: `apt-get install -y chromium`");
}

/// How long the page stays open (virtual time: timers and the event stream run meanwhile).
const BUDGET_MS: u64 = 20_000;

impl Page {
    /// Loads `url` in a fresh headless browser that prints the DOM after [`BUDGET_MS`].
    pub fn open(url: &str) -> Option<Page> {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("dom.html");
        let file = std::fs::File::create(&out).expect("dom file");
        let child = Command::new(binary())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .arg(format!("--timeout={BUDGET_MS}"))
            .arg("--dump-dom")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        Some(Page {
            child,
            out,
            started: Instant::now(),
            _dir: dir,
        })
    }

    /// The DOM once the browser is done (at most `BUDGET_MS` plus `slack` after it started).
    pub async fn dom_after(mut self, slack: Duration) -> String {
        let deadline = self.started + Duration::from_millis(BUDGET_MS) + slack + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
