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

/// For each contact of one run: (split branch, held out?).
fn split_and_holdout(dir: &Path, contacts: &[String], day: &str) -> Vec<(String, String, bool)> {
    let events: String = contacts
        .iter()
        .flat_map(|c| {
            [
                format!(
                    r#"{{"type":"identify","userId":"{c}","timestamp":"{day}T09:00:00Z","traits":{{"email":"{c}@example.com","consent":{{"email":true}}}}}}"#
                ),
                format!(
                    r#"{{"type":"track","userId":"{c}","event":"go","timestamp":"{day}T10:00:00Z","properties":{{}}}}"#
                ),
            ]
        })
        .map(|l| l + "\n")
        .collect();
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("events.jsonl"), events).expect("write events");
    let output = Command::new(env!("CARGO_BIN_EXE_flowc"))
        .arg("simulate")
        .arg(dir.join("flows"))
        .arg("--events")
        .arg(work.path().join("events.jsonl"))
        .output()
        .expect("run flowc simulate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    contacts
        .iter()
        .map(|c| {
            let mine: Vec<&serde_json::Value> =
                lines.iter().filter(|v| field(v, "contact") == *c).collect();
            let split: Vec<_> = mine
                .iter()
                .filter(|v| field(v, "flow") == "split_flow")
                .collect();
            assert_eq!(split.len(), 1, "{c}: one split line, got {split:?}");
            assert_eq!(field(split[0], "status"), "sent");
            assert_eq!(field(split[0], "time"), format!("{day}T10:00:00Z"));
            let branch = field(split[0], "message");
            assert!(branch == "a" || branch == "b", "{c}: {branch}");
            let held: Vec<(String, String, String, String)> = mine
                .iter()
                .filter(|v| field(v, "flow") == "held")
                .map(|v| {
                    (
                        field(v, "time"),
                        field(v, "message"),
                        field(v, "status"),
                        field(v, "reason"),
                    )
                })
                .collect();
            let s = |x: &str| x.to_string();
            let control = vec![(
                format!("{day}T11:00:00Z"),
                s("h1"),
                s("skipped"),
                s("holdout"),
            )];
            let treated = vec![
                (format!("{day}T11:00:00Z"), s("h1"), s("sent"), s("")),
                (format!("{day}T12:00:00Z"), s("h2"), s("sent"), s("")),
            ];
            assert!(
                held == control || held == treated,
                "{c}: the held flow printed {held:?}"
            );
            (c.clone(), branch, held == control)
        })
        .collect()
}

#[test]
fn split_and_holdout_are_deterministic_per_contact() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engine/spec/split_holdout_property");
    let contacts: Vec<String> = (0..40).map(|i| format!("c{i:02}")).collect();
    let first = split_and_holdout(&dir, &contacts, "2026-03-01");
    assert!(first.iter().any(|r| r.1 == "a") && first.iter().any(|r| r.1 == "b"));
    assert!(first.iter().any(|r| r.2) && first.iter().any(|r| !r.2));
    let mut others: Vec<String> = contacts.iter().rev().cloned().collect();
    for i in 0..20 {
        others.insert(i * 2, format!("x{i:02}"));
    }
    let second = split_and_holdout(&dir, &others, "2026-05-17");
    for r in &first {
        let again = second.iter().find(|s| s.0 == r.0).expect("same contact");
        assert_eq!(r, again, "{} changed branch or group between runs", r.0);
    }
}
