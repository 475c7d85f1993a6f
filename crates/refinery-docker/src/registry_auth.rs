//! [`RegistryAuth`]: the credentials every pull sends, looked up per registry host the way the
//! docker CLI does it — the manifest's `registries:` first, then the CLI's `config.json`
//! (`credHelpers`, `credsStore` through `docker-credential-<name> get`, `auths`). The file is read
//! at each pull, so a `docker login` while the daemon runs is seen at its next pull.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use refinery_core::ImageRef;
use refinery_core::manifest::RegistryLogin;
use refinery_core::registry_auth::{
    CredentialSource, DockerConfig, RegistryCredential, credential_sources, parse_helper_answer,
};
use tokio::io::AsyncWriteExt;

/// How long a credential helper may take to answer.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials for pulls. Clones share the manifest's logins, so replacing them (a new revision)
/// reaches every engine client made earlier.
#[derive(Clone, Default)]
pub struct RegistryAuth {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    logins: Vec<RegistryLogin>,
    /// The docker CLI's configuration directory (`DOCKER_CONFIG`, else `~/.docker`).
    config_dir: Option<PathBuf>,
}

/// Credentials found for a pull, and where they came from (for logs; never the secret).
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub credential: RegistryCredential,
    pub source: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("RegistryAuth")
            .field(
                "hosts",
                &inner.logins.iter().map(|l| &l.host).collect::<Vec<_>>(),
            )
            .field("config_dir", &inner.config_dir)
            .finish()
    }
}

impl RegistryAuth {
    /// Credentials from the docker CLI configuration in `config_dir` (`config.json` in it).
    #[must_use]
    pub fn new(config_dir: Option<PathBuf>) -> RegistryAuth {
        RegistryAuth {
            inner: Arc::new(RwLock::new(Inner {
                logins: Vec::new(),
                config_dir,
            })),
        }
    }

    /// The docker CLI's configuration directory of this user: `DOCKER_CONFIG`, else
    /// `$HOME/.docker`.
    #[must_use]
    pub fn config_dir_from_env() -> Option<PathBuf> {
        std::env::var_os("DOCKER_CONFIG")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
    }

    /// Replaces the manifest's `registries:` entries.
    pub fn set_logins(&self, logins: Vec<RegistryLogin>) {
        match self.inner.write() {
            Ok(mut g) => g.logins = logins,
            Err(poisoned) => poisoned.into_inner().logins = logins,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The credentials to send when pulling `image`, if any source has some.
    ///
    /// # Errors
    /// A `config.json` that exists but cannot be read or parsed.
    pub(crate) async fn credentials_for(&self, image: &ImageRef) -> Result<Option<Found>, String> {
        let (logins, config_dir) = {
            let g = self.read();
            (g.logins.clone(), g.config_dir.clone())
        };
        let config = match &config_dir {
            Some(dir) => read_config(&dir.join("config.json")).await?,
            None => None,
        };
        for source in credential_sources(image.registry(), &logins, config.as_ref()) {
            let described = source.describe();
            let credential = match source {
                CredentialSource::Manifest(c) | CredentialSource::ConfigFile(c) => Some(c),
                CredentialSource::Helper(name) => {
                    match run_helper(&name, image.auth_server()).await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(
                                registry = image.registry(),
                                "failed to get credentials from {described}: {e}"
                            );
                            None
                        }
                    }
                }
            };
            if let Some(credential) = credential {
                tracing::debug!(registry = image.registry(), "credentials from {described}");
                return Ok(Some(Found {
                    credential,
                    source: described,
                }));
            }
        }
        Ok(None)
    }
}

async fn read_config(path: &Path) -> Result<Option<DockerConfig>, String> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => DockerConfig::parse(&text)
            .map(Some)
            .map_err(|e| format!("`{}`: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("failed to read `{}`: {e}", path.display())),
    }
}

/// Runs `docker-credential-<name> get` with the server address on stdin, as the docker CLI
/// does. "Not found" answers are `None`.
async fn run_helper(name: &str, server: &str) -> Result<Option<RegistryCredential>, String> {
    let program = format!("docker-credential-{name}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("failed to run `{program}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|e| format!("failed to write to `{program}`: {e}"))?;
    }
    let out = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("`{program}` did not answer within {HELPER_TIMEOUT:?}"))?
        .map_err(|e| format!("failed to run `{program}`: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout
            .to_ascii_lowercase()
            .contains("credentials not found")
        {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "`{program} get` failed ({}): {}",
            out.status,
            stderr.trim().lines().next().unwrap_or_default()
        ));
    }
    parse_helper_answer(&stdout).map_err(|e| format!("`{program}`: {e}"))
}
