//! Gathers the age keys SOPS files are decrypted with, the way `sops` looks for them: the
//! `SOPS_AGE_KEY` variable (the keys themselves), the `SOPS_AGE_KEY_FILE` variable, the
//! manifest's `secrets.sops_age_key_file` (relative to the repository), and sops' default
//! `$XDG_CONFIG_HOME/sops/age/keys.txt` (`~/.config/sops/age/keys.txt`). Every place looked at is
//! noted, so a missing or wrong key names where keys were looked for. Key text never leaves here
//! except as identities.

use std::path::{Path, PathBuf};

use refinery_core::sops::AgeKeys;

/// Keys from the environment (`env`), the manifest's key file setting and sops' default file.
pub fn gather(
    repo: &Path,
    manifest_key_file: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> AgeKeys {
    let mut keys = AgeKeys::new();
    match env("SOPS_AGE_KEY").filter(|v| !v.trim().is_empty()) {
        Some(text) => {
            keys.add_text(&text, "`SOPS_AGE_KEY`");
        }
        None => keys.note("`SOPS_AGE_KEY` (not set)"),
    }
    match env("SOPS_AGE_KEY_FILE").filter(|v| !v.trim().is_empty()) {
        Some(p) => read_file(&mut keys, &PathBuf::from(p), "`SOPS_AGE_KEY_FILE`"),
        None => keys.note("`SOPS_AGE_KEY_FILE` (not set)"),
    }
    if let Some(p) = manifest_key_file.filter(|p| !p.trim().is_empty()) {
        let path = Path::new(p);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            repo.join(path)
        };
        read_file(&mut keys, &path, "`secrets.sops_age_key_file`");
    }
    let default = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("sops").join("age").join("keys.txt"));
    if let Some(p) = default {
        if p.exists() {
            read_file(&mut keys, &p, "sops' default key file");
        } else {
            keys.note(format!("`{}` (not found)", p.display()));
        }
    }
    keys
}

fn read_file(keys: &mut AgeKeys, path: &Path, what: &str) {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            keys.add_text(&text, &format!("{what} `{}`", path.display()));
        }
        Err(e) => keys.note(format!("{what} `{}` ({e})", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_nothing_set_notes_every_place() {
        let keys = gather(Path::new("/repo"), Some("keys/age.txt"), &|n| {
            (n == "HOME").then(|| "/nonexistent-home".to_owned())
        });
        assert!(keys.is_empty());
        let looked = keys.looked().join("\n");
        assert!(looked.contains("`SOPS_AGE_KEY` (not set)"), "{looked}");
        assert!(looked.contains("`SOPS_AGE_KEY_FILE` (not set)"), "{looked}");
        assert!(
            looked.contains("`secrets.sops_age_key_file` `/repo/keys/age.txt` ("),
            "{looked}"
        );
        assert!(
            looked.contains("`/nonexistent-home/.config/sops/age/keys.txt` (not found)"),
            "{looked}"
        );
    }

    #[test]
    fn gather_env_key_and_file_both_count() {
        let (s1, _) = refinery_core::sops::encrypt::generate_identity();
        let (s2, _) = refinery_core::sops::encrypt::generate_identity();
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("keys.txt");
        std::fs::write(&file, format!("# public key: x\n{s2}\n")).expect("write");
        let file_s = file.display().to_string();
        let keys = gather(dir.path(), None, &|n| match n {
            "SOPS_AGE_KEY" => Some(s1.clone()),
            "SOPS_AGE_KEY_FILE" => Some(file_s.clone()),
            _ => None,
        });
        assert_eq!(keys.len(), 2);
        assert!(!format!("{keys:?}").contains("AGE-SECRET-KEY"));
    }
}
