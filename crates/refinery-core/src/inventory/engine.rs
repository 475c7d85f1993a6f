//! What an engine reports about its images, volumes and networks, in core terms (adapters
//! convert into these). `used_by` is computed over every container on the engine, whatever the
//! selector, so nothing a container uses ever looks unused.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One local image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineImage {
    /// `sha256:…`
    pub id: String,
    /// `repo:tag` references; empty for a dangling image.
    pub tags: Vec<String>,
    /// `repo@sha256:…` references it was pulled by.
    #[serde(default)]
    pub digests: Vec<String>,
    /// Bytes on disk, when the engine says.
    pub size: Option<u64>,
    pub created: Option<Timestamp>,
    pub labels: BTreeMap<String, String>,
    /// Names of the containers (running or stopped) created from it.
    pub used_by: Vec<String>,
}

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineVolume {
    pub name: String,
    /// Bytes on disk, when the engine says (it usually does not outside `docker system df`).
    pub size: Option<u64>,
    pub created: Option<Timestamp>,
    pub labels: BTreeMap<String, String>,
    /// Names of the containers (running or stopped) that mount it.
    pub used_by: Vec<String>,
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineNetwork {
    pub id: String,
    pub name: String,
    pub created: Option<Timestamp>,
    pub labels: BTreeMap<String, String>,
    /// Names of the containers attached to it.
    pub used_by: Vec<String>,
}
