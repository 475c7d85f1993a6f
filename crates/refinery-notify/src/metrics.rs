//! What the channels count: `refinery_alerts_total{channel, result}` in the daemon's metrics.

/// Counts one alert outcome for a channel (`sent`, `failed`, `retried`, `filtered`,
/// `rate_limited`, `dropped`, `under_min_duration`).
pub trait AlertCounter: Send + Sync {
    fn alert(&self, channel: &str, result: &str);
}

/// Counts nothing (`refinery alert test`, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCounter;

impl AlertCounter for NoCounter {
    fn alert(&self, _channel: &str, _result: &str) {}
}
