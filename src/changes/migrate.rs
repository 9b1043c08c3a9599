//! The migration policy at a version change (`on change pin | migrate | restart`): where each
//! instance of an old flow version goes in the new one, what its timer becomes, and which
//! waiting steps `migrate` would strand.
//!
//! Owns: mapping the places where an instance of OLD can wait (see `diff::waiting_points`) to
//! NEW: by the `step NAME:` label of the step it waits at, else by the step `flowc diff`
//! matches at that place (`diff::step_pairs`); the timer rules of a moved instance; the list
//! of [`Stranding`]s (a waiting step that nothing maps) that make a version refused.
//! Must not: read files, the clock or the store, or write anything: these are pure functions,
//! so the daemon's hot reload, `flowc rollback`, `flowc diff`, `flowc check --against` and tests
//! all get the same answer. The policy is the NEW version's line: it says how NEW takes over.
//! `restart` ends instances only when the flow changed in substance (header lines, steps or
//! how they connect); an edit that only moved source lines moves them by place instead.
//!
//! Timer rules of a moved instance (docs/runtime.md, "Hot reload"):
//! - a `wait` whose duration changed keeps its start and takes the new duration; a `wait for`
//!   whose timeout changed keeps its start and takes the new timeout; a `wait until` whose
//!   time changed waits for the next new time of day from the change; an end that has already
//!   passed falls due at the change itself (never in the past);
//! - otherwise the timer is kept as it is (a deferred send stays deferred until its quiet
//!   hours end); the trigger properties it carried, and the event a `wait for` received, are
//!   kept as they were.

use crate::changes::diff::{changed_in_substance, step_pairs, step_text, waiting_points};
use crate::compile::{ChangePolicy, CompiledFlow, CompiledProject, StateId, StateKind};
use crate::engine::time::{self, Instant};
use crate::engine::Instance;
use serde::Serialize;

/// What a version change does to the instances waiting at one place of OLD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Fate {
    /// `pin`, or the flow did not change: it finishes on the version it is in.
    KeepsOldVersion,
    /// `migrate`: it moves to the new version.
    Moves {
        /// The state it holds in NEW (`Instance::state`).
        to: StateId,
        /// The step of NEW it then waits at.
        to_step: StateId,
        /// The label that mapped it; `None` when the step's place did.
        label: Option<String>,
    },
    /// `restart`: it ends ("exited: flow changed"); nothing more is sent to it by this flow.
    Ends,
    /// `migrate`, and nothing maps the step it waits at: the new version is refused.
    Stranded { reason: String },
}

/// One place of OLD where instances wait, and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointFate {
    /// The state an instance waiting here holds in OLD (`Instance::state`).
    pub held: StateId,
    /// The step it waits at in OLD.
    pub step: StateId,
    pub fate: Fate,
}

/// What a version change does to one flow version of OLD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPlan {
    /// The policy applied: the new version's (`pin` when the flow was removed), except that
    /// `restart` applies as `migrate` when the flow did not change in substance
    /// (`diff::changed_in_substance`: only source lines, labels or message texts moved).
    pub policy: ChangePolicy,
    /// Whether NEW has the flow in another version.
    pub changed: bool,
    pub points: Vec<PointFate>,
}

impl FlowPlan {
    /// The fate of an instance holding `state` (the first waiting place that holds it).
    pub fn fate_of(&self, state: StateId) -> Option<&PointFate> {
        self.points.iter().find(|p| p.held == state)
    }
}

/// The plan of the flow version `old` of `old_project` when `new` (its flow of the same name
/// in `new_project`, if any) goes live.
pub fn plan_flow(
    old_project: &CompiledProject,
    old: &CompiledFlow,
    new_project: &CompiledProject,
    new: Option<&CompiledFlow>,
) -> FlowPlan {
    let points = waiting_points(old_project, old);
    let Some(new) = new.filter(|n| n.hash != old.hash) else {
        return FlowPlan {
            policy: new.map_or(ChangePolicy::Pin, |n| n.change.policy),
            changed: false,
            points: points
                .into_iter()
                .map(|(held, step, _, _)| PointFate {
                    held: StateId(held),
                    step: StateId(step),
                    fate: Fate::KeepsOldVersion,
                })
                .collect(),
        };
    };
    // An edit that changes nothing but source lines (or labels, or message texts) restarts
    // nobody: the instances move by place to the same steps.
    let policy = match new.change.policy {
        ChangePolicy::Restart if !changed_in_substance(old_project, old, new_project, new) => {
            ChangePolicy::Migrate
        }
        policy => policy,
    };
    let pairs = match policy {
        ChangePolicy::Migrate => step_pairs(old_project, old, new_project, new),
        _ => Vec::new(),
    };
    let points = points
        .into_iter()
        .map(|(held, step, _, _)| {
            let (held, step) = (StateId(held), StateId(step));
            let fate = match policy {
                ChangePolicy::Pin => Fate::KeepsOldVersion,
                ChangePolicy::Restart => Fate::Ends,
                ChangePolicy::Migrate => {
                    map_point(old_project, old, new_project, new, &pairs, step)
                }
            };
            PointFate { held, step, fate }
        })
        .collect();
    FlowPlan {
        policy,
        changed: true,
        points,
    }
}

