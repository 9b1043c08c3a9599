//! The engine: pure and deterministic. Given the compiled project, one contact's state, an
//! input (a record, "the timers due now", or a schedule tick) and `now`, it updates the state
//! and appends delivery decisions and trace entries to an [`Outcome`].
//!
//! Owns: the runtime semantics of RUNTIME.md 2–3: entry (`when`, `only if`, re-entry), exits
//! (`exit on`, `exit if`), steps, waits and their timers, quiet hours, consent, frequency caps,
//! holdouts, splits, goals, `when entering` at the exact instant, anniversaries.
//! Must not: do I/O, read the clock, or use randomness other than the stable hash in
//! [`stable_bucket`]. Invariant: the same inputs give the same outputs, byte for byte.
//!
//! The caller (simulate, the daemon) keeps a time-ordered queue of contacts by
//! [`ContactState::wake`] and calls [`Engine::apply`] with [`Input::Timers`] when it falls due,
//! applying records at one instant before the timers of that instant.

pub mod eval;
pub mod state;
pub mod time;
pub mod traits;

use crate::compile::{
    CompiledFlow, CompiledProject, EventId, Expr, FlowId, MessageId, Reentry, SegmentId, SourceLoc,
    StateKind, Trigger, UnsubscribeTarget,
};
use crate::events::{Record, RecordKind};
use crate::syntax::ast::Channel;
use chrono_tz::Tz;
use eval::{Ctx, Obj};
use serde_json::{Map, Value as Json};
pub use state::{ContactState, Instance, PastEvent, Props, PropsRef, SkipReason};
use std::collections::HashMap;
use time::Instant;
pub use traits::{Fields, Found, Trait, Traits};

/// What the engine is asked to do.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Apply one record at its timestamp.
    Record(&'a Record),
    /// Fire every timer due at or before `now` (in time order).
    Timers,
    /// A `when every` trigger of a flow ticks (the trigger's index in the flow's `triggers`):
    /// every member of that trigger's segment enters.
    Tick(FlowId, usize),
}

/// How much the engine reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Produce [`TraceEntry`]s (entries, exits, timers, segment changes, goals).
    pub trace: bool,
    /// Attach the template context to each delivery (for `--render`).
    pub capture_context: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Sent,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Skipped => "skipped",
        }
    }
}

/// One delivery decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub time: Instant,
    pub contact: String,
    pub flow: FlowId,
    pub message: MessageId,
    pub channel: Channel,
    pub status: Status,
    pub reason: Option<SkipReason>,
    pub transactional: bool,
    /// `{contact, trigger, event, flow, message}` when [`Options::capture_context`] is on.
    pub context: Option<Json>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    Entered,
    NotEntered,
    Exited,
    Completed,
    Timer,
    Received,
    Deferred,
    Step,
    Segment,
    Goal,
    /// A send was decided: sent, or skipped with its reason.
    Send,
    /// An `if` chose a branch.
    Branch,
    /// Bad contact data handled by a documented fallback (shown even without `--trace`).
    Warning,
}

impl TraceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceKind::Entered => "entered",
            TraceKind::NotEntered => "not_entered",
            TraceKind::Exited => "exited",
            TraceKind::Completed => "completed",
            TraceKind::Timer => "timer",
            TraceKind::Received => "received",
            TraceKind::Deferred => "deferred",
            TraceKind::Step => "step",
            TraceKind::Segment => "segment",
            TraceKind::Goal => "goal",
            TraceKind::Send => "send",
            TraceKind::Branch => "branch",
            TraceKind::Warning => "warning",
        }
    }
}

/// One line of `--trace`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    pub time: Instant,
    pub contact: String,
    pub flow: Option<FlowId>,
    pub kind: TraceKind,
    pub text: String,
    /// The construct that decided it (`file:line`), when there is one.
    pub source: Option<SourceLoc>,
}

/// What one or more calls produced. The caller drains it.
#[derive(Debug, Default)]
pub struct Outcome {
    pub deliveries: Vec<Delivery>,
    pub trace: Vec<TraceEntry>,
    /// Goal conversions: (flow, contact, instant).
    pub conversions: Vec<(FlowId, String, Instant)>,
    /// Entries: (flow, holdout).
    pub entries: Vec<(FlowId, bool)>,
}

/// The engine for one compiled project. Cheap lookup tables are built once.
#[derive(Debug)]
pub struct Engine<'p> {
    pub project: &'p CompiledProject,
    pub options: Options,
    default_tz: Tz,
    event_ids: FastMap<String, EventId>,
    /// Per event: the flows with a `when EVENT` trigger on it.
    triggered_by: Vec<Vec<FlowId>>,
    /// `when entering` segments, sorted, with the flows they start.
    entering: Vec<(SegmentId, Vec<FlowId>)>,
    anniversary_flows: Vec<FlowId>,
    /// The longest frequency-cap window per channel (indexed by [`channel_slot`]; an array,
    /// not a hash map: it is read on every send and every settle with sends).
    longest_limit: [Option<crate::compile::Dur>; 4],
    unsubscribed: Option<EventId>,
    /// Per event: whether a `when entering` segment reads its history.
    entering_reads_event: Vec<bool>,
    /// Per `when entering` segment (as in `entering`): what its time edges depend on.
    entering_edges: Vec<eval::SegmentEdges<'p>>,
    /// Per segment: events of which a member's history holds at least one occurrence
    /// ([`eval::required_events`]).
    segment_requires: Vec<Option<Vec<EventId>>>,
}

