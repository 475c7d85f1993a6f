//! The controller's clock: nothing below it reads the time by itself.

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// Where the controller reads the time: `now` for decisions (grace periods, health deadlines,
/// ledger times), `instant` for its timers (which follow tokio's clock, paused in tests).
pub trait Clock: Send + Sync {
    /// The wall-clock time decisions are made at.
    fn now(&self) -> Timestamp;

    /// The monotonic instant timers are measured from.
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A wall clock driven by tokio's: it starts at a fixed time and moves only as tokio's clock
/// does, so under `tokio::time::pause` (`#[tokio::test(start_paused = true)]`) grace periods and
/// deadlines pass exactly when the test advances time.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: Timestamp,
    started: Instant,
}

impl TokioClock {
    /// A clock reading `start` now.
    #[must_use]
    pub fn starting_at(start: Timestamp) -> TokioClock {
        TokioClock {
            start,
            started: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed =
            SignedDuration::try_from(self.started.elapsed()).unwrap_or(SignedDuration::MAX);
        self.start.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_moves_only_with_tokio_time() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = TokioClock::starting_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), "2026-01-01T00:01:30Z".parse().unwrap());
    }
}
