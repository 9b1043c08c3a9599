//! Static checks of a loaded project: names, types, lints.
//!
//! Owns: every error and warning of LANGUAGE.md 6 (codes in `diagnostic::Code`), and their
//! rendering for people (miette), JSON lines and GitHub annotations.
//! Must not: lower flows or run anything.

pub mod command;

use crate::diagnostic::Diagnostic;
use crate::project::Project;

/// Every diagnostic of the project (syntax errors included), sorted by file and position.
pub fn check(project: &Project) -> Vec<Diagnostic> {
    let mut diagnostics = project.diagnostics.clone();
    diagnostics.sort_by(|a, b| (&a.file, a.span.start).cmp(&(&b.file, b.span.start)));
    diagnostics
}
