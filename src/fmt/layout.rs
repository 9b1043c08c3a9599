//! The canonical layout of one parsed `.flow` file: syntax tree + original text → new text.
//!
//! Owns: indentation, line breaks, blank lines, parentheses by precedence, string escapes and
//! where every comment goes. The original text is read only for what the tree does not keep:
//! comments, blank lines, the positions of braces, trailing commas and line breaks the user
//! chose, and the spelling of number literals (`49.90` stays `49.90`).
//! Must not: read or write files, reorder anything (header lines keep their place among the
//! steps, so a misplaced header is still reported by `flowc check`), or change meaning.
//!
//! Rules, in short:
//! - 4 spaces per level; one declaration after another with one blank line between them
//!   (consecutive `use` lines stay together); inside blocks at most one blank line, where the
//!   user put one;
//! - an own-line comment stays before the element that follows it; a comment at the end of a
//!   line stays at the end of that line (two spaces before `#`); a comment inside an
//!   expression that is written on one line moves to its own line before the statement;
//! - a condition or segment body whose `and`/`or` chain does not fit in [`WIDTH`] columns, or
//!   that the user wrote over several lines, is written one operand per line, each line after
//!   the first starting with the operator;
//! - an argument or parameter list that does not fit, holds a comment, or ends in a trailing
//!   comma is written one entry per line, each with a trailing comma.

use crate::syntax::ast::*;

/// The line width that long conditions and argument lists are wrapped at.
pub const WIDTH: usize = 100;
const INDENT: &str = "    ";

/// The canonical text of `file`, which was parsed from `source`.
pub fn layout(source: &str, file: &SourceFile) -> String {
    let mut printer = Printer {
        source,
        comments: &file.comments,
        next_comment: 0,
        out: String::with_capacity(source.len() + 64),
        depth: 0,
        last_end: 0,
        block_start: true,
        force_blank: false,
        first_line: None,
        label: None,
    };
    printer.file(file);
    printer.finish()
}

/// A top-level element in source order.
enum TopLevel<'a> {
    Use(&'a Use),
    Item(&'a Item),
}

impl TopLevel<'_> {
    fn start(&self) -> usize {
        match self {
            TopLevel::Use(u) => u.span.start,
            TopLevel::Item(i) => i.span().start,
        }
    }
}

/// The kind of a top-level element, for blank lines between them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Use,
    Segment,
    Instance,
    Other,
}

impl Kind {
    fn of(element: &TopLevel<'_>) -> Kind {
        match element {
            TopLevel::Use(_) => Kind::Use,
            TopLevel::Item(Item::Segment(_)) => Kind::Segment,
            TopLevel::Item(Item::FlowInstance(_)) => Kind::Instance,
            TopLevel::Item(_) => Kind::Other,
        }
    }
    fn groups(self) -> bool {
        self != Kind::Other
    }
}

/// A line of a flow body in source order.
enum FlowLine<'a> {
    Header(&'a HeaderLine),
    Step(&'a Step),
}

struct Printer<'a> {
    source: &'a str,
    comments: &'a [Comment],
    next_comment: usize,
    out: String,
    depth: usize,
    /// The source offset up to which everything has been written.
    last_end: usize,
    /// No blank line before the next element (it opens a block).
    block_start: bool,
    /// A blank line before the next element, whatever the source had.
    force_blank: bool,
    /// Where the first line of the current top-level element starts in `out` (after the
    /// comments before it).
    first_line: Option<usize>,
    /// `step NAME: ` of the step being written, put after the indentation of its first line.
    label: Option<String>,
}

/// How an expression after a keyword is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Plain,
    /// The filter of an awaited event, where a top-level `or` needs parentheses.
    WaitFilter,
}

impl<'a> Printer<'a> {
    // ───────────── lines and comments ─────────────

