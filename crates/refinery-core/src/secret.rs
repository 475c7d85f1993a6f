//! A string that may hold a secret: printed as `***` when its name looks secret.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An environment value. `sensitive` values print and serialize as `***`; comparisons use the real
/// value so a changed secret is still drift.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub struct Secret {
    value: String,
    sensitive: bool,
}

impl Secret {
    #[must_use]
    pub fn new(value: impl Into<String>, sensitive: bool) -> Self {
        Secret {
            value: value.into(),
            sensitive,
        }
    }

    /// A value whose sensitivity follows its variable name (`PASSWORD`, `TOKEN`, `SECRET`, `KEY`, …).
    #[must_use]
    pub fn for_name(name: &str, value: impl Into<String>) -> Self {
        Secret::new(value, name_looks_secret(name))
    }

    /// The real value; only adapters that hand it to an engine call this.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.value
    }

    #[must_use]
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sensitive {
            f.write_str("***")
        } else {
            f.write_str(&self.value)
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Whether an environment variable's name suggests its value is a secret.
#[must_use]
pub fn name_looks_secret(name: &str) -> bool {
    const MARKERS: [&str; 9] = [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "KEY",
        "CREDENTIAL",
        "AUTH",
        "PRIVATE",
        "WEBHOOK",
    ];
    let upper = name.to_ascii_uppercase();
    MARKERS.iter().any(|m| upper.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_with_secret_name_prints_masked() {
        let s = Secret::for_name("DB_PASSWORD", "hunter2");
        assert_eq!(s.to_string(), "***");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(serde_json::to_string(&s).unwrap_or_default(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secret_with_plain_name_prints_value() {
        assert_eq!(Secret::for_name("LOG_LEVEL", "info").to_string(), "info");
    }
}
