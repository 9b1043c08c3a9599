//! Expression evaluation over one contact at one instant.
//!
//! Owns: the value semantics of LANGUAGE.md 5 (a comparison with `null` is false, missing
//! paths are `null`, only `true` is true), behaviour functions over the contact's history with
//! the bounds `now - D < t <= now`, and the instants at which a segment's value can change by
//! time alone ([`next_edge`]).
//! Must not: change the contact or read the clock.

use crate::compile::{BinOp, CompiledProject, Dur, EventId, Expr, Root};
use crate::engine::state::{ContactState, PropsRef};
use crate::engine::time::{self, Instant};
use crate::engine::traits::{Fields, Found};
use chrono_tz::Tz;
use serde_json::{Map, Value as Json};
use std::borrow::Cow;

/// A runtime value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Str(Cow<'a, str>),
    /// Seconds.
    Duration(i64),
    /// Minutes since midnight.
    Time(u16),
    List(Vec<Value<'a>>),
    /// An object or array read from a path.
    Json(&'a Json),
    /// An object-valued trait read whole (`contact.consent`).
    Object(&'a Fields<Json>),
}

impl Value<'_> {
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// The value as JSON (for `set contact.x = ...`).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => number_json(*n),
            Value::Str(s) => Json::String(s.to_string()),
            Value::Duration(s) => Json::from(*s),
            Value::Time(m) => Json::String(format!("{:02}:{:02}", m / 60, m % 60)),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Json(j) => (*j).clone(),
            Value::Object(o) => Json::Object(o.to_map()),
        }
    }
}

fn number_json(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

fn from_json(j: &Json) -> Value<'_> {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n.as_f64().map_or(Value::Null, Value::Number),
        Json::String(s) => Value::Str(Cow::Borrowed(s)),
        other => Value::Json(other),
    }
}

/// What an expression can see.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub project: &'a CompiledProject,
    pub contact: &'a ContactState,
    pub trigger: Option<Obj<'a>>,
    pub event: Option<Obj<'a>>,
    pub now: Instant,
    pub tz: Tz,
}

/// A JSON object an expression reads: a record's (`serde_json::Map`) or one kept in a
/// state ([`PropsRef`]). Both give the same values for the same keys.
#[derive(Debug, Clone, Copy)]
pub enum Obj<'a> {
    Map(&'a Map<String, Json>),
    Props(PropsRef<'a>),
}

impl<'a> Obj<'a> {
    pub fn get(self, key: &str) -> Option<&'a Json> {
        match self {
            Obj::Map(map) => map.get(key),
            Obj::Props(props) => props.get(key),
        }
    }
}

/// Follows `fields` into a JSON object.
pub fn lookup<'a>(map: &'a Map<String, Json>, fields: &[String]) -> Option<&'a Json> {
    lookup_in(Obj::Map(map), fields)
}

/// [`lookup`] in either kind of object.
pub fn lookup_in<'a>(object: Obj<'a>, fields: &[String]) -> Option<&'a Json> {
    let (first, rest) = fields.split_first()?;
    let mut value = object.get(first)?;
    for field in rest {
        value = value.get(field)?;
    }
    Some(value)
}

