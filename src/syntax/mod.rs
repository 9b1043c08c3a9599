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

/// Parses one `.flow` file.
pub fn parse(text: &str) -> Result<ast::SourceFile, SyntaxError> {
    parser::parse_file(text)
}
