//! `E0006` inside message templates: `{{ trigger.NAME }}` in a message sent by a flow whose
//! trigger events all have a schema, none of which declares `NAME`.
//!
//! ## What it does
//! Joins what each message template reads from `trigger` with the flows (and template
//! instantiations) that send the message and start on named events.
//!
//! ## Why is this bad?
//! The render would fail (templates are strict about undefined values) for every contact, and
//! the delivery would be lost.
//!
//! ## Example
//! ```text
//! event order_completed { order_id: string }
//! message thanks: email { subject: "Order {{ trigger.order_number }}" body: "..." }  # E0006
//! flow f { when order_completed  send thanks }
//! ```
//!
//! Must not: guess for flows that start on a segment, a schedule or an event without schema.

use crate::check::context::{did_you_mean, Context, FlowSends, Scope};
use crate::check::rules::consent::{bind, collect_sends, resolve_name};
use crate::check::rules::expressions::Events;
use crate::check::rules::flows::trigger_events;
use crate::diagnostic::Code;
use crate::syntax::ast::{self, HeaderKind};
use std::collections::HashSet;

/// Records a plain flow.
pub fn record_flow(ctx: &mut Context<'_>, decl: &ast::FlowDecl) {
    let Events::Known(events) = trigger_events(&decl.body, &Scope::default()) else {
        return;
    };
    let mut sends = Vec::new();
    collect_sends(&decl.body.steps, &mut sends);
    ctx.flow_sends.push(FlowSends {
        flow: decl.name.name.clone(),
        events,
        messages: sends.into_iter().map(|m| m.name.clone()).collect(),
    });
}

/// Records a template instantiation, its parameters replaced by the arguments.
pub fn record_instance(ctx: &mut Context<'_>, decl: &ast::FlowInstanceDecl) {
    let Some((_, template)) = ctx.template(&decl.template.name) else {
        return;
    };
    let bound = bind(&template.params, &decl.args);
    let resolve = |ident: &ast::Ident| resolve_name(template, &bound, ident).map(|(name, _)| name);
    let mut events = Vec::new();
    for line in &template.body.header {
        match &line.kind {
            HeaderKind::WhenEvent { event, .. } => match resolve(event) {
                Some(e) => events.push(e),
                None => return,
            },
            HeaderKind::WhenEntering { .. }
            | HeaderKind::WhenEvery { .. }
            | HeaderKind::WhenAnniversary { .. } => return,
            _ => {}
        }
    }
    if events.is_empty() {
        return;
    }
    let mut sends = Vec::new();
    collect_sends(&template.body.steps, &mut sends);
    let messages = sends.into_iter().filter_map(resolve).collect();
    ctx.flow_sends.push(FlowSends {
        flow: decl.name.name.clone(),
        events,
        messages,
    });
}

pub fn check(ctx: &mut Context<'_>) {
    let mut reported = HashSet::new();
    let flows = std::mem::take(&mut ctx.flow_sends);
    for flow in &flows {
        let schemas: Option<Vec<&ast::EventDecl>> = flow
            .events
            .iter()
            .map(|e| ctx.schemas.get(e.as_str()).copied())
            .collect();
        let Some(schemas) = schemas else { continue };
        for message in &flow.messages {
            let Some(reads) = ctx.trigger_reads.get(message) else {
                continue;
            };
            let Some(declared) = ctx.symbols.messages.get(message).copied() else {
                continue;
            };
            let mut found = Vec::new();
            for read in reads {
                let known = schemas
                    .iter()
                    .any(|s| s.properties.iter().any(|p| p.name.name == read.property));
                if !known && reported.insert((message.clone(), read.property.clone())) {
                    found.push(read.clone());
                }
            }
            for read in found {
                let events: Vec<String> = flow.events.iter().map(|e| format!("`{e}`")).collect();
                let candidates = schemas
                    .iter()
                    .flat_map(|s| s.properties.iter().map(|p| p.name.name.as_str()));
                let hint = did_you_mean(&read.property, candidates).unwrap_or_else(|| {
                    format!(
                        "add `{}` to the schema, or remove it from the template",
                        read.property
                    )
                });
                let place = match &read.in_file {
                    Some((file, line)) => format!(" (in `{file}` line {line})"),
                    None => String::new(),
                };
                let d = Context::at(
                    declared.unit,
                    Code::UnknownEventProperty,
                    read.span,
                    format!(
                        "message `{message}` reads `trigger.{}`{place}, but event {} has no property `{}`",
                        read.property,
                        events.join(" or "),
                        read.property
                    ),
                )
                .with_label(format!("flow `{}` sends it when {} arrives", flow.flow, events.join(" or ")))
                .with_help(hint);
                ctx.report(d);
            }
        }
    }
}
