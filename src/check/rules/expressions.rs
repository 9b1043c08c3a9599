//! Names, paths and types inside expressions: `E0003` (unknown segment), `E0005` (unknown
//! path root), `E0006` (unknown event property), `E0012` (type mismatch), `E0014` (wrong
//! arguments to a segment) and `E0020` (`event.` where no event was received).
//!
//! ## What it does
//! Infers the type of every expression (number, duration, text, bool, time, list, `null`, or a
//! JSON value only the data decides), resolves every bare name to a parameter or a segment,
//! checks segment calls against the segment's parameters, and checks `trigger.`/`event.` paths
//! against the schema of the event they read.
//!
//! ## Why is this bad?
//! The engine gives `null` to what it cannot compute, and a comparison with `null` is false:
//! `count(order_completed) > 3d` would silently never hold, and a flow would never send.
//!
//! ## Example
//! ```text
//! segment loyal = count(order_completed within 90d) > 3d     # E0012: a number and a duration
//! segment late = since(order_completed) > 90                 # E0012: a duration and a number
//! ```
//!
//! Must not: report anything about steps or declarations (other rules do).

use crate::check::context::{did_you_mean, stdlib_help, Context, Scope};
use crate::check::types::Ty;
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast::{self, BinaryOp, ExprKind, ParamType, Span, UnaryOp};

/// The events whose properties a root (`trigger` or `event`) reads at some place.
#[derive(Debug, Clone, PartialEq)]
pub enum Events {
    /// These events (by name): their schemas, if all have one, are checked.
    Known(Vec<String>),
    /// An event the checker cannot name (a template's `event` parameter, a segment trigger).
    Unknown,
}

impl Events {
    pub fn one(name: &ast::Ident, scope: &Scope<'_>) -> Events {
        if scope.param(&name.name).is_some() {
            Events::Unknown
        } else {
            Events::Known(vec![name.name.clone()])
        }
    }
}

/// Where an expression stands: which event `trigger.` and `event.` read.
#[derive(Debug, Clone)]
pub struct Place {
    pub trigger: Events,
    /// `None`: no event has been received here (an `event.` path is `E0020`).
    pub event: Option<Events>,
}

impl Place {
    /// A segment body: no trigger, no received event.
    pub fn segment() -> Place {
        Place {
            trigger: Events::Unknown,
            event: None,
        }
    }
    pub fn with_event(&self, event: Events) -> Place {
        Place {
            trigger: self.trigger.clone(),
            event: Some(event),
        }
    }
}

/// Checks an expression that must be true or false (a condition, a filter, a segment body).
pub fn condition(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    scope: Scope<'_>,
    place: &Place,
    expr: &ast::Expr,
) {
    let ty = infer(ctx, unit, scope, place, expr);
    if !ty.fits(Ty::Bool) {
        let d = Context::at(
            unit,
            Code::TypeMismatch,
            expr.span,
            format!("expected a condition, found {}", ty.describe()),
        )
        .with_label(format!("this is {}", ty.describe()))
        .with_help("write a comparison such as `count(order_completed) > 0` or a segment name");
        ctx.report(d);
    }
}

/// The type of `expr`, reporting every problem inside it.
pub fn infer(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    scope: Scope<'_>,
    place: &Place,
    expr: &ast::Expr,
) -> Ty {
    let mut checker = Checker { ctx, unit, scope };
    checker.infer(place, expr)
}

/// Checks a duration written where one is expected (`within D`, `wait D`).
pub fn duration(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    scope: Scope<'_>,
    duration: &ast::DurationExpr,
) {
    if let ast::DurationExpr::Param(ident) = duration {
        match scope.param(&ident.name) {
            Some(p) if p.ty == ParamType::Duration => {}
            Some(p) => {
                let d = Context::at(
                    unit,
                    Code::TypeMismatch,
                    ident.span,
                    format!(
                        "`{}` is a {} parameter, not a duration",
                        ident.name,
                        p.ty.keyword()
                    ),
                )
                .with_label("expected a duration")
                .with_help(format!(
                    "declare `{}: duration`, or write a duration such as `2d`",
                    ident.name
                ));
                ctx.report(d);
            }
            None => {}
        }
    }
}

