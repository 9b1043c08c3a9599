//! `W0001`: a marketing send in a flow that never checks `can_receive` of its channel and has
//! no `exit on unsubscribed`; and, for template instantiations, `W0004` when the arguments make
//! an `exit on` event the trigger.
//!
//! ## What it does
//! Collects the channels a flow checks with `can_receive(CHANNEL)`: in its header lines, its
//! conditions and filters, and in every segment they use, transitively (for a template, also
//! in the segments given as arguments). Each send of a marketing (not `transactional`)
//! message on another channel is reported; in a template, at the argument that names the
//! message.
//!
//! ## Why is this bad?
//! The engine skips a marketing send without consent (`no_consent`), so nothing illegal goes
//! out, but the flow was written as if everyone got the message: its waits, splits and goal
//! are measured against contacts who never could. Checking `can_receive` at entry (`only if
//! can_receive(email)`) or leaving on `exit on unsubscribed` says who the flow is for.
//!
//! ## Example
//! ```text
//! flow promo {
//!     when order_completed
//!     send promo_sms              # W0001: never checks `can_receive(sms)`
//! }
//! ```
//!
//! Must not: report transactional messages, or webhooks (which have no consent).

use crate::check::context::Context;
use crate::check::rules::segments;
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast::{self, Channel, ExprKind, HeaderKind, ParamType, StepKind};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A plain flow.
pub fn check_flow(ctx: &mut Context<'_>, unit: &SourceUnit, decl: &ast::FlowDecl) {
    if exits_on_unsubscribed(&decl.body) {
        return;
    }
    let mut checked = BTreeSet::new();
    body_channels(ctx, &decl.body, &[], &mut checked);
    let mut sends = Vec::new();
    collect_sends(&decl.body.steps, &mut sends);
    let mut reported = HashSet::new();
    for message in sends {
        if !reported.insert(message.name.as_str()) {
            continue;
        }
        let Some(m) = ctx.message(&message.name) else {
            continue;
        };
        if let Some(channel) = unchecked(m, &checked) {
            let c = channel.keyword();
            let d = Context::at(
                unit,
                Code::UnusedSendCheck,
                message.span,
                format!("flow `{}` sends the marketing {c} `{}` without checking `can_receive({c})`", decl.name.name, message.name),
            )
            .with_label("sent without a consent check")
            .with_help(format!(
                "add `only if can_receive({c})` (or `exit if not can_receive({c})`, or `exit on unsubscribed`) to the flow; mark the message `transactional` if it answers the contact's own request"
            ));
            ctx.report(d);
        }
    }
}

/// A template instantiation: the template's sends with this instance's messages.
pub fn check_instance(ctx: &mut Context<'_>, unit: &SourceUnit, decl: &ast::FlowInstanceDecl) {
    let Some((_, template)) = ctx.template(&decl.template.name) else {
        return;
    };
    let bound = bind(&template.params, &decl.args);
    exit_on_trigger(ctx, unit, decl, template, &bound);
    if exits_on_unsubscribed(&template.body) {
        return;
    }
    let mut checked = BTreeSet::new();
    body_channels(ctx, &template.body, &template.params, &mut checked);
    for param in &template.params {
        if param.ty != ParamType::Segment {
            continue;
        }
        if let Some(arg) = bound.get(param.name.name.as_str()) {
            let mut visited = HashSet::new();
            expr_channels(ctx, &arg.value, &[], &mut checked, &mut visited);
        }
    }
    let mut sends = Vec::new();
    collect_sends(&template.body.steps, &mut sends);
    let mut reported = HashSet::new();
    for sent in sends {
        let (name, span) = match template.params.iter().find(|p| p.name.name == sent.name) {
            Some(_) => match bound.get(sent.name.as_str()).map(|a| &a.value.kind) {
                Some(ExprKind::Name(ident)) => (ident.name.clone(), ident.span),
                _ => continue,
            },
            None => (sent.name.clone(), decl.name.span),
        };
        if !reported.insert(name.clone()) {
            continue;
        }
        let Some(m) = ctx.message(&name) else {
            continue;
        };
        if let Some(channel) = unchecked(m, &checked) {
            let c = channel.keyword();
            let d = Context::at(
                unit,
                Code::UnusedSendCheck,
                span,
                format!(
                    "template `{}` sends the marketing {c} `{name}` but never checks `can_receive({c})`",
                    decl.template.name
                ),
            )
            .with_label(format!("{} {c} message", super::messages::article(c)))
            .with_help(format!(
                "give the template a message of a channel it checks, mark `{name}` `transactional` if it answers the contact's own request, or write the flow out with `only if can_receive({c})`"
            ));
            ctx.report(d);
        }
    }
}

