//! Where commit statuses go: a forge, a repository on it, and the token to write with.

use refinery_core::manifest::{CommitStatusConfig, Forge};

use crate::commit_status::{CommitStatus, StatusError};
use crate::forge_token::ForgeToken;
use crate::status_request::StatusRequest;

/// `commit_status:` of the manifest with its token: turns statuses into the requests each forge
/// documents.
///
/// | forge | request | credential |
/// |---|---|---|
/// | GitHub | `POST {api_url}/repos/{owner}/{repo}/statuses/{sha}` `{"state","description","target_url","context"}` | `Authorization: Bearer <token>` |
/// | GitLab | `POST {api_url}/projects/{url-encoded path or id}/statuses/{sha}` `{"state","description","target_url","name"}` | `PRIVATE-TOKEN: <token>` |
/// | Gitea, Forgejo | `POST {api_url}/repos/{owner}/{repo}/statuses/{sha}` `{"state","description","target_url","context"}` | `Authorization: token <token>` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusTarget {
    pub forge: Forge,
    /// Without a trailing `/`.
    pub api_url: String,
    pub repository: String,
    pub token: ForgeToken,
}

/// `User-Agent` of every request (GitHub refuses requests without one).
const USER_AGENT: &str = concat!("refinery/", env!("CARGO_PKG_VERSION"));

impl StatusTarget {
    #[must_use]
    pub fn new(config: &CommitStatusConfig, token: ForgeToken) -> StatusTarget {
        StatusTarget {
            forge: config.provider,
            api_url: config.api_url.trim_end_matches('/').to_owned(),
            repository: config.repository.clone(),
            token,
        }
    }

    /// With the token from the variable `config.token_env` names, looked up with `env`.
    ///
    /// Errors: [`StatusError::MissingToken`] when it is unset or blank.
    pub fn from_env(
        config: &CommitStatusConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StatusTarget, StatusError> {
        let token = env(&config.token_env)
            .as_deref()
            .and_then(ForgeToken::new)
            .ok_or_else(|| StatusError::MissingToken {
                var: config.token_env.clone(),
            })?;
        Ok(StatusTarget::new(config, token))
    }

    /// For logs: `github acme/infra (https://api.github.com)`; never the token.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} {} ({})", self.forge, self.repository, self.api_url)
    }

    /// The request that puts `status` on its commit.
    #[must_use]
    pub fn request(&self, status: &CommitStatus) -> StatusRequest {
        let state = status.state.wire(self.forge);
        let mut body = serde_json::json!({
            "state": state,
            "description": status.description,
        });
        if let Some(url) = &status.target_url {
            body["target_url"] = url.clone().into();
        }
        let (url, credential, label_key) = match self.forge {
            Forge::Github => (
                format!(
                    "{}/repos/{}/statuses/{}",
                    self.api_url, self.repository, status.sha
                ),
                ("Authorization", format!("Bearer {}", self.token.expose())),
                "context",
            ),
            Forge::Gitlab => (
                format!(
                    "{}/projects/{}/statuses/{}",
                    self.api_url,
                    gitlab_project_id(&self.repository),
                    status.sha
                ),
                ("PRIVATE-TOKEN", self.token.expose().to_owned()),
                "name",
            ),
            Forge::Gitea => (
                format!(
                    "{}/repos/{}/statuses/{}",
                    self.api_url, self.repository, status.sha
                ),
                ("Authorization", format!("token {}", self.token.expose())),
                "context",
            ),
        };
        body[label_key] = status.context.clone().into();
        let mut headers = vec![
            credential,
            ("Content-Type", "application/json".to_owned()),
            ("User-Agent", USER_AGENT.to_owned()),
        ];
        match self.forge {
            Forge::Github => {
                headers.push(("Accept", "application/vnd.github+json".to_owned()));
                headers.push(("X-GitHub-Api-Version", "2022-11-28".to_owned()));
            }
            Forge::Gitlab | Forge::Gitea => headers.push(("Accept", "application/json".to_owned())),
        }
        StatusRequest { url, headers, body }
    }
}

