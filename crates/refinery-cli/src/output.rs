//! stdout is data, written only through here. A write that fails is an error the command
//! returns, never a panic; when the reader went away (`refinery ledger show | head -1`), `main`
//! ends quietly with exit 0, as ripgrep does.

use std::io::Write;

use serde::Serialize;

use crate::error::CliError;

/// Writes `text` to stdout as it is, and flushes.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Stdout)
}

/// Writes `value` to stdout as pretty JSON and a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    print(&text)
}
