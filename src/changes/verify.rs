//! `flowc verify`: every ordering of the events the flows listen to, plus timer firings and
//! schedule ticks, up to a depth, run through the real engine on a virtual clock; four
//! guarantees are checked on every explored history, and a failing one comes with a
//! counterexample that `flowc simulate --events` replays.
//!
//! Owns: the bounded exploration (one contact, an alphabet of event records derived from the
//! flows' filters and the event schemas, the driver order of `simulate`: records before
//! timers before ticks at one instant), the properties, the findings and their JSON schema
//! ([`VERIFY_FORMAT_VERSION`]).
//! Must not: implement semantics. Each step is `engine::Engine::apply`; the driver mirrors
//! `simulate::run` so that a counterexample replays to the same decisions.
//!
//! Properties:
//! 1. `wait_can_end`: an instance never rests at a step whose timer is beyond the horizon (or
//!    has no timer at all).
//! 2. `exit_reachable`: from every waiting step reached, each `exit on` event and the
//!    `exit if` lines can stop the instance within the remaining inputs.
//! 3. `limit`: one flow alone never meets a policy limit (no `frequency_cap` skip when it is
//!    the only flow).
//! 4. `duplicate_send`: two flows that send the same message never both send it to a contact
//!    within an hour.

use super::diff;
use crate::compile::{CompiledFlow, CompiledProject, Dur, EventMatch, Expr, FlowId, Root, Trigger};
use crate::engine::state::ContactState;
use crate::engine::time::{self, Instant};
use crate::engine::traits::set_in_map;
use crate::engine::{Engine, Input, Options, Outcome, Status, TraceKind};
use crate::events::{self, Record};
use crate::syntax::ast::PropertyType;
use serde::Serialize;
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The version of the JSON schema of [`VerifyReport`].
pub const VERIFY_FORMAT_VERSION: u32 = 1;

/// The one explored contact.
pub const CONTACT: &str = "verify_contact";

/// Where every explored history starts: a Monday, mid-morning in Europe and UTC.
const START: &str = "2026-03-02T10:00:00Z";

/// Explored histories per check, at most (the report says when the bound was hit).
const MAX_HISTORIES: u64 = 200_000;

#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Inputs (records, timer firings, ticks) per history after the first `identify`.
    pub depth: usize,
    /// A wait must end within this many seconds.
    pub horizon_seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub format_version: u32,
    pub depth: usize,
    pub horizon_days: i64,
    /// Histories run through the engine, over all checks.
    pub histories: u64,
    /// Whether a check stopped at the history bound before exhausting the depth.
    pub truncated: bool,
    /// Waiting steps no explored history reached within the depth (`flow: step (file:line)`):
    /// their exits were not checked. A larger `--depth` reaches further.
    pub unreached: Vec<String>,
    pub checks: Vec<CheckSummary>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckSummary {
    pub property: String,
    /// What was checked: flows, (flow, waiting step, exit) triples, flow pairs.
    pub checked: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `wait_can_end`, `exit_reachable`, `limit`, `duplicate_send`.
    pub property: String,
    pub flows: Vec<String>,
    pub message: String,
    /// The `file:line` of the construct at fault.
    pub source: String,
    /// Replay with `flowc simulate --events FILE --until UNTIL` to see it.
    pub until: String,
    /// Event records, one JSON object per line, for `flowc simulate --events`.
    pub counterexample: Vec<String>,
}

/// One event the explored contact can send.
#[derive(Debug, Clone)]
enum Letter {
    Track {
        event: String,
        properties: Map<String, Json>,
    },
    Identify {
        traits: Map<String, Json>,
    },
}

#[derive(Debug, Clone)]
enum Action {
    /// A record a minute after the last input.
    Send(usize),
    /// Run the clock to the next timer or tick.
    Advance,
    /// Run the clock to the next start of quiet hours (a minute after), so that the next
    /// records and sends fall inside them.
    Night,
}

