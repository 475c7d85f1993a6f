//! The controller of `refinery run` as a library: [`Controller`] owns the reconcile loop and its
//! state; the CLI builds it with real adapters (its ports, [`ports`]) and runs it until a signal.
//! The loop knows each node's engine only through the `ContainerRuntime` port
//! ([`ports::Engine`]): `Controller<R>` is built with a [`ports::NodeConnector`] that makes the
//! clients, the Docker adapter ([`node_engines::DockerConnector`]) in `refinery run`, the fake
//! runtime of `refinery_core::testing` in the controller's tests.
//!
//! Also here, shared with `refinery plan`, `apply` and `status`: loading the desired state
//! ([`desired`]), choosing nodes and their engines ([`node_engines`]), observing and evaluating a
//! node ([`node_pass`]) or a `kubernetes:` source ([`kube_sources`]), content-tracked mounts
//! ([`content_copies`]) and the ledger records of drifts and actions ([`ledger_records`]).
//!
//! The parts of the controller, each an `impl Controller` block named after what it does:
//! - `controller`: the loop, one pass over every node, the halves of a node's pass;
//! - `flap_guard`: flap protection and alert dedup (what a planned step becomes);
//! - `revision_judge`: health of a new revision, rollback past its deadline;
//! - `image_update_judge`: health of an image update (`image_update: {action: recreate}`),
//!   rollback past its deadline, digests held back until the tag moves;
//! - `revision_follow`: a new commit on the branch, switching revisions;
//! - `own_events`: which engine events are Refinery's own, records of outside changes;
//! - `event_watch`: the engine event followers; `triggers`: what their triggers cause;
//! - `ledger_writer`: ledger, state file, ledger commits;
//! - `requests`: `resume`, `rollback`, `alert` and `apply` requests;
//! - `requeue`: what a pass returns ([`PassOutcome`], when to look again) and the error policy
//!   ([`on_error`]);
//! - `apply_handover`: answering `refinery apply`, content copy collection, presence;
//! - `leadership`: `--ha` (only the leader acts);
//! - `gitops`: the calls into the `GitFollow` port (webhooks, commit statuses);
//! - `kube`: the `kubernetes:` sources in a pass;
//! - `inventory_schedule`: the scheduled audit and cleanup;
//! - `interrupted_recreates`: recreates an earlier run left half-done.

mod action_marks;
mod age_keys;
mod apply_handover;
pub mod content_copies;
mod controller;
pub mod desired;
mod error;
mod event_watch;
mod flap_guard;
mod gitops;
mod handover_state;
mod image_update_judge;
mod interrupted_recreates;
mod inventory_schedule;
mod kube;
pub mod kube_sources;
mod leadership;
mod ledger_files;
pub mod ledger_records;
mod ledger_writer;
#[cfg(test)]
mod loop_tests;
pub mod node_engines;
pub mod node_pass;
mod own_events;
pub mod ports;
pub mod pull_refresh;
pub mod registries;
mod registry_alerts;
pub mod registry_tags;
mod requests;
pub mod requeue;
mod revision_follow;
mod revision_judge;
mod state_keys;
#[cfg(test)]
mod tests;
mod triggers;

pub use controller::{Boot, Controller, ControllerOptions, daemon_suspensions, default_state_dir};
pub use error::{ControllerError, Result};
pub use event_watch::{Backlog, Overflow, Trigger};
pub use image_update_judge::{daemon_image_updates, daemon_rejected_updates, keep_trial_images};
pub use requeue::{PassOutcome, Requeue, on_error};
