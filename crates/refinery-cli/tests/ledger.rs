//! `refinery ledger`: durability under `kill -9`, tamper detection, torn-line repair, `show`
//! filters. No engine needed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use refinery_core::ledger::{ChainTip, Event, Masker, Record};
use refinery_core::{Bloodline, Outcome, ResourceId, StepKind};

fn refinery() -> Command {
    let mut cmd = Command::cargo_bin("refinery").expect("the `refinery` binary is built for tests");
    cmd.env("NO_COLOR", "1")
        .env("CI", "1")
        .env_remove("REFINERY_REPO")
        .env_remove("REFINERY_REV")
        .env_remove("REFINERY_LOG");
    cmd
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Out {
    let output = refinery()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run `refinery`");
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn verify(path: &Path) -> Out {
    run(&["ledger", "verify", "--path", &path.to_string_lossy()])
}

/// `ledger verify --json`: its exit code and the JSON it printed.
fn verify_json(path: &Path) -> (i32, serde_json::Value) {
    let out = run(&[
        "ledger",
        "verify",
        "--json",
        "--path",
        &path.to_string_lossy(),
    ]);
    let v = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    (out.code, v)
}

fn append(path: &Path, count: u64) -> Out {
    append_with(path, count, &[])
}

fn append_with(path: &Path, count: u64, extra: &[&str]) -> Out {
    let p = path.to_string_lossy();
    let n = count.to_string();
    let mut args = vec!["ledger", "append-stress", "--path", &p, "--count", &n];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(out.code, 0, "append-stress failed: {}", out.stderr);
    out
}

/// The rotated files next to the ledger at `path`, oldest first (their names sort).
fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().expect("a parent");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|l| l.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|f| {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        name.is_some_and(|n| {
            n.starts_with(&format!("{stem}.")) && n.ends_with(".jsonl") && n.contains('-')
        })
    });
    files.sort();
    files
}

/// Every `seq` in the ledger at `path` and its rotated files, in order.
fn seqs_in_all(path: &Path) -> Vec<u64> {
    let mut seqs: Vec<u64> = rotated_files(path)
        .iter()
        .flat_map(|f| seqs_in(f))
        .collect();
    if path.exists() {
        seqs.extend(seqs_in(path));
    }
    seqs
}

/// Every `seq` in the ledger file, in order.
fn seqs_in(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).expect("read the ledger");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["seq"].as_u64().expect("a seq")
        })
        .collect()
}

/// A small deterministic PRNG (xorshift64*), seeded from the clock and printed for reruns.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("LEDGER_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(42)
            })
            | 1;
        eprintln!("LEDGER_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn ledger_append_killed_50_times_verify_passes_nothing_reported_lost() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("ledger/container_ledger.jsonl");
    killed_appends_lose_nothing(&path, 50, &[]);
}

/// With a tiny `--max-size` every second entry rotates: kills land mid-rotation too.
#[test]
fn ledger_rotating_append_killed_30_times_verify_passes_nothing_reported_lost() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("ledger/container_ledger.jsonl");
    killed_appends_lose_nothing(&path, 30, &["--max-size", "1KiB"]);
    assert!(
        rotated_files(&path).len() > 10,
        "{:?}",
        rotated_files(&path)
    );
}

