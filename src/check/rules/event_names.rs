//! `E0023`: an event name that no record can ever have.
//!
//! ## What it does
//! Event names in records are normalised (RUNTIME.md 1): lower case, every run of other
//! characters one `_`, trimmed. A name in a `.flow` file such as `order__completed` or
//! `_signed_up` is normalised to something else (`order_completed`, `signed_up`), so it is
//! never matched as written.
//!
//! ## Why is this bad?
//! `when order__completed` would never start the flow, and nothing would say why.
//!
//! ## Example
//! ```text
//! flow f {
//!     when order__completed     # E0023: records arrive as `order_completed`
//!     send thanks
//! }
//! ```
//!
//! Must not: require event names to be declared (schemas are optional).

use crate::check::context::{Context, Scope};
use crate::compile::normalize_event_name;
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast;

pub fn check(ctx: &mut Context<'_>, unit: &SourceUnit, scope: Scope<'_>, event: &ast::Ident) {
    if scope.param(&event.name).is_some() {
        return;
    }
    let normal = normalize_event_name(&event.name);
    if normal != event.name {
        let help = if normal.is_empty() {
            "give the event a name with letters, such as `order_completed`".to_string()
        } else {
            format!("write `{normal}`: that is how records of this event arrive")
        };
        let d = Context::at(
            unit,
            Code::UnknownEvent,
            event.span,
            format!(
                "the event name `{}` is never received as written",
                event.name
            ),
        )
        .with_label(format!("records arrive as `{normal}`"))
        .with_help(help);
        ctx.report(d);
    }
}