impl<'a> Ctx<'a> {
    /// What the path `root.fields` holds.
    fn find(&self, root: Root, fields: &[String]) -> Option<Found<'a>> {
        let object = match root {
            Root::Contact => return self.contact.traits.lookup(fields),
            Root::Trigger => self.trigger,
            Root::Event => self.event,
        };
        object.and_then(|o| lookup_in(o, fields)).map(Found::Json)
    }

    /// Evaluates to a boolean: only `true` is true.
    pub fn test(&self, expr: &'a Expr) -> bool {
        self.eval(expr).is_true()
    }

    pub fn eval(&self, expr: &'a Expr) -> Value<'a> {
        match expr {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Number(n) => Value::Number(*n),
            Expr::String(s) => Value::Str(Cow::Borrowed(s)),
            Expr::Duration(d) => Value::Duration(self.duration_seconds(*d)),
            Expr::Time(m) => Value::Time(*m),
            Expr::List(items) => Value::List(items.iter().map(|e| self.eval(e)).collect()),
            Expr::Path { root, fields } => match self.find(*root, fields) {
                None => Value::Null,
                Some(Found::Json(j)) => from_json(j),
                Some(Found::Object(o)) => Value::Object(o),
            },
            Expr::Exists { root, fields } => Value::Bool(
                self.find(*root, fields)
                    .is_some_and(|found| !found.is_null()),
            ),
            Expr::Segment(id) => match self.project.segments.get(id.index()) {
                Some(segment) => {
                    let inner = Ctx {
                        trigger: None,
                        event: None,
                        ..*self
                    };
                    Value::Bool(inner.test(&segment.expr))
                }
                None => Value::Null,
            },
            Expr::CanReceive(channel) => Value::Bool(self.contact.can_receive(*channel)),
            Expr::Count {
                event,
                filter,
                within,
            } => {
                let lower = self.lower_bound(*within);
                let count = self
                    .occurrences(*event, lower)
                    .filter(|e| match filter {
                        None => true,
                        Some(f) => {
                            let inner = Ctx {
                                event: e.properties.as_ref().map(|p| Obj::Props(p.view())),
                                ..*self
                            };
                            inner.test(f)
                        }
                    })
                    .count();
                Value::Number(count as f64)
            }
            Expr::Sum {
                event,
                property,
                within,
            } => {
                let lower = self.lower_bound(*within);
                let sum: f64 = self
                    .occurrences(*event, lower)
                    .filter_map(|e| {
                        e.properties
                            .as_ref()
                            .and_then(|p| lookup_in(Obj::Props(p.view()), property))
                            .and_then(Json::as_f64)
                    })
                    .sum();
                Value::Number(sum)
            }
            Expr::Last { event, property } => self
                .contact
                .history
                .iter()
                .rev()
                .find(|e| e.event == *event && e.time <= self.now)
                .and_then(|e| e.properties.as_ref())
                .and_then(|p| lookup_in(Obj::Props(p.view()), property))
                .map_or(Value::Null, from_json),
            Expr::Since(event) => match self.last_time(*event) {
                Some(t) => Value::Duration(self.now - t),
                None => Value::Null,
            },
            Expr::Not(e) => Value::Bool(!self.test(e)),
            Expr::Neg(e) => match self.eval(e) {
                Value::Number(n) => Value::Number(-n),
                Value::Duration(s) => Value::Duration(-s),
                _ => Value::Null,
            },
            Expr::Binary {
                op: BinOp::And,
                lhs,
                rhs,
            } => Value::Bool(self.test(lhs) && self.test(rhs)),
            Expr::Binary {
                op: BinOp::Or,
                lhs,
                rhs,
            } => Value::Bool(self.test(lhs) || self.test(rhs)),
            Expr::Binary { op, lhs, rhs } => {
                let (lhs, rhs) = (self.eval(lhs), self.eval(rhs));
                // Comparisons of numbers (segment thresholds, evaluated for every contact at
                // every schedule tick) without moving the values through `binary`.
                if let (Value::Number(a), Value::Number(b)) = (&lhs, &rhs) {
                    let ordering = a.partial_cmp(b);
                    use std::cmp::Ordering::{Equal, Greater, Less};
                    match op {
                        BinOp::Eq => return Value::Bool(ordering == Some(Equal)),
                        BinOp::Ne => return Value::Bool(ordering != Some(Equal)),
                        BinOp::Lt => return Value::Bool(ordering == Some(Less)),
                        BinOp::Le => return Value::Bool(matches!(ordering, Some(Less | Equal))),
                        BinOp::Gt => return Value::Bool(ordering == Some(Greater)),
                        BinOp::Ge => return Value::Bool(matches!(ordering, Some(Greater | Equal))),
                        _ => {}
                    }
                }
                binary(*op, lhs, rhs)
            }
            Expr::In { needle, list } => {
                let needle = self.eval(needle);
                let found = match self.eval(list) {
                    Value::List(items) => {
                        items.iter().any(|item| compare(BinOp::Eq, &needle, item))
                    }
                    Value::Json(Json::Array(items)) => items
                        .iter()
                        .any(|item| compare(BinOp::Eq, &needle, &from_json(item))),
                    _ => false,
                };
                Value::Bool(found)
            }
        }
    }

    /// A duration literal in seconds; calendar units count back from `now`.
    fn duration_seconds(&self, d: Dur) -> i64 {
        match d {
            Dur::Seconds(s) => s,
            months => self.now - time::sub(self.now, months, self.tz),
        }
    }

    /// `now - D` (exclusive lower bound), or no bound.
    fn lower_bound(&self, within: Option<Dur>) -> Option<Instant> {
        within.map(|d| time::sub(self.now, d, self.tz))
    }

    fn occurrences(
        &self,
        event: EventId,
        lower: Option<Instant>,
    ) -> impl Iterator<Item = &'a crate::engine::state::PastEvent> + 'a {
        let now = self.now;
        self.contact.history.iter().filter(move |e| {
            e.event == event && e.time <= now && lower.map_or(true, |l| e.time > l)
        })
    }

    fn last_time(&self, event: EventId) -> Option<Instant> {
        self.contact
            .history
            .iter()
            .rev()
            .find(|e| e.event == event && e.time <= self.now)
            .map(|e| e.time)
    }
}