/// Checks the arguments of a call of `params` (a segment or a flow template): count, names and
/// types. `what` names the callee ("segment `inactive`").
pub fn arguments(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    scope: Scope<'_>,
    what: &str,
    params: &[ast::Param],
    args: &[ast::Arg],
    call_span: Span,
) {
    let mut checker = Checker { ctx, unit, scope };
    checker.arguments(&Place::segment(), what, params, args, call_span);
}

/// Checks a segment used by a header line (`when entering S(ARGS)`, `when every D for S`).
pub fn segment_ref(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    scope: Scope<'_>,
    segment: &ast::SegmentRef,
) {
    let mut checker = Checker { ctx, unit, scope };
    checker.segment_call(
        &Place::segment(),
        &segment.name,
        &segment.args,
        segment.span,
    );
}

struct Checker<'c, 'p, 'u, 's> {
    ctx: &'c mut Context<'p>,
    unit: &'u SourceUnit,
    scope: Scope<'s>,
}

impl Checker<'_, '_, '_, '_> {
    fn snippet(&self, span: Span) -> String {
        let text = self.unit.text.get(span.start..span.end).unwrap_or("");
        let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > 40 {
            let cut: String = one_line.chars().take(37).collect();
            format!("{cut}...")
        } else {
            one_line
        }
    }

    fn mismatch(&mut self, span: Span, message: String, label: String, help: &str) {
        let d = Context::at(self.unit, Code::TypeMismatch, span, message)
            .with_label(label)
            .with_help(help);
        self.ctx.report(d);
    }

    /// A type mismatch between the two sides of an operator: labelled on the right side, the
    /// left one's type as a related label.
    fn mismatch_of_sides(
        &mut self,
        left: (Span, Ty),
        right: (Span, Ty),
        message: String,
        help: &str,
    ) {
        let d = Context::at(self.unit, Code::TypeMismatch, right.0, message)
            .with_label(format!("this is {}", right.1.describe()))
            .with_related(left.0, format!("this is {}", left.1.describe()))
            .with_help(help);
        self.ctx.report(d);
    }

