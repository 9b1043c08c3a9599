//! pest pairs → AST, and syntax errors in a marketer's words.
//!
//! Owns: running the pest grammar (`grammar/flow.pest`), building [`ast`] values with byte
//! spans from its pairs, collecting comments, range checks on literal values (times, shares,
//! numbers), and turning pest's "expected rules" into sentences with a help line.
//! Must not: resolve names across declarations, check types, or read files. This is the only
//! module that matches on pest's `Rule`.
//!
//! The pipeline of [`parse_file`]:
//! 1. [`prepare`]: a copy of the text of the same length in which line breaks and comments
//!    inside `( )` and `[ ]` are spaces (so expressions may span lines there), plus a nesting
//!    limit so that deep input cannot exhaust the stack;
//! 2. pest parses the prepared text with the rule `file`;
//! 3. [`Builder`] walks the pairs and builds the AST;
//! 4. [`collect_comments`] scans the original text for `#` outside strings.

use super::ast::{self, Span};
use super::{SyntaxError, SyntaxErrorKind};
use pest::iterators::Pair;
use pest::Parser as _;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "grammar/flow.pest"]
struct FlowParser;

type Result<T> = std::result::Result<T, SyntaxError>;

/// The deepest nesting of `( )`, `[ ]` and `{ }` together that a file may use.
const MAX_NESTING: usize = 48;
/// The deepest an expression may nest (prefix operators and parentheses included).
const MAX_EXPR_DEPTH: usize = 96;
/// The most binary operators one expression may chain.
const MAX_OPERATORS: usize = 512;

/// Parses one `.flow` file into its syntax tree, or reports the first syntax error.
pub fn parse_file(text: &str) -> Result<ast::SourceFile> {
    let prepared = prepare(text)?;
    let dangling = dangling_operator(&prepared);
    let mut pairs = FlowParser::parse(Rule::file, &prepared).map_err(|error| {
        let error = describe_error(&prepared, error);
        match dangling.clone() {
            Some(d) if d.span.start <= error.span.start => d,
            _ => error,
        }
    })?;
    // `and` at the end of a line continues the expression on the next, so a step keyword
    // there (`stop`) would otherwise be read as a name.
    if let Some(d) = dangling {
        return Err(d);
    }
    let file = pairs
        .next()
        .ok_or_else(|| internal(Span::default(), "no file"))?;
    let mut builder = Builder { params: Vec::new() };
    let (uses, items) = builder.file(file)?;
    Ok(ast::SourceFile {
        uses,
        items,
        comments: collect_comments(text),
    })
}

// ───────────────────────────── Preparation ─────────────────────────────

/// Words that start a declaration, a header line or a step: after an `and`/`or` that ends a
/// line, one of them means the condition was left unfinished.
const LINE_STARTS: &[&str] = &[
    "flow",
    "segment",
    "message",
    "event",
    "template",
    "policy",
    "use",
    "when",
    "only",
    "exit",
    "reentry",
    "quiet",
    "goal",
    "holdout",
    "send",
    "wait",
    "set",
    "split",
    "unsubscribe",
    "stop",
    "if",
    "else",
    "on",
    "limit",
];

/// An `and` or `or` that ends a line (in the prepared text: line breaks inside brackets are
/// gone) when the next line with code starts a new declaration, line or block (or there is
/// none): the error points at the end of the operator.
fn dangling_operator(prepared: &str) -> Option<SyntaxError> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in prepared.split_inclusive('\n') {
        lines.push((offset, code_of_line(line)));
        offset += line.len();
    }
    for (i, (start, code)) in lines.iter().enumerate() {
        let trimmed = code.trim_end();
        let Some(op) = ["and", "or"].into_iter().find(|op| {
            trimmed.strip_suffix(op).is_some_and(|before| {
                before.is_empty()
                    || !before
                        .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            })
        }) else {
            continue;
        };
        let next = lines[i + 1..]
            .iter()
            .map(|(_, c)| c.trim())
            .find(|c| !c.is_empty());
        let starts_line = match next {
            None => true,
            Some(next) => {
                let word: String = next
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                next.starts_with('}') || LINE_STARTS.contains(&word.as_str())
            }
        };
        if starts_line {
            let end = start + trimmed.len();
            return Some(SyntaxError {
                span: Span::new(end, end),
                message: format!("the condition ends with `{op}`"),
                label: format!("this `{op}` has nothing after it"),
                help: Some(format!("finish the condition or remove `{op}`")),
                related: Vec::new(),
                kind: SyntaxErrorKind::Grammar,
            });
        }
    }
    None
}

/// A line without its comment (strings are single-line).
fn code_of_line(line: &str) -> &str {
    let mut in_string = false;
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Returns a copy of `text`, byte for byte the same length, where every line break and every
/// comment inside parentheses or brackets is replaced by spaces. Fails when `( )`, `[ ]` and
/// `{ }` nest deeper than [`MAX_NESTING`].
fn prepare(text: &str) -> Result<String> {
    let mut bytes = text.as_bytes().to_vec();
    let mut parens: usize = 0;
    let mut braces: usize = 0;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'"' => {
                // A string runs to its closing quote or to the end of its line.
                index += 1;
                while index < bytes.len() {
                    match bytes[index] {
                        b'\\'
                            if bytes
                                .get(index + 1)
                                .is_some_and(|b| *b != b'\n' && *b != b'\r') =>
                        {
                            index += 2
                        }
                        b'"' => break,
                        b'\n' | b'\r' => {
                            // An unclosed string: its line break stays, so that the string
                            // is reported as unclosed rather than running on.
                            if bytes[index] == b'\r' && bytes.get(index + 1) == Some(&b'\n') {
                                index += 1;
                            }
                            break;
                        }
                        _ => index += 1,
                    }
                }
            }
            b'#' => {
                while index < bytes.len() && bytes[index] != b'\n' && bytes[index] != b'\r' {
                    if parens > 0 {
                        bytes[index] = b' ';
                    }
                    index += 1;
                }
                continue;
            }
            b'(' | b'[' | b'{' => {
                if bytes[index] == b'{' {
                    braces += 1;
                } else {
                    parens += 1;
                }
                if parens + braces > MAX_NESTING {
                    return Err(SyntaxError {
                        span: Span::new(index, index + 1),
                        message: format!(
                            "this is nested too deeply (more than {MAX_NESTING} levels)"
                        ),
                        label: "too deep".into(),
                        help: Some(
                            "split the condition into segments, or the flow into several flows"
                                .into(),
                        ),
                        related: Vec::new(),
                        kind: SyntaxErrorKind::TooDeep,
                    });
                }
            }
            b')' | b']' => parens = parens.saturating_sub(1),
            b'}' => braces = braces.saturating_sub(1),
            b'\n' | b'\r' if parens > 0 => bytes[index] = b' ',
            _ => {}
        }
        index += 1;
    }
    // Only ASCII bytes were replaced, and only whole characters (comments run to a line
    // break), so this cannot fail; fall back to an internal error rather than panic.
    String::from_utf8(bytes).map_err(|_| internal(Span::default(), "prepared text is not UTF-8"))
}

/// Every `#` comment of `text`, in source order. `#` inside a string is not a comment.
pub(crate) fn collect_comments(text: &str) -> Vec<ast::Comment> {
    let bytes = text.as_bytes();
    let mut comments = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'"' => {
                index += 1;
                while index < bytes.len() && !matches!(bytes[index], b'"' | b'\n' | b'\r') {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
                // Step over the closing quote; leave a line break to the loop.
                if index < bytes.len() && bytes[index] == b'"' {
                    index += 1;
                }
            }
            b'#' => {
                let start = index;
                while index < bytes.len() && bytes[index] != b'\n' && bytes[index] != b'\r' {
                    index += 1;
                }
                if let Some(comment) = text.get(start..index) {
                    comments.push(ast::Comment {
                        text: comment.to_string(),
                        span: Span::new(start, index),
                    });
                }
            }
            _ => index += 1,
        }
    }
    comments
}

// ───────────────────────────── Pairs → AST ─────────────────────────────

/// The span of a pair, without the spaces and comment that pest's implicit whitespace may
/// have added at its end (a rule ending in an optional part that did not match).
fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let span = pair.as_span();
    Span::new(
        span.start(),
        trim_end(span.get_input(), span.start(), span.end()),
    )
}

/// Moves `end` back over spaces, tabs and a trailing `#` comment, not before `start`.
fn trim_end(text: &str, start: usize, mut end: usize) -> usize {
    let bytes = text.as_bytes();
    // A comment runs to the end of its line: only a span that ends there can end in one.
    if !matches!(bytes.get(end), None | Some(b'\n' | b'\r')) {
        while end > start && matches!(bytes.get(end - 1), Some(b' ' | b'\t')) {
            end -= 1;
        }
        return end;
    }
    loop {
        while end > start && matches!(bytes.get(end - 1), Some(b' ' | b'\t')) {
            end -= 1;
        }
        let line_start = text
            .get(..end)
            .and_then(|b| b.rfind(['\n', '\r']))
            .map_or(0, |i| i + 1);
        match text.get(line_start..end).and_then(comment_start) {
            Some(hash) if line_start + hash >= start => end = line_start + hash,
            _ => return end,
        }
    }
}

/// Where a `#` comment starts on one line of text (a `#` inside a string does not count).
fn comment_start(line: &str) -> Option<usize> {
    if !line.contains('#') {
        return None;
    }
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' if in_string => index += 1,
            b'"' => in_string = !in_string,
            b'#' if !in_string => return Some(index),
            _ => {}
        }
        index += 1;
    }
    None
}

fn internal(span: Span, what: &str) -> SyntaxError {
    SyntaxError {
        span,
        message: format!("the parser failed on its own grammar ({what})"),
        label: "here".into(),
        help: Some("this is a bug in flowc; please report it with this file".into()),
        related: Vec::new(),
        kind: SyntaxErrorKind::Grammar,
    }
}

fn out_of_range(span: Span, message: String, help: &str) -> SyntaxError {
    SyntaxError {
        span,
        message,
        label: "out of range".into(),
        help: Some(help.into()),
        related: Vec::new(),
        kind: SyntaxErrorKind::OutOfRange,
    }
}

