//! Port fallback: when a declared host port is taken by something else, the container is created
//! on the next of that port's `fallback_ports` and runs *degraded* until the primary is free again.
//!
//! The substitution is recorded on the container (label [`labels::PORT_FALLBACK`], `8085:8086`),
//! so the diff can tell a declared fallback (degraded, not drift) from any other port change.
//! Whether a primary is free again is not something the core can know: the engine probes the
//! ports [`degraded_primaries`] lists and hands the free ones to the diff
//! ([`crate::DiffContext::free_ports`]), which then reports config drift so the container is
//! recreated on its primary.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::labels;
use crate::observed::{ContainerState, Observed, ObservedContainer};
use crate::resource_id::ResourceId;
use crate::spec::{ContainerSpec, PortBinding};

/// One declared host port replaced by one of its fallbacks (`8085:8086`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Substitution {
    pub primary: u16,
    pub fallback: u16,
}

impl fmt::Display for Substitution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.primary, self.fallback)
    }
}

/// The value of [`labels::PORT_FALLBACK`]: `8085:8086,9000:9001`.
#[must_use]
pub fn format_label(subs: &[Substitution]) -> String {
    subs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses [`format_label`]'s output; malformed items are skipped (a label is anyone's to edit).
#[must_use]
pub fn parse_label(value: &str) -> Vec<Substitution> {
    value
        .split(',')
        .filter_map(|item| {
            let (p, f) = item.trim().split_once(':')?;
            Some(Substitution {
                primary: p.trim().parse().ok()?,
                fallback: f.trim().parse().ok()?,
            })
        })
        .collect()
}

/// Parses a comma-separated port list ([`labels::PORT_FALLBACK_HELD`]).
#[must_use]
pub fn parse_ports(value: &str) -> Vec<u16> {
    value
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// `spec` with each substituted primary host port replaced by its fallback.
#[must_use]
pub fn with_fallbacks(spec: &ContainerSpec, subs: &[Substitution]) -> ContainerSpec {
    let mut out = spec.clone();
    for b in &mut out.ports {
        if let Some(s) = subs.iter().find(|s| b.host_port == Some(s.primary)) {
            b.host_port = Some(s.fallback);
        }
    }
    out
}

/// What to try after creating `spec` with `subs` failed because host port `taken` is in use:
/// `taken` replaced by the next fallback in order, or `None` when it has none left (or is not a
/// port Refinery chose).
#[must_use]
pub fn next_substitution(
    spec: &ContainerSpec,
    subs: &[Substitution],
    taken: u16,
) -> Option<Vec<Substitution>> {
    let mut next = subs.to_vec();
    if let Some(at) = next.iter().position(|s| s.fallback == taken) {
        let primary = next[at].primary;
        let list = spec.fallback_ports.get(&primary)?;
        let pos = list.iter().position(|&f| f == taken)?;
        next[at].fallback = *list.get(pos + 1)?;
        return Some(next);
    }
    let declared = spec.ports.iter().any(|b| b.host_port == Some(taken));
    if !declared || next.iter().any(|s| s.primary == taken) {
        return None;
    }
    let first = *spec.fallback_ports.get(&taken)?.first()?;
    next.push(Substitution {
        primary: taken,
        fallback: first,
    });
    Some(next)
}

/// The substitutions a container runs with that the manifest allows: recorded in its label, the
/// primary still declared, the fallback one of that primary's `fallback_ports` and actually
/// published. Anything else is ordinary port drift.
#[must_use]
pub fn degraded_ports(spec: &ContainerSpec, o: &ObservedContainer) -> Vec<Substitution> {
    let Some(value) = o.labels.get(labels::PORT_FALLBACK) else {
        return Vec::new();
    };
    parse_label(value)
        .into_iter()
        .filter(|s| {
            spec.fallback_ports
                .get(&s.primary)
                .is_some_and(|l| l.contains(&s.fallback))
                && spec.ports.iter().any(|b| b.host_port == Some(s.primary))
                && o.ports.iter().any(|b| b.host_port == Some(s.fallback))
        })
        .collect()
}

/// `ports` with each substitution undone: how the container's ports read against the manifest.
#[must_use]
pub fn as_declared(ports: &[PortBinding], subs: &[Substitution]) -> Vec<PortBinding> {
    ports
        .iter()
        .map(|b| {
            let mut b = b.clone();
            if let Some(s) = subs.iter().find(|s| b.host_port == Some(s.fallback)) {
                b.host_port = Some(s.primary);
            }
            b
        })
        .collect()
}

/// A declared container running on a fallback host port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Degraded {
    pub id: ResourceId,
    pub container_id: String,
    pub primary: u16,
    pub fallback: u16,
    /// The engine found the primary free again: the diff reports `ports` as config drift.
    pub primary_free: bool,
}

