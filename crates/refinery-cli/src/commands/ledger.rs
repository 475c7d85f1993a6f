//! `refinery ledger verify` and `refinery ledger show` (and the hidden `append-stress`).

use refinery_core::short_id as short;
use std::io::Write;
use std::path::PathBuf;

use refinery_core::ledger::{Entry, Event, EventKind, Masker, Record};
use refinery_core::manifest::LedgerConfig;
use refinery_core::{Bloodline, Outcome, ResourceId, StepKind};
use refinery_store::ledger_file;
use refinery_store::{LedgerError, LedgerFile, LedgerOptions, commit_ledger, masker_for};
use serde::Serialize;

use crate::args::{LedgerArgs, LedgerCommand, LedgerPathArgs, LedgerShowArgs, LedgerStressArgs};
use crate::error::CliError;
use crate::exit_code;
use crate::output;
use crate::render::{self, Styles};
use crate::settings::Settings;
use refinery_controller::desired;

pub fn run(settings: &Settings, args: &LedgerArgs) -> Result<u8, CliError> {
    match &args.command {
        LedgerCommand::Verify(a) => verify(settings, a),
        LedgerCommand::Show(a) => show(settings, a),
        LedgerCommand::AppendStress(a) => append_stress(a),
    }
}

/// `--path`, else the manifest's `ledger.path` in the work tree (`--shard`: that shard's file
/// beside it), else the default path there.
#[must_use]
pub fn resolve_path(settings: &Settings, a: &LedgerPathArgs) -> PathBuf {
    if let Some(p) = &a.path {
        return p.clone();
    }
    let rel = desired::load(&settings.repo, &settings.rev)
        .map(|d| d.manifest.ledger.path)
        .unwrap_or_else(|_| LedgerConfig::default().path);
    settings
        .repo
        .join(a.shard.map_or_else(|| rel.clone(), |s| s.ledger_path(&rel)))
}

/// What `ledger verify` found.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    path: String,
    /// Every file read, rotated ones first, the active one last.
    files: Vec<String>,
    ok: bool,
    /// Intact entries (before the bad line, if any), over all files.
    entries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tip_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tip_hash: Option<String>,
    /// The file holding the bad line, when it is not `path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn verify(settings: &Settings, a: &LedgerPathArgs) -> Result<u8, CliError> {
    let path = resolve_path(settings, a);
    let chain = ledger_file::read_chain(&path, false)?;
    let files: Vec<String> = chain
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let mut report = VerifyReport {
        path: path.display().to_string(),
        files,
        ok: chain.error.is_none(),
        entries: chain.intact,
        tip_seq: None,
        tip_hash: None,
        file: None,
        line: None,
        reason: None,
    };
    match chain.error {
        None => {
            report.tip_seq = Some(chain.tip.seq);
            report.tip_hash = Some(chain.tip.hash);
            if settings.json {
                output::json(&report)?;
            } else {
                output::print(&render_verify(&report, &settings.styles()))?;
            }
            Ok(exit_code::OK)
        }
        Some(e) => {
            // The text form is the error itself (stderr); `--json` says it on stdout too.
            if settings.json
                && let LedgerError::Broken {
                    path: bad,
                    line,
                    intact,
                    reason,
                } = &e
            {
                report.entries = *intact;
                report.file = (bad != &path).then(|| bad.display().to_string());
                report.line = Some(*line);
                report.reason = Some(reason.to_string());
                output::json(&report)?;
            }
            Err(e.into())
        }
    }
}

/// `ledger `P` and N rotated files: N entries, chain intact (last seq S, hash H)`, for an intact
/// chain.
#[must_use]
pub fn render_verify(r: &VerifyReport, _styles: &Styles) -> String {
    let short: String = r
        .tip_hash
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(12)
        .collect();
    let also = match r.files.len().saturating_sub(1) {
        0 => String::new(),
        1 => " and 1 rotated file".to_owned(),
        n => format!(" and {n} rotated files"),
    };
    format!(
        "ledger `{}`{also}: {} entr{}, chain intact (last seq {}, hash {short})\n",
        r.path,
        r.entries,
        if r.entries == 1 { "y" } else { "ies" },
        r.tip_seq.unwrap_or(0)
    )
}

/// The entries `ledger show` selected.
#[derive(Debug, Serialize)]
pub struct ShowReport<'a> {
    path: String,
    entries: Vec<&'a Entry>,
}

fn show(settings: &Settings, a: &LedgerShowArgs) -> Result<u8, CliError> {
    let path = resolve_path(settings, &a.path);
    let chain = ledger_file::read_chain(&path, true)?;
    let entries = chain.entries;
    let error = chain.error;
    let since = match a.since {
        Some(ms) => {
            let ms = i64::try_from(ms).unwrap_or(i64::MAX);
            Some(
                settings
                    .now
                    .checked_sub(jiff::SignedDuration::from_millis(ms))
                    .unwrap_or(jiff::Timestamp::MIN),
            )
        }
        None => None,
    };
    let filter = Filter {
        since,
        nodes: &settings.nodes,
        resource: a.resource.as_deref(),
        kinds: &a.kind,
    };
    let report = ShowReport {
        path: path.display().to_string(),
        entries: entries.iter().filter(|e| filter.matches(e)).collect(),
    };
    if settings.json {
        output::json(&report)?;
    } else {
        output::print(&render_show(&report, &settings.styles()))?;
    }
    match error {
        // Everything before the bad line was shown; the break itself is the error.
        Some(e) => Err(e.into()),
        None => Ok(exit_code::OK),
    }
}

