//! The grammars values are held to at load time, each the one of what will use the value: image
//! references by the distribution reference grammar the engine parses them with, object names by
//! the engine's, time zones by the IANA database the binary carries, cron expressions by the
//! parser the scheduler uses. Pure functions: a value in, `Ok` or a [`Refusal`] (message and hint)
//! out; the section readers put file, line, column and field around it.

use std::ops::RangeInclusive;

use crate::suggestion::suggest;

/// Why a value is refused, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub hint: String,
}

impl Refusal {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Refusal {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// The longest name of a container, network, volume, stack or node: a volume's name is a
/// directory name on the node (`NAME_MAX`), and one limit for all keeps names portable.
pub const NAME_MAX: usize = 255;

/// The longest repository name the distribution grammar allows (registry host included).
pub const IMAGE_NAME_MAX: usize = 255;

/// The longest duration any key takes: 10 years. Longer ones overflow time arithmetic later
/// (a grace period past the year 9999 would be silently ignored).
pub const DURATION_MAX_MS: u64 = 3650 * 86_400_000;

/// `s` for a message: at most 64 characters, so a two-million-character value is not echoed.
#[must_use]
pub fn shown(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

const IMAGE_HINT: &str = "write `[REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST]`, like `nginx:1.27`, `ghcr.io/team/app:v2` or `localhost:5000/app@sha256:<64 hex digits>`";

/// An image reference, by the distribution reference grammar (what the engine parses it with):
/// an optional registry `host[:port]`, lowercase path components separated by `/` (each
/// `[a-z0-9]+` joined by `.`, `_`, `__` or dashes), an optional tag `[\w][\w.-]{0,127}` and an
/// optional digest `algorithm:hex` of the algorithm's length; the name at most 255 characters.
pub fn image_reference(s: &str) -> Result<(), Refusal> {
    let refuse = |why: String| Err(Refusal::new(why, IMAGE_HINT));
    if s.is_empty() {
        return refuse("an image reference cannot be empty".into());
    }
    let v = shown(s);
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return refuse(format!(
            "`{v}` is not an image reference: it contains {}",
            describe_char(c)
        ));
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if let Some(d) = digest {
        if d.contains('@') {
            return refuse(format!(
                "`{v}` is not an image reference: it has more than one `@`"
            ));
        }
        digest_ok(d).map_err(|why| Refusal::new(format!("`{v}`: {why}"), IMAGE_HINT))?;
    }
    // The tag follows the last `:` after the last `/` (a `:` before it is a registry port).
    let after_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[after_slash..].find(':') {
        Some(i) => (&rest[..after_slash + i], Some(&rest[after_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag
        && !tag_ok(t)
    {
        let why = if t.is_empty() {
            "the tag after `:` is empty".to_owned()
        } else if t.len() > 128 {
            format!("the tag is {} characters long; the limit is 128", t.len())
        } else {
            format!(
                "`{}` is not a tag: a tag is letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
                shown(t)
            )
        };
        return refuse(format!("`{v}` is not an image reference: {why}"));
    }
    if name.is_empty() {
        return refuse(format!(
            "`{v}` is not an image reference: the name is empty"
        ));
    }
    if name.len() > IMAGE_NAME_MAX {
        return refuse(format!(
            "the image name is {} characters long; the limit is {IMAGE_NAME_MAX}",
            name.len()
        ));
    }
    // The first component is a registry when it has a `.` or `:` or is `localhost`, as Docker
    // 20.10 reads it (later parsers also take one with capitals for a registry; this one says
    // `repository name must be lowercase`).
    let (domain, path) = match name.split_once('/') {
        Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), path)
        }
        _ => (None, name),
    };
    if let Some(d) = domain
        && d.starts_with('[')
    {
        // The engines this speaks to (API 1.41, Docker 20.10) parse references with a grammar
        // that has no bracketed IPv6 host yet: `docker tag` and create refuse it.
        return Err(Refusal::new(
            format!(
                "`{v}` is not an image reference the engine reads: its registry is an IPv6 address"
            ),
            "give the registry a host name (an `/etc/hosts` entry will do), like `registry.local:5000/app`",
        ));
    }
    if let Some(d) = domain
        && !domain_ok(d)
    {
        return refuse(format!(
            "`{v}` is not an image reference: `{}` is not a registry host[:port]",
            shown(d)
        ));
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) && path_components_ok(&path.to_lowercase()) {
        let lower = match domain {
            Some(d) => format!(
                "{d}/{}",
                s[d.len() + 1..].replacen(path, &path.to_lowercase(), 1)
            ),
            None => s.replacen(name, &name.to_lowercase(), 1),
        };
        return Err(Refusal::new(
            format!("`{v}` is not an image reference: the repository name must be lowercase"),
            format!("write `{}`", shown(&lower)),
        ));
    }
    if !path_components_ok(path) {
        return refuse(format!(
            "`{v}` is not an image reference: `{}` is not a repository name (lowercase letters and digits, separated by `/`, `.`, `_`, `__` or `-`)",
            shown(path)
        ));
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\t' => "a tab".into(),
        '\n' | '\r' => "a line break".into(),
        c => format!("the character U+{:04X}", u32::from(c)),
    }
}

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, for each `/`-separated component.
fn path_components_ok(path: &str) -> bool {
    path.split('/').all(|c| {
        let b = c.as_bytes();
        let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
            return false;
        };
        if !lower_alnum(first) || !lower_alnum(last) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if lower_alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !lower_alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
                return false;
            }
        }
        true
    })
}

/// `host[:port]`: DNS labels (letters, digits, inner `-`) separated by `.`; the port digits.
fn domain_ok(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        })
}

