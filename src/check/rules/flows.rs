//! The walk over one flow (or flow template) body, and the rules about its shape:
//! `E0019` (a flow without `when`), `E0026` (a header line twice), `E0027` (a header line
//! after a step), `E0029` (a flow without steps) and `E0002` (`send` of an unknown message).
//!
//! ## What it does
//! Visits every header line and step once, with the parameters of a template in scope and,
//! for each expression, the events `trigger.` and `event.` read there; it hands each
//! expression to `expressions` and each step to the step rules (`unreachable`, `waits`,
//! `split`, `arms`, `quiet_hours`).
//!
//! ## Why is this bad?
//! A flow without `when` never starts; a second `only if` silently replaces the first in a
//! reader's head but not in the engine; a header line after a step reads as if it applied
//! from that step on, and it does not.
//!
//! ## Example
//! ```text
//! flow welcome {
//!     send welcome_email
//!     when signed_up          # E0027: header after step (and the flow has one, so no E0019)
//! }
//! ```
//!
//! Must not: check expressions itself (that is `expressions`).

use crate::check::context::{did_you_mean, Context, Scope};
use crate::check::rules::expressions::{self, Events, Place};
use crate::check::rules::{arms, event_names, quiet_hours, split, unreachable, waits};
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast::{self, HeaderKind, ParamType, StepKind};

/// Checks a flow or a flow template body.
pub fn check(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    name: &ast::Ident,
    body: &ast::FlowBody,
    scope: Scope<'_>,
) {
    let triggers = trigger_events(body, &scope);
    let place = Place {
        trigger: triggers,
        event: None,
    };
    header(ctx, unit, name, body, scope, &place);
    if body.steps.is_empty() {
        let d = Context::at(
            unit,
            Code::EmptyFlow,
            name.span,
            format!("flow `{}` has no steps", name.name),
        )
        .with_label("nothing happens after entry")
        .with_help("add at least one step, such as `send MESSAGE` or `set contact.FIELD = ...`");
        ctx.report(d);
    }
    block(ctx, unit, scope, &place, &body.steps);
}

/// The events whose properties `trigger.` reads: every `when EVENT` of the flow, or
/// `Unknown` when the flow also starts another way (a segment, a schedule, a parameter).
pub fn trigger_events(body: &ast::FlowBody, scope: &Scope<'_>) -> Events {
    let mut names = Vec::new();
    for line in &body.header {
        match &line.kind {
            HeaderKind::WhenEvent { event, .. } => {
                if scope.param(&event.name).is_some() {
                    return Events::Unknown;
                }
                names.push(event.name.clone());
            }
            HeaderKind::WhenEntering { .. }
            | HeaderKind::WhenEvery { .. }
            | HeaderKind::WhenAnniversary { .. } => return Events::Unknown,
            _ => {}
        }
    }
    if names.is_empty() {
        Events::Unknown
    } else {
        Events::Known(names)
    }
}

