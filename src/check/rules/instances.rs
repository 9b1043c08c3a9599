//! `E0004` (unknown flow template) and `E0014` (a template instantiated with wrong arguments):
//! `flow NAME = TEMPLATE(ARG: VALUE, ...)`.
//!
//! ## What it does
//! Finds the template, then checks the arguments against its parameters: every parameter
//! given once, no unknown names, and each value of the parameter's kind (a declared message
//! for `message`, a segment for `segment`, a duration for `duration`, ...).
//!
//! ## Why is this bad?
//! The template's body was checked once with its parameters typed; only arguments of those
//! types make the instantiated flow correct.
//!
//! ## Example
//! ```text
//! flow cart = abandoned_cart(abandoned: cart_abandoned, reminder: cart_email,
//!                            daily: cart_daily, reminders: "two")     # E0014
//! ```
//!
//! Must not: check the template body again (that happens once, at the template).

use crate::check::context::{did_you_mean, stdlib_help, Context, Scope};
use crate::check::rules::expressions;
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast;

pub fn check(ctx: &mut Context<'_>, unit: &SourceUnit, decl: &ast::FlowInstanceDecl) {
    let template = &decl.template;
    let Some((_, found)) = ctx.template(&template.name) else {
        let help = stdlib_help(&template.name)
            .or_else(|| {
                let hint = did_you_mean(&template.name, ctx.symbols.templates.keys().map(String::as_str));
                ctx.kind_first(&template.name, "a flow template", hint)
            })
            .unwrap_or_else(|| "declare it with `flow template NAME(...) { ... }`, or add the `use stdlib/...` that has it".to_string());
        let d = Context::at(
            unit,
            Code::UnknownTemplate,
            template.span,
            format!("unknown flow template `{}`", template.name),
        )
        .with_label("not declared")
        .with_help(help);
        ctx.report(d);
        // Still look at the arguments: a misspelt message there is worth knowing now.
        for arg in &decl.args {
            if let ast::ExprKind::Name(ident) = &arg.value.kind {
                ctx.used_messages.insert(ident.name.clone());
                ctx.used_segments.insert(ident.name.clone());
            }
        }
        return;
    };
    let what = format!("template `{}`", template.name);
    expressions::arguments(
        ctx,
        unit,
        Scope::default(),
        &what,
        &found.params,
        &decl.args,
        decl.args_span,
    );
    super::waits::arguments(ctx, unit, found, &decl.args);
}