/// The state of one explored history.
#[derive(Debug, Clone)]
struct Node {
    state: ContactState,
    now: Instant,
    schedules: Vec<(Instant, FlowId, usize, Dur)>,
    records: Vec<Json>,
}

/// What one input produced.
struct Step {
    outcome: Outcome,
    /// The instant of the input.
    at: Instant,
}

struct Explorer<'p> {
    project: &'p CompiledProject,
    engine: Engine<'p>,
    alphabet: Vec<Letter>,
    default_tz: chrono_tz::Tz,
    histories: u64,
    truncated: bool,
    /// The start of the quiet hours of the flows (minute of the day), if any has them.
    quiet_start: Option<u16>,
}

impl<'p> Explorer<'p> {
    fn new(project: &'p CompiledProject, alphabet: Vec<Letter>) -> Explorer<'p> {
        Explorer {
            project,
            engine: Engine::new(
                project,
                Options {
                    trace: true,
                    capture_context: false,
                },
            ),
            alphabet,
            default_tz: project.default_timezone.parse().unwrap_or(chrono_tz::UTC),
            histories: 0,
            truncated: false,
            quiet_start: project
                .flows
                .iter()
                .find_map(|f| f.quiet_hours.map(|q| q.start)),
        }
    }

    fn root(&self) -> (Node, Step) {
        let start = time::parse_instant(START).unwrap_or(0);
        let mut traits = Map::new();
        traits.insert("email".into(), json!("verify@example.com"));
        traits.insert("phone".into(), json!("+34600000000"));
        traits.insert("push_token".into(), json!("verify-push-token"));
        traits.insert("first_name".into(), json!("Vera"));
        traits.insert(
            "consent".into(),
            json!({"email": true, "sms": true, "push": true}),
        );
        // Anniversary fields: the day after the start, in 1990.
        let tomorrow = time::format_instant(start + 86_400);
        let date = format!("1990{}", tomorrow.get(4..10).unwrap_or("-03-03"));
        for flow in &self.project.flows {
            for trigger in &flow.triggers {
                if let Trigger::Anniversary { field, .. } = trigger {
                    set_in_map(&mut traits, field, json!(date));
                }
            }
        }
        let record =
            json!({"type": "identify", "userId": CONTACT, "timestamp": START, "traits": traits});
        let mut node = Node {
            state: ContactState::default(),
            now: start,
            schedules: Vec::new(),
            records: Vec::new(),
        };
        for (index, flow) in self.project.flows.iter().enumerate() {
            for (trigger_index, trigger) in flow.triggers.iter().enumerate() {
                if let Trigger::Every { every, at, .. } = trigger {
                    node.schedules.push((
                        time::first_tick(*every, *at, self.default_tz, start),
                        FlowId(index as u16),
                        trigger_index,
                        *every,
                    ));
                }
            }
        }
        let step = self.apply_record(&mut node, record, start);
        (node, step)
    }

    /// The next timer or tick, as simulate would run it.
    fn next_due(&self, node: &Node) -> Option<Instant> {
        let tick = node.schedules.iter().map(|(t, ..)| *t).min();
        match (node.state.wake, tick) {
            (Some(w), Some(t)) => Some(w.min(t)),
            (w, t) => w.or(t),
        }
    }

    /// Fires timers and ticks due before `until` (at `until` too when `inclusive`), in
    /// simulate's order.
    fn run_clock(&self, node: &mut Node, until: Instant, inclusive: bool, out: &mut Outcome) {
        for _ in 0..10_000 {
            let timer = node.state.wake;
            let tick = node
                .schedules
                .iter()
                .enumerate()
                .min_by_key(|(_, (t, f, trigger, _))| (*t, *f, *trigger))
                .map(|(i, (t, ..))| (*t, i));
            let due = |t: Instant| if inclusive { t <= until } else { t < until };
            match (timer, tick) {
                (Some(w), tick) if due(w) && tick.map_or(true, |(t, _)| w <= t) => {
                    self.engine
                        .apply(CONTACT, &mut node.state, Input::Timers, w, out);
                    node.now = w;
                }
                (_, Some((t, i))) if due(t) => {
                    let (_, flow, trigger, every) = node.schedules[i];
                    self.engine
                        .apply(CONTACT, &mut node.state, Input::Tick(flow, trigger), t, out);
                    node.schedules[i].0 = time::next_tick(every, self.default_tz, t);
                    node.now = t;
                }
                _ => return,
            }
        }
    }

    fn apply_record(&self, node: &mut Node, record: Json, at: Instant) -> Step {
        let mut out = Outcome::default();
        self.run_clock(node, at, false, &mut out);
        if let Ok(Some(parsed)) = events::parse_record(&record, node.records.len() + 1) {
            let parsed: Record = parsed;
            self.engine.apply(
                CONTACT,
                &mut node.state,
                Input::Record(&parsed),
                at,
                &mut out,
            );
        }
        node.records.push(record);
        node.now = at;
        Step { outcome: out, at }
    }

    fn act(&self, node: &mut Node, action: &Action) -> Option<Step> {
        match action {
            Action::Send(index) => {
                let at = node.now + 60;
                let letter = self.alphabet.get(*index)?;
                let timestamp = time::format_instant(at);
                let record = match letter {
                    Letter::Track { event, properties } => json!({
                        "type": "track", "userId": CONTACT, "event": event,
                        "timestamp": timestamp, "properties": properties,
                    }),
                    Letter::Identify { traits } => json!({
                        "type": "identify", "userId": CONTACT, "timestamp": timestamp,
                        "traits": traits,
                    }),
                };
                Some(self.apply_record(node, record, at))
            }
            Action::Advance => {
                let at = self.next_due(node)?;
                let mut out = Outcome::default();
                self.run_clock(node, at, true, &mut out);
                Some(Step { outcome: out, at })
            }
            Action::Night => {
                let start = self.quiet_start?;
                let tz = self.engine.timezone(&node.state);
                let at = time::next_time_of_day(node.now, start, tz, false);
                let mut out = Outcome::default();
                self.run_clock(node, at, true, &mut out);
                node.now = at;
                Some(Step { outcome: out, at })
            }
        }
    }

    /// Depth-first over every history of up to `depth` inputs; `visit` sees each node after
    /// each input (with what that input produced) and returns whether to go deeper.
    fn explore(&mut self, depth: usize, visit: &mut Visit<'_>) {
        let (root, step) = self.root();
        let before = flow_states(&ContactState::default());
        if visit(&root, &step, 0, &before) {
            self.descend(&root, depth, 1, visit);
        }
    }

    fn descend(&mut self, node: &Node, depth: usize, level: usize, visit: &mut Visit<'_>) {
        if level > depth {
            return;
        }
        let mut actions: Vec<Action> = (0..self.alphabet.len()).map(Action::Send).collect();
        actions.push(Action::Advance);
        if self.quiet_start.is_some() {
            actions.push(Action::Night);
        }
        let before = flow_states(&node.state);
        for action in &actions {
            if self.histories >= MAX_HISTORIES {
                self.truncated = true;
                return;
            }
            let mut next = node.clone();
            let Some(step) = self.act(&mut next, action) else {
                continue;
            };
            self.histories += 1;
            if visit(&next, &step, level, &before) {
                self.descend(&next, depth, level + 1, visit);
            }
        }
    }
}

/// Called after each input with the node, what the input produced, the depth, and the
/// instances before the input; returns whether to go deeper.
type Visit<'a> = dyn FnMut(&Node, &Step, usize, &[FlowState]) -> bool + 'a;

/// (flow, held state, wake) of each instance.
type FlowState = (FlowId, u16, Option<Instant>);

fn flow_states(state: &ContactState) -> Vec<FlowState> {
    state
        .instances
        .iter()
        .map(|i| (i.flow, i.state.0, i.wake))
        .collect()
}

/// A value that makes `path OP literal` true.
fn satisfying(op: crate::compile::BinOp, literal: &Expr) -> Option<Json> {
    use crate::compile::BinOp;
    let value = match literal {
        Expr::Number(n) => {
            let v: f64 = match op {
                BinOp::Gt | BinOp::Ne => n + 1.0,
                BinOp::Lt => n - 1.0,
                _ => *n,
            };
            json!(v)
        }
        Expr::String(s) if op == BinOp::Ne => json!(format!("{s}_other")),
        Expr::String(s) => json!(s),
        Expr::Bool(b) if op == BinOp::Ne => json!(!b),
        Expr::Bool(b) => json!(b),
        _ => return None,
    };
    Some(value)
}

/// (root, path, value) assignments that make some comparison in `expr` true.
fn assignments(expr: &Expr, out: &mut Vec<(Root, Vec<String>, Json)>) {
    crate::compile::walk(expr, &mut |e| match e {
        Expr::Binary { op, lhs, rhs } => {
            let pairs = [(lhs, rhs, false), (rhs, lhs, true)];
            for (path, literal, flipped) in pairs {
                if let Expr::Path { root, fields } = path.as_ref() {
                    let op = if flipped { flip(*op) } else { *op };
                    if let Some(v) = satisfying(op, literal) {
                        out.push((*root, fields.clone(), v));
                    }
                }
            }
        }
        Expr::In { needle, list } => {
            if let (Expr::Path { root, fields }, Expr::List(items)) =
                (needle.as_ref(), list.as_ref())
            {
                if let Some(v) = items
                    .first()
                    .and_then(|i| satisfying(crate::compile::BinOp::Eq, i))
                {
                    out.push((*root, fields.clone(), v));
                }
            }
        }
        _ => {}
    });
}

fn flip(op: crate::compile::BinOp) -> crate::compile::BinOp {
    use crate::compile::BinOp;
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Gt => BinOp::Lt,
        BinOp::Le => BinOp::Ge,
        BinOp::Ge => BinOp::Le,
        other => other,
    }
}