/// Keywords and punctuation: rules that exist only so that error messages can name them.
fn is_token(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::EOI
            | Rule::eol
            | Rule::lbrace
            | Rule::rbrace
            | Rule::lparen
            | Rule::rparen
            | Rule::lbracket
            | Rule::rbracket
            | Rule::colon
            | Rule::comma
            | Rule::eq_sign
            | Rule::dotdot
            | Rule::kw_use
            | Rule::kw_segment
            | Rule::kw_message
            | Rule::kw_transactional
            | Rule::kw_flow
            | Rule::kw_template
            | Rule::kw_policy
            | Rule::kw_event
            | Rule::kw_when
            | Rule::kw_every
            | Rule::kw_at
            | Rule::kw_for
            | Rule::kw_anniversary
            | Rule::kw_of
            | Rule::kw_entering
            | Rule::kw_only
            | Rule::kw_if
            | Rule::kw_reentry
            | Rule::kw_never
            | Rule::kw_always
            | Rule::kw_after
            | Rule::kw_exit
            | Rule::kw_on
            | Rule::kw_quiet
            | Rule::kw_hours
            | Rule::kw_goal
            | Rule::kw_within
            | Rule::kw_holdout
            | Rule::kw_send
            | Rule::kw_wait
            | Rule::kw_until
            | Rule::kw_up
            | Rule::kw_to
            | Rule::kw_else
            | Rule::kw_split
            | Rule::kw_set
            | Rule::kw_unsubscribe
            | Rule::kw_all
            | Rule::kw_stop
            | Rule::kw_where
            | Rule::kw_limit
            | Rule::kw_per
            | Rule::kw_file
            | Rule::kw_count
            | Rule::kw_sum
            | Rule::kw_last
            | Rule::kw_since
            | Rule::kw_exists
            | Rule::kw_can_receive
            | Rule::kw_change
            | Rule::kw_step
            | Rule::kw_or
    )
}

/// The children of a pair that carry meaning (keywords and punctuation left out).
struct Parts<'i> {
    parent: Span,
    children: std::iter::Peekable<std::vec::IntoIter<Pair<'i, Rule>>>,
}

impl<'i> Parts<'i> {
    fn of(pair: Pair<'i, Rule>) -> Self {
        let parent = span_of(&pair);
        let children: Vec<_> = pair
            .into_inner()
            .filter(|child| !is_token(child.as_rule()))
            .collect();
        Parts {
            parent,
            children: children.into_iter().peekable(),
        }
    }

    /// The next child, which the grammar guarantees is there.
    fn next(&mut self, what: &str) -> Result<Pair<'i, Rule>> {
        self.children
            .next()
            .ok_or_else(|| internal(self.parent, what))
    }

    /// The next child if it is a `rule`.
    fn next_if(&mut self, rule: Rule) -> Option<Pair<'i, Rule>> {
        self.children.next_if(|child| child.as_rule() == rule)
    }
}

impl<'i> Iterator for Parts<'i> {
    type Item = Pair<'i, Rule>;
    fn next(&mut self) -> Option<Self::Item> {
        self.children.next()
    }
}

/// The only child of a pair that carries meaning (for wrapper rules such as `item`, `step`).
fn only_child<'i>(pair: Pair<'i, Rule>) -> Result<Pair<'i, Rule>> {
    Parts::of(pair).next("a wrapper rule without content")
}

/// Walks pest's pairs and builds the AST.
struct Builder {
    /// The parameter names in scope (of a flow template or a segment with parameters): where
    /// a duration is expected, one of these names is a [`ast::DurationExpr::Param`].
    params: Vec<String>,
}

/// One element of an expression's flat list, before grouping by precedence.
enum Piece<'i> {
    Not(Span),
    Neg(Span),
    Operand(Pair<'i, Rule>),
    Infix(Infix),
}

#[derive(Clone, Copy)]
enum Infix {
    Binary(ast::BinaryOp),
    In,
}

impl Infix {
    fn precedence(self) -> u8 {
        match self {
            Infix::Binary(op) => op.precedence(),
            Infix::In => 4,
        }
    }
}

/// The binding strength of `not`: it takes comparisons and arithmetic, not `and`/`or`.
const NOT_PRECEDENCE: u8 = 3;
/// The binding strength of unary `-`: tighter than every binary operator.
const NEG_PRECEDENCE: u8 = 7;

impl Builder {
    fn file(&mut self, pair: Pair<'_, Rule>) -> Result<(Vec<ast::Use>, Vec<ast::Item>)> {
        let mut uses = Vec::new();
        let mut items = Vec::new();
        for item in Parts::of(pair) {
            let declaration = only_child(item)?;
            let item = match declaration.as_rule() {
                Rule::use_decl => {
                    uses.push(self.use_decl(declaration)?);
                    continue;
                }
                Rule::segment_decl => ast::Item::Segment(self.segment_decl(declaration)?),
                Rule::message_decl => ast::Item::Message(self.message_decl(declaration)?),
                Rule::flow_decl => ast::Item::Flow(self.flow_decl(declaration)?),
                Rule::flow_template => ast::Item::FlowTemplate(self.flow_template(declaration)?),
                Rule::flow_instance => ast::Item::FlowInstance(self.flow_instance(declaration)?),
                Rule::policy_decl => ast::Item::Policy(self.policy_decl(declaration)?),
                Rule::event_decl => ast::Item::Event(self.event_decl(declaration)?),
                _ => return Err(internal(span_of(&declaration), "unknown declaration")),
            };
            items.push(item);
        }
        Ok((uses, items))
    }

    // ── declarations ──

    fn use_decl(&mut self, pair: Pair<'_, Rule>) -> Result<ast::Use> {
        let span = span_of(&pair);
        let path = Parts::of(pair).next("`stdlib/NAME`")?;
        let module = ident(Parts::of(path).next("module name")?);
        Ok(ast::Use { module, span })
    }

    fn segment_decl(&mut self, pair: Pair<'_, Rule>) -> Result<ast::SegmentDecl> {
        let span = span_of(&pair);
        let mut parts = Parts::of(pair);
        let name = ident(parts.next("segment name")?);
        let params = match parts.next_if(Rule::params) {
            Some(params) => self.params(params)?,
            None => Vec::new(),
        };
        self.params = params.iter().map(|p| p.name.name.clone()).collect();
        let body = self.expr(parts.next("segment body")?);
        self.params.clear();
        Ok(ast::SegmentDecl {
            name,
            params,
            body: body?,
            span,
        })
    }

    fn params(&mut self, pair: Pair<'_, Rule>) -> Result<Vec<ast::Param>> {
        Parts::of(pair)
            .map(|param| {
                let span = span_of(&param);
                let mut parts = Parts::of(param);
                let name = ident(parts.next("parameter name")?);
                let ty_pair = parts.next("parameter type")?;
                let ty = match ty_pair.as_str() {
                    "duration" => ast::ParamType::Duration,
                    "number" => ast::ParamType::Number,
                    "string" => ast::ParamType::String,
                    "bool" => ast::ParamType::Bool,
                    "message" => ast::ParamType::Message,
                    "segment" => ast::ParamType::Segment,
                    "event" => ast::ParamType::Event,
                    _ => return Err(internal(span_of(&ty_pair), "parameter type")),
                };
                Ok(ast::Param {
                    name,
                    ty,
                    ty_span: span_of(&ty_pair),
                    span,
                })
            })
            .collect()
    }

