//! `image_policy: {semver: "^1.4"}` of a container, and `x-refinery: {image_policy: …}` of a
//! compose service: the range is checked here (and against the declared image where it is known).

use super::reader::Reader;
use crate::image_policy::{ImagePolicy, check_declared, parse_range};
use crate::yaml::{Loc, Node};

const EXAMPLE: &str = "image_policy: {semver: \"^1.4\"}";

/// Reads the mapping at `path`; `image` is the declared image when known (a container's), to check
/// against the range. Errors name the `semver` field and its place.
pub(crate) fn read_image_policy(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
    image: Option<&str>,
) -> Option<(ImagePolicy, Loc)> {
    let mut m = r.map(node, path)?;
    let field = format!("{path}.semver");
    let semver = m.get("semver");
    m.finish(r);
    let Some(n) = semver else {
        r.error_hint(
            node.loc,
            &field,
            "`image_policy` needs `semver`, the range of versions to follow",
            EXAMPLE,
        );
        return None;
    };
    let range = r.string(n, &field)?;
    let checked = match image {
        Some(image) => check_declared(image, &range),
        None => parse_range(&range).map(|_| ()).map_err(|e| (e, hint())),
    };
    if let Err((message, hint)) = checked {
        r.error_hint(n.loc, &field, message, hint);
        return None;
    }
    Some((ImagePolicy { semver: range }, n.loc))
}

fn hint() -> String {
    "write a range as Cargo reads them: `^1.4`, `~1.4.2`, `>=1.2, <2`, `1.*`".to_owned()
}