/// Kills `append-stress` `rounds` times, mostly mid-stream; then the chain verifies and every
/// seq it reported written is in a file.
fn killed_appends_lose_nothing(path: &Path, rounds: usize, extra: &[&str]) {
    let mut rng = Rng::new();
    let mut reported: Vec<u64> = Vec::new();
    let mut killed_mid_stream = 0;
    for round in 0..rounds {
        let mut child = refinery()
            .args(["ledger", "append-stress", "--path", &path.to_string_lossy()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn append-stress");
        let stdout = child.stdout.take().expect("piped stdout");
        let (first_tx, first_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    // Only whole lines count: a seq is reported once its newline is out.
                    Ok(_) if line.ends_with('\n') => {
                        let seq: u64 = line.trim().parse().expect("a seq per line");
                        if seen.is_empty() {
                            let _ = first_tx.send(());
                        }
                        seen.push(seq);
                    }
                    Ok(_) => break,
                }
            }
            seen
        });
        if round % 5 == 0 {
            // Sometimes while it starts, opens or repairs.
            std::thread::sleep(Duration::from_millis(rng.below(15)));
        } else {
            first_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("append-stress printed a first seq");
            std::thread::sleep(Duration::from_micros(rng.below(30_000)));
            killed_mid_stream += 1;
        }
        child.kill().expect("SIGKILL append-stress");
        let status = child.wait().expect("reap append-stress");
        assert!(
            !status.success(),
            "round {round}: it should have been killed, not finished"
        );
        let seen = reader.join().expect("the reader thread");
        reported.extend(seen);
    }
    eprintln!(
        "{} entries reported over {rounds} kills, {killed_mid_stream} mid-stream",
        reported.len()
    );
    assert!(killed_mid_stream >= rounds * 4 / 5);
    assert!(
        reported.len() > rounds,
        "only {} entries reported",
        reported.len()
    );

    let out = verify(path);
    assert_eq!(
        out.code, 0,
        "verify after {rounds} kills: {}{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("chain intact"), "{}", out.stdout);

    let all = seqs_in_all(path);
    assert_eq!(
        all,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "seqs across files"
    );
    let in_file: std::collections::BTreeSet<u64> = all.into_iter().collect();
    let missing: Vec<&u64> = reported.iter().filter(|s| !in_file.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "reported written but missing: {missing:?}"
    );
    // Also in order and without duplicates: every report is of a distinct entry.
    let mut sorted = reported.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), reported.len(), "a seq was reported twice");
    assert!(reported.windows(2).all(|w| w[0] < w[1]));
}

/// The byte offsets of the start of each line, and the file's length.
fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1),
    );
    starts
}

#[test]
fn ledger_verify_one_byte_changed_anywhere_fails_at_that_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("l.jsonl");
    append(&path, 12);
    assert_eq!(verify(&path).code, 0);
    let original = std::fs::read(&path).expect("read the ledger");
    let starts = line_starts(&original);
    let mut rng = Rng::new();
    for line in 1..=12_usize {
        let (start, end) = (starts[line - 1], starts[line]);
        // First byte, a random byte inside, the newline that ends it.
        for pos in [
            start,
            start + 1 + rng.below((end - start - 2) as u64) as usize,
            end - 1,
        ] {
            let mut tampered = original.clone();
            tampered[pos] = if tampered[pos] == b'x' { b'y' } else { b'x' };
            std::fs::write(&path, &tampered).expect("write the tampered ledger");
            let out = verify(&path);
            assert_eq!(
                out.code, 5,
                "byte {pos} of line {line} changed: {}{}",
                out.stdout, out.stderr
            );
            assert!(
                out.stderr.contains(&format!("at line {line}\n")),
                "byte {pos} of line {line}: {}",
                out.stderr
            );
        }
    }
    std::fs::write(&path, &original).expect("restore the ledger");
    assert_eq!(verify(&path).code, 0);
}