/// Where `migrate` sends an instance waiting at `step` of OLD.
fn map_point(
    old_project: &CompiledProject,
    old: &CompiledFlow,
    new_project: &CompiledProject,
    new: &CompiledFlow,
    pairs: &[(StateId, StateId)],
    step: StateId,
) -> Fate {
    let old_label = old.change.label_of(step);
    let by_label = old_label.and_then(|l| new.change.state_of(l).map(|s| (s, Some(l.to_string()))));
    let target = by_label.or_else(|| {
        pairs
            .iter()
            .find(|(o, _)| *o == step)
            .map(|(_, n)| (*n, None))
    });
    let (old_text, _) = step_text(old_project, old, step);
    let Some((to_step, label)) = target else {
        let reason = match old_label {
            Some(l) => format!(
                "the new version has no step labelled `{l}` and no step at the place of `{old_text}`"
            ),
            None => format!("the new version has no step at the place of `{old_text}`"),
        };
        return Fate::Stranded { reason };
    };
    let (Some(from), Some(onto)) = (
        old.states.get(step.index()).map(|s| &s.kind),
        new.states.get(to_step.index()).map(|s| &s.kind),
    ) else {
        return Fate::Stranded {
            reason: "the step is missing from the compiled flow".to_string(),
        };
    };
    let (new_text, _) = step_text(new_project, new, to_step);
    let to = match (from, onto) {
        // A timed wait carries on in the new wait: it holds the step after it.
        (
            StateKind::Wait { .. } | StateKind::WaitUntil { .. },
            StateKind::Wait { next, .. } | StateKind::WaitUntil { next, .. },
        ) => *next,
        (StateKind::WaitFor { .. }, StateKind::WaitFor { .. }) => to_step,
        // Its timer is not a `wait for` deadline, or a `wait for` has no timer left without
        // its events: either way the move would change what the wait means.
        (StateKind::WaitFor { .. }, _) | (_, StateKind::WaitFor { .. }) => {
            return Fate::Stranded {
                reason: format!(
                    "`{old_text}` would move to `{new_text}`, and only a `wait for` can take over a `wait for`"
                ),
            };
        }
        // A wait, or a send deferred by quiet hours, that maps onto another step: the
        // instance runs that step when its timer falls due.
        _ => to_step,
    };
    Fate::Moves { to, to_step, label }
}

/// The plan of every flow version of `old` (indexed like `old.flows`) when `new` goes live.
pub fn plan(old: &CompiledProject, new: &CompiledProject) -> Vec<FlowPlan> {
    old.flows
        .iter()
        .map(|flow| {
            let current = new.flows.iter().find(|f| f.name == flow.name);
            plan_flow(old, flow, new, current)
        })
        .collect()
}

/// A waiting step of OLD that `on change migrate` in NEW maps nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stranding {
    pub flow: String,
    /// The OLD flow version (`CompiledFlow::hash`).
    pub old_version: String,
    /// The step in OLD, in source syntax (`wait 2d`), and its `file:line` there.
    pub step: String,
    pub source: String,
    /// Its label in OLD, if it has one.
    pub label: Option<String>,
    pub reason: String,
}

/// Every waiting step of every flow version of `old` that `on change migrate` in `new` would
/// strand. Empty means `new` may go live over `old`.
pub fn strandings(old: &CompiledProject, new: &CompiledProject) -> Vec<Stranding> {
    let mut out = Vec::new();
    for (flow, plan) in old.flows.iter().zip(plan(old, new)) {
        for point in &plan.points {
            if let Fate::Stranded { reason } = &point.fate {
                let (step, source) = step_text(old, flow, point.step);
                out.push(Stranding {
                    flow: flow.name.clone(),
                    old_version: flow.hash.clone(),
                    step,
                    source,
                    label: flow.change.label_of(point.step).map(str::to_string),
                    reason: reason.clone(),
                });
            }
        }
    }
    out
}

