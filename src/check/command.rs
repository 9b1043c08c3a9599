//! `flowc check` and `flowc explain`, and the gate the other commands pass through.
//!
//! Owns: loading the project for the command, choosing the output format, the exit code
//! (0 no errors, 1 errors or `--deny-warnings` with warnings, 2 the command could not run),
//! and [`gate`], which makes `simulate`, `test`, `build` and `graph` refuse a project with
//! check errors by printing the same diagnostics.
//! Must not: find problems (rules do) or format them (render does).

use crate::check::render::{self, Style};
use crate::cli::{CheckArgs, DiagnosticFormat, ExplainArgs, EXIT_CANNOT_RUN, EXIT_ERRORS, EXIT_OK};
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::project::{Origin, Project, SourceUnit};
use crate::syntax::ast::Span;

/// `flowc check [PROJECT] [--format human|json|github] [--deny-warnings]`.
pub fn run(args: &CheckArgs) -> u8 {
    let path = &args.project;
    if path.is_file() && !path.extension().is_some_and(|e| e == "flow") {
        eprintln!(
            "error: `{}` is not a `.flow` file; give a project folder or a `.flow` file",
            path.display()
        );
        return EXIT_CANNOT_RUN;
    }
    let project = match Project::load(&args.project) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let mut project = project;
    let mut diagnostics = super::check(&project);
    if let Some((unit, d)) = config_problem(&project.root) {
        project.units.push(unit);
        diagnostics.insert(0, d);
    }
    if let Some(old) = &args.against {
        if super::counts(&diagnostics).0 == 0 {
            match against(&project, old) {
                Ok(found) => diagnostics.extend(found),
                Err(code) => {
                    print(&project, &diagnostics, args.format);
                    return code;
                }
            }
        }
    }
    print(&project, &diagnostics, args.format);
    exit_code(&diagnostics, args.deny_warnings)
}

/// `--against OLD`: the `E0033` diagnostics of this (checked) version over the version in the
/// folder `old`. `Err` with the exit code when a version cannot be compiled (OLD's errors are
/// printed).
fn against(project: &Project, old: &std::path::Path) -> Result<Vec<Diagnostic>, u8> {
    let old = match crate::simulate::load_compiled(old) {
        Ok(p) => p,
        Err(_) => {
            eprintln!(
                "error: `--against {}`: that version does not compile",
                old.display()
            );
            return Err(EXIT_CANNOT_RUN);
        }
    };
    let config = crate::config::Config::load(&project.root).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_CANNOT_RUN
    })?;
    let new = crate::compile::compile(project, &config).map_err(|diagnostics| {
        print_errors(project, &diagnostics);
        EXIT_ERRORS
    })?;
    let strandings = crate::changes::migrate::strandings(&old, &new);
    Ok(super::rules::migration::diagnostics(project, &strandings))
}

/// `E0031` when the project's `flowc.toml` is not valid (parsed as the daemon parses it), with
/// the file as a source unit for rendering. A missing or unreadable file is not reported here.
fn config_problem(root: &std::path::Path) -> Option<(SourceUnit, Diagnostic)> {
    let text = std::fs::read_to_string(root.join("flowc.toml")).ok()?;
    let problem = crate::config::Config::parse_located(&text).err()?;
    let span = problem
        .span
        .clone()
        .map_or(Span::new(0, 0), |r| Span::new(r.start, r.end.max(r.start)));
    let path = std::path::PathBuf::from("flowc.toml");
    let d = Diagnostic::error(
        Code::InvalidConfig,
        path.clone(),
        span,
        format!("`flowc.toml` is not valid: {}", problem.message),
    )
    .with_label(problem.label)
    .with_help(problem.help);
    let unit = SourceUnit {
        path,
        text,
        origin: Origin::Project,
        ast: None,
    };
    Some((unit, d))
}

/// The exit code for a list of diagnostics.
pub fn exit_code(diagnostics: &[Diagnostic], deny_warnings: bool) -> u8 {
    let (errors, warnings) = super::counts(diagnostics);
    if errors > 0 || (deny_warnings && warnings > 0) {
        EXIT_ERRORS
    } else {
        EXIT_OK
    }
}

fn print(project: &Project, diagnostics: &[Diagnostic], format: DiagnosticFormat) {
    match format {
        DiagnosticFormat::Human => {
            eprint!(
                "{}",
                render::human_all(project, diagnostics, Style::for_stderr())
            )
        }
        DiagnosticFormat::Json => {
            for d in diagnostics {
                println!("{}", render::json(project, d));
            }
        }
        DiagnosticFormat::Github => {
            for d in diagnostics {
                println!("{}", render::github(project, d));
            }
        }
    }
}

/// Runs `check` for a command that needs a correct project. With errors, prints them (and
/// the summary) to standard error as `flowc check` would, and returns the exit code 1.
pub fn gate(project: &Project) -> Result<(), u8> {
    let diagnostics = super::check(project);
    let errors: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    print_errors(project, &errors);
    Err(EXIT_ERRORS)
}

/// Prints diagnostics for people on standard error (also used for what `compile` refuses).
pub fn print_errors(project: &Project, diagnostics: &[Diagnostic]) {
    eprint!(
        "{}",
        render::human_all(project, diagnostics, Style::for_stderr())
    );
}

/// `flowc explain CODE`.
pub fn explain(args: &ExplainArgs) -> u8 {
    let wanted = args.code.trim().to_ascii_uppercase();
    match Code::from_str(&wanted) {
        Some(code) => {
            print!("{}", super::explain::text(code));
            EXIT_OK
        }
        None => {
            let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
            match crate::suggest::closest(&wanted, all.iter().copied()) {
                Some(best) => eprintln!(
                    "error: `{}` is not a diagnostic code; did you mean `{best}`? (`flowc explain {best}`)",
                    args.code
                ),
                None => eprintln!(
                    "error: `{}` is not a diagnostic code; codes are E0001 to E{:04} and W0001 to W{:04}",
                    args.code,
                    all.iter().filter(|c| c.starts_with('E')).count(),
                    all.iter().filter(|c| c.starts_with('W')).count()
                ),
            }
            EXIT_CANNOT_RUN
        }
    }
}
