//! `E0028`: the `on` arms of `wait for A or B ... { on A { } on B { } }` do not match the
//! awaited events.
//!
//! ## What it does
//! Each awaited event needs one `on` arm, and each arm must name an awaited event, once.
//!
//! ## Why is this bad?
//! An arm for an event that is not awaited never runs (often a typo); an awaited event
//! without an arm goes on with the next step, which is rarely what the author meant in a
//! block that spells out every case.
//!
//! ## Example
//! ```text
//! wait for order_completed or cart_emptied up to 2d {
//!     on order_completed { stop }
//!     on cart_empty { send sorry }      # E0028: `cart_empty` is not awaited
//! }
//! ```
//!
//! Must not: look inside the arms.

use crate::check::context::{did_you_mean, Context};
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast;

pub fn check(ctx: &mut Context<'_>, unit: &SourceUnit, wait: &ast::WaitFor, arms: &[ast::OnArm]) {
    let awaited: Vec<&str> = wait.events.iter().map(|m| m.event.name.as_str()).collect();
    for (index, arm) in arms.iter().enumerate() {
        crate::check::rules::event_names::check(
            ctx,
            unit,
            crate::check::context::Scope::default(),
            &arm.event,
        );
        let name = arm.event.name.as_str();
        if !awaited.contains(&name) {
            let help = did_you_mean(name, awaited.iter().copied()).unwrap_or_else(|| {
                format!(
                    "this wait awaits {}; add `or {name}` to the `wait for` line, or remove the arm",
                    awaited.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
                )
            });
            let d = Context::at(
                unit,
                Code::MissingArmForEvent,
                arm.event.span,
                format!("`on {name}`: the wait does not await `{name}`"),
            )
            .with_label("not awaited")
            .with_help(help);
            ctx.report(d);
        } else if let Some(first) = arms[..index].iter().find(|a| a.event.name == name) {
            let d = Context::at(
                unit,
                Code::MissingArmForEvent,
                arm.event.span,
                format!("two `on {name}` arms"),
            )
            .with_label("second arm")
            .with_related(first.event.span, "first arm")
            .with_help("keep one arm per awaited event");
            ctx.report(d);
        }
    }
    for matcher in &wait.events {
        if !arms.iter().any(|a| a.event.name == matcher.event.name) {
            let name = &matcher.event.name;
            let d = Context::at(
                unit,
                Code::MissingArmForEvent,
                matcher.event.span,
                format!("no `on {name}` arm for an awaited event"),
            )
            .with_label("awaited, but no arm")
            .with_help(format!(
                "add `on {name} {{ ... }}` to the block (it may be empty)"
            ));
            ctx.report(d);
        }
    }
}
