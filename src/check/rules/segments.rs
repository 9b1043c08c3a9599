//! Segment declarations: the body is a condition (via `expressions`), and `E0015`, segments
//! that refer to each other in a cycle.
//!
//! ## What it does
//! Follows every segment a segment's body names, and reports a cycle with its path
//! (`a` → `b` → `a`), once.
//!
//! ## Why is this bad?
//! A segment's membership is defined by its body; a segment defined by itself has no
//! meaning, and the engine could not evaluate it.
//!
//! ## Example
//! ```text
//! segment a = b and count(order_completed) > 0
//! segment b = a                                   # E0015: `a` → `b` → `a`
//! ```
//!
//! Must not: check the body's types (that is `expressions`).

use crate::check::context::{Context, Scope};
use crate::check::rules::expressions::{self, Place};
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast::{self, ExprKind, Span};
use std::collections::HashMap;

pub fn check_body(ctx: &mut Context<'_>, unit: &SourceUnit, decl: &ast::SegmentDecl) {
    expressions::condition(
        ctx,
        unit,
        Scope::new(&decl.params),
        &Place::segment(),
        &decl.body,
    );
}

/// The segments named in `expr` (not parameters), with where.
pub fn references(expr: &ast::Expr, params: &[ast::Param], out: &mut Vec<(String, Span)>) {
    let is_param = |name: &str| params.iter().any(|p| p.name.name == name);
    match &expr.kind {
        ExprKind::Name(ident) if !is_param(&ident.name) => {
            out.push((ident.name.clone(), ident.span))
        }
        ExprKind::SegmentCall { name, args } => {
            if !is_param(&name.name) {
                out.push((name.name.clone(), name.span));
            }
            for a in args {
                references(&a.value, params, out);
            }
        }
        ExprKind::List(items) => items.iter().for_each(|e| references(e, params, out)),
        ExprKind::Count {
            filter: Some(f), ..
        } => references(f, params, out),
        ExprKind::Unary { operand, .. } => references(operand, params, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            references(lhs, params, out);
            references(rhs, params, out);
        }
        ExprKind::In { needle, list } => {
            references(needle, params, out);
            references(list, params, out);
        }
        _ => {}
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Active,
    Done,
}

/// `E0015` for every cycle between segments.
pub fn cycles(ctx: &mut Context<'_>) {
    // In source order, so that a cycle is reported at the first segment of it a reader meets.
    let mut graph: Vec<(String, Vec<(String, Span)>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, item) in ctx.project.items() {
        if let ast::Item::Segment(decl) = item {
            if !seen.insert(decl.name.name.as_str()) {
                continue;
            }
            let mut refs = Vec::new();
            references(&decl.body, &decl.params, &mut refs);
            graph.push((decl.name.name.clone(), refs));
        }
    }
    let edges: HashMap<&str, &[(String, Span)]> = graph
        .iter()
        .map(|(n, r)| (n.as_str(), r.as_slice()))
        .collect();
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut found: Vec<Vec<String>> = Vec::new();
    for (name, _) in &graph {
        let mut stack: Vec<&str> = Vec::new();
        visit(name, &edges, &mut marks, &mut stack, &mut found);
    }
    for cycle in found {
        let Some(first) = cycle.first() else { continue };
        let Some((unit, decl)) = ctx.segment(first) else {
            continue;
        };
        let next = cycle.get(1).unwrap_or(first);
        let mut refs = Vec::new();
        references(&decl.body, &decl.params, &mut refs);
        let span = refs
            .iter()
            .find(|(n, _)| n == next)
            .map_or(decl.name.span, |(_, s)| *s);
        let mut path: Vec<String> = cycle.iter().map(|n| format!("`{n}`")).collect();
        path.push(format!("`{first}`"));
        let d = report(unit, span, first, &path.join(" → "), decl.name.span);
        ctx.report(d);
    }
}

fn report(
    unit: &SourceUnit,
    span: Span,
    first: &str,
    path: &str,
    name: Span,
) -> crate::diagnostic::Diagnostic {
    Context::at(
        unit,
        Code::SegmentCycle,
        span,
        format!("segment `{first}` depends on itself: {path}"),
    )
    .with_label("this reference closes the cycle")
    .with_related(name, "the segment")
    .with_help("define one of the segments without the others: a segment's body may use other segments, but not in a circle")
}

fn visit<'g>(
    name: &'g str,
    edges: &HashMap<&'g str, &'g [(String, Span)]>,
    marks: &mut HashMap<&'g str, Mark>,
    stack: &mut Vec<&'g str>,
    found: &mut Vec<Vec<String>>,
) {
    match marks.get(name) {
        Some(Mark::Done) => return,
        Some(Mark::Active) => {
            if let Some(at) = stack.iter().position(|n| *n == name) {
                found.push(stack[at..].iter().map(|n| n.to_string()).collect());
            }
            return;
        }
        None => {}
    }
    let Some(refs) = edges.get(name) else { return };
    marks.insert(name, Mark::Active);
    stack.push(name);
    for (next, _) in refs.iter() {
        if let Some((key, _)) = edges.get_key_value(next.as_str()) {
            visit(key, edges, marks, stack, found);
        }
    }
    stack.pop();
    marks.insert(name, Mark::Done);
}
