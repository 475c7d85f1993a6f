//! The one printed form of a resource: `docker/<node>/<kind>/<name>`,
//! `docker/<node>/stack/<project>/<service>/<number>`, `k8s/<context>/<namespace>/<kind>/<name>`.
//!
//! Each form has a fixed number of segments; only the last, the name, may hold `/` (an image
//! reference such as `docker/lyra/image/mcp/tool:1`), and a Kubernetes namespace may be empty.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What kind of engine object a `docker/…` id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DockerKind {
    Container,
    Image,
    Volume,
    Network,
}

impl DockerKind {
    pub const ALL: [DockerKind; 4] = [
        DockerKind::Container,
        DockerKind::Image,
        DockerKind::Volume,
        DockerKind::Network,
    ];

    /// `containers`, as in the audit log's field names.
    #[must_use]
    pub fn plural(self) -> &'static str {
        match self {
            DockerKind::Container => "containers",
            DockerKind::Image => "images",
            DockerKind::Volume => "volumes",
            DockerKind::Network => "networks",
        }
    }

    /// The id's segment: `container`, `image`, `volume`, `network`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DockerKind::Container => "container",
            DockerKind::Image => "image",
            DockerKind::Volume => "volume",
            DockerKind::Network => "network",
        }
    }

    /// The kind a segment names, if any.
    #[must_use]
    pub fn parse(segment: &str) -> Option<Self> {
        Some(match segment {
            "container" => DockerKind::Container,
            "image" => DockerKind::Image,
            "volume" => DockerKind::Volume,
            "network" => DockerKind::Network,
            _ => return None,
        })
    }
}

impl fmt::Display for DockerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies a resource in logs, the ledger, alerts and output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceId {
    /// `docker/<node>/<kind>/<name>`.
    Docker {
        node: String,
        kind: DockerKind,
        name: String,
    },
    /// `docker/<node>/stack/<project>/<service>/<number>`: one replica of a compose service. Its
    /// container is `<project>_<service>_<number>`, as docker-compose names it.
    Service {
        node: String,
        project: String,
        service: String,
        number: u32,
        /// The container's engine name (derived, not printed).
        container: String,
    },
    /// `k8s/<context>/<namespace>/<kind>/<name>`; an empty namespace stays an empty segment.
    Kube {
        context: String,
        namespace: String,
        kind: String,
        name: String,
    },
}

impl ResourceId {
    /// `docker/<node>/<kind>/<name>`.
    #[must_use]
    pub fn docker(node: &str, kind: DockerKind, name: &str) -> Self {
        ResourceId::Docker {
            node: node.to_owned(),
            kind,
            name: name.to_owned(),
        }
    }

    /// `docker/<node>/container/<name>`.
    #[must_use]
    pub fn container(node: &str, name: &str) -> Self {
        ResourceId::docker(node, DockerKind::Container, name)
    }

    /// One replica of a compose service, named as docker-compose names it.
    #[must_use]
    pub fn service(node: &str, project: &str, service: &str, number: u32) -> Self {
        ResourceId::Service {
            node: node.to_owned(),
            project: project.to_owned(),
            service: service.to_owned(),
            number,
            container: crate::spec::container_name(project, service, number),
        }
    }

    /// The id of a declared container: a stack replica's when it is one (and has the name
    /// docker-compose would give it), else `docker/<node>/container/<name>`.
    #[must_use]
    pub fn for_spec(node: &str, spec: &crate::spec::ContainerSpec) -> Self {
        match &spec.stack {
            Some(m)
                if spec.name == crate::spec::container_name(&m.project, &m.service, m.number) =>
            {
                ResourceId::service(node, &m.project, &m.service, m.number)
            }
            _ => ResourceId::container(node, &spec.name),
        }
    }

    #[must_use]
    pub fn node(&self) -> &str {
        match self {
            ResourceId::Docker { node, .. } | ResourceId::Service { node, .. } => node,
            ResourceId::Kube { context, .. } => context,
        }
    }

    /// The kind of engine object, for a `docker/…` id (a stack replica is a container).
    #[must_use]
    pub fn docker_kind(&self) -> Option<DockerKind> {
        match self {
            ResourceId::Docker { kind, .. } => Some(*kind),
            ResourceId::Service { .. } => Some(DockerKind::Container),
            ResourceId::Kube { .. } => None,
        }
    }

