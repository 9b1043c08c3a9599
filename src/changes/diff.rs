//! `flowc diff`: a semantic diff of two compiled projects, and what it means for contacts who
//! are waiting in the old version.
//!
//! Owns: matching flows, messages, segments and policy lines between two `CompiledProject`s by
//! name; matching the steps of one flow between versions (an alignment over the steps in
//! reading order that prefers identical steps, then steps of the same kind); the per-step pin
//! impact (RUNTIME.md 4: running instances finish on the version they started with); the
//! stable JSON schema ([`DIFF_FORMAT_VERSION`]) and the markdown text form.
//! Must not: compile, read files or run flows. Everything is compared through the names and
//! the source syntax of `compile::show`, never through table indexes, so that renumbered
//! messages or events and moved source lines are not reported as changes.
//! The waiting contacts come from the caller ([`impact`] takes a list from any source: a
//! simulation today, the daemon's store later).

use crate::changes::migrate::{self, Fate, Stranding};
use crate::compile::show::clock;
use crate::compile::{
    ChangePolicy, CompiledFlow, CompiledProject, Expr, Reentry, StateId, StateKind, Trigger,
};
use crate::engine::ContactState;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The version of the JSON schema of [`ProjectDiff`] and [`StepImpact`].
pub const DIFF_FORMAT_VERSION: u32 = 1;

/// Everything that differs between two projects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectDiff {
    pub format_version: u32,
    /// Nothing a contact could notice differs.
    pub equal: bool,
    /// Flows added, removed or changed, by name.
    pub flows: Vec<FlowDiff>,
    pub messages: Vec<MessageDiff>,
    pub segments: Vec<SegmentDiff>,
    /// `quiet hours` and `limit` lines of the policy.
    pub policy: Vec<Change>,
    /// Project settings (`[defaults] timezone`).
    pub settings: Vec<Change>,
    /// Waiting steps of OLD that an `on change migrate` of NEW maps nowhere: NEW would be
    /// refused over OLD (`E0033`; exit 3).
    pub strandings: Vec<Stranding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Added,
    Removed,
    Changed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Changed => "changed",
        }
    }
}

/// One header line, policy line or field: `old` is absent when added, `new` when removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `trigger`, `only if`, `reentry`, `exit on`, `exit if`, `quiet hours`, `goal`,
    /// `holdout`, `limit email`, `timezone`, ...
    pub what: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowDiff {
    pub name: String,
    pub status: Status,
    pub old_hash: Option<String>,
    pub new_hash: Option<String>,
    /// Where the flow is declared (`file:line`, in NEW unless removed).
    pub source: String,
    /// Header lines (`when`, `only if`, `reentry`, `exit on`, `exit if`, `quiet hours`,
    /// `goal`, `holdout`).
    pub header: Vec<Change>,
    pub steps: Vec<StepChange>,
    /// Messages this flow sends whose content changed.
    pub messages_changed: Vec<String>,
    /// Segments this flow reads (directly or through another segment) whose rule changed.
    pub segments_changed: Vec<String>,
    /// For each step of OLD where a contact can be waiting: what happens to it under pin,
    /// and under the flow's policy.
    pub waiting: Vec<WaitingPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepChangeKind {
    Added,
    Removed,
    /// The same wait with another duration, time of day or timeout.
    Retimed,
    /// The same kind of step with another message, condition, value or shares.
    Changed,
    /// The steps are the same but they are connected differently (moved into or out of a
    /// branch).
    Restructured,
}

impl StepChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepChangeKind::Added => "added",
            StepChangeKind::Removed => "removed",
            StepChangeKind::Retimed => "retimed",
            StepChangeKind::Changed => "changed",
            StepChangeKind::Restructured => "restructured",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepChange {
    pub change: StepChangeKind,
    pub old: Option<StepRef>,
    pub new: Option<StepRef>,
}

/// A step of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRef {
    /// The state index in that version's `CompiledFlow::states`.
    pub step: u16,
    /// The step in source syntax: `wait 1h`, `send cart_reminder`.
    pub text: String,
    /// `file:line`.
    pub source: String,
}

/// A place in OLD where an instance can rest, and what pin does to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingPoint {
    /// The state an instance waiting here holds (`Instance::state`): the `wait for` itself, a
    /// send deferred by quiet hours, or the step after a `wait`/`wait until`.
    pub step: u16,
    /// `wait 1h`, `wait for email_opened up to 2d`, `send x (deferred by quiet hours)`.
    pub waiting_at: String,
    pub source: String,
    pub pin: PinOutcome,
    /// What NEW's `on change` policy does to it.
    pub on_change: ChangeOutcome,
}

/// What a contact waiting at a step of OLD gets when NEW goes live, under NEW's `on change`
/// policy (`changes::migrate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeOutcome {
    pub policy: ChangePolicy,
    /// `keeps_old_version` (pin, or the flow did not change), `moves` (migrate), `ends`
    /// (restart) or `stranded` (migrate, nothing maps its step: NEW is refused).
    pub action: String,
    /// One sentence for people.
    pub summary: String,
    /// `moves`: the step of NEW it then waits at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moves_to: Option<StepRef>,
    /// `moves`: the label that mapped it (absent: the step's place did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `moves` to a wait of another length: `{"what": "step", "old": "wait 1h", "new":
    /// "wait 30min"}` (its timer keeps its start and takes the new length).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retimed: Option<Change>,
    /// The messages it is sent when its wait ends (a `wait for` by its timeout), before it
    /// waits again, branches or ends, in the version it is then in: empty when it ends.
    pub then_sends: Vec<String>,
}