#[test]
fn ledger_verify_broken_names_line_reason_and_json() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("l.jsonl");
    append(&path, 5);
    let text = std::fs::read_to_string(&path).expect("read");
    let tampered = text.replacen("stress append 2", "stress append 9", 1);
    std::fs::write(&path, tampered).expect("write");
    let out = verify(&path);
    assert_eq!(out.code, 5);
    assert!(
        out.stderr.starts_with(&format!(
            "error: failed to verify ledger `{}` at line 3\n",
            path.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("caused by: wrong hash"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: the first 2 entries are intact"),
        "{}",
        out.stderr
    );

    let (code, v) = verify_json(&path);
    assert_eq!(code, 5);
    assert_eq!(v["ok"], false);
    assert_eq!(v["line"], 3);
    assert_eq!(v["entries"], 2);

    // Appending to a broken ledger is refused, not papered over.
    let refused = run(&[
        "ledger",
        "append-stress",
        "--path",
        &path.to_string_lossy(),
        "--count",
        "1",
    ]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
}

#[test]
fn ledger_torn_last_line_detected_then_repaired_and_recorded() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("l.jsonl");
    append(&path, 4);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 17]).expect("tear the last line");

    let out = verify(&path);
    assert_eq!(out.code, 5);
    assert!(out.stderr.contains("at line 4\n"), "{}", out.stderr);
    assert!(out.stderr.contains("torn"), "{}", out.stderr);

    let repaired = append(&path, 2);
    assert!(
        repaired.stderr.contains("repaired: torn line 4"),
        "{}",
        repaired.stderr
    );
    assert_eq!(repaired.stdout, "5\n6\n", "the repair entry takes seq 4");
    assert_eq!(verify(&path).code, 0);
    assert_eq!(seqs_in(&path), vec![1, 2, 3, 4, 5, 6]);

    let show = run(&[
        "ledger",
        "show",
        "--kind",
        "repair",
        "--json",
        "--path",
        &path.to_string_lossy(),
    ]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("JSON");
    let entries = v["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "repair");
    assert_eq!(entries[0]["line"], 4);
    assert_eq!(
        entries[0]["torn_bytes"],
        bytes.len() as u64 - 17 - (line_starts(&bytes)[3] as u64)
    );
}

/// A ledger of mixed entries at known times before now: returns its path.
fn mixed_ledger(dir: &Path) -> PathBuf {
    let now = jiff::Timestamp::now();
    let ago = |mins: i64| {
        now.checked_sub(jiff::SignedDuration::from_mins(mins))
            .expect("a time")
    };
    let web = ResourceId::container("lyra", "web");
    let db = ResourceId::container("vega", "db");
    let bloodline = Bloodline {
        creator: Some("deployment-script".into()),
        purpose: Some("serves the site".into()),
    };
    let records = vec![
        (
            ago(180),
            Record::new(Event::Revision {
                from: None,
                to: "a".repeat(40),
            })
            .revision("a".repeat(40)),
        ),
        (
            ago(170),
            Record::new(Event::Drift {
                drift: "image".into(),
                summary: "runs `nginx:1.25`, declared `nginx:1.27`".into(),
                fields: vec!["image".into()],
            })
            .resource(web.clone()),
        ),
        (
            ago(169),
            Record::new(Event::for_step(
                StepKind::Rollback,
                Outcome::RolledBack,
                None,
                None,
            ))
            .resource(web.clone())
            .outcome(Outcome::RolledBack)
            .bloodline(&bloodline),
        ),
        (
            ago(20),
            Record::new(Event::Drift {
                drift: "missing".into(),
                summary: "absent".into(),
                fields: vec![],
            })
            .resource(db.clone()),
        ),
        (
            ago(19),
            Record::new(Event::for_step(
                StepKind::Create,
                Outcome::Created,
                None,
                Some("c0ffee".into()),
            ))
            .resource(db.clone())
            .outcome(Outcome::Created),
        ),
    ];
    let mut tip = ChainTip::genesis();
    let mut text = String::new();
    for (time, r) in records {
        let sealed = tip.seal(r, time, &Masker::default()).expect("seal");
        text.push_str(&sealed.line);
        text.push('\n');
    }
    let path = dir.join("ledger/container_ledger.jsonl");
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&path, text).expect("write the ledger");
    path
}

fn kinds_shown(args: &[&str], path: &Path) -> Vec<String> {
    let mut full = vec!["ledger", "show", "--json"];
    full.extend_from_slice(args);
    let p = path.to_string_lossy();
    full.extend_from_slice(&["--path", &p]);
    let out = run(&full);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| format!("{}:{}", e["seq"], e["kind"].as_str().unwrap_or("?")))
        .collect()
}