/// Which entries `ledger show` prints.
struct Filter<'a> {
    since: Option<jiff::Timestamp>,
    nodes: &'a [String],
    resource: Option<&'a str>,
    kinds: &'a [EventKind],
}

impl Filter<'_> {
    fn matches(&self, e: &Entry) -> bool {
        let kind = e.event.kind();
        self.since.is_none_or(|t| e.time >= t)
            && (self.nodes.is_empty() || e.node.as_ref().is_some_and(|n| self.nodes.contains(n)))
            && self
                .resource
                .is_none_or(|r| e.resource.as_ref().is_some_and(|id| id.to_string() == r))
            && (self.kinds.is_empty()
                || self
                    .kinds
                    .iter()
                    .any(|&k| k == kind || (k == EventKind::Action && kind.is_action())))
    }
}

/// The `ledger show` table: `SEQ TIME KIND NODE RESOURCE OUTCOME DETAIL`.
#[must_use]
pub fn render_show(r: &ShowReport<'_>, _styles: &Styles) -> String {
    let rows = r
        .entries
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                e.time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                e.event.kind().to_string(),
                e.node.clone().unwrap_or_else(|| "-".into()),
                e.resource
                    .as_ref()
                    .map_or_else(|| "-".into(), ToString::to_string),
                e.outcome
                    .map_or_else(|| "-".into(), |o| o.as_str().to_owned()),
                refinery_store::entry_detail(e),
            ]
        })
        .collect();
    render::table(
        &[
            "SEQ", "TIME", "KIND", "NODE", "RESOURCE", "OUTCOME", "DETAIL",
        ],
        rows,
    )
}

/// Appends entries one by one, printing each seq after its fsync; for `kill -9` tests.
fn append_stress(a: &LedgerStressArgs) -> Result<u8, CliError> {
    let (mut file, repaired) = LedgerFile::open_with(
        &a.path,
        jiff::Timestamp::now(),
        Masker::default(),
        LedgerOptions::default().max_size(a.max_size),
    )?;
    if let Some(r) = repaired {
        eprintln!(
            "repaired: torn line {} ({} bytes) cut off",
            r.line, r.torn_bytes
        );
    }
    let id = ResourceId::container("stress", "appender");
    let bloodline = Bloodline {
        creator: Some("append-stress".into()),
        purpose: Some("durability test".into()),
    };
    let mut out = std::io::stdout().lock();
    for i in 0..a.count {
        let record = Record::new(Event::for_step(
            StepKind::Restart,
            Outcome::Restarted,
            Some(format!("stress append {i}")),
            None,
        ))
        .resource(id.clone())
        .outcome(Outcome::Restarted)
        .revision("stress")
        .bloodline(&bloodline);
        let entries = file.append(vec![record], jiff::Timestamp::now())?;
        for e in entries {
            if writeln!(out, "{}", e.seq)
                .and_then(|()| out.flush())
                .is_err()
            {
                // The reader went away (broken pipe): stop quietly.
                return Ok(exit_code::OK);
            }
        }
    }
    Ok(exit_code::OK)
}

/// Opens the ledger `apply` records to (the manifest's `ledger.path` in the work tree), its chain
/// verified and a torn last line repaired; a broken chain stops `apply` before it acts.
pub fn open_for_apply(settings: &Settings, d: &desired::Desired) -> Result<LedgerFile, CliError> {
    let path = settings.repo.join(&d.manifest.ledger.path);
    let (file, repaired) = LedgerFile::open_with(
        &path,
        settings.now,
        masker_for(&d.manifest),
        LedgerOptions::default().max_size(d.manifest.ledger.max_size),
    )?;
    if let Some(r) = repaired
        && !settings.quiet
    {
        eprintln!(
            "warning: ledger `{}`: torn line {} ({} bytes, a write cut off by a crash) cut off and recorded",
            path.display(),
            r.line,
            r.torn_bytes
        );
    }
    Ok(file)
}

