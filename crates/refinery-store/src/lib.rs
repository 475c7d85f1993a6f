//! The files Refinery keeps on disk, for the commands and the daemon alike: the hash-chained
//! ledger file and its commits to a git ref, the inventory audit log, the daemon's and the
//! inventory's state files, the registry of running daemons and the queue of requests to them.
//! Nothing here decides anything: formats and atomic, fsynced writes.

pub mod audit_log;
pub mod entry_detail;
pub mod inventory_state_file;
pub mod ledger_commit;
pub mod ledger_file;
pub mod ledger_masker;
pub mod request_queue;
pub mod running_daemons;
pub mod state_file;

pub use entry_detail::entry_detail;
pub use ledger_commit::{LedgerCommit, commit_ledger};
pub use ledger_file::{LedgerError, LedgerFile, LedgerOptions};
pub use ledger_masker::masker_for;
pub use state_file::StateError;