/// What a contact waiting at a step of OLD gets when NEW is deployed under pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinOutcome {
    /// One sentence for people.
    pub summary: String,
    /// Whether anything it will still experience differs from NEW.
    pub affected: bool,
    /// Steps ahead of it that NEW removed, which it still runs.
    pub still_runs_removed: Vec<String>,
    /// Steps ahead of it (or the wait it is in) that NEW changed, which it runs in their
    /// old form: `{"what": "step", "old": "wait 1h", "new": "wait 2h"}`.
    pub runs_old_form: Vec<Change>,
    /// Steps NEW added ahead of the matching place, which it does not run.
    pub misses_added: Vec<String>,
    /// Messages ahead of it that changed: it gets the old content.
    pub old_messages: Vec<String>,
    /// Header lines that changed and still apply to it in their old form (exits, quiet hours).
    pub old_header: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageDiff {
    pub name: String,
    pub status: Status,
    /// Channel, `transactional`, and each field whose text changed.
    pub changes: Vec<Change>,
    /// The flows that send it (NEW, or OLD when removed).
    pub used_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentDiff {
    /// The segment instance, as flows use it: `lapsed`, `inactive(30d)`.
    pub name: String,
    pub status: Status,
    pub old_rule: Option<String>,
    pub new_rule: Option<String>,
    /// Flows whose behaviour depends on it (in either version).
    pub affects: Vec<String>,
}

/// Compares two compiled projects.
pub fn diff_projects(old: &CompiledProject, new: &CompiledProject) -> ProjectDiff {
    let messages = diff_messages(old, new);
    let segments = diff_segments(old, new);
    let changed_messages: BTreeSet<&str> = messages
        .iter()
        .filter(|m| m.status == Status::Changed)
        .map(|m| m.name.as_str())
        .collect();
    let changed_segments: BTreeSet<&str> = segments
        .iter()
        .filter(|s| s.status == Status::Changed)
        .map(|s| s.name.as_str())
        .collect();

    let names: BTreeSet<&str> = old
        .flows
        .iter()
        .chain(new.flows.iter())
        .map(|f| f.name.as_str())
        .collect();
    let mut flows = Vec::new();
    for name in names {
        let before = old.flows.iter().find(|f| f.name == name);
        let after = new.flows.iter().find(|f| f.name == name);
        match (before, after) {
            (Some(o), Some(n)) => {
                let d = diff_flow(old, o, new, n, &changed_messages, &changed_segments);
                if !(d.header.is_empty()
                    && d.steps.is_empty()
                    && d.messages_changed.is_empty()
                    && d.segments_changed.is_empty())
                {
                    flows.push(d);
                }
            }
            (Some(o), None) => flows.push(FlowDiff {
                name: name.to_string(),
                status: Status::Removed,
                old_hash: Some(o.hash.clone()),
                new_hash: None,
                source: o.source.to_string(),
                header: Vec::new(),
                steps: Vec::new(),
                messages_changed: Vec::new(),
                segments_changed: Vec::new(),
                waiting: waiting_points(old, o)
                    .into_iter()
                    .map(|(step, _, waiting_at, source)| WaitingPoint {
                        step,
                        waiting_at,
                        source,
                        on_change: kept_outcome(
                            ChangePolicy::Pin,
                            "finishes on the old version; the flow takes no new entries"
                                .to_string(),
                            migrate::sends_when_due(old, o, StateId(step)),
                        ),
                        pin: PinOutcome {
                            summary: "finishes on the old version; the flow takes no new entries"
                                .to_string(),
                            affected: true,
                            still_runs_removed: Vec::new(),
                            runs_old_form: Vec::new(),
                            misses_added: Vec::new(),
                            old_messages: Vec::new(),
                            old_header: Vec::new(),
                        },
                    })
                    .collect(),
            }),
            (None, Some(n)) => flows.push(FlowDiff {
                name: name.to_string(),
                status: Status::Added,
                old_hash: None,
                new_hash: Some(n.hash.clone()),
                source: n.source.to_string(),
                header: header_lines(new, n)
                    .into_iter()
                    .map(|(what, text)| Change {
                        what,
                        old: None,
                        new: Some(text),
                    })
                    .collect(),
                steps: Vec::new(),
                messages_changed: Vec::new(),
                segments_changed: Vec::new(),
                waiting: Vec::new(),
            }),
            (None, None) => {}
        }
    }

    let mut policy = Vec::new();
    let quiet = |p: &CompiledProject| {
        p.policy
            .quiet_hours
            .map(|q| format!("quiet hours {}..{}", clock(q.start), clock(q.end)))
    };
    push_if_differs(&mut policy, "quiet hours", quiet(old), quiet(new));
    let limits = |p: &CompiledProject| -> Vec<(String, String)> {
        p.policy
            .limits
            .iter()
            .map(|l| {
                (
                    format!("limit {}", l.channel.keyword()),
                    format!("limit {} {} per {}", l.channel.keyword(), l.count, l.per),
                )
            })
            .collect()
    };
    diff_keyed(&mut policy, &limits(old), &limits(new));
    let mut settings = Vec::new();
    push_if_differs(
        &mut settings,
        "timezone",
        Some(old.default_timezone.clone()),
        Some(new.default_timezone.clone()),
    );
    let equal = flows.is_empty()
        && messages.is_empty()
        && segments.is_empty()
        && policy.is_empty()
        && settings.is_empty();
    ProjectDiff {
        format_version: DIFF_FORMAT_VERSION,
        equal,
        flows,
        messages,
        segments,
        policy,
        settings,
        strandings: migrate::strandings(old, new),
    }
}

/// The outcome of an instance that stays on the version it is in.
fn kept_outcome(policy: ChangePolicy, summary: String, then_sends: Vec<String>) -> ChangeOutcome {
    ChangeOutcome {
        policy,
        action: "keeps_old_version".to_string(),
        summary,
        moves_to: None,
        label: None,
        retimed: None,
        then_sends,
    }
}

/// What NEW's policy does to instances holding `held` of OLD, as `changes::migrate` plans it.
fn change_outcome(
    old_project: &CompiledProject,
    old: &CompiledFlow,
    new_project: &CompiledProject,
    new: &CompiledFlow,
    fate: &Fate,
    held: StateId,
    pin: &PinOutcome,
) -> ChangeOutcome {
    let policy = new.change.policy;
    match fate {
        Fate::KeepsOldVersion => kept_outcome(
            policy,
            pin.summary.clone(),
            migrate::sends_when_due(old_project, old, held),
        ),
        Fate::Moves { to, to_step, label } => {
            let then_sends = migrate::sends_when_due(new_project, new, *to);
            let target = step_of(new_project, new, *to_step).map(|s| s.reference());
            let mut summary = match &target {
                Some(t) => format!("moves to `{}` ({}) of the new version", t.text, t.source),
                None => "moves to the new version".to_string(),
            };
            match label {
                Some(l) => summary.push_str(&format!(" by its label `{l}`")),
                None => summary.push_str(" by its place"),
            }
            let from_text = waiting_points(old_project, old)
                .into_iter()
                .find(|(h, _, _, _)| *h == held.0)
                .and_then(|(_, step, _, _)| step_of(old_project, old, StateId(step)))
                .map(|s| s.text);
            let retimed = match (&from_text, &target) {
                (Some(f), Some(t))
                    if f != &t.text
                        && f.starts_with("wait")
                        && t.text.starts_with("wait")
                        && (!f.starts_with("wait for")
                            || strip_timeout(f) == strip_timeout(&t.text)) =>
                {
                    summary.push_str(&format!(
                        " (its timer keeps its start and takes the new length: `{f}` → `{}`)",
                        t.text
                    ));
                    Some(Change {
                        what: "step".to_string(),
                        old: Some(f.clone()),
                        new: Some(t.text.clone()),
                    })
                }
                _ => None,
            };
            if then_sends.is_empty() {
                summary.push_str("; when its wait ends it sends nothing before the next step");
            } else {
                summary.push_str(&format!(
                    "; when its wait ends it gets {}",
                    quoted_list(&then_sends)
                ));
            }
            ChangeOutcome {
                policy,
                action: "moves".to_string(),
                summary,
                moves_to: target,
                label: label.clone(),
                retimed,
                then_sends,
            }
        }
        Fate::Ends => ChangeOutcome {
            policy,
            action: "ends".to_string(),
            summary: "is ended (exited: flow changed); nothing more is sent to it by this flow"
                .to_string(),
            moves_to: None,
            label: None,
            retimed: None,
            then_sends: Vec::new(),
        },
        Fate::Stranded { reason } => ChangeOutcome {
            policy,
            action: "stranded".to_string(),
            summary: format!("stranded: {reason}; the new version would be refused (E0033)"),
            moves_to: None,
            label: None,
            retimed: None,
            then_sends: Vec::new(),
        },
    }
}

fn push_if_differs(out: &mut Vec<Change>, what: &str, old: Option<String>, new: Option<String>) {
    if old != new {
        out.push(Change {
            what: what.to_string(),
            old,
            new,
        });
    }
}

/// Lines keyed by what they are about (`limit email`): a changed value is one change, a
/// missing key an addition or removal. Several lines with one key are compared as sets.
fn diff_keyed(out: &mut Vec<Change>, old: &[(String, String)], new: &[(String, String)]) {
    let keys: BTreeSet<&String> = old.iter().chain(new.iter()).map(|(k, _)| k).collect();
    for key in keys {
        let o: Vec<&String> = old
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        let n: Vec<&String> = new
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        let removed: Vec<&&String> = o.iter().filter(|v| !n.contains(v)).collect();
        let added: Vec<&&String> = n.iter().filter(|v| !o.contains(v)).collect();
        let pairs = removed.len().max(added.len());
        for i in 0..pairs {
            out.push(Change {
                what: key.clone(),
                old: removed.get(i).map(|s| (**s).clone()),
                new: added.get(i).map(|s| (**s).clone()),
            });
        }
    }
}

// ----- messages and segments -----

fn senders(project: &CompiledProject, message: &str) -> Vec<String> {
    project
        .flows
        .iter()
        .filter(|f| {
            f.states.iter().any(|s| match &s.kind {
                StateKind::Send { message: m, .. } => project
                    .messages
                    .get(m.index())
                    .is_some_and(|x| x.name == message),
                _ => false,
            })
        })
        .map(|f| f.name.clone())
        .collect()
}

fn diff_messages(old: &CompiledProject, new: &CompiledProject) -> Vec<MessageDiff> {
    let names: BTreeSet<&str> = old
        .messages
        .iter()
        .chain(new.messages.iter())
        .map(|m| m.name.as_str())
        .collect();
    let mut out = Vec::new();
    for name in names {
        let o = old.messages.iter().find(|m| m.name == name);
        let n = new.messages.iter().find(|m| m.name == name);
        let (status, changes, used_by) = match (o, n) {
            (Some(o), Some(n)) => {
                let mut changes = Vec::new();
                push_if_differs(
                    &mut changes,
                    "channel",
                    Some(o.channel.keyword().to_string()),
                    Some(n.channel.keyword().to_string()),
                );
                push_if_differs(
                    &mut changes,
                    "transactional",
                    Some(o.transactional.to_string()),
                    Some(n.transactional.to_string()),
                );
                let fields: BTreeSet<&str> = o
                    .fields
                    .iter()
                    .chain(n.fields.iter())
                    .map(|(k, _)| k.as_str())
                    .collect();
                for field in fields {
                    let value = |m: &crate::compile::CompiledMessage| {
                        m.fields
                            .iter()
                            .find(|(k, _)| k == field)
                            .map(|(_, v)| v.clone())
                    };
                    push_if_differs(&mut changes, field, value(o), value(n));
                }
                if changes.is_empty() {
                    continue;
                }
                (Status::Changed, changes, senders(new, name))
            }
            (Some(_), None) => (Status::Removed, Vec::new(), senders(old, name)),
            (None, Some(_)) => (Status::Added, Vec::new(), senders(new, name)),
            (None, None) => continue,
        };
        out.push(MessageDiff {
            name: name.to_string(),
            status,
            changes,
            used_by,
        });
    }
    out
}

/// The segment instances a flow reads, directly or through other segments, by name.
fn segments_read(project: &CompiledProject, flow: &CompiledFlow) -> BTreeSet<String> {
    let mut found: BTreeSet<usize> = BTreeSet::new();
    let mut todo: Vec<usize> = Vec::new();
    for trigger in &flow.triggers {
        match trigger {
            Trigger::Entering(s) | Trigger::Every { segment: s, .. } => todo.push(s.index()),
            _ => {}
        }
    }
    crate::compile::for_each_expr(flow, &mut |e| collect_segments(e, &mut todo));
    while let Some(index) = todo.pop() {
        if found.insert(index) {
            if let Some(s) = project.segments.get(index) {
                collect_segments(&s.expr, &mut todo);
            }
        }
    }
    found
        .into_iter()
        .filter_map(|i| project.segments.get(i).map(|s| s.name.clone()))
        .collect()
}

fn collect_segments(expr: &Expr, out: &mut Vec<usize>) {
    crate::compile::walk(expr, &mut |e| {
        if let Expr::Segment(id) = e {
            out.push(id.index());
        }
    });
}

fn diff_segments(old: &CompiledProject, new: &CompiledProject) -> Vec<SegmentDiff> {
    let names: BTreeSet<&str> = old
        .segments
        .iter()
        .chain(new.segments.iter())
        .map(|s| s.name.as_str())
        .collect();
    let readers = |p: &CompiledProject, name: &str| -> Vec<String> {
        p.flows
            .iter()
            .filter(|f| segments_read(p, f).contains(name))
            .map(|f| f.name.clone())
            .collect()
    };
    let mut out = Vec::new();
    for name in names {
        let o = old
            .segments
            .iter()
            .find(|s| s.name == name)
            .map(|s| old.show_expr(&s.expr));
        let n = new
            .segments
            .iter()
            .find(|s| s.name == name)
            .map(|s| new.show_expr(&s.expr));
        let status = match (&o, &n) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => Status::Changed,
            (Some(_), None) => Status::Removed,
            (None, Some(_)) => Status::Added,
            (None, None) => continue,
        };
        let mut affects: BTreeSet<String> = readers(old, name).into_iter().collect();
        affects.extend(readers(new, name));
        out.push(SegmentDiff {
            name: name.to_string(),
            status,
            old_rule: o,
            new_rule: n,
            affects: affects.into_iter().collect(),
        });
    }
    out
}

