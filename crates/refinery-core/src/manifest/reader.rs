//! Typed reading of a located YAML tree, collecting every problem instead of stopping at the first.

use std::collections::BTreeMap;

use crate::duration::{duration_hint, parse_duration_ms};
use crate::interpolate::{InterpolateError, interpolate};
use crate::manifest::error::Issue;
use crate::suggestion::suggest;
use crate::yaml::{Loc, Node, Value};

/// Reads one file's tree; owns the problem list.
pub struct Reader<'e> {
    pub file: String,
    pub issues: Vec<Issue>,
    pub warnings: Vec<Issue>,
    env: &'e dyn Fn(&str) -> Option<String>,
    /// Whether `${VAR}` is expanded in scalars.
    interpolate: bool,
    /// Whether a `$` that starts no variable is an error (compose files), not a `$`.
    strict_dollars: bool,
}

/// A string read from a list, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub value: String,
    pub loc: Loc,
    /// Field path of the item (`inventory.protected[1]`).
    pub field: String,
}

/// One `KEY: value` or `KEY=value` entry, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// The key of a mapping entry, the item of a list.
    pub loc: Loc,
    /// `env.KEY` or `env[2]`.
    pub field: String,
}

/// A mapping being read; remembers which keys the reader asked for, so the rest are unknown.
pub struct MapView<'n> {
    pub node: &'n Node,
    pub path: String,
    known: Vec<&'static str>,
    /// `x-` keys are extensions, not unknown keys (compose files).
    extensions: bool,
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'e> Reader<'e> {
    #[must_use]
    pub fn new(file: &str, env: &'e dyn Fn(&str) -> Option<String>, interpolate: bool) -> Self {
        Reader {
            file: file.to_owned(),
            issues: Vec::new(),
            warnings: Vec::new(),
            env,
            interpolate,
            strict_dollars: false,
        }
    }

    /// A reader for a compose file: a `$` that starts no variable is an error, as docker
    /// compose has it.
    #[must_use]
    pub fn with_strict_dollars(mut self) -> Self {
        self.strict_dollars = true;
        self
    }

    /// The value of a variable in the environment this file is read with.
    #[must_use]
    pub fn lookup(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    pub fn error(&mut self, loc: Loc, field: &str, message: impl Into<String>) {
        self.issues
            .push(Issue::new(&self.file, loc, field, message));
    }

    pub fn error_hint(
        &mut self,
        loc: Loc,
        field: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.issues
            .push(Issue::new(&self.file, loc, field, message).with_hint(hint));
    }

    /// The value a grammar check let through, or `None` and an error with its hint at `loc`.
    pub fn check<T>(
        &mut self,
        loc: Loc,
        field: &str,
        checked: Result<T, crate::manifest::grammar::Refusal>,
    ) -> Option<T> {
        match checked {
            Ok(v) => Some(v),
            Err(refusal) => {
                self.error_hint(loc, field, refusal.message, refusal.hint);
                None
            }
        }
    }

    /// A string, held to a grammar: a refused value is reported (with its hint) and still
    /// returned, so nothing reports it missing as well.
    pub fn string_checked(
        &mut self,
        node: &Node,
        path: &str,
        grammar: impl Fn(&str) -> Result<(), crate::manifest::grammar::Refusal>,
    ) -> Option<String> {
        let s = self.string(node, path)?;
        let _ = self.check(node.loc, path, grammar(&s));
        Some(s)
    }

    pub fn warn(&mut self, loc: Loc, field: &str, message: impl Into<String>) {
        self.warnings
            .push(Issue::new(&self.file, loc, field, message));
    }

    pub fn warn_hint(
        &mut self,
        loc: Loc,
        field: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.warnings
            .push(Issue::new(&self.file, loc, field, message).with_hint(hint));
    }

    /// A mapping at `path`; `None` (and an error) when it is something else. Null reads as empty.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<MapView<'n>> {
        match &node.value {
            Value::Map(entries) => {
                let mut seen: Vec<&str> = Vec::new();
                for (k, _) in entries {
                    match k.scalar() {
                        Some(name) if seen.contains(&name) => {
                            let f = join(path, name);
                            self.error(k.loc, &f, format!("duplicate key `{name}`"));
                        }
                        Some(name) => seen.push(name),
                        None => self.error(k.loc, path, "a key must be a plain string"),
                    }
                }
                Some(MapView {
                    node,
                    path: path.to_owned(),
                    known: Vec::new(),
                    extensions: false,
                })
            }
            _ if node.is_null() => Some(MapView {
                node,
                path: path.to_owned(),
                known: Vec::new(),
                extensions: false,
            }),
            _ => {
                self.error(
                    node.loc,
                    path,
                    format!("expected a mapping, found {}", node.kind_name()),
                );
                None
            }
        }
    }

    /// A list at `path`; null reads as empty.
    pub fn seq<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ if node.is_null() => Some(&[]),
            _ => {
                self.error(
                    node.loc,
                    path,
                    format!("expected a list, found {}", node.kind_name()),
                );
                None
            }
        }
    }

    /// A scalar as a string, interpolated.
    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } => {
                if !self.interpolate {
                    return Some(text.clone());
                }
                let interpolated = if self.strict_dollars {
                    crate::interpolate::interpolate_strict(text, self.env)
                } else {
                    interpolate(text, self.env)
                };
                match interpolated {
                    Ok(r) => {
                        for name in r.unset {
                            self.warn(
                                node.loc,
                                path,
                                format!("variable `{name}` is not set; using an empty string"),
                            );
                        }
                        Some(r.value)
                    }
                    Err(e) => {
                        let hint = match &e {
                            InterpolateError::Required { name, .. } => format!(
                                "set `{name}` in the environment, or give it a default with `${{{name}:-default}}`"
                            ),
                            InterpolateError::Unclosed { .. } => {
                                "close it with `}`, or write `$$` for a literal `$`".to_owned()
                            }
                            InterpolateError::BadName { .. } => {
                                "a variable name is letters, digits and `_`, not starting with a digit; write `$$` for a literal `$`".to_owned()
                            }
                            InterpolateError::Stray { .. } => {
                                "write `$$` for a literal `$` (docker compose refuses a lone one too)".to_owned()
                            }
                        };
                        self.error_hint(node.loc, path, e.to_string(), hint);
                        None
                    }
                }
            }
            _ => {
                self.error(
                    node.loc,
                    path,
                    format!("expected a string, found {}", node.kind_name()),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        let s = self.string(node, path)?;
        match s.as_str() {
            "true" | "True" | "TRUE" | "yes" | "on" => Some(true),
            "false" | "False" | "FALSE" | "no" | "off" => Some(false),
            other => {
                self.error_hint(
                    node.loc,
                    path,
                    format!("expected true or false, found `{other}`"),
                    "write `true` or `false`",
                );
                None
            }
        }
    }

    pub fn u64(&mut self, node: &Node, path: &str) -> Option<u64> {
        let s = self.string(node, path)?;
        match s.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    node.loc,
                    path,
                    format!("expected a whole number, found `{s}`"),
                );
                None
            }
        }
    }

    /// A duration in milliseconds (`30s`, `10m`, `14d`; a bare number is seconds).
    pub fn duration_ms(&mut self, node: &Node, path: &str) -> Option<u64> {
        let s = self.string(node, path)?;
        match parse_duration_ms(&s) {
            Ok(ms) => {
                let max = crate::manifest::grammar::DURATION_MAX_MS;
                self.check(
                    node.loc,
                    path,
                    crate::manifest::grammar::duration_within(&s, ms, 0..=max, "up to 3650d"),
                )
            }
            Err(e) => {
                self.error_hint(node.loc, path, e, duration_hint(&s));
                None
            }
        }
    }

    /// A list of strings; a single scalar reads as a one-element list. Every bad item is reported;
    /// `None` if any was bad.
    pub fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        Some(
            self.strings_at(node, path)?
                .into_iter()
                .map(|s| s.value)
                .collect(),
        )
    }

    /// Like [`Self::strings`], each item with its location and field path, so a problem with one
    /// item can point at it.
    pub fn strings_at(&mut self, node: &Node, path: &str) -> Option<Vec<Located>> {
        if let Value::Scalar { .. } = &node.value {
            if node.is_null() {
                return Some(Vec::new());
            }
            let value = self.string(node, path)?;
            return Some(vec![Located {
                value,
                loc: node.loc,
                field: path.to_owned(),
            }]);
        }
        let items = self.seq(node, path)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let field = format!("{path}[{i}]");
            match self.string(item, &field) {
                Some(value) => out.push(Located {
                    value,
                    loc: item.loc,
                    field,
                }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A command: a list of words, or one string split on white space (quotes respected).
    pub fn command(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        if let Value::Scalar { .. } = &node.value {
            let s = self.string(node, path)?;
            return match split_words(&s) {
                Some(words) => Some(words),
                None => {
                    self.error(node.loc, path, "unbalanced quotes in command");
                    None
                }
            };
        }
        self.strings(node, path)
    }

    /// `KEY: value` mapping or a `KEY=value` list. Returns entries with each one's location (the
    /// key of a mapping entry, the item of a list).
    pub fn key_values(&mut self, node: &Node, path: &str) -> Option<Vec<(String, String, Loc)>> {
        Some(
            self.key_values_at(node, path)?
                .into_iter()
                .map(|e| (e.key, e.value, e.loc))
                .collect(),
        )
    }

    /// Like [`Self::key_values`], each entry with its field path (`env.KEY` or `env[2]`). A key
    /// given twice is an error.
    pub fn key_values_at(&mut self, node: &Node, path: &str) -> Option<Vec<KeyValue>> {
        match &node.value {
            Value::Map(entries) => {
                self.map(node, path)?;
                let mut out = Vec::new();
                for (k, v) in entries {
                    let key = k.scalar().unwrap_or_default().to_owned();
                    let field = join(path, &key);
                    let val = if v.is_null() {
                        Some(String::new())
                    } else {
                        self.string(v, &field)
                    };
                    if let Some(value) = val {
                        out.push(KeyValue {
                            key,
                            value,
                            loc: k.loc,
                            field,
                        });
                    }
                }
                Some(out)
            }
            Value::Seq(items) => {
                let mut out: Vec<KeyValue> = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let field = format!("{path}[{i}]");
                    let Some(s) = self.string(item, &field) else {
                        continue;
                    };
                    let (key, value) = match s.split_once('=') {
                        Some((k, v)) => (k.to_owned(), v.to_owned()),
                        None => (s, String::new()),
                    };
                    if let Some(first) = out.iter().find(|e| e.key == key) {
                        let message = format!("`{key}` is set twice (first at `{}`)", first.field);
                        self.error(item.loc, &field, message);
                        continue;
                    }
                    out.push(KeyValue {
                        key,
                        value,
                        loc: item.loc,
                        field,
                    });
                }
                Some(out)
            }
            _ if node.is_null() => Some(Vec::new()),
            _ => {
                self.error(
                    node.loc,
                    path,
                    format!(
                        "expected a mapping or a list of KEY=value, found {}",
                        node.kind_name()
                    ),
                );
                None
            }
        }
    }

    /// Like [`Self::key_values`] into a map.
    pub fn string_map(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        Some(
            self.key_values(node, path)?
                .into_iter()
                .map(|(k, v, _)| (k, v))
                .collect(),
        )
    }
}

impl<'n> MapView<'n> {
    /// The value under `key` (absent or null → `None`); marks `key` as known.
    pub fn get(&mut self, key: &'static str) -> Option<&'n Node> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.node.get(key).filter(|n| !n.is_null())
    }

    /// Where `key` itself is written, if present.
    #[must_use]
    pub fn key_loc(&self, key: &str) -> Option<Loc> {
        self.node.entry(key).map(|(k, _)| k.loc)
    }

    /// The path of a field of this mapping.
    #[must_use]
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Lets `x-` keys (compose extensions) pass [`Self::finish`].
    #[must_use]
    pub fn with_extensions(mut self) -> Self {
        self.extensions = true;
        self
    }

    /// Reports every key the reader did not ask for, with a suggestion.
    pub fn finish(self, r: &mut Reader<'_>) {
        let Value::Map(entries) = &self.node.value else {
            return;
        };
        for (k, _) in entries {
            let Some(name) = k.scalar() else { continue };
            if self.known.contains(&name) || (self.extensions && name.starts_with("x-")) {
                continue;
            }
            let field = join(&self.path, name);
            let message = format!("unknown key `{name}`");
            match suggest(name, self.known.iter().copied()) {
                Some(s) => r.error_hint(k.loc, &field, message, format!("did you mean `{s}`?")),
                None => r.error_hint(
                    k.loc,
                    &field,
                    message,
                    format!("known keys here: {}", self.known.join(", ")),
                ),
            }
        }
    }
}

/// Splits a command line into words; single and double quotes group, backslash escapes.
#[must_use]
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.push(chars.next()?),
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.push(chars.next()?);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}
