//! `E0016`: steps after `stop`.
//!
//! ## What it does
//! Finds steps that follow a step that always ends the instance: `stop`, an `if` whose every
//! branch (with an `else`) stops, or a `wait for` whose received and timed-out paths both stop.
//!
//! ## Why is this bad?
//! Those steps can never run; usually a `stop` was meant for one branch only, or the steps
//! belong inside a branch.
//!
//! ## Example
//! ```text
//! flow f {
//!     when signed_up
//!     stop
//!     send welcome_email      # E0016
//! }
//! ```
//!
//! Must not: judge the steps themselves.

use crate::check::context::Context;
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast::{self, StepKind};

pub fn check(ctx: &mut Context<'_>, unit: &SourceUnit, steps: &[ast::Step]) {
    let Some(index) = steps.iter().position(always_stops) else {
        return;
    };
    let (Some(stop), Some(next), Some(last)) =
        (steps.get(index), steps.get(index + 1), steps.last())
    else {
        return;
    };
    let d = Context::at(
        unit,
        Code::Unreachable,
        next.span.to(last.span),
        "these steps can never run",
    )
    .with_label("unreachable")
    .with_related(
        stop.span,
        if matches!(stop.kind, StepKind::Stop) {
            "the instance stops here"
        } else {
            "every path through this step stops"
        },
    )
    .with_help("remove the steps, or move the `stop` into the branch where the flow should end");
    ctx.report(d);
}

/// Whether every path through `step` ends the instance.
pub fn always_stops(step: &ast::Step) -> bool {
    match &step.kind {
        StepKind::Stop => true,
        StepKind::If {
            branches,
            otherwise: Some(otherwise),
        } => branches.iter().all(|b| block_stops(&b.block.steps)) && block_stops(&otherwise.steps),
        StepKind::WaitFor(wait) => {
            let received = match &wait.body {
                ast::WaitForBody::None => false,
                ast::WaitForBody::Received(b) => block_stops(&b.steps),
                ast::WaitForBody::Arms(arms) => wait.events.iter().all(|m| {
                    arms.iter()
                        .any(|a| a.event.name == m.event.name && block_stops(&a.block.steps))
                }),
            };
            received
                && wait
                    .otherwise
                    .as_ref()
                    .is_some_and(|b| block_stops(&b.steps))
        }
        StepKind::Split { arms } => {
            !arms.is_empty() && arms.iter().all(|a| block_stops(&a.block.steps))
        }
        _ => false,
    }
}

fn block_stops(steps: &[ast::Step]) -> bool {
    steps.iter().any(always_stops)
}
