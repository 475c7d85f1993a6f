//! `refinery alert test`: one test message to every channel, one result line per channel.

use serde::Serialize;

use crate::args::{AlertArgs, AlertCommand};
use crate::commands::load_desired;
use crate::error::CliError;
use crate::exit_code;
use refinery_notify::{self as notify, Notice, NoticeKind, Retry, Target};

use crate::settings::Settings;

#[derive(Serialize)]
struct Line {
    /// `discord#0 (https://discord.com/***)`: the URL masked.
    channel: String,
    sent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn run(settings: &Settings, args: &AlertArgs) -> Result<u8, CliError> {
    match args.command {
        AlertCommand::Test => test(settings).await,
    }
}

async fn test(settings: &Settings) -> Result<u8, CliError> {
    let d = load_desired(settings)?;
    let channels = notify::channels_of(&d.manifest);
    if channels.is_empty() {
        return Err(CliError::NoAlertChannels);
    }
    let client = notify::client().map_err(|e| CliError::Io {
        action: "set up the HTTP client".into(),
        source: std::io::Error::other(e),
    })?;
    let mut notice = Notice::new(
        NoticeKind::Test,
        refinery_core::manifest::Level::Info,
        "test message from refinery",
        settings.now,
    );
    notice.text = format!(
        "`refinery alert test` at revision `{}`: this channel works",
        d.commit.short
    );
    notice.revision = Some(d.commit.id.clone());
    let retry = Retry {
        attempts: 3,
        ..Retry::default()
    };
    let sends = channels.into_iter().enumerate().map(|(i, ch)| {
        let target = Target::new(i, ch);
        let client = client.clone();
        let notice = notice.clone();
        async move {
            let result = notify::post(&client, &target, &notice, retry, None).await;
            (target, result)
        }
    });
    let results = futures_util::future::join_all(sends).await;
    let mut lines = Vec::new();
    for (target, result) in results {
        let error = result.as_ref().err().map(|e| {
            let mut text = e.to_string();
            if let Some(cause) = std::error::Error::source(e) {
                text.push_str(&format!(": {}", target.redact(&cause.to_string())));
            }
            for h in e.hints() {
                text.push_str(&format!("\n  hint: {h}"));
            }
            text
        });
        lines.push(Line {
            channel: target.label,
            sent: result.is_ok(),
            error,
        });
    }
    if settings.json {
        crate::output::json(&lines)?;
    } else {
        let text: String = lines
            .iter()
            .map(|l| match &l.error {
                None => format!("{} sent\n", l.channel),
                Some(e) => format!("{} failed\n  {e}\n", l.channel),
            })
            .collect();
        crate::output::print(&text)?;
    }
    Ok(if lines.iter().all(|l| l.sent) {
        exit_code::OK
    } else {
        exit_code::UNEXPECTED
    })
}