#[test]
fn ledger_show_filters_select_views() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = mixed_ledger(dir.path());
    assert_eq!(
        kinds_shown(&[], &path),
        ["1:revision", "2:drift", "3:rollback", "4:drift", "5:birth"]
    );
    assert_eq!(
        kinds_shown(&["--kind", "drift"], &path),
        ["2:drift", "4:drift"]
    );
    assert_eq!(kinds_shown(&["--kind", "rollback"], &path), ["3:rollback"]);
    assert_eq!(
        kinds_shown(&["--kind", "action"], &path),
        ["3:rollback", "5:birth"]
    );
    assert_eq!(
        kinds_shown(&["--kind", "drift", "--kind", "birth"], &path),
        ["2:drift", "4:drift", "5:birth"]
    );
    assert_eq!(
        kinds_shown(&["--since", "1h"], &path),
        ["4:drift", "5:birth"]
    );
    assert_eq!(
        kinds_shown(&["--node", "lyra"], &path),
        ["2:drift", "3:rollback"]
    );
    assert_eq!(
        kinds_shown(&["--resource", "docker/vega/container/db"], &path),
        ["4:drift", "5:birth"]
    );
    assert_eq!(
        kinds_shown(&["--since", "1h", "--kind", "drift"], &path),
        ["4:drift"]
    );
}

#[test]
fn ledger_show_table_is_readable() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = mixed_ledger(dir.path());
    let out = run(&[
        "ledger",
        "show",
        "--kind",
        "drift",
        "--path",
        &path.to_string_lossy(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].starts_with("SEQ  TIME"), "{}", out.stdout);
    assert!(lines[0].contains("KIND"));
    assert!(
        lines[1].contains("drift  lyra  docker/lyra/container/web  -"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].ends_with("image: runs `nginx:1.25`, declared `nginx:1.27`"),
        "{}",
        out.stdout
    );
    assert!(lines[2].ends_with("missing: absent"), "{}", out.stdout);

    let bad = run(&[
        "ledger",
        "show",
        "--kind",
        "nope",
        "--path",
        &path.to_string_lossy(),
    ]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("`nope` is not a ledger entry kind"),
        "{}",
        bad.stderr
    );
}

#[test]
fn ledger_default_path_without_manifest_is_under_repo() {
    let dir = tempfile::tempdir().expect("a temp dir");
    mixed_ledger(dir.path());
    let out = run(&["ledger", "verify", "--repo", &dir.path().to_string_lossy()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("ledger/container_ledger.jsonl`: 5 entries, chain intact"),
        "{}",
        out.stdout
    );

    let empty = tempfile::tempdir().expect("a temp dir");
    let missing = run(&[
        "ledger",
        "verify",
        "--repo",
        &empty.path().to_string_lossy(),
    ]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("hint: no ledger at"),
        "{}",
        missing.stderr
    );
}

#[test]
fn ledger_show_broken_prints_intact_entries_then_fails() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = mixed_ledger(dir.path());
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replacen("absent", "abseNt", 1)).expect("write");
    let out = run(&["ledger", "show", "--path", &path.to_string_lossy()]);
    assert_eq!(out.code, 5);
    assert_eq!(
        out.stdout.lines().count(),
        4,
        "header and 3 intact entries: {}",
        out.stdout
    );
    assert!(out.stderr.contains("at line 4"), "{}", out.stderr);
}

/// A ledger of `n` entries, far more than a pipe holds once printed.
fn long_ledger(dir: &Path, n: usize) -> PathBuf {
    let mut tip = ChainTip::genesis();
    let mut text = String::new();
    let web = ResourceId::container("lyra", "web");
    for i in 0..n {
        let record = Record::new(Event::Alert {
            level: "info".into(),
            message: format!("entry {i} of a long ledger, with some words to make the line long"),
        })
        .resource(web.clone());
        let sealed = tip
            .seal(record, jiff::Timestamp::now(), &Masker::default())
            .expect("seal");
        text.push_str(&sealed.line);
        text.push('\n');
    }
    let path = dir.join("long.jsonl");
    std::fs::write(&path, text).expect("write the ledger");
    path
}

