//! One HTTP request to a forge's commit status API, as a value.

use std::fmt;

/// `POST url` with these headers and this JSON body. `Debug` masks the credential header.
#[derive(Clone, PartialEq)]
pub struct StatusRequest {
    pub url: String,
    /// Name and value; the credential is among them (`Authorization`, `PRIVATE-TOKEN`).
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
}

/// Headers whose values are credentials.
const SECRET_HEADERS: [&str; 2] = ["authorization", "private-token"];

impl StatusRequest {
    /// The headers as they may be printed: credentials become `***` (the scheme word, `Bearer`
    /// or `token`, stays).
    #[must_use]
    pub fn masked_headers(&self) -> Vec<(&'static str, String)> {
        self.headers
            .iter()
            .map(|(name, value)| {
                if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    let masked = match value.split_once(' ') {
                        Some((scheme, _)) => format!("{scheme} ***"),
                        None => "***".to_owned(),
                    };
                    (*name, masked)
                } else {
                    (*name, value.clone())
                }
            })
            .collect()
    }
}

impl fmt::Debug for StatusRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusRequest")
            .field("url", &self.url)
            .field("headers", &self.masked_headers())
            .field("body", &self.body)
            .finish()
    }
}