/// `[\w][\w.-]{0,127}`.
fn tag_ok(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `algorithm:hex`: sha256 or sha512 (what the pull path reads), of their exact lengths.
fn digest_ok(d: &str) -> Result<(), String> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(format!(
            "`{}` is not a digest: write `sha256:` and 64 hex digits",
            shown(d)
        ));
    };
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "`{}` is not a digest algorithm Refinery pulls by (sha256, sha512)",
                shown(alg)
            ));
        }
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "a {alg} digest is {len} lowercase hex digits, found `{}` ({} characters)",
            shown(hex),
            hex.len()
        ));
    }
    Ok(())
}

/// The name of a container, network, stack or node, by the engine's grammar
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most [`NAME_MAX`] characters. `what` names it in the message.
pub fn object_name(what: &str, s: &str) -> Result<(), Refusal> {
    let hint = format!(
        "use letters, digits, `_`, `.` and `-`, starting with a letter or digit, at most {NAME_MAX} characters"
    );
    if s.is_empty() {
        return Err(Refusal::new(format!("a {what} name cannot be empty"), hint));
    }
    if s.chars().count() > NAME_MAX {
        return Err(Refusal::new(
            format!(
                "the {what} name `{}` is {} characters long; the limit is {NAME_MAX}",
                shown(s),
                s.chars().count()
            ),
            hint,
        ));
    }
    if let Some((i, c)) = s
        .chars()
        .enumerate()
        .find(|(i, c)| !(c.is_ascii_alphanumeric() || (*i > 0 && matches!(c, '_' | '.' | '-'))))
    {
        let what_char = if c.is_whitespace() || c.is_control() {
            describe_char(c)
        } else {
            format!("`{c}`")
        };
        let place = if i == 0 {
            "at the start".to_owned()
        } else {
            format!("at position {}", i + 1)
        };
        return Err(Refusal::new(
            format!(
                "`{}` is not a valid {what} name: {what_char} {place} is not allowed",
                shown(s)
            ),
            hint,
        ));
    }
    Ok(())
}

/// A Kubernetes namespace: a DNS-1123 label, `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63
/// characters (the API server refuses anything else).
pub fn k8s_namespace(s: &str) -> Result<(), Refusal> {
    let hint = "a namespace is lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters, like `team-a`";
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if ok {
        return Ok(());
    }
    Err(Refusal::new(
        format!("`{}` is not a Kubernetes namespace", shown(s)),
        hint,
    ))
}

/// A named volume: the engine's grammar for volumes is `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, two
/// characters at least.
pub fn volume_name(s: &str) -> Result<(), Refusal> {
    object_name("volume", s)?;
    if s.chars().count() < 2 {
        return Err(Refusal::new(
            format!("`{s}` is not a valid volume name: the engine needs two characters at least"),
            "use letters, digits, `_`, `.` and `-`, two characters at least, like `data`",
        ));
    }
    Ok(())
}