// ----- one flow -----

/// The header of a flow as (what, text) lines.
fn header_lines(project: &CompiledProject, flow: &CompiledFlow) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for trigger in &flow.triggers {
        lines.push((
            "when".to_string(),
            format!("when {}", project.show_trigger(trigger)),
        ));
    }
    if let Some(only_if) = &flow.only_if {
        lines.push((
            "only if".to_string(),
            format!("only if {}", project.show_expr(only_if)),
        ));
    }
    // The default (not while an instance is active) is not written.
    let reentry = match flow.reentry {
        Reentry::NotWhileActive => None,
        Reentry::Never => Some("reentry never".to_string()),
        Reentry::Always => Some("reentry always".to_string()),
        Reentry::After(d) => Some(format!("reentry after {d}")),
    };
    if let Some(text) = reentry {
        lines.push(("reentry".to_string(), text));
    }
    for exit in &flow.exit_on {
        lines.push((
            "exit on".to_string(),
            format!("exit on {}", project.show_event_match(exit)),
        ));
    }
    for exit in &flow.exit_if {
        lines.push((
            "exit if".to_string(),
            format!("exit if {}", project.show_expr(exit)),
        ));
    }
    if let Some(q) = flow.quiet_hours {
        lines.push((
            "quiet hours".to_string(),
            format!("quiet hours {}..{}", clock(q.start), clock(q.end)),
        ));
    }
    if let Some(goal) = &flow.goal {
        let mut text = format!("goal {}", project.event_name(goal.event));
        if let Some(filter) = &goal.filter {
            let _ = write!(text, " where {}", project.show_expr(filter));
        }
        let _ = write!(text, " within {}", goal.within);
        lines.push(("goal".to_string(), text));
    }
    if flow.holdout_basis_points > 0 {
        lines.push((
            "holdout".to_string(),
            format!("holdout {}%", f64::from(flow.holdout_basis_points) / 100.0),
        ));
    }
    // The default (pin) is not written.
    if !flow.change.policy.is_pin() {
        lines.push((
            "on change".to_string(),
            format!("on change {}", flow.change.policy.keyword()),
        ));
    }
    lines
}

