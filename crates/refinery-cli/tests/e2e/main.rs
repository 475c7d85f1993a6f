//! End to end: the `refinery` binary against the real Docker engine and real git repositories.
//!
//! Each test makes the drift with a real container, checks what `plan` says (exit 3), fixes it
//! with `apply --yes` and checks `plan` is back to exit 0. Every test owns a run (see
//! `common`), so they run in parallel on one engine without seeing each other.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod compose;
mod compose_schema;
mod config_drift;
mod content_drift;
mod image_policy;
mod inventory;
mod kubernetes;
mod lifecycle;
mod output;
mod port_fallback;
mod pull_policy;
mod registry;
mod registry_sops;
mod secrets;
mod unauthorized;
mod update_order;