fn binary<'a>(op: BinOp, lhs: Value<'a>, rhs: Value<'a>) -> Value<'a> {
    match op {
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            Value::Bool(compare(op, &lhs, &rhs))
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => match (lhs, rhs) {
            (Value::Number(a), Value::Number(b)) => match op {
                BinOp::Add => Value::Number(a + b),
                BinOp::Sub => Value::Number(a - b),
                BinOp::Mul => Value::Number(a * b),
                _ if b == 0.0 => Value::Null,
                _ => Value::Number(a / b),
            },
            (Value::Duration(a), Value::Duration(b)) => match op {
                BinOp::Add => Value::Duration(a + b),
                BinOp::Sub => Value::Duration(a - b),
                _ => Value::Null,
            },
            (Value::Duration(a), Value::Number(b)) if op == BinOp::Mul => {
                Value::Duration((a as f64 * b) as i64)
            }
            (Value::Str(a), Value::Str(b)) if op == BinOp::Add => {
                Value::Str(Cow::Owned(format!("{a}{b}")))
            }
            _ => Value::Null,
        },
        BinOp::And => Value::Bool(lhs.is_true() && rhs.is_true()),
        BinOp::Or => Value::Bool(lhs.is_true() || rhs.is_true()),
    }
}

/// A comparison; with `null` on either side it is false (`!=` included). Values of different
/// types are unequal and unordered.
pub fn compare(op: BinOp, lhs: &Value<'_>, rhs: &Value<'_>) -> bool {
    use std::cmp::Ordering;
    if matches!(lhs, Value::Null) || matches!(rhs, Value::Null) {
        return false;
    }
    let ordering: Option<Ordering> = match (lhs, rhs) {
        (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Duration(a), Value::Duration(b)) => Some(a.cmp(b)),
        (Value::Time(a), Value::Time(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Json(a), Value::Json(b)) => (a == b).then_some(Ordering::Equal),
        (Value::Object(a), Value::Object(b)) => (a == b).then_some(Ordering::Equal),
        (Value::Object(a), Value::Json(Json::Object(b)))
        | (Value::Json(Json::Object(b)), Value::Object(a)) => {
            a.eq_map(b).then_some(Ordering::Equal)
        }
        (Value::List(a), Value::List(b)) => (a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| compare(BinOp::Eq, x, y)))
        .then_some(Ordering::Equal),
        _ => None,
    };
    match op {
        BinOp::Eq => ordering == Some(Ordering::Equal),
        BinOp::Ne => ordering != Some(Ordering::Equal),
        BinOp::Lt => ordering == Some(Ordering::Less),
        BinOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        BinOp::Gt => ordering == Some(Ordering::Greater),
        BinOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        _ => false,
    }
}

/// The first instant after `now` at which `expr` can change value by time passing alone
/// (a `count`/`sum ... within D` occurrence leaving its window, a `since(E)` crossing one of the
/// durations in the expression); `None` when time alone cannot change it.
pub fn next_edge(ctx: &Ctx<'_>, expr: &Expr) -> Option<Instant> {
    let edges = SegmentEdges::new(ctx.project, expr);
    edges.next(ctx)
}