/// A step of a flow: what it is (`kind`, to pair steps of the same sort) and its full text.
#[derive(Debug, Clone)]
struct Step {
    id: StateId,
    kind: String,
    text: String,
    source: String,
}

impl Step {
    fn reference(&self) -> StepRef {
        StepRef {
            step: self.id.0,
            text: self.text.clone(),
            source: self.source.clone(),
        }
    }
}

fn step_of(project: &CompiledProject, flow: &CompiledFlow, id: StateId) -> Option<Step> {
    let state = flow.states.get(id.index())?;
    let message_name = |m: crate::compile::MessageId| {
        project
            .messages
            .get(m.index())
            .map_or("?".to_string(), |m| m.name.clone())
    };
    let (kind, text) = match &state.kind {
        StateKind::End => return None,
        StateKind::Stop => ("stop".to_string(), "stop".to_string()),
        StateKind::Send { message, .. } => {
            let name = message_name(*message);
            (format!("send {name}"), format!("send {name}"))
        }
        StateKind::Wait { duration, .. } => ("wait".to_string(), format!("wait {duration}")),
        StateKind::WaitUntil { minute_of_day, .. } => (
            "wait until".to_string(),
            format!("wait until {}", clock(*minute_of_day)),
        ),
        StateKind::WaitFor { arms, timeout, .. } => {
            let events: Vec<&str> = arms
                .iter()
                .map(|a| project.event_name(a.event.event))
                .collect();
            let matches: Vec<String> = arms
                .iter()
                .map(|a| project.show_event_match(&a.event))
                .collect();
            (
                format!("wait for {}", events.join(" or ")),
                format!("wait for {} up to {timeout}", matches.join(" or ")),
            )
        }
        StateKind::Branch { conditions, .. } => {
            let parts: Vec<String> = conditions
                .iter()
                .map(|(c, _)| project.show_expr(c))
                .collect();
            (
                "if".to_string(),
                format!("if {}", parts.join(" / else if ")),
            )
        }
        StateKind::Split { arms } => {
            let mut lower = 0u16;
            let shares: Vec<String> = arms
                .iter()
                .map(|(upper, _)| {
                    let share = f64::from(upper.saturating_sub(lower)) / 100.0;
                    lower = *upper;
                    format!("{share}%")
                })
                .collect();
            ("split".to_string(), format!("split {}", shares.join(" / ")))
        }
        StateKind::Set { field, value, .. } => (
            format!("set contact.{}", field.join(".")),
            format!(
                "set contact.{} = {}",
                field.join("."),
                project.show_expr(value)
            ),
        ),
        StateKind::Unsubscribe { target, .. } => {
            let text = match target {
                crate::compile::UnsubscribeTarget::All => "unsubscribe all".to_string(),
                crate::compile::UnsubscribeTarget::Channel(c) => {
                    format!("unsubscribe {}", c.keyword())
                }
            };
            (text.clone(), text)
        }
    };
    Some(Step {
        id,
        kind,
        text,
        source: state.source.to_string(),
    })
}

/// The states a state leads to, in source order of the branches.
fn successors(flow: &CompiledFlow, id: StateId) -> Vec<StateId> {
    let Some(state) = flow.states.get(id.index()) else {
        return Vec::new();
    };
    match &state.kind {
        StateKind::End | StateKind::Stop => Vec::new(),
        StateKind::Send { next, .. }
        | StateKind::Wait { next, .. }
        | StateKind::WaitUntil { next, .. }
        | StateKind::Set { next, .. }
        | StateKind::Unsubscribe { next, .. } => vec![*next],
        StateKind::WaitFor {
            arms, on_timeout, ..
        } => arms
            .iter()
            .map(|a| a.next)
            .chain(std::iter::once(*on_timeout))
            .collect(),
        StateKind::Branch {
            conditions,
            otherwise,
        } => conditions
            .iter()
            .map(|(_, s)| *s)
            .chain(std::iter::once(*otherwise))
            .collect(),
        StateKind::Split { arms } => arms.iter().map(|(_, s)| *s).collect(),
    }
}

/// Every state reachable from the entry, in reading order: depth first, then by source line
/// (states of one flow come from one file: the flow's or its template's).
fn reading_order(flow: &CompiledFlow) -> Vec<StateId> {
    let mut seen = vec![false; flow.states.len()];
    let mut order = Vec::new();
    let mut stack = vec![flow.entry];
    while let Some(id) = stack.pop() {
        if seen.get(id.index()).copied().unwrap_or(true) {
            continue;
        }
        seen[id.index()] = true;
        order.push(id);
        for next in successors(flow, id).into_iter().rev() {
            stack.push(next);
        }
    }
    let mut ranked: Vec<(usize, StateId)> = order.into_iter().enumerate().collect();
    ranked.sort_by(|(a_rank, a), (b_rank, b)| {
        let line = |s: &StateId| {
            flow.states
                .get(s.index())
                .map(|st| (st.source.file.clone(), st.source.line))
        };
        (line(a), a_rank).cmp(&(line(b), b_rank))
    });
    ranked.into_iter().map(|(_, s)| s).collect()
}

/// Every state reachable from `from` (inclusive).
fn reachable(flow: &CompiledFlow, from: &[StateId]) -> BTreeSet<StateId> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<StateId> = from.to_vec();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(successors(flow, id));
        }
    }
    seen
}

