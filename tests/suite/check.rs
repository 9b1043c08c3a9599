//! `flowc check` through the real binary: the `tests/check/ok` corpus checks clean, every case
//! of `tests/check/err` gives its code with the right exit code and a pinned rendering (human
//! and JSON, insta snapshots), bad input exits 2, `flowc explain` knows every code, the other
//! commands refuse a project with errors, and the checker never panics.

use flowc::diagnostic::Code;
use flowc::project::Project;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

use super::support::{flowc_in, repo};

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("corpus folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

fn codes_in_json(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            value["code"].as_str().expect("code").to_string()
        })
        .collect()
}

// ---------------------------------------------------------------- corpora

#[test]
fn every_ok_example_checks_clean_without_warnings() {
    let dir = repo("tests/check/ok");
    let names = entries(&dir);
    assert!(names.len() >= 2, "{names:?}");
    for name in names {
        let (code, stdout, stderr) = flowc_in(&dir, &["check", &name, "--format", "json"]);
        assert_eq!(code, 0, "{name}:\n{stdout}{stderr}");
        assert_eq!(stdout, "", "{name} has diagnostics");
        let (code, _, stderr) = flowc_in(&dir, &["check", &name]);
        assert_eq!((code, stderr.as_str()), (0, ""), "{name}");
    }
}

/// Each `tests/check/err/CODE_what/` gives `CODE` (exit 1 for an error code, 0 for a
/// warning), on a file and line, and its human and JSON renderings are pinned. A case with an
/// `old/` project folder is checked `--against` it (the version running now).
#[test]
fn every_err_case_reports_its_code() {
    let dir = repo("tests/check/err");
    for name in entries(&dir) {
        let old = format!("{name}/old");
        let mut against: Vec<&str> = Vec::new();
        if dir.join(&old).is_dir() {
            against = vec!["--against", &old];
        }
        let json_args = [&["check", name.as_str(), "--format", "json"][..], &against].concat();
        let (json_code, stdout, stderr) = flowc_in(&dir, &json_args);
        assert_eq!(
            stderr, "",
            "{name}: JSON mode writes diagnostics to stdout only"
        );
        let codes = codes_in_json(&stdout);
        assert!(!codes.is_empty(), "{name}: no diagnostics");
        let has_error = stdout.contains(r#""severity":"error""#);
        assert_eq!(json_code, if has_error { 1 } else { 0 }, "{name}");
        if let Some(expected) = name
            .split('_')
            .next()
            .filter(|c| Code::from_str(c).is_some())
        {
            assert!(codes.iter().any(|c| c == expected), "{name}: {codes:?}");
            assert_eq!(
                has_error,
                expected.starts_with('E'),
                "{name}: a warning case must have no errors"
            );
        }
        for line in stdout.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
            let file = value["file"].as_str().expect("file");
            assert!(
                dir.join(&name).join(file).is_file() || file.starts_with("stdlib/"),
                "{name}: `{file}` is not a path relative to the project"
            );
            assert!(value["label"].is_string(), "{name}: no label in {line}");
            assert!(value["help"].is_string(), "{name}: no help in {line}");
            let message = value["message"].as_str().expect("message");
            assert!(
                !message.ends_with('.') && !message.starts_with(|c: char| c.is_uppercase()),
                "{name}: `{message}` should be lower case without a final period"
            );
            assert!(value["line"].as_u64().expect("line") >= 1);
            assert!(value["column"].as_u64().expect("column") >= 1);
        }
        let human_args = [&["check", name.as_str()][..], &against].concat();
        let (human_code, human_out, human) = flowc_in(&dir, &human_args);
        assert_eq!(human_out, "", "{name}: the human report goes to stderr");
        assert_eq!(human_code, json_code, "{name}");
        insta::assert_snapshot!(
            format!("err_{name}"),
            format!("exit code {human_code}\n\n{human}\n--- json ---\n{stdout}")
        );
    }
}

