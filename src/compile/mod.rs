//! Lowering: a checked project → [`CompiledProject`], one state machine per flow.
//!
//! Owns: name resolution for the runtime (events interned, segments instantiated with their
//! arguments and referenced by index, template flows expanded with their arguments), loading
//! `file(...)` message bodies, quiet-hours precedence (the flow's line wins over the policy's),
//! what event history the behaviour functions need, and each flow's content hash.
//! Must not: judge the project (that is `check`; compile assumes a checked project but still
//! refuses, with a diagnostic, anything it cannot lower) or run anything (that is `engine`).

pub mod ir;
pub mod show;

pub use ir::*;

use crate::config::Config;
use crate::diagnostic::{line_column, Code, Diagnostic};
use crate::project::{Project, SourceUnit, Symbols};
use crate::syntax::ast::{self, Span};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Compiles a project (which should have passed `check`).
pub fn compile(project: &Project, config: &Config) -> Result<CompiledProject, Vec<Diagnostic>> {
    let symbols = project.symbols();
    let mut lowering = Lowering {
        project,
        symbols: &symbols,
        events: Vec::new(),
        event_index: HashMap::new(),
        segments: Vec::new(),
        segment_index: HashMap::new(),
        segment_stack: Vec::new(),
        messages: Vec::new(),
        message_index: HashMap::new(),
        diagnostics: Vec::new(),
        labels: Vec::new(),
    };
    lowering.intern_event("unsubscribed");
    for (name, declared) in &symbols.messages {
        if let ast::Item::Message(decl) = declared.item {
            lowering.lower_message(name, decl, declared.unit);
        }
    }
    let mut schemas = Vec::new();
    for (name, declared) in &symbols.events {
        if let ast::Item::Event(decl) = declared.item {
            lowering.intern_event(name);
            schemas.push(EventSchema {
                event: normalize_event_name(name),
                properties: decl
                    .properties
                    .iter()
                    .map(|p| PropertySchema {
                        name: p.name.name.clone(),
                        ty: p.ty,
                        optional: p.optional,
                    })
                    .collect(),
            });
        }
    }
    let mut policy = CompiledPolicy::default();
    if let Some(declared) = symbols.policy {
        if let ast::Item::Policy(decl) = declared.item {
            for line in &decl.lines {
                match &line.kind {
                    ast::PolicyKind::QuietHours(q) => policy.quiet_hours = Some(quiet_window(q)),
                    ast::PolicyKind::Limit {
                        channel,
                        count,
                        per,
                        ..
                    } => policy.limits.push(Limit {
                        channel: *channel,
                        count: *count,
                        per: Dur::from_literal(per.amount, per.unit),
                    }),
                }
            }
        }
    }
    let mut flows = Vec::new();
    for (name, declared) in &symbols.flows {
        let flow = match declared.item {
            ast::Item::Flow(decl) => {
                let scope = Scope::default();
                lowering.lower_flow(name, &decl.body, declared.unit, decl.span, &scope, &policy)
            }
            ast::Item::FlowInstance(decl) => {
                lowering.lower_instance(name, decl, declared.unit, &policy)
            }
            _ => None,
        };
        flows.extend(flow);
    }
    if !lowering.diagnostics.is_empty() {
        return Err(lowering.diagnostics);
    }
    flows.sort_by(|a, b| a.name.cmp(&b.name));
    for flow in &mut flows {
        let (trigger_keys, event_keys) = kept_properties(flow, &lowering.messages);
        flow.trigger_keys = trigger_keys;
        flow.event_keys = event_keys;
        flow.hash = flow_hash(flow);
    }
    let mut compiled = CompiledProject {
        format_version: FORMAT_VERSION,
        default_timezone: config.defaults.timezone.clone(),
        events: lowering.events,
        segments: lowering.segments,
        messages: lowering.messages,
        flows,
        policy,
        schemas,
        history: Vec::new(),
    };
    compiled.history = history_needs(&compiled);
    Ok(compiled)
}

/// `Order Completed` → `order_completed`: lower case, every run of characters other than
/// ASCII letters and digits becomes one `_`, trimmed of `_` at both ends.
pub fn normalize_event_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_separator = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            if pending_separator && !out.is_empty() {
                out.push('_');
            }
            pending_separator = false;
            out.extend(c.to_lowercase());
        } else {
            pending_separator = true;
        }
    }
    out
}

