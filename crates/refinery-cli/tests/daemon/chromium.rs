//! Headless Chromium (Debian's `chromium` package) holding one page open. The test reads the
//! page's title, which its script sets on every update, through the DevTools HTTP endpoint
//! (`/json/list`): a title that changes while the page is never reloaded proves live updates.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Page {
    child: Child,
    devtools: u16,
    url: String,
    _dir: tempfile::TempDir,
}

/// The browser binary; the test fails loudly without it, as the tests do without Docker.
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

impl Page {
    /// Loads `url` in a fresh headless browser with DevTools on `devtools` (127.0.0.1).
    pub fn open(url: &str, devtools: u16) -> Page {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new(binary())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", dir.path().display()))
            .arg(format!("--remote-debugging-port={devtools}"))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        Page {
            child,
            devtools,
            url: url.to_owned(),
            _dir: dir,
        }
    }

    /// The page's title now (`None` while the browser starts).
    pub async fn title(&self) -> Option<String> {
        let list: serde_json::Value = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/json/list", self.devtools))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        list.as_array()?
            .iter()
            .find(|t| {
                t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(&self.url))
            })
            .and_then(|t| t["title"].as_str().map(ToOwned::to_owned))
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