/// GitLab takes a project by numeric id or by its URL-encoded path (`group%2Fproject`).
fn gitlab_project_id(repository: &str) -> String {
    form_urlencoded::byte_serialize(repository.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit_status::CommitState;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn target(forge: Forge, api: &str, repo: &str) -> StatusTarget {
        StatusTarget::new(
            &CommitStatusConfig {
                provider: forge,
                api_url: api.to_owned(),
                repository: repo.to_owned(),
                token_env: "T".to_owned(),
            },
            ForgeToken::new("tok-123").expect("token"),
        )
    }

    fn status(state: CommitState) -> CommitStatus {
        CommitStatus::new(
            SHA,
            state,
            "rolled back: web did not start",
            "refinery/lyra",
        )
        .expect("status")
        .with_target_url("https://refinery.example/")
    }

    #[test]
    fn request_github_as_documented() {
        let req = target(Forge::Github, "https://api.github.com", "acme/infra")
            .request(&status(CommitState::Failure));
        assert_eq!(
            req.url,
            format!("https://api.github.com/repos/acme/infra/statuses/{SHA}")
        );
        assert!(
            req.headers
                .contains(&("Authorization", "Bearer tok-123".to_owned()))
        );
        assert!(
            req.headers
                .contains(&("Accept", "application/vnd.github+json".to_owned()))
        );
        assert_eq!(
            req.body,
            serde_json::json!({"state": "failure", "description": "rolled back: web did not start",
                "target_url": "https://refinery.example/", "context": "refinery/lyra"})
        );
    }

    #[test]
    fn request_gitlab_encodes_the_path_and_says_failed() {
        let req = target(Forge::Gitlab, "https://git.example/api/v4", "ops/sub/infra")
            .request(&status(CommitState::Failure));
        assert_eq!(
            req.url,
            format!("https://git.example/api/v4/projects/ops%2Fsub%2Finfra/statuses/{SHA}")
        );
        assert!(
            req.headers
                .contains(&("PRIVATE-TOKEN", "tok-123".to_owned()))
        );
        assert_eq!(req.body["state"], "failed");
        assert_eq!(req.body["name"], "refinery/lyra");
        assert!(req.body.get("context").is_none());
    }

    #[test]
    fn request_gitea_uses_token_scheme() {
        let mut s = status(CommitState::Pending);
        s.target_url = None;
        let req = target(Forge::Gitea, "https://gitea.example/api/v1/", "acme/infra").request(&s);
        assert_eq!(
            req.url,
            format!("https://gitea.example/api/v1/repos/acme/infra/statuses/{SHA}")
        );
        assert!(
            req.headers
                .contains(&("Authorization", "token tok-123".to_owned()))
        );
        assert_eq!(
            req.body,
            serde_json::json!({"state": "pending", "description": "rolled back: web did not start",
                "context": "refinery/lyra"})
        );
    }

    #[test]
    fn request_debug_and_label_never_show_the_token() {
        for forge in Forge::ALL {
            let t = target(forge, "https://x.example", "acme/infra");
            let req = t.request(&status(CommitState::Success));
            let printed = format!("{req:?} {} {t:?}", t.label());
            assert!(!printed.contains("tok-123"), "{printed}");
            assert!(printed.contains("***"), "{printed}");
        }
    }

    #[test]
    fn from_env_names_the_missing_variable() {
        let config = CommitStatusConfig {
            provider: Forge::Github,
            api_url: "https://api.github.com".to_owned(),
            repository: "a/b".to_owned(),
            token_env: "MY_TOKEN".to_owned(),
        };
        let err = StatusTarget::from_env(&config, &|_| Some("  ".to_owned())).expect_err("blank");
        assert_eq!(
            err.to_string(),
            "failed to read the forge token: `MY_TOKEN` is not set"
        );
        let ok = StatusTarget::from_env(&config, &|v| (v == "MY_TOKEN").then(|| "t".to_owned()));
        assert_eq!(ok.map(|t| t.token.expose().to_owned()), Ok("t".to_owned()));
    }
}