/// The events a set of flows reacts to or reads, with a few property variants each: a base
/// record that satisfies the event's schema, and one per comparison with a literal in a
/// filter on that event; `identify` variants for comparisons on `contact.*`.
fn alphabet(project: &CompiledProject) -> Vec<Letter> {
    let mut events: BTreeMap<String, Vec<Expr>> = BTreeMap::new();
    let mut contact_exprs: Vec<Expr> = Vec::new();
    let add_match = |events: &mut BTreeMap<String, Vec<Expr>>, m: &EventMatch| {
        let entry = events
            .entry(project.event_name(m.event).to_string())
            .or_default();
        if let Some(f) = &m.filter {
            entry.push(f.clone());
        }
    };
    let mut reads_consent = false;
    for flow in &project.flows {
        for trigger in &flow.triggers {
            if let Trigger::Event(m) = trigger {
                add_match(&mut events, m);
            }
        }
        for m in &flow.exit_on {
            add_match(&mut events, m);
        }
        for state in &flow.states {
            if let crate::compile::StateKind::WaitFor { arms, .. } = &state.kind {
                for arm in arms {
                    add_match(&mut events, &arm.event);
                }
            }
        }
        let mut exprs: Vec<Expr> = Vec::new();
        crate::compile::for_each_expr(flow, &mut |e| exprs.push(e.clone()));
        for trigger in &flow.triggers {
            if let Trigger::Entering(s) | Trigger::Every { segment: s, .. } = trigger {
                if let Some(seg) = project.segments.get(s.index()) {
                    exprs.push(seg.expr.clone());
                }
            }
        }
        // Segments read by expressions, one level deep.
        let mut segment_exprs: Vec<Expr> = Vec::new();
        for e in &exprs {
            crate::compile::walk(e, &mut |x| {
                if let Expr::Segment(id) = x {
                    if let Some(seg) = project.segments.get(id.index()) {
                        segment_exprs.push(seg.expr.clone());
                    }
                }
            });
        }
        exprs.extend(segment_exprs);
        for e in exprs {
            crate::compile::walk(&e, &mut |x| match x {
                Expr::Count { event, .. }
                | Expr::Sum { event, .. }
                | Expr::Last { event, .. }
                | Expr::Since(event) => {
                    events
                        .entry(project.event_name(*event).to_string())
                        .or_default();
                }
                Expr::CanReceive(_) => reads_consent = true,
                _ => {}
            });
            contact_exprs.push(e);
        }
    }
    if reads_consent {
        events.entry("unsubscribed".to_string()).or_default();
    }
    let mut letters = Vec::new();
    for (event, filters) in events {
        let mut base = Map::new();
        if let Some(schema) = project.schemas.iter().find(|s| s.event == event) {
            for p in &schema.properties {
                let value = match p.ty {
                    PropertyType::String => json!("x"),
                    PropertyType::Number => json!(1),
                    PropertyType::Bool => json!(true),
                    PropertyType::Time => json!(START),
                    PropertyType::List => json!([]),
                    PropertyType::Object => json!({}),
                };
                base.insert(p.name.clone(), value);
            }
        }
        if event == "unsubscribed" {
            base.insert("channel".into(), json!("all"));
        }
        letters.push(Letter::Track {
            event: event.clone(),
            properties: base.clone(),
        });
        let mut found = Vec::new();
        for f in &filters {
            assignments(f, &mut found);
        }
        let mut seen = BTreeSet::new();
        for (root, path, value) in found {
            if root == Root::Contact || path.is_empty() {
                continue;
            }
            if event == "unsubscribed" && path.first().is_some_and(|p| p == "channel") {
                let ok = value
                    .as_str()
                    .is_some_and(|c| ["email", "sms", "push", "all"].contains(&c));
                if !ok {
                    continue;
                }
            }
            let mut properties = base.clone();
            set_in_map(&mut properties, &path, value);
            let key = Json::Object(properties.clone()).to_string();
            if seen.insert(key) && seen.len() <= 3 {
                letters.push(Letter::Track {
                    event: event.clone(),
                    properties,
                });
            }
        }
    }
    let mut found = Vec::new();
    for e in &contact_exprs {
        assignments(e, &mut found);
    }
    let mut seen = BTreeSet::new();
    for (root, path, value) in found {
        if root != Root::Contact || path.is_empty() || path[0] == "consent" {
            continue;
        }
        let mut traits = Map::new();
        set_in_map(&mut traits, &path, value);
        let key = Json::Object(traits.clone()).to_string();
        if seen.insert(key) && seen.len() <= 3 {
            letters.push(Letter::Identify { traits });
        }
    }
    letters
}