/// A time zone name, looked up in the IANA database the binary carries (bundled, so a machine
/// without `/usr/share/zoneinfo` reads it the same); a near miss gets a did-you-mean.
pub fn timezone(s: &str) -> Result<(), Refusal> {
    if !s.is_empty() && jiff::tz::TimeZone::get(s).is_ok() {
        return Ok(());
    }
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .collect();
    let near = if s.is_empty() {
        None
    } else {
        suggest(s, names.iter().map(String::as_str))
    };
    let hint = match near {
        Some(n) => format!("did you mean `{n}`?"),
        None => "write an IANA time zone name, like `UTC`, `Europe/Berlin` or `Asia/Singapore`"
            .to_owned(),
    };
    Err(Refusal::new(
        format!("`{}` is not a time zone", shown(s)),
        hint,
    ))
}

/// A cron expression, parsed by the parser the scheduler uses.
pub fn cron(s: &str) -> Result<(), Refusal> {
    match s.parse::<croner::Cron>() {
        Ok(_) => Ok(()),
        Err(e) => Err(Refusal::new(
            format!(
                "`{}` is not a cron expression: {}",
                shown(s),
                e.to_string().to_lowercase().trim_end_matches('.')
            ),
            "write five fields: minute hour day-of-month month day-of-week, like `0 2 * * *` (`*/15 * * * *`, `0 9 * * mon-fri`)",
        )),
    }
}

/// A duration in milliseconds already parsed, held to `range` (and never past
/// [`DURATION_MAX_MS`]). `shown_range` is how the range reads in the message, like `1s to 1h`.
pub fn duration_within(
    text: &str,
    ms: u64,
    range: RangeInclusive<u64>,
    shown_range: &str,
) -> Result<u64, Refusal> {
    if range.contains(&ms) && ms <= DURATION_MAX_MS {
        return Ok(ms);
    }
    Err(Refusal::new(
        format!(
            "`{}` is out of range: allowed is {shown_range}",
            shown(text)
        ),
        "write a duration with a unit within the range, like `90s`, `10m` or `1h30m`",
    ))
}

/// A label key: not empty, no `=`, no whitespace or control characters.
pub fn label_key(s: &str) -> Result<(), Refusal> {
    key_name(
        s,
        "a label needs a name",
        "a label key",
        "label keys are like `team` or `com.example.role`: letters, digits, `.`, `-`, `_` and `/`, without spaces or `=`",
    )
}

/// An environment variable name: not empty, no `=`, no whitespace or control characters (the
/// engine passes `KEY=value` strings, so a `=` would end the name).
pub fn env_name(s: &str) -> Result<(), Refusal> {
    key_name(
        s,
        "an environment variable needs a name",
        "an environment variable name",
        "environment variable names are like `LOG_LEVEL`: letters, digits and `_`, not starting with a digit",
    )
}

/// The key of a `KEY=value` pair the engine takes: not empty (`empty`), and without `=`,
/// whitespace or control characters (`` `x` is not {noun}: it contains … ``).
fn key_name(s: &str, empty: &str, noun: &str, hint: &str) -> Result<(), Refusal> {
    if s.is_empty() {
        return Err(Refusal::new(empty, hint));
    }
    if let Some(c) = s
        .chars()
        .find(|c| *c == '=' || c.is_whitespace() || c.is_control())
    {
        let what = if c == '=' {
            "`=`".to_owned()
        } else {
            describe_char(c)
        };
        return Err(Refusal::new(
            format!("`{}` is not {noun}: it contains {what}", shown(s)),
            hint,
        ));
    }
    Ok(())
}

/// A value the engine passes to a process (an environment value, a label value, a command
/// argument): a NUL byte cannot be in one.
pub fn no_nul(what: &str, s: &str) -> Result<(), Refusal> {
    if s.contains('\0') {
        return Err(Refusal::new(
            format!("{what} contains a NUL character, which no process can receive"),
            "remove the `\\0` from the value",
        ));
    }
    Ok(())
}

/// The smallest memory limit the engine accepts (`Minimum memory limit allowed is 6MB`).
pub const MEMORY_MIN: u64 = 6 * 1024 * 1024;

