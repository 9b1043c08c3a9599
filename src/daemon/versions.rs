//! Old flow versions kept for their running instances.
//!
//! Owns: building the project the daemon runs after a change: the new version's flows, plus
//! every older version (by flow name and hash) that still has running instances, appended with
//! its triggers removed (it starts nobody; its instances finish on it). Their events, segments
//! and messages are re-indexed into the new project (an event or segment the new version no
//! longer has is appended; a message is taken by name from the new version when it still
//! exists, else kept as it was).
//! Must not: change the new version's own flows, or any semantics.

use crate::compile::{
    CompiledFlow, CompiledProject, EventId, EventMatch, Expr, HistoryNeed, MessageId, SegmentId,
    StateKind, Trigger,
};
use std::collections::HashSet;

/// `current` with the flows of `previous` listed in `keep` (indexes into `previous.flows`)
/// that `current` does not have in the same version.
pub fn merge(
    current: &CompiledProject,
    previous: &CompiledProject,
    keep: &HashSet<usize>,
) -> CompiledProject {
    let mut merged = current.clone();
    let mut indexes: Vec<usize> = keep.iter().copied().collect();
    indexes.sort();
    for index in indexes {
        let Some(flow) = previous.flows.get(index) else {
            continue;
        };
        let present = merged
            .flows
            .iter()
            .any(|f| f.name == flow.name && f.hash == flow.hash);
        if present {
            continue;
        }
        let mut remap = Remap {
            previous,
            merged: &mut merged,
        };
        let old = remap.flow(flow);
        merged.flows.push(old);
    }
    merged
}

struct Remap<'a> {
    previous: &'a CompiledProject,
    merged: &'a mut CompiledProject,
}

impl Remap<'_> {
    fn event(&mut self, id: EventId) -> EventId {
        let name = self.previous.event_name(id).to_string();
        if let Some(i) = self.merged.events.iter().position(|e| *e == name) {
            return EventId(i as u16);
        }
        self.merged.events.push(name);
        let need = self
            .previous
            .history
            .get(id.index())
            .cloned()
            .unwrap_or(HistoryNeed {
                keep: false,
                last_only: false,
                horizon: None,
                properties: Vec::new(),
            });
        self.merged.history.push(need);
        EventId((self.merged.events.len() - 1) as u16)
    }

    fn segment(&mut self, id: SegmentId) -> SegmentId {
        let Some(segment) = self.previous.segments.get(id.index()) else {
            return id;
        };
        if let Some(i) = self
            .merged
            .segments
            .iter()
            .position(|s| s.name == segment.name)
        {
            return SegmentId(i as u16);
        }
        let mut copy = segment.clone();
        copy.expr = self.expr(&segment.expr);
        self.merged.segments.push(copy);
        SegmentId((self.merged.segments.len() - 1) as u16)
    }

    fn message(&mut self, id: MessageId) -> MessageId {
        let Some(message) = self.previous.messages.get(id.index()) else {
            return id;
        };
        if let Some(i) = self
            .merged
            .messages
            .iter()
            .position(|m| m.name == message.name)
        {
            return MessageId(i as u16);
        }
        self.merged.messages.push(message.clone());
        MessageId((self.merged.messages.len() - 1) as u16)
    }

    fn event_match(&mut self, m: &EventMatch) -> EventMatch {
        EventMatch {
            event: self.event(m.event),
            filter: m.filter.as_ref().map(|f| self.expr(f)),
        }
    }

    fn expr(&mut self, e: &Expr) -> Expr {
        match e {
            Expr::List(items) => Expr::List(items.iter().map(|i| self.expr(i)).collect()),
            Expr::Segment(s) => Expr::Segment(self.segment(*s)),
            Expr::Count {
                event,
                filter,
                within,
            } => Expr::Count {
                event: self.event(*event),
                filter: filter.as_ref().map(|f| Box::new(self.expr(f))),
                within: *within,
            },
            Expr::Sum {
                event,
                property,
                within,
            } => Expr::Sum {
                event: self.event(*event),
                property: property.clone(),
                within: *within,
            },
            Expr::Last { event, property } => Expr::Last {
                event: self.event(*event),
                property: property.clone(),
            },
            Expr::Since(event) => Expr::Since(self.event(*event)),
            Expr::Not(x) => Expr::Not(Box::new(self.expr(x))),
            Expr::Neg(x) => Expr::Neg(Box::new(self.expr(x))),
            Expr::Binary { op, lhs, rhs } => Expr::Binary {
                op: *op,
                lhs: Box::new(self.expr(lhs)),
                rhs: Box::new(self.expr(rhs)),
            },
            Expr::In { needle, list } => Expr::In {
                needle: Box::new(self.expr(needle)),
                list: Box::new(self.expr(list)),
            },
            other => other.clone(),
        }
    }

    fn flow(&mut self, flow: &CompiledFlow) -> CompiledFlow {
        let mut copy = flow.clone();
        // An old version starts nobody.
        copy.triggers = Vec::<Trigger>::new();
        copy.only_if = flow.only_if.as_ref().map(|e| self.expr(e));
        copy.exit_on = flow.exit_on.iter().map(|m| self.event_match(m)).collect();
        copy.exit_if = flow.exit_if.iter().map(|e| self.expr(e)).collect();
        if let (Some(goal), Some(old)) = (copy.goal.as_mut(), flow.goal.as_ref()) {
            goal.event = self.event(old.event);
            goal.filter = old.filter.as_ref().map(|f| self.expr(f));
        }
        for state in &mut copy.states {
            self.state(&mut state.kind);
        }
        copy
    }

    fn state(&mut self, kind: &mut StateKind) {
        match kind {
            StateKind::Send { message, .. } => *message = self.message(*message),
            StateKind::WaitFor { arms, .. } => {
                for arm in arms.iter_mut() {
                    arm.event = self.event_match(&arm.event);
                }
            }
            StateKind::Branch { conditions, .. } => {
                for (condition, _) in conditions.iter_mut() {
                    *condition = self.expr(condition);
                }
            }
            StateKind::Set { value, .. } => *value = self.expr(value),
            _ => {}
        }
    }
}