impl<'p> Engine<'p> {
    pub fn new(project: &'p CompiledProject, options: Options) -> Engine<'p> {
        let default_tz = project.default_timezone.parse().unwrap_or(chrono_tz::UTC);
        let event_ids: FastMap<String, EventId> = project
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.clone(), EventId(i as u16)))
            .collect();
        let mut triggered_by = vec![Vec::new(); project.events.len()];
        let mut entering: Vec<(SegmentId, Vec<FlowId>)> = Vec::new();
        let mut anniversary_flows = Vec::new();
        for (index, flow) in project.flows.iter().enumerate() {
            let id = FlowId(index as u16);
            for trigger in &flow.triggers {
                match trigger {
                    Trigger::Event(m) => {
                        if let Some(list) = triggered_by.get_mut(m.event.index()) {
                            if !list.contains(&id) {
                                list.push(id);
                            }
                        }
                    }
                    Trigger::Entering(segment) => {
                        match entering.iter_mut().find(|(s, _)| s == segment) {
                            Some((_, flows)) => flows.push(id),
                            None => entering.push((*segment, vec![id])),
                        }
                    }
                    Trigger::Anniversary { .. } => {
                        if !anniversary_flows.contains(&id) {
                            anniversary_flows.push(id);
                        }
                    }
                    Trigger::Every { .. } => {}
                }
            }
        }
        entering.sort_by_key(|(s, _)| *s);
        let mut longest_limit: [Option<crate::compile::Dur>; 4] = [None; 4];
        for limit in &project.policy.limits {
            let entry = longest_limit[channel_slot(limit.channel)].get_or_insert(limit.per);
            if limit.per.max_seconds() > entry.max_seconds() {
                *entry = limit.per;
            }
        }
        let unsubscribed = event_ids.get("unsubscribed").copied();
        let mut entering_reads_event = vec![false; project.events.len()];
        for (segment, _) in &entering {
            if let Some(s) = project.segments.get(segment.index()) {
                eval::visit_functions(project, &s.expr, 0, &mut |e| match e {
                    Expr::Count { event, .. }
                    | Expr::Sum { event, .. }
                    | Expr::Last { event, .. }
                    | Expr::Since(event) => {
                        if let Some(flag) = entering_reads_event.get_mut(event.index()) {
                            *flag = true;
                        }
                    }
                    _ => {}
                });
            }
        }
        let entering_edges = entering
            .iter()
            .map(|(segment, _)| match project.segments.get(segment.index()) {
                Some(s) => eval::SegmentEdges::new(project, &s.expr),
                None => eval::SegmentEdges::default(),
            })
            .collect();
        let segment_requires = project
            .segments
            .iter()
            .map(|s| eval::required_events(project, &s.expr, 0))
            .collect();
        Engine {
            project,
            options,
            entering_edges,
            segment_requires,
            default_tz,
            event_ids,
            triggered_by,
            entering,
            anniversary_flows,
            longest_limit,
            unsubscribed,
            entering_reads_event,
        }
    }

    pub fn flow(&self, id: FlowId) -> &'p CompiledFlow {
        &self.project.flows[id.index()]
    }

    /// The contact's timezone: the `timezone` trait when it is an IANA name, else the project
    /// default (an unknown name is reported as a warning when the trait is set).
    pub fn timezone(&self, state: &ContactState) -> Tz {
        state
            .traits
            .get("timezone")
            .and_then(Trait::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(self.default_tz)
    }

    /// Applies one input to one contact at `now`.
    pub fn apply(
        &self,
        contact: &str,
        state: &mut ContactState,
        input: Input<'_>,
        now: Instant,
        out: &mut Outcome,
    ) {
        let tz = match state.cached_timezone {
            Some(tz) => tz,
            None => {
                let tz = self.timezone(state);
                state.cached_timezone = Some(tz);
                tz
            }
        };
        let fresh = state.next_instance == 0 && state.traits.is_empty() && state.history.is_empty();
        let mut run = Run {
            engine: self,
            project: self.project,
            contact,
            state,
            out,
            tz,
            segments_dirty: fresh,
            traits_dirty: fresh,
        };
        match input {
            Input::Record(record) => {
                // Timers that fell due strictly before the record first (a driver that fell
                // behind, such as a daemon after a restart); those due at `now` come after it.
                let mut guard = 0;
                while let Some(due) = run.state.wake.filter(|w| *w < now) {
                    run.timers(due);
                    run.settle(due, false);
                    guard += 1;
                    if guard > 100_000 {
                        break;
                    }
                }
                run.record(record, now);
                run.settle(now, true);
            }
            Input::Timers => {
                let mut guard = 0;
                while let Some(due) = run.state.wake.filter(|w| *w <= now) {
                    run.timers(due);
                    run.settle(due, false);
                    guard += 1;
                    if guard > 100_000 {
                        break;
                    }
                }
            }
            Input::Tick(flow, trigger) => {
                // A tick that enters nobody changes nothing: skip the bookkeeping.
                if run.tick(flow, trigger, now) {
                    run.settle(now, false);
                }
            }
        }
    }
}

/// A channel's index in per-channel arrays.
fn channel_slot(channel: Channel) -> usize {
    match channel {
        Channel::Email => 0,
        Channel::Sms => 1,
        Channel::Push => 2,
        Channel::Webhook => 3,
    }
}

/// A `Hasher` for the short keys of engine tables (event names, contact ids, message ids):
/// eight bytes per multiply (an FxHash-style step), then a final mix so that the high bits
/// hashbrown reads are as good as the low ones. Not DoS-resistant; the daemon's store must not
/// use it for attacker-chosen keys in long-lived maps without a limit. Only lookups depend on
/// it: no output iterates these tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShortKeyHasher(u64);

const SHORT_KEY_MULTIPLIER: u64 = 0x517c_c1b7_2722_0a95;

impl std::hash::Hasher for ShortKeyHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(word);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(SHORT_KEY_MULTIPLIER);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            h = (h.rotate_left(5) ^ u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 59))
                .wrapping_mul(SHORT_KEY_MULTIPLIER);
        }
        self.0 = h;
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(SHORT_KEY_MULTIPLIER);
    }
}

/// A `HashMap` keyed with [`ShortKeyHasher`].
pub type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<ShortKeyHasher>>;
/// A `HashSet` keyed with [`ShortKeyHasher`].
pub type FastSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<ShortKeyHasher>>;

/// A stable bucket in `0..10000` for (contact, flow, salt): FNV-1a, never `std`'s randomised
/// hasher, so splits and holdouts are the same on every run and machine.
pub fn stable_bucket(contact: &str, flow: &str, salt: &str) -> u16 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        contact.as_bytes(),
        &[0],
        flow.as_bytes(),
        &[0],
        salt.as_bytes(),
    ] {
        for byte in part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // Mix the high bits in: FNV's low bits are weak for short inputs.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    (hash % 10_000) as u16
}