/// Runs `refinery args` with stdout a pipe whose reader reads `keep` bytes and goes away (as
/// `| head -c keep` does): the exit code and stderr.
fn run_reader_leaves(args: &[&str], keep: usize) -> (i32, String) {
    use std::io::Read;
    let mut child = refinery()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run `refinery`");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = vec![0; keep];
    stdout.read_exact(&mut first).expect("the first bytes");
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("wait");
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn ledger_show_into_a_closed_pipe_exits_0_quietly() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = long_ledger(dir.path(), 5000);
    let p = path.to_string_lossy();
    for args in [
        vec!["ledger", "show", "--path", &p],
        vec!["ledger", "show", "--json", "--path", &p],
        vec!["ledger", "show", "--kind", "alert", "--path", &p],
    ] {
        let (code, stderr) = run_reader_leaves(&args, 10);
        assert_eq!((code, stderr.as_str()), (0, ""), "{args:?}");
    }
}

#[test]
fn ledger_stress_appends_fast_enough() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("l.jsonl");
    let started = Instant::now();
    let out = append(&path, 200);
    assert_eq!(out.stdout.lines().count(), 200);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(verify(&path).code, 0);
}

/// Appends `rounds` batches of `count` entries with a tiny `--max-size`: several rotated files.
fn rotated_ledger(path: &Path, rounds: usize, count: u64) {
    for _ in 0..rounds {
        append_with(path, count, &["--max-size", "2KiB"]);
    }
}

fn entry_json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).expect("a JSON line")
}

#[test]
fn ledger_rotation_keeps_chain_verify_and_show_read_every_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("ledger/container_ledger.jsonl");
    rotated_ledger(&path, 3, 10);
    let rotated = rotated_files(&path);
    assert!(rotated.len() >= 5, "{rotated:?}");
    let first_name = rotated[0]
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        first_name.starts_with("container_ledger.000001-0000"),
        "{first_name}"
    );
    // Every file is at most the limit and starts where the one before ended.
    let mut files = rotated.clone();
    files.push(path.clone());
    let mut last: Option<serde_json::Value> = None;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        assert!(text.len() <= 2048, "{}: {} bytes", f.display(), text.len());
        let first = entry_json(text.lines().next().expect("a first line"));
        if let Some(last) = &last {
            assert_eq!(first["prev"], last["hash"], "{}", f.display());
            assert_eq!(first["seq"].as_u64(), last["seq"].as_u64().map(|s| s + 1));
        }
        last = text.lines().last().map(entry_json);
    }
    assert_eq!(seqs_in_all(&path), (1..=30).collect::<Vec<_>>());

    let out = verify(&path);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "` and {} rotated files: 30 entries, chain intact (last seq 30,",
            rotated.len()
        )),
        "{}",
        out.stdout
    );
    let (_, v) = verify_json(&path);
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], 30);
    assert_eq!(v["files"].as_array().map(Vec::len), Some(rotated.len() + 1));

    let shown = kinds_shown(&[], &path);
    assert_eq!(shown.len(), 30);
    assert_eq!(shown[0], "1:mutation");
    assert_eq!(shown[29], "30:mutation");
}