    fn message_decl(&mut self, pair: Pair<'_, Rule>) -> Result<ast::MessageDecl> {
        let span = span_of(&pair);
        let mut name = None;
        let mut channel = None;
        let mut transactional = false;
        let mut fields = Vec::new();
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::name => name = Some(ident(child)),
                Rule::channel => channel = Some((channel_of(&child)?, span_of(&child))),
                Rule::kw_transactional => transactional = true,
                Rule::message_field => fields.push(self.message_field(child)?),
                _ => {}
            }
        }
        let name = name.ok_or_else(|| internal(span, "message name"))?;
        let (channel, channel_span) = channel.ok_or_else(|| internal(span, "message channel"))?;
        Ok(ast::MessageDecl {
            name,
            channel,
            channel_span,
            transactional,
            fields,
            span,
        })
    }

    fn message_field(&mut self, pair: Pair<'_, Rule>) -> Result<ast::MessageField> {
        let span = span_of(&pair);
        let mut parts = Parts::of(pair);
        let name = ident(parts.next("field name")?);
        let value = only_child(parts.next("field value")?)?;
        let value = match value.as_rule() {
            Rule::file_ref => {
                ast::FieldValue::File(string_lit(Parts::of(value).next("file path")?))
            }
            Rule::string => ast::FieldValue::Text(string_lit(value)),
            Rule::boolean => ast::FieldValue::Bool {
                value: value.as_str() == "true",
                span: span_of(&value),
            },
            _ => return Err(internal(span_of(&value), "field value")),
        };
        Ok(ast::MessageField { name, value, span })
    }

    fn flow_decl(&mut self, pair: Pair<'_, Rule>) -> Result<ast::FlowDecl> {
        let span = span_of(&pair);
        let mut parts = Parts::of(pair);
        let name = ident(parts.next("flow name")?);
        self.params.clear();
        let body = self.flow_body(parts.next("flow body")?)?;
        Ok(ast::FlowDecl { name, body, span })
    }

    fn flow_template(&mut self, pair: Pair<'_, Rule>) -> Result<ast::FlowTemplateDecl> {
        let span = span_of(&pair);
        let mut parts = Parts::of(pair);
        let name = ident(parts.next("template name")?);
        let params = self.params(parts.next("template parameters")?)?;
        self.params = params.iter().map(|p| p.name.name.clone()).collect();
        let body = self.flow_body(parts.next("template body")?);
        self.params.clear();
        Ok(ast::FlowTemplateDecl {
            name,
            params,
            body: body?,
            span,
        })
    }

    fn flow_instance(&mut self, pair: Pair<'_, Rule>) -> Result<ast::FlowInstanceDecl> {
        let span = span_of(&pair);
        let mut parts = Parts::of(pair);
        let name = ident(parts.next("flow name")?);
        let template = ident(parts.next("template name")?);
        let args_pair = parts.next("template arguments")?;
        let args_span = span_of(&args_pair);
        self.params.clear();
        let args = self.call_args(args_pair, 0)?;
        Ok(ast::FlowInstanceDecl {
            name,
            template,
            args,
            args_span,
            span,
        })
    }

    fn policy_decl(&mut self, pair: Pair<'_, Rule>) -> Result<ast::PolicyDecl> {
        let span = span_of(&pair);
        let mut lines = Vec::new();
        for line in Parts::of(pair) {
            let line_span = span_of(&line);
            let inner = only_child(line)?;
            let kind = match inner.as_rule() {
                Rule::quiet_hours => ast::PolicyKind::QuietHours(quiet_hours(inner)?),
                Rule::limit_line => {
                    let mut parts = Parts::of(inner);
                    let channel_pair = parts.next("limit channel")?;
                    let count_pair = parts.next("limit count")?;
                    let per_pair = parts.next("limit duration")?;
                    let per = match per_pair.as_rule() {
                        Rule::every_word => every_word(&per_pair)?,
                        _ => duration(per_pair)?,
                    };
                    ast::PolicyKind::Limit {
                        channel: channel_of(&channel_pair)?,
                        channel_span: span_of(&channel_pair),
                        count: integer(&count_pair)?,
                        count_span: span_of(&count_pair),
                        per,
                    }
                }
                _ => return Err(internal(span_of(&inner), "policy line")),
            };
            lines.push(ast::PolicyLine {
                kind,
                span: line_span,
            });
        }
        Ok(ast::PolicyDecl { lines, span })
    }

    fn event_decl(&mut self, pair: Pair<'_, Rule>) -> Result<ast::EventDecl> {
        let span = span_of(&pair);
        let mut parts = Parts::of(pair);
        let name = ident(parts.next("event name")?);
        let properties = parts
            .map(|property| {
                let span = span_of(&property);
                let mut parts = Parts::of(property);
                let name = ident(parts.next("property name")?);
                let ty_pair = parts.next("property type")?;
                let ty = match ty_pair.as_str() {
                    "string" => ast::PropertyType::String,
                    "number" => ast::PropertyType::Number,
                    "bool" => ast::PropertyType::Bool,
                    "time" => ast::PropertyType::Time,
                    "list" => ast::PropertyType::List,
                    "object" => ast::PropertyType::Object,
                    _ => return Err(internal(span_of(&ty_pair), "property type")),
                };
                let optional = parts.next_if(Rule::optional_mark).is_some();
                Ok(ast::PropertyDecl {
                    name,
                    ty,
                    optional,
                    ty_span: span_of(&ty_pair),
                    span,
                })
            })
            .collect::<Result<_>>()?;
        Ok(ast::EventDecl {
            name,
            properties,
            span,
        })
    }

    // ── flows ──

    fn flow_body(&mut self, pair: Pair<'_, Rule>) -> Result<ast::FlowBody> {
        let span = span_of(&pair);
        let mut header = Vec::new();
        let mut steps = Vec::new();
        for line in Parts::of(pair) {
            let inner = only_child(line)?;
            match inner.as_rule() {
                Rule::header_line => header.push(self.header_line(inner)?),
                Rule::step => steps.push(self.step(inner)?),
                _ => return Err(internal(span_of(&inner), "flow line")),
            }
        }
        Ok(ast::FlowBody {
            header,
            steps,
            span,
        })
    }

    fn header_line(&mut self, pair: Pair<'_, Rule>) -> Result<ast::HeaderLine> {
        let span = span_of(&pair);
        let line = only_child(pair)?;
        let line_span = span_of(&line);
        let kind = match line.as_rule() {
            Rule::when_line => self.when_line(only_child(line)?)?,
            Rule::only_if => {
                ast::HeaderKind::OnlyIf(self.expr(Parts::of(line).next("condition")?)?)
            }
            Rule::reentry => {
                let mut reentry = None;
                for child in line.into_inner() {
                    match child.as_rule() {
                        Rule::kw_never => reentry = Some(ast::Reentry::Never),
                        Rule::kw_always => reentry = Some(ast::Reentry::Always),
                        Rule::duration_expr => {
                            reentry = Some(ast::Reentry::After(self.duration_expr(child)?))
                        }
                        _ => {}
                    }
                }
                ast::HeaderKind::Reentry(reentry.ok_or_else(|| internal(line_span, "reentry"))?)
            }
            Rule::exit_on => {
                let mut parts = Parts::of(line);
                let event = ident(parts.next("exit event")?);
                let filter = parts
                    .next_if(Rule::expr)
                    .map(|e| self.expr(e))
                    .transpose()?;
                ast::HeaderKind::ExitOn { event, filter }
            }
            Rule::exit_if => {
                ast::HeaderKind::ExitIf(self.expr(Parts::of(line).next("condition")?)?)
            }
            Rule::quiet_hours => ast::HeaderKind::QuietHours(quiet_hours(line)?),
            Rule::goal => {
                let mut parts = Parts::of(line);
                let event = ident(parts.next("goal event")?);
                let filter = parts
                    .next_if(Rule::expr)
                    .map(|e| self.expr(e))
                    .transpose()?;
                let within = self.duration_expr(parts.next("goal duration")?)?;
                ast::HeaderKind::Goal {
                    event,
                    filter,
                    within,
                }
            }
            Rule::holdout => {
                ast::HeaderKind::Holdout(percent(&Parts::of(line).next("holdout share")?)?)
            }
            Rule::on_change => {
                let word = Parts::of(line).next("change policy")?;
                let policy = match word.as_str() {
                    "pin" => ast::ChangePolicy::Pin,
                    "migrate" => ast::ChangePolicy::Migrate,
                    "restart" => ast::ChangePolicy::Restart,
                    _ => return Err(internal(span_of(&word), "change policy")),
                };
                ast::HeaderKind::OnChange {
                    policy,
                    policy_span: span_of(&word),
                }
            }
            _ => return Err(internal(line_span, "header line")),
        };
        Ok(ast::HeaderLine { kind, span })
    }

    fn when_line(&mut self, pair: Pair<'_, Rule>) -> Result<ast::HeaderKind> {
        let rule = pair.as_rule();
        let pair_span = span_of(&pair);
        let mut parts = Parts::of(pair);
        Ok(match rule {
            Rule::when_every => {
                let every_pair = only_child(parts.next("schedule duration")?)?;
                let every = match every_pair.as_rule() {
                    Rule::every_word => ast::DurationExpr::Literal(every_word(&every_pair)?),
                    _ => self.duration_expr(every_pair)?,
                };
                let at = parts.next_if(Rule::time).map(|t| time(&t)).transpose()?;
                let segment = self.segment_ref(parts.next("scheduled segment")?)?;
                ast::HeaderKind::WhenEvery { every, at, segment }
            }
            Rule::when_anniversary => {
                let field = path(parts.next("anniversary field")?)?;
                let at = parts.next_if(Rule::time).map(|t| time(&t)).transpose()?;
                ast::HeaderKind::WhenAnniversary { field, at }
            }
            Rule::when_entering => ast::HeaderKind::WhenEntering {
                segment: self.segment_ref(parts.next("entered segment")?)?,
            },
            Rule::when_event => {
                let event = ident(parts.next("trigger event")?);
                let filter = parts
                    .next_if(Rule::expr)
                    .map(|e| self.expr(e))
                    .transpose()?;
                ast::HeaderKind::WhenEvent { event, filter }
            }
            _ => return Err(internal(pair_span, "when line")),
        })
    }

    fn segment_ref(&mut self, pair: Pair<'_, Rule>) -> Result<ast::SegmentRef> {
        let span = span_of(&pair);
        let mut parts = Parts::of(pair);
        let name = ident(parts.next("segment name")?);
        let args = match parts.next_if(Rule::call_args) {
            Some(args) => self.call_args(args, 0)?,
            None => Vec::new(),
        };
        Ok(ast::SegmentRef { name, args, span })
    }

    // ── steps ──

    fn block(&mut self, pair: Pair<'_, Rule>) -> Result<ast::Block> {
        let span = span_of(&pair);
        let steps = Parts::of(pair)
            .map(|step| self.step(step))
            .collect::<Result<_>>()?;
        Ok(ast::Block { steps, span })
    }

    fn step(&mut self, pair: Pair<'_, Rule>) -> Result<ast::Step> {
        let whole = span_of(&pair);
        let mut children = pair.into_inner();
        let mut label = None;
        let mut step = children.next().ok_or_else(|| internal(whole, "step"))?;
        if step.as_rule() == Rule::step_label {
            label = Some(ident(Parts::of(step).next("step label")?));
            step = children.next().ok_or_else(|| internal(whole, "step"))?;
        }
        let span = span_of(&step);
        let rule = step.as_rule();
        let kind = match rule {
            Rule::send => ast::StepKind::Send {
                message: ident(Parts::of(step).next("message name")?),
            },
            Rule::wait_until => ast::StepKind::WaitUntil {
                time: time(&Parts::of(step).next("time")?)?,
            },
            Rule::wait_duration => ast::StepKind::Wait {
                duration: self.duration_expr(Parts::of(step).next("duration")?)?,
            },
            Rule::wait_for => ast::StepKind::WaitFor(self.wait_for(step)?),
            Rule::if_step => self.if_step(step)?,
            Rule::split => {
                let arms = Parts::of(step)
                    .map(|arm| {
                        let span = span_of(&arm);
                        let mut parts = Parts::of(arm);
                        let share = percent(&parts.next("share")?)?;
                        let block = self.block(parts.next("split block")?)?;
                        Ok(ast::SplitArm { share, block, span })
                    })
                    .collect::<Result<_>>()?;
                ast::StepKind::Split { arms }
            }
            Rule::set_step => {
                let mut parts = Parts::of(step);
                let field = path(parts.next("field")?)?;
                let value = self.expr(parts.next("value")?)?;
                ast::StepKind::Set { field, value }
            }
            Rule::unsubscribe => {
                let mut target = None;
                for child in step.into_inner() {
                    match child.as_rule() {
                        Rule::channel => {
                            target = Some((
                                ast::UnsubscribeTarget::Channel(channel_of(&child)?),
                                span_of(&child),
                            ))
                        }
                        Rule::kw_all => {
                            target = Some((ast::UnsubscribeTarget::All, span_of(&child)))
                        }
                        _ => {}
                    }
                }
                let (target, target_span) =
                    target.ok_or_else(|| internal(span, "unsubscribe target"))?;
                ast::StepKind::Unsubscribe {
                    target,
                    target_span,
                }
            }
            Rule::stop => ast::StepKind::Stop,
            _ => return Err(internal(span, "step")),
        };
        Ok(ast::Step { kind, span, label })
    }

    fn wait_for(&mut self, pair: Pair<'_, Rule>) -> Result<ast::WaitFor> {
        let span = span_of(&pair);
        let mut events = Vec::new();
        let mut timeout = None;
        let mut body = ast::WaitForBody::None;
        let mut otherwise = None;
        for child in Parts::of(pair) {
            match child.as_rule() {
                Rule::awaited => {
                    let span = span_of(&child);
                    let mut parts = Parts::of(child);
                    let event = ident(parts.next("awaited event")?);
                    let filter = parts
                        .next_if(Rule::wait_filter)
                        .map(|e| self.expr(e))
                        .transpose()?;
                    events.push(ast::EventMatcher {
                        event,
                        filter,
                        span,
                    });
                }
                Rule::duration_expr => timeout = Some(self.duration_expr(child)?),
                Rule::block => body = ast::WaitForBody::Received(self.block(child)?),
                Rule::on_arms => {
                    let arms = Parts::of(child)
                        .map(|arm| {
                            let span = span_of(&arm);
                            let mut parts = Parts::of(arm);
                            let event = ident(parts.next("arm event")?);
                            let block = self.block(parts.next("arm block")?)?;
                            Ok(ast::OnArm { event, block, span })
                        })
                        .collect::<Result<_>>()?;
                    body = ast::WaitForBody::Arms(arms);
                }
                Rule::else_block => {
                    otherwise = Some(self.block(Parts::of(child).next("else block")?)?)
                }
                _ => return Err(internal(span_of(&child), "wait for")),
            }
        }
        let timeout = timeout.ok_or_else(|| internal(span, "wait timeout"))?;
        Ok(ast::WaitFor {
            events,
            timeout,
            body,
            otherwise,
        })
    }

    fn if_step(&mut self, pair: Pair<'_, Rule>) -> Result<ast::StepKind> {
        let mut parts = Parts::of(pair);
        let condition = self.expr(parts.next("if condition")?)?;
        let block = self.block(parts.next("if block")?)?;
        let mut branches = vec![ast::IfBranch { condition, block }];
        let mut otherwise = None;
        for child in parts {
            match child.as_rule() {
                Rule::else_if => {
                    let mut parts = Parts::of(child);
                    let condition = self.expr(parts.next("else if condition")?)?;
                    let block = self.block(parts.next("else if block")?)?;
                    branches.push(ast::IfBranch { condition, block });
                }
                Rule::else_block => {
                    otherwise = Some(self.block(Parts::of(child).next("else block")?)?)
                }
                _ => return Err(internal(span_of(&child), "if")),
            }
        }
        Ok(ast::StepKind::If {
            branches,
            otherwise,
        })
    }

    // ── durations ──

    /// A `duration_expr`: a literal, or the name of a parameter in scope.
    fn duration_expr(&mut self, pair: Pair<'_, Rule>) -> Result<ast::DurationExpr> {
        let inner = only_child(pair)?;
        match inner.as_rule() {
            Rule::duration => Ok(ast::DurationExpr::Literal(duration(inner)?)),
            _ => {
                let name = ident(inner);
                if self.params.contains(&name.name) {
                    return Ok(ast::DurationExpr::Param(name));
                }
                let help =
                    if self.params.is_empty() {
                        "write a number and a unit: `30s`, `15min`, `2h`, `3d`, `1w`, `4mo` or `1y`"
                            .to_string()
                    } else {
                        format!(
                        "write a number and a unit such as `3d`, or the name of a parameter: {}",
                        self.params.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
                    )
                    };
                Err(SyntaxError {
                    span: name.span,
                    message: format!("expected a duration such as `2d`, found `{}`", name.name),
                    label: "not a duration".into(),
                    help: Some(help),
                    related: Vec::new(),
                    kind: SyntaxErrorKind::Grammar,
                })
            }
        }
    }

    // ── expressions ──

    fn expr(&mut self, pair: Pair<'_, Rule>) -> Result<ast::Expr> {
        self.expr_at(pair, 0)
    }

    /// Groups an `expr` (or `wait_filter`) pair's flat list by precedence.
    fn expr_at(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Result<ast::Expr> {
        let span = span_of(&pair);
        let mut pieces = Vec::new();
        let mut operators = 0;
        for child in pair.into_inner() {
            match child.as_rule() {
                Rule::operand => {
                    for part in child.into_inner() {
                        match part.as_rule() {
                            Rule::op_not => pieces.push(Piece::Not(span_of(&part))),
                            Rule::op_neg => pieces.push(Piece::Neg(span_of(&part))),
                            _ => pieces.push(Piece::Operand(part)),
                        }
                    }
                }
                Rule::infix_op => {
                    operators += 1;
                    let op_span = span_of(&child);
                    let op = only_child(child)?;
                    let infix = match op.as_rule() {
                        Rule::op_or => Infix::Binary(ast::BinaryOp::Or),
                        Rule::op_and => Infix::Binary(ast::BinaryOp::And),
                        Rule::op_in => Infix::In,
                        Rule::op_eq => Infix::Binary(ast::BinaryOp::Eq),
                        Rule::op_ne => Infix::Binary(ast::BinaryOp::Ne),
                        Rule::op_le => Infix::Binary(ast::BinaryOp::Le),
                        Rule::op_ge => Infix::Binary(ast::BinaryOp::Ge),
                        Rule::op_lt => Infix::Binary(ast::BinaryOp::Lt),
                        Rule::op_gt => Infix::Binary(ast::BinaryOp::Gt),
                        Rule::op_add => Infix::Binary(ast::BinaryOp::Add),
                        Rule::op_sub => Infix::Binary(ast::BinaryOp::Sub),
                        Rule::op_mul => Infix::Binary(ast::BinaryOp::Mul),
                        Rule::op_div => Infix::Binary(ast::BinaryOp::Div),
                        _ => return Err(internal(op_span, "operator")),
                    };
                    pieces.push(Piece::Infix(infix));
                }
                _ => {}
            }
        }
        if operators > MAX_OPERATORS {
            return Err(SyntaxError {
                span,
                message: format!(
                    "this expression is too long (more than {MAX_OPERATORS} operators)"
                ),
                label: "too long".into(),
                help: Some("split it into segments and combine those".into()),
                related: Vec::new(),
                kind: SyntaxErrorKind::TooDeep,
            });
        }
        let mut pieces = pieces.into_iter().peekable();
        let expr = self.pratt(&mut pieces, 0, depth, span)?;
        if pieces.next().is_some() {
            return Err(internal(span, "expression left over"));
        }
        Ok(expr)
    }

    /// Precedence climbing over the flat list: operators binding at least `min` are taken.
    fn pratt<'i>(
        &mut self,
        pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece<'i>>>,
        min: u8,
        depth: usize,
        whole: Span,
    ) -> Result<ast::Expr> {
        if depth > MAX_EXPR_DEPTH {
            return Err(SyntaxError {
                span: whole,
                message: format!(
                    "this expression is nested too deeply (more than {MAX_EXPR_DEPTH} levels)"
                ),
                label: "too deep".into(),
                help: Some("split it into segments and combine those".into()),
                related: Vec::new(),
                kind: SyntaxErrorKind::TooDeep,
            });
        }
        let mut lhs = match pieces.next() {
            Some(Piece::Not(span)) => {
                let operand = self.pratt(pieces, NOT_PRECEDENCE, depth + 1, whole)?;
                ast::Expr {
                    span: span.to(operand.span),
                    kind: ast::ExprKind::Unary {
                        op: ast::UnaryOp::Not,
                        operand: Box::new(operand),
                    },
                }
            }
            Some(Piece::Neg(span)) => {
                let operand = self.pratt(pieces, NEG_PRECEDENCE, depth + 1, whole)?;
                ast::Expr {
                    span: span.to(operand.span),
                    kind: ast::ExprKind::Unary {
                        op: ast::UnaryOp::Neg,
                        operand: Box::new(operand),
                    },
                }
            }
            Some(Piece::Operand(pair)) => self.primary(pair, depth + 1)?,
            Some(Piece::Infix(..)) | None => return Err(internal(whole, "operand")),
        };
        loop {
            let infix = match pieces.peek() {
                Some(Piece::Infix(infix)) if infix.precedence() >= min.max(1) => *infix,
                _ => break,
            };
            pieces.next();
            let rhs = self.pratt(pieces, infix.precedence() + 1, depth + 1, whole)?;
            let span = lhs.span.to(rhs.span);
            let kind = match infix {
                Infix::Binary(op) => ast::ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                Infix::In => ast::ExprKind::In {
                    needle: Box::new(lhs),
                    list: Box::new(rhs),
                },
            };
            lhs = ast::Expr { kind, span };
        }
        Ok(lhs)
    }

    fn primary(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Result<ast::Expr> {
        use ast::ExprKind as K;
        let span = span_of(&pair);
        let rule = pair.as_rule();
        let kind = match rule {
            Rule::paren => {
                // The parentheses are not kept as a node; the span widens to cover them.
                let inner =
                    self.expr_at(Parts::of(pair).next("parenthesised expression")?, depth + 1)?;
                return Ok(ast::Expr {
                    kind: inner.kind,
                    span,
                });
            }
            Rule::list => K::List(
                Parts::of(pair)
                    .map(|item| self.expr_at(item, depth + 1))
                    .collect::<Result<_>>()?,
            ),
            Rule::time => K::Time(time(&pair)?),
            Rule::percent => K::Percent(percent(&pair)?.value),
            Rule::duration => K::Duration(duration(pair)?),
            Rule::number => K::Number(number(&pair)?),
            Rule::string => K::String(string_lit(pair).value),
            Rule::boolean => K::Bool(pair.as_str() == "true"),
            Rule::null => K::Null,
            Rule::count_call => {
                let mut parts = Parts::of(pair);
                let event = ident(parts.next("counted event")?);
                let filter = parts
                    .next_if(Rule::expr)
                    .map(|e| self.expr_at(e, depth + 1))
                    .transpose()?
                    .map(Box::new);
                let within = parts
                    .next_if(Rule::duration_expr)
                    .map(|d| self.duration_expr(d))
                    .transpose()?;
                K::Count {
                    event,
                    filter,
                    within,
                }
            }
            Rule::sum_call => {
                let mut parts = Parts::of(pair);
                let (event, property) = event_property(parts.next("summed property")?)?;
                let within = parts
                    .next_if(Rule::duration_expr)
                    .map(|d| self.duration_expr(d))
                    .transpose()?;
                K::Sum {
                    event,
                    property,
                    within,
                }
            }
            Rule::last_call => {
                let (event, property) = event_property(Parts::of(pair).next("property")?)?;
                K::Last { event, property }
            }
            Rule::since_call => K::Since {
                event: ident(Parts::of(pair).next("event")?),
            },
            Rule::exists_call => K::Exists(path(Parts::of(pair).next("path")?)?),
            Rule::can_receive_call => {
                let channel = Parts::of(pair).next("channel")?;
                K::CanReceive {
                    channel: channel_of(&channel)?,
                    channel_span: span_of(&channel),
                }
            }
            Rule::segment_call => {
                let mut parts = Parts::of(pair);
                let name = ident(parts.next("segment name")?);
                let args = self.call_args(parts.next("segment arguments")?, depth + 1)?;
                K::SegmentCall { name, args }
            }
            Rule::path => K::Path(path(pair)?),
            Rule::name_ref => K::Name(ident(Parts::of(pair).next("name")?)),
            _ => return Err(internal(span, "value")),
        };
        Ok(ast::Expr { kind, span })
    }

    fn call_args(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Result<Vec<ast::Arg>> {
        Parts::of(pair)
            .map(|arg| {
                let span = span_of(&arg);
                let mut parts = Parts::of(arg);
                let name = parts.next_if(Rule::name).map(ident);
                let value = self.expr_at(parts.next("argument value")?, depth + 1)?;
                Ok(ast::Arg { name, value, span })
            })
            .collect()
    }
}

fn ident(pair: Pair<'_, Rule>) -> ast::Ident {
    ast::Ident {
        name: pair.as_str().to_string(),
        span: span_of(&pair),
    }
}

fn path(pair: Pair<'_, Rule>) -> Result<ast::Path> {
    let span = span_of(&pair);
    let mut names = pair.into_inner().map(ident);
    let root = names.next().ok_or_else(|| internal(span, "path root"))?;
    Ok(ast::Path {
        root,
        fields: names.collect(),
        span,
    })
}

fn event_property(pair: Pair<'_, Rule>) -> Result<(ast::Ident, Vec<ast::Ident>)> {
    let path = path(pair)?;
    Ok((path.root, path.fields))
}

fn channel_of(pair: &Pair<'_, Rule>) -> Result<ast::Channel> {
    ast::Channel::from_keyword(pair.as_str()).ok_or_else(|| internal(span_of(pair), "channel"))
}

fn string_lit(pair: Pair<'_, Rule>) -> ast::StringLit {
    let span = span_of(&pair);
    let raw = pair.as_str();
    let inner = raw
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(raw);
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some(other) => value.push(other),
                None => value.push('\\'),
            }
        } else {
            value.push(c);
        }
    }
    ast::StringLit { value, span }
}

