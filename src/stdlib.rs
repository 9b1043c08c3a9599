//! The standard library of segments and flow templates, embedded in the binary.
//!
//! Owns: the list of stdlib modules (sources in the repository's `stdlib/` folder).
//! Must not: parse or check them (the project loader does, like any other file).

/// `(name, source)` of every stdlib module, sorted by name.
pub const MODULES: &[(&str, &str)] = &[
    ("birthday", include_str!("../stdlib/birthday.flow")),
    ("browse", include_str!("../stdlib/browse.flow")),
    ("cart", include_str!("../stdlib/cart.flow")),
    ("consent", include_str!("../stdlib/consent.flow")),
    ("espresso", include_str!("../stdlib/espresso.flow")),
    (
        "post_purchase",
        include_str!("../stdlib/post_purchase.flow"),
    ),
    ("reactivation", include_str!("../stdlib/reactivation.flow")),
    ("rewards", include_str!("../stdlib/rewards.flow")),
    ("welcome", include_str!("../stdlib/welcome.flow")),
];

/// The source of stdlib module `name`.
pub fn module(name: &str) -> Option<&'static str> {
    MODULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}