/// Moves `instance`, waiting at `from_step` of `old`, to the step of `new` that `fate` says
/// (a [`Fate::Moves`]), applying the timer rules at `now` in the contact's timezone `tz`.
/// The caller sets `instance.flow` to `new`'s id. Other fates leave it unchanged.
pub fn move_instance(
    instance: &mut Instance,
    old: &CompiledFlow,
    from_step: StateId,
    new: &CompiledFlow,
    fate: &Fate,
    now: Instant,
    tz: chrono_tz::Tz,
) {
    let Fate::Moves { to, to_step, .. } = fate else {
        return;
    };
    instance.state = *to;
    let from = old.states.get(from_step.index()).map(|s| &s.kind);
    let onto = new.states.get(to_step.index()).map(|s| &s.kind);
    let Some(wake) = instance.wake else {
        return;
    };
    let retimed = match (from, onto) {
        (Some(StateKind::Wait { duration: a, .. }), Some(StateKind::Wait { duration: b, .. }))
        | (
            Some(StateKind::WaitFor { timeout: a, .. }),
            Some(StateKind::WaitFor { timeout: b, .. }),
        ) if a != b => Some(time::add(time::sub(wake, *a, tz), *b, tz)),
        (
            Some(StateKind::WaitUntil {
                minute_of_day: a, ..
            }),
            Some(StateKind::WaitUntil {
                minute_of_day: b, ..
            }),
        ) if a != b => Some(time::next_time_of_day(now, *b, tz, true)),
        _ => None,
    };
    if let Some(end) = retimed {
        instance.wake = Some(end.max(now));
    }
}

/// Sets a contact's next wake-up (`ContactState::wake`, which the daemon's timer index follows)
/// and `pending` after instances were moved or ended, by the engine's own rule (the end of its
/// `settle`): the earliest of the segment wake-up, every instance's timer and the next
/// anniversary.
pub fn rewake(state: &mut crate::engine::ContactState) {
    let mut wake = state.segment_wake;
    let mut consider = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
    for instance in &state.instances {
        if let Some(w) = instance.wake {
            consider(w);
        }
    }
    if let Some(a) = state.anniversary_wake {
        consider(a);
    }
    state.wake = wake;
    state.pending = !state.instances.is_empty() || state.segment_wake.is_some();
}

