//! Diagnostics as plain data: what went wrong, where, and how to fix it.
//!
//! Owns: the [`Diagnostic`] value every stage produces (syntax errors, check errors and
//! warnings, bad records), and the registry of stable codes ([`Code`]).
//! Must not: render anything (that is `check::render`) or read files.

use crate::syntax::ast::Span;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    /// Lower case, no final period, names in backticks: "unknown message `cart_remindr`".
    pub message: String,
    /// The file, relative to the project root (stdlib files as `stdlib/NAME.flow`).
    pub file: PathBuf,
    /// The primary span, labelled with `label`.
    pub span: Span,
    pub label: String,
    /// How to fix it, one sentence.
    pub help: Option<String>,
    /// Secondary spans in the same file ("first declared here").
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(
        code: Code,
        file: impl Into<PathBuf>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: code.default_severity(),
            code,
            message: message.into(),
            file: file.into(),
            span,
            label: String::new(),
            help: None,
            related: Vec::new(),
        }
    }
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $severity:ident, $summary:literal; )*) => {
        /// The registry of diagnostic codes. A code never changes meaning once released.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $( $variant, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];
            /// The stable code, such as `E0001`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }
            pub fn default_severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$severity, )* }
            }
            /// One line saying what the code is about (for docs and `flowc explain`).
            pub fn summary(self) -> &'static str {
                match self { $( Code::$variant => $summary, )* }
            }
            #[allow(clippy::should_implement_trait)]
            pub fn from_str(code: &str) -> Option<Code> {
                match code { $( $code => Some(Code::$variant), )* _ => None }
            }
        }
    };
}

codes! {
    Syntax = "E0001", Error, "the text does not follow the grammar";
    UnknownMessage = "E0002", Error, "a `send` or argument names a message that is not declared";
    UnknownSegment = "E0003", Error, "a name used as a segment is not declared";
    UnknownTemplate = "E0004", Error, "a flow instantiates a template that is not declared";
    UnknownPathRoot = "E0005", Error, "a path starts with something other than `contact`, `trigger` or `event`";
    UnknownEventProperty = "E0006", Error, "a `trigger.`/`event.` path names a property the event's schema does not declare";
    DuplicateName = "E0007", Error, "two declarations share one name";
    UnknownMessageField = "E0008", Error, "a message has a field its channel does not know";
    MissingMessageField = "E0009", Error, "a message lacks a field its channel requires";
    FileNotFound = "E0010", Error, "a `file(\"...\")` names a file that does not exist";
    TemplateSyntax = "E0011", Error, "a `{{ ... }}` template expression does not parse";
    TypeMismatch = "E0012", Error, "an operator or function gets a value of the wrong type";
    SplitShares = "E0013", Error, "the shares of a `split` do not add up to 100%";
    WrongArguments = "E0014", Error, "a segment or template is called with wrong arguments";
    SegmentCycle = "E0015", Error, "segments refer to each other in a cycle";
    Unreachable = "E0016", Error, "steps after `stop` can never run";
    ZeroWait = "E0017", Error, "a wait of zero length";
    EmptyQuietHours = "E0018", Error, "quiet hours whose start equals their end";
    FlowWithoutTrigger = "E0019", Error, "a flow has no `when` line";
    EventPathOutsideWait = "E0020", Error, "an `event.` path where no event has been received";
    UnknownStdlibModule = "E0021", Error, "`use stdlib/NAME` names a module the stdlib does not have";
    DuplicatePolicy = "E0022", Error, "more than one `policy` block in a project";
    UnknownEvent = "E0023", Error, "an event name in a `count`/`sum`/`last` path or schema reference is malformed";
    BadValue = "E0024", Error, "a value is out of range (a time such as `25:00`, a share over 100%)";
    UnknownTemplateVariable = "E0025", Error, "a template expression uses a variable other than `contact`, `trigger`, `event`, `flow`, `message`";
    DuplicateHeader = "E0026", Error, "a header line that may appear once appears twice";
    HeaderAfterStep = "E0027", Error, "a header line stands after the first step";
    MissingArmForEvent = "E0028", Error, "a `wait for A or B` block lacks an `on` arm for an awaited event, or has one for an event it does not await";
    EmptyFlow = "E0029", Error, "a flow or branch has no steps where one is needed";
    UnknownTemplateFilter = "E0030", Error, "a template uses a filter or test the template engine does not have";
    InvalidConfig = "E0031", Error, "`flowc.toml` is not valid";
    DuplicateLabel = "E0032", Error, "two steps of one flow have the same `step NAME:` label";
    StrandedInstances = "E0033", Error, "`on change migrate` would leave instances waiting at a step of the old version that the new one does not have";
    UnusedSendCheck = "W0001", Warning, "a marketing send in a flow that never checks `can_receive` of its channel";
    UnusedSegment = "W0002", Warning, "a segment is declared but never used";
    UnusedMessage = "W0003", Warning, "a message is declared but never sent";
    ExitOnTrigger = "W0004", Warning, "an `exit on` event also triggers the same flow";
    LongWait = "W0005", Warning, "a wait longer than one year";
    EventNearSchema = "W0006", Warning, "an event name that is a near miss of one with a schema or of a built-in event (`unsubscribed`)";
    SegmentAsEvent = "W0007", Warning, "an awaited event of a `wait for` has the name of a declared segment";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// 1-based line and column (in characters) of a byte offset into `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}
