//! A real registry on loopback for tests: Debian's `docker-registry` (distribution 2.8) with
//! htpasswd authentication ([`TestRegistry::start`]) or token authentication and a token server
//! of its own ([`TestRegistry::start_token`]), in its own temporary directory, on a free port;
//! stopped and removed on drop. The engine treats 127.0.0.0/8 as an insecure registry, so plain HTTP works.
//!
//! Images are pushed with the engine (then untagged locally, so a later pull is a real pull);
//! tags are moved with the registry's HTTP API, so nothing becomes local by accident.
//!
//! The kit a registry test needs: [`TestRegistry::push_new`] (a tiny image of the run's own,
//! pushed under `repo:tag`), [`TestRegistry::docker_config`] (what `docker login` writes) and
//! [`TestRegistry::manifest_registries`] (the manifest's `registries:` with the password from the
//! environment).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt;
use refinery_core::RuntimeError;
use refinery_core::runtime::RuntimeResult;

use super::TestRun;
use super::token_server::{Issuer, TOKEN_ISSUER, TOKEN_SERVICE, TokenCounts, TokenServer};
use crate::DockerRuntime;
use crate::convert::{self, image_what};

/// The manifest media type tags are read and written with.
/// Status, lower-cased headers and body of an HTTP answer.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A multi-platform index (Docker's manifest list).
const MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// What the kit's requests accept: a manifest list or one image's manifest.
const MANIFEST_ANY: &str = "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// An image of a run's own pushed by [`TestRegistry::push_new`].
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The local tag it was built as (`refinery-test-busybox:<run>-<marker>`).
    pub local: String,
    /// Its image id.
    pub id: String,
    /// The registry's manifest digest of it (`sha256:…`).
    pub digest: String,
}

/// base64 of `user:password`, as `docker login` stores it in `config.json`'s `auth`.
#[must_use]
pub fn docker_auth_field(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Writes `dir/config.json` as `docker login HOST` does for `user`/`password` (`auths` only).
///
/// # Errors
/// The file cannot be written.
pub fn write_docker_login(
    dir: &Path,
    host: &str,
    user: &str,
    password: &str,
) -> std::io::Result<()> {
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
            docker_auth_field(user, password)
        ),
    )
}

/// A running registry. `host` is `127.0.0.1:PORT`.
pub struct TestRegistry {
    pub host: String,
    pub user: String,
    pub password: String,
    dir: PathBuf,
    child: Child,
    /// The token server of a registry started with [`TestRegistry::start_token`].
    token: Option<TokenServer>,
}

/// A fresh temporary directory for a registry, with its `data` directory.
fn new_dir() -> RuntimeResult<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "refinery-registry-{}-{}",
        std::process::id(),
        super::unique_suffix()
    ));
    std::fs::create_dir_all(dir.join("data")).map_err(|e| fail("start the test registry", e))?;
    Ok(dir)
}

fn fail(action: &str, message: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Other {
        action: action.to_owned(),
        message: message.to_string(),
    }
}

