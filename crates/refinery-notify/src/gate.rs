//! What keeps a channel quiet about drifts, before its rate limit: `min_duration` (a drift is
//! announced only once it has lasted that long; its end only if its start was) and bursts (more
//! than `burst` drift starts within `group_wait` go out as one message listing them, and one
//! more when all of them are resolved).
//!
//! Pure: time comes in as `now`. The channel's task asks [`Gate::next_wake`] when to call
//! [`Gate::tick`].

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use refinery_core::manifest::{Channel, Level};
use tokio::time::Instant;

use crate::notice::{DriftRef, Notice, NoticeKind};

/// Lines of a burst message; the rest is counted.
const LIST_MAX: usize = 50;

/// What the gate lets out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Send this.
    Send(Notice),
    /// A drift that ended before `min_duration`: counted, not sent.
    Quiet(Notice),
}

/// The starts gathered within one `group_wait`.
#[derive(Debug)]
struct Group {
    closes: Instant,
    starts: Vec<Notice>,
    /// Ends of drifts started in this group, arrived before it closed.
    resolves: Vec<Notice>,
}

/// A burst already announced, waiting for all its drifts to end.
#[derive(Debug)]
struct Burst {
    /// The burst message as sent (for the closing one).
    notice: Notice,
    open: BTreeSet<String>,
    resolves: Vec<Notice>,
}

#[derive(Debug)]
pub struct Gate {
    min_duration: Duration,
    burst: usize,
    group_wait: Duration,
    /// Drift starts waiting for `min_duration`, in arrival order (which is due order).
    waiting: VecDeque<(Instant, Notice)>,
    group: Option<Group>,
    bursts: Vec<Burst>,
}

impl Gate {
    #[must_use]
    pub fn new(ch: &Channel) -> Gate {
        Gate {
            min_duration: Duration::from_millis(ch.min_duration_ms),
            burst: usize::try_from(ch.burst).unwrap_or(usize::MAX),
            group_wait: Duration::from_millis(ch.group_wait_ms),
            waiting: VecDeque::new(),
            group: None,
            bursts: Vec::new(),
        }
    }

    /// A burst's id as the worker keeps it open for reminders.
    #[must_use]
    pub fn burst_key(n: &Notice) -> Option<String> {
        (n.kind == NoticeKind::BurstStarted).then(|| format!("burst {}", n.title))
    }

    /// A message for the channel (its filters passed) at `now`.
    pub fn on(&mut self, n: Notice, now: Instant) -> Vec<Out> {
        let mut out = self.tick(now);
        let Some(key) = n.drift_key() else {
            out.push(Out::Send(n));
            return out;
        };
        match n.kind {
            NoticeKind::DriftStarted if !self.min_duration.is_zero() => {
                self.waiting.push_back((now + self.min_duration, n));
            }
            NoticeKind::DriftStarted => out.extend(self.admit(n, now)),
            NoticeKind::DriftResolved => out.extend(self.resolved(&key, n)),
            _ => out.push(Out::Send(n)),
        }
        out
    }

    /// When [`Gate::tick`] has something to do.
    #[must_use]
    pub fn next_wake(&self) -> Option<Instant> {
        let due = self.waiting.front().map(|(at, _)| *at);
        let closes = self.group.as_ref().map(|g| g.closes);
        due.into_iter().chain(closes).min()
    }

    /// Lets out what is due at `now`: drifts that have lasted `min_duration`, and the group
    /// whose `group_wait` ended. Events are taken in time order.
    pub fn tick(&mut self, now: Instant) -> Vec<Out> {
        let mut out = Vec::new();
        loop {
            let due = self.waiting.front().map(|(at, _)| *at);
            let closes = self.group.as_ref().map(|g| g.closes);
            match (due, closes) {
                (Some(d), c) if d <= now && c.is_none_or(|c| d < c) => {
                    if let Some((at, mut n)) = self.waiting.pop_front() {
                        n.text = lasted(&n.text, self.min_duration);
                        out.extend(self.admit(n, at));
                    }
                }
                (_, Some(c)) if c <= now => {
                    if let Some(g) = self.group.take() {
                        out.extend(self.close(g));
                    }
                }
                _ => return out,
            }
        }
    }

    /// At shutdown: the group being gathered goes out now; drifts that have not lasted
    /// `min_duration` are dropped (their number is returned).
    pub fn drain(&mut self) -> (Vec<Out>, usize) {
        let out = self.group.take().map(|g| self.close(g)).unwrap_or_default();
        let dropped = self.waiting.len();
        self.waiting.clear();
        (out, dropped)
    }

    /// A start that passed `min_duration` (or had none) joins the group being gathered.
    fn admit(&mut self, n: Notice, at: Instant) -> Vec<Out> {
        if self.group_wait.is_zero() {
            return vec![Out::Send(n)];
        }
        let wait = self.group_wait;
        self.group
            .get_or_insert_with(|| Group {
                closes: at + wait,
                starts: Vec::new(),
                resolves: Vec::new(),
            })
            .starts
            .push(n);
        Vec::new()
    }

