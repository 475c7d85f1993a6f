//! Faults Refinery never causes itself, for `refinery chaos` and the tests: kill with a signal,
//! pause. Not on the [`refinery_core::ContainerRuntime`] port on purpose: reconciliation never
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

    /// Pauses a container.
    pub async fn pause(&self, id: &str) -> RuntimeResult<()> {
        self.docker()
            .await?
            .pause_container(id)
            .await
            .map_err(|e| convert::error(e, &self.op("pause", container_what(id))))
    }
}
