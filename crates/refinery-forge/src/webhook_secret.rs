//! The secret push webhooks are signed with, shared with the forge.

use std::fmt;

use ring::hmac;

/// The webhook secret: the HMAC key of GitHub's and Gitea's signatures, the token GitLab sends.
/// Never printed: `Debug` and `Display` show `***`.
#[derive(Clone)]
pub struct WebhookSecret {
    raw: Vec<u8>,
    key: hmac::Key,
}

impl WebhookSecret {
    /// The secret from a file's or variable's text, without surrounding white space (a file ends
    /// with a newline). `None` when nothing is left: an empty secret signs nothing.
    #[must_use]
    pub fn new(text: &str) -> Option<WebhookSecret> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return None;
        }
        Some(WebhookSecret {
            raw: trimmed.as_bytes().to_vec(),
            key: hmac::Key::new(hmac::HMAC_SHA256, trimmed.as_bytes()),
        })
    }

    /// HMAC-SHA256 of `body` under the secret.
    #[must_use]
    pub fn sign(&self, body: &[u8]) -> Vec<u8> {
        hmac::sign(&self.key, body).as_ref().to_vec()
    }

    /// Whether `tag` is the HMAC-SHA256 of `body`, in constant time.
    #[must_use]
    pub fn verify_hmac(&self, body: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.key, body, tag).is_ok()
    }

    /// Whether `given` is the secret itself (GitLab's `X-Gitlab-Token`), in time that depends on
    /// neither where they differ nor the secret's length: both sides are compared as HMACs.
    #[must_use]
    pub fn equals(&self, given: &[u8]) -> bool {
        let expected = hmac::sign(&self.key, &self.raw);
        hmac::verify(&self.key, given, expected.as_ref()).is_ok()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_blank_is_none_and_text_is_trimmed() {
        assert!(WebhookSecret::new(" \n").is_none());
        let s = WebhookSecret::new("s3cret\n").expect("secret");
        assert!(s.equals(b"s3cret"));
        assert!(!s.equals(b"s3cret\n"));
        assert!(!s.equals(b"s3cre"));
        assert!(!s.equals(b""));
    }

    #[test]
    fn secret_never_prints() {
        let s = WebhookSecret::new("hunter2").expect("secret");
        assert_eq!(format!("{s} {s:?}"), "*** WebhookSecret(***)");
    }

    #[test]
    fn secret_hmac_round_trips() {
        let s = WebhookSecret::new("k").expect("secret");
        let tag = s.sign(b"body");
        assert!(s.verify_hmac(b"body", &tag));
        assert!(!s.verify_hmac(b"body!", &tag));
        assert!(!s.verify_hmac(b"body", &tag[..31]));
    }
}
