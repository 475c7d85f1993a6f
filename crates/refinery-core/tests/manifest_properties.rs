//! Property tests for the normalization the manifest loader relies on: port and volume specs,
//! paths, interpolation, durations and suggestions.

use proptest::prelude::*;
use refinery_core::duration::parse_duration_ms;
use refinery_core::interpolate::interpolate;
use refinery_core::manifest::specs::{normalize_path, parse_port, parse_volume};
use refinery_core::suggestion::{distance, suggest};
use refinery_core::{MountKind, Protocol};

fn no_env(_: &str) -> Option<String> {
    None
}

fn protocol() -> impl Strategy<Value = (&'static str, Protocol)> {
    prop_oneof![
        Just(("tcp", Protocol::Tcp)),
        Just(("udp", Protocol::Udp)),
        Just(("sctp", Protocol::Sctp)),
    ]
}

/// A path as people write it: segments that may be empty, `.` or `..`, maybe a trailing `/`.
fn messy_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        "[a-z][a-z0-9_.-]{0,6}",
    ];
    (prop::collection::vec(segment, 0..8), any::<bool>()).prop_map(|(segs, trailing)| {
        let mut p = format!("/{}", segs.join("/"));
        if trailing {
            p.push('/');
        }
        p
    })
}

fn volume_name() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_.-]{1,12}"
}

proptest! {
    #[test]
    fn parse_port_short_and_long_forms_bind_equal(host in 1u16.., container in 1u16..) {
        let short = parse_port(&format!("{host}:{container}"));
        let long = parse_port(&format!("0.0.0.0:{host}:{container}/tcp"));
        prop_assert!(short.is_ok(), "{:?}", short);
        prop_assert_eq!(short, long);
    }

    #[test]
    fn parse_port_protocol_suffix_forms_bind_equal(
        host in 1u16..,
        container in 1u16..,
        (name, proto) in protocol(),
    ) {
        let short = parse_port(&format!("{host}:{container}/{name}")).expect("short form");
        let long = parse_port(&format!("0.0.0.0:{host}:{container}/{name}")).expect("long form");
        prop_assert_eq!(&short, &long);
        prop_assert_eq!(short.len(), 1);
        prop_assert_eq!(short[0].protocol, proto);
        prop_assert_eq!(short[0].host_port, Some(host));
        prop_assert_eq!(short[0].container_port, container);
        prop_assert_eq!(short[0].host_ip.as_str(), "");
    }

    #[test]
    fn parse_port_container_only_forms_bind_equal(container in 1u16..) {
        // `C`, `C/tcp` and `0.0.0.0::C/tcp` all mean "any free host port".
        let bare = parse_port(&container.to_string()).expect("bare");
        prop_assert_eq!(&bare, &parse_port(&format!("{container}/tcp")).expect("with protocol"));
        prop_assert_eq!(&bare, &parse_port(&format!("0.0.0.0::{container}/tcp")).expect("long form"));
        prop_assert_eq!(bare[0].host_port, None);
    }

    #[test]
    fn parse_port_ranges_expand_pairwise(host in 1u16..60000, container in 1u16..60000, extra in 0u16..16) {
        let short = format!("{host}-{}:{container}-{}", host + extra, container + extra);
        let long = format!("0.0.0.0:{short}/tcp");
        let bindings = parse_port(&short).expect("range");
        prop_assert_eq!(&bindings, &parse_port(&long).expect("long range"));
        prop_assert_eq!(bindings.len(), usize::from(extra) + 1);
        for (i, b) in bindings.iter().enumerate() {
            let i = u16::try_from(i).expect("small");
            prop_assert_eq!(b.host_port, Some(host + i));
            prop_assert_eq!(b.container_port, container + i);
        }
    }

    #[test]
    fn parse_port_ranges_of_different_length_are_errors(
        host in 1u16..60000,
        container in 1u16..60000,
        (h_extra, c_extra) in (0u16..8, 0u16..8).prop_filter("differ", |(a, b)| a != b),
    ) {
        let spec = format!("{host}-{}:{container}-{}", host + h_extra, container + c_extra);
        prop_assert!(parse_port(&spec).is_err(), "{}", spec);
    }

    #[test]
    fn parse_port_printed_binding_parses_back(
        host in 1u16..,
        container in 1u16..,
        ip in prop_oneof![Just(""), Just("127.0.0.1"), Just("10.1.2.3")],
        (name, _) in protocol(),
    ) {
        let spec = if ip.is_empty() {
            format!("{host}:{container}/{name}")
        } else {
            format!("{ip}:{host}:{container}/{name}")
        };
        let [binding] = parse_port(&spec).expect("valid").try_into().expect("one binding");
        let again = parse_port(&binding.to_string()).expect("printed form parses");
        prop_assert_eq!(again, vec![binding]);
    }

    #[test]
    fn parse_port_never_panics(spec in "[0-9a-z.:/\\[\\]-]{0,24}") {
        let _ = parse_port(&spec);
    }

    #[test]
    fn normalize_path_is_idempotent_and_clean(p in messy_path()) {
        let once = normalize_path(&p);
        prop_assert_eq!(normalize_path(&once), once.clone());
        prop_assert!(once.starts_with('/'));
        prop_assert!(once == "/" || !once.ends_with('/'), "{}", once);
        for seg in once.split('/').skip(1) {
            prop_assert!(!matches!(seg, "." | ".."), "{}", once);
            prop_assert!(once == "/" || !seg.is_empty(), "{}", once);
        }
    }

    #[test]
    fn parse_volume_normalizes_idempotently(
        source in prop_oneof![Just(String::new()), messy_path(), volume_name()],
        target in messy_path(),
        mode in prop_oneof![Just(""), Just(":ro"), Just(":rw"), Just(":ro,z")],
    ) {
        let spec = if source.is_empty() {
            format!("{target}{mode}")
        } else {
            format!("{source}:{target}{mode}")
        };
        // An anonymous volume takes no options.
        prop_assume!(!source.is_empty() || mode.is_empty());
        // Nothing mounts over the container's root.
        prop_assume!(normalize_path(&target) != "/");
        let mount = parse_volume(&spec, Some("/repo")).expect("valid spec");
        prop_assert_eq!(&mount.target, &normalize_path(&target));
        if mount.kind == MountKind::Bind {
            prop_assert_eq!(&mount.source, &normalize_path(&source));
        }
        // The normalized form, printed, reads back as itself.
        let again = parse_volume(&mount.to_string(), Some("/repo")).expect("printed form parses");
        prop_assert_eq!(again, mount);
    }

    #[test]
    fn parse_volume_relative_source_stays_inside_the_checkout(
        segs in prop::collection::vec(prop_oneof![Just(".."), Just("."), Just("conf"), Just("repository")], 0..6),
        base in prop_oneof![Just("/repo"), Just("/repo/"), Just("/srv//repo")],
    ) {
        let source = format!("./{}", segs.join("/"));
        let base_norm = normalize_path(base);
        match parse_volume(&format!("{source}:/target"), Some(base)) {
            Ok(mount) => {
                prop_assert_eq!(mount.kind, MountKind::Bind);
                prop_assert!(
                    mount.source == base_norm || mount.source.starts_with(&format!("{base_norm}/")),
                    "{} resolved to {}", source, mount.source
                );
            }
            Err(e) => prop_assert!(e.contains("outside the repository"), "{}", e),
        }
    }

    #[test]
    fn interpolate_string_without_dollar_is_identity(s in "[^$]*") {
        let got = interpolate(&s, &no_env).expect("no variables");
        prop_assert_eq!(got.value, s);
        prop_assert!(got.unset.is_empty());
    }

    #[test]
    fn interpolate_escaped_dollars_read_back_literally(s in ".*") {
        let got = interpolate(&s.replace('$', "$$"), &no_env).expect("only escapes");
        prop_assert_eq!(got.value, s);
    }

    #[test]
    fn interpolate_never_panics(s in "[a-z${}:?+-]{0,24}") {
        let _ = interpolate(&s, &no_env);
    }

    #[test]
    fn parse_duration_number_with_unit_scales(n in 0u64..1_000_000, unit in 0usize..6) {
        let (suffix, factor) = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)][unit];
        prop_assert_eq!(parse_duration_ms(&format!("{n}{suffix}")), Ok(n * factor));
        prop_assert_eq!(parse_duration_ms(&n.to_string()), Ok(n * 1000), "a bare number is seconds");
    }

    #[test]
    fn suggestion_distance_is_a_symmetric_metric(a in "[a-z_]{0,10}", b in "[a-z_]{0,10}") {
        prop_assert_eq!(distance(&a, &b), distance(&b, &a));
        prop_assert_eq!(distance(&a, &a), 0);
        prop_assert_eq!(distance(&a, &b) == 0, a == b);
        prop_assert!(distance(&a, &b) <= a.chars().count().max(b.chars().count()));
        prop_assert_eq!(suggest(&a, [a.as_str()]), Some(a.as_str()));
    }
}

