//! `E0020` and `E0006` inside message templates: `{{ event.NAME }}` in a message that a flow
//! sends where no `wait for` has received an event, or inside a `wait for` block whose events'
//! schemas do not declare `NAME`.
//!
//! ## What it does
//! Follows each flow (and template instantiation, with its message arguments) step by step,
//! noting for each `send` whether it stands in the block of a `wait for` and which events that
//! block received, and joins that with what the message's templates read from `event`.
//!
//! ## Why is this bad?
//! Outside such a block there is no received event: the template cannot be rendered (templates
//! are strict about undefined values) and the delivery fails for every contact.
//!
//! ## Example
//! ```text
//! message thanks: email { subject: "Thanks for {{ event.order_id }}" body: "..." }
//! flow f {
//!     when signed_up
//!     send thanks             # E0020 on `event.order_id` in the message
//! }
//! ```
//!
//! Must not: report a message more than once for one property.

use crate::check::context::{did_you_mean, Context};
use crate::check::rules::consent::{bind, resolve_name};
use crate::diagnostic::Code;
use crate::syntax::ast::{self, StepKind};
use std::collections::HashSet;

/// A send: the message's name and the events received at that step (`None`: none received;
/// `Some(None)`: received, but the checker cannot name them).
type Send = (String, Option<Option<Vec<String>>>);

/// Checks a plain flow.
pub fn check_flow(ctx: &mut Context<'_>, decl: &ast::FlowDecl) {
    let mut sends = Vec::new();
    walk(
        &decl.body.steps,
        &None,
        &|i: &ast::Ident| Some(i.name.clone()),
        &mut sends,
    );
    report(ctx, &decl.name.name, sends);
}

/// Checks a template instantiation, message and event parameters replaced by the arguments.
pub fn check_instance(ctx: &mut Context<'_>, decl: &ast::FlowInstanceDecl) {
    let Some((_, template)) = ctx.template(&decl.template.name) else {
        return;
    };
    let bound = bind(&template.params, &decl.args);
    let resolve = |ident: &ast::Ident| resolve_name(template, &bound, ident).map(|(name, _)| name);
    let mut sends = Vec::new();
    walk(&template.body.steps, &None, &resolve, &mut sends);
    report(ctx, &decl.name.name, sends);
}

fn walk(
    steps: &[ast::Step],
    received: &Option<Option<Vec<String>>>,
    resolve: &dyn Fn(&ast::Ident) -> Option<String>,
    out: &mut Vec<Send>,
) {
    for step in steps {
        match &step.kind {
            StepKind::Send { message } => {
                if let Some(name) = resolve(message) {
                    out.push((name, received.clone()));
                }
            }
            StepKind::WaitFor(w) => {
                match &w.body {
                    ast::WaitForBody::None => {}
                    ast::WaitForBody::Received(b) => {
                        let names: Option<Vec<String>> =
                            w.events.iter().map(|m| resolve(&m.event)).collect();
                        walk(&b.steps, &Some(names), resolve, out);
                    }
                    ast::WaitForBody::Arms(arms) => {
                        for arm in arms {
                            let names = resolve(&arm.event).map(|n| vec![n]);
                            walk(&arm.block.steps, &Some(names), resolve, out);
                        }
                    }
                }
                if let Some(b) = &w.otherwise {
                    walk(&b.steps, received, resolve, out);
                }
            }
            StepKind::If {
                branches,
                otherwise,
            } => {
                for b in branches {
                    walk(&b.block.steps, received, resolve, out);
                }
                if let Some(b) = otherwise {
                    walk(&b.steps, received, resolve, out);
                }
            }
            StepKind::Split { arms } => {
                for a in arms {
                    walk(&a.block.steps, received, resolve, out);
                }
            }
            _ => {}
        }
    }
}

fn report(ctx: &mut Context<'_>, flow: &str, sends: Vec<Send>) {
    let mut seen = HashSet::new();
    for (message, received) in sends {
        let Some(reads) = ctx.event_reads.get(&message).cloned() else {
            continue;
        };
        let Some(declared) = ctx.symbols.messages.get(&message).copied() else {
            continue;
        };
        for read in reads {
            if ctx
                .reported_event_reads
                .contains(&(message.clone(), read.property.clone()))
                || !seen.insert((message.clone(), read.property.clone()))
            {
                continue;
            }
            let place = match &read.in_file {
                Some((file, line)) => format!(" (in `{file}` line {line})"),
                None => String::new(),
            };
            let diagnostic = match &received {
                None => Some(
                    Context::at(
                        declared.unit,
                        Code::EventPathOutsideWait,
                        read.span,
                        format!(
                            "message `{message}` reads `event.{}`{place}, but flow `{flow}` sends it where no event has been received",
                            read.property
                        ),
                    )
                    .with_label(format!("flow `{flow}` sends it outside a `wait for` block"))
                    .with_help("send it inside the block of a `wait for`, or read the event that started the flow with `trigger.`"),
                ),
                Some(Some(events)) => {
                    let schemas: Option<Vec<&ast::EventDecl>> =
                        events.iter().map(|e| ctx.schemas.get(e.as_str()).copied()).collect();
                    schemas.and_then(|schemas| {
                        let known = schemas
                            .iter()
                            .any(|s| s.properties.iter().any(|p| p.name.name == read.property));
                        if known || schemas.is_empty() {
                            return None;
                        }
                        let names: Vec<String> = events.iter().map(|e| format!("`{e}`")).collect();
                        let candidates = schemas
                            .iter()
                            .flat_map(|s| s.properties.iter().map(|p| p.name.name.as_str()));
                        let help = did_you_mean(&read.property, candidates).unwrap_or_else(|| {
                            format!("add `{}` to the schema, or remove it from the template", read.property)
                        });
                        Some(
                            Context::at(
                                declared.unit,
                                Code::UnknownEventProperty,
                                read.span,
                                format!(
                                    "message `{message}` reads `event.{}`{place}, but event {} has no property `{}`",
                                    read.property,
                                    names.join(" or "),
                                    read.property
                                ),
                            )
                            .with_label(format!("flow `{flow}` sends it when {} arrives", names.join(" or ")))
                            .with_help(help),
                        )
                    })
                }
                Some(None) => None,
            };
            if let Some(d) = diagnostic {
                ctx.reported_event_reads
                    .insert((message.clone(), read.property.clone()));
                ctx.report(d);
            }
        }
    }
}