/// A project with only some of the flows (in name order, as the engine runs them).
fn only_flows(project: &CompiledProject, names: &[&str]) -> CompiledProject {
    let mut sub = project.clone();
    sub.flows.retain(|f| names.contains(&f.name.as_str()));
    sub
}

/// Whether `node`'s history would be a shorter counterexample than the one found so far.
fn shorter(found: &Option<Finding>, node: &Node) -> bool {
    found
        .as_ref()
        .map_or(true, |f| node.records.len() < f.counterexample.len())
}

fn lines(node: &Node) -> Vec<String> {
    node.records.iter().map(Json::to_string).collect()
}

/// Checks the four properties within `bounds`.
pub fn verify(project: &CompiledProject, bounds: &Bounds) -> VerifyReport {
    let mut findings = Vec::new();
    let mut checks = Vec::new();
    let mut histories = 0;
    let mut truncated = false;
    let mut unreached = Vec::new();
    let (mut waits_checked, mut waits_failed) = (0, 0);
    let (mut exits_checked, mut exits_failed) = (0, 0);
    let (mut limits_checked, mut limits_failed) = (0, 0);

    for flow in &project.flows {
        let sub = only_flows(project, &[flow.name.as_str()]);
        let letters = alphabet(&sub);
        let mut explorer = Explorer::new(&sub, letters);
        let Some(f) = sub.flows.first() else { continue };
        let points = waiting_points(&sub, f);
        let exits = exit_names(&sub, f);
        let horizon = bounds.horizon_seconds;

        let mut wait_finding: Option<Finding> = None;
        let mut limit_finding: Option<Finding> = None;
        // Waiting steps reached: held state → (the history that reached it, at which depth).
        let mut reached: BTreeMap<u16, (Vec<String>, usize)> = BTreeMap::new();
        // (held state, exit) pairs seen to stop an instance.
        let mut fired: BTreeSet<(u16, String)> = BTreeSet::new();
        let depth = bounds.depth;
        explorer.explore(depth + 2, &mut |node, step, level, before| {
            // Exits that fired on this input, and from where.
            let held_before: Vec<u16> = before
                .iter()
                .map(|(_, s, _)| *s)
                .collect();
            for entry in &step.outcome.trace {
                if entry.kind == TraceKind::Exited {
                    let exit = exit_of(&entry.text);
                    for held in &held_before {
                        fired.insert((*held, exit.clone()));
                    }
                }
            }
            // 3. limit.
            if shorter(&limit_finding, node) {
                if let Some(d) = step.outcome.deliveries.iter().find(|d| {
                    d.reason == Some(crate::engine::SkipReason::FrequencyCap)
                }) {
                    let message = project
                        .messages
                        .get(d.message.index())
                        .map_or("?", |m| m.name.as_str());
                    limit_finding = Some(Finding {
                        property: "limit".into(),
                        flows: vec![f.name.clone()],
                        message: format!(
                            "`{}` alone meets a policy limit on {}: its send of `{message}` at {} is skipped with `frequency_cap`",
                            f.name,
                            d.channel.keyword(),
                            time::format_instant(d.time)
                        ),
                        source: send_source(f, d.message),
                        until: time::format_instant(d.time),
                        counterexample: lines(node),
                    });
                }
            }
            // 1. wait_can_end, and waiting steps reached.
            for instance in &node.state.instances {
                let held = instance.state.0;
                match instance.wake {
                    Some(w) if w - step.at <= horizon => {}
                    wake => {
                        if shorter(&wait_finding, node) {
                            let (text, source) = point_text(&points, held);
                            wait_finding = Some(Finding {
                                property: "wait_can_end".into(),
                                flows: vec![f.name.clone()],
                                message: match wake {
                                    Some(w) => format!(
                                        "a contact at `{text}` in `{}` waits until {}, more than {} days after {}",
                                        f.name,
                                        time::format_instant(w),
                                        horizon / 86_400,
                                        time::format_instant(step.at)
                                    ),
                                    None => format!(
                                        "a contact at `{text}` in `{}` has no timer: nothing ends the wait",
                                        f.name
                                    ),
                                },
                                source,
                                until: time::format_instant(step.at + horizon),
                                counterexample: lines(node),
                            });
                        }
                    }
                }
                if level <= depth && points.iter().any(|(s, _, _)| *s == held) {
                    reached.entry(held).or_insert_with(|| (lines(node), level));
                }
            }
            // Past the depth, only probe the exits of an instance that is waiting.
            level < depth || (!exits.is_empty() && !node.state.instances.is_empty())
        });
        histories += explorer.histories;
        truncated |= explorer.truncated;

        waits_checked += 1;
        if let Some(finding) = wait_finding {
            waits_failed += 1;
            findings.push(finding);
        }
        limits_checked += 1;
        if let Some(finding) = limit_finding {
            limits_failed += 1;
            findings.push(finding);
        }
        for (held, _, text, source) in diff::waiting_points(&sub, f) {
            if !reached.contains_key(&held) && !exits.is_empty() {
                unreached.push(format!("{}: `{text}` ({source})", f.name));
            }
        }
        // 2. exit_reachable.
        for (held, (history, _)) in &reached {
            for exit in &exits {
                exits_checked += 1;
                if !fired.contains(&(*held, exit.clone())) {
                    exits_failed += 1;
                    let (text, source) = point_text(&points, *held);
                    findings.push(Finding {
                        property: "exit_reachable".into(),
                        flows: vec![f.name.clone()],
                        message: format!(
                            "`{exit}` never stops a contact waiting at `{text}` in `{}` within 2 more inputs",
                            f.name
                        ),
                        source,
                        until: String::new(),
                        counterexample: history.clone(),
                    });
                }
            }
        }
    }

    // 4. duplicate_send: pairs of flows that send a same message.
    let mut pairs_checked = 0;
    let mut pairs_failed = 0;
    let senders: Vec<(&CompiledFlow, BTreeSet<u16>)> = project
        .flows
        .iter()
        .map(|f| {
            let sends = f
                .states
                .iter()
                .filter_map(|s| match &s.kind {
                    crate::compile::StateKind::Send { message, .. } => Some(message.0),
                    _ => None,
                })
                .collect();
            (f, sends)
        })
        .collect();
    for (i, (a, a_sends)) in senders.iter().enumerate() {
        for (b, b_sends) in senders.iter().skip(i + 1) {
            if a_sends.is_disjoint(b_sends) {
                continue;
            }
            pairs_checked += 1;
            let sub = only_flows(project, &[a.name.as_str(), b.name.as_str()]);
            let letters = alphabet(&sub);
            let mut explorer = Explorer::new(&sub, letters);
            let mut finding: Option<Finding> = None;
            let mut sent: Vec<(Instant, FlowId, u16)> = Vec::new();
            let mut sent_by_node: BTreeMap<usize, usize> = BTreeMap::new();
            explorer.explore(bounds.depth, &mut |node, step, level, _| {
                // Sends of this history: those of the ancestors at lower levels, then these.
                let keep = level
                    .checked_sub(1)
                    .and_then(|l| sent_by_node.get(&l).copied())
                    .unwrap_or(0);
                sent.truncate(keep);
                for d in &step.outcome.deliveries {
                    if d.status != Status::Sent {
                        continue;
                    }
                    if shorter(&finding, node) {
                        if let Some((t, other, _)) = sent.iter().find(|(t, flow, m)| {
                            *m == d.message.0 && *flow != d.flow && (d.time - t).abs() < 3600
                        }) {
                            let name = |id: FlowId| {
                                sub.flows.get(id.index()).map_or("?", |f| f.name.as_str())
                            };
                            let message = project
                                .messages
                                .get(d.message.index())
                                .map_or("?", |m| m.name.as_str());
                            finding = Some(Finding {
                                property: "duplicate_send".into(),
                                flows: vec![name(*other).to_string(), name(d.flow).to_string()],
                                message: format!(
                                    "`{}` sends `{message}` at {} and `{}` sends it again at {}, less than an hour apart",
                                    name(*other),
                                    time::format_instant(*t),
                                    name(d.flow),
                                    time::format_instant(d.time)
                                ),
                                source: sub
                                    .flows
                                    .get(d.flow.index())
                                    .map_or(String::new(), |f| send_source(f, d.message)),
                                until: time::format_instant(d.time),
                                counterexample: lines(node),
                            });
                        }
                    }
                    sent.push((d.time, d.flow, d.message.0));
                }
                sent_by_node.insert(level, sent.len());
                true
            });
            histories += explorer.histories;
            truncated |= explorer.truncated;
            if let Some(f) = finding {
                pairs_failed += 1;
                findings.push(f);
            }
        }
    }
    checks.push(CheckSummary {
        property: "wait_can_end".into(),
        checked: waits_checked,
        failed: waits_failed,
    });
    checks.push(CheckSummary {
        property: "exit_reachable".into(),
        checked: exits_checked,
        failed: exits_failed,
    });
    checks.push(CheckSummary {
        property: "limit".into(),
        checked: limits_checked,
        failed: limits_failed,
    });
    checks.push(CheckSummary {
        property: "duplicate_send".into(),
        checked: pairs_checked,
        failed: pairs_failed,
    });
    VerifyReport {
        format_version: VERIFY_FORMAT_VERSION,
        depth: bounds.depth,
        horizon_days: bounds.horizon_seconds / 86_400,
        histories,
        truncated,
        unreached,
        checks,
        findings,
    }
}

