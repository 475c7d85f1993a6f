//! The flags of `refinery run` that say what is followed and how it is told of pushes.

use std::path::PathBuf;

use clap::Args;
use refinery_forge::WebhookSecret;

use crate::error::CliError;

/// The environment variable holding the webhook secret when `--webhook-secret-file` is not given.
pub const WEBHOOK_SECRET_ENV: &str = "REFINERY_WEBHOOK_SECRET";

/// `refinery run`: following tags, fetching, webhooks, links back.
#[derive(Debug, Clone, Args)]
pub struct GitopsArgs {
    /// Follow the highest tag matching this glob (`'v*'`), in version order, instead of a branch:
    /// the remote's tags are fetched; a tag push webhook fetches at once.
    #[arg(long, value_name = "GLOB", conflicts_with = "branch")]
    pub follow_tag: Option<String>,
    /// How often to fetch the followed branch or tags from the remote (`1m`, `1h`); a push
    /// webhook or `POST /api/v1/sync` fetches at once.
    #[arg(long, value_name = "D", default_value = "1m", value_parser = parse_interval)]
    pub fetch_interval: u64,
    /// File holding the secret push webhooks are signed with [default: `REFINERY_WEBHOOK_SECRET`];
    /// without one, the webhook paths answer 404.
    #[arg(long, value_name = "PATH")]
    pub webhook_secret_file: Option<PathBuf>,
    /// The status page's address as people reach it (`https://refinery.example:9470`): commit
    /// statuses link to it.
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
}

impl GitopsArgs {
    /// The webhook secret: the file's content, else `REFINERY_WEBHOOK_SECRET`; `None` when
    /// neither gives one (webhooks are off). A file that cannot be read, or holds nothing, is an
    /// error: the user asked for webhooks.
    pub fn webhook_secret(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<WebhookSecret>, CliError> {
        match &self.webhook_secret_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
                    action: format!("read the webhook secret file `{}`", path.display()),
                    source,
                })?;
                WebhookSecret::new(&text)
                    .map(Some)
                    .ok_or_else(|| CliError::Io {
                        action: format!("read the webhook secret file `{}`", path.display()),
                        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "it is empty"),
                    })
            }
            None => Ok(env(WEBHOOK_SECRET_ENV)
                .as_deref()
                .and_then(WebhookSecret::new)),
        }
    }
}

fn parse_interval(s: &str) -> Result<u64, String> {
    let ms = refinery_core::duration::parse_duration_ms(s)
        .map_err(|e| format!("{e}; {}", refinery_core::duration::duration_hint(s)))?;
    if ms < 1000 {
        return Err("fetch at most once a second: give at least `1s`".to_owned());
    }
    Ok(ms)
}

fn parse_public_url(s: &str) -> Result<String, String> {
    let trimmed = s.trim();
    let ok = (trimmed.starts_with("https://") || trimmed.starts_with("http://"))
        && trimmed
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'))
        && !trimmed.contains(char::is_whitespace);
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(format!(
            "`{s}` is not an http(s) URL; give the status page's address, like `https://refinery.example:9470`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_interval_parses_durations_and_refuses_below_a_second() {
        assert_eq!(parse_interval("1m"), Ok(60_000));
        assert_eq!(parse_interval("1h"), Ok(3_600_000));
        assert!(parse_interval("500ms").is_err());
        assert!(parse_interval("soon").is_err());
    }

    #[test]
    fn public_url_must_be_http() {
        assert_eq!(
            parse_public_url("https://r.example:9470/ "),
            Ok("https://r.example:9470/".to_owned())
        );
        assert!(parse_public_url("r.example").is_err());
        assert!(parse_public_url("https:///x").is_err());
    }

    #[test]
    fn webhook_secret_from_file_or_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").expect("write");
        let mut args = GitopsArgs {
            follow_tag: None,
            fetch_interval: 60_000,
            webhook_secret_file: Some(file.clone()),
            public_url: None,
        };
        let env = |_: &str| Some("from-env".to_owned());
        let s = args.webhook_secret(&env).expect("ok").expect("some");
        assert!(s.equals(b"s3cret"));
        std::fs::write(&file, "\n").expect("write");
        assert!(
            args.webhook_secret(&env).is_err(),
            "an empty file is an error"
        );
        args.webhook_secret_file = None;
        let s = args.webhook_secret(&env).expect("ok").expect("some");
        assert!(s.equals(b"from-env"));
        assert!(args.webhook_secret(&|_| None).expect("ok").is_none());
    }
}
