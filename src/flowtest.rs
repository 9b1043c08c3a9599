//! `.flowtest` files: events in, expected deliveries out.
//!
//! Owns: the `.flowtest` format (parsing, with errors naming the line), comparing expected and
//! actual deliveries, and the readable diff printed on failure.
//! Must not: run flows itself. The runner hands each case to the one engine through
//! `simulate`, so a test sees exactly what `flowc simulate` and the daemon would do.
//!
//! The format (documented in `docs/testing.md`):
//!
//! ```text
//! # comments start with `#`
//! test "the reminder stops when the customer buys"
//! until 2026-03-05T00:00:00Z          # optional
//!
//! given                               # Segment records, one JSON object a line
//! {"type":"track","userId":"c1","event":"Cart Abandoned","timestamp":"2026-03-01T10:00:00Z"}
//!
//! expect                              # deliveries, compact or as simulate's JSON lines
//! 2026-03-01T11:00:00Z c1 abandoned_cart cart_reminder email sent
//! 2026-03-02T11:00:00Z c2 abandoned_cart cart_sms sms skipped no_consent
//! ```
//!
//! A file may hold several `test` blocks. Every test needs an `expect` section; an `expect`
//! with no lines expects no delivery.

use serde::Deserialize;
use std::fmt::Write as _;

/// One test case of a `.flowtest` file.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub name: String,
    /// 1-based line of the `test` line.
    pub line: usize,
    pub until: Option<String>,
    /// The `given` records as JSON Lines, each with its 1-based line in the file.
    pub given: Vec<(usize, String)>,
    pub expect: Vec<Expectation>,
    /// 1-based line of the `expect` keyword (`0` while it has not been seen).
    pub expect_line: usize,
    /// 1-based lines of the expectations (for `flowc test --update`).
    pub expect_lines: Vec<usize>,
}

/// One expected delivery, in the compact form
/// `TIME CONTACT FLOW MESSAGE CHANNEL STATUS [REASON]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct Expectation {
    pub time: String,
    pub contact: String,
    pub flow: String,
    pub message: String,
    pub channel: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl Expectation {
    /// The compact one-line form.
    pub fn compact(&self) -> String {
        let mut line = format!(
            "{} {} {} {} {} {}",
            self.time, self.contact, self.flow, self.message, self.channel, self.status
        );
        if let Some(reason) = &self.reason {
            line.push(' ');
            line.push_str(reason);
        }
        line
    }

    /// Reads one delivery line of `flowc simulate` (extra keys are ignored).
    pub fn from_json(line: &str) -> Result<Expectation, String> {
        serde_json::from_str(line).map_err(|e| format!("not a delivery line: {e}"))
    }

    fn from_compact(line: &str) -> Result<Expectation, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !(6..=7).contains(&words.len()) {
            return Err(format!(
                "expected `TIME CONTACT FLOW MESSAGE CHANNEL STATUS [REASON]`, found {} words",
                words.len()
            ));
        }
        Ok(Expectation {
            time: words[0].to_string(),
            contact: words[1].to_string(),
            flow: words[2].to_string(),
            message: words[3].to_string(),
            channel: words[4].to_string(),
            status: words[5].to_string(),
            reason: words.get(6).map(|r| r.to_string()),
        })
    }
}

/// A problem in a `.flowtest` file itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FormatError {
    pub line: usize,
    pub message: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Header,
    Given,
    Expect,
}

