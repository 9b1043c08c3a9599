//! Static checks of a loaded project: names, types, lints.
//!
//! Owns: every error and warning of LANGUAGE.md 6 (codes in `diagnostic::Code`, rules in
//! `rules/`), and their rendering for people (miette), JSON lines and GitHub annotations
//! (`render`). All problems of a project are collected in one run.
//! Must not: lower flows or run anything, or read the clock. The only file access is the
//! existence and text of `file("...")` message bodies.
//!
//! ```
//! use flowc::project::Project;
//! let project = Project::from_sources(
//!     ".".into(),
//!     vec![("flows/a.flow".into(), "flow a {\n    when signed_up\n    send welcom\n}\n".into())],
//! );
//! let problems = flowc::check::check(&project);
//! assert_eq!(problems[0].code.as_str(), "E0002");
//! ```

pub mod command;
pub mod context;
pub mod explain;
pub mod render;
pub mod rules;
pub mod types;

use crate::diagnostic::{Diagnostic, Severity};
use crate::project::Project;
use crate::syntax::ast;
use context::{Context, Scope};

/// Every diagnostic of the project (syntax errors included), sorted by file and position.
pub fn check(project: &Project) -> Vec<Diagnostic> {
    let mut ctx = Context::new(project);
    ctx.diagnostics.extend(project.diagnostics.iter().cloned());
    ctx.diagnostics
        .iter_mut()
        .for_each(rules::syntax_hints::improve);
    rules::duplicates::check(&mut ctx);
    let mut flows = Vec::new();
    for (unit, item) in project.items() {
        match item {
            ast::Item::Segment(d) => rules::segments::check_body(&mut ctx, unit, d),
            ast::Item::Message(d) => rules::messages::check(&mut ctx, unit, d),
            ast::Item::Flow(d) => {
                rules::flows::check(&mut ctx, unit, &d.name, &d.body, Scope::default());
                rules::labels::check(&mut ctx, unit, &d.name, &d.body);
                rules::consent::check_flow(&mut ctx, unit, d);
                rules::message_properties::record_flow(&mut ctx, d);
                flows.push(Sender::Flow(d));
            }
            ast::Item::FlowTemplate(d) => {
                rules::flows::check(&mut ctx, unit, &d.name, &d.body, Scope::new(&d.params));
                rules::labels::check(&mut ctx, unit, &d.name, &d.body);
            }
            ast::Item::FlowInstance(d) => {
                rules::instances::check(&mut ctx, unit, d);
                rules::consent::check_instance(&mut ctx, unit, d);
                rules::message_properties::record_instance(&mut ctx, d);
                flows.push(Sender::Instance(d));
            }
            ast::Item::Policy(d) => {
                for line in &d.lines {
                    if let ast::PolicyKind::QuietHours(q) = &line.kind {
                        rules::quiet_hours::check(&mut ctx, unit, q);
                    }
                }
            }
            ast::Item::Event(d) => {
                rules::event_names::check(&mut ctx, unit, Scope::default(), &d.name)
            }
        }
    }
    rules::segments::cycles(&mut ctx);
    rules::message_properties::check(&mut ctx);
    // After every message was read (their templates' `event.` reads are known by now).
    for sender in flows {
        match sender {
            Sender::Flow(d) => rules::message_events::check_flow(&mut ctx, d),
            Sender::Instance(d) => rules::message_events::check_instance(&mut ctx, d),
        }
    }
    rules::unused::check(&mut ctx);
    let mut diagnostics = ctx.diagnostics;
    // A project declaration that clashes with a stdlib one (reported as E0007 on the
    // project's side) makes the stdlib resolve to it; what follows inside the stdlib is not
    // the user's to fix, so only the clash is shown.
    let clash = diagnostics.iter().any(|d| {
        d.code == crate::diagnostic::Code::DuplicateName
            && d.help.as_deref().is_some_and(|h| h.contains("`stdlib/"))
    });
    // A file that does not parse declares nothing: names it declares would be reported as
    // unknown (and the names it uses as unused). Only its syntax error is shown for them.
    if project.units.iter().any(|u| u.ast.is_none()) {
        use crate::diagnostic::Code;
        diagnostics.retain(|d| {
            !matches!(
                d.code,
                Code::UnknownMessage
                    | Code::UnknownSegment
                    | Code::UnknownTemplate
                    | Code::UnusedSegment
                    | Code::UnusedMessage
            )
        });
    }
    if clash {
        diagnostics.retain(|d| {
            project
                .unit(&d.file)
                .map_or(true, |u| u.origin == crate::project::Origin::Project)
                || matches!(d.code, crate::diagnostic::Code::Syntax)
        });
    }
    let order = |d: &Diagnostic| {
        project
            .units
            .iter()
            .position(|u| u.path == d.file)
            .unwrap_or(usize::MAX)
    };
    diagnostics.sort_by_cached_key(|d| {
        (
            order(d),
            d.span.start,
            d.span.end,
            d.code,
            d.message.clone(),
        )
    });
    diagnostics.dedup();
    diagnostics
}

/// A declaration that sends messages.
enum Sender<'p> {
    Flow(&'p ast::FlowDecl),
    Instance(&'p ast::FlowInstanceDecl),
}

/// How many errors and warnings.
pub fn counts(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    (errors, diagnostics.len() - errors)
}
