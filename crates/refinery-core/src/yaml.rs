//! A YAML tree that remembers where every node came from, so errors can name line and column.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span};

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Loc {
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One YAML node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar; `plain` is false for quoted and block scalars (which are always strings).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Entries in source order; merge keys (`<<`) are already expanded.
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub loc: Loc,
    pub message: String,
}

impl Node {
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The scalar text, if this is a scalar.
    #[must_use]
    pub fn scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A word for what this node is, for "expected a list, found a mapping".
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar { .. } if self.is_null() => "nothing",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The value under `key` if this is a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and the value under `key` if this is a mapping.
    #[must_use]
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }
}

fn loc_of(span: &Span) -> Loc {
    Loc {
        line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
        column: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
    }
}

/// How many nodes aliases may copy in one stream: enough for any manifest, too few for a
/// "billion laughs" document (aliases of aliases) to exhaust memory.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// How many nodes a tree holds.
fn size_of(node: &Node) -> usize {
    match &node.value {
        Value::Scalar { .. } => 1,
        Value::Seq(items) => 1 + items.iter().map(size_of).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| size_of(k) + size_of(v))
                .sum::<usize>()
        }
    }
}

enum Frame {
    Seq(Vec<Node>, Loc, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Loc, usize),
}

/// Parses every document of a YAML stream. An empty stream yields no documents.
pub fn parse_documents(src: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Each anchored node with its size, and how many nodes aliases have copied so far.
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut copied: usize = 0;
    let mut current: Option<Node> = None;
    for item in Parser::new_from_str(src) {
        let (event, span) = item.map_err(|e| SyntaxError {
            loc: Loc {
                line: u32::try_from(e.marker().line()).unwrap_or(u32::MAX),
                column: u32::try_from(e.marker().col() + 1).unwrap_or(u32::MAX),
            },
            message: e.info(),
        })?;
        let loc = loc_of(&span);
        let finished: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::StreamEnd => None,
            Event::DocumentStart(..) => {
                anchors.clear();
                None
            }
            Event::DocumentEnd => {
                docs.push(current.take().unwrap_or(Node {
                    value: Value::Scalar {
                        text: String::new(),
                        plain: true,
                    },
                    loc,
                }));
                None
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some((n, size)) => {
                    copied = copied.saturating_add(*size);
                    if copied > MAX_ALIAS_NODES {
                        return Err(SyntaxError {
                            loc,
                            message: format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                        });
                    }
                    Some((n.clone(), 0))
                }
                None => {
                    return Err(SyntaxError {
                        loc,
                        message: "unknown alias".into(),
                    });
                }
            },
            Event::Scalar(text, style, anchor, _tag) => Some((
                Node {
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: matches!(style, ScalarStyle::Plain),
                    },
                    loc,
                },
                anchor,
            )),
            Event::SequenceStart(_, anchor, _) => {
                stack.push(Frame::Seq(Vec::new(), loc, anchor));
                None
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push(Frame::Map(Vec::new(), None, loc, anchor));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, l, anchor)) => Some((
                    Node {
                        value: Value::Seq(items),
                        loc: l,
                    },
                    anchor,
                )),
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(entries, _, l, anchor)) => Some((
                    Node {
                        value: Value::Map(expand_merge_keys(entries)),
                        loc: l,
                    },
                    anchor,
                )),
                _ => None,
            },
            _ => None,
        };
        if let Some((node, anchor)) = finished {
            if anchor != 0 {
                let size = size_of(&node);
                anchors.insert(anchor, (node.clone(), size));
            }
            match stack.last_mut() {
                Some(Frame::Seq(items, ..)) => items.push(node),
                Some(Frame::Map(entries, pending, ..)) => match pending.take() {
                    Some(key) => entries.push((key, node)),
                    None => *pending = Some(node),
                },
                None => current = Some(node),
            }
        }
    }
    Ok(docs)
}

/// The nodes carrying a local tag (`!reset`, `!override`), by where they start, with the tag's
/// name (`reset`). A stream that does not parse has none (its error comes from [`parse`]).
#[must_use]
pub fn local_tags(src: &str) -> HashMap<(u32, u32), String> {
    let mut out = HashMap::new();
    for item in Parser::new_from_str(src) {
        let Ok((event, span)) = item else {
            break;
        };
        if let Some(tag) = event.tag()
            && tag.handle() == "!"
        {
            let loc = loc_of(&span);
            out.insert((loc.line, loc.column), tag.suffix().to_owned());
        }
    }
    out
}

