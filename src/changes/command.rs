//! The shell of `flowc diff`, `flowc backtest` and `flowc verify`: loading both versions
//! (folders, or a git revision extracted with `git archive` into a temporary folder), reading
//! events, printing, exit codes.
//!
//! Owns: files, the `git` and `tar` subprocesses, standard output and the exit codes.
//! `diff` and `backtest` answer like `diff(1)`: 0 the same, 1 different, 2 the comparison could
//! not be made (a version with errors, a bad record, a missing folder); `diff` answers 3 when
//! NEW would be refused over OLD (an `on change migrate` strands waiting instances, `E0033`). `verify`: 0 verified,
//! 1 a finding or the project has errors, 2 could not run.
//! Must not: compare or explore anything itself (`diff`, `backtest`, `verify` do).

use super::{backtest, diff, verify};
use crate::cli::{
    BacktestArgs, ChangeFormat, DiffArgs, VerifyArgs, EXIT_CANNOT_RUN, EXIT_ERRORS, EXIT_OK,
};
use crate::compile::CompiledProject;
use crate::engine::time;
use crate::events::{self, Record};
use crate::simulate::{self, load_compiled, SimulateOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> std::io::Result<TempDir> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("flowc-{tag}-{}-{n}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Extracts the project folder `project` as it was at git revision `rev` into a temporary
/// folder; returns the folder and the project's path inside it.
fn extract_revision(project: &Path, rev: &str) -> Result<(TempDir, PathBuf), String> {
    let git = |args: &[&str]| -> Result<String, String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(project)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run `git`: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "`git {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let prefix = git(&["rev-parse", "--show-prefix"])?;
    git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{commit}}"),
    ])
    .map_err(|_| format!("`{rev}` is not a git revision of {top}"))?;
    let dir = TempDir::new("git").map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let mut archive = Command::new("git");
    archive
        .arg("-C")
        .arg(&top)
        .args(["archive", "--format=tar", rev]);
    if !prefix.is_empty() {
        archive.arg("--").arg(&prefix);
    }
    let output = archive
        .output()
        .map_err(|e| format!("cannot run `git archive`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`git archive {rev}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let tar_file = dir.0.join(".flowc-archive.tar");
    std::fs::write(&tar_file, &output.stdout).map_err(|e| format!("cannot write: {e}"))?;
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&tar_file)
        .arg("-C")
        .arg(&dir.0)
        .output()
        .map_err(|e| format!("cannot run `tar`: {e}"))?;
    if !untar.status.success() {
        return Err(format!(
            "cannot unpack `git archive {rev}`: {}",
            String::from_utf8_lossy(&untar.stderr).trim()
        ));
    }
    let _ = std::fs::remove_file(&tar_file);
    let path = dir.0.join(&prefix);
    Ok((dir, path))
}

fn parse_until(until: Option<&String>) -> Result<Option<time::Instant>, u8> {
    match until {
        None => Ok(None),
        Some(text) => match time::parse_instant(text) {
            Some(t) => Ok(Some(t)),
            None => {
                eprintln!("error: `--until {text}` is not an RFC 3339 time such as `2026-04-01T00:00:00Z`");
                Err(EXIT_CANNOT_RUN)
            }
        },
    }
}

/// Reads and validates an events file against every given project's schemas.
fn read_events(path: &Path, projects: &[&CompiledProject]) -> Result<Vec<Record>, u8> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: cannot read `{}`: {e}", path.display());
        EXIT_CANNOT_RUN
    })?;
    let records = events::parse_jsonl(&text).map_err(|e| {
        eprintln!("error: {}: {e}; nothing was simulated", path.display());
        EXIT_ERRORS
    })?;
    for project in projects {
        for record in &records {
            if let Err(e) = events::validate(record, &project.schemas) {
                eprintln!("error: {}: {e}; nothing was simulated", path.display());
                return Err(EXIT_ERRORS);
            }
        }
    }
    Ok(records)
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn print_out(text: &str) {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => print_out(&format!("{text}\n")),
        Err(e) => eprintln!("error: {e}"),
    }
}

