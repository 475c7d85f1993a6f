//! What kind of engine resource an inventory item is.

use std::fmt;

use serde::Serialize;

/// What kind of engine resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Container,
    Image,
    Volume,
    Network,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Container, Kind::Image, Kind::Volume, Kind::Network];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Volume => "volume",
            Kind::Network => "network",
        }
    }

    /// `containers`, as in the audit log's field names.
    #[must_use]
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Container => "containers",
            Kind::Image => "images",
            Kind::Volume => "volumes",
            Kind::Network => "networks",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