#[test]
fn every_code_has_an_err_case() {
    let names = entries(&repo("tests/check/err"));
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| !names.iter().any(|n| n.starts_with(&format!("{code}_"))))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a tests/check/err case: {missing:?}"
    );
}

/// The JSON line starts with exactly the fields of LANGUAGE.md 6, in that order.
#[test]
fn json_lines_have_the_contract_fields_first() {
    let dir = repo("tests/check/err");
    let (_, stdout, _) = flowc_in(
        &dir,
        &["check", "E0002_unknown_message", "--format", "json"],
    );
    let line = stdout.lines().next().expect("a line");
    assert!(
        line.starts_with(
            r#"{"severity":"error","code":"E0002","message":"unknown message `welcom_email`","file":"flows/welcome.flow","line":4,"column":10,"#
        ),
        "{line}"
    );
}

#[test]
fn several_errors_in_several_files_are_reported_in_one_run() {
    let dir = repo("tests/check/err");
    let (code, stdout, stderr) =
        flowc_in(&dir, &["check", "many_errors_at_once", "--format", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let codes = codes_in_json(&stdout);
    assert!(codes.len() >= 7, "{codes:?}");
    assert!(stdout.contains(r#""file":"flows/a.flow""#));
    assert!(stdout.contains(r#""file":"flows/b.flow""#));
    let (_, _, human) = flowc_in(&dir, &["check", "many_errors_at_once"]);
    let summary = human.lines().last().expect("summary");
    assert!(
        summary.starts_with("error: ") && summary.contains(" errors, 1 warning"),
        "{summary}"
    );
}

#[test]
fn an_error_in_the_second_file_names_that_file() {
    let dir = repo("tests/check/err");
    let (code, stdout, _) = flowc_in(
        &dir,
        &["check", "E0001_error_in_second_file", "--format", "json"],
    );
    assert_eq!(code, 1);
    assert_eq!(codes_in_json(&stdout), ["E0001"], "{stdout}");
    assert!(
        stdout.contains(r#""file":"flows/b_messages.flow","line":7"#),
        "{stdout}"
    );
}

// ---------------------------------------------------------------- formats and flags

#[test]
fn github_format_writes_workflow_annotations() {
    let dir = repo("tests/check/err");
    let (code, stdout, _) = flowc_in(&dir, &["check", "W0005_long_wait", "--format", "github"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("::warning file=flows/welcome.flow,line=4,col=10,"),
        "{stdout}"
    );
    assert!(
        stdout.contains("title=W0005::a wait of `13mo` is longer than one year"),
        "{stdout}"
    );
    let (code, stdout, _) = flowc_in(&dir, &["check", "E0017_wait_zero", "--format", "github"]);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("::error file=flows/welcome.flow,line=4,col=10,"),
        "{stdout}"
    );
}

#[test]
fn deny_warnings_turns_warnings_into_exit_1() {
    let dir = repo("tests/check/err");
    assert_eq!(flowc_in(&dir, &["check", "W0003_unused_message"]).0, 0);
    let (code, _, stderr) = flowc_in(&dir, &["check", "W0003_unused_message", "--deny-warnings"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("warning: 1 warning"), "{stderr}");
}

// ---------------------------------------------------------------- could not run

#[test]
fn a_missing_path_exits_2_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = flowc_in(dir.path(), &["check", "no/such/shop"]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert_eq!(stderr, "error: `no/such/shop` does not exist\n");
}

#[test]
fn an_empty_project_exits_2_and_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("shop")).expect("mkdir");
    let (code, _, stderr) = flowc_in(dir.path(), &["check", "shop", "--format", "json"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("`shop` holds no `.flow` files"), "{stderr}");
    assert!(stderr.contains("flowc init"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_file_that_is_not_utf8_exits_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("shop/flows")).expect("mkdir");
    std::fs::write(
        dir.path().join("shop/flows/bad.flow"),
        b"flow a {\n  when x\xff\n}\n",
    )
    .expect("write");
    let (code, _, stderr) = flowc_in(dir.path(), &["check", "shop"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("flows/bad.flow"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_file_that_is_not_a_flow_exits_2() {
    let (code, _, stderr) = flowc_in(&repo("."), &["check", "README.md"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "error: `README.md` is not a `.flow` file; give a project folder or a `.flow` file\n"
    );
}

// ---------------------------------------------------------------- explain

#[test]
fn explain_knows_every_code() {
    let dir = repo(".");
    for code in Code::ALL {
        let (exit, stdout, stderr) = flowc_in(&dir, &["explain", code.as_str()]);
        assert_eq!(exit, 0, "{code}: {stderr}");
        assert!(stdout.starts_with(&format!("{code} (")), "{stdout}");
        assert!(stdout.contains("Example:"), "{code}");
        assert!(stdout.contains("How to fix it:"), "{code}");
    }
    let (exit, stdout, _) = flowc_in(&dir, &["explain", "e0013"]);
    assert_eq!(exit, 0);
    assert!(stdout.contains("split"), "{stdout}");
}

#[test]
fn explain_an_unknown_code_exits_2_with_a_suggestion() {
    let (exit, stdout, stderr) = flowc_in(&repo("."), &["explain", "E0O13"]);
    assert_eq!(exit, 2);
    assert_eq!(stdout, "");
    assert!(stderr.contains("did you mean `E0013`?"), "{stderr}");
}

// ---------------------------------------------------------------- the other commands

#[test]
fn simulate_build_test_and_graph_refuse_a_project_with_errors() {
    let dir = repo("tests/check/err");
    let events = tempfile::NamedTempFile::new().expect("events file");
    let events_path = events.path().to_str().expect("utf-8");
    let (_, _, check_report) = flowc_in(&dir, &["check", "E0002_unknown_message"]);
    let runs: [&[&str]; 4] = [
        &["simulate", "E0002_unknown_message", "--events", events_path],
        &["build", "E0002_unknown_message"],
        &["test", "E0002_unknown_message"],
        &["graph", "welcome", "--project", "E0002_unknown_message"],
    ];
    for args in runs {
        let (code, stdout, stderr) = flowc_in(&dir, args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("unknown message `welcom_email`"),
            "{args:?}: {stderr}"
        );
        // The same rendering as `flowc check` (errors only).
        let first_error = check_report.split("\n\n").next().unwrap_or_default();
        assert!(stderr.contains(first_error), "{args:?}:\n{stderr}");
    }
}

// ---------------------------------------------------------------- the library

/// Each stdlib module, used by a project, brings no diagnostic of its own (and its unused
/// declarations are not the user's to hear about).
#[test]
fn every_stdlib_module_used_by_a_project_is_silent() {
    for (name, _) in flowc::stdlib::MODULES {
        let text = format!(
            "use stdlib/{name}\n\nflow hello {{\n    when signed_up\n    only if can_receive(email)\n    send hello_email\n}}\n\nmessage hello_email: email {{\n    subject: \"Hi\"\n    body: \"<p>Hi</p>\"\n}}\n"
        );
        let diagnostics = check_text(&text);
        assert!(diagnostics.is_empty(), "stdlib/{name}: {diagnostics:#?}");
    }
}

/// One run reports every problem, in file order and then by position.
#[test]
fn problems_come_sorted_by_file_and_position() {
    let project = Project::from_sources(
        PathBuf::from("/nonexistent-root"),
        vec![
            (
                PathBuf::from("flows/a.flow"),
                "flow a {\n    when x\n    send nope_one\n    wait 0s\n}\n".to_string(),
            ),
            (
                PathBuf::from("flows/b.flow"),
                "flow b {\n    send nope_two\n}\n".to_string(),
            ),
        ],
    );
    let diagnostics = flowc::check::check(&project);
    let seen: Vec<(String, &str)> = diagnostics
        .iter()
        .map(|d| (d.file.display().to_string(), d.code.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("flows/a.flow".to_string(), "E0002"),
            ("flows/a.flow".to_string(), "E0017"),
            ("flows/b.flow".to_string(), "E0019"),
            ("flows/b.flow".to_string(), "E0002"),
        ]
    );
}

// ---------------------------------------------------------------- never panics

fn check_text(text: &str) -> Vec<flowc::diagnostic::Diagnostic> {
    let project = Project::from_sources(
        PathBuf::from("/nonexistent-root"),
        vec![(PathBuf::from("flows/x.flow"), text.to_string())],
    );
    flowc::check::check(&project)
}

/// Checks and renders in every format (rendering must not panic on any span either).
fn check_and_render(text: &str) -> Vec<flowc::diagnostic::Diagnostic> {
    use flowc::check::render;
    let project = Project::from_sources(
        PathBuf::from("/nonexistent-root"),
        vec![(PathBuf::from("flows/x.flow"), text.to_string())],
    );
    let diagnostics = flowc::check::check(&project);
    let human = render::human_all(&project, &diagnostics, render::Style::plain());
    assert_eq!(human.is_empty(), diagnostics.is_empty());
    for d in &diagnostics {
        let line: serde_json::Value =
            serde_json::from_str(&render::json(&project, d)).expect("JSON");
        assert_eq!(line["code"], d.code.as_str());
        assert!(render::github(&project, d).starts_with("::"));
    }
    diagnostics
}

fn real_flows() -> Vec<String> {
    let mut texts = Vec::new();
    for dir in ["flows", "stdlib", "tests/check/ok", "tests/check/err"] {
        for entry in walkdir::WalkDir::new(repo(dir))
            .into_iter()
            .filter_map(Result::ok)
        {
            if entry.path().extension().is_some_and(|x| x == "flow") {
                texts.push(std::fs::read_to_string(entry.path()).expect("read"));
            }
        }
    }
    texts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn check_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = check_and_render(&text);
    }

    #[test]
    fn check_never_panics_on_mutated_flows(
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        cut in 0usize..40,
        insert in "[a-z0-9_ {}().:\"%=<>\\n-]{0,12}",
    ) {
        let texts = real_flows();
        let text = &texts[which.index(texts.len())];
        let mut start = at.index(text.len().max(1)).min(text.len());
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + cut).min(text.len());
        while !text.is_char_boundary(end) { end += 1; }
        let mutated = format!("{}{}{}", &text[..start], insert, &text[end..]);
        let diagnostics = check_and_render(&mutated);
        for d in &diagnostics {
            prop_assert!(d.span.start <= d.span.end);
            prop_assert!(d.span.end <= mutated.len() + 1, "{:?}", d);
        }
    }
}

/// A single file is reported relative to the project root (the folder with `flowc.toml`),
/// whether it is in `flows/` or not and wherever the command runs (`tests/check/single_file`).
#[test]
fn a_single_file_is_reported_relative_to_the_project_root() {
    let project = repo("tests/check/single_file");
    let file_of = |dir: &Path, arg: &str| {
        let (code, stdout, stderr) = flowc_in(dir, &["check", arg, "--format", "json"]);
        assert_eq!(code, 1, "{arg}: {stdout}{stderr}");
        let first = stdout.lines().next().expect("a diagnostic");
        let value: serde_json::Value = serde_json::from_str(first).expect("JSON");
        value["file"].as_str().expect("file").to_string()
    };
    assert_eq!(
        file_of(&project, "drafts/winback.flow"),
        "drafts/winback.flow"
    );
    assert_eq!(
        file_of(&project.join("drafts"), "winback.flow"),
        "drafts/winback.flow"
    );
    assert_eq!(
        file_of(&project.join("flows"), "../drafts/winback.flow"),
        "drafts/winback.flow"
    );
    // Unchanged: a file in `flows/`, and a folder.
    let (code, stdout, _) = flowc_in(&project, &["check", "flows/welcome.flow"]);
    assert_eq!((code, stdout.as_str()), (0, ""));
    assert_eq!(file_of(&project.join("drafts"), "."), "winback.flow");
    let (_, _, human) = flowc_in(&project.join("drafts"), &["check", "winback.flow"]);
    insta::assert_snapshot!("single_file_outside_flows", human);
}
