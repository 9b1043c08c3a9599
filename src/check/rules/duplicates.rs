//! `E0007` (two declarations share one name) and `E0022` (more than one `policy`).
//!
//! ## What it does
//! Segments, messages, flows, flow templates and event schemas of every file of the project,
//! and of the stdlib modules it uses, share one namespace: a name is declared once. Inside a
//! declaration, a parameter, a message field and an event property are also given once.
//!
//! ## Why is this bad?
//! With two `cart_reminder` messages, which one does `send cart_reminder` send? flowc would
//! have to pick one silently.
//!
//! ## Example
//! ```text
//! segment vip = count(order_completed) > 5
//! message vip: email { subject: "Hi" body: "..." }     # E0007
//! ```
//!
//! Must not: resolve references (the first declaration wins for the other rules).

use crate::check::context::Context;
use crate::diagnostic::{line_column, Code};
use crate::project::{Origin, SourceUnit};
use crate::syntax::ast::{self, Span};
use std::collections::HashMap;

pub fn check(ctx: &mut Context<'_>) {
    let project = ctx.project;
    // The stdlib first: a user's declaration that clashes with one it imports is the one
    // reported (the stdlib is not the user's to change).
    let mut order: Vec<&SourceUnit> = project
        .units
        .iter()
        .filter(|u| u.origin == Origin::Stdlib)
        .collect();
    order.extend(project.units.iter().filter(|u| u.origin == Origin::Project));
    let mut first: HashMap<&str, (&SourceUnit, &ast::Ident, &'static str)> = HashMap::new();
    let mut policy: Option<(&SourceUnit, Span)> = None;
    for unit in order {
        let Some(file) = &unit.ast else { continue };
        for item in &file.items {
            if let ast::Item::Policy(p) = item {
                let keyword = Span::new(
                    p.span.start,
                    (p.span.start + "policy".len()).min(p.span.end),
                );
                match policy {
                    None => policy = Some((unit, keyword)),
                    Some((first_unit, first_span)) => {
                        let mut d = Context::at(
                            unit,
                            Code::DuplicatePolicy,
                            keyword,
                            "a second `policy` block",
                        )
                        .with_label("second policy");
                        if first_unit.path == unit.path {
                            d = d.with_related(first_span, "first policy here");
                        }
                        let (line, _) = line_column(&first_unit.text, first_span.start);
                        ctx.report(d.with_help(format!(
                            "a project has one policy (the first is in `{}` line {line}); move these lines into it",
                            first_unit.path.display()
                        )));
                    }
                }
                continue;
            }
            inner_duplicates(ctx, unit, item);
            let Some(name) = item.name() else { continue };
            let kind = kind(item);
            match first.get(name.name.as_str()) {
                None => {
                    first.insert(name.name.as_str(), (unit, name, kind));
                }
                Some((first_unit, first_name, first_kind)) => {
                    let mut d = Context::at(
                        unit,
                        Code::DuplicateName,
                        name.span,
                        format!("the name `{}` is declared twice", name.name),
                    )
                    .with_label(format!("{kind} `{}` again", name.name));
                    let (line, _) = line_column(&first_unit.text, first_name.span.start);
                    let help = if first_unit.path == unit.path {
                        d = d.with_related(
                            first_name.span,
                            format!("first declared here as {first_kind}"),
                        );
                        "rename one of them: segments, messages, flows, templates and events share one namespace".to_string()
                    } else {
                        format!(
                            "`{}` is already {first_kind} in `{}` line {line}; rename one of them (every file of a project, and the stdlib modules it uses, share one namespace)",
                            name.name,
                            first_unit.path.display()
                        )
                    };
                    ctx.report(d.with_help(help));
                }
            }
        }
    }
}

fn kind(item: &ast::Item) -> &'static str {
    match item {
        ast::Item::Segment(_) => "a segment",
        ast::Item::Message(_) => "a message",
        ast::Item::Flow(_) | ast::Item::FlowInstance(_) => "a flow",
        ast::Item::FlowTemplate(_) => "a flow template",
        ast::Item::Event(_) => "an event",
        ast::Item::Policy(_) => "the policy",
    }
}

/// Parameters, message fields and event properties given twice.
fn inner_duplicates(ctx: &mut Context<'_>, unit: &SourceUnit, item: &ast::Item) {
    let (names, what): (Vec<&ast::Ident>, &str) = match item {
        ast::Item::Segment(d) => (d.params.iter().map(|p| &p.name).collect(), "parameter"),
        ast::Item::FlowTemplate(d) => (d.params.iter().map(|p| &p.name).collect(), "parameter"),
        ast::Item::Message(d) => (d.fields.iter().map(|f| &f.name).collect(), "field"),
        ast::Item::Event(d) => (d.properties.iter().map(|p| &p.name).collect(), "property"),
        _ => return,
    };
    for (index, name) in names.iter().enumerate() {
        if let Some(first) = names[..index].iter().find(|n| n.name == name.name) {
            let d = Context::at(
                unit,
                Code::DuplicateName,
                name.span,
                format!("the {what} `{}` is given twice", name.name),
            )
            .with_label(format!("{what} again"))
            .with_related(first.span, "first given here")
            .with_help(format!("keep one `{}`", name.name));
            ctx.report(d);
        }
    }
}