/// Pairs of (old index, new index) that align the two step sequences: the alignment with the
/// highest score that keeps both orders, an identical step scoring 3 and a step of the same
/// kind 2 (a weighted longest common subsequence).
fn align(old: &[Step], new: &[Step]) -> Vec<(usize, usize)> {
    let score = |a: &Step, b: &Step| {
        if a.text == b.text {
            3
        } else if a.kind == b.kind {
            2
        } else {
            0
        }
    };
    let (n, m) = (old.len(), new.len());
    let mut table = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let mut best = table[i + 1][j].max(table[i][j + 1]);
            let s = score(&old[i], &new[j]);
            if s > 0 {
                best = best.max(table[i + 1][j + 1] + s);
            }
            table[i][j] = best;
        }
    }
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        let s = score(&old[i], &new[j]);
        if s > 0 && table[i][j] == table[i + 1][j + 1] + s {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if table[i][j] == table[i + 1][j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

/// A flow's steps in reading order.
fn steps_in_reading_order(project: &CompiledProject, flow: &CompiledFlow) -> Vec<Step> {
    reading_order(flow)
        .into_iter()
        .filter_map(|id| step_of(project, flow, id))
        .collect()
}

/// The steps of NEW that `flowc diff` matches to steps of OLD, as (old state, new state): the
/// alignment of the two flows' steps in reading order (see [`align`]).
pub fn step_pairs(
    old_project: &CompiledProject,
    old: &CompiledFlow,
    new_project: &CompiledProject,
    new: &CompiledFlow,
) -> Vec<(StateId, StateId)> {
    let old_steps = steps_in_reading_order(old_project, old);
    let new_steps = steps_in_reading_order(new_project, new);
    align(&old_steps, &new_steps)
        .into_iter()
        .map(|(i, j)| (old_steps[i].id, new_steps[j].id))
        .collect()
}

/// Whether two versions of a flow differ in substance: their header lines, their steps (in
/// source syntax, in reading order) or how the steps connect. Moved source lines, message
/// contents, segment rules and step labels are not substance.
pub fn changed_in_substance(
    old_project: &CompiledProject,
    old: &CompiledFlow,
    new_project: &CompiledProject,
    new: &CompiledFlow,
) -> bool {
    let steps = |p: &CompiledProject, f: &CompiledFlow| -> Vec<Step> {
        reading_order(f)
            .into_iter()
            .filter_map(|id| step_of(p, f, id))
            .collect()
    };
    let (old_steps, new_steps) = (steps(old_project, old), steps(new_project, new));
    header_lines(old_project, old) != header_lines(new_project, new)
        || shape(&old_steps, old) != shape(&new_steps, new)
}

/// A step in source syntax (`wait 1h`), as `flowc diff` writes it, and its `file:line`.
pub fn step_text(project: &CompiledProject, flow: &CompiledFlow, id: StateId) -> (String, String) {
    match step_of(project, flow, id) {
        Some(s) => (s.text, s.source),
        None => ("the end".to_string(), String::new()),
    }
}

/// The shape of a flow with states named by their text and position in reading order (not by
/// table index), to notice steps moved between branches.
fn shape(steps: &[Step], flow: &CompiledFlow) -> Vec<(String, Vec<Option<usize>>)> {
    let position = |id: StateId| steps.iter().position(|s| s.id == id);
    steps
        .iter()
        .map(|s| {
            (
                s.text.clone(),
                successors(flow, s.id).into_iter().map(position).collect(),
            )
        })
        .collect()
}

fn diff_flow(
    old_project: &CompiledProject,
    old: &CompiledFlow,
    new_project: &CompiledProject,
    new: &CompiledFlow,
    changed_messages: &BTreeSet<&str>,
    changed_segments: &BTreeSet<&str>,
) -> FlowDiff {
    let mut header = Vec::new();
    diff_keyed(
        &mut header,
        &header_lines(old_project, old),
        &header_lines(new_project, new),
    );
    let old_steps = steps_in_reading_order(old_project, old);
    let new_steps = steps_in_reading_order(new_project, new);
    let pairs = align(&old_steps, &new_steps);

    // Changes in reading order of NEW, removed steps where they stood.
    let mut steps = Vec::new();
    let (mut i, mut j) = (0, 0);
    for &(pi, pj) in pairs
        .iter()
        .chain(std::iter::once(&(old_steps.len(), new_steps.len())))
    {
        while i < pi {
            steps.push(StepChange {
                change: StepChangeKind::Removed,
                old: Some(old_steps[i].reference()),
                new: None,
            });
            i += 1;
        }
        while j < pj {
            steps.push(StepChange {
                change: StepChangeKind::Added,
                old: None,
                new: Some(new_steps[j].reference()),
            });
            j += 1;
        }
        if let (Some(o), Some(n)) = (old_steps.get(pi), new_steps.get(pj)) {
            if o.text != n.text {
                let timing = o.kind.starts_with("wait");
                let retimed = timing
                    && (o.kind == "wait"
                        || o.kind == "wait until"
                        || strip_timeout(&o.text) == strip_timeout(&n.text));
                steps.push(StepChange {
                    change: if retimed {
                        StepChangeKind::Retimed
                    } else {
                        StepChangeKind::Changed
                    },
                    old: Some(o.reference()),
                    new: Some(n.reference()),
                });
            }
        }
        i = pi + 1;
        j = pj + 1;
    }
    if steps.is_empty() && shape(&old_steps, old) != shape(&new_steps, new) {
        steps.push(StepChange {
            change: StepChangeKind::Restructured,
            old: None,
            new: None,
        });
    }

    let sends = |p: &CompiledProject, f: &CompiledFlow| -> BTreeSet<String> {
        f.states
            .iter()
            .filter_map(|s| match &s.kind {
                StateKind::Send { message, .. } => {
                    p.messages.get(message.index()).map(|m| m.name.clone())
                }
                _ => None,
            })
            .collect()
    };
    let mut messages_changed: BTreeSet<String> = sends(old_project, old);
    messages_changed.extend(sends(new_project, new));
    messages_changed.retain(|m| changed_messages.contains(m.as_str()));
    let mut segments_changed: BTreeSet<String> = segments_read(old_project, old);
    segments_changed.extend(segments_read(new_project, new));
    segments_changed.retain(|s| changed_segments.contains(s.as_str()));

    let mut diff = FlowDiff {
        name: new.name.clone(),
        status: Status::Changed,
        old_hash: Some(old.hash.clone()),
        new_hash: Some(new.hash.clone()),
        source: new.source.to_string(),
        header,
        steps,
        messages_changed: messages_changed.into_iter().collect(),
        segments_changed: segments_changed.into_iter().collect(),
        waiting: Vec::new(),
    };
    let alignment = Alignment {
        old_steps: &old_steps,
        new_steps: &new_steps,
        pairs: &pairs,
    };
    let plan = migrate::plan_flow(old_project, old, new_project, Some(new));
    diff.waiting = waiting_points(old_project, old)
        .into_iter()
        .zip(plan.points)
        .map(|((step, at, waiting_at, source), point)| {
            let pin = pin_outcome(
                old_project,
                old,
                new,
                &alignment,
                &diff,
                &[StateId(at), StateId(step)],
            );
            let on_change = change_outcome(
                old_project,
                old,
                new_project,
                new,
                &point.fate,
                StateId(step),
                &pin,
            );
            WaitingPoint {
                step,
                pin,
                on_change,
                waiting_at,
                source,
            }
        })
        .collect();
    diff
}

fn strip_timeout(text: &str) -> &str {
    text.rsplit_once(" up to ").map_or(text, |(head, _)| head)
}

struct Alignment<'a> {
    old_steps: &'a [Step],
    new_steps: &'a [Step],
    pairs: &'a [(usize, usize)],
}

/// The places of a flow where an instance can rest between two inputs, as
/// (`Instance::state`, the waiting step, text, source), in reading order.
pub fn waiting_points(
    project: &CompiledProject,
    flow: &CompiledFlow,
) -> Vec<(u16, u16, String, String)> {
    let mut points = Vec::new();
    for id in reading_order(flow) {
        let Some(state) = flow.states.get(id.index()) else {
            continue;
        };
        let Some(step) = step_of(project, flow, id) else {
            continue;
        };
        match &state.kind {
            // A waiting instance holds the step after the wait.
            StateKind::Wait { next, .. } | StateKind::WaitUntil { next, .. } => {
                points.push((next.0, id.0, step.text, step.source));
            }
            StateKind::WaitFor { .. } => points.push((id.0, id.0, step.text, step.source)),
            StateKind::Send { message, .. } => {
                let marketing = project
                    .messages
                    .get(message.index())
                    .is_some_and(|m| !m.transactional);
                if marketing && flow.quiet_hours.is_some() {
                    points.push((
                        id.0,
                        id.0,
                        format!("{} (deferred by quiet hours)", step.text),
                        step.source,
                    ));
                }
            }
            _ => {}
        }
    }
    points
}

/// What pin means for an instance of OLD that holds `held`.
fn pin_outcome(
    old_project: &CompiledProject,
    old: &CompiledFlow,
    new: &CompiledFlow,
    alignment: &Alignment<'_>,
    diff: &FlowDiff,
    held: &[StateId],
) -> PinOutcome {
    // The step it waits at (a wait keeps the timing it started with) and everything after.
    let ahead_old = reachable(old, held);
    let matched_new = |old_index: usize| {
        alignment
            .pairs
            .iter()
            .find(|(o, _)| *o == old_index)
            .map(|(_, n)| *n)
    };
    let mut still_runs_removed = Vec::new();
    let mut runs_old_form = Vec::new();
    let mut counterparts = Vec::new();
    let mut old_messages = BTreeSet::new();
    for (index, step) in alignment.old_steps.iter().enumerate() {
        if !ahead_old.contains(&step.id) {
            continue;
        }
        if let Some(StateKind::Send { message, .. }) =
            old.states.get(step.id.index()).map(|s| &s.kind)
        {
            if let Some(m) = old_project.messages.get(message.index()) {
                if diff.messages_changed.contains(&m.name) {
                    old_messages.insert(m.name.clone());
                }
            }
        }
        match matched_new(index) {
            None => still_runs_removed.push(step.text.clone()),
            Some(n) => {
                if let Some(ns) = alignment.new_steps.get(n) {
                    counterparts.push(ns.id);
                    if ns.text != step.text {
                        runs_old_form.push(Change {
                            what: "step".to_string(),
                            old: Some(step.text.clone()),
                            new: Some(ns.text.clone()),
                        });
                    }
                }
            }
        }
    }
    let ahead_new = reachable(new, &counterparts);
    let matched: BTreeSet<usize> = alignment.pairs.iter().map(|(_, n)| *n).collect();
    let misses_added: Vec<String> = alignment
        .new_steps
        .iter()
        .enumerate()
        .filter(|(i, s)| !matched.contains(i) && ahead_new.contains(&s.id))
        .map(|(_, s)| s.text.clone())
        .collect();
    let old_header: Vec<String> = diff
        .header
        .iter()
        .filter(|c| matches!(c.what.as_str(), "exit on" | "exit if" | "quiet hours"))
        .map(|c| match (&c.old, &c.new) {
            (Some(o), Some(n)) => format!("`{o}` (new: `{n}`)"),
            (Some(o), None) => format!("`{o}` (removed in the new version)"),
            (None, Some(n)) => format!("no `{n}` (added in the new version)"),
            (None, None) => String::new(),
        })
        .collect();
    let old_messages: Vec<String> = old_messages.into_iter().collect();
    let mut parts = Vec::new();
    if !runs_old_form.is_empty() {
        let pairs: Vec<String> = runs_old_form
            .iter()
            .map(|c| {
                format!(
                    "`{}` (new: `{}`)",
                    c.old.as_deref().unwrap_or(""),
                    c.new.as_deref().unwrap_or("")
                )
            })
            .collect();
        parts.push(format!("keeps {}", pairs.join(", ")));
    }
    if !still_runs_removed.is_empty() {
        parts.push(format!(
            "still runs {} (removed in the new version)",
            quoted_list(&still_runs_removed)
        ));
    }
    if !misses_added.is_empty() {
        parts.push(format!(
            "skips {} (added in the new version)",
            quoted_list(&misses_added)
        ));
    }
    if !old_messages.is_empty() {
        parts.push(format!(
            "gets the old content of {}",
            quoted_list(&old_messages)
        ));
    }
    if !old_header.is_empty() {
        parts.push(format!("keeps {}", old_header.join(", ")));
    }
    let affected = !parts.is_empty();
    let summary = if affected {
        format!("finishes on the old version: {}", parts.join("; "))
    } else {
        "unaffected: what is left of its path is the same in both versions".to_string()
    };
    PinOutcome {
        summary,
        affected,
        still_runs_removed,
        runs_old_form,
        misses_added,
        old_messages,
        old_header,
    }
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ----- impact on waiting contacts -----

/// Contacts waiting at one step of OLD, from any source (a simulation, the daemon's store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub flow: String,
    /// `Instance::state` in OLD.
    pub step: u16,
    pub count: u64,
    /// A few contact ids.
    pub examples: Vec<String>,
}

/// What happens, under pin, to the contacts waiting at one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepImpact {
    pub flow: String,
    pub step: u16,
    pub waiting_at: String,
    pub source: String,
    pub count: u64,
    pub examples: Vec<String>,
    pub pin: PinOutcome,
    /// What the flow's `on change` policy in NEW does to them ("N contacts at step X move to
    /// step Y / are ended / keep the old version").
    pub on_change: ChangeOutcome,
}

