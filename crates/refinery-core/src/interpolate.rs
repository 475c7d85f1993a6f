//! `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `$VAR` and `$$`,
//! as docker compose reads them.

/// What interpolating one string found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interpolated {
    pub value: String,
    /// Variables that were unset and had no default (replaced by an empty string).
    pub unset: Vec<String>,
}

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error("required variable `{name}` is not set{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Required { name: String, message: String },
    #[error("failed to read `${{` at byte {offset}: no closing `}}`")]
    Unclosed { offset: usize },
    #[error("failed to read `{text}`: `{name}` is not a variable name")]
    BadName { text: String, name: String },
    /// A `$` that starts no variable, where docker compose refuses one (compose files).
    #[error("failed to read `{text}` at byte {offset}: a `$` starts no variable there")]
    Stray { text: String, offset: usize },
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Replaces variables in `input` using `lookup`; a `$` that starts no variable stays a `$`.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolateError> {
    interpolate_with(input, lookup, false)
}

/// [`interpolate`] as docker compose reads compose files: a `$` that starts no variable
/// (`$!`, `$1`, a last `$`) is an error, to be written `$$`.
pub fn interpolate_strict(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolateError> {
    interpolate_with(input, lookup, true)
}

fn interpolate_with(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict: bool,
) -> Result<Interpolated, InterpolateError> {
    let mut out = Interpolated::default();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        if !rest.starts_with('$') {
            let next = rest.find('$').unwrap_or(rest.len());
            out.value.push_str(&rest[..next]);
            i += next;
            continue;
        }
        if rest.starts_with("$$") {
            out.value.push('$');
            i += 2;
            continue;
        }
        if let Some(braced) = rest.strip_prefix("${") {
            let Some(end) = find_closing(braced) else {
                return Err(InterpolateError::Unclosed { offset: i });
            };
            let body = &braced[..end];
            out.value.push_str(&expand(body, lookup, &mut out.unset)?);
            i += 2 + end + 1;
            continue;
        }
        let name_len = rest[1..]
            .bytes()
            .take_while(|b| *b == b'_' || b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 || bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            if strict {
                return Err(InterpolateError::Stray {
                    text: input.to_owned(),
                    offset: i,
                });
            }
            out.value.push('$');
            i += 1;
            continue;
        }
        let name = &rest[1..=name_len];
        match lookup(name) {
            Some(v) => out.value.push_str(&v),
            None => out.unset.push(name.to_owned()),
        }
        i += 1 + name_len;
    }
    Ok(out)
}

/// Index of the `}` closing a `${`, allowing nested `${…}` in defaults.
fn find_closing(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn expand(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    let split = body
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(body.len());
    let (name, op) = body.split_at(split);
    if !valid_name(name) {
        return Err(InterpolateError::BadName {
            text: format!("${{{body}}}"),
            name: name.to_owned(),
        });
    }
    let value = lookup(name);
    let nested = |s: &str, unset: &mut Vec<String>| -> Result<String, InterpolateError> {
        let r = interpolate(s, lookup)?;
        unset.extend(r.unset);
        Ok(r.value)
    };
    if op.is_empty() {
        return Ok(value.unwrap_or_else(|| {
            unset.push(name.to_owned());
            String::new()
        }));
    }
    let (kind, arg) = if let Some(a) = op.strip_prefix(":-") {
        ("default-empty", a)
    } else if let Some(a) = op.strip_prefix('-') {
        ("default-unset", a)
    } else if let Some(a) = op.strip_prefix(":?") {
        ("required-empty", a)
    } else if let Some(a) = op.strip_prefix('?') {
        ("required-unset", a)
    } else if let Some(a) = op.strip_prefix(":+") {
        ("alt-empty", a)
    } else if let Some(a) = op.strip_prefix('+') {
        ("alt-unset", a)
    } else {
        return Err(InterpolateError::BadName {
            text: format!("${{{body}}}"),
            name: body.to_owned(),
        });
    };
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let is_set = value.is_some();
    match kind {
        "default-empty" if !set_nonempty => nested(arg, unset),
        "default-unset" if !is_set => nested(arg, unset),
        "required-empty" if !set_nonempty => Err(InterpolateError::Required {
            name: name.to_owned(),
            message: arg.to_owned(),
        }),
        "required-unset" if !is_set => Err(InterpolateError::Required {
            name: name.to_owned(),
            message: arg.to_owned(),
        }),
        "alt-empty" => {
            if set_nonempty {
                nested(arg, unset)
            } else {
                Ok(String::new())
            }
        }
        "alt-unset" => {
            if is_set {
                nested(arg, unset)
            } else {
                Ok(String::new())
            }
        }
        _ => Ok(value.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn interpolate_table() {
        let cases = [
            ("plain", "plain"),
            ("${HOME}/x", "/root/x"),
            ("$HOME/x", "/root/x"),
            ("$$HOME", "$HOME"),
            ("${MISSING:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("${MISSING-${HOME}}", "/root"),
            ("${HOME:+set}", "set"),
            ("cost $5", "cost $5"),
            ("${MISSING}", ""),
        ];
        for (input, want) in cases {
            let got = interpolate(input, &env).expect(input);
            assert_eq!(got.value, want, "{input}");
        }
    }

    #[test]
    fn interpolate_required_missing_is_error() {
        let err = interpolate("${TOKEN?set TOKEN first}", &env).expect_err("required");
        assert_eq!(
            err,
            InterpolateError::Required {
                name: "TOKEN".into(),
                message: "set TOKEN first".into()
            }
        );
    }

    #[test]
    fn interpolate_required_without_message_reads_cleanly() {
        let err = interpolate("${TOKEN:?}", &env).expect_err("required");
        assert_eq!(err.to_string(), "required variable `TOKEN` is not set");
        let err = interpolate("${EMPTY:?must not be empty}", &env).expect_err("empty");
        assert_eq!(
            err.to_string(),
            "required variable `EMPTY` is not set: must not be empty"
        );
        assert_eq!(
            interpolate("${EMPTY?x}", &env).map(|i| i.value),
            Ok(String::new())
        );
    }

    #[test]
    fn interpolate_unset_is_reported() {
        let got = interpolate("${NOPE}", &env).expect("ok");
        assert_eq!(got.unset, vec!["NOPE".to_owned()]);
    }

    #[test]
    fn interpolate_unclosed_is_error() {
        assert!(interpolate("${HOME", &env).is_err());
    }
}