fn unchecked(m: &ast::MessageDecl, checked: &BTreeSet<Channel>) -> Option<Channel> {
    let marketing = !m.transactional && m.channel != Channel::Webhook;
    (marketing && !checked.contains(&m.channel)).then_some(m.channel)
}

fn exits_on_unsubscribed(body: &ast::FlowBody) -> bool {
    body.header.iter().any(
        |l| matches!(&l.kind, HeaderKind::ExitOn { event, .. } if event.name == "unsubscribed"),
    )
}

/// Parameter name → argument of an instantiation (named, else by position).
pub fn bind<'a>(params: &'a [ast::Param], args: &'a [ast::Arg]) -> HashMap<&'a str, &'a ast::Arg> {
    let mut out = HashMap::new();
    for (position, param) in params.iter().enumerate() {
        let arg = args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.name == param.name.name))
            .or_else(|| args.get(position).filter(|a| a.name.is_none()));
        if let Some(arg) = arg {
            out.insert(param.name.name.as_str(), arg);
        }
    }
    out
}

/// A name of a template body as one instantiation reads it, and whether an argument gave it: a
/// parameter becomes the bare name its argument is (`None` when the argument is not a bare
/// name, or is missing); any other name stays itself.
pub fn resolve_name(
    template: &ast::FlowTemplateDecl,
    bound: &HashMap<&str, &ast::Arg>,
    ident: &ast::Ident,
) -> Option<(String, bool)> {
    if !template.params.iter().any(|p| p.name.name == ident.name) {
        return Some((ident.name.clone(), false));
    }
    match &bound.get(ident.name.as_str())?.value.kind {
        ExprKind::Name(n) => Some((n.name.clone(), true)),
        _ => None,
    }
}

/// `W0004` through arguments: `when abandoned` + `exit on done` with both bound to one event.
fn exit_on_trigger(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    decl: &ast::FlowInstanceDecl,
    template: &ast::FlowTemplateDecl,
    bound: &HashMap<&str, &ast::Arg>,
) {
    let resolve = |ident: &ast::Ident| resolve_name(template, bound, ident);
    let mut whens = Vec::new();
    let mut exits = Vec::new();
    for line in &template.body.header {
        match &line.kind {
            HeaderKind::WhenEvent { event, .. } => whens.extend(resolve(event)),
            HeaderKind::ExitOn { event, .. } => exits.extend(resolve(event)),
            _ => {}
        }
    }
    for (exit, exit_bound) in &exits {
        if let Some((_, when_bound)) = whens.iter().find(|(w, _)| w == exit) {
            if !exit_bound && !when_bound {
                continue; // written in the template itself: reported there
            }
            let d = Context::at(
                unit,
                Code::ExitOnTrigger,
                decl.name.span,
                format!("flow `{}` starts on `{exit}` and exits on `{exit}`", decl.name.name),
            )
            .with_label(format!("`{exit}` is both the trigger and an exit of template `{}`", decl.template.name))
            .with_help("exits are decided before triggers, so each such event ends the running instance and starts a new one; give the template a different event");
            ctx.report(d);
        }
    }
}

/// Every `send` of a block, nested ones included.
pub fn collect_sends<'a>(steps: &'a [ast::Step], out: &mut Vec<&'a ast::Ident>) {
    for step in steps {
        match &step.kind {
            StepKind::Send { message } => out.push(message),
            StepKind::WaitFor(w) => {
                match &w.body {
                    ast::WaitForBody::None => {}
                    ast::WaitForBody::Received(b) => collect_sends(&b.steps, out),
                    ast::WaitForBody::Arms(arms) => {
                        arms.iter().for_each(|a| collect_sends(&a.block.steps, out))
                    }
                }
                if let Some(b) = &w.otherwise {
                    collect_sends(&b.steps, out);
                }
            }
            StepKind::If {
                branches,
                otherwise,
            } => {
                branches
                    .iter()
                    .for_each(|b| collect_sends(&b.block.steps, out));
                if let Some(b) = otherwise {
                    collect_sends(&b.steps, out);
                }
            }
            StepKind::Split { arms } => {
                arms.iter().for_each(|a| collect_sends(&a.block.steps, out))
            }
            _ => {}
        }
    }
}