fn header(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    name: &ast::Ident,
    body: &ast::FlowBody,
    scope: Scope<'_>,
    place: &Place,
) {
    let first_step = body.steps.first().map(|s| s.span);
    let mut seen: Vec<(&'static str, ast::Span)> = Vec::new();
    let mut has_when = false;
    for line in &body.header {
        if let Some(step) = first_step {
            if line.span.start > step.start {
                let d = Context::at(
                    unit,
                    Code::HeaderAfterStep,
                    line.span,
                    "a header line stands after the first step",
                )
                .with_label("header line after a step")
                .with_help("move it above the first step: `when`, `only if`, `exit`, `reentry`, `quiet hours`, `goal`, `holdout` and `on change` apply to the whole flow");
                ctx.report(d);
            }
        }
        let once = match &line.kind {
            HeaderKind::OnlyIf(_) => Some("only if"),
            HeaderKind::Reentry(_) => Some("reentry"),
            HeaderKind::QuietHours(_) => Some("quiet hours"),
            HeaderKind::Goal { .. } => Some("goal"),
            HeaderKind::Holdout(_) => Some("holdout"),
            HeaderKind::OnChange { .. } => Some("on change"),
            _ => None,
        };
        if let Some(keyword) = once {
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == keyword) {
                let help = if keyword == "only if" {
                    "join the conditions with `and` in one `only if` line".to_string()
                } else {
                    format!("keep one `{keyword}` line")
                };
                let d = Context::at(
                    unit,
                    Code::DuplicateHeader,
                    line.span,
                    format!("`{keyword}` appears twice in flow `{}`", name.name),
                )
                .with_label("second one")
                .with_related(*first, "first one here")
                .with_help(help);
                ctx.report(d);
            } else {
                seen.push((keyword, line.span));
            }
        }
        match &line.kind {
            HeaderKind::WhenEvent { event, filter } => {
                has_when = true;
                check_event_name(ctx, unit, scope, event);
                if let Some(filter) = filter {
                    let inner = Place {
                        trigger: Events::one(event, &scope),
                        event: Some(Events::one(event, &scope)),
                    };
                    expressions::condition(ctx, unit, scope, &inner, filter);
                }
            }
            HeaderKind::WhenEntering { segment } => {
                has_when = true;
                expressions::segment_ref(ctx, unit, scope, segment);
            }
            HeaderKind::WhenEvery { every, segment, .. } => {
                has_when = true;
                expressions::duration(ctx, unit, scope, every);
                waits::zero(ctx, unit, every, "`when every`");
                expressions::segment_ref(ctx, unit, scope, segment);
            }
            HeaderKind::WhenAnniversary { field, .. } => {
                has_when = true;
                if field.root.name != "contact" {
                    let d = Context::at(
                        unit,
                        Code::UnknownPathRoot,
                        field.root.span,
                        format!("`when anniversary of` reads a contact field, not `{}`", field.dotted()),
                    )
                    .with_label("expected `contact`")
                    .with_help("write the contact's date field, such as `when anniversary of contact.birthday`");
                    ctx.report(d);
                }
            }
            HeaderKind::OnlyIf(expr) | HeaderKind::ExitIf(expr) => {
                expressions::condition(ctx, unit, scope, place, expr);
            }
            HeaderKind::Reentry(ast::Reentry::After(d)) => {
                expressions::duration(ctx, unit, scope, d);
            }
            HeaderKind::Reentry(_) => {}
            HeaderKind::ExitOn { event, filter } => {
                check_event_name(ctx, unit, scope, event);
                if let Some(filter) = filter {
                    let inner = place.with_event(Events::one(event, &scope));
                    expressions::condition(ctx, unit, scope, &inner, filter);
                }
                exit_on_trigger(ctx, unit, body, event, line.span);
            }
            HeaderKind::QuietHours(q) => quiet_hours::check(ctx, unit, q),
            HeaderKind::Goal {
                event,
                filter,
                within,
            } => {
                check_event_name(ctx, unit, scope, event);
                if let Some(filter) = filter {
                    let inner = place.with_event(Events::one(event, &scope));
                    expressions::condition(ctx, unit, scope, &inner, filter);
                }
                expressions::duration(ctx, unit, scope, within);
            }
            HeaderKind::Holdout(_) | HeaderKind::OnChange { .. } => {}
        }
    }
    if !has_when {
        let d = Context::at(
            unit,
            Code::FlowWithoutTrigger,
            name.span,
            format!("flow `{}` has no `when` line", name.name),
        )
        .with_label("nothing starts this flow")
        .with_help("add a trigger as the first line: `when EVENT`, `when entering SEGMENT`, `when every DURATION for SEGMENT` or `when anniversary of contact.FIELD`");
        ctx.report(d);
    }
}

/// An event name that is a template parameter of another kind (`when reminder` with
/// `reminder: message`).
fn check_event_name(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    scope: Scope<'_>,
    event: &ast::Ident,
) {
    event_names::check(ctx, unit, scope, event);
    if let Some(param) = scope.param(&event.name) {
        if param.ty != ParamType::Event {
            let d = Context::at(
                unit,
                Code::TypeMismatch,
                event.span,
                format!(
                    "`{}` is a {} parameter, not an event",
                    event.name,
                    param.ty.keyword()
                ),
            )
            .with_label("expected an event")
            .with_help(format!(
                "declare `{}: event`, or write the event's name",
                event.name
            ));
            ctx.report(d);
        }
    }
}

/// `W0004`: `exit on E` where `E` also starts the flow.
///
/// What it does: compares each `exit on` event with the flow's `when` events (for template
/// instantiations, with the events given as arguments: see `consent::check_instance`).
///
/// Why: exits are decided before triggers, so each such event ends the running instance and
/// starts a new one; the flow's later steps only ever run for the last event.
///
/// Example: `when order_completed` with `exit on order_completed`.
fn exit_on_trigger(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    body: &ast::FlowBody,
    event: &ast::Ident,
    span: ast::Span,
) {
    let when = body.header.iter().find_map(|l| match &l.kind {
        HeaderKind::WhenEvent { event: e, .. } if e.name == event.name => Some(l.span),
        _ => None,
    });
    if let Some(when) = when {
        let d = Context::at(
            unit,
            Code::ExitOnTrigger,
            span,
            format!("`exit on {}` stops the flow on the event that starts it", event.name),
        )
        .with_label("also the trigger")
        .with_related(when, "the flow starts on it here")
        .with_help(format!(
            "exits are decided before triggers, so each `{}` ends the running instance and starts a new one; remove one of the two lines, or add a `where` that tells the events apart",
            event.name
        ));
        ctx.report(d);
    }
}

