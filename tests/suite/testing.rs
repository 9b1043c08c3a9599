//! `flowc test` through the real binary: passes, failures with a diff, errors that name the
//! line, `--filter`, `--update`, and the summary line.

use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testing/cart")
}

/// A copy of the cart fixture in a temporary folder (tests may edit it).
fn copy_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("tests")).expect("mkdir");
    for file in ["cart.flow", "tests/cart.flowtest"] {
        std::fs::copy(fixture().join(file), dir.path().join(file)).expect("copy");
    }
    dir
}

fn flowc_test(dir: &Path, extra: &[&str]) -> (i32, String, String) {
    super::support::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_flowc"))
            .arg("test")
            .arg(dir)
            .args(extra),
    )
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "`{from}` not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn passing_cases_report_ok_and_the_summary() {
    let (code, stdout, stderr) = flowc_test(&fixture(), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("ok   a reminder one hour later (tests/cart.flowtest:3)"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("3 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn a_failing_case_prints_a_diff_and_exits_1() {
    let dir = copy_fixture();
    edit(
        &dir.path().join("tests/cart.flowtest"),
        "2026-03-01T11:00:00Z c1 abandoned_cart cart_reminder email sent",
        "2026-03-01T12:00:00Z c1 abandoned_cart cart_reminder email sent",
    );
    let (code, stdout, _) = flowc_test(dir.path(), &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL a reminder one hour later (tests/cart.flowtest:3)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("- 2026-03-01T12:00:00Z c1 abandoned_cart cart_reminder email sent"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+ 2026-03-01T11:00:00Z c1 abandoned_cart cart_reminder email sent"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("2 passed, 1 failed"),
        "{stdout}"
    );

    // --trace explains the failing case.
    let (_, traced, _) = flowc_test(dir.path(), &["--trace"]);
    assert!(traced.contains("trace:"), "{traced}");
    assert!(traced.contains("c1 abandoned_cart entered"), "{traced}");

    // --update accepts what was delivered, keeps the rest of the file, and then it passes.
    let (code, updated, _) = flowc_test(dir.path(), &["--update"]);
    assert_eq!(code, 0, "{updated}");
    assert!(
        updated.contains("updated 1 case(s) in tests/cart.flowtest"),
        "{updated}"
    );
    let text = std::fs::read_to_string(dir.path().join("tests/cart.flowtest")).unwrap();
    assert!(text.starts_with("# The reminder goes out"), "{text}");
    assert!(
        text.contains("expect\n2026-03-01T11:00:00Z c1 abandoned_cart cart_reminder email sent\n")
    );
    let (code, stdout, _) = flowc_test(dir.path(), &[]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn filter_runs_only_matching_cases() {
    let (code, stdout, _) = flowc_test(&fixture(), &["--filter", "consent"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("ok   no consent, no mail"), "{stdout}");
    assert!(!stdout.contains("one hour later"), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("1 passed, 0 failed, 2 filtered out"),
        "{stdout}"
    );
}

#[test]
fn a_bad_record_names_its_line_in_the_flowtest_file() {
    let dir = copy_fixture();
    edit(
        &dir.path().join("tests/cart.flowtest"),
        r#""timestamp":"2026-03-01T10:59:59Z""#,
        r#""timestamp":"yesterday""#,
    );
    let (code, stdout, _) = flowc_test(dir.path(), &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("ERROR an order before the hour stops it"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 14: `timestamp` `yesterday` is not an RFC 3339 time"),
        "{stdout}"
    );
    // --update cannot fix a case that does not run.
    let (code, _, _) = flowc_test(dir.path(), &["--update"]);
    assert_eq!(code, 1);
}

#[test]
fn a_case_without_expect_is_an_error_not_a_pass() {
    let dir = copy_fixture();
    std::fs::write(
        dir.path().join("tests/empty.flowtest"),
        "test \"forgot the expectation\"\ngiven\n{\"type\":\"identify\",\"userId\":\"c1\",\"timestamp\":\"2026-03-01T09:00:00Z\"}\n",
    )
    .unwrap();
    let (code, stdout, _) = flowc_test(dir.path(), &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(
            "tests/empty.flowtest:1: test \"forgot the expectation\" has no `expect` section"
        ),
        "{stdout}"
    );
}

#[test]
fn a_project_without_tests_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture().join("cart.flow"), dir.path().join("cart.flow")).unwrap();
    let (code, _, stderr) = flowc_test(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no `.flowtest` files"), "{stderr}");
}
