//! The ledger's records, canonical lines and chain verification.

use refinery_core::ledger::{
    Actor, Broken, ChainTip, Entry, Event, EventKind, GENESIS_PREV, Masker, Record, parse_entries,
    parse_entries_from, split_torn, verify, verify_from,
};
use refinery_core::{Bloodline, Outcome, ResourceId, StepKind};

fn time(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn web() -> ResourceId {
    ResourceId::container("lyra", "web")
}

fn bloodline() -> Bloodline {
    Bloodline {
        creator: Some("deployment-script".into()),
        purpose: Some("serves the site".into()),
    }
}

/// A ledger of `n` mixed entries, as file bytes.
fn ledger(n: usize) -> Vec<u8> {
    let mut tip = ChainTip::genesis();
    let masker = Masker::default();
    let mut out = Vec::new();
    for i in 0..n {
        let record = match i % 4 {
            0 => Record::new(Event::Revision {
                from: None,
                to: "0123456789abcdef0123456789abcdef01234567".into(),
            }),
            1 => Record::new(Event::Drift {
                drift: "image".into(),
                summary: "runs `nginx:1.25`, declared `nginx:1.27` — é".into(),
                fields: vec!["image".into()],
            })
            .resource(web()),
            2 => Record::new(Event::for_step(
                StepKind::Recreate,
                Outcome::Recreated,
                None,
                Some("abc".into()),
            ))
            .resource(web())
            .outcome(Outcome::Recreated)
            .bloodline(&bloodline()),
            _ => Record::new(Event::Alert {
                level: "warning".into(),
                message: "line with \"quotes\" and \u{1f} control".into(),
            })
            .actor(Actor::Outside),
        }
        .revision("0123456789abcdef0123456789abcdef01234567");
        let sealed = tip.seal(record, time(i64::try_from(i).unwrap_or(0)), &masker);
        let sealed = sealed.unwrap_or_else(|e| panic!("seal failed: {e}"));
        out.extend_from_slice(sealed.line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The 1-based line holding byte `pos`.
fn line_of(bytes: &[u8], pos: usize) -> u64 {
    1 + bytes[..pos].iter().filter(|&&b| b == b'\n').count() as u64
}

#[test]
fn ledger_verify_sealed_entries_passes() {
    let bytes = ledger(9);
    let verified = verify(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verified.entries, 9);
    assert_eq!(verified.tip.seq, 9);
    let (entries, error) = parse_entries(&bytes);
    assert_eq!(error, None);
    assert_eq!(entries.len(), 9);
    assert_eq!(entries[0].prev, GENESIS_PREV);
    for (i, pair) in entries.windows(2).enumerate() {
        assert_eq!(pair[1].prev, pair[0].hash, "entry {}", i + 2);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    assert_eq!(verified.tip.hash, entries[8].hash);
}

/// The first `n` lines of `bytes`, and the rest.
fn split_after_line(bytes: &[u8], n: usize) -> (&[u8], &[u8]) {
    let pos = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map_or(bytes.len(), |(i, _)| i + 1);
    bytes.split_at(pos)
}

#[test]
fn ledger_verify_from_rotated_tip_continues_chain() {
    let bytes = ledger(9);
    let (first, second) = split_after_line(&bytes, 4);
    let head = verify(first).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(head.tip.seq, 4);
    let rest = verify_from(second, &head.tip).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((rest.entries, rest.tip.seq), (5, 9));
    assert_eq!(rest.tip, verify(&bytes).map(|v| v.tip).unwrap_or_default());
    let (entries, tip, error) = parse_entries_from(second, &head.tip);
    assert_eq!(error, None);
    assert_eq!(entries.first().map(|e| e.seq), Some(5));
    assert_eq!(tip, rest.tip);
    // An empty continuation ends where it started.
    assert_eq!(
        verify_from(b"", &head.tip).map(|v| v.tip),
        Ok(head.tip.clone())
    );
}

#[test]
fn ledger_verify_from_wrong_tip_fails_at_line_one() {
    let bytes = ledger(9);
    let (first, second) = split_after_line(&bytes, 4);
    let (_, rest) = split_after_line(second, 2);
    let head = verify(first).unwrap_or_else(|e| panic!("{e}"));
    // A missing middle file: seq jumps.
    let gap = verify_from(rest, &head.tip).err();
    assert_eq!(gap.as_ref().map(|e| e.line), Some(1));
    assert!(
        matches!(
            gap.map(|e| e.reason),
            Some(Broken::SequenceGap {
                expected: 5,
                found: 7
            })
        ),
        "a gap"
    );
    // The right seq but another chain's hash.
    let other = ChainTip {
        seq: 4,
        hash: "f".repeat(64),
    };
    let wrong = verify_from(second, &other).err();
    assert_eq!(wrong.as_ref().map(|e| e.line), Some(1));
    assert!(matches!(
        wrong.map(|e| e.reason),
        Some(Broken::WrongPrev { .. })
    ));
}

#[test]
fn ledger_verify_empty_ledger_passes() {
    let verified = verify(b"").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verified.entries, 0);
    assert_eq!(verified.tip, ChainTip::genesis());
}

#[test]
fn ledger_seal_line_is_versioned_tagged_and_sorted() {
    let mut tip = ChainTip::genesis();
    let sealed = tip
        .seal(
            Record::new(Event::for_step(
                StepKind::Create,
                Outcome::Created,
                None,
                Some("c1".into()),
            ))
            .resource(web())
            .outcome(Outcome::Created)
            .revision("abc")
            .bloodline(&bloodline()),
            time(0),
            &Masker::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let expected_prefix = concat!(
        r#"{"actor":"refinery","bloodline":{"creator":"deployment-script","purpose":"serves the site"},"#,
        r#""container_id":"c1","hash":""#
    );
    assert!(sealed.line.starts_with(expected_prefix), "{}", sealed.line);
    assert!(
        sealed.line.ends_with(concat!(
            r#"","kind":"birth","node":"lyra","outcome":"created","prev":"0000000000000000000000000000000000000000000000000000000000000000","#,
            r#""resource":"docker/lyra/container/web","revision":"abc","seq":1,"step":"create","time":"2023-11-14T22:13:20Z","v":1}"#
        )),
        "{}",
        sealed.line
    );
    assert_eq!(tip.seq, 1);
    assert_eq!(tip.hash, sealed.entry.hash);
    let parsed: Entry = serde_json::from_str(&sealed.line).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed, sealed.entry);
}

#[test]
fn ledger_verify_any_single_byte_changed_fails_at_its_line() {
    let bytes = ledger(4);
    let mut checked = 0;
    for pos in 0..bytes.len() {
        let original = bytes[pos];
        for replacement in [
            original.wrapping_add(1),
            original ^ 0x20,
            b'\n',
            b' ',
            b'0',
            b'"',
        ] {
            if replacement == original {
                continue;
            }
            let mut tampered = bytes.clone();
            tampered[pos] = replacement;
            let Err(err) = verify(&tampered) else {
                panic!(
                    "byte {pos} ({:?} → {:?}) changed and verify passed",
                    original as char, replacement as char
                );
            };
            assert_eq!(
                err.line,
                line_of(&bytes, pos),
                "byte {pos} ({:?} → {:?}): {err}",
                original as char,
                replacement as char
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn ledger_verify_changed_content_reports_wrong_hash() {
    let bytes = ledger(3);
    let text = String::from_utf8(bytes).unwrap_or_default();
    let tampered = text.replacen("nginx:1.25", "nginx:1.26", 1);
    let err = verify(tampered.as_bytes()).err();
    assert!(
        matches!(err, Some(ref e) if e.line == 2 && matches!(e.reason, Broken::WrongHash { .. })),
        "{err:?}"
    );
}

#[test]
fn ledger_verify_deleted_line_reports_sequence_gap() {
    let bytes = ledger(5);
    let text = String::from_utf8(bytes).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let without_third: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let err = verify(without_third.as_bytes()).err();
    assert_eq!(
        err.map(|e| (e.line, e.reason)),
        Some((
            3,
            Broken::SequenceGap {
                expected: 3,
                found: 4
            }
        ))
    );
}

#[test]
fn ledger_verify_swapped_lines_fails_at_first_swapped() {
    let text = String::from_utf8(ledger(4)).unwrap_or_default();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(1, 2);
    let swapped: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(verify(swapped.as_bytes()).err().map(|e| e.line), Some(2));
}

#[test]
fn ledger_verify_truncated_last_line_reports_torn() {
    let bytes = ledger(3);
    for cut in 1..40 {
        let torn = &bytes[..bytes.len() - cut];
        let err = verify(torn).err();
        assert_eq!(
            err.map(|e| (e.line, e.reason)),
            Some((3, Broken::TornLine)),
            "cut {cut}"
        );
        let (complete, rest) = split_torn(torn);
        assert_eq!(complete.len() + rest.len(), torn.len());
        assert!(verify(complete).is_ok());
    }
}

#[test]
fn ledger_verify_unknown_version_rejected() {
    let mut tip = ChainTip::genesis();
    let sealed = tip
        .seal(
            Record::new(Event::DaemonStart {
                version: "0.1.0".into(),
            }),
            time(0),
            &Masker::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let line = sealed.line.replace("\"v\":1", "\"v\":2");
    let err = verify(format!("{line}\n").as_bytes()).err();
    assert_eq!(
        err.map(|e| e.reason),
        Some(Broken::UnsupportedVersion { found: 2 })
    );
}

#[test]
fn ledger_seal_secrets_in_text_masked() {
    let masker = Masker::new([
        "hunter2".to_owned(),
        "https://discord.com/api/webhooks/9/tok".to_owned(),
    ]);
    let mut tip = ChainTip::genesis();
    let records = [
        Record::new(Event::for_step(
            StepKind::Create,
            Outcome::Failed,
            Some("failed to create: env DB_PASSWORD=hunter2 rejected".into()),
            None,
        )),
        Record::new(Event::Alert {
            level: "error".into(),
            message: "failed to post to https://discord.com/api/webhooks/9/tok".into(),
        }),
        Record::new(Event::Drift {
            drift: "config".into(),
            summary: "API_TOKEN=s3cr3t-value differs".into(),
            fields: vec!["env.API_TOKEN".into()],
        })
        .bloodline(&Bloodline {
            creator: Some("hunter2".into()),
            purpose: None,
        }),
    ];
    let mut file = String::new();
    for r in records {
        let sealed = tip
            .seal(r, time(0), &masker)
            .unwrap_or_else(|e| panic!("{e}"));
        file.push_str(&sealed.line);
        file.push('\n');
    }
    for secret in ["hunter2", "webhooks/9/tok", "s3cr3t-value"] {
        assert!(!file.contains(secret), "`{secret}` leaked: {file}");
    }
    assert!(file.contains("DB_PASSWORD=***"));
    assert!(verify(file.as_bytes()).is_ok());
}

#[test]
fn ledger_event_for_step_outcome_picks_kind() {
    let kind = |step, outcome| Event::for_step(step, outcome, None, None).kind();
    assert_eq!(kind(StepKind::Create, Outcome::Created), EventKind::Birth);
    assert_eq!(kind(StepKind::Remove, Outcome::Removed), EventKind::Death);
    assert_eq!(
        kind(StepKind::Recreate, Outcome::Recreated),
        EventKind::Mutation
    );
    assert_eq!(
        kind(StepKind::Restart, Outcome::Restarted),
        EventKind::Mutation
    );
    assert_eq!(
        kind(StepKind::Rollback, Outcome::RolledBack),
        EventKind::Rollback
    );
    assert_eq!(
        kind(StepKind::Rollback, Outcome::Failed),
        EventKind::Rollback
    );
    assert_eq!(kind(StepKind::Create, Outcome::Failed), EventKind::Action);
    assert!(EventKind::Rollback.is_action());
    assert!(!EventKind::Drift.is_action());
}

#[test]
fn ledger_event_kind_parse_round_trip() {
    for k in EventKind::ALL {
        assert_eq!(k.as_str().parse::<EventKind>(), Ok(k));
    }
    assert_eq!(
        "daemon-start".parse::<EventKind>(),
        Ok(EventKind::DaemonStart)
    );
    assert!("nope".parse::<EventKind>().is_err());
}

#[test]
fn ledger_term_sealed_when_given_absent_otherwise_and_chain_verifies() {
    let mut tip = ChainTip::genesis();
    let masker = Masker::default();
    let mut bytes = Vec::new();
    let records = [
        Record::new(Event::DaemonStart {
            version: "0.1.0".into(),
        }),
        Record::new(Event::LeaderElected {
            holder: "lyra-42".into(),
        })
        .term(Some(7)),
        Record::new(Event::for_step(
            StepKind::Restart,
            Outcome::Restarted,
            None,
            None,
        ))
        .resource(web())
        .outcome(Outcome::Restarted)
        .term(Some(7)),
    ];
    let mut lines = Vec::new();
    for (i, r) in records.into_iter().enumerate() {
        let sealed = tip
            .seal(r, time(i64::try_from(i).unwrap_or(0)), &masker)
            .unwrap_or_else(|e| panic!("seal failed: {e}"));
        bytes.extend_from_slice(sealed.line.as_bytes());
        bytes.push(b'\n');
        lines.push(sealed.line);
    }
    // An entry without a term is byte for byte what it was before terms existed.
    assert!(!lines[0].contains("\"term\""), "{}", lines[0]);
    assert!(
        lines[1].contains("\"kind\":\"leader_elected\""),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("\"holder\":\"lyra-42\""), "{}", lines[1]);
    assert!(lines[2].contains("\"term\":7"), "{}", lines[2]);
    let verified = verify(&bytes).unwrap_or_else(|e| panic!("verify failed: {e}"));
    assert_eq!(verified.entries, 3);
    let (entries, error) = parse_entries(&bytes);
    assert_eq!(error, None);
    assert_eq!(
        entries.iter().map(|e: &Entry| e.term).collect::<Vec<_>>(),
        [None, Some(7), Some(7)]
    );
    assert_eq!(entries[1].event.kind(), EventKind::LeaderElected);
    assert_eq!(
        "leader_elected".parse::<EventKind>(),
        Ok(EventKind::LeaderElected)
    );
}
