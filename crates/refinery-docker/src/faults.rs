//! Faults Refinery never causes itself, for `refinery chaos` and the tests: kill with a signal,
//! pause; and the bare list call benchmarks compare a pass against. Not on the [`refinery_core::ContainerRuntime`] port on purpose: reconciliation never
//! needs them.

use refinery_core::runtime::RuntimeResult;

use crate::DockerRuntime;
use crate::convert::{self, container_what};

impl DockerRuntime {
    /// Sends `signal` (`SIGKILL`, `SIGTERM`, …) to a container's main process through the engine.
    pub async fn kill(&self, id: &str, signal: &str) -> RuntimeResult<()> {
        self.docker()
            .await?
            .kill_container(id, Some(convert::kill_options(signal)))
            .await
            .map_err(|e| convert::error(e, &self.op("kill", container_what(id))))
    }

    /// The ids of the containers matching `selector`: one `GET /containers/json`, the baseline a
    /// no-op pass is measured against.
    pub async fn list_ids(
        &self,
        selector: Option<&refinery_core::LabelSelector>,
    ) -> RuntimeResult<Vec<String>> {
        let list = self
            .docker()
            .await?
            .list_containers(Some(convert::list_containers_options(selector)))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "containers")))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Pauses a container.
    pub async fn pause(&self, id: &str) -> RuntimeResult<()> {
        self.docker()
            .await?
            .pause_container(id)
            .await
            .map_err(|e| convert::error(e, &self.op("pause", container_what(id))))
    }
}
