//! What `refinery run` follows, and when it asks the remote: a branch or the highest tag matching
//! a pattern is fetched at most every fetch interval, or at once when someone asks (a push webhook,
//! `POST /api/v1/sync`). Asks that come while a fetch runs are answered by one more fetch, however
//! many there were.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::git_error::{GitError, Result};
use crate::git_source::GitSource;
use crate::tag_pattern::TagPattern;

/// What a daemon follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// A branch: `refs/remotes/<remote>/<branch>` after fetching it, or `refs/heads/<branch>`
    /// in a repository without remotes.
    Branch(String),
    /// The highest tag matching the pattern, in version order: among the remote's tags after
    /// fetching them, or among the local tags in a repository without remotes.
    Tag(TagPattern),
    /// A fixed revision (`HEAD`, a commit): nothing is fetched.
    Rev(String),
}

impl std::fmt::Display for Follow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Follow::Branch(b) => write!(f, "branch `{b}`"),
            Follow::Tag(p) => write!(f, "tags `{p}`"),
            Follow::Rev(r) => write!(f, "`{r}`"),
        }
    }
}

/// The commit to enforce, and what pointed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    /// Full commit id.
    pub commit: String,
    /// The ref or revision it was read from: `refs/remotes/origin/main`, `refs/tags/v1.4.0`,
    /// `HEAD`.
    pub source: String,
    /// This call fetched from the remote.
    pub fetched: bool,
}

/// When the last fetch happened and what was asked since.
#[derive(Debug, Default)]
struct FetchClock {
    /// Asks counted since the start.
    asked: u64,
    /// The value of `asked` when the last successful fetch started: asks up to it are answered.
    answered: u64,
    last_fetch: Option<Instant>,
    /// Failed fetches in a row (reset by a success): the next one waits longer.
    failures: u32,
    last_failure: Option<Instant>,
    /// Following tags: the tip the last fetch chose among the remote's tags (a tag deleted on
    /// the remote may still be here, so the local tags are not asked between fetches).
    remote_tag: Option<Tip>,
    /// Fetches started, failed ones included.
    fetches: u64,
}

/// The first retry after a failed fetch waits this long; each further failure doubles it, up to
/// the fetch interval.
const FIRST_RETRY: Duration = Duration::from_secs(2);

/// Follows a branch, tags or a revision of one repository. `Send + Sync`: share it between the
/// daemon's loop and the HTTP handlers that ask for a fetch. Every method blocks (git).
pub struct Follower {
    source: GitSource,
    follow: Follow,
    fetch_every: Duration,
    clock: Mutex<FetchClock>,
    /// Held for the whole of a fetch: one at a time.
    fetching: Mutex<()>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("follow", &self.follow)
            .field("fetch_every", &self.fetch_every)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// Follows `follow` in `source`, fetching at most every `fetch_every` unless asked.
    #[must_use]
    pub fn new(source: GitSource, follow: Follow, fetch_every: Duration) -> Follower {
        Follower {
            source,
            follow,
            fetch_every,
            clock: Mutex::new(FetchClock::default()),
            fetching: Mutex::new(()),
        }
    }

    #[must_use]
    pub fn follow(&self) -> &Follow {
        &self.follow
    }

    #[must_use]
    pub fn source(&self) -> &GitSource {
        &self.source
    }

    /// Asks for a fetch before the next [`tip`](Self::tip); never blocks. Many asks before that
    /// fetch starts are one fetch.
    pub fn ask_fetch(&self) {
        self.lock_clock().asked += 1;
    }