/// The channels `can_receive` checks anywhere in a flow body (segments followed).
fn body_channels(
    ctx: &Context<'_>,
    body: &ast::FlowBody,
    params: &[ast::Param],
    out: &mut BTreeSet<Channel>,
) {
    let mut visited = HashSet::new();
    let visit_ref = |ctx: &Context<'_>,
                     r: &ast::SegmentRef,
                     out: &mut BTreeSet<Channel>,
                     visited: &mut HashSet<String>| {
        if !params.iter().any(|p| p.name.name == r.name.name) {
            segment_channels(ctx, &r.name.name, out, visited);
        }
        for a in &r.args {
            expr_channels(ctx, &a.value, params, out, visited);
        }
    };
    for line in &body.header {
        match &line.kind {
            HeaderKind::WhenEvent {
                filter: Some(e), ..
            }
            | HeaderKind::ExitOn {
                filter: Some(e), ..
            }
            | HeaderKind::OnlyIf(e)
            | HeaderKind::ExitIf(e) => expr_channels(ctx, e, params, out, &mut visited),
            HeaderKind::WhenEntering { segment } | HeaderKind::WhenEvery { segment, .. } => {
                visit_ref(ctx, segment, out, &mut visited)
            }
            _ => {}
        }
    }
    steps_channels(ctx, &body.steps, params, out, &mut visited);
}

fn steps_channels(
    ctx: &Context<'_>,
    steps: &[ast::Step],
    params: &[ast::Param],
    out: &mut BTreeSet<Channel>,
    visited: &mut HashSet<String>,
) {
    for step in steps {
        match &step.kind {
            StepKind::WaitFor(w) => {
                for m in &w.events {
                    if let Some(f) = &m.filter {
                        expr_channels(ctx, f, params, out, visited);
                    }
                }
                match &w.body {
                    ast::WaitForBody::None => {}
                    ast::WaitForBody::Received(b) => {
                        steps_channels(ctx, &b.steps, params, out, visited)
                    }
                    ast::WaitForBody::Arms(arms) => {
                        for a in arms {
                            steps_channels(ctx, &a.block.steps, params, out, visited);
                        }
                    }
                }
                if let Some(b) = &w.otherwise {
                    steps_channels(ctx, &b.steps, params, out, visited);
                }
            }
            StepKind::If {
                branches,
                otherwise,
            } => {
                for b in branches {
                    expr_channels(ctx, &b.condition, params, out, visited);
                    steps_channels(ctx, &b.block.steps, params, out, visited);
                }
                if let Some(b) = otherwise {
                    steps_channels(ctx, &b.steps, params, out, visited);
                }
            }
            StepKind::Split { arms } => {
                for a in arms {
                    steps_channels(ctx, &a.block.steps, params, out, visited);
                }
            }
            _ => {}
        }
    }
}

fn expr_channels(
    ctx: &Context<'_>,
    expr: &ast::Expr,
    params: &[ast::Param],
    out: &mut BTreeSet<Channel>,
    visited: &mut HashSet<String>,
) {
    if let ExprKind::CanReceive { channel, .. } = &expr.kind {
        out.insert(*channel);
        return;
    }
    let mut refs = Vec::new();
    match &expr.kind {
        ExprKind::Name(_) | ExprKind::SegmentCall { .. } => {
            segments::references(expr, params, &mut refs);
        }
        _ => {}
    }
    for (name, _) in refs {
        segment_channels(ctx, &name, out, visited);
    }
    match &expr.kind {
        ExprKind::SegmentCall { args, .. } => {
            for a in args {
                expr_channels(ctx, &a.value, params, out, visited);
            }
        }
        ExprKind::List(items) => items
            .iter()
            .for_each(|e| expr_channels(ctx, e, params, out, visited)),
        ExprKind::Count {
            filter: Some(f), ..
        } => expr_channels(ctx, f, params, out, visited),
        ExprKind::Unary { operand, .. } => expr_channels(ctx, operand, params, out, visited),
        ExprKind::Binary { lhs, rhs, .. } => {
            expr_channels(ctx, lhs, params, out, visited);
            expr_channels(ctx, rhs, params, out, visited);
        }
        ExprKind::In { needle, list } => {
            expr_channels(ctx, needle, params, out, visited);
            expr_channels(ctx, list, params, out, visited);
        }
        _ => {}
    }
}

fn segment_channels(
    ctx: &Context<'_>,
    name: &str,
    out: &mut BTreeSet<Channel>,
    visited: &mut HashSet<String>,
) {
    if !visited.insert(name.to_string()) {
        return;
    }
    if let Some((_, decl)) = ctx.segment(name) {
        expr_channels(ctx, &decl.body, &decl.params, out, visited);
    }
}