/// One call's working set.
struct Run<'e, 'p> {
    engine: &'e Engine<'p>,
    project: &'p CompiledProject,
    contact: &'e str,
    state: &'e mut ContactState,
    out: &'e mut Outcome,
    tz: Tz,
    /// Something `when entering` segments read may have changed (traits, consent, history).
    segments_dirty: bool,
    /// Traits changed (anniversaries must be recomputed).
    traits_dirty: bool,
}

impl<'p> Run<'_, 'p> {
    fn trace(
        &mut self,
        now: Instant,
        flow: Option<FlowId>,
        kind: TraceKind,
        text: impl FnOnce() -> String,
    ) {
        self.trace_at(now, flow, kind, None, text);
    }

    /// A trace entry with the `file:line` of the construct that decided it. Costs one branch
    /// when tracing is off: nothing is formatted or cloned.
    fn trace_at(
        &mut self,
        now: Instant,
        flow: Option<FlowId>,
        kind: TraceKind,
        source: Option<&SourceLoc>,
        text: impl FnOnce() -> String,
    ) {
        if self.engine.options.trace || kind == TraceKind::Warning {
            self.out.trace.push(TraceEntry {
                time: now,
                contact: self.contact.to_string(),
                flow,
                kind,
                text: text(),
                source: source.cloned(),
            });
        }
    }

    fn ctx<'a>(
        &'a self,
        now: Instant,
        trigger: Option<Obj<'a>>,
        event: Option<Obj<'a>>,
    ) -> Ctx<'a> {
        Ctx {
            project: self.project,
            contact: self.state,
            trigger,
            event,
            now,
            tz: self.tz,
        }
    }

    // ----- records -----

    fn record(&mut self, record: &Record, now: Instant) {
        match record.kind {
            RecordKind::Identify => self.merge_traits(&record.traits, now),
            RecordKind::Track => self.track(record, now),
        }
    }

    fn merge_traits(&mut self, traits: &Map<String, Json>, now: Instant) {
        self.segments_dirty = true;
        self.traits_dirty = true;
        // A contact's first traits: merging them into nothing gives exactly a copy (`consent`
        // included). Consent given still ends earlier unsubscribes.
        if self.state.traits.is_empty() {
            self.state.traits = Traits::from_map(traits);
        } else {
            self.state.traits.merge(traits);
        }
        if let Some(Json::Object(consent)) = traits.get("consent") {
            self.consent_given(consent);
        }
        self.state.traits_changed();
        // The timezone is parsed once: the record's, when it names one (the state's `timezone`
        // is now exactly the record's); without one, the contact's stays.
        self.tz = match traits.get("timezone") {
            Some(Json::String(name)) => match name.parse::<Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    let default = self.engine.default_tz;
                    self.trace(now, None, TraceKind::Warning, || {
                        format!("unknown timezone `{name}` in traits; using the project default `{default}`")
                    });
                    default
                }
            },
            Some(_) => self.engine.timezone(self.state),
            None => self.tz,
        };
        self.state.cached_timezone = Some(self.tz);
        let engine = self.engine;
        for &flow_id in &engine.anniversary_flows {
            for trigger in &self.engine.flow(flow_id).triggers {
                if let Trigger::Anniversary { field, .. } = trigger {
                    if let Some(value) = eval::lookup(traits, field) {
                        let ok =
                            value.as_str().and_then(time::parse_date).is_some() || value.is_null();
                        if !ok {
                            let shown = value.to_string();
                            let path = field.join(".");
                            self.trace(now, Some(flow_id), TraceKind::Warning, || {
                                format!("`contact.{path}` = {shown} is not a YYYY-MM-DD date; no anniversary for this contact")
                            });
                        }
                    }
                }
            }
        }
    }

    /// `consent.CH = true` given again: earlier unsubscribes of CH stop applying.
    fn consent_given(&mut self, consent: &Map<String, Json>) {
        for (channel, given) in consent {
            if given.as_bool() == Some(true) {
                if let Some(c) = Channel::from_keyword(channel) {
                    self.state.withdrawn &= !state::channel_bit(c);
                    self.state.withdrawn_all &= !state::channel_bit(c);
                }
            }
        }
    }

    fn track(&mut self, record: &Record, now: Instant) {
        let Some(event) = self.engine.event_ids.get(&record.event).copied() else {
            // No flow, segment or schema mentions this event: nothing can react to it.
            return;
        };
        let properties = &record.properties;
        if Some(event) == self.engine.unsubscribed {
            let bits = match properties.get("channel").and_then(Json::as_str) {
                Some("email") => state::channel_bit(Channel::Email),
                Some("sms") => state::channel_bit(Channel::Sms),
                Some("push") => state::channel_bit(Channel::Push),
                _ => 0xff,
            };
            self.state.withdrawn |= bits;
            self.segments_dirty = true;
            if bits == 0xff {
                self.state.withdrawn_all = 0xff;
            }
        }
        self.remember(event, properties, now);

        // 1. `exit on`.
        let mut index = 0;
        while index < self.state.instances.len() {
            let instance = &self.state.instances[index];
            let flow = self.engine.flow(instance.flow);
            let exit = flow.exit_on.iter().find(|m| {
                m.event == event
                    && m.filter.as_ref().map_or(true, |f| {
                        self.ctx(
                            now,
                            Some(Obj::Props(instance.trigger())),
                            Some(Obj::Map(properties)),
                        )
                        .test(f)
                    })
            });
            if exit.is_some() {
                let instance = self.state.instances.remove(index);
                let name = &record.event;
                self.trace_at(
                    now,
                    Some(instance.flow),
                    TraceKind::Exited,
                    Some(&flow.source),
                    || format!("exit on `{name}` ({})", flow.source),
                );
            } else {
                index += 1;
            }
        }

        // 2. `wait for`: the first matching arm wins. (Most records find no instance waiting
        // for an event: then no list of ids is allocated.)
        let engine = self.engine;
        let any_waiting = self.state.instances.iter().any(|i| {
            matches!(
                engine
                    .flow(i.flow)
                    .states
                    .get(i.state.index())
                    .map(|s| &s.kind),
                Some(StateKind::WaitFor { .. })
            )
        });
        let ids = if any_waiting {
            Ids::of(self.state.instances.iter())
        } else {
            Ids::default()
        };
        for &id in ids.as_slice() {
            let Some(position) = self.state.instances.iter().position(|i| i.id == id) else {
                continue;
            };
            let instance = &self.state.instances[position];
            let flow = self.engine.flow(instance.flow);
            let Some(st) = flow.states.get(instance.state.index()) else {
                continue;
            };
            let StateKind::WaitFor { arms, .. } = &st.kind else {
                continue;
            };
            let arm = arms.iter().find(|arm| {
                arm.event.event == event
                    && arm.event.filter.as_ref().map_or(true, |f| {
                        self.ctx(
                            now,
                            Some(Obj::Props(instance.trigger())),
                            Some(Obj::Map(properties)),
                        )
                        .test(f)
                    })
            });
            let Some(arm) = arm else { continue };
            let mut instance = self.state.instances.remove(position);
            instance.set_event(Some(Props::keep(properties, flow.event_keys.as_deref())));
            instance.state = arm.next;
            instance.wake = None;
            let name = &record.event;
            self.trace_at(
                now,
                Some(instance.flow),
                TraceKind::Received,
                Some(&st.source),
                || format!("received `{name}` ({})", st.source),
            );
            if self.run_instance(&mut instance, now) {
                self.state
                    .instances
                    .insert(position.min(self.state.instances.len()), instance);
            }
        }

        // 3. goals.
        let mut index = 0;
        while index < self.state.goals.len() {
            let (flow_id, deadline) = self.state.goals[index];
            let flow = self.engine.flow(flow_id);
            let reached = flow.goal.as_ref().is_some_and(|g| {
                g.event == event
                    && now <= deadline
                    && g.filter.as_ref().map_or(true, |f| {
                        self.ctx(now, None, Some(Obj::Map(properties))).test(f)
                    })
            });
            if reached {
                self.state.goals.remove(index);
                self.out
                    .conversions
                    .push((flow_id, self.contact.to_string(), now));
                let name = &record.event;
                self.trace_at(
                    now,
                    Some(flow_id),
                    TraceKind::Goal,
                    Some(&flow.source),
                    || format!("goal `{name}` reached"),
                );
            } else {
                index += 1;
            }
        }

        // 4. `when EVENT` triggers.
        let engine = self.engine;
        let flows: &[FlowId] = engine
            .triggered_by
            .get(event.index())
            .map_or(&[], Vec::as_slice);
        for &flow_id in flows {
            let flow = self.engine.flow(flow_id);
            let matched = flow.triggers.iter().any(|t| match t {
                Trigger::Event(m) => {
                    m.event == event
                        && m.filter.as_ref().map_or(true, |f| {
                            self.ctx(now, Some(Obj::Map(properties)), Some(Obj::Map(properties)))
                                .test(f)
                        })
                }
                _ => false,
            });
            if matched {
                let why = || format!("when `{}`", record.event);
                self.try_enter(flow_id, properties, now, &why);
            }
        }
    }

    /// Adds an occurrence to the history if a behaviour function needs it, keeping only what
    /// is needed.
    fn remember(&mut self, event: EventId, properties: &Map<String, Json>, now: Instant) {
        let Some(need) = self.project.history.get(event.index()) else {
            return;
        };
        if !need.keep {
            return;
        }
        if need.last_only {
            self.state.history.retain(|e| e.event != event);
        }
        let kept = if need.properties.is_empty() {
            None
        } else {
            let mut entries = Vec::with_capacity(need.properties.len());
            for path in &need.properties {
                if let Some(first) = path.first() {
                    if let Some(value) = properties.get(first) {
                        entries.push((Box::from(first.as_str()), value.clone()));
                    }
                }
            }
            Some(Props::from_entries(entries))
        };
        if self
            .engine
            .entering_reads_event
            .get(event.index())
            .copied()
            .unwrap_or(true)
        {
            self.segments_dirty = true;
        }
        self.state.history.push(PastEvent {
            event,
            time: now,
            properties: kept,
        });
    }

    // ----- timers -----

    fn timers(&mut self, now: Instant) {
        // Instances whose timer is due, in (flow, id) order.
        let due = Ids::of(
            self.state
                .instances
                .iter()
                .filter(|i| i.wake.is_some_and(|w| w <= now)),
        );
        for &id in due.as_slice() {
            let Some(position) = self.state.instances.iter().position(|i| i.id == id) else {
                continue;
            };
            let mut instance = self.state.instances.remove(position);
            let flow = self.engine.flow(instance.flow);
            instance.wake = None;
            if let Some(st) = flow.states.get(instance.state.index()) {
                let source = &st.source;
                match &st.kind {
                    StateKind::WaitFor { on_timeout, .. } => {
                        instance.state = *on_timeout;
                        self.trace_at(
                            now,
                            Some(instance.flow),
                            TraceKind::Timer,
                            Some(source),
                            || format!("wait for timed out ({source})"),
                        );
                    }
                    // A send is held both after a wait and when deferred by quiet hours: a
                    // deferral ends exactly where the quiet window does.
                    StateKind::Send { .. } => {
                        let tz = self.tz;
                        self.trace_at(
                            now,
                            Some(instance.flow),
                            TraceKind::Timer,
                            Some(source),
                            || {
                                let deferred = flow.quiet_hours.is_some_and(|window| {
                                    time::quiet_until(now - 1, window, tz) == Some(now)
                                });
                                if deferred {
                                    format!("quiet hours over ({source})")
                                } else {
                                    format!("wait over, next step ({source})")
                                }
                            },
                        );
                    }
                    _ => self.trace_at(
                        now,
                        Some(instance.flow),
                        TraceKind::Timer,
                        Some(source),
                        || format!("wait over, next step ({source})"),
                    ),
                }
            }
            if self.run_instance(&mut instance, now) {
                self.state
                    .instances
                    .insert(position.min(self.state.instances.len()), instance);
            }
        }
        // Anniversaries due now (the cached next anniversary says whether any can be).
        if self.state.anniversary_wake.map_or(true, |w| w > now) {
            return;
        }
        let engine = self.engine;
        for &flow_id in &engine.anniversary_flows {
            let flow = self.engine.flow(flow_id);
            let due = flow.triggers.iter().any(|t| match t {
                Trigger::Anniversary { field, at } => self
                    .state
                    .traits
                    .lookup(field)
                    .and_then(Found::as_str)
                    .and_then(time::parse_date)
                    .is_some_and(|date| {
                        time::next_anniversary(date, *at, self.tz, now, true) == now
                    }),
                _ => false,
            });
            if due {
                self.try_enter(flow_id, &Map::new(), now, &|| "anniversary".to_string());
            }
        }
    }

    /// Returns whether the contact entered.
    fn tick(&mut self, flow_id: FlowId, trigger: usize, now: Instant) -> bool {
        let flow = self.engine.flow(flow_id);
        // Only the trigger that ticked: another `when every` line of the flow has its own
        // period and segment.
        let Some(Trigger::Every { segment, .. }) = flow.triggers.get(trigger) else {
            return false;
        };
        // Most contacts of a large audience cannot be members: say so from the history alone,
        // without evaluating the segment.
        if let Some(Some(events)) = self.engine.segment_requires.get(segment.index()) {
            if !self.state.history.iter().any(|e| events.contains(&e.event)) {
                return false;
            }
        }
        let Some(audience) = self.project.segments.get(segment.index()) else {
            return false;
        };
        if !self.ctx(now, None, None).test(&audience.expr) {
            return false;
        }
        let name = audience.name.as_str();
        let why = || format!("schedule for `{name}`");
        self.try_enter(flow_id, &Map::new(), now, &why)
    }

    /// After every input: segment memberships, pruning, the next wake-up.
    fn settle(&mut self, now: Instant, after_record: bool) {
        // Memberships change only when the contact changed or a window edge is due.
        let edge_due = self.state.segment_wake.is_some_and(|w| w <= now);
        let recompute_segments = self.segments_dirty || edge_due;
        if recompute_segments {
            for _ in 0..8 {
                if !self.update_memberships(now) {
                    break;
                }
            }
        }
        // Prune what can no longer matter.
        let project = self.project;
        let tz = self.tz;
        if !self.state.history.is_empty() {
            self.state
                .history
                .retain(|e| match project.history.get(e.event.index()) {
                    Some(need) if !need.last_only => {
                        need.horizon.map_or(true, |h| e.time > now - h)
                    }
                    _ => true,
                });
        }
        if !self.state.sends.is_empty() {
            let longest = &self.engine.longest_limit;
            self.state.sends.retain(|(c, t)| {
                longest[channel_slot(*c)].is_some_and(|d| *t > time::sub(now, d, tz))
            });
        }
        self.state.goals.retain(|(_, deadline)| *deadline >= now);

        if recompute_segments || self.segments_dirty {
            let mut edge: Option<Instant> = None;
            let ctx = self.ctx(now, None, None);
            for edges in &self.engine.entering_edges {
                if let Some(e) = edges.next(&ctx) {
                    edge = Some(edge.map_or(e, |w| w.min(e)));
                }
            }
            self.state.segment_wake = edge;
        }
        let anniversary_due = self.state.anniversary_wake.is_some_and(|w| w <= now);
        if (self.traits_dirty || anniversary_due) && !self.engine.anniversary_flows.is_empty() {
            let mut next: Option<Instant> = None;
            for flow_id in &self.engine.anniversary_flows {
                for trigger in &self.engine.flow(*flow_id).triggers {
                    if let Trigger::Anniversary { field, at } = trigger {
                        if let Some(date) = self
                            .state
                            .traits
                            .lookup(field)
                            .and_then(Found::as_str)
                            .and_then(time::parse_date)
                        {
                            let t = time::next_anniversary(date, *at, tz, now, after_record);
                            next = Some(next.map_or(t, |w| w.min(t)));
                        }
                    }
                }
            }
            self.state.anniversary_wake = next;
        }
        self.segments_dirty = false;
        self.traits_dirty = false;

        let mut wake = self.state.segment_wake;
        let mut consider = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
        for instance in &self.state.instances {
            if let Some(w) = instance.wake {
                consider(w);
            }
        }
        if let Some(a) = self.state.anniversary_wake {
            consider(a);
        }
        self.state.wake = wake;
        self.state.pending = !self.state.instances.is_empty() || self.state.segment_wake.is_some();
    }

    /// Re-evaluates `when entering` segments; returns whether any membership changed.
    fn update_memberships(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for (segment, flows) in &self.engine.entering {
            let Some(s) = self.project.segments.get(segment.index()) else {
                continue;
            };
            let member = self.ctx(now, None, None).test(&s.expr);
            let position = self.state.members.binary_search(segment);
            match (member, position) {
                (true, Err(at)) => {
                    self.state.members.insert(at, *segment);
                    changed = true;
                    self.trace_at(now, None, TraceKind::Segment, Some(&s.source), || {
                        format!("entered segment `{}` ({})", s.name, s.source)
                    });
                    for flow_id in flows {
                        let why = || format!("when entering `{}`", s.name);
                        self.try_enter(*flow_id, &Map::new(), now, &why);
                    }
                }
                (false, Ok(at)) => {
                    self.state.members.remove(at);
                    changed = true;
                    self.trace_at(now, None, TraceKind::Segment, Some(&s.source), || {
                        format!("left segment `{}`", s.name)
                    });
                }
                _ => {}
            }
        }
        changed
    }

    // ----- instances -----

    fn try_enter(
        &mut self,
        flow_id: FlowId,
        trigger: &Map<String, Json>,
        now: Instant,
        why: &dyn Fn() -> String,
    ) -> bool {
        let flow = self.engine.flow(flow_id);
        let active = self.state.instances.iter().any(|i| i.flow == flow_id);
        let last_entry = self
            .state
            .entries
            .iter()
            .find(|(f, _)| *f == flow_id)
            .map(|(_, t)| *t);
        let refused = match flow.reentry {
            Reentry::Always => None,
            _ if active => Some("an instance is already active".to_string()),
            Reentry::Never if last_entry.is_some() => {
                Some("`reentry never` and the contact entered before".to_string())
            }
            Reentry::After(d) => match last_entry {
                Some(last) if now < time::add(last, d, self.tz) => Some(format!(
                    "`reentry after {d}`: last entry at {}",
                    time::format_instant(last)
                )),
                _ => None,
            },
            _ => None,
        };
        if let Some(reason) = refused {
            self.trace_at(
                now,
                Some(flow_id),
                TraceKind::NotEntered,
                Some(&flow.source),
                || format!("{}: not entered, {reason}", why()),
            );
            return false;
        }
        if let Some(only_if) = &flow.only_if {
            if !self
                .ctx(now, Some(Obj::Map(trigger)), Some(Obj::Map(trigger)))
                .test(only_if)
            {
                self.trace_at(
                    now,
                    Some(flow_id),
                    TraceKind::NotEntered,
                    Some(&flow.source),
                    || format!("{}: not entered, `only if` is false", why()),
                );
                return false;
            }
        }
        let holdout = flow.holdout_basis_points > 0
            && stable_bucket(self.contact, &flow.name, "holdout") < flow.holdout_basis_points;
        let id = self.state.next_instance;
        self.state.next_instance = self.state.next_instance.wrapping_add(1);
        // Only `reentry never` and `reentry after D` look back at earlier entries.
        if matches!(flow.reentry, Reentry::Never | Reentry::After(_)) {
            match self.state.entries.iter_mut().find(|(f, _)| *f == flow_id) {
                Some(entry) => entry.1 = now,
                None => self.state.entries.push((flow_id, now)),
            }
        }
        if let Some(goal) = &flow.goal {
            self.state
                .goals
                .push((flow_id, time::add(now, goal.within, self.tz)));
        }
        self.out.entries.push((flow_id, holdout));
        self.trace_at(
            now,
            Some(flow_id),
            TraceKind::Entered,
            Some(&flow.source),
            || {
                format!(
                    "{}: entered{} ({})",
                    why(),
                    if holdout { " as holdout" } else { "" },
                    flow.source
                )
            },
        );
        // (a copy of only the properties the flow reads)
        let kept = Props::keep(trigger, flow.trigger_keys.as_deref());
        let mut instance = Instance::new(id, flow_id, flow.entry, now, holdout, kept);
        if self.run_instance(&mut instance, now) {
            let position = self
                .state
                .instances
                .iter()
                .position(|i| (i.flow, i.id) > (instance.flow, instance.id))
                .unwrap_or(self.state.instances.len());
            // A first instance gets room for one, not four: most contacts wait in one flow.
            if self.state.instances.capacity() == 0 {
                self.state.instances.reserve_exact(1);
            }
            self.state.instances.insert(position, instance);
        }
        true
    }

    /// Runs an instance from its current state until it waits or ends. Returns whether it is
    /// still active.
    fn run_instance(&mut self, instance: &mut Instance, now: Instant) -> bool {
        let flow = self.engine.flow(instance.flow);
        for _ in 0..=flow.states.len() * 2 + 2 {
            let Some(st) = flow.states.get(instance.state.index()) else {
                return false;
            };
            let source = &st.source;
            if !matches!(st.kind, StateKind::End | StateKind::Stop) {
                let exit = flow.exit_if.iter().any(|e| {
                    self.ctx(
                        now,
                        Some(Obj::Props(instance.trigger())),
                        instance.event().map(Obj::Props),
                    )
                    .test(e)
                });
                if exit {
                    self.trace_at(
                        now,
                        Some(instance.flow),
                        TraceKind::Exited,
                        Some(source),
                        || format!("exit if is true before the step at {source}"),
                    );
                    return false;
                }
            }
            match &st.kind {
                StateKind::End => {
                    self.trace_at(
                        now,
                        Some(instance.flow),
                        TraceKind::Completed,
                        Some(source),
                        || "completed".to_string(),
                    );
                    return false;
                }
                StateKind::Stop => {
                    self.trace_at(
                        now,
                        Some(instance.flow),
                        TraceKind::Completed,
                        Some(source),
                        || format!("stop ({source})"),
                    );
                    return false;
                }
                StateKind::Send { message, next } => {
                    let Some(msg) = self.project.messages.get(message.index()) else {
                        return false;
                    };
                    if !msg.transactional {
                        if let Some(window) = flow.quiet_hours {
                            if let Some(end) = time::quiet_until(now, window, self.tz) {
                                instance.wake = Some(end);
                                self.trace_at(
                                    now,
                                    Some(instance.flow),
                                    TraceKind::Deferred,
                                    Some(source),
                                    || {
                                        format!(
                                            "`{}` deferred by quiet hours until {} ({source})",
                                            msg.name,
                                            time::format_instant(end)
                                        )
                                    },
                                );
                                return true;
                            }
                        }
                    }
                    self.deliver(instance, *message, now, source);
                    instance.state = *next;
                }
                StateKind::Wait { duration, next } => {
                    let until = time::add(now, *duration, self.tz);
                    instance.state = *next;
                    if until > now {
                        instance.wake = Some(until);
                        self.trace_at(
                            now,
                            Some(instance.flow),
                            TraceKind::Step,
                            Some(source),
                            || {
                                format!(
                                    "wait {duration} until {} ({source})",
                                    time::format_instant(until)
                                )
                            },
                        );
                        return true;
                    }
                }
                StateKind::WaitUntil {
                    minute_of_day,
                    next,
                } => {
                    let until = time::next_time_of_day(now, *minute_of_day, self.tz, true);
                    instance.state = *next;
                    if until > now {
                        instance.wake = Some(until);
                        self.trace_at(
                            now,
                            Some(instance.flow),
                            TraceKind::Step,
                            Some(source),
                            || format!("wait until {} ({source})", time::format_instant(until)),
                        );
                        return true;
                    }
                }
                StateKind::WaitFor { timeout, .. } => {
                    let until = time::add(now, *timeout, self.tz);
                    instance.wake = Some(until);
                    self.trace_at(
                        now,
                        Some(instance.flow),
                        TraceKind::Step,
                        Some(source),
                        || {
                            format!(
                                "wait for an event up to {} ({source})",
                                time::format_instant(until)
                            )
                        },
                    );
                    return true;
                }
                StateKind::Branch {
                    conditions,
                    otherwise,
                } => {
                    let ctx = self.ctx(
                        now,
                        Some(Obj::Props(instance.trigger())),
                        instance.event().map(Obj::Props),
                    );
                    let taken = conditions.iter().position(|(c, _)| ctx.test(c));
                    instance.state = taken
                        .and_then(|i| conditions.get(i))
                        .map_or(*otherwise, |(_, s)| *s);
                    let project = self.project;
                    self.trace_at(
                        now,
                        Some(instance.flow),
                        TraceKind::Branch,
                        Some(source),
                        || match taken.and_then(|i| conditions.get(i).map(|c| (i, c))) {
                            Some((i, (c, _))) => format!(
                                "`{}` is true: branch {} taken",
                                project.show_expr(c),
                                i + 1
                            ),
                            None if conditions.len() == 1 => format!(
                                "`{}` is false: else taken",
                                conditions
                                    .first()
                                    .map_or(String::new(), |(c, _)| project.show_expr(c))
                            ),
                            None => "no condition is true: else taken".to_string(),
                        },
                    );
                }
                StateKind::Split { arms } => {
                    let salt = format!("split{}", instance.state.0);
                    let bucket = stable_bucket(self.contact, &flow.name, &salt);
                    let arm = arms
                        .iter()
                        .position(|(upper, _)| bucket < *upper)
                        .unwrap_or(arms.len().saturating_sub(1));
                    if let Some((_, target)) = arms.get(arm) {
                        self.trace_at(
                            now,
                            Some(instance.flow),
                            TraceKind::Step,
                            Some(source),
                            || format!("split: arm {} ({source})", arm + 1),
                        );
                        instance.state = *target;
                    } else {
                        return false;
                    }
                }
                StateKind::Set { field, value, next } => {
                    let json = self
                        .ctx(
                            now,
                            Some(Obj::Props(instance.trigger())),
                            instance.event().map(Obj::Props),
                        )
                        .eval(value)
                        .to_json();
                    // `set contact.consent.CH = true` gives consent again, as an identify
                    // with that consent does: earlier unsubscribes of CH stop applying.
                    if json.as_bool() == Some(true) && field.len() == 2 && field[0] == "consent" {
                        if let Some(c) = Channel::from_keyword(&field[1]) {
                            self.state.withdrawn &= !state::channel_bit(c);
                            self.state.withdrawn_all &= !state::channel_bit(c);
                        }
                    }
                    self.state.traits.set_path(field, json);
                    self.state.traits_changed();
                    self.segments_dirty = true;
                    self.traits_dirty = true;
                    if field.first().is_some_and(|f| f == "timezone") {
                        self.tz = self.engine.timezone(self.state);
                        self.state.cached_timezone = Some(self.tz);
                    }
                    instance.state = *next;
                }
                StateKind::Unsubscribe { target, next } => {
                    self.segments_dirty = true;
                    match target {
                        UnsubscribeTarget::Channel(c) => {
                            self.state.withdrawn |= state::channel_bit(*c)
                        }
                        UnsubscribeTarget::All => {
                            self.state.withdrawn = 0xff;
                            self.state.withdrawn_all = 0xff;
                        }
                    }
                    instance.state = *next;
                }
            }
        }
        false
    }

    /// Decides one send (RUNTIME.md 3) and records the decision.
    fn deliver(
        &mut self,
        instance: &mut Instance,
        message: MessageId,
        now: Instant,
        source: &'p SourceLoc,
    ) {
        let Some(msg) = self.project.messages.get(message.index()) else {
            return;
        };
        let channel = msg.channel;
        self.state.fill_channel_cache();
        let reason = if instance.holdout() {
            if instance.holdout_reported() {
                self.trace_at(
                    now,
                    Some(instance.flow),
                    TraceKind::Step,
                    Some(source),
                    || format!("`{}` not sent (holdout)", msg.name),
                );
                return;
            }
            instance.set_holdout_reported();
            Some(SkipReason::Holdout)
        } else if msg.transactional {
            self.state.transactional_block(channel)
        } else {
            self.state
                .marketing_block(channel)
                .or_else(|| self.frequency_cap(channel, now))
        };
        self.trace_at(
            now,
            Some(instance.flow),
            TraceKind::Send,
            Some(source),
            || match reason {
                None => format!("sent `{}` ({})", msg.name, channel.keyword()),
                Some(r) => format!(
                    "skipped `{}` ({}): {}",
                    msg.name,
                    channel.keyword(),
                    r.as_str()
                ),
            },
        );
        if reason.is_none()
            && !msg.transactional
            && self.engine.longest_limit[channel_slot(channel)].is_some()
        {
            self.state.sends.push((channel, now));
        }
        let context = self.engine.options.capture_context.then(|| {
            serde_json::json!({
                "contact": Json::Object(self.state.traits.to_map()),
                "trigger": Json::Object(instance.trigger().to_map()),
                "event": instance.event().map_or(Json::Null, |e| Json::Object(e.to_map())),
                "flow": self.engine.flow(instance.flow).name,
                "message": msg.name,
            })
        });
        self.out.deliveries.push(Delivery {
            time: now,
            contact: self.contact.to_string(),
            flow: instance.flow,
            message,
            channel,
            status: if reason.is_some() {
                Status::Skipped
            } else {
                Status::Sent
            },
            reason,
            transactional: msg.transactional,
            context,
        });
    }

    /// `frequency_cap` when a policy limit on `channel` is reached (window `now - D < t <= now`).
    fn frequency_cap(&self, channel: Channel, now: Instant) -> Option<SkipReason> {
        self.project
            .policy
            .limits
            .iter()
            .filter(|l| l.channel == channel)
            .find_map(|limit| {
                let lower = time::sub(now, limit.per, self.tz);
                let count = self
                    .state
                    .sends
                    .iter()
                    .filter(|(c, t)| *c == channel && *t > lower && *t <= now)
                    .count();
                (count >= limit.count as usize).then_some(SkipReason::FrequencyCap)
            })
    }
}

