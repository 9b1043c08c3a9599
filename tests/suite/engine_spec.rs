//! The examiner's scenarios: every folder of `tests/engine/spec/` is one case written from
//! RUNTIME.md 1–3 alone, with the expectation derived by hand (see each case's `why.md`).
//!
//! A case holds `flows/*.flow`, `events.jsonl`, an optional `until.txt`, an optional
//! `flowc.toml` (then the case folder itself is the project), and either `expected.jsonl`
//! (the exact stdout of `flowc simulate`, line by line) or `error.txt` (the run must fail with
//! exit 1, print nothing on stdout, and say every line of `error.txt` on stderr).
//! The real binary runs each case twice: the output must also be the same both times.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn simulate(dir: &Path) -> Output {
    let project = if dir.join("flowc.toml").exists() {
        dir.to_path_buf()
    } else {
        dir.join("flows")
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowc"));
    command
        .arg("simulate")
        .arg(&project)
        .arg("--events")
        .arg(dir.join("events.jsonl"));
    if let Ok(until) = std::fs::read_to_string(dir.join("until.txt")) {
        command.arg("--until").arg(until.trim());
    }
    command.output().expect("run flowc simulate")
}

fn diff(expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .header("expected.jsonl", "flowc simulate")
        .to_string()
}

/// Checks one case; `Err` describes the disagreement.
fn check_case(dir: &Path) -> Result<(), String> {
    let first = simulate(dir);
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    if let Ok(error) = std::fs::read_to_string(dir.join("error.txt")) {
        let mut problems = Vec::new();
        if first.status.code() != Some(1) {
            problems.push(format!("exit status {:?}, expected 1", first.status.code()));
        }
        if !stdout.is_empty() {
            problems.push(format!("stdout should be empty, got:\n{stdout}"));
        }
        for needle in error.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !stderr.contains(needle) {
                problems.push(format!("stderr does not say {needle:?}"));
            }
        }
        return if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{}\nstderr:\n{stderr}", problems.join("\n")))
        };
    }
    if !first.status.success() {
        return Err(format!(
            "exit status {:?}\nstderr:\n{stderr}",
            first.status.code()
        ));
    }
    let expected = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap_or_default();
    if stdout != expected {
        return Err(diff(&expected, &stdout));
    }
    let second = simulate(dir);
    if second.stdout != first.stdout {
        return Err("a second run printed something else (not deterministic)".to_string());
    }
    Ok(())
}

fn case_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engine/spec");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/engine/spec")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("events.jsonl").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn engine_spec_cases() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 20, "only {} cases", dirs.len());
    let only = std::env::var("SPEC_CASE").ok();
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        if let Err(problem) = check_case(dir) {
            failures.push(format!("=== case {name}\n{problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with RUNTIME.md:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
