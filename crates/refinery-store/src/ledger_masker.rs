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

#[cfg(test)]
mod tests {
    use refinery_core::{LoadOptions, load_manifest};

    use super::masker_for;

    #[test]
    fn masker_for_masks_registry_passwords() {
        let env = |name: &str| (name == "REG_TOKEN").then(|| "pw-reg-0c41d9".to_owned());
        let manifest = load_manifest(
            "refinery.yaml",
            "registries:\n  - {host: r.example, username: bot, password: \"${REG_TOKEN}\"}\nallow_empty: true\n",
            &LoadOptions {
                env: &env,
                base_dir: None,
            },
        )
        .expect("valid")
        .manifest;
        let masked = masker_for(&manifest).mask("pull refused for bot:pw-reg-0c41d9 at r.example");
        assert_eq!(masked, "pull refused for bot:*** at r.example");
    }
}
