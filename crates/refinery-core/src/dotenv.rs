//! `.env` and `env_file:` files: `KEY=value` lines, `#` comments, optional `export `, quotes.

use std::collections::BTreeMap;

/// Parses an env file; an error names the 1-based line.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, (u32, String)> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err((
                line_no,
                format!("failed to read `{line}`: expected KEY=value"),
            ));
        };
        let key = key.trim();
        if !is_variable_name(key) {
            return Err((line_no, format!("`{key}` is not a variable name")));
        }
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            v.replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(v) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            v.to_owned()
        } else {
            // An unquoted value ends at ` #`.
            value
                .split_once(" #")
                .map_or(value, |(v, _)| v)
                .trim_end()
                .to_owned()
        };
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// Whether `key` may name a variable in an env file: a letter or `_` first, then letters,
/// digits, `_`, `.` and `-`.
pub(crate) fn is_variable_name(key: &str) -> bool {
    key.chars()
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c == '_' || c == '.' || c == '-' || c.is_ascii_alphanumeric())
}
