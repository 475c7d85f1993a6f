//! What kind of engine resource an inventory item is: the kind segment of its resource id.

pub use crate::resource_id::DockerKind as Kind;