    fn infer(&mut self, place: &Place, expr: &ast::Expr) -> Ty {
        match &expr.kind {
            ExprKind::Bool(_) => Ty::Bool,
            ExprKind::Null => Ty::Null,
            ExprKind::Number(_) | ExprKind::Percent(_) => Ty::Number,
            ExprKind::String(_) => Ty::String,
            ExprKind::Duration(_) => Ty::Duration,
            ExprKind::Time(_) => Ty::Time,
            ExprKind::List(items) => {
                let mut first: Option<(Ty, Span)> = None;
                for item in items {
                    let ty = self.infer(place, item);
                    match first {
                        None if !matches!(ty, Ty::Unknown | Ty::Null) => {
                            first = Some((ty, item.span))
                        }
                        Some((expected, _)) if !ty.fits(expected) => {
                            let (a, b) = (expected.describe(), ty.describe());
                            self.mismatch(
                                item.span,
                                format!("a list mixes {a} and {b}"),
                                format!("this is {b}"),
                                "write every item of a list as the same kind of value",
                            );
                        }
                        _ => {}
                    }
                }
                Ty::List
            }
            ExprKind::Path(path) => self.path(place, path),
            ExprKind::Exists(path) => {
                self.path(place, path);
                Ty::Bool
            }
            ExprKind::Name(ident) => self.name(ident),
            ExprKind::SegmentCall { name, args } => {
                self.segment_call(place, name, args, expr.span);
                Ty::Bool
            }
            ExprKind::CanReceive { .. } => Ty::Bool,
            ExprKind::Count {
                event,
                filter,
                within,
            } => {
                crate::check::rules::event_names::check(self.ctx, self.unit, self.scope, event);
                if let Some(filter) = filter {
                    let inner = place.with_event(Events::one(event, &self.scope));
                    self.condition(&inner, filter);
                }
                if let Some(within) = within {
                    duration(self.ctx, self.unit, self.scope, within);
                }
                Ty::Number
            }
            ExprKind::Sum {
                event,
                property,
                within,
            } => {
                if let Some(within) = within {
                    duration(self.ctx, self.unit, self.scope, within);
                }
                let ty = self.event_property(event, property);
                if !ty.fits(Ty::Number) {
                    let span = property_span(event, property);
                    self.mismatch(
                        span,
                        format!("`sum` adds numbers, but `{}` is {}", dotted(event, property), ty.describe()),
                        format!("this is {}", ty.describe()),
                        "sum a `number` property of the event, or count the events with `count(EVENT)`",
                    );
                }
                Ty::Number
            }
            ExprKind::Last { event, property } => self.event_property(event, property),
            ExprKind::Since { event } => {
                crate::check::rules::event_names::check(self.ctx, self.unit, self.scope, event);
                Ty::Duration
            }
            ExprKind::Unary { op, operand } => {
                let ty = self.infer(place, operand);
                match op {
                    UnaryOp::Not => {
                        if !ty.fits(Ty::Bool) {
                            self.mismatch(
                                operand.span,
                                format!("`not` needs a condition, found {}", ty.describe()),
                                format!("this is {}", ty.describe()),
                                "write `not` before a comparison or a segment: `not vip`",
                            );
                        }
                        Ty::Bool
                    }
                    UnaryOp::Neg => {
                        if !(ty.fits(Ty::Number) || ty == Ty::Duration) {
                            self.mismatch(
                                operand.span,
                                format!(
                                    "`-` needs a number or a duration, found {}",
                                    ty.describe()
                                ),
                                format!("this is {}", ty.describe()),
                                "negate a number such as `-1`",
                            );
                        }
                        if ty == Ty::Duration {
                            Ty::Duration
                        } else if ty == Ty::Number {
                            Ty::Number
                        } else {
                            Ty::Unknown
                        }
                    }
                }
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(place, *op, lhs, rhs),
            ExprKind::In { needle, list } => {
                let needle_ty = self.infer(place, needle);
                let list_ty = self.infer(place, list);
                if !list_ty.fits(Ty::List) {
                    self.mismatch(
                        list.span,
                        format!(
                            "`in` needs a list on its right, found {}",
                            list_ty.describe()
                        ),
                        format!("this is {}", list_ty.describe()),
                        "write a list such as `[\"es\", \"pt\"]` after `in`",
                    );
                } else if let ExprKind::List(items) = &list.kind {
                    if !matches!(needle_ty, Ty::Unknown | Ty::Null) {
                        for item in items {
                            let item_ty = literal_ty(item);
                            if !item_ty.fits(needle_ty) {
                                let (a, b) = (needle_ty.describe(), item_ty.describe());
                                self.mismatch(
                                    item.span,
                                    format!("`{}` is {a}, but the list holds {b}", self.snippet(needle.span)),
                                    format!("this is {b}"),
                                    "a value is never equal to a value of another type: make the list items the same type as the value",
                                );
                                break;
                            }
                        }
                    }
                }
                Ty::Bool
            }
        }
    }

    fn condition(&mut self, place: &Place, expr: &ast::Expr) {
        let ty = self.infer(place, expr);
        if !ty.fits(Ty::Bool) {
            self.mismatch(
                expr.span,
                format!("expected a condition, found {}", ty.describe()),
                format!("this is {}", ty.describe()),
                "write a comparison such as `event.total > 50`",
            );
        }
    }

    fn binary(&mut self, place: &Place, op: BinaryOp, lhs: &ast::Expr, rhs: &ast::Expr) -> Ty {
        let a = self.infer(place, lhs);
        let b = self.infer(place, rhs);
        let symbol = op.symbol();
        match op {
            BinaryOp::And | BinaryOp::Or => {
                for (ty, side) in [(a, lhs), (b, rhs)] {
                    if !ty.fits(Ty::Bool) {
                        self.mismatch(
                            side.span,
                            format!("`{symbol}` joins conditions, found {}", ty.describe()),
                            format!("this is {}", ty.describe()),
                            "write a comparison on each side, such as `count(order_completed) > 0`",
                        );
                    }
                }
                Ty::Bool
            }
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => {
                let ordered = !matches!(op, BinaryOp::Eq | BinaryOp::Ne);
                if !a.fits(b) {
                    let help = match (a, b) {
                        (Ty::Number, Ty::Duration) | (Ty::Duration, Ty::Number) => {
                            "a duration compares with a duration (`since(order_completed) > 90d`), a count with a number (`count(order_completed within 3d) > 3`)"
                        }
                        _ => "compare values of the same type",
                    };
                    let message = format!(
                        "cannot compare {} with {} using `{symbol}`",
                        a.describe(),
                        b.describe()
                    );
                    self.mismatch_of_sides((lhs.span, a), (rhs.span, b), message, help);
                } else if ordered {
                    for (ty, side) in [(a, lhs), (b, rhs)] {
                        if matches!(ty, Ty::Bool | Ty::List) {
                            self.mismatch(
                                side.span,
                                format!(
                                    "`{symbol}` orders numbers, durations, text or times, not {}",
                                    ty.describe()
                                ),
                                format!("this is {}", ty.describe()),
                                "use `==` or `!=` to compare this value",
                            );
                            break;
                        }
                    }
                }
                Ty::Bool
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
                use Ty::*;
                let result = match (op, a, b) {
                    (_, Unknown | Null, Unknown | Null) => Some(Unknown),
                    (_, Number, Number) => Some(Number),
                    (_, Number, Unknown | Null) | (_, Unknown | Null, Number) => Some(Number),
                    (BinaryOp::Add | BinaryOp::Sub, Duration, Duration) => Some(Duration),
                    (BinaryOp::Add | BinaryOp::Sub, Duration, Unknown | Null)
                    | (BinaryOp::Add | BinaryOp::Sub, Unknown | Null, Duration) => Some(Duration),
                    (BinaryOp::Mul, Duration, Number | Unknown | Null) => Some(Duration),
                    (BinaryOp::Add, String, String | Unknown | Null)
                    | (BinaryOp::Add, Unknown | Null, String) => Some(String),
                    _ => None,
                };
                match result {
                    Some(ty) => ty,
                    None => {
                        let help = match op {
                            BinaryOp::Add => {
                                "`+` adds two numbers, two durations, or joins two texts"
                            }
                            BinaryOp::Sub => {
                                "`-` subtracts a number from a number or a duration from a duration"
                            }
                            BinaryOp::Mul => {
                                "`*` multiplies numbers, or a duration by a number (`2d * 3`)"
                            }
                            _ => "`/` divides a number by a number",
                        };
                        let message = format!(
                            "cannot apply `{symbol}` to {} and {}",
                            a.describe(),
                            b.describe()
                        );
                        self.mismatch_of_sides((lhs.span, a), (rhs.span, b), message, help);
                        Ty::Unknown
                    }
                }
            }
        }
    }

    fn path(&mut self, place: &Place, path: &ast::Path) -> Ty {
        match path.root.name.as_str() {
            "contact" => Ty::Unknown,
            "trigger" => {
                let events = place.trigger.clone();
                self.property(&events, path, "trigger")
            }
            "event" => match &place.event {
                Some(events) => {
                    let events = events.clone();
                    self.property(&events, path, "event")
                }
                None => {
                    let d = Context::at(
                        self.unit,
                        Code::EventPathOutsideWait,
                        path.span,
                        format!("`{}` reads a received event, but none has been received here", path.dotted()),
                    )
                    .with_label("no `wait for` received an event here")
                    .with_help("read `event.` inside the block of a `wait for` (or in a `where` filter); use `trigger.` for the event that started the flow");
                    self.ctx.report(d);
                    Ty::Unknown
                }
            },
            other => {
                let help = did_you_mean(other, ast::PATH_ROOTS).unwrap_or_else(|| {
                    "a path starts with `contact.`, `trigger.` or `event.`".to_string()
                });
                let d = Context::at(
                    self.unit,
                    Code::UnknownPathRoot,
                    path.root.span,
                    format!("unknown path root `{other}`"),
                )
                .with_label("not `contact`, `trigger` or `event`")
                .with_help(help);
                self.ctx.report(d);
                Ty::Unknown
            }
        }
    }

    /// Checks the first field of `root.FIELD...` against the schemas of `events`.
    fn property(&mut self, events: &Events, path: &ast::Path, root: &str) -> Ty {
        let Some(field) = path.fields.first() else {
            return Ty::Unknown;
        };
        let Events::Known(names) = events else {
            return Ty::Unknown;
        };
        if names.is_empty() {
            return Ty::Unknown;
        }
        let mut schemas = Vec::new();
        for name in names {
            match self.ctx.schemas.get(name.as_str()) {
                Some(schema) => schemas.push(*schema),
                None => return Ty::Unknown,
            }
        }
        for schema in &schemas {
            if let Some(p) = schema.properties.iter().find(|p| p.name.name == field.name) {
                return if path.fields.len() == 1 {
                    Ty::of_property(p.ty)
                } else {
                    Ty::Unknown
                };
            }
        }
        let shown: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        let candidates: Vec<&str> = schemas
            .iter()
            .flat_map(|s| s.properties.iter().map(|p| p.name.name.as_str()))
            .collect();
        let help =
            did_you_mean(&field.name, candidates.iter().copied()).unwrap_or_else(|| {
                if candidates.is_empty() {
                    format!(
                        "the schema of {} declares no properties; add `{}` to it",
                        shown.join(", "),
                        field.name
                    )
                } else {
                    format!(
                    "the schema declares {}; add `{}` to `event {} {{ ... }}` if the event has it",
                    candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
                    field.name,
                    names.first().map_or("", String::as_str)
                )
                }
            });
        let mut d = Context::at(
            self.unit,
            Code::UnknownEventProperty,
            field.span,
            format!(
                "event {} has no property `{}`",
                shown.join(" or "),
                field.name
            ),
        )
        .with_label(match root {
            "trigger" => "not in the schema of the trigger event".to_string(),
            "event" => "not in the schema of the received event".to_string(),
            name => format!("not in the schema of `{name}`"),
        })
        .with_help(help);
        if let Some(schema) = schemas.first() {
            if self
                .ctx
                .symbols
                .events
                .get(&schema.name.name)
                .is_some_and(|decl| decl.unit.path == self.unit.path)
            {
                d = d.with_related(schema.name.span, "schema declared here");
            }
        }
        self.ctx.report(d);
        Ty::Unknown
    }

    /// `EVENT.PROP` in `sum` and `last`.
    fn event_property(&mut self, event: &ast::Ident, property: &[ast::Ident]) -> Ty {
        crate::check::rules::event_names::check(self.ctx, self.unit, self.scope, event);
        if self.scope.param(&event.name).is_some() {
            return Ty::Unknown;
        }
        let Some(first) = property.first() else {
            return Ty::Unknown;
        };
        let path = ast::Path {
            root: event.clone(),
            fields: property.to_vec(),
            span: event.span.to(first.span),
        };
        let events = Events::Known(vec![event.name.clone()]);
        self.property(&events, &path, &event.name)
    }

    /// A bare name: a parameter, or a segment without arguments.
    fn name(&mut self, ident: &ast::Ident) -> Ty {
        if let Some(param) = self.scope.param(&ident.name) {
            return match Ty::of_param(param.ty) {
                Some(ty) => ty,
                None => {
                    let d = Context::at(
                        self.unit,
                        Code::TypeMismatch,
                        ident.span,
                        format!(
                            "`{}` is a {} parameter, not a value",
                            ident.name,
                            param.ty.keyword()
                        ),
                    )
                    .with_label(format!("a {}", param.ty.keyword()))
                    .with_help(match param.ty {
                        ParamType::Message => format!("send it with `send {}`", ident.name),
                        _ => format!("use it as an event name, as in `count({})`", ident.name),
                    });
                    self.ctx.report(d);
                    Ty::Unknown
                }
            };
        }
        self.segment_call(&Place::segment(), ident, &[], ident.span);
        Ty::Bool
    }

    /// A segment used with `args` (empty for a bare name).
    fn segment_call(&mut self, place: &Place, name: &ast::Ident, args: &[ast::Arg], span: Span) {
        if let Some(param) = self.scope.param(&name.name) {
            // A `segment` parameter of a template, with or without arguments.
            if param.ty != ParamType::Segment {
                let d = Context::at(
                    self.unit,
                    Code::TypeMismatch,
                    name.span,
                    format!(
                        "`{}` is a {} parameter, not a segment",
                        name.name,
                        param.ty.keyword()
                    ),
                )
                .with_label("expected a segment")
                .with_help(format!("declare `{}: segment`", name.name));
                self.ctx.report(d);
            }
            for arg in args {
                self.infer(place, &arg.value);
            }
            return;
        }
        self.ctx.used_segments.insert(name.name.clone());
        match self.ctx.segment(&name.name) {
            Some((_, decl)) => {
                let what = format!("segment `{}`", name.name);
                self.arguments(place, &what, &decl.params, args, span);
            }
            None => {
                let candidates: Vec<&str> = self
                    .ctx
                    .symbols
                    .segments
                    .keys()
                    .map(String::as_str)
                    .chain(self.scope.names())
                    .collect();
                let help = match stdlib_help(&name.name) {
                    Some(help) => help,
                    _ => self
                        .ctx
                        .kind_first(&name.name, "a segment", did_you_mean(&name.name, candidates))
                        .unwrap_or_else(|| {
                            format!(
                                "declare it: `segment {} = ...`, or add the `use stdlib/...` that has it",
                                name.name
                            )
                        }),
                };
                let d = Context::at(
                    self.unit,
                    Code::UnknownSegment,
                    name.span,
                    format!("unknown segment `{}`", name.name),
                )
                .with_label("not declared")
                .with_help(help);
                self.ctx.report(d);
                for arg in args {
                    self.infer(place, &arg.value);
                }
            }
        }
    }

    fn arguments(
        &mut self,
        place: &Place,
        what: &str,
        params: &[ast::Param],
        args: &[ast::Arg],
        call_span: Span,
    ) {
        let wrong = |unit: &SourceUnit, span: Span, message: String, label: &str, help: String| {
            Context::at(unit, Code::WrongArguments, span, message)
                .with_label(label.to_string())
                .with_help(help)
        };
        let signature = signature(params);
        let mut bound: Vec<Option<&ast::Arg>> = vec![None; params.len()];
        let mut positional = 0;
        for arg in args {
            match &arg.name {
                Some(name) => match params.iter().position(|p| p.name.name == name.name) {
                    Some(index) => {
                        if bound[index].is_some() {
                            let d = wrong(
                                self.unit,
                                name.span,
                                format!("`{}` is given twice to {what}", name.name),
                                "given again",
                                "give each argument once".to_string(),
                            );
                            self.ctx.report(d);
                        }
                        bound[index] = Some(arg);
                    }
                    None => {
                        let help =
                            did_you_mean(&name.name, params.iter().map(|p| p.name.name.as_str()))
                                .unwrap_or_else(|| format!("{what} takes {signature}"));
                        let d = wrong(
                            self.unit,
                            name.span,
                            format!("{what} has no parameter `{}`", name.name),
                            "unknown parameter",
                            help,
                        );
                        self.ctx.report(d);
                        // A bare name may be a message or an event: nothing more to say.
                        if !matches!(arg.value.kind, ExprKind::Name(_)) {
                            self.infer(place, &arg.value);
                        }
                    }
                },
                None => {
                    if positional < params.len() && bound[positional].is_none() {
                        bound[positional] = Some(arg);
                    } else if positional >= params.len() {
                        let d = wrong(
                            self.unit,
                            arg.span,
                            format!(
                                "{what} takes {} argument{}, but more are given",
                                params.len(),
                                if params.len() == 1 { "" } else { "s" }
                            ),
                            "one argument too many",
                            format!("{what} takes {signature}"),
                        );
                        self.ctx.report(d);
                    }
                    positional += 1;
                }
            }
        }
        let missing: Vec<&ast::Param> = params
            .iter()
            .zip(&bound)
            .filter(|(_, a)| a.is_none())
            .map(|(p, _)| p)
            .collect();
        if !missing.is_empty() {
            let names: Vec<String> = missing
                .iter()
                .map(|p| format!("`{}`", p.name.name))
                .collect();
            let d = wrong(
                self.unit,
                call_span,
                format!(
                    "{what} is missing the argument{} {}",
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                ),
                "missing arguments",
                format!("{what} takes {signature}"),
            );
            self.ctx.report(d);
        }
        for (param, arg) in params.iter().zip(&bound) {
            let Some(arg) = arg else { continue };
            self.argument(place, what, param, arg);
        }
    }

    fn argument(&mut self, place: &Place, what: &str, param: &ast::Param, arg: &ast::Arg) {
        let value = &arg.value;
        let expected = param.ty.keyword();
        let wrong_kind = |this: &mut Self, found: &str| {
            let d = Context::at(
                this.unit,
                Code::WrongArguments,
                value.span,
                format!(
                    "`{}` of {what} is a {expected}, but {found} is given",
                    param.name.name
                ),
            )
            .with_label(format!("expected a {expected}"))
            .with_help(example_of(param.ty));
            this.ctx.report(d);
        };
        match param.ty {
            ParamType::Message => match &value.kind {
                ExprKind::Name(ident) => {
                    if let Some(p) = self.scope.param(&ident.name) {
                        if p.ty != ParamType::Message {
                            wrong_kind(
                                self,
                                &format!("the {} parameter `{}`", p.ty.keyword(), ident.name),
                            );
                        }
                        return;
                    }
                    self.ctx.used_messages.insert(ident.name.clone());
                    if self.ctx.message(&ident.name).is_none() {
                        let hint = did_you_mean(
                            &ident.name,
                            self.ctx.symbols.messages.keys().map(String::as_str),
                        );
                        let help = self
                            .ctx
                            .kind_first(&ident.name, "a message", hint)
                            .unwrap_or_else(|| {
                                format!("declare it: `message {}: email {{ ... }}`", ident.name)
                            });
                        let d = Context::at(
                            self.unit,
                            Code::UnknownMessage,
                            ident.span,
                            format!("unknown message `{}`", ident.name),
                        )
                        .with_label("not declared")
                        .with_help(help);
                        self.ctx.report(d);
                    }
                }
                _ => wrong_kind(self, &format!("`{}`", self.snippet(value.span))),
            },
            ParamType::Segment => match &value.kind {
                ExprKind::Name(ident) => {
                    self.name(ident);
                }
                ExprKind::SegmentCall { name, args } => {
                    self.segment_call(place, name, args, value.span)
                }
                _ => wrong_kind(self, &format!("`{}`", self.snippet(value.span))),
            },
            ParamType::Event => match &value.kind {
                ExprKind::Name(ident) => {
                    if let Some(p) = self.scope.param(&ident.name) {
                        if p.ty != ParamType::Event {
                            wrong_kind(
                                self,
                                &format!("the {} parameter `{}`", p.ty.keyword(), ident.name),
                            );
                        }
                    }
                }
                _ => wrong_kind(self, &format!("`{}`", self.snippet(value.span))),
            },
            ty => {
                let found = self.infer(place, value);
                let want = Ty::of_param(ty).unwrap_or(Ty::Unknown);
                if !found.fits(want) {
                    wrong_kind(self, found.describe());
                }
            }
        }
    }
}

/// The type of a literal list item, `Unknown` for anything else.
fn literal_ty(expr: &ast::Expr) -> Ty {
    match expr.kind {
        ExprKind::Bool(_) => Ty::Bool,
        ExprKind::Number(_) | ExprKind::Percent(_) => Ty::Number,
        ExprKind::String(_) => Ty::String,
        ExprKind::Duration(_) => Ty::Duration,
        ExprKind::Time(_) => Ty::Time,
        _ => Ty::Unknown,
    }
}

fn dotted(event: &ast::Ident, property: &[ast::Ident]) -> String {
    std::iter::once(event.name.as_str())
        .chain(property.iter().map(|p| p.name.as_str()))
        .collect::<Vec<_>>()
        .join(".")
}

fn property_span(event: &ast::Ident, property: &[ast::Ident]) -> Span {
    property
        .last()
        .map_or(event.span, |p| event.span.to(p.span))
}

/// `(period: duration, min: number)`
pub fn signature(params: &[ast::Param]) -> String {
    if params.is_empty() {
        return "no arguments".to_string();
    }
    let list: Vec<String> = params
        .iter()
        .map(|p| format!("{}: {}", p.name.name, p.ty.keyword()))
        .collect();
    format!("`({})`", list.join(", "))
}

fn example_of(ty: ParamType) -> String {
    match ty {
        ParamType::Duration => "give a duration such as `3d`".into(),
        ParamType::Number => "give a number such as `2`".into(),
        ParamType::String => "give a text in double quotes such as `\"spring\"`".into(),
        ParamType::Bool => "give `true` or `false`".into(),
        ParamType::Message => "give the name of a declared message".into(),
        ParamType::Segment => {
            "give the name of a segment, with its arguments if it has parameters".into()
        }
        ParamType::Event => "give an event name such as `order_completed`".into(),
    }
}