/// A memory limit in bytes, at least [`MEMORY_MIN`] (the engine refuses a smaller one at create).
pub fn memory_limit(bytes: i64) -> Result<(), Refusal> {
    if bytes == -1 || u64::try_from(bytes).is_ok_and(|b| b >= MEMORY_MIN) {
        return Ok(());
    }
    Err(Refusal::new(
        format!(
            "{bytes} bytes is too small for a memory limit: the engine needs at least {}",
            human_bytes(MEMORY_MIN)
        ),
        "write a size like `64m` or `1g`",
    ))
}

/// A byte size like `64m`, `1g`, `512k`, `1024` (bytes), `1.5g`: units `b`, `k`, `m`, `g`, `t`
/// (powers of 1024, optionally followed by `b`), case-insensitive; at least `min` bytes.
pub fn byte_size(s: &str, min: u64) -> Result<u64, Refusal> {
    let hint = "write a number with a unit, like `64m`, `512k` or `1g` (a bare number means bytes)";
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult): (&str, u64) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let bad = || Refusal::new(format!("`{}` is not a size", shown(s)), hint);
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    #[allow(clippy::cast_precision_loss)]
    let bytes_f = n * mult as f64;
    #[allow(clippy::cast_precision_loss)]
    if !bytes_f.is_finite() || bytes_f >= i64::MAX as f64 {
        return Err(Refusal::new(
            format!("`{}` is too large for a size", shown(s)),
            hint,
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = bytes_f as u64;
    if bytes < min {
        return Err(Refusal::new(
            format!(
                "`{}` is too small: the engine needs at least {}",
                shown(s),
                human_bytes(min)
            ),
            hint,
        ));
    }
    Ok(bytes)
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}g", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}m", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}k", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Linux capabilities the engine knows (`CAP_` left out), plus `ALL`. Docker 20.10 stops at
/// `AUDIT_READ`: it refuses `PERFMON`, `BPF` and `CHECKPOINT_RESTORE` (`unknown capability`).
pub const CAPABILITIES: [&str; 39] = [
    "ALL",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
];

/// A capability name (`NET_ADMIN`, `net_admin`, `CAP_NET_ADMIN` alike).
pub fn capability(s: &str) -> Result<(), Refusal> {
    let upper = s.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if CAPABILITIES.contains(&bare) {
        return Ok(());
    }
    let hint = match suggest(bare, CAPABILITIES) {
        Some(c) => format!("did you mean `{c}`?"),
        None => "write a Linux capability like `NET_ADMIN` or `SYS_TIME`, or `ALL`".to_owned(),
    };
    Err(Refusal::new(
        format!("`{}` is not a capability", shown(s)),
        hint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<T>(r: Result<T, Refusal>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(e) => format!("{} | {}", e.message, e.hint),
        }
    }

    #[test]
    fn image_reference_table_accepted() {
        for s in [
            "nginx",
            "nginx:1.27",
            "library/nginx:latest",
            "ghcr.io/team/app:v2.1_rc-3",
            "localhost/app",
            "localhost:5000/app:1",
            "127.0.0.1:5000/team/app",
            "registry.example.com/a__b/c.d/e-f/g---h",
            "Registry.Example.com/app",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "a:_tag",
            &format!("a:{}", "t".repeat(128)),
            &"a".repeat(255),
        ] {
            assert_eq!(msg(image_reference(s)), "ok", "{s}");
        }
    }

    #[test]
    fn image_reference_table_refused() {
        let long_tag = format!("a:{}", "t".repeat(129));
        let long_name = "a".repeat(256);
        for (s, want) in [
            ("", "an image reference cannot be empty"),
            (
                "UPPER::case@@",
                "`UPPER::case@@` is not an image reference: it has more than one `@`",
            ),
            (
                "UPPER::case",
                "`UPPER::case` is not an image reference: `:case` is not a tag: a tag is letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            ),
            (
                "Team/App:1",
                "the repository name must be lowercase | write `team/app:1`",
            ),
            (
                "Nginx:1",
                "`Nginx:1` is not an image reference: the repository name must be lowercase | write `nginx:1`",
            ),
            (
                "ghcr.io/Team/App",
                "`ghcr.io/Team/App` is not an image reference: the repository name must be lowercase | write `ghcr.io/team/app`",
            ),
            (
                "nginx:",
                "`nginx:` is not an image reference: the tag after `:` is empty",
            ),
            (
                "nginx:-x",
                "`nginx:-x` is not an image reference: `-x` is not a tag",
            ),
            (
                long_tag.as_str(),
                "the tag is 129 characters long; the limit is 128",
            ),
            (
                long_name.as_str(),
                "the image name is 256 characters long; the limit is 255",
            ),
            (
                "my app",
                "`my app` is not an image reference: it contains a space",
            ),
            ("a//b", "`a//b` is not a repository name"),
            ("-a", "`-a` is not a repository name"),
            ("a-", "`a-` is not a repository name"),
            ("a..b", "`a..b` is not a repository name"),
            ("a___b", "`a___b` is not a repository name"),
            (
                "reg_istry.io/app",
                "`reg_istry.io` is not a registry host[:port]",
            ),
            (
                "localhost:port/app",
                "`localhost:port` is not a registry host[:port]",
            ),
            (
                "busybox@sha256:abc",
                "a sha256 digest is 64 lowercase hex digits, found `abc` (3 characters)",
            ),
            (
                "busybox@md5:0123456789abcdef0123456789abcdef",
                "`md5` is not a digest algorithm Refinery pulls by",
            ),
            ("busybox@sha256", "`sha256` is not a digest"),
            (
                "busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                "a sha256 digest is 64 lowercase hex digits",
            ),
        ] {
            let got = msg(image_reference(s));
            assert!(got.contains(want), "{s}: got {got}, want {want}");
            assert!(got.contains("|"), "{s}: no hint in {got}");
        }
    }

    #[test]
    fn object_name_table() {
        assert_eq!(msg(object_name("container", "web-1.a_b")), "ok");
        assert_eq!(msg(object_name("container", &"a".repeat(255))), "ok");
        for (s, want) in [
            ("", "a container name cannot be empty"),
            (
                "-web",
                "`-web` is not a valid container name: `-` at the start is not allowed",
            ),
            (
                "web/1",
                "`web/1` is not a valid container name: `/` at position 4 is not allowed",
            ),
            (
                "we b",
                "`we b` is not a valid container name: a space at position 3 is not allowed",
            ),
            ("wéb", "`é` at position 2"),
        ] {
            let got = msg(object_name("container", s));
            assert!(got.contains(want), "{s}: got {got}");
        }
        let huge = "a".repeat(2_000_000);
        let got = msg(object_name("container", &huge));
        assert!(
            got.contains("is 2000000 characters long; the limit is 255"),
            "{got}"
        );
        assert!(got.len() < 400, "the value is not echoed whole");
    }

    #[test]
    fn k8s_namespace_table() {
        for s in ["default", "team-a", "a1"] {
            assert_eq!(msg(k8s_namespace(s)), "ok", "{s}");
        }
        for s in ["", "Team", "team_a", "-a", "a-", &"a".repeat(64)] {
            assert!(
                msg(k8s_namespace(s)).contains("is not a Kubernetes namespace"),
                "{s}"
            );
        }
    }

    #[test]
    fn volume_name_needs_two_characters() {
        assert_eq!(msg(volume_name("db")), "ok");
        assert!(msg(volume_name("d")).contains("two characters at least"));
        assert!(msg(volume_name("_d")).contains("`_` at the start"));
    }

    #[test]
    fn timezone_table() {
        for s in [
            "UTC",
            "Europe/Berlin",
            "Asia/Singapore",
            "America/Argentina/Buenos_Aires",
        ] {
            assert_eq!(msg(timezone(s)), "ok", "{s}");
        }
        assert_eq!(
            msg(timezone("Europe/Berln")),
            "`Europe/Berln` is not a time zone | did you mean `Europe/Berlin`?"
        );
        assert_eq!(
            msg(timezone("Mars/Olympus_Mons_Caldera")),
            "`Mars/Olympus_Mons_Caldera` is not a time zone | write an IANA time zone name, like `UTC`, `Europe/Berlin` or `Asia/Singapore`"
        );
        assert!(msg(timezone("")).contains("is not a time zone"));
    }

    #[test]
    fn timezone_database_is_bundled_in_the_binary() {
        // The bundled copy answers even where `/usr/share/zoneinfo` is missing.
        let bundled = jiff::tz::TimeZoneDatabase::bundled();
        assert!(bundled.get("Europe/Berlin").is_ok());
        assert!(bundled.get("Asia/Singapore").is_ok());
    }

    #[test]
    fn cron_table() {
        for s in ["0 2 * * *", "*/15 * * * *", "0 9 * * mon-fri", "0 0 1 1 *"] {
            assert_eq!(msg(cron(s)), "ok", "{s}");
        }
        for s in [
            "61 * * * *",
            "* * *",
            "0 25 * * *",
            "0 0 32 * *",
            "0 0 * 13 *",
            "a b c d e",
        ] {
            let got = msg(cron(s));
            assert!(
                got.starts_with(&format!("`{s}` is not a cron expression: ")),
                "{s}: {got}"
            );
            assert!(got.contains("| write five fields"), "{got}");
        }
    }

    #[test]
    fn duration_within_table() {
        assert_eq!(
            duration_within("5s", 5000, 1000..=3_600_000, "1s to 1h"),
            Ok(5000)
        );
        assert_eq!(
            msg(duration_within(
                "2h",
                7_200_000,
                1000..=3_600_000,
                "1s to 1h"
            )),
            "`2h` is out of range: allowed is 1s to 1h | write a duration with a unit within the range, like `90s`, `10m` or `1h30m`"
        );
        assert!(
            msg(duration_within(
                "99999d",
                99_999 * 86_400_000,
                0..=u64::MAX,
                "up to 3650d"
            ))
            .contains("out of range")
        );
    }

    #[test]
    fn label_key_and_env_name_table() {
        assert_eq!(msg(label_key("com.example.role")), "ok");
        assert_eq!(msg(label_key("a/b-c_d")), "ok");
        assert!(msg(label_key("")).starts_with("a label needs a name"));
        assert!(msg(label_key("a=b")).contains("`a=b` is not a label key: it contains `=`"));
        assert!(msg(label_key("a b")).contains("it contains a space"));
        assert!(msg(label_key("a\nb")).contains("a line break"));
        assert_eq!(msg(env_name("LOG_LEVEL")), "ok");
        assert!(msg(env_name("")).starts_with("an environment variable needs a name"));
        assert!(
            msg(env_name("A=B"))
                .contains("`A=B` is not an environment variable name: it contains `=`")
        );
        assert!(msg(env_name("A B")).contains("a space"));
        assert!(msg(no_nul("`env.A`", "x\0y")).contains("NUL"));
        assert_eq!(msg(no_nul("`env.A`", "xy")), "ok");
    }

    #[test]
    fn byte_size_table() {
        for (s, b) in [
            ("64m", 64 << 20),
            ("1g", 1 << 30),
            ("1G", 1 << 30),
            ("512k", 512 << 10),
            ("512kb", 512 << 10),
            ("1024", 1024),
            ("1.5g", 3 << 29),
        ] {
            assert_eq!(byte_size(s, 0), Ok(b), "{s}");
        }
        for (s, want) in [
            ("", "`` is not a size"),
            ("m", "`m` is not a size"),
            ("64 megs", "is not a size"),
            ("-1m", "is not a size"),
            ("99999999999t", "too large"),
        ] {
            let got = msg(byte_size(s, 0));
            assert!(got.contains(want), "{s}: {got}");
        }
        assert_eq!(msg(memory_limit(6 << 20)), "ok");
        assert_eq!(
            msg(memory_limit(4 << 20)),
            "4194304 bytes is too small for a memory limit: the engine needs at least 6m | write a size like `64m` or `1g`"
        );
        assert_eq!(
            msg(byte_size("4m", MEMORY_MIN)),
            "`4m` is too small: the engine needs at least 6m | write a number with a unit, like `64m`, `512k` or `1g` (a bare number means bytes)"
        );
    }

    #[test]
    fn capability_table() {
        for s in [
            "NET_ADMIN",
            "net_admin",
            "CAP_SYS_TIME",
            "ALL",
            "AUDIT_READ",
        ] {
            assert_eq!(msg(capability(s)), "ok", "{s}");
        }
        // The engine here (20.10) does not know the capabilities Linux 5.8 added.
        assert!(msg(capability("PERFMON")).contains("is not a capability"));
        assert_eq!(
            msg(capability("NET_ADMN")),
            "`NET_ADMN` is not a capability | did you mean `NET_ADMIN`?"
        );
    }
}