fn quiet_hours(pair: Pair<'_, Rule>) -> Result<ast::QuietHours> {
    let mut parts = Parts::of(pair);
    let start = time(&parts.next("start time")?)?;
    let end = time(&parts.next("end time")?)?;
    Ok(ast::QuietHours { start, end })
}

fn time(pair: &Pair<'_, Rule>) -> Result<ast::TimeOfDay> {
    let span = span_of(pair);
    let text = pair.as_str();
    let (hour, minute) = text.split_once(':').ok_or_else(|| internal(span, "time"))?;
    let hour: u8 = hour.parse().map_err(|_| internal(span, "hour"))?;
    let minute: u8 = minute.parse().map_err(|_| internal(span, "minute"))?;
    if hour > 23 || minute > 59 {
        return Err(out_of_range(
            span,
            format!("`{text}` is not a time of day"),
            "times use a 24-hour clock from `00:00` to `23:59`, such as `09:00` or `21:30`",
        ));
    }
    Ok(ast::TimeOfDay { hour, minute, span })
}

fn percent(pair: &Pair<'_, Rule>) -> Result<ast::Percent> {
    let span = span_of(pair);
    let text = pair.as_str();
    let value: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| internal(span, "percentage"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(out_of_range(
            span,
            format!("`{text}` is more than 100%"),
            "a share is a percentage from `0%` to `100%`",
        ));
    }
    Ok(ast::Percent { value, span })
}

