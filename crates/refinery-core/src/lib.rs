//! Refinery's pure core: types, manifest parsing from in-memory files, normalization, diff, policy,
//! plan. No I/O, no clock, no async runtime: values in, values out.

pub mod action;
pub mod content;
pub mod dotenv;
pub mod error_text;
pub mod hex;
pub mod image_policy;
pub mod image_ref;
pub mod image_trials;
pub mod image_update;
pub mod labels;
pub mod observed;
pub mod outcome;
pub mod policy;
pub mod port_fallback;
pub mod pull_refresh;
pub mod registry_auth;
pub mod resource_id;
pub mod revision;
pub mod runtime;
pub mod secret;
pub mod shard;
pub mod sops;
pub mod spec;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use content::{ContentFile, ContentMount};
pub use extra_options::{
    Blkio, Device, DeviceRequest, ExtraOptions, PullPolicy, Ulimit, UpdateOrder,
};
pub use image_ref::ImageRef;
pub use observed::{
    ContainerState, Health, ImageDefaults, ImageInfo, Observed, ObservedContainer, ObservedNetwork,
    ObservedVolume,
};
pub use outcome::Outcome;
pub use resource_id::{DockerKind, ResourceId};
pub use revision::{Revision, SHORT_ID_LEN, short_id};
pub use runtime::{
    ContainerRuntime, CreateRequest, EngineEvent, EngineInfo, LabelSelector, PullProgress,
    RuntimeError, UnreachableCause,
};
pub use secret::Secret;
pub use shard::Shard;
pub use spec::{
    Bloodline, BuildSpec, ContainerSpec, ContextFile, Dependency, DependencyCondition, Healthcheck,
    Mount, MountKind, NetworkAttachment, NetworkSpec, PortBinding, Protocol, RestartPolicy,
    RuntimeOptions, StackMember, VolumeSpec,
};

pub mod backoff;
pub mod compose;
pub mod daemon_state;
pub mod desired_state;
pub mod duration;
pub mod interpolate;
pub mod inventory;
pub mod ledger;
pub mod manifest;
pub mod revision_health;
pub mod schedule;
pub mod suggestion;
pub mod yaml;

pub use desired_state::{CommitFiles, DesiredState};
pub use manifest::{Issue, LoadOptions, Loaded, Manifest, ManifestError, Mode, load_manifest};
pub mod drift;
pub mod drift_options;
pub mod drift_report;
pub mod drift_resources;
pub mod extra_options;
pub mod plan;

pub use action::Action;
pub use drift::{DiffContext, Drift, DriftKind, DriftReport, FieldChange, diff_node};
pub use plan::{Plan, Step, StepKind, plan};
pub use policy::{Decision, PolicyContext, Verdict, decide};
