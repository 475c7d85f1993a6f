//! A channel as the notifier knows it: the manifest's entry and a printable, masked name.

use refinery_core::manifest::Channel;

/// A channel and its label. The label never holds a secret: `discord#0 (https://discord.com/***)`.
#[derive(Debug, Clone)]
pub struct Target {
    pub channel: Channel,
    /// `<type>#<index> (<scheme>://<host>/***)`.
    pub label: String,
}

impl Target {
    #[must_use]
    pub fn new(index: usize, channel: Channel) -> Self {
        let kind = channel.kind().as_str();
        let label = format!(
            "{kind}#{index} ({})",
            mask_url(channel.destination.address().expose())
        );
        Target { channel, label }
    }

    /// The short name used as a metric label: `discord#0`.
    #[must_use]
    pub fn metric_name(&self) -> &str {
        self.label.split(' ').next().unwrap_or(&self.label)
    }

    /// `text` with every secret of the channel (URLs, tokens, passwords) replaced by `***`: for
    /// anything printed about a failure (a server's answer may quote the request).
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in self.channel.destination.secrets() {
            out = out.replace(s, "***");
        }
        out
    }
}

/// A URL as it may be printed: scheme and host only (`https://discord.com/***`); the path, the
/// query and any user info carry the secret.
#[must_use]
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}/***")
}

#[cfg(test)]
mod tests {
    use refinery_core::Secret;
    use refinery_core::manifest::Destination;

    use super::*;

    #[test]
    fn mask_url_keeps_scheme_and_host_only() {
        assert_eq!(
            mask_url("https://user:pw@discord.com:443/api/webhooks/1/abc?x=1"),
            "https://discord.com:443/***"
        );
        assert_eq!(
            mask_url("smtp://mail.example:587"),
            "smtp://mail.example:587/***"
        );
        assert_eq!(mask_url("not a url"), "***");
    }

    #[test]
    fn target_label_and_redact_hide_every_secret() {
        let t = Target::new(
            3,
            Channel::new(Destination::Telegram {
                bot_token: Secret::new("123:ABC", true),
                chat_id: "-100".into(),
                api_url: None,
            }),
        );
        assert_eq!(t.label, "telegram#3 (https://api.telegram.org/***)");
        assert_eq!(t.metric_name(), "telegram#3");
        assert_eq!(
            t.redact("POST /bot123:ABC/sendMessage"),
            "POST /bot***/sendMessage"
        );
    }
}
