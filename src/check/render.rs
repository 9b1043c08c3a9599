//! Diagnostics for people and for machines, in one place: every command that shows
//! diagnostics (check, simulate, test, build, graph) goes through here.
//!
//! Owns: the human report (miette's graphical handler: the source line, the labelled span,
//! related spans, the help line; colour only on a terminal without `NO_COLOR`), JSON lines
//! (`{"severity","code","message","file","line","column",...}` in that order) and GitHub
//! workflow annotations, and the summary line (`error: 2 errors, 1 warning`).
//! Must not: decide what is a problem (rules do) or print (callers choose the stream).

use crate::diagnostic::{line_column, Diagnostic, Severity};
use crate::project::Project;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;
use std::fmt;

/// How a human report looks.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub width: usize,
}

impl Style {
    /// Colour when standard error is a terminal and `NO_COLOR` is unset; width 100.
    pub fn for_stderr() -> Style {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: std::io::stderr().is_terminal() && !no_color,
            width: 100,
        }
    }
    /// No colour, width 100: stable text for snapshots.
    pub fn plain() -> Style {
        Style {
            color: false,
            width: 100,
        }
    }
}

/// One diagnostic rendered by miette, with the source of its file.
pub fn human(project: &Project, d: &Diagnostic, style: Style) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false);
    let text = project.unit(&d.file).map(|u| u.text.as_str());
    let report = Report {
        diagnostic: d,
        source: text.map(|t| NamedSource::new(path_text(d), t.to_string())),
        len: text.map_or(0, str::len),
        text,
    };
    let mut out = String::new();
    if handler.render_report(&mut out, &report).is_err() {
        out = format!("{}[{}]: {}\n", severity_word(d.severity), d.code, d.message);
    }
    out
}

/// Every diagnostic for people, then the summary line (when there is anything to say).
pub fn human_all(project: &Project, diagnostics: &[Diagnostic], style: Style) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&human(project, d, style));
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
    }
    if let Some(line) = summary(diagnostics) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `error: 2 errors, 1 warning`, `warning: 1 warning`; `None` when clean.
pub fn summary(diagnostics: &[Diagnostic]) -> Option<String> {
    let (errors, warnings) = super::counts(diagnostics);
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => None,
        (0, w) => Some(format!("warning: {}", plural(w, "warning"))),
        (e, 0) => Some(format!("error: {}", plural(e, "error"))),
        (e, w) => Some(format!(
            "error: {}, {}",
            plural(e, "error"),
            plural(w, "warning")
        )),
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    severity: Severity,
    code: &'static str,
    message: &'a str,
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    #[serde(skip_serializing_if = "str::is_empty")]
    label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
}

/// One JSON object per line: severity, code, message, file, line, column (1-based), then
/// end_line, end_column, label and help.
pub fn json(project: &Project, d: &Diagnostic) -> String {
    let ((line, column), (end_line, end_column)) = positions(project, d);
    let record = JsonLine {
        severity: d.severity,
        code: d.code.as_str(),
        message: &d.message,
        file: path_text(d),
        line,
        column,
        end_line,
        end_column,
        label: &d.label,
        help: d.help.as_deref(),
    };
    serde_json::to_string(&record).unwrap_or_default()
}

/// `::error file=F,line=L,col=C,title=CODE::message` (GitHub Actions workflow commands).
pub fn github(project: &Project, d: &Diagnostic) -> String {
    let ((line, column), (end_line, end_column)) = positions(project, d);
    let command = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    format!(
        "::{command} file={},line={line},col={column},endLine={end_line},endColumn={end_column},title={}::{}",
        escape_property(&path_text(d)),
        d.code,
        escape_data(&message)
    )
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn positions(project: &Project, d: &Diagnostic) -> ((usize, usize), (usize, usize)) {
    match project.unit(&d.file) {
        Some(unit) => (
            line_column(&unit.text, d.span.start),
            line_column(&unit.text, d.span.end.max(d.span.start)),
        ),
        None => ((1, 1), (1, 1)),
    }
}

/// The file as shown: relative, with `/` on every platform.
fn path_text(d: &Diagnostic) -> String {
    d.file.to_string_lossy().replace('\\', "/")
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A [`Diagnostic`] as miette wants it.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: Option<NamedSource<String>>,
    text: Option<&'a str>,
    len: usize,
}

impl Report<'_> {
    /// `(offset, length)` clamped to the text and to character boundaries.
    fn clamp(&self, span: crate::syntax::ast::Span) -> (usize, usize) {
        let text = self.text.unwrap_or("");
        let mut start = span.start.min(self.len);
        while start > 0 && !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = span.end.clamp(start, self.len);
        while end < self.len && !text.is_char_boundary(end) {
            end += 1;
        }
        (start, end - start)
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(format!(
            "{}[{}]",
            severity_word(self.diagnostic.severity),
            self.diagnostic.code
        )))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display + 'b>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let d = self.diagnostic;
        let label = (!d.label.is_empty()).then(|| d.label.clone());
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            label,
            self.clamp(d.span),
        )];
        for (span, text) in &d.related {
            labels.push(LabeledSpan::new_with_span(
                Some(text.clone()),
                self.clamp(*span),
            ));
        }
        Some(Box::new(labels.into_iter()))
    }
}
