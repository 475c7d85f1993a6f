//! When to send a commit status again: the backoff as a value, the verdict on an answer.

use std::time::Duration;

use refinery_core::backoff::Backoff;

/// Attempts and delays: by default 5 attempts, 0.5 s, 1 s, 2 s, 4 s apart (as alert channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(4),
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryVerdict {
    /// The forge took it.
    Done,
    /// Worth another attempt: no answer, 408, 429, 5xx.
    Again,
    /// The forge refused it for good (401, 403, 404, 422, …): sending it again changes nothing.
    Final,
}

/// A `Retry-After` longer than this is not waited for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl Retry {
    /// The delays between attempts, doubling up to `max_delay`.
    #[must_use]
    pub fn delays(&self) -> Backoff {
        Backoff::new(self.first_delay, self.max_delay)
    }

    /// The verdict on an HTTP status; `None` is no answer at all (connect failure, timeout).
    #[must_use]
    pub fn verdict(status: Option<u16>) -> RetryVerdict {
        match status {
            None | Some(408 | 429 | 500..=599) => RetryVerdict::Again,
            Some(200..=299) => RetryVerdict::Done,
            Some(_) => RetryVerdict::Final,
        }
    }

    /// The wait before the next attempt: the backoff's delay, or the forge's `Retry-After`
    /// (capped at a minute) when that is longer.
    #[must_use]
    pub fn wait(backoff_delay: Duration, retry_after: Option<Duration>) -> Duration {
        retry_after.map_or(backoff_delay, |after| {
            after.min(MAX_RETRY_AFTER).max(backoff_delay)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_default_delays_double_to_four_seconds() {
        let r = Retry::default();
        let got: Vec<u128> = r
            .delays()
            .take(r.attempts as usize - 1)
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(got, [500, 1000, 2000, 4000]);
    }

    #[test]
    fn retry_verdict_by_status() {
        for (status, want) in [
            (None, RetryVerdict::Again),
            (Some(201), RetryVerdict::Done),
            (Some(200), RetryVerdict::Done),
            (Some(429), RetryVerdict::Again),
            (Some(502), RetryVerdict::Again),
            (Some(408), RetryVerdict::Again),
            (Some(401), RetryVerdict::Final),
            (Some(404), RetryVerdict::Final),
            (Some(422), RetryVerdict::Final),
            (Some(400), RetryVerdict::Final),
        ] {
            assert_eq!(Retry::verdict(status), want, "{status:?}");
        }
    }

    #[test]
    fn retry_wait_takes_the_longer_and_caps_retry_after() {
        let s = Duration::from_secs;
        assert_eq!(Retry::wait(s(1), None), s(1));
        assert_eq!(Retry::wait(s(1), Some(s(5))), s(5));
        assert_eq!(Retry::wait(s(2), Some(s(1))), s(2));
        assert_eq!(Retry::wait(s(1), Some(s(3600))), s(60));
    }
}
