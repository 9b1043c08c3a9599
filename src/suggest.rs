//! "Did you mean" suggestions for misspelt names.
//!
//! Owns: choosing the closest candidate by edit distance. Must not: build diagnostics.

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Two edits turn any one- or two-letter name into any other short name: one is enough.
    let length = name.chars().count();
    let limit = if length <= 2 {
        1
    } else {
        (length / 3).max(1) + 1
    };
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_typo() {
        assert_eq!(
            closest("cart_remindr", ["cart_reminder", "welcome"]),
            Some("cart_reminder")
        );
    }

    #[test]
    fn short_names_get_close_suggestions_only() {
        assert_eq!(closest("y", ["mm", "hi"]), None);
        assert_eq!(closest("hj", ["mm", "hi"]), Some("hi"));
    }

    #[test]
    fn ignores_far_names() {
        assert_eq!(closest("abc", ["welcome_series"]), None);
    }
}
