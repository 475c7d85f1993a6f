//! Refinery's Docker adapter: [`DockerRuntime`] implements [`refinery_core::ContainerRuntime`]
//! over one Docker engine through bollard. bollard's types stay in the private `convert` module.

pub mod content_files;
mod convert;
mod docker_runtime;
mod faults;
mod registry_auth;
mod registry_http;
mod ssh;
mod tls;

#[cfg(any(test, feature = "testing"))]
pub mod testsupport;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

pub use docker_runtime::{DEFAULT_ENDPOINT, DockerRuntime};
pub use registry_auth::RegistryAuth;
pub use registry_http::Platform;
pub use ssh::SshTarget;
pub use tls::TlsFiles;
