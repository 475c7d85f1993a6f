/// What a resolved revision points to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommitInfo {
    /// Full hex object id.
    pub id: String,
    /// The first 12 hex digits of `id`.
    pub short: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// Author time, seconds since the unix epoch.
    pub time: i64,
    /// The first line of the message (the summary, as git shows it).
    pub summary: String,
}

/// Number of hex digits in [`CommitInfo::short`]: the one short form, `refinery_core::short_id`.
pub use refinery_core::SHORT_ID_LEN;

impl CommitInfo {
    pub(crate) fn short_of(id: &str) -> String {
        refinery_core::short_id(id).to_owned()
    }
}
