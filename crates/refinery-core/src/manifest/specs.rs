//! Short-syntax port and volume specs, as `docker run -p/-v` and compose read them.

use crate::spec::{Mount, MountKind, PortBinding, Protocol};

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let p = |x: &str| -> Result<u16, String> {
        match x.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("`{x}` is not a port number (1-65535)")),
            Ok(n) => Ok(n),
        }
    };
    let (a, b) = (p(a)?, p(b)?);
    if b < a {
        return Err(format!("`{s}` is a range that runs backwards"));
    }
    Ok((a, b))
}

/// `8080`, `8080:80`, `127.0.0.1:8080:80`, `0.0.0.0:8085:8085/tcp`, `8000-8002:8000-8002/udp`,
/// `127.0.0.1::80` (any host port).
pub fn parse_port(spec: &str) -> Result<Vec<PortBinding>, String> {
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p)) => (
            b,
            match p {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                other => return Err(format!("`{other}` is not a protocol; use tcp, udp or sctp")),
            },
        ),
        None => (spec, Protocol::Tcp),
    };
    // IPv6 host addresses come in brackets: `[::1]:8080:80`.
    let (host_ip, rest) = if let Some(stripped) = body.strip_prefix('[') {
        match stripped.split_once("]:") {
            Some((ip, rest)) => (ip.to_owned(), rest),
            None => return Err(format!("`{spec}` has an unclosed `[`")),
        }
    } else {
        let parts: Vec<&str> = body.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), body),
            3 => (parts[0].to_owned(), &body[parts[0].len() + 1..]),
            _ => return Err(format!("`{spec}` has too many `:`")),
        }
    };
    let host_ip = match host_ip.parse::<std::net::IpAddr>() {
        _ if host_ip.is_empty() => String::new(),
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => String::new(),
        Ok(ip) => ip.to_string(),
        Err(_) => return Err(format!("`{host_ip}` is not an IP address to bind to")),
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest),
    };
    let (c_lo, c_hi) = parse_port_range(container)?;
    let host_range = match host {
        None | Some("") => None,
        Some(h) => Some(parse_port_range(h)?),
    };
    if let Some((h_lo, h_hi)) = host_range
        && h_hi - h_lo != c_hi - c_lo
    {
        return Err(format!(
            "`{spec}` maps {} host port{} to {} container port{}; the ranges must be the same length",
            h_hi - h_lo + 1,
            if h_hi == h_lo { "" } else { "s" },
            c_hi - c_lo + 1,
            if c_hi == c_lo { "" } else { "s" },
        ));
    }
    let mut out = Vec::new();
    for (i, cp) in (c_lo..=c_hi).enumerate() {
        // The ranges have the same length, so `lo + i` stays within `lo..=hi`.
        let host_port = host_range.map(|(lo, _)| lo.saturating_add(u16::try_from(i).unwrap_or(0)));
        out.push(PortBinding {
            host_ip: host_ip.clone(),
            host_port,
            container_port: cp,
            protocol: proto,
        });
    }
    Ok(out)
}

/// `data:/var/lib/api`, `/srv/x:/x:ro`, `./conf:/etc/api:ro` (resolved against `base_dir`), `/cache`.
pub fn parse_volume(spec: &str, base_dir: Option<&str>) -> Result<Mount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => {
            return Err(format!(
                "`{spec}` has too many `:`; write SOURCE:TARGET[:ro]"
            ));
        }
    };
    if !target.starts_with('/') {
        return Err(format!(
            "`{target}` is not an absolute path inside the container; write SOURCE:/PATH[:ro]"
        ));
    }
    let mut read_only = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" | "cached" | "delegated" | "consistent" | "nocopy" => {}
            other => return Err(format!("`{other}` is not a mount option; use `ro` or `rw`")),
        }
    }
    let target = normalize_path(target);
    if target == "/" {
        return Err("a volume cannot be mounted over `/`, the container's root; mount it on a directory like `/data`".into());
    }
    let (kind, source) = if source.is_empty() {
        (MountKind::Anonymous, String::new())
    } else if source.starts_with('/') {
        (MountKind::Bind, normalize_path(source))
    } else if source.starts_with('~') {
        return Err(format!(
            "`{source}` is relative to a home directory, which differs between machines; write an absolute path or `./path` inside the repository"
        ));
    } else if source.starts_with('.') {
        let Some(base) = base_dir else {
            return Err(format!(
                "`{source}` is relative but there is no checkout to resolve it against"
            ));
        };
        let base = normalize_path(base);
        let norm = normalize_path(&format!("{base}/{source}"));
        // Compare whole path segments: `/repository` is not inside `/repo`.
        let inside = base == "/" || norm == base || norm.starts_with(&format!("{base}/"));
        if !inside {
            return Err(format!("`{source}` points outside the repository"));
        }
        (MountKind::Bind, norm)
    } else {
        if let Err(refusal) = super::grammar::volume_name(source) {
            if source.contains('/') {
                return Err(format!(
                    "`{source}` is not a valid volume name; write `./{source}` for a path in the repository"
                ));
            }
            return Err(refusal.message);
        }
        (MountKind::Volume, source.to_owned())
    };
    Ok(Mount {
        kind,
        source,
        target,
        read_only,
    })
}

