//! [`TlsFiles`]: the client certificate set of a `tcp://` engine, as `docker --tlsverify` uses it,
//! checked before the first connection so a missing or mismatched file is named at once.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// `ca.pem`, `cert.pem` and `key.pem` of a TLS-protected engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsFiles {
    /// The CA that signed the engine's server certificate.
    pub ca: PathBuf,
    /// The client certificate presented to the engine.
    pub cert: PathBuf,
    /// The client certificate's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `cert.pem`, `key.pem` in `dir` (what `DOCKER_CERT_PATH` names).
    #[must_use]
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// Reads and parses every file and checks the key belongs to the certificate. The error
    /// message names the file and what is wrong with it.
    pub fn check(&self) -> Result<(), String> {
        let ca = certs(&self.ca, "CA")?;
        if ca.is_empty() {
            return Err(format!(
                "the TLS CA file `{}` holds no PEM certificate",
                self.ca.display()
            ));
        }
        let chain = certs(&self.cert, "certificate")?;
        if chain.is_empty() {
            return Err(format!(
                "the TLS certificate file `{}` holds no PEM certificate",
                self.cert.display()
            ));
        }
        let bytes = read(&self.key, "key")?;
        let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
            format!(
                "the TLS key file `{}` holds no usable PEM private key ({e})",
                self.key.display()
            )
        })?;
        let provider = rustls::crypto::ring::default_provider();
        let certified =
            rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
                format!(
                    "the TLS key `{}` does not fit the certificate `{}`: {e}",
                    self.key.display(),
                    self.cert.display()
                )
            })?;
        certified.keys_match().map_err(|e| {
            format!(
                "the TLS key `{}` does not belong to the certificate `{}`: {e}",
                self.key.display(),
                self.cert.display()
            )
        })
    }
}

fn read(path: &Path, role: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => e.to_string(),
        };
        format!(
            "failed to read the TLS {role} file `{}`: {why}",
            path.display()
        )
    })
}

fn certs(path: &Path, role: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path, role)?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the TLS {role} file `{}` is not PEM ({e})", path.display()))
}