fn digest_suffix() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => "[0-9a-f]{64}".prop_map(|h| format!("@sha256:{h}")),
        1 => "[0-9a-f]{96}".prop_map(|h| format!("@sha384:{h}")),
        1 => "[0-9a-f]{128}".prop_map(|h| format!("@sha512:{h}")),
    ]
}

proptest! {
    /// What `validate` accepts as an image, the pull path (`ImageRef::parse`) reads too: the two
    /// grammars never disagree on an accepted reference.
    #[test]
    fn image_reference_validate_accepts_the_pull_path_parses(
        registry in prop::sample::select(vec!["", "", "localhost/", "localhost:5000/", "reg.example.com/", "Reg.Example.com:443/", "127.0.0.1:5000/"]),
        path in prop_oneof![
            "[a-z0-9]{1,6}((__|[._]|-{1,2})[a-z0-9]{1,4}){0,2}(/[a-z0-9]{1,5}){0,2}",
            "[A-Za-z0-9._/-]{1,12}",
        ],
        tag in "(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,20})?",
        digest in digest_suffix(),
    ) {
        let s = format!("{registry}{path}{tag}{digest}");
        if refinery_core::manifest::grammar::image_reference(&s).is_ok() {
            let parsed = refinery_core::image_ref::ImageRef::parse(&s);
            prop_assert!(parsed.is_ok(), "{}: {:?}", s, parsed);
        }
    }
}
