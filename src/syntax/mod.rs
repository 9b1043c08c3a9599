//! Text → syntax tree.
//!
//! Owns: the pest grammar (`grammar/flow.pest`), turning pest's pairs into [`ast`] values, and
//! wording syntax errors in terms a marketer understands.
//! Must not: resolve names, check types, or read files. Only `syntax::parser` matches on pest's
//! `Rule`; everything after it sees the AST.

pub mod ast;
mod parser;

use ast::Span;

/// A syntax error: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    /// "expected a duration such as `2d`, found `soon`"
    pub message: String,
    /// Short label on the span.
    pub label: String,
    pub help: Option<String>,
    /// Secondary spans with their labels, such as the `{` that a missing `}` should close.
    pub related: Vec<(Span, String)>,
    /// Whether the text does not follow the grammar, or follows it with a value out of range.
    pub kind: SyntaxErrorKind,
}

/// What kind of syntax error (the checker may give them different diagnostic codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyntaxErrorKind {
    /// The text does not follow the grammar (`E0001`).
    Grammar,
    /// A value that parses but cannot be meant: a time such as `25:00`, a share over 100%, a
    /// number too large to store (`E0024`, "a value is out of range").
    OutOfRange,
    /// The text is nested more deeply than the parser accepts.
    TooDeep,
}

/// Parses one `.flow` file: its declarations with byte spans, and its comments in source
/// order. The first syntax error stops the parse.
///
/// What the parser decides, so that later stages need not:
/// - precedence: `or` < `and` < `not` < comparisons and `in` < `+ -` < `* /` < unary `-`
///   (`not a == b` is `not (a == b)`); parentheses are not kept as nodes, they only widen the
///   span of the expression inside;
/// - in `wait for a where X or b ... up to D`, an `or NAME` directly followed by `where`,
///   `up to` or another `or` starts the next awaited event;
/// - `day`/`week`/`month`/`year`/`hour` after `when every` (and after `per` in `limit`) are
///   one of that unit;
/// - a name where a duration is expected is a [`ast::DurationExpr::Param`] only if the
///   enclosing flow template or segment declares a parameter of that name, otherwise a
///   syntax error ("expected a duration such as `2d`, found `soon`");
/// - times (`00:00`..=`23:59`), shares (at most 100%), counts and durations are range-checked
///   ([`SyntaxErrorKind::OutOfRange`]);
/// - header lines and steps may be interleaved: each goes to its own list of
///   [`ast::FlowBody`], and the checker compares spans to report a header after a step.
///
/// ```
/// let file = flowc::syntax::parse("segment vip = contact.plan == \"pro\"  # paying\n").unwrap();
/// assert_eq!(file.items.len(), 1);
/// assert_eq!(file.comments[0].text, "# paying");
/// ```
pub fn parse(text: &str) -> Result<ast::SourceFile, SyntaxError> {
    parser::parse_file(text)
}
