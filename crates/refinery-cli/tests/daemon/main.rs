//! `refinery run` end to end: the daemon as a child process against the real Docker engine and a
//! real git repository. Each test owns a run (unique label, cleaned up) and a daemon (its own
//! state directory, killed on drop), so the tests run in parallel.

#[path = "../common/mod.rs"]
mod common;

mod chromium;
mod harness;
mod receiver;

mod alert_channels;
mod chaos;
mod content;
mod gitops;
mod ha;
mod handover;
mod heal;
mod image_updates;
mod inventory;
mod kubernetes;
mod observability;
mod policy;
mod pull_policy;
mod registry_sops;
mod report_only;
mod revisions;
mod secrets;
