//! `flowc test`: finds a project's `.flowtest` files, runs every case through `simulate` (the one
//! engine), and reports passes, failures with a readable diff, and a summary line.
//!
//! Owns: discovery of test files, the run of each case, the report, `--update`.
//! Must not: parse the `.flowtest` format (that is `flowtest`) or decide anything about flows
//! (that is the engine, reached only through `simulate`).

use crate::cli::{TestArgs, EXIT_CANNOT_RUN, EXIT_ERRORS, EXIT_OK};
use crate::compile::CompiledProject;
use crate::engine::time;
use crate::flowtest::{self, Expectation, Outcome, TestCase};
use crate::simulate::{self, SimulateOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// What one case produced.
#[derive(Debug)]
pub struct CaseResult {
    pub outcome: Outcome,
    /// What the engine delivered, in output order.
    pub actual: Vec<Expectation>,
    /// `--trace` lines of the run (only when asked).
    pub trace: Vec<String>,
}

/// Every `.flowtest` file under `root/tests`, sorted, as (path relative to `root`, path).
pub fn find_test_files(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let dir = root.join("tests");
    let mut files: Vec<(PathBuf, PathBuf)> = walkdir::WalkDir::new(&dir)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.path().extension().is_some_and(|x| x == "flowtest"))
        .map(|e| {
            let path = e.path().to_path_buf();
            let shown = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            (shown, path)
        })
        .collect();
    files.sort();
    files
}

/// Runs one case on a compiled project.
pub fn run_case(project: &CompiledProject, case: &TestCase, trace: bool) -> CaseResult {
    let until = match &case.until {
        None => None,
        Some(text) => match time::parse_instant(text) {
            Some(t) => Some(t),
            None => {
                return CaseResult {
                    outcome: Outcome::Error(format!(
                        "`until {text}` is not an RFC 3339 time such as `2026-04-01T00:00:00Z`"
                    )),
                    actual: Vec::new(),
                    trace: Vec::new(),
                }
            }
        },
    };
    // Records keep their line in the .flowtest file so that errors point at it: blank lines
    // stand in for the lines between them.
    let mut jsonl = String::new();
    let mut line = 1;
    for (number, record) in &case.given {
        while line < *number {
            jsonl.push('\n');
            line += 1;
        }
        jsonl.push_str(record);
        jsonl.push('\n');
        line += 1;
    }
    let options = SimulateOptions {
        until,
        trace,
        render: false,
        progress: false,
    };
    let simulation = match simulate::run_jsonl(project, &jsonl, &options) {
        Ok(s) => s,
        Err(e) => {
            return CaseResult {
                outcome: Outcome::Error(format!("line {}: {}", e.line, e.reason)),
                actual: Vec::new(),
                trace: Vec::new(),
            }
        }
    };
    let mut actual = Vec::with_capacity(simulation.deliveries.len());
    for line in simulate::delivery_lines(project, &simulation) {
        match Expectation::from_json(&line) {
            Ok(e) => actual.push(e),
            Err(e) => {
                return CaseResult {
                    outcome: Outcome::Error(format!(
                        "internal: a delivery line did not read back: {e}"
                    )),
                    actual: Vec::new(),
                    trace: Vec::new(),
                }
            }
        }
    }
    let trace = if trace {
        simulation
            .trace
            .iter()
            .map(|t| simulate::trace_line(project, t))
            .collect()
    } else {
        Vec::new()
    };
    let outcome = match flowtest::compare(&case.expect, &actual) {
        None => Outcome::Passed,
        Some(diff) => Outcome::Failed(diff),
    };
    CaseResult {
        outcome,
        actual,
        trace,
    }
}