/// What [`next_edge`] needs from an expression, gathered once (the engine keeps one per
/// `when entering` segment instead of walking the expression after every record).
#[derive(Debug, Clone, Default)]
pub struct SegmentEdges<'a> {
    /// `count`/`sum ... within D` and `since(E)` calls, segment references followed.
    functions: Vec<&'a Expr>,
    /// Every duration literal of the expression.
    durations: Vec<Dur>,
}

impl<'a> SegmentEdges<'a> {
    pub fn new(project: &'a CompiledProject, expr: &'a Expr) -> SegmentEdges<'a> {
        let mut durations = Vec::new();
        collect_durations(project, expr, &mut durations, 0);
        let mut functions = Vec::new();
        visit_functions(project, expr, 0, &mut |e| {
            if matches!(
                e,
                Expr::Count {
                    within: Some(_),
                    ..
                } | Expr::Sum {
                    within: Some(_),
                    ..
                } | Expr::Since(_)
            ) {
                functions.push(e);
            }
        });
        SegmentEdges {
            functions,
            durations,
        }
    }

    /// [`next_edge`] of the expression these were gathered from.
    pub fn next(&self, ctx: &Ctx<'_>) -> Option<Instant> {
        let mut best: Option<Instant> = None;
        let mut consider = |t: Instant| {
            if t > ctx.now {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        };
        for e in &self.functions {
            match e {
                Expr::Count {
                    event,
                    within: Some(d),
                    ..
                }
                | Expr::Sum {
                    event,
                    within: Some(d),
                    ..
                } => {
                    for past in ctx
                        .contact
                        .history
                        .iter()
                        .filter(|p| p.event == *event && p.time <= ctx.now)
                    {
                        consider(time::window_exit(past.time, *d, ctx.tz));
                    }
                }
                Expr::Since(event) => {
                    if let Some(last) = ctx.last_time(*event) {
                        for d in &self.durations {
                            let edge = time::window_exit(last, *d, ctx.tz);
                            consider(edge);
                            consider(edge + 1);
                        }
                    }
                }
                _ => {}
            }
        }
        best
    }
}