/// Counts the instances of `states` by (flow, step), with up to `max_examples` contact ids
/// each, sorted by flow and step.
pub fn waiting_in<'a>(
    project: &CompiledProject,
    states: impl Iterator<Item = (&'a str, &'a ContactState)>,
    max_examples: usize,
) -> Vec<Waiting> {
    let mut groups: BTreeMap<(String, u16), (u64, BTreeSet<String>)> = BTreeMap::new();
    for (contact, state) in states {
        for instance in &state.instances {
            let Some(flow) = project.flows.get(instance.flow.index()) else {
                continue;
            };
            let entry = groups
                .entry((flow.name.clone(), instance.state.0))
                .or_default();
            entry.0 += 1;
            entry.1.insert(contact.to_string());
        }
    }
    groups
        .into_iter()
        .map(|((flow, step), (count, contacts))| Waiting {
            flow,
            step,
            count,
            examples: contacts.into_iter().take(max_examples).collect(),
        })
        .collect()
}

/// Per waiting step, what pin does to the contacts there. Steps of flows the diff does not
/// list are unaffected.
pub fn impact(old: &CompiledProject, diff: &ProjectDiff, waiting: &[Waiting]) -> Vec<StepImpact> {
    waiting
        .iter()
        .map(|w| {
            let point = diff
                .flows
                .iter()
                .find(|f| f.name == w.flow)
                .and_then(|f| f.waiting.iter().find(|p| p.step == w.step));
            let (waiting_at, source, pin, on_change) = match point {
                Some(p) => (
                    p.waiting_at.clone(),
                    p.source.clone(),
                    p.pin.clone(),
                    p.on_change.clone(),
                ),
                None => {
                    let flow = old.flows.iter().find(|f| f.name == w.flow);
                    let then_sends = flow.map_or_else(Vec::new, |f| {
                        migrate::sends_when_due(old, f, StateId(w.step))
                    });
                    let policy = flow.map_or(ChangePolicy::Pin, |f| f.change.policy);
                    let (text, source) = old
                        .flows
                        .iter()
                        .find(|f| f.name == w.flow)
                        .and_then(|f| {
                            waiting_points(old, f)
                                .into_iter()
                                .find(|(s, _, _, _)| *s == w.step)
                                .map(|(_, _, t, s)| (t, s))
                        })
                        .unwrap_or_default();
                    (
                        text,
                        source,
                        PinOutcome {
                            summary: "unaffected: the flow did not change".to_string(),
                            affected: false,
                            still_runs_removed: Vec::new(),
                            runs_old_form: Vec::new(),
                            misses_added: Vec::new(),
                            old_messages: Vec::new(),
                            old_header: Vec::new(),
                        },
                        kept_outcome(
                            policy,
                            "unaffected: the flow did not change".to_string(),
                            then_sends,
                        ),
                    )
                }
            };
            StepImpact {
                flow: w.flow.clone(),
                step: w.step,
                waiting_at,
                source,
                count: w.count,
                examples: w.examples.clone(),
                pin,
                on_change,
            }
        })
        .collect()
}

