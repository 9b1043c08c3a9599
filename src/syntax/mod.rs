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
}

/// Parses one `.flow` file.
pub fn parse(text: &str) -> Result<ast::SourceFile, SyntaxError> {
    parser::parse_file(text)
}
