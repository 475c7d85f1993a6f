//! A channel's rate limit: at most `max` messages per window.

use std::time::Duration;

use refinery_core::manifest::RateLimit;
use tokio::time::Instant;

/// A fixed-window rate limit: at most `max` messages per window. Messages over the limit are
/// counted; the count is reported once the next window opens.
#[derive(Debug, Clone)]
pub struct RateWindow {
    limit: RateLimit,
    start: Option<Instant>,
    sent: u32,
    held: u32,
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send it; first report this many held-back messages, if any.
    Send { held_before: u32 },
    /// Over the limit: counted, not sent.
    Hold,
}

impl RateWindow {
    #[must_use]
    pub fn new(limit: RateLimit) -> Self {
        RateWindow {
            limit,
            start: None,
            sent: 0,
            held: 0,
        }
    }

    fn per(&self) -> Duration {
        Duration::from_millis(self.limit.per_ms.max(1))
    }

    /// Opens a new window when the current one has ended; returns the count held in the old one.
    fn roll(&mut self, now: Instant) -> u32 {
        let ended = self
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= self.per());
        if !ended {
            return 0;
        }
        self.start = Some(now);
        self.sent = 0;
        std::mem::take(&mut self.held)
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        let held_before = self.roll(now);
        if self.sent >= self.limit.max {
            self.held += 1;
            return Admit::Hold;
        }
        self.sent += 1;
        Admit::Send { held_before }
    }

    /// When held messages should be reported even if nothing else arrives.
    #[must_use]
    pub fn flush_at(&self) -> Option<Instant> {
        if self.held == 0 {
            return None;
        }
        self.start.map(|s| s + self.per())
    }

    /// At `flush_at`: the count held back, and a fresh window (the report counts as one send).
    pub fn flush(&mut self, now: Instant) -> u32 {
        let held = self.roll(now);
        if held > 0 {
            self.sent += 1;
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window_holds_over_the_limit_and_reports_the_count_next_window() {
        let mut w = RateWindow::new(RateLimit {
            max: 2,
            per_ms: 1000,
        });
        let t0 = Instant::now();
        assert_eq!(w.admit(t0), Admit::Send { held_before: 0 });
        assert_eq!(w.admit(t0), Admit::Send { held_before: 0 });
        assert_eq!(w.admit(t0), Admit::Hold);
        assert_eq!(w.admit(t0 + Duration::from_millis(500)), Admit::Hold);
        assert_eq!(w.flush_at(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            w.admit(t0 + Duration::from_millis(1000)),
            Admit::Send { held_before: 2 }
        );
        assert_eq!(w.flush_at(), None);
    }

    #[test]
    fn rate_window_flush_reports_held_messages_without_a_new_one() {
        let mut w = RateWindow::new(RateLimit {
            max: 1,
            per_ms: 100,
        });
        let t0 = Instant::now();
        let _ = w.admit(t0);
        assert_eq!(w.admit(t0), Admit::Hold);
        assert_eq!(w.flush(t0 + Duration::from_millis(50)), 0);
        assert_eq!(w.flush(t0 + Duration::from_millis(100)), 1);
        // The report used the new window's only slot.
        assert_eq!(w.admit(t0 + Duration::from_millis(110)), Admit::Hold);
    }
}