// ----- text -----

/// Short single-line values in a code span; longer ones cut, multi-line ones counted (their
/// changes are shown by [`field_change`]).
fn inline(text: &str) -> String {
    if text.contains('\n') {
        return format!("({} lines)", text.lines().count());
    }
    if text.chars().count() <= 80 {
        format!("`{text}`")
    } else {
        let cut: String = text.chars().take(77).collect();
        format!("`{cut}…`")
    }
}

/// A message field change: inline when both sides are short single lines, else the changed
/// lines as a fenced `diff` block (at most 12), indented to sit in a list item.
fn field_change(c: &Change) -> String {
    let short = |v: &Option<String>| {
        v.as_deref()
            .map_or(true, |s| !s.contains('\n') && s.chars().count() <= 80)
    };
    if short(&c.old) && short(&c.new) {
        return change_text(c);
    }
    // Both sides end with a line break, so that a last line is not reported as changed
    // only because the other side goes on.
    let with_newline = |v: &Option<String>| {
        let mut s = v.clone().unwrap_or_default();
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s
    };
    let (old, new) = (with_newline(&c.old), with_newline(&c.new));
    let diff = similar::TextDiff::from_lines(&old, &new);
    let mut lines = Vec::new();
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => continue,
        };
        lines.push(format!("{sign}{}", change.value().trim_end_matches('\n')));
    }
    let total = lines.len();
    lines.truncate(12);
    let mut text = format!("{} changed:\n\n    ```diff\n", c.what);
    for line in &lines {
        let _ = writeln!(text, "    {line}");
    }
    if total > lines.len() {
        let _ = writeln!(text, "    … {} more changed lines", total - lines.len());
    }
    text.push_str("    ```");
    text
}

fn change_text(c: &Change) -> String {
    match (&c.old, &c.new) {
        (Some(o), Some(n)) => format!("{}: {} → {}", c.what, inline(o), inline(n)),
        (Some(o), None) => format!("removed {}", inline(o)),
        (None, Some(n)) => format!("added {}", inline(n)),
        (None, None) => c.what.clone(),
    }
}

