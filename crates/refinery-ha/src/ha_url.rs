//! Where the election is held, as `--ha` names it.

use std::fmt;
use std::str::FromStr;

/// Where the leader lease lives, as `--ha` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaUrl {
    /// `etcd://HOST:PORT/PREFIX`: etcd's client port at `host` (`HOST:PORT`), keys under
    /// `prefix`. Spoken to over `http://`, or `https://` with `--ha-cacert`.
    Etcd { host: String, prefix: String },
    /// `k8s://CONTEXT/NAMESPACE/NAME`: a `coordination.k8s.io` Lease in the kubeconfig's
    /// (`KUBECONFIG`, else `~/.kube/config`) context `CONTEXT`.
    Kube {
        context: String,
        namespace: String,
        name: String,
    },
}

impl fmt::Display for HaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HaUrl::Etcd { host, prefix } => write!(f, "etcd://{host}{prefix}"),
            HaUrl::Kube {
                context,
                namespace,
                name,
            } => write!(f, "k8s://{context}/{namespace}/{name}"),
        }
    }
}

impl HaUrl {
    /// Shard `shard`'s own election: `PREFIX/shard-I-of-N` in etcd, the Lease `NAME-shard-I-of-N`.
    #[must_use]
    pub fn for_shard(&self, shard: Option<refinery_core::Shard>) -> HaUrl {
        let Some(shard) = shard else {
            return self.clone();
        };
        match self {
            HaUrl::Etcd { host, prefix } => HaUrl::Etcd {
                host: host.clone(),
                prefix: format!("{prefix}/{}", shard.suffix()),
            },
            HaUrl::Kube {
                context,
                namespace,
                name,
            } => HaUrl::Kube {
                context: context.clone(),
                namespace: namespace.clone(),
                name: format!("{name}-{}", shard.suffix()),
            },
        }
    }
}

const URL_HINT: &str =
    "write it as `etcd://HOST:PORT/PREFIX` (e.g. `etcd://127.0.0.1:2379/refinery`)";

impl FromStr for HaUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("etcd://") {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            if host.is_empty() {
                return Err(format!("`{s}` names no etcd host; {URL_HINT}"));
            }
            let port_ok = host
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !port_ok {
                return Err(format!(
                    "`{s}`: `{host}` is not HOST:PORT (etcd's client port is usually 2379); {URL_HINT}"
                ));
            }
            let path = path.trim_end_matches('/');
            if path.is_empty() {
                return Err(format!(
                    "`{s}` names no key prefix (the election key lives under it); {URL_HINT}"
                ));
            }
            return Ok(HaUrl::Etcd {
                host: host.to_owned(),
                prefix: format!("/{path}"),
            });
        }
        if let Some(rest) = s.strip_prefix("k8s://") {
            let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
            return match parts.as_slice() {
                [c, ns, n] if !c.is_empty() && !ns.is_empty() && !n.is_empty() => Ok(HaUrl::Kube {
                    context: (*c).to_owned(),
                    namespace: (*ns).to_owned(),
                    name: (*n).to_owned(),
                }),
                _ => Err(format!(
                    "`{s}` is not `k8s://CONTEXT/NAMESPACE/NAME` (a coordination.k8s.io Lease)"
                )),
            };
        }
        Err(format!(
            "`{s}` is not an HA URL: use `etcd://HOST:PORT/PREFIX` or `k8s://CONTEXT/NAMESPACE/NAME`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha_url_etcd_with_prefix_parses() {
        assert_eq!(
            "etcd://127.0.0.1:2379/refinery".parse::<HaUrl>(),
            Ok(HaUrl::Etcd {
                host: "127.0.0.1:2379".into(),
                prefix: "/refinery".into()
            })
        );
        let url: HaUrl = "etcd://etcd.local:2379/a/b/"
            .parse()
            .unwrap_or(HaUrl::Etcd {
                host: String::new(),
                prefix: String::new(),
            });
        assert_eq!(url.to_string(), "etcd://etcd.local:2379/a/b");
    }

    #[test]
    fn ha_url_k8s_parses_as_kube() {
        assert_eq!(
            "k8s://lyra/refinery/leader".parse::<HaUrl>(),
            Ok(HaUrl::Kube {
                context: "lyra".into(),
                namespace: "refinery".into(),
                name: "leader".into()
            })
        );
    }

    #[test]
    fn ha_url_for_shard_has_its_own_key_prefix_or_lease() {
        let shard: refinery_core::Shard = "2/3".parse().expect("a shard");
        let etcd: HaUrl = "etcd://127.0.0.1:2379/refinery".parse().expect("etcd");
        assert_eq!(
            etcd.for_shard(Some(shard)).to_string(),
            "etcd://127.0.0.1:2379/refinery/shard-2-of-3"
        );
        let kube: HaUrl = "k8s://c/ns/refinery".parse().expect("k8s");
        assert_eq!(
            kube.for_shard(Some(shard)).to_string(),
            "k8s://c/ns/refinery-shard-2-of-3"
        );
        assert_eq!(kube.for_shard(None), kube);
    }

    #[test]
    fn ha_url_bad_forms_are_errors_with_the_expected_form() {
        for bad in [
            "etcd://127.0.0.1:2379",
            "etcd://127.0.0.1/refinery",
            "etcd:///refinery",
            "http://127.0.0.1:2379/refinery",
            "k8s://lyra/refinery",
        ] {
            let e = bad.parse::<HaUrl>().err().unwrap_or_default();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