/// Parses the first document (an empty file is an empty scalar at 1:1).
pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    Ok(parse_documents(src)?.into_iter().next().unwrap_or(Node {
        value: Value::Scalar {
            text: String::new(),
            plain: true,
        },
        loc: Loc { line: 1, column: 1 },
    }))
}

fn expand_merge_keys(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    if !entries
        .iter()
        .any(|(k, _)| matches!(&k.value, Value::Scalar { text, plain: true } if text == "<<"))
    {
        return entries;
    }
    let mut own = Vec::new();
    let mut merged = Vec::new();
    for (k, v) in entries {
        if matches!(&k.value, Value::Scalar { text, plain: true } if text == "<<") {
            match v.value {
                Value::Map(m) => merged.extend(m),
                Value::Seq(items) => {
                    for item in items {
                        if let Value::Map(m) = item.value {
                            merged.extend(m);
                        }
                    }
                }
                Value::Scalar { .. } => own.push((k, v)),
            }
        } else {
            own.push((k, v));
        }
    }
    for (k, v) in merged {
        if !own.iter().any(|(ok, _)| ok.scalar() == k.scalar()) {
            own.push((k, v));
        }
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_nested_records_locations() {
        let n = parse("a:\n  b: [1, two]\n  c: 'x'\n").expect("valid yaml");
        let b = n.get("a").and_then(|a| a.get("b")).expect("a.b");
        assert_eq!(b.loc, Loc { line: 2, column: 6 });
        let Value::Seq(items) = &b.value else {
            panic!("expected seq")
        };
        assert_eq!(items[1].scalar(), Some("two"));
        assert_eq!(
            items[1].loc,
            Loc {
                line: 2,
                column: 10
            }
        );
        let c = n.get("a").and_then(|a| a.get("c")).expect("a.c");
        assert_eq!(
            c.value,
            Value::Scalar {
                text: "x".into(),
                plain: false
            }
        );
    }

    #[test]
    fn parse_merge_keys_and_aliases_expand() {
        let n = parse("base: &b {x: 1, y: 2}\nsvc:\n  <<: *b\n  y: 3\n").expect("valid yaml");
        let svc = n.get("svc").expect("svc");
        assert_eq!(svc.get("x").and_then(Node::scalar), Some("1"));
        assert_eq!(svc.get("y").and_then(Node::scalar), Some("3"));
    }

    #[test]
    fn parse_malformed_reports_location() {
        let err = parse("a: [1, 2\nb: 3\n").expect_err("invalid yaml");
        assert!(err.loc.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn parse_alias_bomb_is_refused() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&src).expect_err("expands to 10^12 nodes");
        assert!(
            err.message.contains("aliases expand to more than"),
            "{err:?}"
        );
        assert!(err.loc.line >= 2, "{err:?}");
    }

    #[test]
    fn parse_multi_document_stream() {
        let docs = parse_documents("a: 1\n---\nb: 2\n").expect("valid yaml");
        assert_eq!(docs.len(), 2);
    }
}

#[cfg(test)]
mod column_tests {
    use super::*;

    #[test]
    fn parse_columns_after_multibyte_text_count_characters() {
        let n = parse("a: {ü: 1, b: x}\n").expect("valid yaml");
        let b = n.get("a").and_then(|a| a.get("b")).expect("a.b");
        // `a: {ü: 1, b: x}`: `x` is the 14th character (the 15th byte).
        assert_eq!(
            b.loc,
            Loc {
                line: 1,
                column: 14
            }
        );
    }

    #[test]
    fn parse_quoted_and_block_scalars_locate_their_text() {
        let n = parse("a: 'q'\nb: |\n  text\nc:\n  - \"x\"\n").expect("valid yaml");
        // A quoted scalar starts at its quote, a block scalar at its first line of text.
        assert_eq!(n.get("a").map(|v| v.loc), Some(Loc { line: 1, column: 4 }));
        assert_eq!(n.get("b").map(|v| v.loc), Some(Loc { line: 3, column: 3 }));
        let Some(Value::Seq(items)) = n.get("c").map(|v| &v.value) else {
            panic!("c is a list")
        };
        assert_eq!(items[0].loc, Loc { line: 5, column: 5 });
    }
}
