//! `config:`: the pass interval, the health deadline, the mode, the selector.

use serde::Serialize;

use super::reader::Reader;
use crate::runtime::LabelSelector;
use crate::secret::Secret;
use crate::suggestion::suggest;
use crate::yaml::Node;

/// How much a node (or the whole manifest) lets Refinery do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Detect and act.
    #[default]
    Enforce,
    /// Detect and alert only.
    Audit,
    /// Observe only; never write to the engine.
    ReadOnly,
}

impl Mode {
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            "read-only" | "readonly" | "read_only" => Some(Mode::ReadOnly),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::ReadOnly => "read-only",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub check_interval_secs: u64,
    /// How often the registry is asked for the current digest of each declared tag (per image
    /// reference, not per container), for `image_update` drift. Default 5 minutes.
    pub image_check_interval_secs: u64,
    /// How long a newly committed revision has to become healthy before the daemon rolls back to
    /// the last healthy one.
    pub health_deadline_secs: u64,
    pub drift_detection: bool,
    pub git_auto_commit: bool,
    pub mode: Mode,
    pub discord_webhook: Option<Secret>,
    /// Only containers carrying this label are Refinery's concern (the rest of the engine is
    /// invisible to it); containers it creates carry the label too.
    #[serde(skip)]
    pub selector: Option<LabelSelector>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            check_interval_secs: 60,
            image_check_interval_secs: 300,
            health_deadline_secs: 60,
            drift_detection: true,
            git_auto_commit: true,
            mode: Mode::Enforce,
            discord_webhook: None,
            selector: None,
        }
    }
}

pub(super) fn read_mode(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<Mode> {
    let s = r.string(node, path)?;
    match Mode::parse(&s) {
        Some(m) => Some(m),
        None => {
            let hint = match suggest(&s, ["enforce", "audit", "read-only"]) {
                Some(m) => format!("did you mean `{m}`? use `enforce`, `audit` or `read-only`"),
                None => "use `enforce`, `audit` or `read-only`".to_owned(),
            };
            r.error_hint(node.loc, path, format!("`{s}` is not a mode"), hint);
            None
        }
    }
}

pub(super) fn read_config(r: &mut Reader<'_>, node: &Node) -> Config {
    let mut c = Config::default();
    let Some(mut m) = r.map(node, "config") else {
        return c;
    };
    if let Some(n) = m.get("check_interval") {
        match r.duration_ms(n, "config.check_interval") {
            Some(0) => r.error(
                n.loc,
                "config.check_interval",
                "the check interval must be at least 1 second",
            ),
            Some(ms) => c.check_interval_secs = ms.div_ceil(1000),
            None => {}
        }
    }
    if let Some(n) = m.get("image_check_interval") {
        match r.duration_ms(n, "config.image_check_interval") {
            Some(0) => r.error(
                n.loc,
                "config.image_check_interval",
                "the image check interval must be at least 1 second",
            ),
            Some(ms) => c.image_check_interval_secs = ms.div_ceil(1000),
            None => {}
        }
    }
    if let Some(n) = m.get("health_deadline") {
        match r.duration_ms(n, "config.health_deadline") {
            Some(0) => r.error(
                n.loc,
                "config.health_deadline",
                "the health deadline must be at least 1 second",
            ),
            Some(ms) => c.health_deadline_secs = ms.div_ceil(1000),
            None => {}
        }
    }
    if let Some(n) = m.get("drift_detection") {
        c.drift_detection = r.bool(n, "config.drift_detection").unwrap_or(true);
    }
    if let Some(n) = m.get("git_auto_commit") {
        c.git_auto_commit = r.bool(n, "config.git_auto_commit").unwrap_or(true);
    }
    if let Some(n) = m.get("mode") {
        c.mode = read_mode(r, n, "config.mode").unwrap_or_default();
    }
    if let Some(n) = m.get("discord_webhook") {
        c.discord_webhook = r
            .string(n, "config.discord_webhook")
            .filter(|s| !s.is_empty())
            .map(|s| Secret::new(s, true));
    }
    if let Some(n) = m.get("selector")
        && let Some(s) = r.string(n, "config.selector")
    {
        match LabelSelector::parse(&s) {
            Some(sel) => c.selector = Some(sel),
            None => r.error_hint(
                n.loc,
                "config.selector",
                format!("`{s}` is not a label selector"),
                "write `key` or `key=value`",
            ),
        }
    }
    m.finish(r);
    c
}
