//! The host side of content-tracked mounts: writing the committed files of a mount to the copy a
//! container mounts, and reading that copy back as digests. The engine sees these paths only
//! when it runs on this host.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use refinery_core::content::{ContentFile, ContentMount, file_digest};

/// Makes `path` hold exactly the committed content of `m`: a file is rewritten in place (its inode
/// kept, so a container bind-mounting that one file sees the new bytes), a folder gets every file
/// and loses the ones git does not have. Files already right are not touched.
pub fn write_copy(path: &Path, m: &ContentMount) -> std::io::Result<()> {
    if !m.dir {
        let Some(f) = m.files.get("") else {
            return Ok(());
        };
        if path.is_dir() {
            std::fs::remove_dir_all(path)?;
        }
        return write_file(path, f);
    }
    if path.is_file() {
        std::fs::remove_file(path)?;
    }
    std::fs::create_dir_all(path)?;
    for (rel, f) in &m.files {
        write_file(&path.join(rel), f)?;
    }
    for (rel, full) in files_under(path)? {
        if !m.files.contains_key(&rel) {
            std::fs::remove_file(full)?;
        }
    }
    Ok(())
}

/// Writes one file; a decrypted SOPS file is made 0600 before its clear bytes go in.
fn write_file(path: &Path, file: &ContentFile) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let bytes = file.bytes.as_slice();
    let private = std::fs::Permissions::from_mode(0o600);
    let mode_ok = !file.secret
        || std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o777 == 0o600);
    if mode_ok && std::fs::read(path).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if file.secret && path.exists() {
        std::fs::set_permissions(path, private)?;
    }
    // Truncate and write in place rather than rename: a single-file bind mount follows the inode.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if file.secret { 0o600 } else { 0o666 })
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Every regular file below `dir`, keyed by its `/`-separated path relative to `dir`.
fn files_under(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, d)) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push((rel, entry.path()));
            } else if kind.is_file() {
                out.push((rel, entry.path()));
            }
        }
    }
    Ok(out)
}

/// The digests of what the copy at `path` holds, keyed by repository path like
/// [`ContentMount::file_digests`]; `None` when it cannot be read (absent, or another host's).
#[must_use]
pub fn read_copy(path: &Path, m: &ContentMount) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if m.dir {
        for (rel, full) in files_under(path).ok()? {
            let bytes = std::fs::read(full).ok()?;
            let digest = m
                .files
                .get(&rel)
                .map_or_else(|| file_digest(&bytes), |f| f.digest_of_copy(&bytes));
            out.insert(m.repo_file(&rel), digest);
        }
    } else {
        let bytes = std::fs::read(path).ok()?;
        let digest = m
            .files
            .get("")
            .map_or_else(|| file_digest(&bytes), |f| f.digest_of_copy(&bytes));
        out.insert(m.repo_path.clone(), digest);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_copy_restores_a_folder_and_read_copy_sees_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("conf");
        let mut m = ContentMount::new("/etc/app", "conf");
        m.dir = true;
        m.files
            .insert("a.conf".into(), ContentFile::new(b"a=1\n".to_vec()));
        m.files
            .insert("sub/b.conf".into(), ContentFile::new(b"b=2\n".to_vec()));
        write_copy(&dir, &m).expect("write");
        std::fs::write(dir.join("a.conf"), "edited").expect("edit");
        std::fs::write(dir.join("extra"), "x").expect("extra");
        let seen = read_copy(&dir, &m).expect("read");
        assert_eq!(seen.len(), 3);
        write_copy(&dir, &m).expect("restore");
        let seen = read_copy(&dir, &m).expect("read");
        let want: BTreeMap<String, String> =
            m.file_digests().map(|(p, d)| (p, d.to_owned())).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn write_copy_rewrites_a_file_in_place() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("app.conf");
        let mut m = ContentMount::new("/etc/app.conf", "app.conf");
        m.files
            .insert(String::new(), ContentFile::new(b"one".to_vec()));
        write_copy(&path, &m).expect("write");
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).expect("meta"));
        m.files
            .insert(String::new(), ContentFile::new(b"two".to_vec()));
        write_copy(&path, &m).expect("rewrite");
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&meta), ino);
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
    }

    #[test]
    fn write_copy_of_a_decrypted_file_is_private_and_never_digested_in_clear() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("secret.json");
        let mut m = ContentMount::new("/etc/app/secret.json", "secret.json");
        let f = ContentFile::decrypted(b"{\"enc\": 1}", b"{\"pw\": \"clear\"}".to_vec());
        m.files.insert(String::new(), f.clone());
        write_copy(&path, &m).expect("write");
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), f.bytes);
        let seen = read_copy(&path, &m).expect("read");
        assert_eq!(
            seen["secret.json"], f.digest,
            "the git digest when the copy is right"
        );
        std::fs::write(&path, "edited").expect("edit");
        let seen = read_copy(&path, &m).expect("read");
        assert_ne!(seen["secret.json"], f.digest);
        assert_ne!(seen["secret.json"], file_digest(b"edited"));
        assert_ne!(seen["secret.json"], file_digest(&f.bytes));
    }
}