fn number(pair: &Pair<'_, Rule>) -> Result<f64> {
    let span = span_of(pair);
    let value: f64 = pair
        .as_str()
        .parse()
        .map_err(|_| internal(span, "number"))?;
    if !value.is_finite() {
        return Err(out_of_range(
            span,
            "this number is too large".into(),
            "numbers must stay below 10^308; was a unit or a decimal point left out?",
        ));
    }
    Ok(value)
}

fn integer(pair: &Pair<'_, Rule>) -> Result<u32> {
    pair.as_str().parse().map_err(|_| {
        out_of_range(
            span_of(pair),
            format!("`{}` is too large", pair.as_str()),
            "a count must stay below 4294967296",
        )
    })
}

fn duration(pair: Pair<'_, Rule>) -> Result<ast::Duration> {
    let span = span_of(&pair);
    let text = pair.as_str();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let too_long = || {
        out_of_range(
            span,
            format!("the duration `{text}` is too long"),
            "write a shorter duration, such as `1y`",
        )
    };
    let amount: u64 = digits.parse().map_err(|_| too_long())?;
    let unit = match unit.trim_start() {
        "seconds" | "second" | "secs" | "sec" | "s" => ast::DurationUnit::Seconds,
        "minutes" | "minute" | "mins" | "min" => ast::DurationUnit::Minutes,
        "hours" | "hour" | "h" => ast::DurationUnit::Hours,
        "days" | "day" | "d" => ast::DurationUnit::Days,
        "weeks" | "week" | "w" => ast::DurationUnit::Weeks,
        "months" | "month" | "mo" => ast::DurationUnit::Months,
        "years" | "year" | "y" => ast::DurationUnit::Years,
        _ => return Err(internal(span, "duration unit")),
    };
    // Keep every duration far within what a timestamp can hold: 10^10 seconds is already over
    // 300 years.
    let duration = ast::Duration { amount, unit, span };
    if duration.approx_max_seconds() > 100_000_000_000 {
        return Err(too_long());
    }
    Ok(duration)
}

fn every_word(pair: &Pair<'_, Rule>) -> Result<ast::Duration> {
    let span = span_of(pair);
    let unit = match pair.as_str() {
        "hour" => ast::DurationUnit::Hours,
        "day" => ast::DurationUnit::Days,
        "week" => ast::DurationUnit::Weeks,
        "month" => ast::DurationUnit::Months,
        "year" => ast::DurationUnit::Years,
        _ => return Err(internal(span, "schedule word")),
    };
    Ok(ast::Duration {
        amount: 1,
        unit,
        span,
    })
}

// ───────────────────────────── Syntax errors ─────────────────────────────

/// What stands where the parser gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    EndOfFile,
    EndOfLine,
    Token(String),
}

impl Found {
    /// The token at `pos` of the (prepared) text, and its span.
    fn at(text: &str, pos: usize) -> (Found, Span) {
        let rest = text.get(pos..).unwrap_or("");
        let Some(first) = rest.chars().next() else {
            return (Found::EndOfFile, Span::new(pos, pos));
        };
        let len = match first {
            '\n' | '\r' => return (Found::EndOfLine, Span::new(pos, pos)),
            '"' => quoted_len(rest, '"'),
            '\'' => quoted_len(rest, '\''),
            c if c.is_ascii_digit() => rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '%')))
                .unwrap_or(rest.len()),
            c if c.is_alphanumeric() || c == '_' => rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len()),
            _ => {
                if ["==", "!=", "<=", ">=", ".."]
                    .iter()
                    .any(|op| rest.starts_with(op))
                {
                    2
                } else {
                    first.len_utf8()
                }
            }
        };
        let len = len.max(first.len_utf8());
        let mut token = rest.get(..len).unwrap_or(rest).trim_end();
        if token.is_empty() {
            // Some other kind of space: show it as it is.
            token = rest.get(..first.len_utf8()).unwrap_or(rest);
        }
        (
            Found::Token(token.to_string()),
            Span::new(pos, pos + token.len()),
        )
    }

    fn describe(&self) -> String {
        match self {
            Found::EndOfFile => "the end of the file".into(),
            Found::EndOfLine => "the end of the line".into(),
            Found::Token(token) => format!("`{}`", shorten(token)),
        }
    }
}

/// The length of a quoted token at the start of `rest`: to its closing quote or line end.
fn quoted_len(rest: &str, quote: char) -> usize {
    let mut escaped = false;
    for (index, c) in rest.char_indices().skip(1) {
        match c {
            '\n' | '\r' => return index,
            '\\' if !escaped => {
                escaped = true;
                continue;
            }
            c if c == quote && !escaped => return index + 1,
            _ => {}
        }
        escaped = false;
    }
    rest.len()
}

fn shorten(token: &str) -> String {
    if token.chars().count() > 40 {
        let short: String = token.chars().take(37).collect();
        format!("{short}...")
    } else {
        token.to_string()
    }
}