fn waiting_points(project: &CompiledProject, flow: &CompiledFlow) -> Vec<(u16, String, String)> {
    diff::waiting_points(project, flow)
        .into_iter()
        .map(|(held, _, text, source)| (held, text, source))
        .collect()
}

fn point_text(points: &[(u16, String, String)], held: u16) -> (String, String) {
    points
        .iter()
        .find(|(s, _, _)| *s == held)
        .map_or((format!("step {held}"), String::new()), |(_, t, s)| {
            (t.clone(), s.clone())
        })
}

/// The exits of a flow as the trace names them: `exit on NAME` per event, `exit if` for the
/// `exit if` lines together.
fn exit_names(project: &CompiledProject, flow: &CompiledFlow) -> Vec<String> {
    let mut names: Vec<String> = flow
        .exit_on
        .iter()
        .map(|m| format!("exit on {}", project.event_name(m.event)))
        .collect();
    names.dedup();
    if !flow.exit_if.is_empty() {
        names.push("exit if".to_string());
    }
    names
}

/// Which exit a trace line of kind `exited` reports.
fn exit_of(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("exit on `") {
        let name = rest.split('`').next().unwrap_or("");
        format!("exit on {name}")
    } else {
        "exit if".to_string()
    }
}

fn send_source(flow: &CompiledFlow, message: crate::compile::MessageId) -> String {
    flow.states
        .iter()
        .find(|s| matches!(&s.kind, crate::compile::StateKind::Send { message: m, .. } if *m == message))
        .map_or(flow.source.to_string(), |s| s.source.to_string())
}

