//! One line about a ledger entry, as `refinery ledger show` and the status page print it.

use refinery_core::ledger::{Entry, Event};
use refinery_core::short_id as short;

/// One line about an entry: the step and message, the drift, the revision change, …
#[must_use]
pub fn entry_detail(e: &Entry) -> String {
    match &e.event {
        Event::Birth(d)
        | Event::Death(d)
        | Event::Mutation(d)
        | Event::Rollback(d)
        | Event::Action(d) => match &d.message {
            Some(m) => format!("{}: {m}", d.step),
            None => d.step.clone(),
        },
        Event::Drift { drift, summary, .. } => format!("{drift}: {summary}"),
        Event::Alert { level, message } => format!("{level}: {message}"),
        Event::Revision {
            from: Some(from),
            to,
        } if from != to => format!("{} → {}", short(from), short(to)),
        Event::Revision { to, .. } => format!("at {}", short(to)),
        Event::DaemonStart { version } => format!("refinery {version}"),
        Event::DaemonStop { reason } => reason.clone(),
        Event::Repair {
            line, torn_bytes, ..
        } => {
            format!("torn line {line} ({torn_bytes} bytes) cut off")
        }
        Event::LeaderElected { holder } => match e.term {
            Some(t) => format!("{holder} leads, term {t}"),
            None => format!("{holder} leads"),
        },
    }
}