/// Collapses `//`, `/./` and `dir/..` in an absolute path; drops a trailing `/`.
#[must_use]
pub fn normalize_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortBinding {
        let mut v = parse_port(spec).expect(spec);
        assert_eq!(v.len(), 1, "{spec}");
        v.remove(0)
    }

    #[test]
    fn parse_port_short_and_long_forms_normalize_equal() {
        assert_eq!(one("8085:8085"), one("0.0.0.0:8085:8085/tcp"));
        assert_eq!(one("80").host_port, None);
        assert_eq!(one("127.0.0.1:8080:80").host_ip, "127.0.0.1");
        assert_eq!(one("127.0.0.1::80").host_port, None);
        assert_eq!(one("53:53/udp").protocol, Protocol::Udp);
        assert_eq!(one("[::1]:8080:80").host_ip, "::1");
        assert_eq!(one("[0:0::1]:8080:80").host_ip, "::1");
    }

    #[test]
    fn parse_port_range_expands() {
        let v = parse_port("8000-8002:9000-9002").expect("range");
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].host_port, Some(8002));
        assert_eq!(v[2].container_port, 9002);
    }

    #[test]
    fn parse_port_invalid_is_error() {
        for bad in [
            "",
            "x",
            "70000",
            "1:2:3:4",
            "80/xyz",
            "0",
            "9-1",
            "8080:80-82",
            "8000-8010:80",
            "localhost:80:80",
            "[::1:80:80",
        ] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_volume_forms() {
        let v = parse_volume("data:/var/lib/api", None).expect("named");
        assert_eq!(v.kind, MountKind::Volume);
        let v = parse_volume("./conf:/etc/api:ro", Some("/repo")).expect("relative");
        assert_eq!(
            (v.kind, v.source.as_str(), v.read_only),
            (MountKind::Bind, "/repo/conf", true)
        );
        let v = parse_volume("/cache", None).expect("anonymous");
        assert_eq!(v.kind, MountKind::Anonymous);
    }

    #[test]
    fn parse_volume_invalid_is_error() {
        assert!(parse_volume("data:relative", None).is_err());
        assert!(parse_volume("../x:/x", Some("/repo")).is_err());
        assert!(parse_volume("a:/b:ro:x", None).is_err());
        assert!(parse_volume("data:/x:bogus", None).is_err());
        assert!(
            parse_volume("./conf:/x", None).is_err(),
            "no checkout to resolve against"
        );
        assert!(parse_volume("~/conf:/x", Some("/repo")).is_err());
        assert!(parse_volume("_data:/x", None).is_err());
        assert!(parse_volume("conf/x:/x", None).is_err());
    }

    #[test]
    fn parse_volume_sibling_of_checkout_is_outside() {
        for spec in ["../repository:/x", "../repo2/conf:/x", "./../repo-other:/x"] {
            let err = parse_volume(spec, Some("/repo")).expect_err(spec);
            assert!(err.contains("outside the repository"), "{spec}: {err}");
        }
        for (spec, source) in [
            ("./:/x", "/repo"),
            ("./a/../b:/x", "/repo/b"),
            ("./conf:/x", "/repo/conf"),
        ] {
            assert_eq!(
                parse_volume(spec, Some("/repo/")).expect(spec).source,
                source,
                "{spec}"
            );
        }
    }
}
