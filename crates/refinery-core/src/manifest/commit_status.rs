//! `commit_status:`: the forge the daemon writes each revision's deploy result back to, as a commit
//! status (pending, success, failure) on the commit.

use std::fmt;

use serde::Serialize;

use super::reader::Reader;
use crate::suggestion::suggest;
use crate::yaml::Node;

/// The environment variable the forge token is read from when `token_env` is not set.
pub const DEFAULT_TOKEN_ENV: &str = "REFINERY_FORGE_TOKEN";

/// A git forge: where webhooks come from and commit statuses go to. Forgejo is `Gitea`: it speaks
/// Gitea's API and webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    Github,
    Gitlab,
    Gitea,
}

impl Forge {
    /// Every forge, in the order they are listed to users.
    pub const ALL: [Forge; 3] = [Forge::Github, Forge::Gitlab, Forge::Gitea];

    /// The name in manifests, flags and URL paths (`github`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::Github => "github",
            Forge::Gitlab => "gitlab",
            Forge::Gitea => "gitea",
        }
    }

    /// The forge named `name` (`github`, `gitlab`, `gitea`; `forgejo` is Gitea).
    #[must_use]
    pub fn parse(name: &str) -> Option<Forge> {
        match name {
            "github" => Some(Forge::Github),
            "gitlab" => Some(Forge::Gitlab),
            "gitea" | "forgejo" => Some(Forge::Gitea),
            _ => None,
        }
    }

    /// The API base URL of the hosted service, when there is one (Gitea has none).
    #[must_use]
    pub fn default_api_url(self) -> Option<&'static str> {
        match self {
            Forge::Github => Some("https://api.github.com"),
            Forge::Gitlab => Some("https://gitlab.com/api/v4"),
            Forge::Gitea => None,
        }
    }
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `commit_status:`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitStatusConfig {
    pub provider: Forge,
    /// The API's base URL without a trailing `/` (`https://api.github.com`,
    /// `https://gitlab.example.com/api/v4`, `https://gitea.example.com/api/v1`).
    pub api_url: String,
    /// `owner/name` on GitHub and Gitea; on GitLab the project's path (`group/sub/project`) or
    /// its numeric id.
    pub repository: String,
    /// The environment variable of the daemon that holds the token (never the token itself).
    pub token_env: String,
}

pub(super) fn read_commit_status(r: &mut Reader<'_>, node: &Node) -> Option<CommitStatusConfig> {
    let mut m = r.map(node, "commit_status")?;
    let provider = match m.get("provider") {
        Some(n) => r
            .string(n, "commit_status.provider")
            .and_then(|s| match Forge::parse(&s) {
                Some(forge) => Some(forge),
                None => {
                    let hint = match suggest(&s, Forge::ALL.iter().map(|f| f.as_str())) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => "use `github`, `gitlab` or `gitea` (also for Forgejo)".to_owned(),
                    };
                    r.error_hint(
                        n.loc,
                        "commit_status.provider",
                        format!("`{s}` is not a forge"),
                        hint,
                    );
                    None
                }
            }),
        None => {
            r.error_hint(
                node.loc,
                "commit_status.provider",
                "`commit_status` needs a `provider`",
                "add `provider: github`, `gitlab` or `gitea`",
            );
            None
        }
    };
    let api_url = match m.get("api_url") {
        Some(n) => r.string(n, "commit_status.api_url").and_then(|s| {
            let trimmed = s.trim_end_matches('/');
            let scheme_ok = trimmed.starts_with("https://") || trimmed.starts_with("http://");
            let host_ok = trimmed
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
            if scheme_ok && host_ok && !trimmed.contains(char::is_whitespace) {
                Some(trimmed.to_owned())
            } else {
                r.error_hint(
                    n.loc,
                    "commit_status.api_url",
                    format!("`{s}` is not an http(s) URL"),
                    "write the API's base URL, like `https://api.github.com` or `https://gitea.example.com/api/v1`",
                );
                None
            }
        }),
        None => match provider.and_then(Forge::default_api_url) {
            Some(url) => Some(url.to_owned()),
            None => {
                if provider.is_some() {
                    r.error_hint(
                        node.loc,
                        "commit_status.api_url",
                        "`commit_status` for Gitea needs an `api_url`",
                        "add your server's API URL, like `api_url: https://gitea.example.com/api/v1`",
                    );
                }
                None
            }
        },
    };
    let repository = match m.get("repository") {
        Some(n) => r.string(n, "commit_status.repository").and_then(|s| {
            match (provider, repository_problem(provider, &s)) {
                (_, None) => Some(s),
                (Some(forge), Some(hint)) => {
                    r.error_hint(
                        n.loc,
                        "commit_status.repository",
                        format!("`{s}` is not a {forge} repository"),
                        hint,
                    );
                    None
                }
                (None, Some(_)) => None,
            }
        }),
        None => {
            r.error_hint(
                node.loc,
                "commit_status.repository",
                "`commit_status` needs a `repository`",
                "add `repository: owner/name` (GitLab: the project's path or id)",
            );
            None
        }
    };
    let token_env = match m.get("token_env") {
        Some(n) => r.string(n, "commit_status.token_env").and_then(|s| {
            if is_env_name(&s) {
                Some(s)
            } else {
                r.error_hint(
                    n.loc,
                    "commit_status.token_env",
                    format!("`{s}` is not an environment variable name"),
                    "name the variable that holds the token, like `REFINERY_FORGE_TOKEN`; never put the token itself here",
                );
                None
            }
        }),
        None => Some(DEFAULT_TOKEN_ENV.to_owned()),
    };
    m.finish(r);
    Some(CommitStatusConfig {
        provider: provider?,
        api_url: api_url?,
        repository: repository?,
        token_env: token_env?,
    })
}