/// Instance ids to visit, without an allocation for up to eight (a contact rarely has more
/// instances).
#[derive(Default)]
struct Ids {
    inline: [u32; 8],
    len: usize,
    spilled: Vec<u32>,
}

impl Ids {
    fn of<'a>(instances: impl Iterator<Item = &'a Instance>) -> Ids {
        let mut ids = Ids::default();
        for instance in instances {
            if ids.len < ids.inline.len() {
                ids.inline[ids.len] = instance.id;
                ids.len += 1;
            } else {
                if ids.spilled.is_empty() {
                    ids.spilled.extend_from_slice(&ids.inline);
                }
                ids.spilled.push(instance.id);
            }
        }
        ids
    }

    fn as_slice(&self) -> &[u32] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }
}

#[cfg(test)]
mod tests {
    //! Engine tests on hand-built IR (the scenario tests in `tests/suite/engine.rs` go
    //! through the parser and compiler).
    use super::*;
    use crate::compile::*;
    use crate::events::parse_jsonl;
    use crate::simulate::{delivery_line, run, SimulateOptions};

    fn cart_project() -> CompiledProject {
        let loc = SourceLoc::default();
        let state = |kind| State {
            kind,
            source: loc.clone(),
        };
        let flow = CompiledFlow {
            name: "abandoned_cart".into(),
            hash: String::new(),
            source: loc.clone(),
            triggers: vec![Trigger::Event(EventMatch {
                event: EventId(1),
                filter: None,
            })],
            only_if: None,
            reentry: Reentry::NotWhileActive,
            exit_on: vec![EventMatch {
                event: EventId(2),
                filter: None,
            }],
            exit_if: Vec::new(),
            quiet_hours: None,
            goal: None,
            holdout_basis_points: 0,
            trigger_keys: Some(Vec::new()),
            event_keys: Some(Vec::new()),
            change: ChangeRules::default(),
            entry: StateId(4),
            states: vec![
                state(StateKind::End),
                state(StateKind::Send {
                    message: MessageId(0),
                    next: StateId(0),
                }),
                state(StateKind::Wait {
                    duration: Dur::Seconds(86_400),
                    next: StateId(1),
                }),
                state(StateKind::Send {
                    message: MessageId(0),
                    next: StateId(2),
                }),
                state(StateKind::Wait {
                    duration: Dur::Seconds(3600),
                    next: StateId(3),
                }),
            ],
        };
        CompiledProject {
            format_version: FORMAT_VERSION,
            default_timezone: "UTC".into(),
            events: vec![
                "unsubscribed".into(),
                "cart_abandoned".into(),
                "order_completed".into(),
            ],
            segments: Vec::new(),
            messages: vec![CompiledMessage {
                name: "reminder".into(),
                channel: Channel::Email,
                transactional: false,
                fields: vec![("subject".into(), "Hi {{ contact.first_name }}".into())],
            }],
            flows: vec![flow],
            policy: CompiledPolicy::default(),
            schemas: Vec::new(),
            history: vec![HistoryNeed::default(); 3],
        }
    }