#[test]
fn ledger_rotated_file_one_byte_changed_fails_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("ledger/container_ledger.jsonl");
    rotated_ledger(&path, 2, 10);
    let rotated = rotated_files(&path);
    assert!(rotated.len() >= 3, "{rotated:?}");
    for victim in [&rotated[1], rotated.last().expect("a newest")] {
        let original = std::fs::read(victim).expect("read");
        let starts = line_starts(&original);
        let pos = starts[1] + 20;
        let mut tampered = original.clone();
        tampered[pos] = if tampered[pos] == b'x' { b'y' } else { b'x' };
        std::fs::write(victim, &tampered).expect("tamper");

        let out = verify(&path);
        assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.starts_with(&format!(
                "error: failed to verify ledger `{}` at line 2\n",
                victim.display()
            )),
            "{}",
            out.stderr
        );
        let (_, v) = verify_json(&path);
        assert_eq!(v["ok"], false);
        assert_eq!(v["file"], victim.display().to_string());
        assert_eq!(v["line"], 2);
        let show = run(&["ledger", "show", "--path", &path.to_string_lossy()]);
        assert_eq!(show.code, 5);
        assert!(
            show.stderr
                .contains(&format!("`{}` at line 2", victim.display())),
            "{}",
            show.stderr
        );
        std::fs::write(victim, &original).expect("restore");
    }
    // The writer checks the newest rotated file line by line before it appends.
    let newest = rotated.last().expect("a newest");
    let original = std::fs::read(newest).expect("read");
    std::fs::write(
        newest,
        String::from_utf8_lossy(&original).replacen("stress append", "stress appenD", 1),
    )
    .expect("tamper");
    let refused = run(&[
        "ledger",
        "append-stress",
        "--path",
        &path.to_string_lossy(),
        "--count",
        "1",
    ]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("`{}` at line 1", newest.display())),
        "{}",
        refused.stderr
    );
    std::fs::write(newest, &original).expect("restore");
    assert_eq!(verify(&path).code, 0);
}

#[test]
fn ledger_rotated_file_deleted_is_reported_and_stops_the_writer() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("ledger/container_ledger.jsonl");
    rotated_ledger(&path, 2, 10);
    let rotated = rotated_files(&path);
    assert!(rotated.len() >= 3, "{rotated:?}");
    let gone = &rotated[1];
    let gone_seqs = seqs_in(gone);
    std::fs::remove_file(gone).expect("delete a rotated file");

    let out = verify(&path);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "error: failed to verify ledger `{}` at line 1\n",
            rotated[2].display()
        )),
        "{}",
        out.stderr
    );
    let (first, last) = (gone_seqs[0], gone_seqs[gone_seqs.len() - 1]);
    assert!(
        out.stderr.contains(&format!(
            "hint: entries {first}-{last} are missing before this file"
        )),
        "{}",
        out.stderr
    );
    let refused = run(&[
        "ledger",
        "append-stress",
        "--path",
        &path.to_string_lossy(),
        "--count",
        "1",
    ]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);

    // The oldest file gone is a gap too, before the first line of the next.
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("l.jsonl");
    rotated_ledger(&path, 1, 10);
    let rotated = rotated_files(&path);
    std::fs::remove_file(&rotated[0]).expect("delete the oldest");
    let out = verify(&path);
    assert_eq!(out.code, 5);
    assert!(
        out.stderr
            .contains(&format!("`{}` at line 1", rotated[1].display())),
        "{}",
        out.stderr
    );
}

#[test]
fn ledger_second_writer_gets_lock_error_readers_do_not_wait() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("l.jsonl");
    let mut first = refinery()
        .args(["ledger", "append-stress", "--path", &path.to_string_lossy()])
        .args(["--max-size", "4KiB"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn append-stress");
    let mut stdout = BufReader::new(first.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a first seq");
    assert_eq!(line, "1\n");

    let second = run(&[
        "ledger",
        "append-stress",
        "--path",
        &path.to_string_lossy(),
        "--count",
        "1",
    ]);
    // Readers take no lock, and see an intact chain while the writer appends and rotates.
    let verified = verify(&path);
    let shown = run(&[
        "ledger",
        "show",
        "--json",
        "--path",
        &path.to_string_lossy(),
    ]);
    first.kill().expect("SIGKILL the first writer");
    let _ = first.wait();

    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second.stderr.starts_with(&format!(
            "error: failed to lock ledger `{}`: another refinery is writing it\n",
            path.display()
        )),
        "{}",
        second.stderr
    );
    assert!(
        second
            .stderr
            .contains("hint: wait for the other `refinery apply` or daemon"),
        "{}",
        second.stderr
    );
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert_eq!(shown.code, 0, "{}", shown.stderr);

    // The lock dies with its process: the next writer goes on.
    let after = append(&path, 1);
    assert!(!after.stdout.is_empty());
    assert_eq!(verify(&path).code, 0);
}