/// The report for people.
/// `project` is the folder as given, for the replay command.
pub fn render_text(report: &VerifyReport, project: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "explored {} histories (depth {}, waits must end within {} days{})",
        report.histories,
        report.depth,
        report.horizon_days,
        if report.truncated {
            "; stopped at the history bound"
        } else {
            ""
        }
    );
    for check in &report.checks {
        let _ = writeln!(
            out,
            "{} {}: {} checked, {} failed",
            if check.failed == 0 { "ok  " } else { "FAIL" },
            check.property,
            check.checked,
            check.failed
        );
    }
    if !report.unreached.is_empty() {
        let _ = writeln!(
            out,
            "note: {} waiting step(s) with exits not reached within depth {} (their exits are unchecked; try a larger --depth):",
            report.unreached.len(),
            report.depth
        );
        for step in &report.unreached {
            let _ = writeln!(out, "  {step}");
        }
    }
    for finding in &report.findings {
        let _ = writeln!(
            out,
            "\n{}: {}{}",
            finding.property,
            finding.message,
            if finding.source.is_empty() {
                String::new()
            } else {
                format!(" ({})", finding.source)
            }
        );
        let until = if finding.until.is_empty() {
            String::new()
        } else {
            format!(" --until {}", finding.until)
        };
        let _ = writeln!(
            out,
            "counterexample (save it as counterexample.jsonl, then `flowc simulate {project} --events counterexample.jsonl{until} --trace`):"
        );
        for line in &finding.counterexample {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}