/// Events of which the contact's history must hold at least one occurrence for `expr` to be
/// true (`None`: no such guarantee). Recognised: `count(E ...) >= n` (n > 0), `> n` (n >= 0),
/// `== n` (n > 0); `sum(E.p ...) >= n` (n > 0), `> n` (n >= 0), `== n` (n != 0) (a sum over
/// no occurrence is 0); `a and b` (either side's events); `a or b` (both sides' events);
/// segment references. A schedule tick uses it to skip contacts that cannot be members
/// without evaluating the segment.
pub fn required_events(
    project: &CompiledProject,
    expr: &Expr,
    depth: usize,
) -> Option<Vec<EventId>> {
    if depth > 32 {
        return None;
    }
    match expr {
        Expr::Segment(id) => project
            .segments
            .get(id.index())
            .and_then(|s| required_events(project, &s.expr, depth + 1)),
        Expr::Binary {
            op: BinOp::And,
            lhs,
            rhs,
        } => required_events(project, lhs, depth + 1)
            .or_else(|| required_events(project, rhs, depth + 1)),
        Expr::Binary {
            op: BinOp::Or,
            lhs,
            rhs,
        } => {
            let mut events = required_events(project, lhs, depth + 1)?;
            events.extend(required_events(project, rhs, depth + 1)?);
            Some(events)
        }
        Expr::Binary { op, lhs, rhs } => {
            let Expr::Number(n) = **rhs else {
                return None;
            };
            match (&**lhs, op) {
                (Expr::Count { event, .. }, BinOp::Ge | BinOp::Eq) if n > 0.0 => Some(vec![*event]),
                (Expr::Count { event, .. }, BinOp::Gt) if n >= 0.0 => Some(vec![*event]),
                (Expr::Sum { event, .. }, BinOp::Ge) if n > 0.0 => Some(vec![*event]),
                (Expr::Sum { event, .. }, BinOp::Gt) if n >= 0.0 => Some(vec![*event]),
                (Expr::Sum { event, .. }, BinOp::Eq) if n != 0.0 && !n.is_nan() => {
                    Some(vec![*event])
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Calls `f` on every behaviour function (`count`, `sum`, `last`, `since`) in `expr`,
/// following segment references.
pub fn visit_functions<'a>(
    project: &'a CompiledProject,
    expr: &'a Expr,
    depth: usize,
    f: &mut impl FnMut(&'a Expr),
) {
    if depth > 32 {
        return;
    }
    let mut stack = vec![(expr, depth)];
    while let Some((e, d)) = stack.pop() {
        match e {
            Expr::Segment(id) if d < 32 => {
                if let Some(segment) = project.segments.get(id.index()) {
                    stack.push((&segment.expr, d + 1));
                }
            }
            Expr::Count { filter, .. } => {
                f(e);
                if let Some(filter) = filter {
                    stack.push((filter, d));
                }
            }
            Expr::Sum { .. } | Expr::Since(_) | Expr::Last { .. } => f(e),
            Expr::List(items) => stack.extend(items.iter().map(|i| (i, d))),
            Expr::Not(x) | Expr::Neg(x) => stack.push((x, d)),
            Expr::Binary { lhs, rhs, .. } => {
                stack.push((lhs, d));
                stack.push((rhs, d));
            }
            Expr::In { needle, list } => {
                stack.push((needle, d));
                stack.push((list, d));
            }
            _ => {}
        }
    }
}

fn collect_durations(project: &CompiledProject, expr: &Expr, out: &mut Vec<Dur>, depth: usize) {
    if depth > 32 {
        return;
    }
    crate::compile::walk(expr, &mut |e| match e {
        Expr::Duration(d) if !out.contains(d) => out.push(*d),
        _ => {}
    });
    let mut segments = Vec::new();
    crate::compile::walk(expr, &mut |e| {
        if let Expr::Segment(id) = e {
            segments.push(*id);
        }
    });
    for id in segments {
        if let Some(segment) = project.segments.get(id.index()) {
            collect_durations(project, &segment.expr, out, depth + 1);
        }
    }
}

/// A literal as a value (`None` for anything that needs a contact to evaluate).
fn literal(expr: &Expr) -> Option<Value<'_>> {
    match expr {
        Expr::Null => Some(Value::Null),
        Expr::Bool(b) => Some(Value::Bool(*b)),
        Expr::Number(n) => Some(Value::Number(*n)),
        Expr::String(s) => Some(Value::Str(Cow::Borrowed(s))),
        Expr::Duration(Dur::Seconds(s)) => Some(Value::Duration(*s)),
        Expr::Time(t) => Some(Value::Time(*t)),
        _ => None,
    }
}

/// Folds an operation on literals (`2 >= 3` after a template parameter was substituted) into
/// its literal result, with exactly the semantics the engine would apply at run time. `None`
/// when the expression depends on the contact.
pub fn fold_constant(expr: &Expr) -> Option<Expr> {
    let value = match expr {
        Expr::Binary { op, lhs, rhs } => binary(*op, literal(lhs)?, literal(rhs)?),
        Expr::Not(inner) => Value::Bool(!literal(inner)?.is_true()),
        _ => return None,
    };
    match value {
        Value::Null => Some(Expr::Null),
        Value::Bool(b) => Some(Expr::Bool(b)),
        Value::Number(n) => Some(Expr::Number(n)),
        Value::Str(s) => Some(Expr::String(s.into_owned())),
        Value::Duration(s) => Some(Expr::Duration(Dur::Seconds(s))),
        Value::Time(t) => Some(Expr::Time(t)),
        Value::List(_) | Value::Json(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{CompiledPolicy, Root, FORMAT_VERSION};

    fn project() -> CompiledProject {
        CompiledProject {
            format_version: FORMAT_VERSION,
            default_timezone: "UTC".into(),
            events: vec!["a".into(), "b".into()],
            segments: Vec::new(),
            messages: Vec::new(),
            flows: Vec::new(),
            policy: CompiledPolicy::default(),
            schemas: Vec::new(),
            history: Vec::new(),
        }
    }

    fn count(event: u16, op: BinOp, n: f64) -> Expr {
        Expr::Binary {
            op,
            lhs: Box::new(Expr::Count {
                event: EventId(event),
                filter: None,
                within: Some(Dur::Seconds(86_400)),
            }),
            rhs: Box::new(Expr::Number(n)),
        }
    }

    fn both(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    #[test]
    fn required_events_only_when_no_occurrence_means_false() {
        let p = project();
        let path = Expr::Path {
            root: Root::Contact,
            fields: vec!["vip".into()],
        };
        let required = |e: &Expr| required_events(&p, e, 0);
        assert_eq!(required(&count(0, BinOp::Ge, 3.0)), Some(vec![EventId(0)]));
        assert_eq!(required(&count(0, BinOp::Gt, 0.0)), Some(vec![EventId(0)]));
        assert_eq!(required(&count(0, BinOp::Ge, 0.0)), None);
        assert_eq!(required(&count(0, BinOp::Eq, 0.0)), None);
        assert_eq!(required(&count(0, BinOp::Lt, 3.0)), None);
        assert_eq!(required(&count(0, BinOp::Ne, 3.0)), None);
        assert_eq!(
            required(&both(BinOp::And, path.clone(), count(1, BinOp::Ge, 1.0))),
            Some(vec![EventId(1)])
        );
        assert_eq!(
            required(&both(BinOp::Or, path.clone(), count(1, BinOp::Ge, 1.0))),
            None
        );
        assert_eq!(
            required(&both(
                BinOp::Or,
                count(0, BinOp::Ge, 1.0),
                count(1, BinOp::Gt, 2.0)
            )),
            Some(vec![EventId(0), EventId(1)])
        );
        assert_eq!(
            required(&Expr::Not(Box::new(count(0, BinOp::Ge, 1.0)))),
            None
        );
        assert_eq!(required(&path), None);
    }

    #[test]
    fn an_object_trait_compares_and_converts_as_the_json_object_it_was() {
        let p = project();
        let consent = serde_json::json!({"email": true, "sms": false});
        let mut traits = Map::new();
        traits.insert("consent".into(), consent.clone());
        traits.insert("email".into(), "a@x".into());
        let contact = ContactState {
            traits: crate::engine::Traits::from_map(&traits),
            ..Default::default()
        };
        let mut record = Map::new();
        record.insert("consent".into(), consent.clone());
        record.insert("other".into(), serde_json::json!({"email": true}));
        let ctx = Ctx {
            project: &p,
            contact: &contact,
            trigger: Some(Obj::Map(&record)),
            event: None,
            now: 0,
            tz: chrono_tz::UTC,
        };
        let path = |root, fields: &[&str]| Expr::Path {
            root,
            fields: fields.iter().map(|f| f.to_string()).collect(),
        };
        let whole = path(Root::Contact, &["consent"]);
        assert!(matches!(ctx.eval(&whole), Value::Object(_)));
        assert_eq!(ctx.eval(&whole).to_json(), consent);
        for (op, rhs, expected) in [
            (BinOp::Eq, path(Root::Contact, &["consent"]), true),
            (BinOp::Eq, path(Root::Trigger, &["consent"]), true),
            (BinOp::Ne, path(Root::Trigger, &["consent"]), false),
            (BinOp::Eq, path(Root::Trigger, &["other"]), false),
            (BinOp::Eq, path(Root::Contact, &["email"]), false),
        ] {
            assert_eq!(ctx.test(&both(op, whole.clone(), rhs.clone())), expected);
            assert_eq!(ctx.test(&both(op, rhs, whole.clone())), expected);
        }
        let exists = |fields: &[&str]| Expr::Exists {
            root: Root::Contact,
            fields: fields.iter().map(|f| f.to_string()).collect(),
        };
        assert!(ctx.test(&exists(&["consent"])));
        assert!(ctx.test(&exists(&["consent", "sms"])));
        assert!(!ctx.test(&exists(&["consent", "push"])));
        assert!(ctx.test(&both(
            BinOp::Eq,
            path(Root::Contact, &["consent", "email"]),
            Expr::Bool(true)
        )));
    }
}