/// The timezone the engine uses for a contact: its `timezone` trait, else `default`.
pub fn contact_timezone(traits: &crate::engine::Traits, default: &str) -> chrono_tz::Tz {
    traits
        .get("timezone")
        .and_then(crate::engine::Trait::as_str)
        .and_then(|s| s.parse().ok())
        .or_else(|| default.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// The messages an instance holding `held` in `flow` is sent when its wait ends (a `wait for`
/// by its timeout), before it waits again, branches or ends, in order. Exits, consent and
/// frequency caps are not judged: a skipped send is still listed (the dry-run file has it).
pub fn sends_when_due(
    project: &CompiledProject,
    flow: &CompiledFlow,
    held: StateId,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = match flow.states.get(held.index()).map(|s| &s.kind) {
        Some(StateKind::WaitFor { on_timeout, .. }) => *on_timeout,
        _ => held,
    };
    for _ in 0..=flow.states.len() {
        let Some(state) = flow.states.get(at.index()) else {
            break;
        };
        at = match &state.kind {
            StateKind::Send { message, next } => {
                if let Some(m) = project.messages.get(message.index()) {
                    out.push(m.name.clone());
                }
                *next
            }
            StateKind::Set { next, .. } | StateKind::Unsubscribe { next, .. } => *next,
            _ => break,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::FlowId;
    use crate::project::Project;
    use std::path::PathBuf;

    fn compiled(flow: &str) -> CompiledProject {
        let messages: String = ["a", "b", "c", "intro"]
            .iter()
            .map(|m| format!("message {m}: email {{\n subject: \"{m}\"\n body: \"{m}\"\n}}\n"))
            .collect();
        let project = Project::from_sources(
            PathBuf::from("."),
            vec![(
                PathBuf::from("flows/main.flow"),
                format!("{messages}{flow}"),
            )],
        );
        crate::compile::compile(&project, &crate::config::Config::default())
            .expect("the test project compiles")
    }

    fn fates(old: &str, new: &str) -> (CompiledProject, CompiledProject, Vec<PointFate>) {
        let (o, n) = (compiled(old), compiled(new));
        let plan = plan(&o, &n).remove(0);
        (o, n, plan.points)
    }

    const OLD: &str = "flow f {\n when go\n on change migrate\n step first: wait 1h\n send a\n wait 2h\n send b\n}\n";

    #[test]
    fn a_label_maps_a_wait_even_when_steps_before_it_were_added() {
        let new = "flow f {\n when go\n on change migrate\n send intro\n step first: wait 1h\n send c\n wait 2h\n send b\n}\n";
        let (_, n, points) = fates(OLD, new);
        let Fate::Moves { to, label, .. } = &points[0].fate else {
            panic!("{points:?}")
        };
        assert_eq!(label.as_deref(), Some("first"));
        // It holds the step after the new `wait 1h`: `send c`.
        assert_eq!(sends_when_due(&n, &n.flows[0], *to), vec!["c".to_string()]);
        // The unlabelled `wait 2h` is matched by its place.
        let Fate::Moves { to, label, .. } = &points[1].fate else {
            panic!("{points:?}")
        };
        assert_eq!(label, &None);
        assert_eq!(sends_when_due(&n, &n.flows[0], *to), vec!["b".to_string()]);
    }

    #[test]
    fn a_removed_wait_without_a_label_strands_and_a_label_rescues_it() {
        let new =
            "flow f {\n when go\n on change migrate\n step first: wait 1h\n send a\n send b\n}\n";
        let (o, n, points) = fates(OLD, new);
        assert!(matches!(points[0].fate, Fate::Moves { .. }), "{points:?}");
        assert!(
            matches!(points[1].fate, Fate::Stranded { .. }),
            "{points:?}"
        );
        let stranded = strandings(&o, &n);
        assert_eq!(stranded.len(), 1);
        assert_eq!(stranded[0].step, "wait 2h");
        assert_eq!(stranded[0].source, "flows/main.flow:22");
        // Labelling the old wait and a new step with one name maps it.
        let old = OLD.replace(" wait 2h", " step second: wait 2h");
        let new = "flow f {\n when go\n on change migrate\n step first: wait 1h\n send a\n step second: wait 30min\n send b\n}\n";
        assert!(strandings(&compiled(&old), &compiled(new)).is_empty());
        // Under pin and restart nothing strands.
        for policy in ["pin", "restart"] {
            let new = format!("flow f {{\n when go\n on change {policy}\n send a\n}}\n");
            assert!(strandings(&o, &compiled(&new)).is_empty(), "{policy}");
        }
    }

    #[test]
    fn restart_ends_and_pin_keeps_every_waiting_instance() {
        let (_, _, points) = fates(
            OLD,
            &OLD.replace("migrate", "restart")
                .replace("send b", "send c"),
        );
        assert!(points.iter().all(|p| p.fate == Fate::Ends), "{points:?}");
        let (_, _, points) = fates(
            OLD,
            &OLD.replace("migrate", "pin").replace("send b", "send c"),
        );
        assert!(
            points.iter().all(|p| p.fate == Fate::KeepsOldVersion),
            "{points:?}"
        );
    }

    #[test]
    fn restart_after_an_edit_that_only_moves_lines_moves_instances_instead() {
        let old = OLD.replace("migrate", "restart");
        let new = format!("\n\n{old}");
        let (_, _, points) = fates(&old, &new);
        assert!(
            points.iter().all(|p| matches!(p.fate, Fate::Moves { .. })),
            "{points:?}"
        );
    }

    #[test]
    fn a_retimed_wait_keeps_its_start_and_takes_the_new_duration() {
        let new = OLD.replace("wait 2h", "wait 3h");
        let (o, n, points) = fates(OLD, &new);
        let point = &points[1];
        // Entered the `wait 2h` at 1000: due at 1000 + 2h.
        let mut instance = Instance::new(1, FlowId(0), point.held, 0, false, Default::default());
        instance.wake = Some(1000 + 7200);
        let tz = chrono_tz::UTC;
        move_instance(
            &mut instance,
            &o.flows[0],
            point.step,
            &n.flows[0],
            &point.fate,
            2000,
            tz,
        );
        assert_eq!(instance.wake, Some(1000 + 3 * 3600));
        // Shortened below what has already passed: due at the change, not in the past.
        let new = OLD.replace("wait 2h", "wait 10min");
        let (o, n, points) = fates(OLD, &new);
        instance.wake = Some(1000 + 7200);
        move_instance(
            &mut instance,
            &o.flows[0],
            points[1].step,
            &n.flows[0],
            &points[1].fate,
            5000,
            tz,
        );
        assert_eq!(instance.wake, Some(5000));
    }

    #[test]
    fn a_wait_for_cannot_take_over_a_timed_wait() {
        let old = "flow f {\n when go\n on change migrate\n step s: wait 1h\n send a\n}\n";
        let new =
            "flow f {\n when go\n on change migrate\n step s: wait for x up to 1h\n send a\n}\n";
        let (_, _, points) = fates(old, new);
        let Fate::Stranded { reason } = &points[0].fate else {
            panic!("{points:?}")
        };
        assert!(reason.contains("only a `wait for`"), "{reason}");
    }
}