/// `flowc diff`.
pub fn diff(args: &DiffArgs) -> u8 {
    let (old_path, new_path, _temp) = match (&args.git, &args.old, &args.new) {
        (Some(rev), project, None) => {
            let project = project.clone().unwrap_or_else(|| PathBuf::from("."));
            match extract_revision(&project, rev) {
                Ok((dir, old)) => (old, project, Some(dir)),
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_CANNOT_RUN;
                }
            }
        }
        (Some(_), _, Some(_)) => {
            eprintln!("error: with `--git REV` give one project folder (NEW, default `.`); OLD is that folder at REV");
            return EXIT_CANNOT_RUN;
        }
        (None, Some(old), Some(new)) => (old.clone(), new.clone(), None),
        (None, _, _) => {
            eprintln!("error: give two project folders (`flowc diff OLD NEW`) or a revision (`flowc diff --git REV [PROJECT]`)");
            return EXIT_CANNOT_RUN;
        }
    };
    let until = match parse_until(args.until.as_ref()) {
        Ok(u) => u,
        Err(code) => return code,
    };
    // Exit 1 means "different": a version that does not compile is a 2.
    let (old, new) = match (load_compiled(&old_path), load_compiled(&new_path)) {
        (Ok(old), Ok(new)) => (old, new),
        _ => return EXIT_CANNOT_RUN,
    };
    let result = diff::diff_projects(&old, &new);
    let impact = match &args.events {
        Some(path) => {
            let records = match read_events(path, &[&old]) {
                Ok(r) => r,
                Err(_) => return EXIT_CANNOT_RUN,
            };
            let sim = simulate::run(
                &old,
                records,
                &SimulateOptions {
                    until,
                    ..Default::default()
                },
            );
            let waiting = diff::waiting_in(&old, sim.store.states(), args.examples);
            Some(diff::impact(&old, &result, &waiting))
        }
        None if args.server.is_some() || args.store.is_some() => match live_waiting(&old, args) {
            Ok(waiting) => Some(diff::impact(&old, &result, &waiting)),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_CANNOT_RUN;
            }
        },
        None => None,
    };
    match args.format {
        ChangeFormat::Text => print_out(&diff::render_text(&result, impact.as_deref())),
        ChangeFormat::Json => {
            #[derive(serde::Serialize)]
            struct WithImpact<'a> {
                #[serde(flatten)]
                diff: &'a diff::ProjectDiff,
                #[serde(skip_serializing_if = "Option::is_none")]
                impact: Option<&'a [diff::StepImpact]>,
            }
            print_json(&WithImpact {
                diff: &result,
                impact: impact.as_deref(),
            });
        }
    }
    if !result.strandings.is_empty() {
        EXIT_REFUSED
    } else if result.equal {
        EXIT_OK
    } else {
        EXIT_ERRORS
    }
}

/// `flowc diff`'s exit code when NEW would be refused over OLD.
pub const EXIT_REFUSED: u8 = 3;

/// The contacts waiting right now in a daemon (`--server`) or its store (`--store`), as
/// [`diff::Waiting`] of OLD: a step number means something only in the flow version it was
/// taken in, so only instances of OLD's own version of a flow count; the others are named on
/// standard error (their OLD is another version: diff against that one).
fn live_waiting(old: &CompiledProject, args: &DiffArgs) -> Result<Vec<diff::Waiting>, String> {
    let live = crate::daemon::admin::waiting_now(
        args.server.as_deref(),
        &args.admin_key,
        args.store.as_deref(),
    )?;
    let mut waiting = Vec::new();
    for w in live {
        let same = old
            .flows
            .iter()
            .any(|f| f.name == w.flow && f.hash == w.version);
        if same {
            let mut examples = w.examples;
            examples.truncate(args.examples);
            waiting.push(diff::Waiting {
                flow: w.flow,
                step: w.step,
                count: w.count,
                examples,
            });
        } else {
            eprintln!(
                "note: {} contact(s) wait in `{}` version {} at step {}, which is not OLD's version of that flow; left out",
                w.count,
                w.flow,
                &w.version[..w.version.len().min(12)],
                w.step
            );
        }
    }
    Ok(waiting)
}

/// `flowc backtest`.
pub fn backtest(args: &BacktestArgs) -> u8 {
    let until = match parse_until(args.until.as_ref()) {
        Ok(u) => u,
        Err(code) => return code,
    };
    // Exit 1 means "different": a version that does not compile or a bad record is a 2.
    let (old, new) = match (load_compiled(&args.old), load_compiled(&args.new)) {
        (Ok(old), Ok(new)) => (old, new),
        _ => return EXIT_CANNOT_RUN,
    };
    let records = match read_events(&args.events, &[&old, &new]) {
        Ok(r) => r,
        Err(_) => return EXIT_CANNOT_RUN,
    };
    let options = SimulateOptions {
        until,
        ..Default::default()
    };
    let old_sim = simulate::run(&old, records.clone(), &options);
    let new_sim = simulate::run(&new, records, &options);
    let report = backtest::compare(
        &simulate::delivery_lines(&old, &old_sim),
        &simulate::delivery_lines(&new, &new_sim),
        args.examples,
    );
    match args.format {
        ChangeFormat::Text => print_out(&backtest::render_text(&report)),
        ChangeFormat::Json => print_json(&report),
    }
    if report.equal {
        EXIT_OK
    } else {
        EXIT_ERRORS
    }
}

/// `flowc verify`.
pub fn verify(args: &VerifyArgs) -> u8 {
    let project = match load_compiled(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let bounds = verify::Bounds {
        depth: args.depth,
        horizon_seconds: args.horizon_days.saturating_mul(86_400),
    };
    let report = verify::verify(&project, &bounds);
    match args.format {
        ChangeFormat::Text => print_out(&verify::render_text(
            &report,
            &args.project.display().to_string(),
        )),
        ChangeFormat::Json => print_json(&report),
    }
    if let Some(path) = &args.counterexample {
        if let Some(first) = report.findings.first() {
            let text: String = first
                .counterexample
                .iter()
                .map(|l| format!("{l}\n"))
                .collect();
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                return EXIT_CANNOT_RUN;
            }
        }
    }
    if report.findings.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERRORS
    }
}