    fn resolved(&mut self, key: &str, n: Notice) -> Vec<Out> {
        if let Some(i) = self
            .waiting
            .iter()
            .position(|(_, w)| w.drift_key().as_deref() == Some(key))
        {
            let (_, start) = self.waiting.remove(i).unwrap_or((Instant::now(), n));
            return vec![Out::Quiet(start)];
        }
        if let Some(g) = &mut self.group
            && g.starts
                .iter()
                .any(|s| s.drift_key().as_deref() == Some(key))
        {
            g.resolves.push(n);
            return Vec::new();
        }
        if let Some(i) = self.bursts.iter().position(|b| b.open.contains(key)) {
            let b = &mut self.bursts[i];
            b.open.remove(key);
            b.resolves.push(n);
            if b.open.is_empty() {
                let b = self.bursts.remove(i);
                return vec![Out::Send(burst_resolved(&b.notice, &b.resolves))];
            }
            return Vec::new();
        }
        // A start this channel did not hold (sent at once, or before the daemon restarted).
        vec![Out::Send(n)]
    }

    fn close(&mut self, g: Group) -> Vec<Out> {
        if g.starts.len() <= self.burst {
            return g
                .starts
                .into_iter()
                .chain(g.resolves)
                .map(Out::Send)
                .collect();
        }
        let notice = burst_started(&g.starts);
        let mut out = vec![Out::Send(notice.clone())];
        let ended: BTreeSet<String> = g.resolves.iter().filter_map(Notice::drift_key).collect();
        let open: BTreeSet<String> = g
            .starts
            .iter()
            .filter_map(Notice::drift_key)
            .filter(|k| !ended.contains(k))
            .collect();
        if open.is_empty() {
            out.push(Out::Send(burst_resolved(&notice, &g.resolves)));
        } else {
            self.bursts.push(Burst {
                notice,
                open,
                resolves: g.resolves,
            });
        }
        out
    }
}

/// `exited (code 137)` → `exited (code 137); lasting 30s`.
fn lasted(text: &str, d: Duration) -> String {
    let secs = d.as_secs();
    let d = if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else if d.subsec_millis() == 0 {
        format!("{secs}s")
    } else {
        format!("{}ms", d.as_millis())
    };
    if text.is_empty() {
        format!("lasting {d}")
    } else {
        format!("{text}; lasting {d}")
    }
}

fn drift_ref(n: &Notice) -> DriftRef {
    DriftRef {
        node: n.node.clone(),
        resource: n.resource.clone().unwrap_or_default(),
        drift: n.drift.clone().unwrap_or_default(),
        text: n.text.clone(),
    }
}

/// The nodes of some messages: the one they share, else none.
fn common_node(ns: &[Notice]) -> Option<String> {
    let first = ns.first()?.node.clone()?;
    ns.iter()
        .all(|n| n.node.as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// One line per drift, at most [`LIST_MAX`].
fn list(refs: &[DriftRef]) -> String {
    let mut lines: Vec<String> = refs
        .iter()
        .take(LIST_MAX)
        .map(|r| {
            if r.text.is_empty() {
                format!("- {} ({})", r.resource, r.drift)
            } else {
                format!("- {} ({}): {}", r.resource, r.drift, r.text)
            }
        })
        .collect();
    if refs.len() > LIST_MAX {
        lines.push(format!("… and {} more", refs.len() - LIST_MAX));
    }
    lines.join("\n")
}

fn burst_started(starts: &[Notice]) -> Notice {
    let level = starts
        .iter()
        .map(|n| n.level)
        .max()
        .unwrap_or(Level::Warning);
    let time = starts
        .first()
        .map_or(jiff::Timestamp::UNIX_EPOCH, |n| n.time);
    let node = common_node(starts);
    let title = match &node {
        Some(node) => format!("{} drifts started on `{node}`", starts.len()),
        None => format!("{} drifts started", starts.len()),
    };
    let mut n = Notice::new(NoticeKind::BurstStarted, level, title, time);
    n.drifts = starts.iter().map(drift_ref).collect();
    n.text = list(&n.drifts);
    n.node = node;
    n.revision = starts.iter().find_map(|s| s.revision.clone());
    n
}

fn burst_resolved(burst: &Notice, resolves: &[Notice]) -> Notice {
    let time = resolves.last().map_or(burst.time, |n| n.time);
    let title = match &burst.node {
        Some(node) => format!("{} drifts on `{node}` resolved", burst.drifts.len()),
        None => format!("{} drifts resolved", burst.drifts.len()),
    };
    let mut n = Notice::new(NoticeKind::BurstResolved, burst.level, title, time);
    n.drifts = resolves.iter().map(drift_ref).collect();
    n.text = list(&n.drifts);
    n.node.clone_from(&burst.node);
    n.revision = resolves
        .iter()
        .rev()
        .find_map(|s| s.revision.clone())
        .or_else(|| burst.revision.clone());
    n
}