/// The diff as markdown, for a pull request comment.
pub fn render_text(diff: &ProjectDiff, impact: Option<&[StepImpact]>) -> String {
    let mut out = String::new();
    if diff.equal {
        out.push_str(
            "No semantic changes: every flow, message, segment and policy line behaves the same.\n",
        );
        return out;
    }
    let count = |s: Status| diff.flows.iter().filter(|f| f.status == s).count();
    let mut summary = Vec::new();
    for (n, word) in [
        (count(Status::Changed), "changed"),
        (count(Status::Added), "added"),
        (count(Status::Removed), "removed"),
    ] {
        if n > 0 {
            summary.push(format!("{n} flow{} {word}", if n == 1 { "" } else { "s" }));
        }
    }
    for (n, word) in [
        (diff.messages.len(), "message"),
        (diff.segments.len(), "segment"),
    ] {
        if n > 0 {
            summary.push(format!(
                "{n} {word} change{}",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    if !diff.policy.is_empty() {
        summary.push("policy changed".to_string());
    }
    let _ = writeln!(out, "## flowc diff: {}\n", summary.join(", "));

    for flow in &diff.flows {
        let _ = writeln!(
            out,
            "### flow `{}` {} ({})\n",
            flow.name,
            flow.status.as_str(),
            flow.source
        );
        for change in &flow.header {
            let _ = writeln!(out, "- header: {}", change_text(change));
        }
        for step in &flow.steps {
            let line = match (&step.old, &step.new) {
                (Some(o), Some(n)) => format!(
                    "- **{}** `{}` → `{}` ({})",
                    step.change.as_str(),
                    o.text,
                    n.text,
                    n.source
                ),
                (Some(o), None) => format!("- **removed** `{}` (was at {})", o.text, o.source),
                (None, Some(n)) => format!("- **added** `{}` ({})", n.text, n.source),
                (None, None) => format!(
                    "- **{}**: the same steps, connected differently (moved into or out of a branch)",
                    step.change.as_str()
                ),
            };
            let _ = writeln!(out, "{line}");
        }
        for message in &flow.messages_changed {
            let _ = writeln!(out, "- sends `{message}`, whose content changed");
        }
        for segment in &flow.segments_changed {
            let _ = writeln!(out, "- reads segment `{segment}`, whose rule changed");
        }
        let policy = flow
            .waiting
            .first()
            .map_or(ChangePolicy::Pin, |w| w.on_change.policy);
        if policy != ChangePolicy::Pin && flow.status == Status::Changed {
            let what = match policy {
                ChangePolicy::Migrate => "migrate: running instances move to the new version",
                _ => "restart: running instances are ended",
            };
            let _ = writeln!(
                out,
                "\nContacts waiting in the old version (on change {what}):\n"
            );
            for point in &flow.waiting {
                let _ = writeln!(
                    out,
                    "- at `{}` ({}): {}",
                    point.waiting_at, point.source, point.on_change.summary
                );
            }
            out.push('\n');
            continue;
        }
        let affected: Vec<&WaitingPoint> = flow.waiting.iter().filter(|w| w.pin.affected).collect();
        let unaffected = flow.waiting.len() - affected.len();
        if !affected.is_empty() {
            let _ = writeln!(
                out,
                "\nContacts waiting in the old version (pin: running instances finish on their version):\n"
            );
            for point in affected {
                let _ = writeln!(
                    out,
                    "- at `{}` ({}): {}",
                    point.waiting_at, point.source, point.pin.summary
                );
            }
            if unaffected > 0 {
                let _ = writeln!(
                    out,
                    "- {unaffected} other waiting step{} unaffected",
                    if unaffected == 1 { "" } else { "s" }
                );
            }
        }
        out.push('\n');
    }
    if !diff.messages.is_empty() {
        out.push_str("### messages\n\n");
        for message in &diff.messages {
            let used = if message.used_by.is_empty() {
                String::new()
            } else {
                format!(" (sent by {})", quoted_list(&message.used_by))
            };
            let _ = writeln!(
                out,
                "- `{}` {}{used}",
                message.name,
                message.status.as_str()
            );
            for change in &message.changes {
                let _ = writeln!(out, "  - {}", field_change(change));
            }
        }
        out.push('\n');
    }
    if !diff.segments.is_empty() {
        out.push_str("### segments\n\n");
        for segment in &diff.segments {
            let rule = match (&segment.old_rule, &segment.new_rule) {
                (Some(o), Some(n)) => format!(": `{o}` → `{n}`"),
                (Some(o), None) => format!(": was `{o}`"),
                (None, Some(n)) => format!(": `{n}`"),
                (None, None) => String::new(),
            };
            let affects = if segment.affects.is_empty() {
                String::new()
            } else {
                format!(" (affects {})", quoted_list(&segment.affects))
            };
            let _ = writeln!(
                out,
                "- `{}` {}{rule}{affects}",
                segment.name,
                segment.status.as_str()
            );
        }
        out.push('\n');
    }
    if !diff.policy.is_empty() || !diff.settings.is_empty() {
        out.push_str("### policy\n\n");
        for change in diff.policy.iter().chain(diff.settings.iter()) {
            let _ = writeln!(out, "- {}", change_text(change));
        }
        out.push('\n');
    }
    if let Some(impact) = impact {
        out.push_str("### contacts waiting now\n\n");
        if impact.is_empty() {
            out.push_str("Nobody is waiting in the old version.\n");
        }
        for step in impact {
            let _ = writeln!(
                out,
                "- {} waiting in `{}` at `{}` ({}), e.g. {}: {}",
                step.count,
                step.flow,
                step.waiting_at,
                step.source,
                quoted_list(&step.examples),
                step.on_change.summary
            );
        }
    }
    if !diff.strandings.is_empty() {
        while out.ends_with("\n\n") {
            out.pop();
        }
        out.push_str("\n### refused: `on change migrate` would strand waiting instances\n\n");
        for s in &diff.strandings {
            let _ = writeln!(
                out,
                "- error[E0033] flow `{}`: instances waiting at `{}` ({} in the old version): {}",
                s.flow, s.step, s.source, s.reason
            );
        }
        out.push_str(
            "\nLabel the step in both versions (`step NAME: ...`), or use `on change pin` or `on change restart`.\n",
        );
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;
    use std::path::PathBuf;

    fn compiled(flows: &str) -> CompiledProject {
        let messages = "message a: email {\n subject: \"a\"\n body: \"a\"\n}\n\
            message b: email {\n subject: \"b\"\n body: \"b\"\n}\n\
            message intro: email {\n subject: \"i\"\n body: \"i\"\n}\n";
        let project = Project::from_sources(
            PathBuf::from("."),
            vec![(
                PathBuf::from("flows/main.flow"),
                format!("{messages}{flows}"),
            )],
        );
        crate::compile::compile(&project, &crate::config::Config::default())
            .expect("the test project compiles")
    }

    const OLD: &str = "flow f {\n when go\n wait 1h\n send a\n wait 1d\n send b\n}\n";

    #[test]
    fn a_step_inserted_at_the_start_is_one_addition_not_a_shift() {
        let new = "flow f {\n when go\n send intro\n wait 1h\n send a\n wait 1d\n send b\n}\n";
        let diff = diff_projects(&compiled(OLD), &compiled(new));
        let flow = &diff.flows[0];
        assert_eq!(flow.steps.len(), 1, "{:#?}", flow.steps);
        assert_eq!(flow.steps[0].change, StepChangeKind::Added);
        assert_eq!(
            flow.steps[0].new.as_ref().map(|s| s.text.as_str()),
            Some("send intro")
        );
        // Contacts already past the start do not get the new first step; nothing else differs.
        assert!(
            flow.waiting.iter().all(|w| !w.pin.affected),
            "{:#?}",
            flow.waiting
        );
    }

    #[test]
    fn a_changed_wait_is_retimed_and_pinned_contacts_keep_the_old_timing() {
        let new = "flow f {\n when go\n wait 1h\n send a\n wait 2d\n send b\n}\n";
        let diff = diff_projects(&compiled(OLD), &compiled(new));
        let flow = &diff.flows[0];
        assert_eq!(flow.steps.len(), 1);
        assert_eq!(flow.steps[0].change, StepChangeKind::Retimed);
        let first = &flow.waiting[0];
        assert_eq!(first.waiting_at, "wait 1h");
        assert_eq!(
            first.pin.runs_old_form[0].new.as_deref(),
            Some("wait 2d"),
            "{first:#?}"
        );
        let second = &flow.waiting[1];
        assert_eq!(second.waiting_at, "wait 1d");
        assert!(second.pin.affected);
        assert!(second
            .pin
            .summary
            .contains("keeps `wait 1d` (new: `wait 2d`)"));
    }

    #[test]
    fn moving_a_step_into_a_branch_is_a_change_even_with_the_same_steps() {
        let old = "flow f {\n when go\n if contact.vip == true {\n  send a\n }\n send b\n}\n";
        let new = "flow f {\n when go\n if contact.vip == true {\n  send a\n  send b\n }\n}\n";
        let diff = diff_projects(&compiled(old), &compiled(new));
        assert!(!diff.equal);
        assert_eq!(diff.flows[0].steps[0].change, StepChangeKind::Restructured);
    }

    #[test]
    fn impact_reports_waiting_contacts_per_step() {
        let old = compiled(OLD);
        let new = compiled("flow f {\n when go\n wait 1h\n send a\n}\n");
        let diff = diff_projects(&old, &new);
        let point = &diff.flows[0].waiting[1];
        let waiting = vec![Waiting {
            flow: "f".into(),
            step: point.step,
            count: 7,
            examples: vec!["c1".into()],
        }];
        let impact = impact(&old, &diff, &waiting);
        assert_eq!(impact.len(), 1);
        assert_eq!(impact[0].count, 7);
        assert_eq!(impact[0].waiting_at, "wait 1d");
        assert_eq!(
            impact[0].pin.still_runs_removed,
            vec!["wait 1d".to_string(), "send b".to_string()]
        );
    }
}
