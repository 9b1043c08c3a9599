//! The standard library of segments and flow templates, embedded in the binary.
//!
//! Owns: the list of stdlib modules (sources in the repository's `stdlib/` folder).
//! Must not: parse or check them (the project loader does, like any other file).

/// `(name, source)` of every stdlib module, sorted by name.
pub const MODULES: &[(&str, &str)] = &[("consent", include_str!("../stdlib/consent.flow"))];

/// The source of stdlib module `name`.
pub fn module(name: &str) -> Option<&'static str> {
    MODULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}
