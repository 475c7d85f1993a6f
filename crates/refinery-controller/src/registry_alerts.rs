//! Failed registry checks, reported: each one counted in `/metrics`, the first failure in a row
//! of a tag alerted once. (The checks themselves are [`crate::registries`].)

use crate::registries::CheckKind;

impl<R: crate::ports::Engine> crate::controller::Controller<R> {
    /// The registry checks that failed in this pass: each counted (`/metrics`); the first
    /// failure in a row of a tag is an alert (ledger, then the alert channels), once.
    pub(crate) fn registry_check_failures(&mut self, rev: &str) {
        let failures = self.registry_checks.take_failures();
        let mut records = Vec::new();
        for f in failures {
            self.reporter.on_registry_check_failed(&f.registry);
            if f.first {
                let message = match f.kind {
                    CheckKind::Digest => format!(
                        "failed to check registry `{}` for an update of `{}`: {}; trying again later, backing off; nothing is changed meanwhile",
                        f.registry, f.reference, f.error
                    ),
                    CheckKind::Tags => format!(
                        "failed to list the tags of `{}` at registry `{}` (image_policy): {}; trying again later, backing off; the last listing is used meanwhile, and nothing is changed for want of it",
                        f.reference, f.registry, f.error
                    ),
                    CheckKind::Pull => format!(
                        "failed to pull `{}` again (pull_policy) from registry `{}`: {}; trying again later, backing off; its containers keep the local image meanwhile",
                        f.reference, f.registry, f.error
                    ),
                };
                records.push(
                    crate::controller::alert("warning", message)
                        .node(f.node)
                        .revision(rev),
                );
            }
        }
        self.append(records);
    }
}