fn flow_hash(flow: &CompiledFlow) -> String {
    let mut unhashed = flow.clone();
    unhashed.hash = String::new();
    let json = serde_json::to_vec(&unhashed).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

fn quiet_window(q: &ast::QuietHours) -> QuietWindow {
    QuietWindow {
        start: minute_of_day(q.start),
        end: minute_of_day(q.end),
    }
}

fn minute_of_day(t: ast::TimeOfDay) -> u16 {
    u16::try_from(t.minutes_since_midnight()).unwrap_or(0)
}

/// What a template or segment parameter stands for while its body is lowered.
#[derive(Debug, Clone)]
enum Binding {
    /// A value (number, string, bool, duration), already lowered.
    Value(Expr),
    /// A name: a message, segment or event passed to a template.
    Name(String),
}

#[derive(Debug, Clone, Default)]
struct Scope {
    bindings: HashMap<String, Binding>,
}

impl Scope {
    fn name<'a>(&'a self, ident: &'a ast::Ident) -> &'a str {
        match self.bindings.get(&ident.name) {
            Some(Binding::Name(n)) => n,
            _ => &ident.name,
        }
    }
}

struct Lowering<'p, 's> {
    project: &'p Project,
    symbols: &'s Symbols<'p>,
    events: Vec<String>,
    event_index: HashMap<String, EventId>,
    segments: Vec<CompiledSegment>,
    segment_index: HashMap<String, SegmentId>,
    /// Segments being lowered (a cycle guard; check reports cycles).
    segment_stack: Vec<String>,
    messages: Vec<CompiledMessage>,
    message_index: HashMap<String, MessageId>,
    diagnostics: Vec<Diagnostic>,
    /// The step labels of the flow being lowered: (label, state, source offset).
    labels: Vec<(String, StateId, usize)>,
}

/// The unit and span compile is looking at, for diagnostics and source locations.
#[derive(Clone, Copy)]
struct Here<'p> {
    unit: &'p SourceUnit,
}

impl Here<'_> {
    fn loc(&self, span: Span) -> SourceLoc {
        let (line, _) = line_column(&self.unit.text, span.start);
        SourceLoc {
            file: self.unit.path.display().to_string(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        }
    }
}