/// Records one apply: a `revision` entry, a `drift` entry per drift found and one entry per
/// step that wrote to an engine; written and fsynced before this returns.
pub fn record_apply(
    file: &mut LedgerFile,
    d: &desired::Desired,
    drifts: &[&refinery_core::Drift],
    results: &[refinery_engine::StepResult],
    kube: &[refinery_controller::kube_sources::KubePass],
    now: jiff::Timestamp,
) -> Result<Vec<Entry>, LedgerError> {
    // A Kubernetes object's entries name its source (`k8s/<source>`) as their node, as the
    // daemon's do.
    let node_of = |r: Record, id: &refinery_core::ResourceId| {
        match refinery_controller::kube_sources::label_of(kube, id) {
            Some(label) => r.node(label),
            None => r,
        }
    };
    let rev = &d.commit.id;
    let manifest = &d.manifest;
    let mut records = vec![
        Record::new(Event::Revision {
            from: file.last_revision().map(str::to_owned),
            to: rev.clone(),
        })
        .revision(rev),
    ];
    records.extend(drifts.iter().map(|drift| {
        node_of(
            refinery_controller::ledger_records::drift(manifest, drift, rev),
            &drift.id,
        )
    }));
    records.extend(results.iter().filter(|r| r.step.writes()).map(|r| {
        node_of(
            refinery_controller::ledger_records::step(manifest, r, rev),
            &r.id,
        )
    }));
    file.append(records, now)
}

/// With `config.git_auto_commit`, commits the ledger to `ledger.ref` of a non-bare repository.
/// Never fails the caller: a failure is a warning, and the entries go with the next commit.
pub fn commit_after_apply(settings: &Settings, d: &desired::Desired, file: &LedgerFile) {
    let manifest = &d.manifest;
    if !manifest.config.git_auto_commit {
        return;
    }
    let bare =
        refinery_git::GitSource::open(&settings.repo).map_or(true, |g| g.workdir().is_none());
    if bare {
        return;
    }
    let git_ref = &manifest.ledger.git_ref;
    let result = commit_ledger(
        &settings.repo,
        git_ref,
        &manifest.ledger.path,
        file.path(),
        &d.commit.id,
        settings.now.as_second(),
    );
    match result {
        Ok(Some(c)) => {
            if settings.verbose > 0 {
                eprintln!(
                    "ledger: committed {} entries (seq {}-{}) to `{git_ref}` as {}",
                    c.entries,
                    c.first_seq,
                    c.last_seq,
                    short(&c.id)
                );
            }
        }
        Ok(None) => {}
        Err(e) => {
            if !settings.quiet {
                eprintln!(
                    "warning: failed to commit the ledger to `{git_ref}`: {e}; the entries stay in `{}` and go with the next commit",
                    file.path().display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use refinery_core::ledger::ChainTip;

    use super::*;

    const STYLES: Styles = Styles { color: false };

    /// A few sealed entries at fixed times: what `ledger show` reads from a file.
    fn entries() -> Vec<Entry> {
        let at = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).expect("a time");
        let web = ResourceId::container("lyra", "web");
        let rev = "1ff767bb0c6e2a9d4f5b8c7e1a2b3c4d5e6f7a8b";
        let records = [
            Record::new(Event::Revision {
                from: None,
                to: rev.into(),
            })
            .revision(rev),
            Record::new(Event::Drift {
                drift: "missing".into(),
                summary: "not on the engine".into(),
                fields: Vec::new(),
            })
            .resource(web.clone())
            .node("lyra")
            .revision(rev),
            Record::new(Event::for_step(
                StepKind::Create,
                Outcome::Created,
                None,
                Some("c0ffee".into()),
            ))
            .resource(web)
            .node("lyra")
            .outcome(Outcome::Created)
            .revision(rev),
        ];
        let mut tip = ChainTip::genesis();
        records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                tip.seal(r, at(i64::try_from(i).unwrap_or(0)), &Masker::default())
                    .expect("seal")
                    .entry
            })
            .collect()
    }

    #[test]
    fn ledger_show_renders_one_row_per_entry() {
        let entries = entries();
        let report = ShowReport {
            path: "ledger/container_ledger.jsonl".into(),
            entries: entries.iter().collect(),
        };
        insta::assert_snapshot!(render_show(&report, &STYLES), @r"
        SEQ  TIME                  KIND      NODE  RESOURCE                   OUTCOME  DETAIL
        1    2027-01-15T08:00:00Z  revision  -     -                          -        at 1ff767bb0c6e
        2    2027-01-15T08:00:01Z  drift     lyra  docker/lyra/container/web  -        missing: not on the engine
        3    2027-01-15T08:00:02Z  birth     lyra  docker/lyra/container/web  created  create
        ");
    }

    #[test]
    fn ledger_verify_renders_entries_rotated_files_and_tip() {
        let report = VerifyReport {
            path: "ledger/container_ledger.jsonl".into(),
            files: vec![
                "ledger/container_ledger.000001-000004.jsonl".into(),
                "ledger/container_ledger.jsonl".into(),
            ],
            ok: true,
            entries: 9,
            tip_seq: Some(9),
            tip_hash: Some(
                "ce29a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e".into(),
            ),
            file: None,
            line: None,
            reason: None,
        };
        insta::assert_snapshot!(render_verify(&report, &STYLES), @"ledger `ledger/container_ledger.jsonl` and 1 rotated file: 9 entries, chain intact (last seq 9, hash ce29a1b2c3d4)");
    }
}