/// Rewrites the `expect` sections of a file's failing cases with what was delivered.
pub fn update_expectations(text: &str, updates: &[(&TestCase, &[Expectation])]) -> String {
    let mut drop = std::collections::HashSet::new();
    let mut insert_after = std::collections::HashMap::new();
    for (case, actual) in updates {
        drop.extend(case.expect_lines.iter().copied());
        insert_after.insert(
            case.expect_line,
            actual.iter().map(Expectation::compact).collect::<Vec<_>>(),
        );
    }
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if drop.contains(&number) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if let Some(lines) = insert_after.get(&number) {
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// `flowc test`.
pub fn command(args: &TestArgs) -> u8 {
    let project = match simulate::load_compiled(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // The same root as `Project::load`: the folder itself, or a single file's folder.
    let root = if args.project.is_file() {
        args.project
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    } else {
        args.project.clone()
    };
    let files = find_test_files(&root);
    if files.is_empty() {
        eprintln!(
            "error: no `.flowtest` files under `{}`; write one such as `tests/welcome.flowtest` (see docs/testing.md)",
            root.join("tests").display()
        );
        return EXIT_ERRORS;
    }
    let style = Style {
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut passed, mut failed, mut filtered) = (0usize, 0usize, 0usize);
    // Cases that `--update` cannot fix: bad files and cases that could not run.
    let mut broken = 0usize;
    let mut failures: Vec<String> = Vec::new();
    for (shown, path) in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", shown.display());
                return EXIT_CANNOT_RUN;
            }
        };
        let cases = match flowtest::parse(&text) {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{} {}:{}: {}",
                    style.paint("1;31", "error"),
                    shown.display(),
                    e.line,
                    e.message
                );
                failed += 1;
                broken += 1;
                failures.push(format!("{}:{}", shown.display(), e.line));
                continue;
            }
        };
        let mut updates: Vec<(usize, Vec<Expectation>)> = Vec::new();
        for (index, case) in cases.iter().enumerate() {
            if let Some(filter) = &args.filter {
                if !case.name.contains(filter.as_str()) {
                    filtered += 1;
                    continue;
                }
            }
            let result = run_case(&project, case, args.trace);
            let place = format!("{}:{}", shown.display(), case.line);
            match &result.outcome {
                Outcome::Passed => {
                    passed += 1;
                    let _ = writeln!(out, "{} {} ({place})", style.paint("32", "ok  "), case.name);
                }
                Outcome::Failed(diff) => {
                    failed += 1;
                    failures.push(format!("{place} {}", case.name));
                    let _ = writeln!(
                        out,
                        "{} {} ({place})",
                        style.paint("1;31", "FAIL"),
                        case.name
                    );
                    let _ = write!(out, "{diff}");
                    if args.update {
                        updates.push((index, result.actual.clone()));
                    }
                }
                Outcome::Error(reason) => {
                    failed += 1;
                    broken += 1;
                    failures.push(format!("{place} {}", case.name));
                    let _ = writeln!(
                        out,
                        "{} {} ({place})\n    {reason}",
                        style.paint("1;31", "ERROR"),
                        case.name
                    );
                }
            }
            if args.trace && !matches!(result.outcome, Outcome::Passed) {
                let _ = writeln!(out, "    trace:");
                for line in &result.trace {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
        if !updates.is_empty() {
            let pairs: Vec<(&TestCase, &[Expectation])> = updates
                .iter()
                .map(|(i, actual)| (&cases[*i], actual.as_slice()))
                .collect();
            let new_text = update_expectations(&text, &pairs);
            if let Err(e) = write_atomically(path, &new_text) {
                eprintln!("error: cannot update `{}`: {e}", shown.display());
                return EXIT_CANNOT_RUN;
            }
            let _ = writeln!(
                out,
                "updated {} case(s) in {}",
                updates.len(),
                shown.display()
            );
        }
    }
    if failed > 0 && !args.trace {
        let _ = writeln!(
            out,
            "\nhint: `flowc test --trace` shows, for each failing case, every entry, exit and timer"
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        for f in &failures {
            let _ = writeln!(out, "    {f}");
        }
    }
    let mut summary = format!("{passed} passed, {failed} failed");
    if filtered > 0 {
        summary.push_str(&format!(", {filtered} filtered out"));
    }
    let _ = writeln!(out, "\n{summary}");
    if broken > 0 || (failed > 0 && !args.update) {
        EXIT_ERRORS
    } else {
        EXIT_OK
    }
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("flowtest.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
