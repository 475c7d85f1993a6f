//! A real SMTP server on 127.0.0.1 (Debian's `python3-aiosmtpd`, which `scripts/test.sh`
//! installs), run from `smtp_server.py`: plain, offering STARTTLS, or TLS from the first byte.
//! Shared by refinery-notify's e-mail tests and the CLI's `alert test` test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";

/// One SMTP server process; killed on drop.
pub struct Smtp {
    child: Child,
    out: PathBuf,
    pub port: u16,
}

impl Smtp {
    /// Starts the server in `mode` (`plain`, `starttls`, `smtps`), with `tls` = (certificate,
    /// key) for the TLS modes, writing what it receives below `dir`.
    pub fn start(dir: &Path, mode: &str, tls: Option<(&Path, &Path)>) -> Smtp {
        let ok = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{PYTHON} cannot import aiosmtpd: run `apt-get install python3-aiosmtpd` (scripts/test.sh does)"
        );
        let out = dir.join(format!("smtp-{mode}.jsonl"));
        // From refinery-notify's own tests and from other crates' (which include this module).
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../refinery-notify/tests/support/smtp_server.py");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script).arg(mode).arg(&out);
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let child = cmd.spawn().expect("start the SMTP server");
        let mut smtp = Smtp {
            child,
            out,
            port: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(port) = std::fs::read_to_string(&smtp.out)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                smtp.port = port;
                return smtp;
            }
            if let Ok(Some(status)) = smtp.child.try_wait() {
                panic!("the SMTP server exited: {status}");
            }
            assert!(Instant::now() < deadline, "the SMTP server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Messages received so far.
    pub fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
