//! `E0023`: an event name that no record can ever have; `W0006`: an event without a schema
//! whose name is one or two letters away from one that has a schema (`cart_abandonned`) or
//! from an event the daemon records itself (`exit on unsubscribe` for `unsubscribed`).
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

/// An event name used by a flow or segment (not a template's `event` parameter).
pub fn check(ctx: &mut Context<'_>, unit: &SourceUnit, scope: Scope<'_>, event: &ast::Ident) {
    if scope.param(&event.name).is_some() {
        return;
    }
    if malformed(ctx, unit, event) {
        return;
    }
    near_schema(ctx, unit, event);
}

/// `E0023`; whether it was reported.
pub fn malformed(ctx: &mut Context<'_>, unit: &SourceUnit, event: &ast::Ident) -> bool {
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
        return true;
    }
    false
}

/// Events the daemon records itself (RUNTIME.md 1): known without a schema.
const BUILT_IN: &[&str] = &["unsubscribed", "email_opened", "email_clicked"];

/// `W0006`, in the project's files only.
fn near_schema(ctx: &mut Context<'_>, unit: &SourceUnit, event: &ast::Ident) {
    if !crate::check::context::is_project(unit)
        || ctx.schemas.contains_key(event.name.as_str())
        || BUILT_IN.contains(&event.name.as_str())
        || event.name.len() < 5
    {
        return;
    }
    let near = ctx
        .schemas
        .keys()
        .copied()
        .chain(BUILT_IN.iter().copied())
        .map(|k| (strsim::damerau_levenshtein(&event.name, k), k))
        .filter(|(distance, _)| *distance <= 2)
        .min();
    if let Some((_, declared)) = near {
        let d = Context::at(
            unit,
            Code::EventNearSchema,
            event.span,
            format!("`{}` is neither a declared nor a built-in event", event.name),
        )
        .with_label(format!("did you mean `{declared}`?"))
        .with_help(format!(
            "did you mean `{declared}`? as written, this name matches no record of `{declared}`; if `{}` is another event, declare `event {} {{ ... }}`",
            event.name, event.name
        ));
        ctx.report(d);
    }
}
