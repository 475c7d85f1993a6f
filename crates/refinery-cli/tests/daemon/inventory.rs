//! `inventory.schedule` in the daemon: when due, every node is audited (one audit-log line), extras
//! are alerted in the ledger, and on an enforcing node the safe-to-delete set goes, each removal a
//! `death` entry of step `cleanup`.

use std::collections::BTreeMap;

use refinery_core::ContainerRuntime;

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind, resource};

#[tokio::test]
async fn scheduled_inventory_audits_alerts_and_cleans_up() {
    let env = Env::new().await;
    let id = env.run.id().to_owned();
    let scratch = format!("tmp-{id}-scratch");
    let keep = format!("prod-{id}-data");
    let extra = format!("old-volume-{id}");
    for v in [&scratch, &keep, &extra] {
        env.run
            .create_volume(&env.rt, v, &BTreeMap::new())
            .await
            .expect("create volume");
    }
    // Every two seconds (croner takes an optional seconds field).
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n\
         inventory:\n  protected: [\"prod-*\"]\n  safe_to_delete: [\"tmp-*\"]\n\
         \x20 schedule: {{cron: \"*/2 * * * * *\", timezone: Asia/Singapore}}\n",
        env.name("web")
    ));
    let mut daemon = Daemon::start(&env, &[]);

    let volume_id = format!("docker/local/volume/{scratch}");
    let death = daemon
        .wait_entry("cleanup death of the scratch volume", |e| {
            kind(e) == "death" && resource(e) == volume_id
        })
        .await;
    assert_eq!(death["step"], "cleanup", "{death}");
    let alert = daemon
        .wait_entry("an inventory alert", |e| {
            kind(e) == "alert"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("inventory: 1 extra resource on node `local`"))
        })
        .await;
    assert_eq!(alert["level"], "warning", "{alert}");
    let log = env.repo.path().join("ledger/inventory_audit.jsonl");
    let line = eventually("an audit-log line", &mut daemon, || async {
        std::fs::read_to_string(&log)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
    })
    .await;
    let line: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(line["volumes_protected"], serde_json::json!([keep]));
    daemon.stop().await;

    let volumes = env
        .rt
        .list_volumes(Some(&env.run.selector()))
        .await
        .expect("list volumes");
    let mut names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec![extra.as_str(), keep.as_str()],
        "the protected and the extra volume stay"
    );
}
