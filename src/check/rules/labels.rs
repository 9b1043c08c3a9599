//! `E0032`: two steps of one flow (or flow template) with the same `step NAME:` label.
//!
//! ## What it does
//! Collects the labels of every step of a flow body, nested blocks included, and reports each
//! label given a second time.
//!
//! ## Why is this bad?
//! `on change migrate` moves an instance waiting at a labelled step of the old version to the
//! step with that label in the new one: a label must name one step.
//!
//! ## Example
//! ```text
//! flow f {
//!     when signed_up
//!     step reminder: wait 1d
//!     send first
//!     step reminder: wait 2d      # E0032
//!     send second
//! }
//! ```
//!
//! Must not: judge which steps are labelled (any step may be).

use crate::check::context::Context;
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast::{self, StepKind, WaitForBody};

/// Checks the labels of one flow or flow template body.
pub fn check(ctx: &mut Context<'_>, unit: &SourceUnit, flow: &ast::Ident, body: &ast::FlowBody) {
    let mut seen: Vec<&ast::Ident> = Vec::new();
    visit(ctx, unit, flow, &body.steps, &mut seen);
}

fn visit<'a>(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    flow: &ast::Ident,
    steps: &'a [ast::Step],
    seen: &mut Vec<&'a ast::Ident>,
) {
    for step in steps {
        if let Some(label) = &step.label {
            if let Some(first) = seen.iter().find(|l| l.name == label.name) {
                let d = Context::at(
                    unit,
                    Code::DuplicateLabel,
                    label.span,
                    format!(
                        "the label `{}` is given twice in flow `{}`",
                        label.name, flow.name
                    ),
                )
                .with_label("second step with this label")
                .with_related(first.span, "first one here")
                .with_help("rename one of the labels: a label names one step of its flow");
                ctx.report(d);
            } else {
                seen.push(label);
            }
        }
        match &step.kind {
            StepKind::If {
                branches,
                otherwise,
            } => {
                for branch in branches {
                    visit(ctx, unit, flow, &branch.block.steps, seen);
                }
                if let Some(block) = otherwise {
                    visit(ctx, unit, flow, &block.steps, seen);
                }
            }
            StepKind::Split { arms } => {
                for arm in arms {
                    visit(ctx, unit, flow, &arm.block.steps, seen);
                }
            }
            StepKind::WaitFor(w) => {
                match &w.body {
                    WaitForBody::None => {}
                    WaitForBody::Received(block) => visit(ctx, unit, flow, &block.steps, seen),
                    WaitForBody::Arms(arms) => {
                        for arm in arms {
                            visit(ctx, unit, flow, &arm.block.steps, seen);
                        }
                    }
                }
                if let Some(block) = &w.otherwise {
                    visit(ctx, unit, flow, &block.steps, seen);
                }
            }
            _ => {}
        }
    }
}