/// What an expected rule is called in an error message: the long phrase (with an example) and
/// a short one for the label. `None`: the rule is not worth naming.
fn expected_phrase(rule: Rule) -> Option<(&'static str, &'static str)> {
    Some(match rule {
        Rule::EOI => ("the end of the file", "the end of the file"),
        Rule::eol => ("the end of the line", "the end of the line"),
        Rule::item | Rule::file => (
            "a declaration such as `flow`, `segment` or `message`",
            "a declaration",
        ),
        Rule::flow_line => (
            "a header line such as `when`, or a step such as `send`, `wait` or `if`",
            "a step",
        ),
        Rule::step => ("a step such as `send`, `wait` or `if`", "a step"),
        Rule::header_line => ("a header line such as `when` or `exit on`", "a header line"),
        Rule::policy_line => (
            "a policy line such as `quiet hours 21:00..08:00` or `limit email 3 per 1w`",
            "a policy line",
        ),
        Rule::message_field => ("a message field such as `subject:`", "a message field"),
        Rule::property_decl => (
            "an event property such as `total: number`",
            "an event property",
        ),
        Rule::split_arm => ("a share such as `50% { ... }`", "a share"),
        Rule::on_arm => ("an arm such as `on order_placed { ... }`", "an `on` arm"),
        Rule::name | Rule::name_ref | Rule::segment_ref | Rule::when_event => ("a name", "a name"),
        Rule::path => ("a field such as `contact.plan`", "a field"),
        Rule::event_property => (
            "an event property such as `order_placed.total`",
            "an event property",
        ),
        Rule::stdlib_path => (
            "a stdlib module such as `stdlib/consent`",
            "a stdlib module",
        ),
        Rule::duration | Rule::duration_expr | Rule::integer => {
            ("a duration such as `2d`", "a duration")
        }
        Rule::every_duration => ("a duration such as `1d` or `day`", "a duration"),
        Rule::every_word => ("a duration such as `2d`", "a duration"),
        Rule::time => ("a time of day such as `09:00`", "a time"),
        Rule::percent => ("a percentage such as `50%`", "a percentage"),
        Rule::number => ("a number", "a number"),
        Rule::string => ("a text in double quotes", "a text"),
        Rule::field_value => (
            "a text in double quotes, `file(\"...\")`, `true` or `false`",
            "a value",
        ),
        Rule::channel => (
            "a channel (`email`, `sms`, `push` or `webhook`)",
            "a channel",
        ),
        Rule::param_type => ("a parameter type such as `duration`", "a type"),
        Rule::property_type => ("a property type such as `string`", "a type"),
        Rule::param => ("a parameter such as `period: duration`", "a parameter"),
        Rule::params => (
            "a parameter list such as `(period: duration)`",
            "parameters",
        ),
        Rule::arg => ("an argument", "an argument"),
        Rule::call_args | Rule::lparen => ("`(`", "`(`"),
        Rule::operand | Rule::expr | Rule::wait_filter => (
            "a value or condition such as `contact.plan == \"pro\"`",
            "a value",
        ),
        Rule::infix_op => ("an operator such as `and`, `or` or `==`", "an operator"),
        Rule::block | Rule::flow_body | Rule::lbrace => ("`{`", "`{`"),
        Rule::rbrace => ("`}`", "`}`"),
        Rule::rparen => ("`)`", "`)`"),
        Rule::lbracket => ("`[`", "`[`"),
        Rule::rbracket => ("`]`", "`]`"),
        Rule::colon => ("`:`", "`:`"),
        Rule::comma => ("`,`", "`,`"),
        Rule::eq_sign => ("`=`", "`=`"),
        Rule::dotdot => ("`..` between two times", "`..`"),
        Rule::else_block | Rule::else_if | Rule::kw_else => ("`else`", "`else`"),
        Rule::kw_use => ("`use`", "`use`"),
        Rule::kw_segment => ("`segment`", "`segment`"),
        Rule::kw_message => ("`message`", "`message`"),
        Rule::kw_transactional => ("`transactional`", "`transactional`"),
        Rule::kw_flow => ("`flow`", "`flow`"),
        Rule::kw_template => ("`template`", "`template`"),
        Rule::kw_policy => ("`policy`", "`policy`"),
        Rule::kw_event => ("`event`", "`event`"),
        Rule::kw_when => ("`when`", "`when`"),
        Rule::kw_every => ("`every`", "`every`"),
        Rule::kw_at => ("`at`", "`at`"),
        Rule::kw_for => ("`for`", "`for`"),
        Rule::kw_anniversary => ("`anniversary`", "`anniversary`"),
        Rule::kw_of => ("`of`", "`of`"),
        Rule::kw_entering => ("`entering`", "`entering`"),
        Rule::kw_only => ("`only`", "`only`"),
        Rule::kw_if => ("`if`", "`if`"),
        Rule::kw_reentry => ("`reentry`", "`reentry`"),
        Rule::kw_never => ("`never`", "`never`"),
        Rule::kw_always => ("`always`", "`always`"),
        Rule::kw_after => ("`after`", "`after`"),
        Rule::kw_exit => ("`exit`", "`exit`"),
        Rule::kw_on => ("`on`", "`on`"),
        Rule::kw_quiet => ("`quiet`", "`quiet`"),
        Rule::kw_hours => ("`hours`", "`hours`"),
        Rule::kw_goal => ("`goal`", "`goal`"),
        Rule::kw_within => ("`within`", "`within`"),
        Rule::kw_holdout => ("`holdout`", "`holdout`"),
        Rule::kw_send => ("`send`", "`send`"),
        Rule::kw_wait => ("`wait`", "`wait`"),
        Rule::kw_until => ("`until`", "`until`"),
        Rule::kw_up => ("`up to` and a duration", "`up to`"),
        Rule::kw_to => ("`to`", "`to`"),
        Rule::kw_split => ("`split`", "`split`"),
        Rule::kw_set => ("`set`", "`set`"),
        Rule::kw_unsubscribe => ("`unsubscribe`", "`unsubscribe`"),
        Rule::kw_all => ("`all`", "`all`"),
        Rule::kw_stop => ("`stop`", "`stop`"),
        Rule::kw_where => ("`where`", "`where`"),
        Rule::kw_limit => ("`limit`", "`limit`"),
        Rule::kw_per => ("`per`", "`per`"),
        Rule::kw_file => ("`file`", "`file`"),
        Rule::kw_or => ("`or` and another event", "`or`"),
        Rule::kw_change => ("`change`", "`change`"),
        Rule::kw_step => ("`step`", "`step`"),
        Rule::change_policy => ("`pin`, `migrate` or `restart`", "a change policy"),
        _ => return None,
    })
}

/// Statement-level expectations: when one of these is expected, the line-end and `}` that
/// could also stand there are not worth mentioning.
fn is_statement_rule(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::item
            | Rule::file
            | Rule::flow_line
            | Rule::step
            | Rule::header_line
            | Rule::policy_line
            | Rule::message_field
            | Rule::property_decl
            | Rule::split_arm
            | Rule::on_arm
    )
}

/// The help line that goes with the main expectation.
fn default_help(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::item | Rule::file => "a file holds `use`, `segment`, `message`, `flow`, `policy` and `event` declarations, each starting on its own line",
        Rule::flow_line => "a flow starts with header lines (`when`, `only if`, `exit on`, `goal`, ...) followed by steps (`send`, `wait`, `wait for`, `if`, `split`, `set`, `unsubscribe`, `stop`)",
        Rule::step => "the steps are `send`, `wait`, `wait until`, `wait for`, `if`, `split`, `set`, `unsubscribe` and `stop`",
        Rule::policy_line => "a policy holds `quiet hours HH:MM..HH:MM` and `limit CHANNEL N per DURATION` lines",
        Rule::message_field => "write each field as `name: \"value\"`, one per line or separated by commas",
        Rule::property_decl => "write each property as `name: type`, with `?` after the type if it may be missing",
        Rule::split_arm => "each arm of a `split` is a share and a block: `50% { send a }`",
        Rule::duration | Rule::duration_expr | Rule::integer | Rule::every_duration | Rule::every_word => {
            "write a number and a unit: `30s`, `15min`, `2h`, `3d`, `1w`, `4mo` or `1y`"
        }
        Rule::time => "times use a 24-hour clock: `09:00`, `21:30`",
        Rule::change_policy => "`on change pin` keeps running instances on their version, `on change migrate` moves them to the new one, `on change restart` ends them",
        Rule::param_type => {
            "the parameter types are `duration`, `number`, `string` and `bool`, and in a flow template also `message`, `segment` and `event`"
        }
        Rule::property_type => {
            "the property types are `string`, `number`, `bool`, `time`, `list` and `object`; add `?` when the property may be missing"
        }
        Rule::colon => "write a field as `name: value`",
        Rule::stdlib_path => "stdlib modules are named with `stdlib/`, such as `use stdlib/consent`",
        Rule::kw_up => "a `wait for` needs a time limit, such as `wait for order_placed up to 2d`",
        Rule::dotdot | Rule::kw_hours => "write quiet hours as `quiet hours 21:00..08:00`",
        Rule::kw_per => "write a frequency cap as `limit email 3 per 1w`",
        Rule::kw_of => "write `when anniversary of contact.birthday at 09:00`",
        Rule::kw_for | Rule::kw_at => "write a schedule as `when every day at 09:00 for SEGMENT`",
        Rule::kw_to => "a `wait for` needs a time limit, such as `wait for order_placed up to 2d`",
        Rule::kw_never | Rule::kw_always | Rule::kw_after => {
            "write `reentry never`, `reentry always` or `reentry after 30d`"
        }
        Rule::kw_within => "write a time window as `within 30d`, after the event and its `where` filter",
        Rule::kw_template => {
            "write `flow NAME { ... }`, `flow template NAME(PARAMS) { ... }` or `flow NAME = TEMPLATE(ARGS)`"
        }
        Rule::eq_sign => "a declaration gives its value after one `=`, such as `segment vip = contact.plan == \"pro\"`",
        Rule::comma => "separate fields with a line break or a comma",
        Rule::event_property => "`sum` and `last` take an event and one of its properties, such as `sum(order_placed.total)`",
        Rule::on_arm => "a `wait for` with several events has one `on EVENT { ... }` arm per event",
        Rule::percent => "write a share as a number and `%`, such as `10%`",
        Rule::channel => "the channels are `email`, `sms`, `push` and `webhook`",
        Rule::field_value => "write text in double quotes, such as `\"Welcome!\"`, or `file(\"templates/welcome.html\")`",
        Rule::string => "write text in double quotes, such as `\"Welcome!\"`",
        Rule::name | Rule::name_ref | Rule::segment_ref | Rule::when_event => {
            "names use lower-case letters, digits and `_`, such as `cart_abandoned`"
        }
        Rule::path => "a field is `contact.`, `trigger.` or `event.` followed by a name, such as `contact.plan`",
        Rule::operand | Rule::expr | Rule::wait_filter => {
            "a condition compares values, such as `contact.plan == \"pro\"` or `count(order_placed within 30d) > 2`"
        }
        Rule::rbrace => "every `{` needs a matching `}`",
        Rule::rparen => "every `(` needs a matching `)`",
        Rule::eol => "put each statement on its own line (or separate them with `;`)",
        Rule::lbrace | Rule::block => "a block of steps goes between `{` and `}`",
        _ => return None,
    })
}

