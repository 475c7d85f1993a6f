//! "did you mean `web`?" for misspelled names.

/// Edit distance between two strings, by chars: insertions, deletions, substitutions and swaps of
/// two neighbours (`imgae` is one edit from `image`) each count one (optimal string alignment).
#[must_use]
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the table.
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 0..a.len() {
        let mut cur = vec![i + 1; b.len() + 1];
        for j in 0..b.len() {
            let cost = usize::from(a[i] != b[j]);
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(before[j - 1] + 1);
            }
            cur[j + 1] = d;
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// The closest candidate within a third of the word's length (at least 2 edits), if any. Between
/// equally close candidates, the one nearest in length wins (`nodse` → `nodes`, not `node`), then
/// the first. Failing that, the one candidate having the word as a whole `_`-separated part
/// (`grace` → `grace_period`, `interval` → `check_interval`).
#[must_use]
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    let limit = (word.chars().count() / 3).max(2);
    let lower = word.to_lowercase();
    let len = word.chars().count();
    let closest = candidates
        .iter()
        .map(|c| {
            let d = distance(&lower, &c.to_lowercase());
            (d, c.chars().count().abs_diff(len), *c)
        })
        .filter(|(d, _, _)| *d <= limit)
        .min_by_key(|(d, len_diff, _)| (*d, *len_diff))
        .map(|(_, _, c)| c);
    if closest.is_some() || len < 3 {
        return closest;
    }
    let mut parts = candidates
        .iter()
        .filter(|c| c.to_lowercase().split('_').any(|part| part == lower));
    match (parts.next(), parts.next()) {
        (Some(only), None) => Some(*only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggest_close_name() {
        assert_eq!(suggest("imgae", ["image", "name", "ports"]), Some("image"));
        assert_eq!(
            suggest("check_intervall", ["check_interval", "mode"]),
            Some("check_interval")
        );
        assert_eq!(suggest("zzzzzz", ["image", "name"]), None);
    }

    #[test]
    fn distance_counts_a_swap_as_one_edit() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "", 3),
            ("", "abc", 3),
            ("image", "image", 0),
            ("imgae", "image", 1),
            ("nodse", "nodes", 1),
            ("nodse", "node", 1),
            ("kitten", "sitting", 3),
            ("ca", "abc", 3),
            ("ü", "u", 1),
        ] {
            assert_eq!(distance(a, b), d, "{a} → {b}");
            assert_eq!(distance(b, a), d, "{b} → {a}");
        }
    }

    #[test]
    fn suggest_prefers_the_candidate_of_the_same_length_on_a_tie() {
        assert_eq!(suggest("nodse", ["node", "nodes"]), Some("nodes"));
        assert_eq!(suggest("nod", ["node", "nodes"]), Some("node"));
        assert_eq!(suggest("Image", ["image"]), Some("image"));
    }

    #[test]
    fn suggest_whole_part_of_one_key() {
        assert_eq!(
            suggest("grace", ["action", "grace_period"]),
            Some("grace_period")
        );
        assert_eq!(
            suggest("interval", ["check_interval", "mode"]),
            Some("check_interval")
        );
        let ages = ["max_unused_image_age", "max_unused_volume_age"];
        assert_eq!(suggest("unused", ages), None, "two keys have the part");
        assert_eq!(suggest("ag", ["age_x"]), None, "too short to guess from");
    }
}
