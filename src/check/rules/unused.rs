//! `W0002` (a segment declared but never used) and `W0003` (a message declared but never
//! sent).
//!
//! ## What it does
//! Looks for the project's segments and messages that no flow, segment or template
//! argument names. Declarations of the stdlib that the project does not use are not
//! reported: a module offers more than each project needs.
//!
//! ## Why is this bad?
//! An unused message is often a flow that was meant to send it and does not (a typo in
//! `send`, a step that was removed); an unused segment is dead weight that readers must
//! still understand.
//!
//! ## Example
//! ```text
//! message old_promo: email { subject: "..." body: "..." }    # W0003: nothing sends it
//! ```
//!
//! Must not: report stdlib declarations (also when a stdlib file is checked on its own).

use crate::check::context::{is_project, Context};
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast;

/// A stdlib module checked as a file of its own (`flowc check stdlib/cart.flow`): a library,
/// whose declarations are offered, not owed a use.
fn is_stdlib_source(unit: &SourceUnit) -> bool {
    let stem = unit.path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    crate::stdlib::module(stem).is_some_and(|text| text == unit.text)
}

pub fn check(ctx: &mut Context<'_>) {
    let project = ctx.project;
    for (unit, item) in project.items() {
        if !is_project(unit) || is_stdlib_source(unit) {
            continue;
        }
        match item {
            ast::Item::Segment(d) if !ctx.used_segments.contains(&d.name.name) => {
                let diagnostic = Context::at(
                    unit,
                    Code::UnusedSegment,
                    d.name.span,
                    format!("segment `{}` is never used", d.name.name),
                )
                .with_label("declared here, used nowhere")
                .with_help(format!(
                    "use it in a flow (`when entering {0}`, `only if {0}`), or remove it",
                    d.name.name
                ));
                ctx.report(diagnostic);
            }
            ast::Item::Message(d) if !ctx.used_messages.contains(&d.name.name) => {
                let diagnostic = Context::at(
                    unit,
                    Code::UnusedMessage,
                    d.name.span,
                    format!("message `{}` is never sent", d.name.name),
                )
                .with_label("no flow sends it")
                .with_help(format!(
                    "send it from a flow (`send {}`), give it to a template, or remove it",
                    d.name.name
                ));
                ctx.report(diagnostic);
            }
            _ => {}
        }
    }
}