/// Turns a pest error into a [`SyntaxError`] worded for people who write flows.
fn describe_error(text: &str, error: pest::error::Error<Rule>) -> SyntaxError {
    let pos = match error.location {
        pest::error::InputLocation::Pos(pos) => pos,
        pest::error::InputLocation::Span((start, _)) => start,
    };
    let end_of_code = before_trailing_comment(text, pos);
    let positives = match error.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives,
        pest::error::ErrorVariant::CustomError { message } => {
            return SyntaxError {
                span: Span::new(pos, pos),
                message: format!("this file could not be parsed ({message})"),
                label: "here".into(),
                help: Some(
                    "the file is probably nested too deeply; split it into smaller pieces".into(),
                ),
                related: Vec::new(),
                kind: SyntaxErrorKind::TooDeep,
            };
        }
    };
    let (found, span) = if end_of_code == pos {
        Found::at(text, pos)
    } else {
        (Found::EndOfLine, Span::new(end_of_code, end_of_code))
    };
    let pos = end_of_code;
    let mut error = SyntaxError {
        span,
        message: String::new(),
        label: String::new(),
        help: None,
        related: Vec::new(),
        kind: SyntaxErrorKind::Grammar,
    };

    // Which expectations to name.
    let statement_level = positives.iter().any(|r| is_statement_rule(*r));
    let mut rules: Vec<Rule> = positives
        .iter()
        .copied()
        .filter(|rule| {
            !(statement_level
                && matches!(rule, Rule::eol | Rule::rbrace | Rule::EOI | Rule::infix_op))
        })
        .filter(|rule| !(*rule == Rule::on_arm && positives.contains(&Rule::step)))
        .filter(|rule| !(*rule == Rule::kw_else && statement_level))
        .collect();
    if rules.iter().any(|r| *r != Rule::infix_op) {
        rules.retain(|r| *r != Rule::infix_op);
    }
    if rules.contains(&Rule::eol) {
        rules.retain(|r| !matches!(r, Rule::rbrace | Rule::EOI));
    }
    if rules.contains(&Rule::percent) {
        rules.retain(|r| *r != Rule::eol);
    }
    if rules.contains(&Rule::flow_line) {
        rules.retain(|r| !matches!(r, Rule::step | Rule::header_line));
    }
    // Inside `{ on a { } ... }` the next line may only be another arm or `}`.
    if rules.contains(&Rule::kw_on) && rules.contains(&Rule::eol) {
        rules.retain(|r| !matches!(r, Rule::eol | Rule::rbrace));
        for rule in &mut rules {
            if *rule == Rule::kw_on {
                *rule = Rule::on_arm;
            }
        }
        rules.push(Rule::rbrace);
    }
    let mut phrases: Vec<(&str, &str)> = Vec::new();
    for rule in &rules {
        if let Some(phrase) = expected_phrase(*rule) {
            if !phrases
                .iter()
                .any(|p| p.0 == phrase.0 || (p.1 == phrase.1 && p.1 != "a name"))
            {
                phrases.push(phrase);
            }
        }
    }
    // A name is better described by the word before it.
    let previous = previous_word(text, pos);
    for phrase in &mut phrases {
        if phrase.0 == "a name" {
            *phrase = name_phrase(previous.as_deref());
        }
    }
    // Keywords first, then descriptions: "`for`, `until` or a duration such as `2d`".
    phrases.sort_by_key(|p| !p.0.starts_with('`'));
    let expected = join_or(phrases.iter().map(|p| p.0));
    let found_text = found.describe();
    error.message = if expected.is_empty() {
        format!("unexpected {found_text}")
    } else {
        format!("expected {expected}, found {found_text}")
    };
    error.label = match (&found, phrases.first()) {
        (Found::EndOfFile, _) => "the file ends here".into(),
        (Found::EndOfLine, _) => "the line ends here".into(),
        // Under `2.5d` or `5m`, the description (a duration) is what was meant, not `for`.
        (Found::Token(token), Some(first)) => {
            let numeric = token.starts_with(|c: char| c.is_ascii_digit());
            let chosen = phrases
                .iter()
                .find(|p| numeric && !p.0.starts_with('`'))
                .unwrap_or(first);
            format!("expected {} here", chosen.1)
        }
        (Found::Token(_), None) => "unexpected here".into(),
    };
    // The help of the main expectation; "every `(` needs a `)`" only when nothing else fits.
    let closing = |r: &&Rule| matches!(r, Rule::rbrace | Rule::rparen | Rule::eol);
    error.help = rules
        .iter()
        .filter(|r| rules.len() == 1 || !closing(r))
        .find_map(|r| default_help(*r))
        .or_else(|| rules.iter().find_map(|r| default_help(*r)))
        .map(str::to_string);
    if error.help.is_none() {
        error.help = match previous.as_deref() {
            Some("exit") => Some("write `exit on EVENT` or `exit if CONDITION`"),
            Some("only") => Some("write `only if CONDITION`"),
            Some("else") => Some("write `else { ... }` or `else if CONDITION { ... }`"),
            Some("when") => Some("write `when EVENT`, `when entering SEGMENT`, `when every DURATION for SEGMENT` or `when anniversary of contact.FIELD`"),
            _ => None,
        }
        .map(str::to_string);
    }
    if error.help.is_none() {
        error.help = Some(
            "see the language reference (docs/language.md) for how this line is written"
                .to_string(),
        );
    }

    // Targeted help for common mistakes, most specific first.
    let token = match &found {
        Found::Token(token) => token.as_str(),
        _ => "",
    };
    if rules.contains(&Rule::kw_up) {
        error.message =
            format!("expected `up to` and a duration after the awaited event, found {found_text}");
        error.label = match found {
            Found::Token(_) => "expected `up to` here".into(),
            _ => error.label,
        };
        error.help = Some(
            "a `wait for` needs a time limit, such as `wait for order_placed up to 2d { ... }`; \
             to just wait, write `wait 2d`"
                .into(),
        );
    } else if token == "else" && (statement_level || rules.contains(&Rule::eol)) {
        error.message = "`else` must follow the `}` of an `if` or a `wait for`".into();
        error.label = "this `else` belongs to nothing".into();
        error.help = Some(
            "write `} else {` right after the block of an `if` or `wait for` (an `if` takes one `else`)".into(),
        );
    } else if positives.contains(&Rule::rbrace) && is_unclosed_block_end(text, pos, &found) {
        if let Some(open) = unclosed_brace(text, pos) {
            let line = text
                .get(..open)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            error.message = format!(
                "expected `}}` to close the block opened on line {line}, found {found_text}"
            );
            error.label = "expected `}` before this".into();
            error
                .related
                .push((Span::new(open, open + 1), "this `{` is never closed".into()));
            error.help = Some("add the missing `}` at the end of the block".into());
        }
    } else if token.starts_with('\'') {
        error.help = Some(format!(
            "text is written in double quotes: `\"{}\"`",
            token.trim_matches('\'').replace('"', "\\\"")
        ));
    } else if token.starts_with('"') && !is_closed_string(token) {
        error.message = "this text is not closed".into();
        error.label = "the text starts here".into();
        error.help = Some(
            "end it with `\"` on the same line; write a line break inside text as `\\n`".into(),
        );
    } else if token.starts_with('"') && bad_escape(token).is_some() {
        let escape = bad_escape(token).unwrap_or_default();
        error.message = format!("unknown escape `{escape}` in text");
        error.label = "in this text".into();
        error.help = Some(
            "the escapes are `\\\"`, `\\\\`, `\\n` and `\\t`; write a backslash as `\\\\`".into(),
        );
    } else if token.starts_with('"') && phrases.iter().any(|p| p.1.ends_with("name")) {
        error.help = Some(format!(
            "names are written without quotes: `{}`",
            snake_case(&[token.trim_matches('"').replace([' ', '-'], "_")])
        ));
    } else if is_decimal_duration(token) {
        error.help = Some(
            "durations are whole numbers: use a smaller unit, such as `90min` for an hour and a half".into(),
        );
    } else if token == "=" {
        error.help =
            Some("to compare two values write `==`; a single `=` only appears in `set` and in declarations".into());
    } else if is_ambiguous_minutes(text, pos, token) {
        // Label `2 m` whole.
        if let Some(m) = text.get(pos..).and_then(|rest| rest.find(['m', 'M'])) {
            error.span = Span::new(pos, pos + m + 1);
        }
        error.help = Some(format!(
            "`{}m` is ambiguous: write `{}min` for minutes or `{}mo` for months",
            leading_digits(text, pos, token),
            leading_digits(text, pos, token),
            leading_digits(text, pos, token)
        ));
    } else if let Some((unit, span)) = phrases
        .iter()
        .any(|p| p.1 == "a duration")
        .then(|| unknown_duration_unit(text, pos, token))
        .flatten()
    {
        // `2 dayz`, `3hrs`: the number is right, the unit is not one of the language's.
        error.message = format!("expected a unit of time such as `d` or `days`, found `{unit}`");
        error.label = "unknown unit".into();
        error.span = span;
        error.help = Some(
            "write a number and a unit: `30s`, `15min`, `2h`, `3d`, `1w`, `4mo` or `1y` \
             (or `seconds`, `minutes`, `hours`, `days`, `weeks`, `months`, `years`: `2 days`)"
                .into(),
        );
    } else if rules.contains(&Rule::kw_transactional) {
        error.label = "expected `transactional` or `{` here".into();
        error.help = Some(
            "after the channel comes `transactional` (for receipts and other messages sent \
             whatever the marketing consent) or the `{` of the message's fields"
                .into(),
        );
    } else if token == "where" && line_before(text, pos).trim_start().starts_with("when ") {
        // `when entering vip where ...`: only an event trigger takes a filter.
        error.help = Some(
            "only `when EVENT` takes a `where`; for a segment or a schedule, add the condition \
             as its own line: `only if CONDITION`"
                .into(),
        );
    } else if token == "&" || token == "|" {
        let (written, word) = if token == "&" {
            ("&&", "and")
        } else {
            ("||", "or")
        };
        error.help = Some(format!(
            "conditions are joined with words: write `{word}` instead of `{written}`"
        ));
    } else if token.chars().any(|c| c.is_ascii_uppercase())
        && token.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        let words = capitalised_words(text, pos);
        error.help = Some(format!(
            "names are lower case, with `_` between words: write `{}`",
            snake_case(&words)
        ));
    } else if token.starts_with('}') && (rules.contains(&Rule::item) || rules.contains(&Rule::file))
    {
        error.message = "this `}` closes no block".into();
        error.label = "unmatched `}`".into();
        error.help = Some("remove it, or add the `{` it should close".into());
    }
    error
}