impl TestRegistry {
    /// Starts a registry that wants `user`/`password` (htpasswd, bcrypt) for everything.
    ///
    /// # Errors
    /// `docker-registry` or `htpasswd` missing (install `docker-registry` and `apache2-utils`:
    /// `scripts/ensure-docker.sh` does), or the registry not answering within 10 s.
    pub fn start(user: &str, password: &str) -> RuntimeResult<TestRegistry> {
        let action = "start the test registry";
        let dir = new_dir()?;
        let htpasswd = dir.join("htpasswd");
        let status = Command::new("htpasswd")
            .args(["-Bbc"])
            .arg(&htpasswd)
            .args([user, password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| {
                fail(
                    action,
                    format!("failed to run `htpasswd` ({e}): install Debian's `apache2-utils`"),
                )
            })?;
        if !status.success() {
            return Err(fail(action, format!("`htpasswd` failed: {status}")));
        }
        let auth = format!(
            "auth:\n  htpasswd: {{realm: refinery-test, path: {htpasswd}}}\n",
            htpasswd = htpasswd.display(),
        );
        Self::launch(dir, user, password, &auth, None)
    }

    /// Starts a registry with token authentication (`auth: token`), as GHCR, Docker Hub, GitLab
    /// and Harbor use: it answers a `Bearer` challenge naming a token server on 127.0.0.1 (see
    /// `token_server.rs`) that gives `user` a token for `password` (or for
    /// [`TestRegistry::identity_token`], the OAuth refresh token `config.json`'s `identitytoken`
    /// holds), signed with a key whose self-signed certificate is the registry's
    /// `rootcertbundle`. The engine does the token dance itself with the credentials sent; the
    /// kit's HTTP helpers ([`TestRegistry::move_tag`], [`TestRegistry::digest`],
    /// [`TestRegistry::get`]) send a token of the user's.
    ///
    /// # Errors
    /// `docker-registry` or `openssl` missing, or the registry not answering within 10 s.
    pub fn start_token(user: &str, password: &str) -> RuntimeResult<TestRegistry> {
        let dir = new_dir()?;
        let refresh = format!("refresh-{}", super::unique_suffix());
        let issuer = Issuer::new(&dir, user, password, refresh)?;
        let server = TokenServer::start(issuer)?;
        let auth = format!(
            "auth:\n  token:\n    realm: \"{realm}\"\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {cert}\n",
            realm = server.realm,
            cert = dir.join("cert.pem").display(),
        );
        Self::launch(dir, user, password, &auth, Some(server))
    }

    fn launch(
        dir: PathBuf,
        user: &str,
        password: &str,
        auth: &str,
        token: Option<TokenServer>,
    ) -> RuntimeResult<TestRegistry> {
        let action = "start the test registry";
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| fail(action, e))?
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {data}}}\n  delete: {{enabled: true}}\nhttp: {{addr: \"{host}\"}}\n{auth}",
            data = dir.join("data").display(),
        );
        std::fs::write(dir.join("config.yml"), config).map_err(|e| fail(action, e))?;
        let log = std::fs::File::create(dir.join("registry.log")).map_err(|e| fail(action, e))?;
        let spawned = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(fail(
                    action,
                    format!(
                        "failed to run `docker-registry` ({e}): install Debian's `docker-registry`"
                    ),
                ));
            }
        };
        let registry = TestRegistry {
            host,
            user: user.to_owned(),
            password: password.to_owned(),
            dir,
            child,
            token,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while registry
            .request("GET", "/v2/", &[], None)
            .map_or(true, |(status, _, _)| status != 200)
        {
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(registry.dir.join("registry.log")).unwrap_or_default();
                return Err(fail(
                    action,
                    format!("it did not answer within 10 s: {log}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// The refresh token the token server of [`TestRegistry::start_token`] takes for the user
    /// (what `docker login` stores as `identitytoken`); `None` for an htpasswd registry.
    #[must_use]
    pub fn identity_token(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.issuer.refresh_token())
    }

    /// What the token server of [`TestRegistry::start_token`] has given and refused so far;
    /// `None` for an htpasswd registry.
    #[must_use]
    pub fn token_counts(&self) -> Option<&TokenCounts> {
        self.token.as_ref().map(|t| &t.issuer.counts)
    }

    /// `127.0.0.1:PORT/<repo>:<tag>`
    #[must_use]
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.host)
    }

    /// `Basic base64(user:password)`
    #[must_use]
    pub fn basic_auth(&self) -> String {
        format!("Basic {}", self.auth_field())
    }

    /// base64 of `user:password`, as `docker login` stores it in `config.json`'s `auth`.
    #[must_use]
    pub fn auth_field(&self) -> String {
        docker_auth_field(&self.user, &self.password)
    }

    /// A `DOCKER_CONFIG` directory holding what `docker login <host>` writes, named after `run`
    /// and removed with it.
    ///
    /// # Errors
    /// The directory or file cannot be written.
    pub fn docker_config(&self, run: &TestRun) -> RuntimeResult<PathBuf> {
        let action = format!("write a docker config for `{}`", self.host);
        let port = self.host.rsplit_once(':').map_or("0", |(_, p)| p);
        let dir = run
            .temp_dir(&format!("docker-config-{port}"))
            .map_err(|e| fail(&action, e))?;
        write_docker_login(&dir, &self.host, &self.user, &self.password)
            .map_err(|e| fail(&action, e))?;
        Ok(dir)
    }

    /// The manifest's `registries:` section for this registry, its password read from the
    /// environment variable `var` (`password: "${VAR}"`), ending in a newline.
    #[must_use]
    pub fn manifest_registries(&self, var: &str) -> String {
        format!(
            "registries:\n  - {{host: \"{}\", username: {}, password: \"${{{var}}}\"}}\n",
            self.host, self.user
        )
    }

    /// Builds `run`'s own tiny image for `marker` ([`TestRun::own_image`]: a distinct image id
    /// per marker) and pushes it under `<repo>:<tag>` for every tag of `tags`, as
    /// [`TestRegistry::push_as`] does.
    ///
    /// # Errors
    /// No tags, the build failing, or the engine or the registry refusing.
    pub async fn push_new(
        &self,
        rt: &DockerRuntime,
        run: &TestRun,
        marker: &str,
        repo: &str,
        tags: &[&str],
    ) -> RuntimeResult<Pushed> {
        let (local, id) = run.own_image(rt, marker).await?;
        let digest = self.push_as(rt, run, &local, repo, tags).await?;
        Ok(Pushed { local, id, digest })
    }

    /// Pushes local image `source` under `<repo>:<tag>` for every tag of `tags` ([`push`]:
    /// nothing of it left local under the registry's name), and records `<host>/<repo>:<tag>` and
    /// `<host>/<repo>@<digest>` with `run`, so what a later pull makes local is removed with the
    /// run. Returns the manifest digest.
    ///
    /// # Errors
    /// No tags, or the engine or the registry refusing.
    ///
    /// [`push`]: TestRegistry::push
    pub async fn push_as(
        &self,
        rt: &DockerRuntime,
        run: &TestRun,
        source: &str,
        repo: &str,
        tags: &[&str],
    ) -> RuntimeResult<String> {
        let mut digest = None;
        for tag in tags {
            run.track_image(&self.reference(repo, tag));
            let pushed = self.push(rt, source, repo, tag).await?;
            run.track_image(&format!("{}/{repo}@{pushed}", self.host));
            digest = Some(pushed);
        }
        digest.ok_or_else(|| fail(&format!("push `{source}`"), "no tag to push it under"))
    }

    /// Pushes local image `source` as `<host>/<repo>:<tag>` with the engine, then removes the
    /// local `<host>/…` tag, so pulling it later is a real pull. Returns the manifest digest.
    ///
    /// # Errors
    /// The engine or the registry refusing.
    pub async fn push(
        &self,
        rt: &DockerRuntime,
        source: &str,
        repo: &str,
        tag: &str,
    ) -> RuntimeResult<String> {
        let target = self.reference(repo, tag);
        super::tag_image(rt, source, &target).await?;
        let credentials = bollard::auth::DockerCredentials {
            username: Some(self.user.clone()),
            password: Some(self.password.clone()),
            serveraddress: Some(self.host.clone()),
            ..Default::default()
        };
        let options = bollard::query_parameters::PushImageOptions {
            tag: Some(tag.to_owned()),
            ..Default::default()
        };
        let docker = rt.docker().await?;
        let name = format!("{}/{repo}", self.host);
        let op = rt.op("push", image_what(&target));
        let mut out = docker.push_image(&name, Some(options), Some(credentials));
        while let Some(item) = out.next().await {
            let info = item.map_err(|e| convert::pull_failure(e, &op))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(fail(&format!("push `{target}`"), message));
            }
        }
        super::remove_image(rt, &target).await?;
        self.digest(repo, tag)
    }

    /// The manifest digest `<repo>:<tag>` points at in the registry.
    ///
    /// # Errors
    /// The tag is unknown, or the registry does not answer.
    pub fn digest(&self, repo: &str, tag: &str) -> RuntimeResult<String> {
        let (status, headers, _) = self.request(
            "HEAD",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Accept", MANIFEST_ANY)],
            None,
        )?;
        if status != 200 {
            return Err(fail(
                &format!("read the digest of `{repo}:{tag}`"),
                format!("HTTP {status}"),
            ));
        }
        header(&headers, "docker-content-digest")
            .ok_or_else(|| fail("read the digest", "no Docker-Content-Digest header"))
    }

    /// Points `<repo>:<to>` at the manifest `<repo>:<from>` points at, through the HTTP API.
    ///
    /// # Errors
    /// The registry refusing.
    pub fn move_tag(&self, repo: &str, from: &str, to: &str) -> RuntimeResult<()> {
        let action = format!("move `{repo}:{to}` to `{from}`");
        let (media_type, body) = self
            .get_manifest(repo, from, MANIFEST_ANY)
            .map_err(|e| fail(&action, e))?;
        self.put_manifest(repo, to, &media_type, &body)
            .map(|_| ())
            .map_err(|e| fail(&action, e))
    }

    /// Puts a multi-platform index (a Docker manifest list) under `<repo>:<tag>`, with one entry
    /// per `(platform, manifest digest)` of `entries` (`("linux/amd64", "sha256:…")`; each
    /// manifest already in `repo`, pushed by [`TestRegistry::push_new`]). Returns the index's
    /// digest, the one a pull of the tag records.
    ///
    /// # Errors
    /// A platform that is not `os/architecture[/variant]`, a manifest unknown to the registry,
    /// or the registry refusing the index.
    pub fn push_index(
        &self,
        repo: &str,
        tag: &str,
        entries: &[(&str, &str)],
    ) -> RuntimeResult<String> {
        let action = format!("push an index as `{repo}:{tag}`");
        let mut manifests = Vec::new();
        for (platform, digest) in entries {
            let mut parts = platform.split('/');
            let (Some(os), Some(architecture)) = (parts.next(), parts.next()) else {
                return Err(fail(
                    &action,
                    format!("`{platform}` is not os/architecture"),
                ));
            };
            let mut platform = serde_json::json!({"os": os, "architecture": architecture});
            if let Some(variant) = parts.next() {
                platform["variant"] = variant.into();
            }
            let (_, body) = self
                .get_manifest(repo, digest, MANIFEST_V2)
                .map_err(|e| fail(&action, e))?;
            manifests.push(serde_json::json!({
                "mediaType": MANIFEST_V2,
                "size": body.len(),
                "digest": digest,
                "platform": platform,
            }));
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_LIST,
            "manifests": manifests,
        });
        let body = serde_json::to_vec(&index).map_err(|e| fail(&action, e))?;
        self.put_manifest(repo, tag, MANIFEST_LIST, &body)
            .map_err(|e| fail(&action, e))
    }

    /// `GET /v2/<repo>/manifests/<reference>` accepting `accept`: its media type and body.
    fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &str,
    ) -> Result<(String, Vec<u8>), String> {
        let (status, headers, body) = self
            .request(
                "GET",
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Accept", accept)],
                None,
            )
            .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("GET `{reference}` answered HTTP {status}"));
        }
        let media_type = header(&headers, "content-type").unwrap_or_else(|| MANIFEST_V2.to_owned());
        Ok((media_type, body))
    }

    /// `PUT /v2/<repo>/manifests/<tag>`; the digest the registry answers with.
    fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<String, String> {
        let (status, headers, answer) = self
            .request(
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("Content-Type", media_type)],
                Some(body),
            )
            .map_err(|e| e.to_string())?;
        if status != 201 {
            return Err(format!(
                "PUT answered HTTP {status}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        header(&headers, "docker-content-digest")
            .ok_or_else(|| "no Docker-Content-Digest header".to_owned())
    }

    /// The platform of the engine `rt` talks to, as an index names it (`linux/amd64`).
    ///
    /// # Errors
    /// The engine not answering.
    pub async fn engine_platform(rt: &DockerRuntime) -> RuntimeResult<String> {
        let p = rt
            .platform()
            .await?
            .ok_or_else(|| fail("ask the engine's platform", "the engine does not say it"))?;
        Ok(format!("{}/{}", p.os, p.architecture))
    }

    /// An authenticated `GET` of `path`: status, lower-cased headers and body (for tests that
    /// look at the registry's own answer, such as whether it pages a tag list).
    ///
    /// # Errors
    /// The registry not answering.
    pub fn get(&self, path: &str) -> RuntimeResult<Answer> {
        self.request("GET", path, &[], None)
    }

    /// One authenticated HTTP/1.1 request; returns status, lower-cased headers and body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> RuntimeResult<Answer> {
        let action = format!("{method} {path} on the test registry");
        let mut stream = TcpStream::connect(&self.host).map_err(|e| fail(&action, e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| fail(&action, e))?;
        let authorization = match &self.token {
            None => self.basic_auth(),
            Some(server) => format!(
                "Bearer {}",
                server
                    .issuer
                    .mint(&self.user, &Issuer::grant(&scope_of(path)))?
            ),
        };
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\nConnection: close\r\n",
            self.host,
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or_default();
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream
            .write_all(req.as_bytes())
            .map_err(|e| fail(&action, e))?;
        stream.write_all(body).map_err(|e| fail(&action, e))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(|e| fail(&action, e))?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| fail(&action, "no complete answer"))?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fail(&action, "no status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if header(&headers, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            body = dechunk(&body);
        }
        Ok((status, headers, body))
    }
}

/// The token scope a request of the kit needs: `repository:NAME:pull,push` for a path under
/// `/v2/NAME/` (`manifests`, `blobs`, `tags`), none for `/v2/`.
fn scope_of(path: &str) -> Vec<String> {
    let path = path.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Vec::new();
    };
    ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .find_map(|m| rest.rfind(m).map(|i| &rest[..i]))
        .map(|name| vec![format!("repository:{name}:pull,push")])
        .unwrap_or_default()
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = data.get(end + 2..).unwrap_or_default();
    }
    out
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