impl fmt::Display for Degraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {} instead of {}", self.fallback, self.primary)?;
        if self.primary_free {
            f.write_str(", primary free again")?;
        }
        Ok(())
    }
}

/// A primary host port some degraded container waits for: what the engine probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DegradedPrimary {
    /// Container name.
    pub container: String,
    /// The declared binding (host ip, primary host port, protocol).
    pub binding: PortBinding,
    pub fallback: u16,
    /// When the fallback was chosen, a container on the same engine published the primary
    /// (label [`labels::PORT_FALLBACK_HELD`]); otherwise something outside the engine held it.
    pub held_by_container: bool,
}

/// Every primary host port the declared containers of one node are waiting for.
#[must_use]
pub fn degraded_primaries(
    declared: &[&ContainerSpec],
    observed: &Observed,
) -> Vec<DegradedPrimary> {
    let mut out = Vec::new();
    for spec in declared {
        let Some(o) = observed.container(&spec.name) else {
            continue;
        };
        let held = o
            .labels
            .get(labels::PORT_FALLBACK_HELD)
            .map(|v| parse_ports(v))
            .unwrap_or_default();
        for s in degraded_ports(spec, o) {
            for b in spec.ports.iter().filter(|b| b.host_port == Some(s.primary)) {
                out.push(DegradedPrimary {
                    container: spec.name.clone(),
                    binding: b.clone(),
                    fallback: s.fallback,
                    held_by_container: held.contains(&s.primary),
                });
            }
        }
    }
    out
}

/// Host ports the given containers hold, with their names: only containers that are up (running,
/// paused, restarting) hold theirs; a stopped container's configured bindings hold nothing.
#[must_use]
pub fn published_host_ports<'a>(
    containers: impl IntoIterator<Item = &'a ObservedContainer>,
) -> BTreeMap<u16, Vec<String>> {
    let mut out: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    let up = |c: &ObservedContainer| {
        matches!(
            c.state,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    };
    for c in containers.into_iter().filter(|c| up(c)) {
        for p in c.ports.iter().filter_map(|b| b.host_port) {
            out.entry(p).or_default().push(c.name.clone());
        }
    }
    out
}

/// `degraded: host port 8085 taken, using 8086` (one clause per substitution).
#[must_use]
pub fn degraded_message(subs: &[Substitution]) -> Option<String> {
    if subs.is_empty() {
        return None;
    }
    let parts: Vec<String> = subs
        .iter()
        .map(|s| format!("host port {} taken, using {}", s.primary, s.fallback))
        .collect();
    Some(format!("degraded: {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Protocol;

    fn spec() -> ContainerSpec {
        let mut s = crate::testing::spec("web");
        s.ports = vec![PortBinding {
            host_ip: String::new(),
            host_port: Some(8085),
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        s.fallback_ports = BTreeMap::from([(8085, vec![8086, 8087])]);
        s
    }

    const fn sub(primary: u16, fallback: u16) -> Substitution {
        Substitution { primary, fallback }
    }

    #[test]
    fn label_round_trips_and_skips_garbage() {
        let subs = [sub(8085, 8086), sub(9000, 9001)];
        assert_eq!(format_label(&subs), "8085:8086,9000:9001");
        assert_eq!(parse_label(&format_label(&subs)), subs);
        assert_eq!(parse_label("8085:x, 1:2,junk"), [sub(1, 2)]);
    }

    #[test]
    fn next_substitution_walks_the_fallbacks_in_order_then_gives_up() {
        let s = spec();
        let first = next_substitution(&s, &[], 8085).expect("first fallback");
        assert_eq!(first, [sub(8085, 8086)]);
        let second = next_substitution(&s, &first, 8086).expect("second fallback");
        assert_eq!(second, [sub(8085, 8087)]);
        assert_eq!(next_substitution(&s, &second, 8087), None);
        // Taken again after substitution: not a port Refinery can move.
        assert_eq!(next_substitution(&s, &first, 8085), None);
        // A port the spec does not publish, or one without fallbacks.
        assert_eq!(next_substitution(&s, &[], 9999), None);
        let mut plain = spec();
        plain.fallback_ports.clear();
        assert_eq!(next_substitution(&plain, &[], 8085), None);
    }

    #[test]
    fn with_fallbacks_replaces_only_the_substituted_host_port() {
        let s = with_fallbacks(&spec(), &[sub(8085, 8087)]);
        assert_eq!(s.ports[0].host_port, Some(8087));
        assert_eq!(s.ports[0].container_port, 80);
        assert_eq!(with_fallbacks(&spec(), &[]), spec());
    }

    #[test]
    fn degraded_message_names_primary_and_fallback() {
        assert_eq!(degraded_message(&[]), None);
        assert_eq!(
            degraded_message(&[sub(8085, 8086)]).as_deref(),
            Some("degraded: host port 8085 taken, using 8086")
        );
    }
}
