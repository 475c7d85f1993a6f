//! TLS to etcd (`--ha-cacert`, `--ha-cert`, `--ha-key`, as `etcdctl --cacert --cert --key`).

use std::path::Path;

use crate::HaUrl;

/// TLS to etcd: the CA that signed its server certificate, and a client certificate and key
/// (PEM), read once at start.
#[derive(Clone)]
pub struct EtcdTls {
    pub(crate) ca: Vec<u8>,
    /// The client certificate and its key.
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// A TLS file for the election that cannot be used: bad usage, found before anything is
/// contacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to use `{flag}` for the election: {message}")]
pub struct TlsFileError {
    /// The flag that named it (`--ha-cacert`).
    pub flag: String,
    pub message: String,
}

impl EtcdTls {
    /// The CA (`--ha-cacert`) and client certificate and key (`--ha-cert`, `--ha-key`) for
    /// `url`: `None` without a CA; an error when a file cannot be read or is not PEM, or when
    /// they are given for a `k8s://` Lease.
    pub fn load(
        url: &HaUrl,
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Option<EtcdTls>, TlsFileError> {
        let Some(ca) = ca else {
            return Ok(None);
        };
        if let HaUrl::Kube { .. } = url {
            return Err(TlsFileError {
                flag: "--ha-cacert".into(),
                message: format!(
                    "`{url}` is a Kubernetes Lease, reached with the kubeconfig's TLS settings"
                ),
            });
        }
        let read = |flag: &str, path: &Path| {
            let bytes = std::fs::read(path).map_err(|e| TlsFileError {
                flag: flag.to_owned(),
                message: format!("failed to read `{}`: {e}", path.display()),
            })?;
            if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(TlsFileError {
                    flag: flag.to_owned(),
                    message: format!("`{}` is not a PEM file", path.display()),
                });
            }
            Ok(bytes)
        };
        let ca = read("--ha-cacert", ca)?;
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((read("--ha-cert", cert)?, read("--ha-key", key)?)),
            _ => None,
        };
        Ok(Some(EtcdTls { ca, identity }))
    }
}
