//! Documented exit codes. Never renumbered; new ones are only appended.

/// Success: the command did what was asked (for `plan`: everything is in sync).
pub const OK: u8 = 0;
/// Something unexpected went wrong (a bug, an I/O error).
pub const UNEXPECTED: u8 = 1;
/// Bad usage or an invalid manifest: nothing was done.
pub const USAGE: u8 = 2;
/// `plan`/`status`: drift was found.
pub const DRIFT: u8 = 3;
/// A node's engine could not be reached.
pub const UNREACHABLE: u8 = 4;
/// The ledger's hash chain is broken (`refinery ledger verify`).
pub const LEDGER_BROKEN: u8 = 5;
/// `apply`: at least one action failed (the others were still carried out).
pub const ACTION_FAILED: u8 = 6;
/// `chaos`: a fault was not healed within `--heal-timeout` (or none could be injected).
pub const CHAOS_UNHEALED: u8 = 7;
