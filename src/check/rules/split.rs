//! `E0013`: the shares of a `split` do not add up to 100%.
//!
//! ## What it does
//! Adds the shares of every arm of a `split`.
//!
//! ## Why is this bad?
//! Each contact falls in exactly one arm; with shares of 50% and 40% nobody knows where the
//! other 10% go (and with 60% and 60% the last arm is starved).
//!
//! ## Example
//! ```text
//! split {
//!     50% { send offer_a }
//!     40% { send offer_b }      # E0013: 90%
//! }
//! ```
//!
//! Must not: look inside the arms.

use crate::check::context::Context;
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast::{self, Span};

pub fn check(ctx: &mut Context<'_>, unit: &SourceUnit, step: Span, arms: &[ast::SplitArm]) {
    let total: f64 = arms.iter().map(|a| a.share.value).sum();
    if (total - 100.0).abs() < 1e-6 {
        return;
    }
    let keyword = Span::new(step.start, (step.start + "split".len()).min(step.end));
    let shown = if total.fract() == 0.0 {
        format!("{total:.0}%")
    } else {
        format!("{}%", (total * 100.0).round() / 100.0)
    };
    let mut d = Context::at(
        unit,
        Code::SplitShares,
        keyword,
        format!("the shares of this `split` add up to {shown}, not 100%"),
    )
    .with_label(format!("{shown} in all"));
    for arm in arms {
        d = d.with_related(arm.share.span, "share");
    }
    let help = if arms.is_empty() {
        "give the split arms such as `50% { ... } 50% { ... }`".to_string()
    } else if total < 100.0 {
        format!(
            "add {}% to an arm, or add an arm (it may be empty: `{}% {{ }}` keeps a control group)",
            (100.0 - total).round(),
            (100.0 - total).round()
        )
    } else {
        format!("take {}% away from the arms", (total - 100.0).round())
    };
    ctx.report(d.with_help(help));
}
