//! What the controller needs of the world, as traits the caller fills: the CLI with real
//! adapters, tests with stand-ins.
//!
//! - [`Clock`]: the time of decisions and the instants of timers.
//! - [`Reporter`]: alert channels, metrics and the status page.

mod clock;
mod reporter;

pub use clock::{Clock, SystemClock, TokioClock};
pub use reporter::{NoReporter, Reporter};