/// An error at the end of a line that ends with a comment (`when entering  # note`) is placed
/// where the code ends, before the comment, so that the label and the word before it are the
/// code's.
fn before_trailing_comment(text: &str, pos: usize) -> usize {
    let at_line_end = text
        .get(pos..)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['\n', '\r']));
    if !at_line_end {
        return pos;
    }
    let line_start = text
        .get(..pos)
        .and_then(|before| before.rfind('\n'))
        .map_or(0, |i| i + 1);
    let Some(line) = text.get(line_start..pos) else {
        return pos;
    };
    let code = code_of_line(line);
    if code.len() == line.len() {
        return pos; // no comment on this line
    }
    line_start + code.trim_end_matches([' ', '\t']).len()
}

/// The text of the line before `pos`.
fn line_before(text: &str, pos: usize) -> &str {
    let before = text.get(..pos).unwrap_or("");
    before.rfind('\n').map_or(before, |i| &before[i + 1..])
}

/// "a, b or c"
fn join_or<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The word that ends right before `pos` (skipping spaces and `(`).
fn previous_word(text: &str, pos: usize) -> Option<String> {
    let before = text.get(..pos)?;
    let trimmed = before.trim_end_matches([' ', '\t', '(']);
    let start = trimmed
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let word = trimmed.get(start..)?;
    (!word.is_empty()).then(|| word.to_string())
}

/// What kind of name the word before the error position asks for.
fn name_phrase(previous: Option<&str>) -> (&'static str, &'static str) {
    match previous {
        Some("send") => ("a message name such as `welcome_email`", "a message name"),
        Some("message") => ("a message name such as `welcome_email`", "a message name"),
        Some("when" | "on" | "for" | "or" | "goal" | "count" | "since" | "event") => {
            ("an event name such as `order_placed`", "an event name")
        }
        Some("entering" | "segment") => {
            ("a segment name such as `vip_customers`", "a segment name")
        }
        Some("flow" | "template") => ("a flow name such as `welcome_series`", "a flow name"),
        _ => ("a name such as `order_placed`", "a name"),
    }
}

/// At the end of the file, or at a declaration keyword at the start of a line, a missing `}`
/// is the likely cause.
fn is_unclosed_block_end(text: &str, pos: usize, found: &Found) -> bool {
    match found {
        Found::EndOfFile => true,
        Found::Token(token) => {
            let line_start = text
                .get(..pos)
                .map_or(0, |b| b.rfind('\n').map_or(0, |i| i + 1));
            let at_line_start = text
                .get(line_start..pos)
                .is_some_and(|s| s.trim().is_empty());
            at_line_start
                && matches!(
                    token.as_str(),
                    "flow" | "segment" | "message" | "policy" | "event" | "use"
                )
        }
        Found::EndOfLine => false,
    }
}

/// The innermost `{` before `pos` that is not closed before `pos`.
fn unclosed_brace(text: &str, pos: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut open = Vec::new();
    let mut index = 0;
    while index < pos.min(bytes.len()) {
        match bytes[index] {
            b'"' => {
                index += 1;
                while index < bytes.len() && !matches!(bytes[index], b'"' | b'\n') {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' => {
                while index < bytes.len() && bytes[index] != b'\n' {
                    index += 1;
                }
                continue;
            }
            b'{' => open.push(index),
            b'}' => {
                open.pop();
            }
            _ => {}
        }
        index += 1;
    }
    open.pop()
}

fn is_closed_string(token: &str) -> bool {
    token.len() >= 2 && token.ends_with('"') && {
        // The closing quote must not be escaped.
        let body = &token[1..token.len() - 1];
        let trailing_backslashes = body.chars().rev().take_while(|c| *c == '\\').count();
        trailing_backslashes % 2 == 0
    }
}

/// The first escape in a string token that the language does not know, such as `\x`.
fn bad_escape(token: &str) -> Option<String> {
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('"' | '\\' | 'n' | 't') => {}
                Some(other) => return Some(format!("\\{other}")),
                None => return Some("\\".into()),
            }
        }
    }
    None
}

/// `2m` or `2 m`: a number with the unit `m`.
fn is_ambiguous_minutes(text: &str, pos: usize, token: &str) -> bool {
    let digits_then_m = |s: &str| {
        let digits = s.trim_end_matches(['m', 'M']);
        s.len() == digits.len() + 1
            && !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
    };
    if digits_then_m(token) {
        return true;
    }
    // `2 m`: the number, then the word `m`.
    if !token.is_empty() && token.chars().all(|c| c.is_ascii_digit()) {
        let after = text
            .get(pos + token.len()..)
            .unwrap_or("")
            .trim_start_matches([' ', '\t']);
        let unit: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        return unit == "m" || unit == "M";
    }
    (token == "m" || token == "M")
        && text
            .get(..pos)
            .is_some_and(|before| before.trim_end().ends_with(|c: char| c.is_ascii_digit()))
}

/// `2dayz` or `2 dayz`: a whole number followed by a word that is not a unit of time; the
/// word and its span.
fn unknown_duration_unit(text: &str, pos: usize, token: &str) -> Option<(String, Span)> {
    const UNITS: [&str; 24] = [
        "s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "h", "hour",
        "hours", "d", "day", "days", "w", "week", "weeks", "mo", "month", "months", "y", "year",
        "years",
    ];
    let digits = token.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let (start, unit) = if digits < token.len() {
        (pos + digits, token.get(digits..)?.to_string())
    } else {
        let after = text.get(pos + token.len()..)?;
        let spaces = after.len() - after.trim_start_matches([' ', '\t']).len();
        let word: String = after
            .get(spaces..)?
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (pos + token.len() + spaces, word)
    };
    let is_word = unit.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && unit.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (is_word && !UNITS.contains(&unit.as_str()))
        .then(|| (unit.clone(), Span::new(start, start + unit.len())))
}

/// `1.5h`: a decimal number with a duration unit.
fn is_decimal_duration(token: &str) -> bool {
    let Some((whole, rest)) = token.split_once('.') else {
        return false;
    };
    let digits = rest.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && !digits.is_empty()
        && digits.len() < rest.len()
        && digits.chars().all(|c| c.is_ascii_digit())
}

/// The number before the `m` of an ambiguous duration.
fn leading_digits(text: &str, pos: usize, token: &str) -> String {
    let digits: String = token.chars().take_while(|c| c.is_ascii_digit()).collect();
    if !digits.is_empty() {
        return digits;
    }
    let before = text.get(..pos).unwrap_or("").trim_end();
    let start = before
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    before.get(start..).unwrap_or("2").to_string()
}

/// `Order Completed` at `pos`: the run of words on this line that look like one name.
fn capitalised_words(text: &str, pos: usize) -> Vec<String> {
    let rest = text.get(pos..).unwrap_or("");
    let line = rest.split(['\n', '\r', '#']).next().unwrap_or("");
    let mut words = Vec::new();
    for word in line.split([' ', '\t']) {
        if word.is_empty() {
            continue;
        }
        // `Order_Completed)`: the name ends at the first character that is not part of one.
        let name_len = word
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(word.len());
        let name = &word[..name_len];
        let capital = name.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        if name.is_empty() || !(words.is_empty() || capital) {
            break;
        }
        words.push(name.to_string());
        if name_len < word.len() {
            break;
        }
    }
    words
}

/// `["Order", "Completed"]` → `order_completed`; `OrderCompleted` → `order_completed`.
fn snake_case(words: &[String]) -> String {
    let mut out = String::new();
    for word in words {
        if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
        let mut previous_lower = false;
        for c in word.chars() {
            if c.is_ascii_uppercase() {
                if previous_lower {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
                previous_lower = false;
            } else {
                out.push(c);
                previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_blanks_line_breaks_and_comments_inside_parentheses_only() {
        let text = "a (b # c\n d) # e\n\"(\" x\n[1,\r\n2]";
        let prepared = prepare(text).unwrap();
        assert_eq!(prepared.len(), text.len());
        assert_eq!(prepared, "a (b      d) # e\n\"(\" x\n[1,  2]");
    }

    #[test]
    fn prepare_keeps_the_line_break_after_an_unclosed_string() {
        let prepared = prepare("f(\"abc\nx)").unwrap();
        assert_eq!(prepared, "f(\"abc\nx)");
    }

    #[test]
    fn comments_skip_strings_with_escaped_quotes() {
        let comments = collect_comments("x \"a \\\" # b\" # c\n# d");
        let texts: Vec<&str> = comments.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["# c", "# d"]);
    }

    #[test]
    fn trim_end_drops_spaces_and_a_trailing_comment() {
        let text = "when x   # why \"#\"\nnext";
        assert_eq!(trim_end(text, 0, text.find('\n').unwrap()), "when x".len());
        let text = "subject: \"a # b\"\n";
        assert_eq!(trim_end(text, 0, text.len() - 1), text.len() - 1);
    }

    #[test]
    fn snake_case_of_capitalised_names() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            snake_case(&words(&["Order", "Completed"])),
            "order_completed"
        );
        assert_eq!(snake_case(&words(&["OrderCompleted"])), "order_completed");
        assert_eq!(snake_case(&words(&["orderID2"])), "order_id2");
    }

    #[test]
    fn found_tokens() {
        assert_eq!(Found::at("a == b", 2).0, Found::Token("==".into()));
        assert_eq!(Found::at("x 25:00 y", 2).0, Found::Token("25:00".into()));
        assert_eq!(Found::at("x 'a b' y", 2).0, Found::Token("'a b'".into()));
        assert_eq!(
            Found::at("x \"a\\\"b\" y", 2).0,
            Found::Token("\"a\\\"b\"".into())
        );
        assert_eq!(Found::at("x\n", 1).0, Found::EndOfLine);
        assert_eq!(Found::at("x", 1).0, Found::EndOfFile);
    }
}