    /// The container's (or object's) name on its engine.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            ResourceId::Docker { name, .. } | ResourceId::Kube { name, .. } => name,
            ResourceId::Service { container, .. } => container,
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceId::Docker { node, kind, name } => write!(f, "docker/{node}/{kind}/{name}"),
            ResourceId::Service {
                node,
                project,
                service,
                number,
                ..
            } => write!(f, "docker/{node}/stack/{project}/{service}/{number}"),
            ResourceId::Kube {
                context,
                namespace,
                kind,
                name,
            } => write!(f, "k8s/{context}/{namespace}/{kind}/{name}"),
        }
    }
}

/// Why a string is not a resource id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "failed to parse resource id `{input}`: expected `docker/NODE/KIND/NAME` (KIND one of `container`, `image`, `volume`, `network`), `docker/NODE/stack/PROJECT/SERVICE/N` or `k8s/CONTEXT/NAMESPACE/KIND/NAME`"
)]
pub struct ParseResourceIdError {
    pub input: String,
}

impl FromStr for ResourceId {
    type Err = ParseResourceIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseResourceIdError {
            input: s.to_owned(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["docker", node, "stack", project, service, number]
                if !node.is_empty() && !project.is_empty() && !service.is_empty() =>
            {
                let number = number.parse::<u32>().map_err(|_| err())?;
                Ok(ResourceId::service(node, project, service, number))
            }
            ["docker", node, kind, name @ ..] if !node.is_empty() && !name.is_empty() => {
                let kind = DockerKind::parse(kind).ok_or_else(err)?;
                let name = name.join("/");
                if name.is_empty() {
                    return Err(err());
                }
                Ok(ResourceId::docker(node, kind, &name))
            }
            ["k8s", context, namespace, kind, name]
                if !context.is_empty() && !kind.is_empty() && !name.is_empty() =>
            {
                Ok(ResourceId::Kube {
                    context: (*context).to_owned(),
                    namespace: (*namespace).to_owned(),
                    kind: (*kind).to_owned(),
                    name: (*name).to_owned(),
                })
            }
            _ => Err(err()),
        }
    }
}

impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ResourceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn resource_id_docker_round_trips() {
        let id = ResourceId::container("lyra", "web");
        assert_eq!(id.to_string(), "docker/lyra/container/web");
        assert_eq!("docker/lyra/container/web".parse::<ResourceId>(), Ok(id));
    }

    #[test]
    fn resource_id_kube_with_empty_namespace_keeps_segment() {
        let id: ResourceId = "k8s/lyra//Namespace/dredge".parse().expect("valid id");
        assert_eq!(id.to_string(), "k8s/lyra//Namespace/dredge");
    }

    #[test]
    fn resource_id_stack_service_round_trips() {
        let id = ResourceId::service("lyra", "consensusnet", "agent", 2);
        assert_eq!(id.to_string(), "docker/lyra/stack/consensusnet/agent/2");
        assert_eq!(id.name(), "consensusnet_agent_2");
        assert_eq!(
            "docker/lyra/stack/consensusnet/agent/2".parse::<ResourceId>(),
            Ok(id)
        );
        assert!("docker/lyra/stack/p/s/x".parse::<ResourceId>().is_err());
    }

    #[test]
    fn resource_id_garbage_is_an_error() {
        assert!("docker/lyra".parse::<ResourceId>().is_err());
        assert!("nope/a/b/c".parse::<ResourceId>().is_err());
        assert!("docker/lyra/gadget/web".parse::<ResourceId>().is_err());
    }

    #[test]
    fn resource_id_image_name_keeps_its_slashes() {
        let id: ResourceId = "docker/lyra/image/mcp/tool:1".parse().expect("valid id");
        assert_eq!(
            id,
            ResourceId::docker("lyra", DockerKind::Image, "mcp/tool:1")
        );
        assert_eq!(id.to_string(), "docker/lyra/image/mcp/tool:1");
    }

    proptest! {
        #[test]
        fn resource_id_display_parse_round_trip(node in "[a-z0-9-]{1,12}", kind in prop::sample::select(vec![DockerKind::Container, DockerKind::Image, DockerKind::Volume, DockerKind::Network]), name in "[a-z0-9_.-]{1,20}(/[a-z0-9_.-]{1,5})?") {
            let id = ResourceId::Docker { node, kind, name };
            prop_assert_eq!(id.to_string().parse::<ResourceId>(), Ok(id));
        }

        #[test]
        fn resource_id_service_display_parse_round_trip(node in "[a-z0-9-]{1,12}", project in "[a-z0-9_-]{1,12}", service in "[a-z0-9_.-]{1,12}", number in 1u32..100) {
            let id = ResourceId::service(&node, &project, &service, number);
            prop_assert_eq!(id.to_string().parse::<ResourceId>(), Ok(id));
        }
    }
}