/// Parses the text of a `.flowtest` file.
pub fn parse(text: &str) -> Result<Vec<TestCase>, FormatError> {
    let mut cases: Vec<TestCase> = Vec::new();
    let mut section = Section::Header;
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let error = |message: String| FormatError {
            line: line_number,
            message,
        };
        if let Some(rest) =
            line.strip_prefix("test ")
                .or(if line == "test" { Some("") } else { None })
        {
            let name = rest.trim().trim_matches('"').to_string();
            if name.is_empty() {
                return Err(error(
                    "a test needs a name: `test \"what it shows\"`".into(),
                ));
            }
            cases.push(TestCase {
                name,
                line: line_number,
                until: None,
                given: Vec::new(),
                expect: Vec::new(),
                expect_line: 0,
                expect_lines: Vec::new(),
            });
            section = Section::Header;
            continue;
        }
        let Some(case) = cases.last_mut() else {
            return Err(error(format!("expected `test \"NAME\"` before `{line}`")));
        };
        match line {
            "given" => section = Section::Given,
            "expect" | "expect nothing" => {
                section = Section::Expect;
                case.expect_line = line_number;
            }
            _ if section == Section::Header => {
                if let Some(until) = line.strip_prefix("until ") {
                    case.until = Some(until.trim().to_string());
                } else {
                    return Err(error(format!(
                        "expected `until TIME`, `given` or `expect`, found `{line}`"
                    )));
                }
            }
            _ if section == Section::Given => {
                if !line.starts_with('{') {
                    return Err(error(format!(
                        "expected a JSON record such as `{{\"type\":\"track\",...}}` under `given`, found `{line}`"
                    )));
                }
                case.given.push((line_number, line.to_string()));
            }
            _ => {
                let expectation = if line.starts_with('{') {
                    Expectation::from_json(line)
                } else {
                    Expectation::from_compact(line)
                };
                case.expect.push(expectation.map_err(error)?);
                case.expect_lines.push(line_number);
            }
        }
    }
    if let Some(case) = cases.iter().find(|c| c.expect_line == 0) {
        return Err(FormatError {
            line: case.line,
            message: format!(
                "test \"{}\" has no `expect` section; write `expect` followed by the deliveries (none for \"nothing is sent\")",
                case.name
            ),
        });
    }
    Ok(cases)
}

/// `#` starts a comment outside JSON strings.
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    /// Expected and actual deliveries differ: the diff, ready to print.
    Failed(String),
    /// The case could not run (a bad record, a bad `until`): the reason.
    Error(String),
}

/// Compares expected and actual deliveries; `None` when they agree.
pub fn compare(expected: &[Expectation], actual: &[Expectation]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let expected_text: Vec<String> = expected.iter().map(Expectation::compact).collect();
    let actual_text: Vec<String> = actual.iter().map(Expectation::compact).collect();
    let expected_refs: Vec<&str> = expected_text.iter().map(String::as_str).collect();
    let actual_refs: Vec<&str> = actual_text.iter().map(String::as_str).collect();
    let diff = similar::TextDiff::from_slices(&expected_refs, &actual_refs);
    let mut out = String::from("    - expected, not delivered\n    + delivered, not expected\n");
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => ' ',
        };
        let _ = writeln!(out, "    {sign} {}", change.value());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# comment
test "reminder then purchase"
until 2026-03-05T00:00:00Z
given
{"type":"track","userId":"c1","event":"Cart #1","timestamp":"2026-03-01T10:00:00Z"}  # trailing
expect
2026-03-01T11:00:00Z c1 abandoned_cart cart_reminder email sent
{"time":"2026-03-02T11:00:00Z","contact":"c2","flow":"f","message":"m","channel":"sms","status":"skipped","reason":"no_consent"}

test "nothing"
given
{"type":"identify","userId":"c1","timestamp":"2026-03-01T10:00:00Z"}
expect
"#;

    #[test]
    fn parses_cases_sections_and_both_expectation_forms() {
        let cases = parse(SAMPLE).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].name, "reminder then purchase");
        assert_eq!(cases[0].line, 3);
        assert_eq!(cases[0].until.as_deref(), Some("2026-03-05T00:00:00Z"));
        assert_eq!(cases[0].given.len(), 1);
        assert_eq!(cases[0].given[0].0, 6);
        assert!(
            cases[0].given[0].1.contains("Cart #1"),
            "a # inside JSON strings is kept"
        );
        assert!(!cases[0].given[0].1.contains("trailing"));
        assert_eq!(
            cases[0].expect[0].compact(),
            "2026-03-01T11:00:00Z c1 abandoned_cart cart_reminder email sent"
        );
        assert_eq!(cases[0].expect[1].reason.as_deref(), Some("no_consent"));
        assert!(cases[1].expect.is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("test \"x\"\nexpect\n2026-03-01T11:00:00Z c1 f m\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("found 4 words"), "{}", err.message);
        let err = parse("given\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("expected `test"), "{}", err.message);
    }

    #[test]
    fn diff_marks_missing_and_unexpected() {
        let a = Expectation::from_compact("2026-03-01T11:00:00Z c1 f m email sent").unwrap();
        let b = Expectation::from_compact("2026-03-01T12:00:00Z c1 f m email sent").unwrap();
        assert_eq!(
            compare(std::slice::from_ref(&a), std::slice::from_ref(&a)),
            None
        );
        let diff = compare(std::slice::from_ref(&a), &[b]).unwrap();
        assert!(diff.contains("- 2026-03-01T11:00:00Z"), "{diff}");
        assert!(diff.contains("+ 2026-03-01T12:00:00Z"), "{diff}");
    }
}
