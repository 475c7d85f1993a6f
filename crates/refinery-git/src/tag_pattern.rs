//! Which tags a daemon follows (`--follow-tag 'v*'`), and which of them is the highest, in version
//! order.

use std::cmp::Ordering;
use std::fmt;

use crate::git_error::{GitError, Result};

/// A glob over tag names (`v*`, `release-1.*`, `v[0-9]*`): `*` matches any run of characters,
/// `/` included, as `git tag --list` does; `?`, `[..]` and `{a,b}` work too.
#[derive(Clone)]
pub struct TagPattern {
    text: String,
    matcher: globset::GlobMatcher,
}

impl TagPattern {
    /// Errors: [`GitError::InvalidTagPattern`] for an empty pattern or one that is not a glob.
    pub fn new(pattern: &str) -> Result<TagPattern> {
        let invalid = |reason: String| GitError::InvalidTagPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        if pattern.trim().is_empty() {
            return Err(invalid("it is empty".to_owned()));
        }
        if pattern.starts_with("refs/") {
            return Err(invalid(
                "it names a ref; give the tag's name as `git tag` lists it".to_owned(),
            ));
        }
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| invalid(e.kind().to_string()))?;
        Ok(TagPattern {
            text: pattern.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    /// The pattern as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the tag `name` (short, `v1.2.0`) matches.
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }

    /// The highest of `names` that matches, in [version order](cmp_versions).
    #[must_use]
    pub fn highest<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        names
            .into_iter()
            .filter(|n| self.matches(n))
            .max_by(|a, b| cmp_versions(a, b))
    }
}

impl fmt::Debug for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TagPattern({:?})", self.text)
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for TagPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for TagPattern {}

/// Version order of tag names, a total order:
///
/// - A name that reads as a version — a prefix without digits (`v`, `release-`, none), numbers
///   separated by dots (`1.10.2`), then optionally `-` and a pre-release (`rc.1`) and `+` and
///   build metadata — is above every name that does not.
/// - Versions with different prefixes compare by prefix (as strings: `release-9` < `v1`).
/// - Versions compare by their numbers (`1.10` > `1.9`; a missing number is 0), then a release is
///   above its pre-releases (`1.0.0` > `1.0.0-rc.2` > `1.0.0-rc.1` > `1.0.0-beta`), pre-release
///   parts as semver orders them (numbers numerically, below words). Build metadata does not
///   count.
/// - Other names compare with runs of digits as numbers (`build10` > `build9`).
/// - What is still equal compares as plain strings, so no two different names are equal.
#[must_use]
pub fn cmp_versions(a: &str, b: &str) -> Ordering {
    let by_kind = match (Version::parse(a), Version::parse(b)) {
        (Some(va), Some(vb)) => va.cmp_precedence(&vb),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => natural(a, b),
    };
    by_kind.then_with(|| a.cmp(b))
}

#[derive(Debug, PartialEq, Eq)]
struct Version<'a> {
    /// What comes before the first digit (`v`, `release-`).
    prefix: &'a str,
    numbers: Vec<u64>,
    /// Dot-separated identifiers after `-`; empty for a release.
    pre: Vec<&'a str>,
}

impl<'a> Version<'a> {
    fn parse(name: &'a str) -> Option<Version<'a>> {
        let start = name.find(|c: char| c.is_ascii_digit())?;
        let rest = &name[start..];
        let (rest, _build) = match rest.split_once('+') {
            Some((r, b)) if !b.is_empty() && b.split('.').all(is_identifier) => (r, Some(b)),
            Some(_) => return None,
            None => (rest, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) if !p.is_empty() && p.split('.').all(is_identifier) => {
                (c, p.split('.').collect())
            }
            Some(_) => return None,
            None => (rest, Vec::new()),
        };
        let numbers = core
            .split('.')
            .map(|n| {
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    n.parse::<u64>().ok()
                }
            })
            .collect::<Option<Vec<u64>>>()?;
        Some(Version {
            prefix: &name[..start],
            numbers,
            pre,
        })
    }

