//! "Did you mean" suggestions for misspelt names.
//!
//! Owns: choosing the closest candidate by edit distance. Must not: build diagnostics.

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1) + 1;
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
    fn ignores_far_names() {
        assert_eq!(closest("abc", ["welcome_series"]), None);
    }
}
