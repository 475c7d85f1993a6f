//! Masks secrets in free text before it reaches the ledger.

use crate::secret::name_looks_secret;

/// What stands in for a masked secret.
const MASK: &str = "***";

/// Masks, in any text: the known secret values (sensitive env values, webhook URLs), every
/// `http(s)://` URL that looks like a webhook, and the value of every `NAME=value` whose name looks
/// secret (`DB_PASSWORD=…`).
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Masker {
    /// A masker for these known secret values (empty ones are ignored).
    #[must_use]
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Masker {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Masker { secrets }
    }

    /// This masker and `other`'s secrets together: a secret is kept once known (a container
    /// created under an earlier revision may still carry it).
    #[must_use]
    pub fn union(&self, other: &Masker) -> Masker {
        Masker::new(self.secrets.iter().chain(&other.secrets).cloned())
    }

    /// `text` with every secret replaced by `***`.
    #[must_use]
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        mask_tokens(&out)
    }
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | '(' | ')' | '<' | '>' | ',' | '[' | ']' | '{' | '}' | ';'
        )
}

/// Masks webhook URLs and secret `NAME=value` pairs, token by token.
fn mask_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars() {
        if is_delimiter(c) {
            out.push_str(&mask_token(&token));
            token.clear();
            out.push(c);
        } else {
            token.push(c);
        }
    }
    out.push_str(&mask_token(&token));
    out
}

fn mask_token(token: &str) -> String {
    let lower = token.to_ascii_lowercase();
    if (lower.starts_with("http://") || lower.starts_with("https://"))
        && (lower.contains("webhook") || lower.contains("hooks."))
    {
        return MASK.to_owned();
    }
    if let Some((name, value)) = token.split_once('=')
        && !value.is_empty()
        && value != MASK
        && name_looks_secret(name)
    {
        return format!("{name}={MASK}");
    }
    token.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_known_secret_anywhere_replaced() {
        let m = Masker::new(["hunter2".to_owned(), String::new()]);
        assert_eq!(m.mask("login failed for hunter2!"), "login failed for ***!");
    }

    #[test]
    fn mask_union_keeps_both_sides_secrets() {
        let m =
            Masker::new(["old-s3cret".to_owned()]).union(&Masker::new(["new-s3cret".to_owned()]));
        assert_eq!(m.mask("old-s3cret new-s3cret"), "*** ***");
    }

    #[test]
    fn mask_webhook_url_replaced() {
        let m = Masker::default();
        assert_eq!(
            m.mask("post to https://discord.com/api/webhooks/1/abc failed"),
            "post to *** failed"
        );
        assert_eq!(
            m.mask("see https://example.com/docs"),
            "see https://example.com/docs"
        );
    }

    #[test]
    fn mask_secret_assignment_value_replaced() {
        let m = Masker::default();
        assert_eq!(
            m.mask("env DB_PASSWORD=x1, LOG_LEVEL=info"),
            "env DB_PASSWORD=***, LOG_LEVEL=info"
        );
    }
}
