//! `E0017` (a wait of zero length), `W0005` (a wait longer than one year) and `W0007` (an
//! awaited event named like a declared segment: `wait for a where X or vip up to 1d` waits for
//! `a` or for an event `vip`, by the rule of LANGUAGE.md on `or` in a `wait for`).
//!
//! ## What it does
//! Looks at every literal duration of `wait D`, `wait for ... up to D` and `when every D`.
//!
//! ## Why is this bad?
//! `wait 0s` does nothing and usually hides a typo (`wait 0d` for `wait 1d`). A wait of more
//! than a year keeps instances (and their stored state) alive for that long, and nobody
//! remembers why a message arrives 14 months later.
//!
//! ## Example
//! ```text
//! wait 0s        # E0017
//! wait 400d      # W0005
//! wait for order_completed where event.total > 50 or vip up to 2d   # W0007 (`vip` a segment)
//! ```
//!
//! Must not: judge durations given through parameters (their values are checked where the
//! template is instantiated).

use crate::check::context::Context;
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast::{self, DurationUnit};

/// `E0017` on a literal zero duration; `what` names the construct (`` `wait` ``).
pub fn zero(ctx: &mut Context<'_>, unit: &SourceUnit, duration: &ast::DurationExpr, what: &str) {
    if let ast::DurationExpr::Literal(d) = duration {
        if d.amount == 0 {
            let diagnostic = Context::at(
                unit,
                Code::ZeroWait,
                d.span,
                format!("{what} of zero length"),
            )
            .with_label("zero")
            .with_help(if what.starts_with("`when every") {
                "give the schedule a positive period, such as `when every day` or `when every 1w`"
            } else {
                "give a positive duration such as `1h` or `1d`, or remove the step"
            });
            ctx.report(diagnostic);
        }
    }
}

/// `W0005` on a literal wait longer than a year.
pub fn long(ctx: &mut Context<'_>, unit: &SourceUnit, duration: &ast::DurationExpr) {
    if let ast::DurationExpr::Literal(d) = duration {
        let too_long = match d.unit {
            DurationUnit::Years => d.amount > 1,
            DurationUnit::Months => d.amount > 12,
            _ => d.approx_max_seconds() > 366 * 86_400,
        };
        if too_long {
            let diagnostic = Context::at(
                unit,
                Code::LongWait,
                d.span,
                format!("a wait of `{d}` is longer than one year"),
            )
            .with_label("more than a year")
            .with_help("shorten it, or start a separate flow later (`when anniversary of ...`, `when every ... for SEGMENT`)");
            ctx.report(diagnostic);
        }
    }
}

/// `E0017`/`W0005` through a template's arguments: `after: 0s` given to a template that writes
/// `wait after`.
pub fn arguments(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    template: &ast::FlowTemplateDecl,
    args: &[ast::Arg],
) {
    for (position, param) in template.params.iter().enumerate() {
        if param.ty != ast::ParamType::Duration {
            continue;
        }
        let arg = args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.name == param.name.name))
            .or_else(|| args.get(position).filter(|a| a.name.is_none()));
        let Some(ast::ExprKind::Duration(d)) = arg.map(|a| &a.value.kind) else {
            continue;
        };
        if let Some(keyword) = waits_on(&template.body.steps, &param.name.name) {
            let literal = ast::DurationExpr::Literal(*d);
            zero(
                ctx,
                unit,
                &literal,
                &format!("`{keyword} {}`", param.name.name),
            );
            long(ctx, unit, &literal);
        }
    }
}

/// How a block waits for the duration parameter `name`, if it does: `wait` (`wait name`) or
/// `up to` (`wait for ... up to name`), the first one written.
fn waits_on(steps: &[ast::Step], name: &str) -> Option<&'static str> {
    let is = |d: &ast::DurationExpr| matches!(d, ast::DurationExpr::Param(p) if p.name == name);
    steps.iter().find_map(|step| match &step.kind {
        ast::StepKind::Wait { duration } => is(duration).then_some("wait"),
        ast::StepKind::WaitFor(w) => {
            if is(&w.timeout) {
                return Some("up to");
            }
            let inner = match &w.body {
                ast::WaitForBody::None => None,
                ast::WaitForBody::Received(b) => waits_on(&b.steps, name),
                ast::WaitForBody::Arms(arms) => first_wait(arms.iter().map(|a| &a.block), name),
            };
            inner.or_else(|| first_wait(w.otherwise.iter(), name))
        }
        ast::StepKind::If {
            branches,
            otherwise,
        } => first_wait(
            branches.iter().map(|b| &b.block).chain(otherwise.iter()),
            name,
        ),
        ast::StepKind::Split { arms } => first_wait(arms.iter().map(|a| &a.block), name),
        _ => None,
    })
}

fn first_wait<'a>(
    mut blocks: impl Iterator<Item = &'a ast::Block>,
    name: &str,
) -> Option<&'static str> {
    blocks.find_map(|b| waits_on(&b.steps, name))
}

/// `W0007` on an awaited event whose name is a declared segment (and not a parameter).
pub fn segment_as_event(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    scope: crate::check::context::Scope<'_>,
    wait: &ast::WaitFor,
) {
    for (i, matcher) in wait.events.iter().enumerate() {
        let name = matcher.event.name.as_str();
        if scope.param(name).is_some() || ctx.segment(name).is_none() {
            continue;
        }
        let previous = i.checked_sub(1).and_then(|p| wait.events.get(p));
        let filter = previous.and_then(|m| m.filter.as_ref());
        let (message, help) = match filter {
            Some(filter) => {
                let condition = unit
                    .text
                    .get(filter.span.start..filter.span.end)
                    .unwrap_or("...");
                (
                    format!("`{name}` is read as a second awaited event, not the segment `{name}`"),
                    format!("put the condition in parentheses: `where ({condition} or {name})`"),
                )
            }
            None => (
                format!("`{name}` is read as an awaited event, not the segment `{name}`"),
                format!(
                    "`wait for` waits for events; to test the segment, write it in a `where (...)` condition or in an `if {name} {{ }}` after the wait"
                ),
            ),
        };
        let diagnostic = Context::at(unit, Code::SegmentAsEvent, matcher.event.span, message)
            .with_label(format!("an event named `{name}`"))
            .with_help(help);
        ctx.report(diagnostic);
    }
}
