//! File sizes as people write them in manifests: `10MiB`, `512KiB`, `1GB`, `4096`.

/// The hint every size error carries.
pub const SIZE_HINT: &str =
    "write a number with a unit, like `10MiB`, `512KiB` or `1GB` (a bare number means bytes)";

/// Parses a size into bytes. Units: `B`; `KiB`/`MiB`/`GiB` (also `K`/`M`/`G`, powers of 1024);
/// `KB`/`MB`/`GB` (powers of 1000); case-insensitive, optionally after a space. A bare number
/// means bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("`{s}` is not a size"));
    }
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("`{s}` is too large for a size"))?;
    let unit = t[digits..].trim_start().to_ascii_lowercase();
    let factor: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("`{s}` is not a size")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{s}` is too large for a size"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn parse_size_table() {
        for (text, bytes) in [
            ("4096", 4096),
            ("1B", 1),
            ("10MiB", 10 << 20),
            ("10 MiB", 10 << 20),
            ("10mib", 10 << 20),
            ("512KiB", 512 << 10),
            ("2k", 2048),
            ("1G", 1 << 30),
            ("1GB", 1_000_000_000),
            ("3kb", 3_000),
            (" 5MB ", 5_000_000),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn parse_size_bad_text_is_error() {
        for text in ["", "MiB", "10 megabytes", "-1", "1.5MiB", "10XB"] {
            assert!(parse_size(text).is_err(), "{text}");
        }
        assert_eq!(
            parse_size("99999999999999GiB"),
            Err("`99999999999999GiB` is too large for a size".to_owned())
        );
    }
}