impl<'p> Lowering<'p, '_> {
    fn error(&mut self, here: Here<'_>, code: Code, span: Span, message: String) {
        self.diagnostics.push(Diagnostic::error(
            code,
            here.unit.path.clone(),
            span,
            message,
        ));
    }

    fn intern_event(&mut self, name: &str) -> EventId {
        let normalized = normalize_event_name(name);
        if let Some(id) = self.event_index.get(&normalized) {
            return *id;
        }
        let id = EventId(u16::try_from(self.events.len()).unwrap_or(u16::MAX));
        self.events.push(normalized.clone());
        self.event_index.insert(normalized, id);
        id
    }

    fn lower_message(&mut self, name: &str, decl: &ast::MessageDecl, unit: &'p SourceUnit) {
        let here = Here { unit };
        let mut fields = Vec::new();
        for field in &decl.fields {
            let text = match &field.value {
                ast::FieldValue::Text(s) => s.value.clone(),
                ast::FieldValue::Bool { value, .. } => value.to_string(),
                ast::FieldValue::File(path) => {
                    match std::fs::read_to_string(self.project.root.join(&path.value)) {
                        Ok(text) => text,
                        Err(e) => {
                            self.error(
                                here,
                                Code::FileNotFound,
                                path.span,
                                format!("cannot read `{}` for message `{name}`: {e}", path.value),
                            );
                            String::new()
                        }
                    }
                }
            };
            fields.push((field.name.name.clone(), text));
        }
        let id = MessageId(u16::try_from(self.messages.len()).unwrap_or(u16::MAX));
        self.messages.push(CompiledMessage {
            name: name.to_string(),
            channel: decl.channel,
            transactional: decl.transactional,
            fields,
        });
        self.message_index.insert(name.to_string(), id);
    }

    fn lower_instance(
        &mut self,
        name: &str,
        decl: &ast::FlowInstanceDecl,
        unit: &'p SourceUnit,
        policy: &CompiledPolicy,
    ) -> Option<CompiledFlow> {
        let here = Here { unit };
        let Some(declared) = self.symbols.templates.get(&decl.template.name).copied() else {
            self.error(
                here,
                Code::UnknownTemplate,
                decl.template.span,
                format!("unknown flow template `{}`", decl.template.name),
            );
            return None;
        };
        let ast::Item::FlowTemplate(template) = declared.item else {
            return None;
        };
        let scope = self.bind_arguments(
            here,
            &template.params,
            &decl.args,
            decl.args_span,
            &Scope::default(),
        )?;
        let mut flow = self.lower_flow(
            name,
            &template.body,
            declared.unit,
            template.span,
            &scope,
            policy,
        )?;
        // The flow is declared where it is instantiated; its steps point into the template.
        flow.source = here.loc(decl.span);
        Some(flow)
    }

    /// Binds call arguments (named or positional) to parameters, lowering values in `outer`.
    fn bind_arguments(
        &mut self,
        here: Here<'_>,
        params: &[ast::Param],
        args: &[ast::Arg],
        span: Span,
        outer: &Scope,
    ) -> Option<Scope> {
        let mut scope = Scope::default();
        for (position, param) in params.iter().enumerate() {
            let arg = args
                .iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == param.name.name))
                .or_else(|| args.get(position).filter(|a| a.name.is_none()));
            let Some(arg) = arg else {
                self.error(
                    here,
                    Code::WrongArguments,
                    span,
                    format!("missing argument `{}`", param.name.name),
                );
                return None;
            };
            let binding = match &arg.value.kind {
                ast::ExprKind::Name(ident) => match outer.bindings.get(&ident.name) {
                    Some(b) => b.clone(),
                    None if matches!(
                        param.ty,
                        ast::ParamType::Message | ast::ParamType::Segment | ast::ParamType::Event
                    ) =>
                    {
                        Binding::Name(ident.name.clone())
                    }
                    None => Binding::Value(self.lower_expr(here, &arg.value, outer)),
                },
                _ => Binding::Value(self.lower_expr(here, &arg.value, outer)),
            };
            scope.bindings.insert(param.name.name.clone(), binding);
        }
        Some(scope)
    }

    fn lower_flow(
        &mut self,
        name: &str,
        body: &ast::FlowBody,
        unit: &'p SourceUnit,
        span: Span,
        scope: &Scope,
        policy: &CompiledPolicy,
    ) -> Option<CompiledFlow> {
        let here = Here { unit };
        let mut flow = CompiledFlow {
            name: name.to_string(),
            hash: String::new(),
            source: here.loc(span),
            triggers: Vec::new(),
            only_if: None,
            reentry: Reentry::NotWhileActive,
            exit_on: Vec::new(),
            exit_if: Vec::new(),
            quiet_hours: policy.quiet_hours,
            goal: None,
            holdout_basis_points: 0,
            trigger_keys: None,
            event_keys: None,
            entry: StateId(0),
            states: vec![State {
                kind: StateKind::End,
                source: here.loc(body.span),
            }],
            change: ChangeRules::default(),
        };
        for line in &body.header {
            match &line.kind {
                ast::HeaderKind::WhenEvent { event, filter } => {
                    let event = self.intern_event(scope.name(event));
                    let filter = filter.as_ref().map(|f| self.lower_expr(here, f, scope));
                    flow.triggers
                        .push(Trigger::Event(EventMatch { event, filter }));
                }
                ast::HeaderKind::WhenEntering { segment } => {
                    let id = self.segment_ref(here, segment, scope)?;
                    flow.triggers.push(Trigger::Entering(id));
                }
                ast::HeaderKind::WhenEvery { every, at, segment } => {
                    let every = self.duration(here, every, scope)?;
                    let segment = self.segment_ref(here, segment, scope)?;
                    flow.triggers.push(Trigger::Every {
                        every,
                        at: at.map(minute_of_day),
                        segment,
                    });
                }
                ast::HeaderKind::WhenAnniversary { field, at } => {
                    if field.root.name != "contact" {
                        self.error(
                            here,
                            Code::UnknownPathRoot,
                            field.span,
                            "`when anniversary of` needs a `contact.` field".to_string(),
                        );
                        continue;
                    }
                    flow.triggers.push(Trigger::Anniversary {
                        field: field.fields.iter().map(|f| f.name.clone()).collect(),
                        at: at.map_or(0, minute_of_day),
                    });
                }
                ast::HeaderKind::OnlyIf(expr) => {
                    flow.only_if = Some(self.lower_expr(here, expr, scope))
                }
                ast::HeaderKind::Reentry(reentry) => {
                    flow.reentry = match reentry {
                        ast::Reentry::Never => Reentry::Never,
                        ast::Reentry::Always => Reentry::Always,
                        ast::Reentry::After(d) => Reentry::After(self.duration(here, d, scope)?),
                    }
                }
                ast::HeaderKind::ExitOn { event, filter } => {
                    let event = self.intern_event(scope.name(event));
                    let filter = filter.as_ref().map(|f| self.lower_expr(here, f, scope));
                    flow.exit_on.push(EventMatch { event, filter });
                }
                ast::HeaderKind::ExitIf(expr) => {
                    let expr = self.lower_expr(here, expr, scope);
                    flow.exit_if.push(expr);
                }
                ast::HeaderKind::QuietHours(q) => flow.quiet_hours = Some(quiet_window(q)),
                ast::HeaderKind::Goal {
                    event,
                    filter,
                    within,
                } => {
                    let event = self.intern_event(scope.name(event));
                    let filter = filter.as_ref().map(|f| self.lower_expr(here, f, scope));
                    let within = self.duration(here, within, scope)?;
                    flow.goal = Some(Goal {
                        event,
                        filter,
                        within,
                    });
                }
                ast::HeaderKind::Holdout(p) => {
                    flow.holdout_basis_points =
                        (p.value * 100.0).round().clamp(0.0, 10_000.0) as u16;
                }
                ast::HeaderKind::OnChange { policy, .. } => flow.change.policy = *policy,
            }
        }
        if flow.triggers.is_empty() {
            self.error(
                here,
                Code::FlowWithoutTrigger,
                span,
                format!("flow `{name}` has no `when` line"),
            );
            return None;
        }
        let end = StateId(0);
        let outer_labels = std::mem::take(&mut self.labels);
        let entry = self.lower_block(here, &body.steps, end, scope, &mut flow.states);
        let mut labels = std::mem::replace(&mut self.labels, outer_labels);
        flow.entry = entry?;
        // Source order (the steps are lowered last to first).
        labels.sort_by_key(|(_, _, start)| *start);
        flow.change.labels = labels.into_iter().map(|(l, s, _)| (l, s)).collect();
        Some(flow)
    }

    fn push_state(
        &mut self,
        here: Here<'_>,
        states: &mut Vec<State>,
        kind: StateKind,
        span: Span,
    ) -> Option<StateId> {
        let Ok(id) = u16::try_from(states.len()) else {
            self.error(
                here,
                Code::BadValue,
                span,
                "this flow has more than 65535 steps".to_string(),
            );
            return None;
        };
        states.push(State {
            kind,
            source: here.loc(span),
        });
        Some(StateId(id))
    }

    /// Lowers `steps` so that the last one continues with `next`; returns the first state.
    fn lower_block(
        &mut self,
        here: Here<'_>,
        steps: &[ast::Step],
        next: StateId,
        scope: &Scope,
        states: &mut Vec<State>,
    ) -> Option<StateId> {
        let mut next = next;
        for step in steps.iter().rev() {
            let kind = match &step.kind {
                ast::StepKind::Send { message } => {
                    let name = scope.name(message);
                    let Some(id) = self.message_index.get(name).copied() else {
                        self.error(
                            here,
                            Code::UnknownMessage,
                            message.span,
                            format!("unknown message `{name}`"),
                        );
                        return None;
                    };
                    StateKind::Send { message: id, next }
                }
                ast::StepKind::Wait { duration } => StateKind::Wait {
                    duration: self.duration(here, duration, scope)?,
                    next,
                },
                ast::StepKind::WaitUntil { time } => StateKind::WaitUntil {
                    minute_of_day: minute_of_day(*time),
                    next,
                },
                ast::StepKind::WaitFor(wait) => {
                    let timeout = self.duration(here, &wait.timeout, scope)?;
                    let on_timeout = match &wait.otherwise {
                        Some(block) => self.lower_block(here, &block.steps, next, scope, states)?,
                        None => next,
                    };
                    let received = match &wait.body {
                        ast::WaitForBody::Received(block) => {
                            Some(self.lower_block(here, &block.steps, next, scope, states)?)
                        }
                        _ => None,
                    };
                    let mut arms = Vec::new();
                    for matcher in &wait.events {
                        let event_name = scope.name(&matcher.event).to_string();
                        let event = self.intern_event(&event_name);
                        let filter = matcher
                            .filter
                            .as_ref()
                            .map(|f| self.lower_expr(here, f, scope));
                        let arm_next = match &wait.body {
                            ast::WaitForBody::None => next,
                            ast::WaitForBody::Received(_) => received.unwrap_or(next),
                            ast::WaitForBody::Arms(on_arms) => {
                                match on_arms.iter().find(|a| {
                                    normalize_event_name(scope.name(&a.event))
                                        == self.events[event.index()]
                                }) {
                                    Some(arm) => self.lower_block(
                                        here,
                                        &arm.block.steps,
                                        next,
                                        scope,
                                        states,
                                    )?,
                                    None => next,
                                }
                            }
                        };
                        arms.push(WaitArm {
                            event: EventMatch { event, filter },
                            next: arm_next,
                        });
                    }
                    StateKind::WaitFor {
                        arms,
                        timeout,
                        on_timeout,
                    }
                }
                ast::StepKind::If {
                    branches,
                    otherwise,
                } => {
                    let otherwise = match otherwise {
                        Some(block) => self.lower_block(here, &block.steps, next, scope, states)?,
                        None => next,
                    };
                    let mut conditions = Vec::new();
                    let mut otherwise = otherwise;
                    for branch in branches {
                        let condition = self.lower_expr(here, &branch.condition, scope);
                        let target =
                            self.lower_block(here, &branch.block.steps, next, scope, states)?;
                        match condition {
                            // Known at compile time (a template parameter): an arm that can
                            // never run is dropped; one that always runs ends the chain.
                            Expr::Bool(false) | Expr::Null => {}
                            Expr::Bool(true) => {
                                otherwise = target;
                                break;
                            }
                            condition => conditions.push((condition, target)),
                        }
                    }
                    if conditions.is_empty() {
                        // Nothing left to decide: go straight on (a label names where it goes).
                        next = otherwise;
                        if let Some(label) = &step.label {
                            self.labels
                                .push((label.name.clone(), next, step.span.start));
                        }
                        continue;
                    }
                    StateKind::Branch {
                        conditions,
                        otherwise,
                    }
                }
                ast::StepKind::Split { arms } => {
                    let mut upper = 0.0;
                    let mut lowered = Vec::new();
                    for arm in arms {
                        upper += arm.share.value;
                        let target =
                            self.lower_block(here, &arm.block.steps, next, scope, states)?;
                        lowered.push(((upper * 100.0).round().clamp(0.0, 10_000.0) as u16, target));
                    }
                    if let Some(last) = lowered.last_mut() {
                        last.0 = 10_000;
                    }
                    StateKind::Split { arms: lowered }
                }
                ast::StepKind::Set { field, value } => {
                    if field.root.name != "contact" || field.fields.is_empty() {
                        self.error(
                            here,
                            Code::UnknownPathRoot,
                            field.span,
                            "`set` changes a `contact.` field".to_string(),
                        );
                        return None;
                    }
                    StateKind::Set {
                        field: field.fields.iter().map(|f| f.name.clone()).collect(),
                        value: self.lower_expr(here, value, scope),
                        next,
                    }
                }
                ast::StepKind::Unsubscribe { target, .. } => StateKind::Unsubscribe {
                    target: match target {
                        ast::UnsubscribeTarget::Channel(c) => UnsubscribeTarget::Channel(*c),
                        ast::UnsubscribeTarget::All => UnsubscribeTarget::All,
                    },
                    next,
                },
                ast::StepKind::Stop => StateKind::Stop,
            };
            next = self.push_state(here, states, kind, step.span)?;
            if let Some(label) = &step.label {
                self.labels
                    .push((label.name.clone(), next, step.span.start));
            }
        }
        Some(next)
    }

    fn duration(&mut self, here: Here<'_>, d: &ast::DurationExpr, scope: &Scope) -> Option<Dur> {
        match d {
            ast::DurationExpr::Literal(d) => Some(Dur::from_literal(d.amount, d.unit)),
            ast::DurationExpr::Param(ident) => match scope.bindings.get(&ident.name) {
                Some(Binding::Value(Expr::Duration(d))) => Some(*d),
                _ => {
                    self.error(
                        here,
                        Code::TypeMismatch,
                        ident.span,
                        format!("`{}` is not a duration parameter", ident.name),
                    );
                    None
                }
            },
        }
    }

    fn segment_ref(
        &mut self,
        here: Here<'_>,
        segment: &ast::SegmentRef,
        scope: &Scope,
    ) -> Option<SegmentId> {
        // A template parameter bound to a segment call, such as `audience: inactive(90d)`.
        if segment.args.is_empty() {
            if let Some(Binding::Value(Expr::Segment(id))) = scope.bindings.get(&segment.name.name)
            {
                return Some(*id);
            }
        }
        let name = scope.name(&segment.name).to_string();
        self.segment_instance(here, &name, &segment.args, segment.span, scope)
    }

    /// The instance of segment `name` with `args` (lowered in `scope`), lowering it once.
    fn segment_instance(
        &mut self,
        here: Here<'_>,
        name: &str,
        args: &[ast::Arg],
        span: Span,
        scope: &Scope,
    ) -> Option<SegmentId> {
        let Some(declared) = self.symbols.segments.get(name).copied() else {
            self.error(
                here,
                Code::UnknownSegment,
                span,
                format!("unknown segment `{name}`"),
            );
            return None;
        };
        let ast::Item::Segment(decl) = declared.item else {
            return None;
        };
        let inner = self.bind_arguments(here, &decl.params, args, span, scope)?;
        let mut shown = Vec::new();
        for param in &decl.params {
            shown.push(match inner.bindings.get(&param.name.name) {
                Some(Binding::Value(e)) => show_literal(e),
                Some(Binding::Name(n)) => n.clone(),
                None => "?".to_string(),
            });
        }
        let key = if shown.is_empty() {
            name.to_string()
        } else {
            format!("{name}({})", shown.join(", "))
        };
        if let Some(id) = self.segment_index.get(&key) {
            return Some(*id);
        }
        if self.segment_stack.contains(&key) {
            self.error(
                here,
                Code::SegmentCycle,
                span,
                format!("segment `{name}` refers to itself"),
            );
            return None;
        }
        self.segment_stack.push(key.clone());
        let segment_here = Here {
            unit: declared.unit,
        };
        let expr = self.lower_expr(segment_here, &decl.body, &inner);
        self.segment_stack.pop();
        let id = SegmentId(u16::try_from(self.segments.len()).unwrap_or(u16::MAX));
        self.segments.push(CompiledSegment {
            name: key.clone(),
            expr,
            source: segment_here.loc(decl.span),
        });
        self.segment_index.insert(key, id);
        Some(id)
    }

    /// Lowers an expression, folding operations on literals (`2 >= 3` once a template's
    /// parameters are substituted) with the engine's own semantics.
    fn lower_expr(&mut self, here: Here<'_>, expr: &ast::Expr, scope: &Scope) -> Expr {
        let lowered = self.lower_expr_unfolded(here, expr, scope);
        crate::engine::eval::fold_constant(&lowered).unwrap_or(lowered)
    }

    fn lower_expr_unfolded(&mut self, here: Here<'_>, expr: &ast::Expr, scope: &Scope) -> Expr {
        use ast::ExprKind as K;
        match &expr.kind {
            K::Bool(b) => Expr::Bool(*b),
            K::Null => Expr::Null,
            K::Number(n) => Expr::Number(*n),
            K::String(s) => Expr::String(s.clone()),
            K::Duration(d) => Expr::Duration(Dur::from_literal(d.amount, d.unit)),
            K::Percent(p) => Expr::Number(*p),
            K::Time(t) => Expr::Time(minute_of_day(*t)),
            K::List(items) => Expr::List(
                items
                    .iter()
                    .map(|e| self.lower_expr(here, e, scope))
                    .collect(),
            ),
            K::Path(path) => match root(&path.root.name) {
                Some(root) => Expr::Path {
                    root,
                    fields: path.fields.iter().map(|f| f.name.clone()).collect(),
                },
                None => {
                    self.error(
                        here,
                        Code::UnknownPathRoot,
                        path.span,
                        format!(
                            "a path starts with `contact`, `trigger` or `event`, not `{}`",
                            path.root.name
                        ),
                    );
                    Expr::Null
                }
            },
            K::Exists(path) => match root(&path.root.name) {
                Some(root) => Expr::Exists {
                    root,
                    fields: path.fields.iter().map(|f| f.name.clone()).collect(),
                },
                None => Expr::Null,
            },
            K::Name(ident) => match scope.bindings.get(&ident.name) {
                Some(Binding::Value(v)) => v.clone(),
                Some(Binding::Name(n)) => {
                    let n = n.clone();
                    self.segment_instance(here, &n, &[], ident.span, &Scope::default())
                        .map_or(Expr::Null, Expr::Segment)
                }
                None => self
                    .segment_instance(here, &ident.name, &[], ident.span, scope)
                    .map_or(Expr::Null, Expr::Segment),
            },
            K::SegmentCall { name, args } => {
                let n = scope.name(name).to_string();
                self.segment_instance(here, &n, args, expr.span, scope)
                    .map_or(Expr::Null, Expr::Segment)
            }
            K::CanReceive { channel, .. } => Expr::CanReceive(*channel),
            K::Count {
                event,
                filter,
                within,
            } => Expr::Count {
                event: self.intern_event(scope.name(event)),
                filter: filter
                    .as_ref()
                    .map(|f| Box::new(self.lower_expr(here, f, scope))),
                within: within.as_ref().and_then(|d| self.duration(here, d, scope)),
            },
            K::Sum {
                event,
                property,
                within,
            } => Expr::Sum {
                event: self.intern_event(scope.name(event)),
                property: property.iter().map(|p| p.name.clone()).collect(),
                within: within.as_ref().and_then(|d| self.duration(here, d, scope)),
            },
            K::Last { event, property } => Expr::Last {
                event: self.intern_event(scope.name(event)),
                property: property.iter().map(|p| p.name.clone()).collect(),
            },
            K::Since { event } => Expr::Since(self.intern_event(scope.name(event))),
            K::Unary { op, operand } => {
                let operand = Box::new(self.lower_expr(here, operand, scope));
                match op {
                    ast::UnaryOp::Not => Expr::Not(operand),
                    ast::UnaryOp::Neg => Expr::Neg(operand),
                }
            }
            K::Binary { op, lhs, rhs } => Expr::Binary {
                op: match op {
                    ast::BinaryOp::Or => BinOp::Or,
                    ast::BinaryOp::And => BinOp::And,
                    ast::BinaryOp::Eq => BinOp::Eq,
                    ast::BinaryOp::Ne => BinOp::Ne,
                    ast::BinaryOp::Lt => BinOp::Lt,
                    ast::BinaryOp::Le => BinOp::Le,
                    ast::BinaryOp::Gt => BinOp::Gt,
                    ast::BinaryOp::Ge => BinOp::Ge,
                    ast::BinaryOp::Add => BinOp::Add,
                    ast::BinaryOp::Sub => BinOp::Sub,
                    ast::BinaryOp::Mul => BinOp::Mul,
                    ast::BinaryOp::Div => BinOp::Div,
                },
                lhs: Box::new(self.lower_expr(here, lhs, scope)),
                rhs: Box::new(self.lower_expr(here, rhs, scope)),
            },
            K::In { needle, list } => Expr::In {
                needle: Box::new(self.lower_expr(here, needle, scope)),
                list: Box::new(self.lower_expr(here, list, scope)),
            },
        }
    }
}