/// What is wrong with `repository` for `forge`, as a hint; `None` when it is fine.
fn repository_problem(forge: Option<Forge>, repository: &str) -> Option<&'static str> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match forge? {
        Forge::Github | Forge::Gitea => match repository.split_once('/') {
            Some((owner, name)) if segment_ok(owner) && segment_ok(name) => None,
            _ => Some("write `owner/name`, as in the repository's URL"),
        },
        Forge::Gitlab => {
            let is_id = !repository.is_empty() && repository.bytes().all(|b| b.is_ascii_digit());
            let is_path =
                repository.split('/').count() >= 2 && repository.split('/').all(segment_ok);
            if is_id || is_path {
                None
            } else {
                Some("write the project's path (`group/subgroup/project`) or its numeric id")
            }
        }
    }
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{LoadOptions, ManifestError, load_manifest};

    fn load(yaml: &str) -> Result<Option<CommitStatusConfig>, Vec<String>> {
        let env = |_: &str| None;
        let opts = LoadOptions {
            env: &env,
            base_dir: None,
        };
        let yaml = format!("{yaml}\nallow_empty: true\n");
        match load_manifest("refinery.yaml", &yaml, &opts) {
            Ok(loaded) => Ok(loaded.manifest.commit_status),
            Err(ManifestError::Invalid { issues, .. }) => Err(issues
                .iter()
                .map(|i| {
                    format!(
                        "{}:{} {}: {} ({})",
                        i.line,
                        i.column,
                        i.field,
                        i.message,
                        i.hint.clone().unwrap_or_default()
                    )
                })
                .collect()),
            Err(e) => Err(vec![e.to_string()]),
        }
    }

    #[test]
    fn commit_status_absent_is_none() {
        assert_eq!(load("containers: []\n"), Ok(None));
    }

    #[test]
    fn commit_status_github_defaults_api_url_and_token_env() {
        let got = load("commit_status:\n  provider: github\n  repository: acme/infra\n");
        assert_eq!(
            got,
            Ok(Some(CommitStatusConfig {
                provider: Forge::Github,
                api_url: "https://api.github.com".to_owned(),
                repository: "acme/infra".to_owned(),
                token_env: DEFAULT_TOKEN_ENV.to_owned(),
            }))
        );
    }

    #[test]
    fn commit_status_gitlab_path_or_id_and_trailing_slash_trimmed() {
        let got = load(
            "commit_status:\n  provider: gitlab\n  api_url: https://git.example.com/api/v4/\n  repository: ops/platform/infra\n  token_env: GITLAB_TOKEN\n",
        )
        .expect("loads")
        .expect("present");
        assert_eq!(got.api_url, "https://git.example.com/api/v4");
        assert_eq!(got.repository, "ops/platform/infra");
        assert_eq!(got.token_env, "GITLAB_TOKEN");
        let id = load("commit_status: {provider: gitlab, repository: \"42\"}\n")
            .expect("loads")
            .expect("present");
        assert_eq!(id.repository, "42");
        assert_eq!(id.api_url, "https://gitlab.com/api/v4");
    }

    #[test]
    fn commit_status_forgejo_is_gitea_and_needs_api_url() {
        let err = load("commit_status: {provider: forgejo, repository: acme/infra}\n")
            .expect_err("no api_url");
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains("commit_status.api_url"), "{err:?}");
        let ok = load(
            "commit_status: {provider: forgejo, api_url: \"https://code.example/api/v1\", repository: acme/infra}\n",
        )
        .expect("loads")
        .expect("present");
        assert_eq!(ok.provider, Forge::Gitea);
    }

    #[test]
    fn commit_status_bad_values_are_located_errors_with_hints() {
        let err = load(
            "commit_status:\n  provider: githb\n  api_url: api.github.com\n  repository: infra\n  token_env: ghp_abc-123\n  branch: main\n",
        )
        .expect_err("invalid");
        let all = err.join("\n");
        assert!(
            all.contains(
                "2:13 commit_status.provider: `githb` is not a forge (did you mean `github`?)"
            ),
            "{all}"
        );
        assert!(
            all.contains("3:12 commit_status.api_url: `api.github.com` is not an http(s) URL"),
            "{all}"
        );
        // The provider is unknown, so the repository cannot be judged; the token name can.
        assert!(
            all.contains(
                "5:14 commit_status.token_env: `ghp_abc-123` is not an environment variable name"
            ),
            "{all}"
        );
        assert!(
            all.contains("6:3 commit_status.branch: unknown key `branch`"),
            "{all}"
        );
    }

    #[test]
    fn commit_status_github_repository_needs_owner_and_name() {
        let err = load("commit_status: {provider: github, repository: acme/infra/x}\n")
            .expect_err("invalid");
        assert!(
            err[0].contains("is not a github repository (write `owner/name`"),
            "{err:?}"
        );
        let err = load("commit_status: {provider: github}\n").expect_err("invalid");
        assert!(err[0].contains("needs a `repository`"), "{err:?}");
    }
}
