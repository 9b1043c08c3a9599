//! `E0018`: quiet hours whose start equals their end.
//!
//! ## What it does
//! Compares the two times of `quiet hours HH:MM..HH:MM` (in a flow and in `policy`).
//!
//! ## Why is this bad?
//! A window from 09:00 to 09:00 is either empty or the whole day; nobody can tell which was
//! meant, and neither is useful.
//!
//! ## Example
//! ```text
//! quiet hours 21:00..21:00     # E0018
//! ```
//!
//! Must not: judge other header lines.

use crate::check::context::Context;
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast;

pub fn check(ctx: &mut Context<'_>, unit: &SourceUnit, q: &ast::QuietHours) {
    if q.start.minutes_since_midnight() == q.end.minutes_since_midnight() {
        let d = Context::at(
            unit,
            Code::EmptyQuietHours,
            q.start.span.to(q.end.span),
            format!("quiet hours start and end at `{}`", q.start),
        )
        .with_label("an empty window")
        .with_help(
            "give the window a length, such as `quiet hours 21:00..08:00`, or remove the line",
        );
        ctx.report(d);
    }
}