    /// The commit to enforce now. Fetches first when asked to since the last fetch started, or
    /// when the last fetch is `fetch_every` old (after a failed fetch: 2 s, doubling up to
    /// `fetch_every`); otherwise reads what the last fetch brought.
    ///
    /// Errors: those of [`GitSource::fetch_upstream`], [`GitSource::fetch_tags`] and
    /// [`GitSource::resolve`]; [`GitError::NoMatchingTag`] when no tag matches.
    pub fn tip(&self, now: Instant) -> Result<Tip> {
        let fetched = if self.fetch_due(now) {
            let _one_at_a_time = self
                .fetching
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Another caller may have fetched while this one waited, answering its ask too.
            if self.fetch_due(now) {
                let asked = {
                    let mut clock = self.lock_clock();
                    clock.fetches += 1;
                    clock.asked
                };
                match self.fetch() {
                    Ok(tip) => {
                        let mut clock = self.lock_clock();
                        clock.answered = clock.answered.max(asked);
                        clock.last_fetch = Some(now);
                        clock.failures = 0;
                        clock.last_failure = None;
                        if let Some(tip) = tip {
                            clock.remote_tag = Some(tip.clone());
                            return Ok(tip);
                        }
                        drop(clock);
                        true
                    }
                    Err(e) => {
                        let mut clock = self.lock_clock();
                        clock.failures = clock.failures.saturating_add(1);
                        clock.last_failure = Some(now);
                        // The asks are answered: by this failure. A new ask tries again at once.
                        clock.answered = clock.answered.max(asked);
                        return Err(e);
                    }
                }
            } else {
                false
            }
        } else {
            false
        };
        let mut tip = self.read()?;
        tip.fetched = fetched;
        Ok(tip)
    }

    /// Fetches now (after any fetch in progress, which may have started before the caller's
    /// push) and returns the tip: what `POST /api/v1/sync` does.
    pub fn fetch_now(&self, now: Instant) -> Result<Tip> {
        self.ask_fetch();
        self.tip(now)
    }

    /// How many fetches were started so far (for metrics and tests).
    #[must_use]
    pub fn fetches(&self) -> u64 {
        self.lock_clock().fetches
    }

    fn lock_clock(&self) -> std::sync::MutexGuard<'_, FetchClock> {
        self.clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fetch_due(&self, now: Instant) -> bool {
        if matches!(self.follow, Follow::Rev(_)) {
            return false;
        }
        let clock = self.lock_clock();
        if clock.asked > clock.answered {
            return true;
        }
        if let Some(failed) = clock.last_failure {
            let wait = FIRST_RETRY
                .checked_mul(1u32 << clock.failures.saturating_sub(1).min(20))
                .unwrap_or(self.fetch_every)
                .min(self.fetch_every);
            return now.saturating_duration_since(failed) >= wait;
        }
        match clock.last_fetch {
            None => true,
            Some(at) => now.saturating_duration_since(at) >= self.fetch_every,
        }
    }

    /// Fetches what is followed; for tags, the fetch itself says which tag is the tip (the
    /// remote's tags, deleted ones left out), so it is returned. `None`: read as usual.
    fn fetch(&self) -> Result<Option<Tip>> {
        match &self.follow {
            Follow::Rev(_) => Ok(None),
            Follow::Branch(branch) => {
                self.source.fetch_upstream(branch)?;
                Ok(None)
            }
            Follow::Tag(pattern) => match self.source.fetch_tags(pattern)? {
                None => Ok(None),
                Some(fetched) => match fetched.highest {
                    Some(tag) => Ok(Some(Tip {
                        source: tag.full_ref(),
                        commit: tag.commit,
                        fetched: true,
                    })),
                    None => Err(GitError::NoMatchingTag {
                        pattern: pattern.as_str().to_owned(),
                        remote: Some(fetched.remote),
                    }),
                },
            },
        }
    }

    /// The tip from what is here, without fetching.
    fn read(&self) -> Result<Tip> {
        let source = match &self.follow {
            Follow::Rev(rev) => rev.clone(),
            Follow::Branch(branch) => self.source.tracking_ref(branch)?,
            Follow::Tag(pattern) => {
                if let Some(last) = self.lock_clock().remote_tag.clone() {
                    return Ok(Tip {
                        fetched: false,
                        ..last
                    });
                }
                let local = self.source.highest_tag(pattern)?;
                return local
                    .map(|tag| Tip {
                        source: tag.full_ref(),
                        commit: tag.commit,
                        fetched: false,
                    })
                    .ok_or_else(|| GitError::NoMatchingTag {
                        pattern: pattern.as_str().to_owned(),
                        remote: None,
                    });
            }
        };
        let commit = self.source.resolve(&source)?.id;
        Ok(Tip {
            commit,
            source,
            fetched: false,
        })
    }
}