fn root(name: &str) -> Option<Root> {
    match name {
        "contact" => Some(Root::Contact),
        "trigger" => Some(Root::Trigger),
        "event" => Some(Root::Event),
        _ => None,
    }
}

fn show_literal(e: &Expr) -> String {
    match e {
        Expr::Duration(d) => d.to_string(),
        Expr::Number(n) => n.to_string(),
        Expr::String(s) => format!("{s:?}"),
        Expr::Bool(b) => b.to_string(),
        Expr::Null => "null".to_string(),
        Expr::Time(m) => format!("{:02}:{:02}", m / 60, m % 60),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// Walks every expression of the project and records, per event, what history is needed.
fn history_needs(project: &CompiledProject) -> Vec<HistoryNeed> {
    let mut needs = vec![
        HistoryNeed {
            last_only: true,
            ..HistoryNeed::default()
        };
        project.events.len()
    ];
    let mut all_needed = vec![false; project.events.len()];
    let mut visit = |expr: &Expr| {
        walk(expr, &mut |e| {
            let (event, window, property, whole) = match e {
                Expr::Count {
                    event,
                    within,
                    filter,
                } => {
                    let mut props = Vec::new();
                    if let Some(f) = filter {
                        walk(f, &mut |inner| match inner {
                            Expr::Path {
                                root: Root::Event,
                                fields,
                            }
                            | Expr::Exists {
                                root: Root::Event,
                                fields,
                            } => props.push(fields.clone()),
                            _ => {}
                        });
                    }
                    (*event, Some(*within), props, true)
                }
                Expr::Sum {
                    event,
                    property,
                    within,
                } => (*event, Some(*within), vec![property.clone()], true),
                Expr::Last { event, property } => (*event, None, vec![property.clone()], false),
                Expr::Since(event) => (*event, None, Vec::new(), false),
                _ => return,
            };
            let Some(need) = needs.get_mut(event.index()) else {
                return;
            };
            let first_whole = whole && !all_needed[event.index()];
            need.keep = true;
            if whole {
                need.last_only = false;
                let horizon = window.flatten().map(|d| d.max_seconds());
                need.horizon = if first_whole {
                    horizon
                } else {
                    need.horizon.zip(horizon).map(|(a, b)| a.max(b))
                };
                all_needed[event.index()] = true;
            }
            for p in property {
                if !need.properties.contains(&p) {
                    need.properties.push(p);
                }
            }
        });
    };
    for segment in &project.segments {
        visit(&segment.expr);
    }
    for flow in &project.flows {
        for_each_expr(flow, &mut visit);
    }
    needs
}

/// Which trigger and received-event properties an instance of `flow` can ever read after
/// entry: `trigger.x`/`event.x` in its exit and wait filters, conditions, `set` values and the
/// templates of the messages it sends. `None` when a template uses `trigger`/`event` in a way
/// this scan cannot follow (then everything is kept).
fn kept_properties(
    flow: &CompiledFlow,
    messages: &[CompiledMessage],
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let mut trigger = Some(Vec::new());
    let mut event = Some(Vec::new());
    let add = |set: &mut Option<Vec<String>>, key: &str| {
        if let Some(keys) = set {
            if !keys.iter().any(|k| k == key) {
                keys.push(key.to_string());
            }
        }
    };
    let mut visit = |expr: &Expr, event_is_instance_event: bool| {
        let mut stack = vec![expr];
        while let Some(e) = stack.pop() {
            match e {
                Expr::Path { root, fields } | Expr::Exists { root, fields } => {
                    if let Some(first) = fields.first() {
                        match root {
                            Root::Trigger => add(&mut trigger, first),
                            Root::Event if event_is_instance_event => add(&mut event, first),
                            _ => {}
                        }
                    }
                }
                Expr::List(items) => stack.extend(items),
                Expr::Count {
                    filter: Some(f), ..
                } => {
                    // `event.` inside a count filter is the counted occurrence.
                    let mut inner = vec![&**f];
                    while let Some(x) = inner.pop() {
                        match x {
                            Expr::Path {
                                root: Root::Trigger,
                                fields,
                            }
                            | Expr::Exists {
                                root: Root::Trigger,
                                fields,
                            } => {
                                if let Some(first) = fields.first() {
                                    add(&mut trigger, first);
                                }
                            }
                            Expr::Not(a) | Expr::Neg(a) => inner.push(a),
                            Expr::Binary { lhs, rhs, .. } => inner.extend([&**lhs, &**rhs]),
                            Expr::In { needle, list } => inner.extend([&**needle, &**list]),
                            Expr::List(items) => inner.extend(items),
                            _ => {}
                        }
                    }
                }
                Expr::Not(a) | Expr::Neg(a) => stack.push(a),
                Expr::Binary { lhs, rhs, .. } => stack.extend([&**lhs, &**rhs]),
                Expr::In { needle, list } => stack.extend([&**needle, &**list]),
                _ => {}
            }
        }
    };
    for m in &flow.exit_on {
        if let Some(f) = &m.filter {
            visit(f, false);
        }
    }
    for e in &flow.exit_if {
        visit(e, true);
    }
    for state in &flow.states {
        match &state.kind {
            StateKind::WaitFor { arms, .. } => arms
                .iter()
                .filter_map(|a| a.event.filter.as_ref())
                .for_each(|f| visit(f, false)),
            StateKind::Branch { conditions, .. } => {
                conditions.iter().for_each(|(c, _)| visit(c, true))
            }
            StateKind::Set { value, .. } => visit(value, true),
            _ => {}
        }
    }
    for state in &flow.states {
        if let StateKind::Send { message, .. } = &state.kind {
            if let Some(m) = messages.get(message.index()) {
                for (_, text) in &m.fields {
                    scan_template(text, "trigger", &mut trigger);
                    scan_template(text, "event", &mut event);
                }
            }
        }
    }
    (trigger, event)
}

/// Adds `NAME` for every `root.NAME` in a template; any other use of `root` keeps everything.
fn scan_template(text: &str, root: &str, keys: &mut Option<Vec<String>>) {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut from = 0;
    while let Some(found) = text[from..].find(root) {
        let start = from + found;
        let end = start + root.len();
        from = end;
        if start > 0 && (is_ident(bytes[start - 1]) || bytes[start - 1] == b'.') {
            continue;
        }
        if end < bytes.len() && is_ident(bytes[end]) {
            continue;
        }
        if bytes.get(end) == Some(&b'.') {
            let name: String = text[end + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                if let Some(k) = keys {
                    if !k.contains(&name) {
                        k.push(name);
                    }
                }
                continue;
            }
        }
        *keys = None;
        return;
    }
}

/// Calls `f` on every top-level expression of a flow.
pub fn for_each_expr(flow: &CompiledFlow, f: &mut impl FnMut(&Expr)) {
    for trigger in &flow.triggers {
        if let Trigger::Event(m) = trigger {
            m.filter.iter().for_each(&mut *f);
        }
    }
    flow.only_if.iter().for_each(&mut *f);
    flow.exit_on
        .iter()
        .filter_map(|m| m.filter.as_ref())
        .for_each(&mut *f);
    flow.exit_if.iter().for_each(&mut *f);
    if let Some(goal) = &flow.goal {
        goal.filter.iter().for_each(&mut *f);
    }
    for state in &flow.states {
        match &state.kind {
            StateKind::WaitFor { arms, .. } => arms
                .iter()
                .filter_map(|a| a.event.filter.as_ref())
                .for_each(&mut *f),
            StateKind::Branch { conditions, .. } => conditions.iter().for_each(|(c, _)| f(c)),
            StateKind::Set { value, .. } => f(value),
            _ => {}
        }
    }
}

/// Calls `f` on `expr` and every sub-expression.
pub fn walk(expr: &Expr, f: &mut impl FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::List(items) => items.iter().for_each(|e| walk(e, f)),
        Expr::Count {
            filter: Some(filter),
            ..
        } => walk(filter, f),
        Expr::Not(e) | Expr::Neg(e) => walk(e, f),
        Expr::Binary { lhs, rhs, .. } => {
            walk(lhs, f);
            walk(rhs, f);
        }
        Expr::In { needle, list } => {
            walk(needle, f);
            walk(list, f);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_normalised() {
        assert_eq!(normalize_event_name("Order Completed"), "order_completed");
        assert_eq!(normalize_event_name("order_completed"), "order_completed");
        assert_eq!(
            normalize_event_name("  Cart -- Abandoned!! "),
            "cart_abandoned"
        );
        assert_eq!(normalize_event_name("Email.Opened"), "email_opened");
    }

    #[test]
    fn template_scan_finds_trigger_properties() {
        let mut keys = Some(Vec::new());
        scan_template(
            "Order {{ trigger.order_id }} for {{ contact.name }} {{trigger.total|round}}",
            "trigger",
            &mut keys,
        );
        assert_eq!(
            keys,
            Some(vec!["order_id".to_string(), "total".to_string()])
        );
        scan_template(
            "{{ my_trigger.x }} {{ event.trigger }}",
            "trigger",
            &mut keys,
        );
        assert_eq!(keys.as_ref().map(Vec::len), Some(2));
        scan_template("{{ trigger['x'] }}", "trigger", &mut keys);
        assert_eq!(keys, None);
    }
}