    fn cmp_precedence(&self, other: &Version<'_>) -> Ordering {
        let by_prefix = natural(self.prefix, other.prefix);
        if by_prefix != Ordering::Equal {
            return by_prefix;
        }
        let len = self.numbers.len().max(other.numbers.len());
        for i in 0..len {
            let a = self.numbers.get(i).copied().unwrap_or(0);
            let b = other.numbers.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (a, b) in self.pre.iter().zip(&other.pre) {
                    let ord = match (a.parse::<u64>(), b.parse::<u64>()) {
                        (Ok(x), Ok(y)) => x.cmp(&y),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => a.cmp(b),
                    };
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                self.pre.len().cmp(&other.pre.len())
            }
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Strings compared piecewise: runs of digits as numbers, everything else by bytes.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(cx), Some(cy)) if cx.is_ascii_digit() && cy.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (trim_zeros(&x[..nx]), trim_zeros(&y[..ny]));
                let ord = dx.len().cmp(&dy.len()).then_with(|| dx.cmp(dy));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(cx), Some(cy)) => {
                if cx != cy {
                    return cx.cmp(cy);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmp_versions_sorts_a_realistic_list() {
        let mut tags = vec![
            "v1.10.0",
            "v1.9.3",
            "v1.0.0",
            "v1.0.0-rc.1",
            "v1.0.0-rc.10",
            "v1.0.0-rc.2",
            "v1.0.0-beta",
            "v1.0.0-alpha.1",
            "v2.0.0+build.5",
            "v1.10",
            "latest",
            "v0.9",
            "build10",
            "build9",
        ];
        tags.sort_by(|a, b| cmp_versions(a, b));
        assert_eq!(
            tags,
            [
                "latest",
                "build9",
                "build10",
                "v0.9",
                "v1.0.0-alpha.1",
                "v1.0.0-beta",
                "v1.0.0-rc.1",
                "v1.0.0-rc.2",
                "v1.0.0-rc.10",
                "v1.0.0",
                "v1.9.3",
                "v1.10",
                "v1.10.0",
                "v2.0.0+build.5",
            ]
        );
    }

    #[test]
    fn cmp_versions_equal_values_still_order_by_name() {
        assert_eq!(cmp_versions("v1.2", "v1.2.0"), Ordering::Less);
        assert_eq!(cmp_versions("v1.2.0", "v1.2.0"), Ordering::Equal);
        assert_eq!(cmp_versions("1.2.0+a", "1.2.0+b"), Ordering::Less);
    }

    #[test]
    fn cmp_versions_huge_numbers_do_not_overflow() {
        let big = "v99999999999999999999999.0";
        assert_eq!(
            cmp_versions(big, "v1.0"),
            Ordering::Less,
            "not a version: below all"
        );
        assert_eq!(
            natural("a99999999999999999999999", "a100"),
            Ordering::Greater
        );
        assert_eq!(natural("a007", "a7"), Ordering::Equal);
    }

    #[test]
    fn tag_pattern_matches_like_git_tag_list() {
        let p = TagPattern::new("v*").expect("glob");
        assert!(p.matches("v1.0.0"));
        assert!(p.matches("v2/hotfix"));
        assert!(!p.matches("release-1"));
        let p = TagPattern::new("release-1.*").expect("glob");
        assert!(p.matches("release-1.4"));
        assert!(!p.matches("release-2.0"));
    }

    #[test]
    fn tag_pattern_highest_picks_by_version_not_by_string() {
        let p = TagPattern::new("v*").expect("glob");
        let tags = ["v1.9.0", "v1.10.0", "v1.10.0-rc.1", "other-9.9", "v1.2.0"];
        assert_eq!(p.highest(tags), Some("v1.10.0"));
        assert_eq!(p.highest(["x"]), None);
    }

    #[test]
    fn tag_pattern_invalid_is_an_error_with_the_pattern() {
        for bad in ["", "  ", "refs/tags/v*", "v[1"] {
            let err = TagPattern::new(bad).expect_err(bad);
            assert!(err.to_string().contains("failed to use"), "{err}");
        }
    }

    proptest::proptest! {
        /// A total order: antisymmetric, transitive, equal only for equal names.
        #[test]
        fn cmp_versions_is_a_total_order(
            a in "[vr]?[0-9]{0,2}(\\.[0-9]{1,2}){0,2}(-(rc|beta)(\\.[0-9])?)?(\\+b[0-9])?",
            b in "[vr]?[0-9]{0,2}(\\.[0-9]{1,2}){0,2}(-(rc|beta)(\\.[0-9])?)?(\\+b[0-9])?",
            c in "[vr]?[0-9]{0,2}(\\.[0-9]{1,2}){0,2}(-(rc|beta)(\\.[0-9])?)?(\\+b[0-9])?",
        ) {
            proptest::prop_assert_eq!(cmp_versions(&a, &b), cmp_versions(&b, &a).reverse());
            proptest::prop_assert_eq!(cmp_versions(&a, &b) == Ordering::Equal, a == b);
            if cmp_versions(&a, &b) != Ordering::Greater && cmp_versions(&b, &c) != Ordering::Greater {
                proptest::prop_assert_ne!(cmp_versions(&a, &c), Ordering::Greater);
            }
        }
    }
}
