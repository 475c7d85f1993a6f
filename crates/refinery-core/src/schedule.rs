//! `inventory.schedule`: when the daemon runs the audit (and, in `enforce` mode, the cleanup).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use serde::Serialize;

/// A cron expression and the time zone it is read in (`inventory.schedule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub cron: String,
    pub timezone: String,
}

/// Why a schedule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("failed to parse cron expression `{cron}`: {message}")]
    BadCron { cron: String, message: String },
    #[error("failed to find time zone `{timezone}`")]
    BadTimezone { timezone: String },
    #[error("failed to find the next run of `{cron}` after {after}")]
    NoNextRun { cron: String, after: Timestamp },
}

impl ScheduleError {
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            ScheduleError::BadCron { .. } => vec![
                "write five fields: minute hour day-of-month month day-of-week, like `0 2 * * *`"
                    .into(),
            ],
            ScheduleError::BadTimezone { .. } => {
                vec!["write an IANA time zone name, like `UTC` or `Asia/Singapore`".into()]
            }
            ScheduleError::NoNextRun { .. } => Vec::new(),
        }
    }
}

fn parse(s: &Schedule) -> Result<(croner::Cron, TimeZone), ScheduleError> {
    let cron: croner::Cron =
        s.cron
            .parse()
            .map_err(|e: croner::errors::CronError| ScheduleError::BadCron {
                cron: s.cron.clone(),
                message: e.to_string().to_lowercase(),
            })?;
    let tz = TimeZone::get(&s.timezone).map_err(|_| ScheduleError::BadTimezone {
        timezone: s.timezone.clone(),
    })?;
    Ok((cron, tz))
}

/// Whether the cron expression and the time zone are both usable.
pub fn check_schedule(s: &Schedule) -> Result<(), ScheduleError> {
    parse(s).map(|_| ())
}

/// The first run strictly after `after`.
pub fn next_run(s: &Schedule, after: Timestamp) -> Result<Timestamp, ScheduleError> {
    let (cron, tz) = parse(s)?;
    let from = after.to_zoned(tz);
    cron.find_next_occurrence(&from, false)
        .map(|z| z.timestamp())
        .map_err(|_| ScheduleError::NoNextRun {
            cron: s.cron.clone(),
            after,
        })
}

/// Whether a run is due at `now`, the last one having been at `last`: some occurrence of the
/// schedule lies in `(last, now]`. With no last run nothing is due; the caller records `now` as
/// the start, so the first run is the first occurrence after it.
pub fn due(s: &Schedule, last: Option<Timestamp>, now: Timestamp) -> Result<bool, ScheduleError> {
    match last {
        None => Ok(false),
        Some(last) => Ok(next_run(s, last)? <= now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("valid timestamp")
    }

    fn nightly_sgt() -> Schedule {
        Schedule {
            cron: "0 2 * * *".into(),
            timezone: "Asia/Singapore".into(),
        }
    }

    #[test]
    fn next_run_of_2am_singapore_is_18h_utc() {
        let next = next_run(&nightly_sgt(), at("2026-01-16T05:53:32Z")).expect("valid schedule");
        assert_eq!(next, at("2026-01-16T18:00:00Z"));
    }

    #[test]
    fn due_only_once_the_occurrence_after_last_has_passed() {
        let s = nightly_sgt();
        let last = Some(at("2026-01-16T05:00:00Z"));
        assert_eq!(due(&s, last, at("2026-01-16T17:59:59Z")), Ok(false));
        assert_eq!(due(&s, last, at("2026-01-16T18:00:00Z")), Ok(true));
        assert_eq!(due(&s, last, at("2026-01-18T00:00:00Z")), Ok(true));
        assert_eq!(due(&s, None, at("2026-01-18T00:00:00Z")), Ok(false));
    }

    #[test]
    fn schedule_bad_cron_and_timezone_are_errors_with_hints() {
        let bad_cron = Schedule {
            cron: "61 * * * *".into(),
            timezone: "UTC".into(),
        };
        let err = check_schedule(&bad_cron).expect_err("minute 61 does not exist");
        assert!(matches!(err, ScheduleError::BadCron { .. }), "{err}");
        assert!(!err.hints().is_empty());
        let bad_tz = Schedule {
            cron: "0 2 * * *".into(),
            timezone: "Mars/Olympus".into(),
        };
        assert_eq!(
            check_schedule(&bad_tz),
            Err(ScheduleError::BadTimezone {
                timezone: "Mars/Olympus".into()
            })
        );
    }
}