    #[test]
    fn exit_at_the_instant_of_a_reminder_wins() {
        let project = cart_project();
        let records = parse_jsonl(
            r#"{"type":"identify","userId":"c1","timestamp":"2026-03-01T09:00:00Z","traits":{"email":"a@x","consent":{"email":true},"first_name":"Ana"}}
{"type":"identify","userId":"c2","timestamp":"2026-03-01T09:00:00Z","traits":{"email":"b@x","consent":{"email":true}}}
{"type":"track","userId":"c1","timestamp":"2026-03-01T10:00:00Z","event":"Cart Abandoned"}
{"type":"track","userId":"c2","timestamp":"2026-03-01T10:00:00Z","event":"cart_abandoned"}
{"type":"track","userId":"c2","timestamp":"2026-03-01T11:00:00Z","event":"order_completed"}"#,
        )
        .unwrap();
        let sim = run(
            &project,
            records,
            &SimulateOptions {
                render: true,
                ..Default::default()
            },
        );
        let lines: Vec<String> = sim
            .deliveries
            .iter()
            .map(|d| delivery_line(&project, d, false))
            .collect();
        assert_eq!(
            lines,
            vec![
                r#"{"time":"2026-03-01T11:00:00Z","contact":"c1","flow":"abandoned_cart","message":"reminder","channel":"email","status":"sent"}"#,
                r#"{"time":"2026-03-02T11:00:00Z","contact":"c1","flow":"abandoned_cart","message":"reminder","channel":"email","status":"sent"}"#,
            ]
        );
        let rendered = delivery_line(&project, &sim.deliveries[0], true);
        assert!(
            rendered.ends_with(r#","rendered":{"subject":"Hi Ana"}}"#),
            "{rendered}"
        );
        let state = sim.store.get("c2").unwrap();
        assert!(state.instances.is_empty() && state.wake.is_none());
    }

    #[test]
    fn a_late_record_first_fires_the_timers_due_before_it() {
        let project = cart_project();
        let engine = Engine::new(&project, Options::default());
        let records = parse_jsonl(
            r#"{"type":"identify","userId":"c","timestamp":"2026-03-01T09:00:00Z","traits":{"email":"a@x","consent":{"email":true}}}
{"type":"track","userId":"c","timestamp":"2026-03-01T10:00:00Z","event":"cart_abandoned"}
{"type":"track","userId":"c","timestamp":"2026-03-03T12:00:00Z","event":"order_completed"}"#,
        )
        .unwrap();
        let mut state = ContactState::default();
        let mut out = Outcome::default();
        for record in &records {
            engine.apply(
                "c",
                &mut state,
                Input::Record(record),
                record.time,
                &mut out,
            );
        }
        let times: Vec<String> = out
            .deliveries
            .iter()
            .map(|d| time::format_instant(d.time))
            .collect();
        assert_eq!(times, vec!["2026-03-01T11:00:00Z", "2026-03-02T11:00:00Z"]);
        assert!(state.instances.is_empty());
    }

    #[test]
    fn short_key_hashes_tell_keys_apart() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let build = BuildHasherDefault::<ShortKeyHasher>::default();
        let keys = [
            "",
            "a",
            "a\0",
            "\0a",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "c42",
            "c24",
        ];
        let hashes: FastSet<u64> = keys.iter().map(|k| build.hash_one(k)).collect();
        assert_eq!(hashes.len(), keys.len());
        let mut map: FastMap<String, usize> = FastMap::default();
        for i in 0..20_000 {
            map.insert(format!("c{i}"), i);
        }
        assert_eq!(map.len(), 20_000);
        assert!((0..20_000).all(|i| map.get(&format!("c{i}")) == Some(&i)));
        assert_eq!(map.get("c20000"), None);
    }

    #[test]
    fn stable_bucket_is_stable() {
        assert_eq!(
            stable_bucket("c1", "flow", "holdout"),
            stable_bucket("c1", "flow", "holdout")
        );
        assert_ne!(
            stable_bucket("c1", "flow", "holdout"),
            stable_bucket("c2", "flow", "holdout")
        );
        assert!(stable_bucket("anything", "else", "x") < 10_000);
    }
}
