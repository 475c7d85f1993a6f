//! Is a degraded container's primary host port free again? The core lists the ports
//! ([`port_fallback::degraded_primaries`]); this module looks, so the diff can turn "degraded and
//! primary free" into config drift (→ recreate on the primary).
//!
//! What can be seen depends on where Refinery runs:
//! - [`PortProbe::Bind`]: the engine is local (a unix socket) and Refinery shares the host's
//!   network namespace, so binding the port shows whether *anything* holds it;
//! - [`PortProbe::ContainerList`]: a remote engine (or Refinery in a container): only the engine's
//!   container list is known, so a primary counts as free only when a container held it when the
//!   fallback was chosen and no container publishes it now. A primary held by some other host
//!   process is never seen coming free: recreate the container by hand to move it back.
//!
//! In both cases a primary some container on the engine publishes is taken.

use std::collections::BTreeSet;

use refinery_core::port_fallback::{self, DegradedPrimary};
use refinery_core::{ContainerRuntime, Manifest, Observed, Protocol};

/// How [`free_primary_ports`] decides a port is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortProbe {
    /// Bind the port on the host (valid only when Refinery runs on the engine's host, in its
    /// network namespace).
    Bind,
    /// Trust only the engine's container list.
    ContainerList,
}

impl PortProbe {
    /// [`PortProbe::Bind`] for a unix-socket endpoint when Refinery does not run in a container,
    /// else [`PortProbe::ContainerList`].
    #[must_use]
    pub fn for_endpoint(endpoint: &str, in_container: bool) -> Self {
        let local = endpoint.starts_with("unix://") || endpoint.starts_with('/');
        if local && !in_container {
            PortProbe::Bind
        } else {
            PortProbe::ContainerList
        }
    }
}

/// Whether `host_ip:port` (all addresses when `host_ip` is empty) can be bound on this host right
/// now; the probe socket is closed at once. SCTP cannot be probed and reads as taken.
pub async fn primary_port_free(host_ip: &str, port: u16, protocol: Protocol) -> bool {
    let ip = if host_ip.is_empty() {
        "0.0.0.0"
    } else {
        host_ip
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let addr = std::net::SocketAddr::new(ip, port);
    // Binding does not block; the std sockets are dropped before returning.
    match protocol {
        Protocol::Tcp => std::net::TcpListener::bind(addr).is_ok(),
        Protocol::Udp => std::net::UdpSocket::bind(addr).is_ok(),
        Protocol::Sctp => false,
    }
}

/// The primary host ports of `node`'s degraded containers that are free again, by `probe`.
/// Nothing is asked of the engine when no container is degraded; an engine error reads as
/// "nothing free" (the container stays where it runs).
pub async fn free_primary_ports<R: ContainerRuntime>(
    rt: &R,
    manifest: &Manifest,
    node: &str,
    observed: &Observed,
    probe: PortProbe,
) -> BTreeSet<u16> {
    let degraded = port_fallback::degraded_primaries(&manifest.containers_on(node), observed);
    if degraded.is_empty() {
        return BTreeSet::new();
    }
    // Every container on the engine, not only the selected ones: any of them may hold a port.
    let Ok(all) = rt.observe(None).await else {
        return BTreeSet::new();
    };
    let published = port_fallback::published_host_ports(&all.containers);
    let mut taken = BTreeSet::new();
    let mut free = BTreeSet::new();
    for DegradedPrimary {
        binding,
        held_by_container,
        ..
    } in degraded
    {
        let Some(port) = binding.host_port else {
            continue;
        };
        let is_free = !published.contains_key(&port)
            && match probe {
                PortProbe::Bind => {
                    primary_port_free(&binding.host_ip, port, binding.protocol).await
                }
                PortProbe::ContainerList => held_by_container,
            };
        // One binding of a primary still taken keeps it taken.
        if is_free {
            free.insert(port);
        } else {
            taken.insert(port);
        }
    }
    free.difference(&taken).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_binds_only_for_a_local_socket_outside_a_container() {
        assert_eq!(
            PortProbe::for_endpoint("unix:///var/run/docker.sock", false),
            PortProbe::Bind
        );
        assert_eq!(
            PortProbe::for_endpoint("/var/run/docker.sock", false),
            PortProbe::Bind
        );
        assert_eq!(
            PortProbe::for_endpoint("unix:///var/run/docker.sock", true),
            PortProbe::ContainerList
        );
        assert_eq!(
            PortProbe::for_endpoint("tcp://10.0.0.2:2376", false),
            PortProbe::ContainerList
        );
    }

    #[tokio::test]
    async fn primary_port_free_sees_a_listener() {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        assert!(!primary_port_free("", port, Protocol::Tcp).await);
        assert!(!primary_port_free("127.0.0.1", port, Protocol::Tcp).await);
        drop(listener);
        assert!(primary_port_free("", port, Protocol::Tcp).await);
        assert!(!primary_port_free("not-an-ip", port, Protocol::Tcp).await);
    }
}