/// Walks a block of steps.
fn block(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    scope: Scope<'_>,
    place: &Place,
    steps: &[ast::Step],
) {
    unreachable::check(ctx, unit, steps);
    for step in steps {
        self::step(ctx, unit, scope, place, step);
    }
}

fn step(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    scope: Scope<'_>,
    place: &Place,
    step: &ast::Step,
) {
    match &step.kind {
        StepKind::Send { message } => send(ctx, unit, scope, message),
        StepKind::Wait { duration } => {
            expressions::duration(ctx, unit, scope, duration);
            waits::zero(ctx, unit, duration, "`wait`");
            waits::long(ctx, unit, duration);
        }
        StepKind::WaitUntil { .. } => {}
        StepKind::WaitFor(wait) => {
            for matcher in &wait.events {
                check_event_name(ctx, unit, scope, &matcher.event);
                if let Some(filter) = &matcher.filter {
                    let inner = place.with_event(Events::one(&matcher.event, &scope));
                    expressions::condition(ctx, unit, scope, &inner, filter);
                }
            }
            waits::segment_as_event(ctx, unit, scope, wait);
            expressions::duration(ctx, unit, scope, &wait.timeout);
            waits::zero(ctx, unit, &wait.timeout, "`wait for ... up to`");
            waits::long(ctx, unit, &wait.timeout);
            match &wait.body {
                ast::WaitForBody::None => {}
                ast::WaitForBody::Received(b) => {
                    let mut names = Vec::new();
                    let mut known = true;
                    for m in &wait.events {
                        known &= scope.param(&m.event.name).is_none();
                        names.push(m.event.name.clone());
                    }
                    let events = if known {
                        Events::Known(names)
                    } else {
                        Events::Unknown
                    };
                    block(ctx, unit, scope, &place.with_event(events), &b.steps);
                }
                ast::WaitForBody::Arms(on_arms) => {
                    arms::check(ctx, unit, wait, on_arms);
                    for arm in on_arms {
                        let inner = place.with_event(Events::one(&arm.event, &scope));
                        block(ctx, unit, scope, &inner, &arm.block.steps);
                    }
                }
            }
            if let Some(otherwise) = &wait.otherwise {
                block(ctx, unit, scope, place, &otherwise.steps);
            }
        }
        StepKind::If {
            branches,
            otherwise,
        } => {
            for branch in branches {
                expressions::condition(ctx, unit, scope, place, &branch.condition);
                block(ctx, unit, scope, place, &branch.block.steps);
            }
            if let Some(otherwise) = otherwise {
                block(ctx, unit, scope, place, &otherwise.steps);
            }
        }
        StepKind::Split { arms: split_arms } => {
            split::check(ctx, unit, step.span, split_arms);
            for arm in split_arms {
                block(ctx, unit, scope, place, &arm.block.steps);
            }
        }
        StepKind::Set { field, value } => {
            if field.root.name != "contact" {
                let d = Context::at(
                    unit,
                    Code::UnknownPathRoot,
                    field.root.span,
                    format!("`set` changes a contact field, not `{}`", field.dotted()),
                )
                .with_label("expected `contact`")
                .with_help("write `set contact.FIELD = VALUE`; `trigger` and `event` are the events as received and cannot change");
                ctx.report(d);
            }
            expressions::infer(ctx, unit, scope, place, value);
        }
        StepKind::Unsubscribe { .. } | StepKind::Stop => {}
    }
}

/// `E0002`: `send NAME` where `NAME` is neither a message nor a `message` parameter.
fn send(ctx: &mut Context<'_>, unit: &SourceUnit, scope: Scope<'_>, message: &ast::Ident) {
    if let Some(param) = scope.param(&message.name) {
        if param.ty != ParamType::Message {
            let d = Context::at(
                unit,
                Code::TypeMismatch,
                message.span,
                format!(
                    "`{}` is a {} parameter, not a message",
                    message.name,
                    param.ty.keyword()
                ),
            )
            .with_label("expected a message")
            .with_help(format!("declare `{}: message`", message.name));
            ctx.report(d);
        }
        return;
    }
    ctx.used_messages.insert(message.name.clone());
    if ctx.message(&message.name).is_some() {
        return;
    }
    let candidates: Vec<&str> = ctx
        .symbols
        .messages
        .keys()
        .map(String::as_str)
        .chain(scope.names())
        .collect();
    let help = ctx
        .kind_first(
            &message.name,
            "a message",
            did_you_mean(&message.name, candidates),
        )
        .unwrap_or_else(|| {
            format!(
                "declare it: `message {}: email {{ subject: \"...\" body: \"...\" }}`",
                message.name
            )
        });
    let d = Context::at(
        unit,
        Code::UnknownMessage,
        message.span,
        format!("unknown message `{}`", message.name),
    )
    .with_label("not declared")
    .with_help(help);
    ctx.report(d);
}
