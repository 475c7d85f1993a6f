//! What a pass returns and what an error costs, as kube-runtime's controller has it: a pass
//! returns a [`PassOutcome`] (what happened, and when to look again: [`Requeue`], its `Action`),
//! and the error policy is a pure function of the error and the attempt ([`on_error`], its
//! `error_policy`), so both are tested without an engine.

use std::time::Duration;

use refinery_core::{RuntimeError, UnreachableCause};

/// When to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// At once (a rollback, or leftovers of an interrupted recreate, changed what was observed).
    Now,
    /// After this long, unless something triggers a pass before.
    After(Duration),
}

impl Requeue {
    /// How long to wait.
    #[must_use]
    pub fn delay(self) -> Duration {
        match self {
            Requeue::Now => Duration::ZERO,
            Requeue::After(d) => d,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassOutcome {
    /// It covered every node (else only the nodes engine events came from).
    pub full: bool,
    /// Nodes observed, unreachable ones included.
    pub nodes: usize,
    /// Nodes that could not be observed.
    pub unreachable: Vec<String>,
    /// Steps carried out on Docker nodes (skipped ones not counted) and how many of them failed.
    pub actions: usize,
    pub failed: usize,
    /// When the next pass is due at the latest.
    pub requeue: Requeue,
}

/// The first wait after an engine error, doubled on each attempt up to [`MAX_WAIT`].
pub const FIRST_WAIT: Duration = Duration::from_millis(200);
/// The longest wait after an engine error.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// How long to wait before trying an engine again after `err`, on the `attempt`-th failure in a
/// row (0 for the first): 200 ms doubling to 10 s; an error that waiting a moment cannot mend (a
/// socket this user may not open, a TLS or ssh failure: the configuration must change) waits the
/// longest at once.
#[must_use]
pub fn on_error(err: &RuntimeError, attempt: u32) -> Requeue {
    if let RuntimeError::Unreachable { cause, .. } = err
        && matches!(
            cause,
            UnreachableCause::PermissionDenied | UnreachableCause::Tls | UnreachableCause::Ssh
        )
    {
        return Requeue::After(MAX_WAIT);
    }
    let wait = FIRST_WAIT
        .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .unwrap_or(MAX_WAIT);
    Requeue::After(wait.min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable(cause: UnreachableCause) -> RuntimeError {
        RuntimeError::Unreachable {
            endpoint: "unix:///var/run/docker.sock".into(),
            cause,
            reason: "test".into(),
        }
    }

    #[test]
    fn engine_errors_back_off_doubling_to_ten_seconds() {
        let err = unreachable(UnreachableCause::Refused);
        let waits: Vec<u128> = (0..8)
            .map(|a| on_error(&err, a).delay().as_millis())
            .collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        let other = RuntimeError::Other {
            action: "follow events".into(),
            message: "500".into(),
        };
        assert_eq!(
            on_error(&other, 1),
            Requeue::After(Duration::from_millis(400))
        );
    }

    #[test]
    fn huge_attempts_saturate_instead_of_overflowing() {
        let err = unreachable(UnreachableCause::Closed);
        assert_eq!(on_error(&err, 31), Requeue::After(MAX_WAIT));
        assert_eq!(on_error(&err, 32), Requeue::After(MAX_WAIT));
        assert_eq!(on_error(&err, u32::MAX), Requeue::After(MAX_WAIT));
    }

    #[test]
    fn errors_only_a_configuration_change_mends_wait_the_longest_at_once() {
        for cause in [
            UnreachableCause::PermissionDenied,
            UnreachableCause::Tls,
            UnreachableCause::Ssh,
        ] {
            assert_eq!(
                on_error(&unreachable(cause), 0),
                Requeue::After(MAX_WAIT),
                "{cause:?}"
            );
        }
        assert_eq!(
            on_error(&unreachable(UnreachableCause::NoSocket), 0),
            Requeue::After(FIRST_WAIT),
            "a socket that is not there yet (dockerd restarting) is tried again soon"
        );
    }
}
