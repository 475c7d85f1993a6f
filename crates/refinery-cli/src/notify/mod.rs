//! Alert delivery lives in the `refinery-notify` crate; this module makes it the daemon's: the
//! channels count into the daemon's metrics.

pub use refinery_notify::*;

impl refinery_notify::AlertCounter for crate::metrics::Metrics {
    fn alert(&self, channel: &str, result: &str) {
        crate::metrics::Metrics::alert(self, channel, result);
    }
}
