//! What the controller needs of the world, as traits the caller fills: the CLI with real
//! adapters, tests with stand-ins.
//!
//! - [`Clock`]: the time of decisions and the instants of timers.
//! - [`Reporter`]: alert channels, metrics and the status page.
//! - [`GitFollow`]: what is followed in git, wake-ups, revision events (commit statuses).
//! - [`Engine`] and [`NodeConnector`]: each node's container engine (the `ContainerRuntime` port)
//!   and how its client is made.

mod clock;
mod engines;
mod git_follow;
mod reporter;

pub use clock::{Clock, SystemClock, TokioClock};
pub use engines::{Engine, NodeConnector};
pub use git_follow::{GitFollow, PlainFollow, PortFuture, RevisionEvent, Wake};
pub use reporter::{NoReporter, Reporter};
