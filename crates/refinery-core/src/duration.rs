//! Durations as people write them in manifests: `90`, `30s`, `10m`, `1h30m`, `14d`, `500ms`.

/// Parses a duration into milliseconds. A bare number means seconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("an empty duration".into());
    }
    let too_large = || format!("`{s}` is too large for a duration");
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1000))
            .ok_or_else(too_large);
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{s}` is not a duration"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| too_large())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor: u64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(format!("`{s}` is not a duration")),
        };
        total = n
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(too_large)?;
    }
    Ok(total)
}

/// The hint every duration error carries.
pub const DURATION_HINT: &str =
    "write a number with a unit, like `90s`, `10m`, `1h30m` or `14d` (a bare number means seconds)";

/// The hint for a duration that failed to parse: when it is written in words (`14 days`,
/// `1 hour 30 minutes`), the compact form to write instead; else [`DURATION_HINT`].
#[must_use]
pub fn duration_hint(s: &str) -> String {
    match compact_form(s).filter(|c| c != s.trim()) {
        Some(compact) => format!(
            "write `{compact}`; a duration is a number with a unit, like `90s`, `10m`, `1h30m` or `14d`"
        ),
        None => DURATION_HINT.to_owned(),
    }
}

/// `14 days` → `14d`, `1 hour, 30 mins` → `1h30m`; `None` unless every part is a number and a unit.
fn compact_form(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut number: Option<&str> = None;
    let mut tokens = Vec::new();
    for word in s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty() && *w != "and")
    {
        // `14days` is one word: split it into the number and the unit.
        let digits = word.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && digits < word.len() {
            tokens.push(&word[..digits]);
            tokens.push(&word[digits..]);
        } else {
            tokens.push(word);
        }
    }
    for token in tokens {
        match number.take() {
            None => {
                if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                number = Some(token);
            }
            Some(n) => {
                let unit = match token.to_ascii_lowercase().as_str() {
                    "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => "ms",
                    "s" | "sec" | "secs" | "second" | "seconds" => "s",
                    "m" | "min" | "mins" | "minute" | "minutes" => "m",
                    "h" | "hr" | "hrs" | "hour" | "hours" => "h",
                    "d" | "day" | "days" => "d",
                    "w" | "wk" | "wks" | "week" | "weeks" => "w",
                    _ => return None,
                };
                out.push_str(n);
                out.push_str(unit);
            }
        }
    }
    (number.is_none() && !out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_hint_words_suggest_compact_form() {
        for (words, compact) in [
            ("14 days", "14d"),
            ("1 hour 30 minutes", "1h30m"),
            ("1 hour, 30 mins", "1h30m"),
            ("2 Weeks", "2w"),
            ("5minutes", "5m"),
        ] {
            assert!(parse_duration_ms(words).is_err(), "{words}");
            assert!(
                duration_hint(words).starts_with(&format!("write `{compact}`")),
                "{words}"
            );
        }
        for garbage in ["soon", "14", "days 14", "1.5h", ""] {
            assert_eq!(duration_hint(garbage), DURATION_HINT, "{garbage}");
        }
    }

    #[test]
    fn parse_duration_table() {
        for (s, ms) in [
            ("90", 90_000),
            ("30s", 30_000),
            ("10m", 600_000),
            ("1h30m", 5_400_000),
            ("14d", 1_209_600_000),
            ("500ms", 500),
        ] {
            assert_eq!(parse_duration_ms(s), Ok(ms), "{s}");
        }
    }

    #[test]
    fn parse_duration_with_words_is_error() {
        assert!(parse_duration_ms("14 days").is_err());
        assert!(parse_duration_ms("m").is_err());
        assert!(parse_duration_ms("").is_err());
    }

    #[test]
    fn parse_duration_overflow_is_too_large() {
        for s in [
            "99999999999999999999",
            "18446744073709551615s",
            "99999999999999999999ms",
            "1000000000000000w",
        ] {
            let err = parse_duration_ms(s).expect_err(s);
            assert!(err.ends_with("is too large for a duration"), "{s}: {err}");
            assert_eq!(
                duration_hint(s),
                DURATION_HINT,
                "{s}: no compact form to offer"
            );
        }
    }
}
