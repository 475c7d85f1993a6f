//! The registry credentials this process's engine clients send with their pulls: one shared
//! [`RegistryAuth`] holding the `registries:` of the manifest last loaded (a daemon's revision in
//! force) over the docker CLI configuration of the user running Refinery (`DOCKER_CONFIG`, else
//! `~/.docker/config.json`, read at each pull).

use std::sync::OnceLock;

use refinery_core::Manifest;
use refinery_docker::RegistryAuth;

static AUTH: OnceLock<RegistryAuth> = OnceLock::new();

/// The shared credentials; engine clients made before a manifest switch see the new logins.
pub fn auth() -> RegistryAuth {
    AUTH.get_or_init(|| RegistryAuth::new(RegistryAuth::config_dir_from_env()))
        .clone()
}

/// Makes `manifest`'s `registries:` the ones pulls send.
pub fn use_manifest(manifest: &Manifest) {
    auth().set_logins(manifest.registries.clone());
}
