//! The ledger's masker for a manifest: every secret it knows never reaches a ledger line.

use refinery_core::Manifest;
use refinery_core::ledger::Masker;

/// Masks every secret the manifest knows: sensitive env values, every alert channel's URLs, tokens
/// and passwords, and the `registries:` passwords.
#[must_use]
pub fn masker_for(manifest: &Manifest) -> Masker {
    let mut secrets = Vec::new();
    for c in &manifest.containers {
        secrets.extend(
            c.env
                .values()
                .filter(|v| v.is_sensitive())
                .map(|v| v.expose().to_owned()),
        );
    }
    secrets.extend(
        manifest
            .alerting
            .channels
            .iter()
            .flat_map(|ch| ch.destination.secrets().into_iter().map(str::to_owned)),
    );
    secrets.extend(
        manifest
            .config
            .discord_webhook
            .iter()
            .map(|w| w.expose().to_owned()),
    );
    secrets.extend(
        manifest
            .registries
            .iter()
            .map(|r| r.password.expose().to_owned()),
    );
    Masker::new(secrets)
}
