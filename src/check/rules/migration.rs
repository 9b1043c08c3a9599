//! `E0033`: `on change migrate` in a new version would strand instances waiting in the old one.
//!
//! ## What it does
//! Turns the [`Stranding`]s that `changes::migrate::strandings` found between a running (or
//! older) version and this one into diagnostics in this version's sources: at the flow's
//! `on change migrate` line (in the template's file for a template instance), naming the old
//! step and where it was.
//!
//! ## Why is this bad?
//! An instance waiting at a step the new version removed, that no `step NAME:` label maps,
//! would have nowhere to go: the version is refused (the daemon keeps running the old one).
//!
//! ## Example
//! ```text
//! # old: step first: wait 1d / send a / wait 2d / send b
//! flow f {
//!     when signed_up
//!     on change migrate          # E0033: instances waiting at `wait 2d` have nowhere to go
//!     step first: wait 1d
//!     send a
//! }
//! ```
//!
//! Must not: decide what strands (that is `changes::migrate`, on the compiled versions).

use crate::changes::migrate::Stranding;
use crate::diagnostic::{Code, Diagnostic};
use crate::project::{Project, SourceUnit};
use crate::syntax::ast::{self, HeaderKind, Span};

/// The diagnostics of `strandings` in `project` (the NEW version).
pub fn diagnostics(project: &Project, strandings: &[Stranding]) -> Vec<Diagnostic> {
    let symbols = project.symbols();
    let mut out = Vec::new();
    for s in strandings {
        let Some(declared) = symbols.flows.get(&s.flow) else {
            continue;
        };
        let (unit, name, body): (&SourceUnit, &ast::Ident, Option<&ast::FlowBody>) =
            match declared.item {
                ast::Item::Flow(d) => (declared.unit, &d.name, Some(&d.body)),
                ast::Item::FlowInstance(d) => match symbols.templates.get(&d.template.name) {
                    Some(t) => match t.item {
                        ast::Item::FlowTemplate(tpl) => (t.unit, &tpl.name, Some(&tpl.body)),
                        _ => (declared.unit, &d.name, None),
                    },
                    None => (declared.unit, &d.name, None),
                },
                _ => continue,
            };
        let policy_line: Option<Span> = body.and_then(|b| {
            b.header.iter().find_map(|h| match h.kind {
                HeaderKind::OnChange { .. } => Some(h.span),
                _ => None,
            })
        });
        let label = match &s.label {
            Some(l) => format!(
                "instances waiting at `step {l}: {}` ({} in the old version) have nowhere to go",
                s.step, s.source
            ),
            None => format!(
                "instances waiting at `{}` ({} in the old version) have nowhere to go",
                s.step, s.source
            ),
        };
        let help = match &s.label {
            Some(l) => format!(
                "give the step that takes over from `{}` the label `step {l}:`, or use `on change pin` (they finish on the old version) or `on change restart` (they end)",
                s.step
            ),
            None => format!(
                "label `{}` in the old version and the step that takes over in this one with one `step NAME:`, or use `on change pin` (they finish on the old version) or `on change restart` (they end)",
                s.step
            ),
        };
        let mut d = Diagnostic::error(
            Code::StrandedInstances,
            unit.path.clone(),
            policy_line.unwrap_or(name.span),
            format!(
                "migrating flow `{}` would strand instances waiting at `{}`: {}",
                s.flow, s.step, s.reason
            ),
        )
        .with_label(label)
        .with_help(help);
        if policy_line.is_some() {
            d = d.with_related(name.span, "this flow");
        }
        out.push(d);
    }
    out
}