    fn pending(&self) -> Option<&'a Comment> {
        self.comments.get(self.next_comment)
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str(INDENT);
        }
    }

    fn column(&self) -> usize {
        let line_start = self.out.rfind('\n').map_or(0, |i| i + 1);
        self.out[line_start..].chars().count()
    }

    fn blank_before(&mut self, pos: usize) {
        let user_blank = !self.block_start
            && pos >= self.last_end
            && self
                .source
                .get(self.last_end..pos)
                .is_some_and(has_blank_line);
        if (self.force_blank || user_blank) && !self.out.is_empty() {
            self.out.push('\n');
        }
        self.force_blank = false;
    }

    fn own_line_comment(&mut self, comment: &Comment, blank_check: bool) {
        if blank_check {
            self.blank_before(comment.span.start);
        }
        self.indent();
        self.out.push_str(comment.text.trim_end());
        self.out.push('\n');
        self.last_end = self.last_end.max(comment.span.end);
        self.block_start = false;
        self.next_comment += 1;
    }

    /// Writes the comments that start before `pos` on lines of their own.
    fn leading(&mut self, pos: usize) {
        while let Some(comment) = self.pending() {
            if comment.span.start >= pos {
                break;
            }
            self.own_line_comment(comment, true);
        }
    }

    /// Starts an output line for an element whose source starts at `start`; comments inside
    /// the element up to `hoist_end` are written before it, on lines of their own.
    fn begin(&mut self, start: usize, hoist_end: usize) {
        self.leading(start);
        self.blank_before(start);
        while let Some(comment) = self.pending() {
            if comment.span.start >= hoist_end {
                break;
            }
            self.own_line_comment(comment, false);
        }
        if self.first_line.is_none() {
            self.first_line = Some(self.out.len());
        }
        self.indent();
        if let Some(label) = self.label.take() {
            self.out.push_str(&label);
        }
    }

    /// Ends the current output line, whose source ended at `source_end`, with the comment
    /// that followed it on the same source line, if any.
    fn end(&mut self, source_end: usize) {
        if let Some(comment) = self.pending() {
            let same_line = comment.span.start >= source_end
                && self
                    .source
                    .get(source_end..comment.span.start)
                    .is_some_and(|gap| gap.chars().all(|c| matches!(c, ' ' | '\t' | ';' | ',')));
            if same_line {
                self.out.push_str("  ");
                self.out.push_str(comment.text.trim_end());
                self.next_comment += 1;
                self.last_end = self.last_end.max(comment.span.end);
            }
        }
        self.last_end = self.last_end.max(source_end);
        self.out.push('\n');
        self.block_start = false;
    }

    /// A whole element on one line.
    fn line(&mut self, span: Span, text: &str) {
        self.begin(span.start, span.end);
        self.out.push_str(text);
        self.end(span.end);
    }

    /// Writes `{`, the children and `}` (the line is not ended after `}`). `open` and `close`
    /// are the source offsets of the braces.
    fn braced(&mut self, open: usize, close: usize, empty: bool, children: impl FnOnce(&mut Self)) {
        let has_comments = self.pending().is_some_and(|c| c.span.start < close);
        if empty && !has_comments {
            self.out.push_str("{}");
            return;
        }
        self.out.push('{');
        self.end(open + 1);
        self.depth += 1;
        self.block_start = true;
        children(self);
        self.leading(close);
        self.depth -= 1;
        self.indent();
        self.out.push('}');
    }

    fn finish(mut self) -> String {
        self.leading(usize::MAX);
        let mut out = self.out;
        while out.ends_with("\n\n") {
            out.pop();
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    // ───────────── source scanning ─────────────

    /// The offset of the first `wanted` at or after `from`, skipping spaces, comments and
    /// strings.
    fn find(&self, from: usize, wanted: u8) -> usize {
        let bytes = self.source.as_bytes();
        let mut index = from;
        while index < bytes.len() {
            match bytes[index] {
                b if b == wanted => return index,
                b'#' => {
                    while index < bytes.len() && !matches!(bytes[index], b'\n' | b'\r') {
                        index += 1;
                    }
                    continue;
                }
                b'"' => {
                    index += 1;
                    while index < bytes.len() && !matches!(bytes[index], b'"' | b'\n') {
                        index += if bytes[index] == b'\\' { 2 } else { 1 };
                    }
                }
                _ => {}
            }
            index += 1;
        }
        from
    }

    /// Whether the first token at or after `from` is a comma (a trailing comma before `)`).
    fn comma_follows(&self, from: usize) -> bool {
        let bytes = self.source.as_bytes();
        let mut index = from;
        while index < bytes.len() {
            match bytes[index] {
                b' ' | b'\t' | b'\n' | b'\r' => index += 1,
                b'#' => {
                    while index < bytes.len() && !matches!(bytes[index], b'\n' | b'\r') {
                        index += 1;
                    }
                }
                b',' => return true,
                _ => return false,
            }
        }
        false
    }

    fn has_comment_in(&self, start: usize, end: usize) -> bool {
        // Comments are in source order: stop at the first one past `end`.
        self.comments[self.next_comment..]
            .iter()
            .take_while(|c| c.span.start < end)
            .any(|c| c.span.start >= start)
    }

    fn spans_lines(&self, start: usize, end: usize) -> bool {
        self.source
            .get(start..end)
            .is_some_and(|text| text.contains(['\n', '\r']))
    }

    // ───────────── file ─────────────

    fn file(&mut self, file: &'a SourceFile) {
        let mut elements: Vec<TopLevel<'a>> = file.uses.iter().map(TopLevel::Use).collect();
        elements.extend(file.items.iter().map(TopLevel::Item));
        elements.sort_by_key(TopLevel::start);
        // One blank line between declarations, except in a run of one-line declarations of
        // one kind (`use` lines, `flow x = t(...)` instances, one-line segments) that the user
        // wrote without blank lines between them.
        let mut previous: Option<(Kind, bool)> = None;
        for element in &elements {
            let kind = Kind::of(element);
            let may_group = matches!(previous, Some((k, true)) if k == kind && kind.groups());
            if previous.is_some() && !may_group {
                self.force_blank = true;
            }
            let start = self.out.len();
            match element {
                TopLevel::Use(u) => self.line(u.span, &format!("use stdlib/{}", u.module.name)),
                TopLevel::Item(item) => self.item(item),
            }
            let own_lines = self.first_line.take().unwrap_or(start);
            let single = self.out[own_lines..].matches('\n').count() == 1;
            let blank = self.out[..start].ends_with("\n\n") || self.out[start..].starts_with('\n');
            if may_group && !single && !blank {
                self.out.insert(start, '\n');
            }
            previous = Some((kind, single));
        }
    }

    fn item(&mut self, item: &'a Item) {
        match item {
            Item::Segment(d) => self.segment(d),
            Item::Message(d) => self.message(d),
            Item::Flow(d) => {
                let open = d.body.span.start;
                self.begin(d.span.start, open + 1);
                self.out.push_str(&format!("flow {} ", d.name.name));
                self.flow_body(&d.body);
                self.end(d.span.end);
            }
            Item::FlowTemplate(d) => {
                let open_paren = self.find(d.name.span.end, b'(');
                let close_paren = match d.params.last() {
                    Some(last) => self.find(last.span.end, b')'),
                    None => self.find(open_paren, b')'),
                };
                let head = format!(
                    "flow template {}({}) {{",
                    d.name.name,
                    params_text(&d.params)
                );
                let explode =
                    self.explode_params(&d.params, open_paren, close_paren, head.chars().count());
                let hoist_end = if explode {
                    open_paren
                } else {
                    d.body.span.start + 1
                };
                self.begin(d.span.start, hoist_end);
                self.out.push_str(&format!("flow template {}", d.name.name));
                self.params(&d.params, open_paren, close_paren, explode, true);
                self.out.push(' ');
                self.flow_body(&d.body);
                self.end(d.span.end);
            }
            Item::FlowInstance(d) => {
                let prefix = format!("flow {} = {}", d.name.name, d.template.name);
                let open = d.args_span.start;
                let close = d.args_span.end.saturating_sub(1);
                let flat = format!("{prefix}({})", self.args_text(&d.args));
                let explode = !d.args.is_empty()
                    && (flat.chars().count() > WIDTH
                        || self.has_comment_in(open, close)
                        || d.args
                            .last()
                            .is_some_and(|a| self.comma_follows(a.span.end)));
                if explode {
                    self.begin(d.span.start, open);
                    self.out.push_str(&prefix);
                    self.exploded(
                        open,
                        close,
                        d.args.iter().map(|a| (a.span, self.arg_text(a))).collect(),
                    );
                } else {
                    self.begin(d.span.start, d.span.end);
                    self.out.push_str(&flat);
                }
                self.end(d.span.end);
            }
            Item::Policy(d) => {
                let open = self.find(d.span.start, b'{');
                let close = d.span.end.saturating_sub(1);
                self.begin(d.span.start, open + 1);
                self.out.push_str("policy ");
                self.braced(open, close, d.lines.is_empty(), |p| {
                    for line in &d.lines {
                        let text = match &line.kind {
                            PolicyKind::QuietHours(q) => quiet_hours(q),
                            PolicyKind::Limit {
                                channel,
                                count,
                                per,
                                ..
                            } => format!("limit {} {count} per {per}", channel.keyword()),
                        };
                        p.line(line.span, &text);
                    }
                });
                self.end(d.span.end);
            }
            Item::Event(d) => {
                let open = self.find(d.name.span.end, b'{');
                let close = d.span.end.saturating_sub(1);
                self.begin(d.span.start, open + 1);
                self.out.push_str(&format!("event {} ", d.name.name));
                self.braced(open, close, d.properties.is_empty(), |p| {
                    for property in &d.properties {
                        let text = format!(
                            "{}: {}{}",
                            property.name.name,
                            property.ty.keyword(),
                            if property.optional { "?" } else { "" }
                        );
                        p.line(property.span, &text);
                    }
                });
                self.end(d.span.end);
            }
        }
    }

    fn message(&mut self, d: &'a MessageDecl) {
        let open = self.find(d.channel_span.end, b'{');
        let close = d.span.end.saturating_sub(1);
        self.begin(d.span.start, open + 1);
        self.out.push_str(&format!(
            "message {}: {}{} ",
            d.name.name,
            d.channel.keyword(),
            if d.transactional {
                " transactional"
            } else {
                ""
            }
        ));
        self.braced(open, close, d.fields.is_empty(), |p| {
            for field in &d.fields {
                let value = match &field.value {
                    FieldValue::Text(s) => quote(&s.value),
                    FieldValue::File(s) => format!("file({})", quote(&s.value)),
                    FieldValue::Bool { value, .. } => value.to_string(),
                };
                p.line(field.span, &format!("{}: {value}", field.name.name));
            }
        });
        self.end(d.span.end);
    }

    fn segment(&mut self, d: &'a SegmentDecl) {
        let has_params = !d.params.is_empty();
        let (open_paren, close_paren) = match d.params.last() {
            Some(last) => (
                self.find(d.name.span.end, b'('),
                self.find(last.span.end, b')'),
            ),
            None => (d.name.span.end, d.name.span.end),
        };
        let params_flat = if has_params {
            format!("({})", params_text(&d.params))
        } else {
            String::new()
        };
        let head_flat = format!("segment {}{params_flat} =", d.name.name);
        let explode = has_params
            && self.explode_params(
                &d.params,
                open_paren,
                close_paren,
                head_flat.chars().count(),
            );
        let eq = self.find(
            if has_params {
                close_paren
            } else {
                d.name.span.end
            },
            b'=',
        );
        let body = &d.body;
        let flat_body = expr_text(body, self.source, Context::Plain);
        let mut broken = self.spans_lines(eq, body.span.end)
            || self.has_comment_in(eq, d.span.end)
            || (!explode && head_flat.chars().count() + 1 + flat_body.chars().count() > WIDTH);
        let hoist_end = if explode {
            open_paren
        } else if broken {
            eq
        } else {
            d.span.end
        };
        self.begin(d.span.start, hoist_end);
        self.out.push_str(&format!("segment {}", d.name.name));
        if has_params {
            self.params(&d.params, open_paren, close_paren, explode, false);
        }
        broken = broken || self.column() + 3 + flat_body.chars().count() > WIDTH;
        if !broken {
            self.out.push_str(" = ");
            self.out.push_str(&flat_body);
            self.end(d.span.end);
            return;
        }
        self.out.push_str(" =");
        self.end(eq + 1);
        self.depth += 1;
        let operands = chain(body);
        for (index, (op, operand)) in operands.iter().enumerate() {
            self.block_start = true;
            self.begin(operand.span.start, operand.span.end);
            if index > 0 {
                self.out.push_str(op.symbol());
                self.out.push(' ');
            }
            self.out
                .push_str(&operand_text(body, operand, index, self.source));
            self.end(operand.span.end);
        }
        self.depth -= 1;
    }

    /// Whether a parameter list is written one per line: it ends in a trailing comma, holds
    /// a comment, or its flat line (`head_len` columns) does not fit.
    fn explode_params(&self, params: &[Param], open: usize, close: usize, head_len: usize) -> bool {
        let Some(last) = params.last() else {
            return false;
        };
        self.comma_follows(last.span.end)
            || self.has_comment_in(open, close)
            || self.depth * INDENT.len() + head_len > WIDTH
    }

    /// `(a: duration, b: message)`, on one line or one per line.
    fn params(&mut self, params: &[Param], open: usize, close: usize, explode: bool, always: bool) {
        if params.is_empty() {
            if always {
                self.out.push_str("()");
            }
            return;
        }
        if explode {
            let entries = params
                .iter()
                .map(|p| (p.span, format!("{}: {}", p.name.name, p.ty.keyword())))
                .collect();
            self.exploded(open, close, entries);
        } else {
            self.out.push('(');
            self.out.push_str(&params_text(params));
            self.out.push(')');
        }
    }

    /// `(` newline, one entry per line with a trailing comma, `)`.
    fn exploded(&mut self, open: usize, close: usize, entries: Vec<(Span, String)>) {
        self.out.push('(');
        self.end(open + 1);
        self.depth += 1;
        for (span, text) in entries {
            self.block_start = true;
            self.begin(span.start, span.end);
            self.out.push_str(&text);
            self.out.push(',');
            self.end(span.end);
        }
        self.block_start = true;
        self.leading(close);
        self.depth -= 1;
        self.indent();
        self.out.push(')');
    }

    fn args_text(&self, args: &[Arg]) -> String {
        args.iter()
            .map(|a| self.arg_text(a))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn arg_text(&self, arg: &Arg) -> String {
        args_text(std::slice::from_ref(arg), self.source)
    }

    // ───────────── flows ─────────────

    fn flow_body(&mut self, body: &'a FlowBody) {
        let mut lines: Vec<FlowLine<'a>> = body.header.iter().map(FlowLine::Header).collect();
        lines.extend(body.steps.iter().map(FlowLine::Step));
        lines.sort_by_key(|line| match line {
            FlowLine::Header(h) => h.span.start,
            FlowLine::Step(s) => s.span.start,
        });
        let open = body.span.start;
        let close = body.span.end.saturating_sub(1);
        self.braced(open, close, lines.is_empty(), |p| {
            for line in lines {
                match line {
                    FlowLine::Header(h) => p.header(h),
                    FlowLine::Step(s) => p.step(s),
                }
            }
        });
    }

    fn header(&mut self, h: &'a HeaderLine) {
        let span = h.span;
        match &h.kind {
            HeaderKind::WhenEvent { event, filter } => {
                let prefix = format!("when {}", event.name);
                self.filtered(span, prefix, filter.as_ref(), String::new());
            }
            HeaderKind::WhenEntering { segment } => {
                let text = format!("when entering {}", segment_ref(segment, self.source));
                self.line(span, &text);
            }
            HeaderKind::WhenEvery { every, at, segment } => {
                let every = match every {
                    DurationExpr::Literal(d)
                        if d.amount == 1
                            && d.unit != DurationUnit::Seconds
                            && d.unit != DurationUnit::Minutes =>
                    {
                        match d.unit {
                            DurationUnit::Hours => "hour".to_string(),
                            DurationUnit::Days => "day".to_string(),
                            DurationUnit::Weeks => "week".to_string(),
                            DurationUnit::Months => "month".to_string(),
                            _ => "year".to_string(),
                        }
                    }
                    other => duration_expr(other),
                };
                let at = at.map(|t| format!(" at {t}")).unwrap_or_default();
                let text = format!(
                    "when every {every}{at} for {}",
                    segment_ref(segment, self.source)
                );
                self.line(span, &text);
            }
            HeaderKind::WhenAnniversary { field, at } => {
                let at = at.map(|t| format!(" at {t}")).unwrap_or_default();
                self.line(span, &format!("when anniversary of {}{at}", field.dotted()));
            }
            HeaderKind::OnlyIf(e) => {
                self.expression_line(span, "only if ".into(), e, Context::Plain, String::new())
            }
            HeaderKind::Reentry(r) => {
                let text = match r {
                    Reentry::Never => "reentry never".to_string(),
                    Reentry::Always => "reentry always".to_string(),
                    Reentry::After(d) => format!("reentry after {}", duration_expr(d)),
                };
                self.line(span, &text);
            }
            HeaderKind::ExitOn { event, filter } => {
                let prefix = format!("exit on {}", event.name);
                self.filtered(span, prefix, filter.as_ref(), String::new());
            }
            HeaderKind::ExitIf(e) => {
                self.expression_line(span, "exit if ".into(), e, Context::Plain, String::new())
            }
            HeaderKind::QuietHours(q) => self.line(span, &quiet_hours(q)),
            HeaderKind::Goal {
                event,
                filter,
                within,
            } => {
                let prefix = format!("goal {}", event.name);
                let suffix = format!(" within {}", duration_expr(within));
                self.filtered(span, prefix, filter.as_ref(), suffix);
            }
            HeaderKind::Holdout(p) => {
                let text = format!("holdout {}", percent_text(p.value, p.span, self.source));
                self.line(span, &text);
            }
            HeaderKind::OnChange { policy, .. } => {
                self.line(span, &format!("on change {}", policy.keyword()));
            }
        }
    }

    /// `PREFIX [where EXPR]SUFFIX` on a line of its own.
    fn filtered(&mut self, span: Span, prefix: String, filter: Option<&Expr>, suffix: String) {
        match filter {
            Some(e) => {
                self.expression_line(span, format!("{prefix} where "), e, Context::Plain, suffix)
            }
            None => self.line(span, &format!("{prefix}{suffix}")),
        }
    }

    /// A statement made of `prefix`, an expression and `suffix`, ended as a line.
    fn expression_line(
        &mut self,
        span: Span,
        prefix: String,
        e: &Expr,
        context: Context,
        suffix: String,
    ) {
        self.expression_start(span.start, span.end, &prefix, e, context, &suffix);
        self.end(span.end);
    }

    /// Writes `prefix EXPR suffix` from the start of a line (wrapping the expression's
    /// `and`/`or` chain when needed); the caller ends the line. `line_end` is the source
    /// offset where the statement's first output line ends when it is not wrapped.
    fn expression_start(
        &mut self,
        start: usize,
        line_end: usize,
        prefix: &str,
        e: &Expr,
        context: Context,
        suffix: &str,
    ) {
        let operands = chain(e);
        let flat = expr_text(e, self.source, context);
        let label = self.label.as_ref().map_or(0, |l| l.chars().count());
        let column = self.depth * INDENT.len() + label + prefix.chars().count();
        let wrap = context == Context::Plain
            && operands.len() > 1
            && (column + flat.chars().count() + suffix.chars().count() > WIDTH
                || self.spans_lines(e.span.start, e.span.end)
                || self.has_comment_in(e.span.start, e.span.end));
        if !wrap {
            self.begin(start, line_end);
            self.out.push_str(prefix);
            self.out.push_str(&flat);
            self.out.push_str(suffix);
            return;
        }
        self.continue_chain(start, prefix, e, &operands, suffix);
    }

    /// The wrapped form: the first operand after `prefix`, the others on lines of their own.
    fn continue_chain(
        &mut self,
        start: usize,
        prefix: &str,
        e: &Expr,
        operands: &[(BinaryOp, &Expr)],
        suffix: &str,
    ) {
        for (index, (op, operand)) in operands.iter().enumerate() {
            if index == 0 {
                self.begin(start, operand.span.end);
                self.out.push_str(prefix);
            } else {
                self.end(operands[index - 1].1.span.end);
                self.depth += 1;
                self.block_start = true;
                self.begin(operand.span.start, operand.span.end);
                self.depth -= 1;
                self.out.push_str(op.symbol());
                self.out.push(' ');
            }
            self.out
                .push_str(&operand_text(e, operand, index, self.source));
        }
        self.out.push_str(suffix);
    }

    /// Writes an `if`/`else if` condition and its block, from mid-line (`} else if `).
    fn inline_condition(&mut self, prefix: &str, e: &Expr) {
        let operands = chain(e);
        let flat = expr_text(e, self.source, Context::Plain);
        let wrap = operands.len() > 1
            && (self.column() + prefix.len() + flat.chars().count() + 2 > WIDTH
                || self.spans_lines(e.span.start, e.span.end));
        self.out.push_str(prefix);
        if !wrap {
            self.out.push_str(&flat);
            self.out.push(' ');
            return;
        }
        for (index, (op, operand)) in operands.iter().enumerate() {
            if index > 0 {
                self.end(operands[index - 1].1.span.end);
                self.depth += 1;
                self.block_start = true;
                self.begin(operand.span.start, operand.span.end);
                self.depth -= 1;
                self.out.push_str(op.symbol());
                self.out.push(' ');
            }
            self.out
                .push_str(&operand_text(e, operand, index, self.source));
        }
        self.out.push(' ');
    }

    fn steps(&mut self, steps: &'a [Step]) {
        for step in steps {
            self.step(step);
        }
    }

    fn block(&mut self, block: &'a Block) {
        let open = block.span.start;
        let close = block.span.end.saturating_sub(1);
        self.braced(open, close, block.steps.is_empty(), |p| {
            p.steps(&block.steps)
        });
    }

    fn step(&mut self, step: &'a Step) {
        let span = step.span;
        self.label = step.label.as_ref().map(|l| format!("step {}: ", l.name));
        match &step.kind {
            StepKind::Send { message } => self.line(span, &format!("send {}", message.name)),
            StepKind::Wait { duration } => {
                self.line(span, &format!("wait {}", duration_expr(duration)))
            }
            StepKind::WaitUntil { time } => self.line(span, &format!("wait until {time}")),
            StepKind::Set { field, value } => {
                let prefix = format!("set {} = ", field.dotted());
                self.expression_line(span, prefix, value, Context::Plain, String::new());
            }
            StepKind::Unsubscribe { target, .. } => {
                let target = match target {
                    UnsubscribeTarget::Channel(c) => c.keyword(),
                    UnsubscribeTarget::All => "all",
                };
                self.line(span, &format!("unsubscribe {target}"));
            }
            StepKind::Stop => self.line(span, "stop"),
            StepKind::If {
                branches,
                otherwise,
            } => {
                for (index, branch) in branches.iter().enumerate() {
                    if index == 0 {
                        let open = branch.block.span.start;
                        self.expression_start(
                            span.start,
                            open + 1,
                            "if ",
                            &branch.condition,
                            Context::Plain,
                            " ",
                        );
                    } else {
                        self.inline_condition(" else if ", &branch.condition);
                    }
                    self.block(&branch.block);
                }
                if let Some(block) = otherwise {
                    self.out.push_str(" else ");
                    self.block(block);
                }
                self.end(span.end);
            }
            StepKind::Split { arms } => {
                let open = self.find(span.start, b'{');
                let close = span.end.saturating_sub(1);
                self.begin(span.start, open + 1);
                self.out.push_str("split ");
                self.braced(open, close, arms.is_empty(), |p| {
                    for arm in arms {
                        p.begin(arm.span.start, arm.block.span.start + 1);
                        let share = percent_text(arm.share.value, arm.share.span, p.source);
                        p.out.push_str(&share);
                        p.out.push(' ');
                        p.block(&arm.block);
                        p.end(arm.span.end);
                    }
                });
                self.end(span.end);
            }
            StepKind::WaitFor(w) => self.wait_for(span, w),
        }
    }

    fn wait_for(&mut self, span: Span, w: &'a WaitFor) {
        let awaited: Vec<String> = w
            .events
            .iter()
            .map(|m| match &m.filter {
                Some(f) => format!(
                    "{} where {}",
                    m.event.name,
                    expr_text(f, self.source, Context::WaitFilter)
                ),
                None => m.event.name.clone(),
            })
            .collect();
        let timeout = format!(" up to {}", duration_expr(&w.timeout));
        let timeout_end = w.timeout.span().end;
        let line_end = match &w.body {
            WaitForBody::None => match &w.otherwise {
                Some(block) => block.span.start + 1,
                None => span.end,
            },
            WaitForBody::Received(block) => block.span.start + 1,
            WaitForBody::Arms(_) => self.find(timeout_end, b'{') + 1,
        };
        self.begin(span.start, line_end);
        let flat = format!("wait for {}{timeout}", awaited.join(" or "));
        if awaited.len() > 1 && self.column() + flat.chars().count() + 2 > WIDTH {
            self.out.push_str("wait for ");
            for (index, text) in awaited.iter().enumerate() {
                if index > 0 {
                    self.out.push('\n');
                    self.depth += 1;
                    self.indent();
                    self.depth -= 1;
                    self.out.push_str("or ");
                }
                self.out.push_str(text);
            }
            self.out.push_str(&timeout);
        } else {
            self.out.push_str(&flat);
        }
        match &w.body {
            WaitForBody::None => {}
            WaitForBody::Received(block) => {
                self.out.push(' ');
                self.block(block);
            }
            WaitForBody::Arms(arms) => {
                let open = line_end - 1;
                let close = match arms.last() {
                    Some(last) => self.find(last.span.end, b'}'),
                    None => open,
                };
                self.out.push(' ');
                self.braced(open, close, arms.is_empty(), |p| {
                    for arm in arms {
                        p.begin(arm.span.start, arm.block.span.start + 1);
                        p.out.push_str(&format!("on {} ", arm.event.name));
                        p.block(&arm.block);
                        p.end(arm.span.end);
                    }
                });
            }
        }
        if let Some(block) = &w.otherwise {
            self.out.push_str(" else ");
            self.block(block);
        }
        self.end(span.end);
    }
}

// ───────────── text of small pieces ─────────────

fn has_blank_line(gap: &str) -> bool {
    let newlines =
        gap.matches('\n').count() + gap.matches('\r').count() - gap.matches("\r\n").count();
    newlines >= 2
}

fn quiet_hours(q: &QuietHours) -> String {
    format!("quiet hours {}..{}", q.start, q.end)
}

fn duration_expr(d: &DurationExpr) -> String {
    match d {
        DurationExpr::Literal(d) => d.to_string(),
        DurationExpr::Param(name) => name.name.clone(),
    }
}

fn params_text(params: &[Param]) -> String {
    params
        .iter()
        .map(|p| format!("{}: {}", p.name.name, p.ty.keyword()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn args_text(args: &[Arg], source: &str) -> String {
    args.iter()
        .map(|arg| {
            let value = expr_text(&arg.value, source, Context::Plain);
            match &arg.name {
                Some(name) => format!("{}: {value}", name.name),
                None => value,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn segment_ref(segment: &SegmentRef, source: &str) -> String {
    if segment.args.is_empty() {
        segment.name.name.clone()
    } else {
        format!(
            "{}({})",
            segment.name.name,
            args_text(&segment.args, source)
        )
    }
}

/// A string literal with `"`, `\`, line breaks and tabs escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number as the user spelt it (`49.90`) when that spelling is a plain literal of the same
/// value, otherwise in Rust's shortest form (never with an exponent).
fn number_text(value: f64, span: Span, source: &str, suffix: &str) -> String {
    let written = source
        .get(span.start..span.end)
        .unwrap_or("")
        .trim_matches(|c: char| c.is_whitespace() || c == '(' || c == ')');
    let written = written.strip_suffix(suffix).unwrap_or(written);
    let plain = !written.is_empty()
        && written.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && written.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && written.as_bytes().last().is_some_and(u8::is_ascii_digit)
        && written.matches('.').count() <= 1;
    if plain && written.parse::<f64>().ok() == Some(value) {
        format!("{written}{suffix}")
    } else {
        format!("{value}{suffix}")
    }
}

fn percent_text(value: f64, span: Span, source: &str) -> String {
    number_text(value, span, source, "%")
}

/// Binding strength for parenthesising (see `BinaryOp::precedence`): `not` 3, `in` 4,
/// unary `-` 7, values 8.
fn precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary { op, .. } => op.precedence(),
        ExprKind::In { .. } => 4,
        ExprKind::Unary {
            op: UnaryOp::Not, ..
        } => 3,
        ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } => 7,
        _ => 8,
    }
}

/// The operands of the `and`/`or` chain at the root of `e` (left-nested operators of the
/// root's kind), each with the operator before it (the first one's is the root operator).
fn chain(e: &Expr) -> Vec<(BinaryOp, &Expr)> {
    let ExprKind::Binary { op: root, .. } = &e.kind else {
        return vec![(BinaryOp::Or, e)];
    };
    if !matches!(root, BinaryOp::And | BinaryOp::Or) {
        return vec![(*root, e)];
    }
    let mut operands = Vec::new();
    let mut current = e;
    loop {
        match &current.kind {
            ExprKind::Binary { op, lhs, rhs } if op == root => {
                operands.push((*op, rhs.as_ref()));
                current = lhs;
            }
            _ => {
                operands.push((*root, current));
                break;
            }
        }
    }
    operands.reverse();
    operands
}

/// The text of one operand of the chain at the root of `root` (`index` 0 is the leftmost).
fn operand_text(root: &Expr, operand: &Expr, index: usize, source: &str) -> String {
    let ExprKind::Binary { op, .. } = &root.kind else {
        return expr_text(operand, source, Context::Plain);
    };
    if std::ptr::eq(root, operand) {
        return expr_text(operand, source, Context::Plain);
    }
    let p = op.precedence();
    let needs = if index == 0 {
        precedence(operand) < p
    } else {
        precedence(operand) <= p
    };
    wrapped(operand, needs, source)
}

fn wrapped(e: &Expr, parens: bool, source: &str) -> String {
    let text = expr_text(e, source, Context::Plain);
    if parens {
        format!("({text})")
    } else {
        text
    }
}

/// An expression on one line, with the fewest parentheses that keep its grouping.
fn expr_text(e: &Expr, source: &str, context: Context) -> String {
    if context == Context::WaitFilter
        && matches!(
            e.kind,
            ExprKind::Binary {
                op: BinaryOp::Or,
                ..
            }
        )
    {
        return format!("({})", expr_text(e, source, Context::Plain));
    }
    match &e.kind {
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Null => "null".into(),
        ExprKind::Number(n) => number_text(*n, e.span, source, ""),
        ExprKind::String(s) => quote(s),
        ExprKind::Duration(d) => d.to_string(),
        ExprKind::Percent(p) => percent_text(*p, e.span, source),
        ExprKind::Time(t) => t.to_string(),
        ExprKind::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|item| expr_text(item, source, Context::Plain))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ExprKind::Path(p) => p.dotted(),
        ExprKind::Name(n) => n.name.clone(),
        ExprKind::SegmentCall { name, args } => {
            format!("{}({})", name.name, args_text(args, source))
        }
        ExprKind::Exists(p) => format!("exists({})", p.dotted()),
        ExprKind::CanReceive { channel, .. } => format!("can_receive({})", channel.keyword()),
        ExprKind::Count {
            event,
            filter,
            within,
        } => {
            let mut text = format!("count({}", event.name);
            if let Some(f) = filter {
                text.push_str(" where ");
                text.push_str(&expr_text(f, source, Context::Plain));
            }
            if let Some(w) = within {
                text.push_str(" within ");
                text.push_str(&duration_expr(w));
            }
            text.push(')');
            text
        }
        ExprKind::Sum {
            event,
            property,
            within,
        } => {
            let mut text = format!("sum({}", event_property(event, property));
            if let Some(w) = within {
                text.push_str(" within ");
                text.push_str(&duration_expr(w));
            }
            text.push(')');
            text
        }
        ExprKind::Last { event, property } => {
            format!("last({})", event_property(event, property))
        }
        ExprKind::Since { event } => format!("since({})", event.name),
        ExprKind::Unary { op, operand } => match op {
            UnaryOp::Not => format!("not {}", wrapped(operand, precedence(operand) < 3, source)),
            UnaryOp::Neg => format!("-{}", wrapped(operand, precedence(operand) <= 7, source)),
        },
        ExprKind::Binary { op, lhs, rhs } => {
            let p = op.precedence();
            format!(
                "{} {} {}",
                wrapped(lhs, precedence(lhs) < p, source),
                op.symbol(),
                wrapped(rhs, precedence(rhs) <= p, source)
            )
        }
        ExprKind::In { needle, list } => format!(
            "{} in {}",
            wrapped(needle, precedence(needle) < 4, source),
            wrapped(list, precedence(list) <= 4, source)
        ),
    }
}

fn event_property(event: &Ident, property: &[Ident]) -> String {
    let mut text = event.name.clone();
    for p in property {
        text.push('.');
        text.push_str(&p.name);
    }
    text
}
