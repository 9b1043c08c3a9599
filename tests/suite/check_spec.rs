//! `flowc check` examined from the outside, against LANGUAGE.md rather than against what the
//! checker prints. `tests/check/spec/ok/*` must give no output at all and exit 0, in both
//! formats. Each `tests/check/spec/err/CASE/` holds one intended problem and an `expect.json`
//! written from the contract:
//!
//! ```json
//! {"exit": 1,
//!  "expect": [{"code": "E0002", "file": "flows/a.flow", "line": 4},
//!             {"code": "E0015", "one_of": [{"file": "flows/a.flow", "line": 1}, ...]}],
//!  "human_contains": ["did you mean"]}
//! ```
//!
//! Every expected (code, file, line) must be reported (for `one_of`, on one of those lines), no
//! error with a code that is not expected may appear, the exit code must match, every JSON line
//! must begin with exactly the contract's keys in order, and the human report must name
//! `file:line` of each expected diagnostic and give a `help`.

use serde_json::Value;
use std::path::{Path, PathBuf};

const CONTRACT_KEYS: [&str; 6] = ["severity", "code", "message", "file", "line", "column"];

fn spec_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/check/spec")
        .join(kind)
}

fn flowc(dir: &Path, args: &[&str]) -> (i32, String, String) {
    super::support::flowc_in(dir, args)
}

fn cases(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(spec_dir(kind))
        .expect("spec corpus folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// The keys of a JSON object in the order they are written (`serde_json::Map` sorts them).
struct KeyOrder(Vec<String>);

impl<'de> serde::Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeyOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(KeyOrder(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// Parses JSON lines, checking the contract's key order and 1-based positions.
fn diagnostics(case: &str, stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{case}: not a JSON line ({e}): {line}"));
            let object = value.as_object().expect("a JSON object");
            let KeyOrder(keys) = serde_json::from_str(line).expect("a JSON object");
            let first: Vec<&str> = keys.iter().map(String::as_str).take(6).collect();
            assert_eq!(first, CONTRACT_KEYS, "{case}: key order of {line}");
            let severity = object["severity"].as_str().expect("severity");
            assert!(
                severity == "error" || severity == "warning",
                "{case}: {line}"
            );
            for key in ["code", "message", "file"] {
                assert!(
                    object[key].as_str().is_some_and(|s| !s.is_empty()),
                    "{case}: {key} of {line}"
                );
            }
            for key in ["line", "column"] {
                assert!(
                    object[key].as_u64().is_some_and(|n| n >= 1),
                    "{case}: {key} is not 1-based in {line}"
                );
            }
            let file = object["file"].as_str().unwrap_or_default();
            assert!(
                !file.starts_with('/') && !file.contains('\\'),
                "{case}: file should be relative to the project: {line}"
            );
            value
        })
        .collect()
}

/// The (file, line) places an expectation accepts.
fn places(expect: &Value) -> Vec<(String, u64)> {
    let one = |v: &Value| {
        (
            v["file"].as_str().expect("file").to_string(),
            v["line"].as_u64().expect("line"),
        )
    };
    match expect["one_of"].as_array() {
        Some(alternatives) => alternatives.iter().map(one).collect(),
        None => vec![one(expect)],
    }
}

#[test]
fn spec_ok_cases_give_no_output() {
    let dir = spec_dir("ok");
    let names = cases("ok");
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        for args in [
            vec!["check", &name, "--format", "json"],
            vec!["check", &name],
        ] {
            let (code, stdout, stderr) = flowc(&dir, &args);
            assert_eq!(
                (code, stdout.as_str(), stderr.as_str()),
                (0, "", ""),
                "{name}: {args:?}"
            );
        }
    }
}

#[test]
fn spec_err_cases_report_what_the_contract_says() {
    let dir = spec_dir("err");
    let names = cases("err");
    assert!(names.len() >= 60, "{names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let case_dir = dir.join(name);
        let expect: Value = serde_json::from_str(
            &std::fs::read_to_string(case_dir.join("expect.json")).expect("expect.json"),
        )
        .expect("expect.json parses");
        let want_exit = expect["exit"].as_i64().expect("exit") as i32;
        let expected = expect["expect"].as_array().expect("expect list");
        assert!(!expected.is_empty(), "{name}: nothing expected");

        let (code, stdout, stderr) = flowc(&case_dir, &["check", ".", "--format", "json"]);
        assert_eq!(stderr, "", "{name}: JSON mode writes to stdout only");
        let got = diagnostics(name, &stdout);
        if code != want_exit {
            failures.push(format!("{name}: exit {code}, want {want_exit}\n{stdout}"));
        }
        for e in expected {
            let want_code = e["code"].as_str().expect("code");
            let accepted = places(e);
            let found = got.iter().any(|g| {
                g["code"] == want_code
                    && accepted.iter().any(|(file, line)| {
                        g["file"].as_str() == Some(file) && g["line"].as_u64() == Some(*line)
                    })
            });
            if !found {
                failures.push(format!(
                    "{name}: {want_code} expected at {accepted:?}, got:\n{stdout}"
                ));
            }
        }
        let expected_codes: Vec<&str> =
            expected.iter().filter_map(|e| e["code"].as_str()).collect();
        for g in &got {
            let code = g["code"].as_str().unwrap_or_default();
            if g["severity"] == "error" && !expected_codes.contains(&code) {
                failures.push(format!("{name}: unexpected error {g}"));
            }
        }

        // The human report: each expected place as `file:line:`, a help line, and the words
        // the case asks for (a did-you-mean, the missing field).
        let (human_code, human_out, human) = flowc(&case_dir, &["check", "."]);
        assert_eq!(human_code, code, "{name}: both formats exit alike");
        assert_eq!(human_out, "", "{name}: the human report goes to stderr");
        for e in expected {
            let named = places(e)
                .iter()
                .any(|(file, line)| human.contains(&format!("{file}:{line}:")));
            if !named {
                failures.push(format!(
                    "{name}: human report does not name {:?}\n{human}",
                    places(e)
                ));
            }
        }
        if !human.contains("help:") {
            failures.push(format!("{name}: no help in the human report\n{human}"));
        }
        for words in expect["human_contains"].as_array().into_iter().flatten() {
            let words = words.as_str().expect("a string");
            if !human.contains(words) {
                failures.push(format!("{name}: human report lacks {words:?}\n{human}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn spec_bad_input_exits_2_with_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    std::fs::create_dir_all(root.join("empty")).expect("mkdir");
    std::fs::create_dir_all(root.join("no_flow_files/flows")).expect("mkdir");
    std::fs::write(root.join("no_flow_files/flows/README.txt"), "notes\n").expect("write");
    std::fs::create_dir_all(root.join("not_utf8/flows")).expect("mkdir");
    std::fs::write(
        root.join("not_utf8/flows/a.flow"),
        b"flow a {\n    when signed_up\n    send \xff\xfe\n}\n",
    )
    .expect("write");
    std::fs::write(root.join("latin1.flow"), b"segment caf\xe9 = true\n").expect("write");
    for path in [
        "does_not_exist",
        "does_not_exist.flow",
        "empty",
        "no_flow_files",
        "not_utf8",
        "latin1.flow",
    ] {
        for json in [false, true] {
            let mut args = vec!["check", path];
            if json {
                args.extend(["--format", "json"]);
            }
            let (code, stdout, stderr) = flowc(root, &args);
            assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
            assert_eq!(stdout, "", "{args:?}");
            assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn spec_a_single_file_is_a_project() {
    let ok = spec_dir("ok");
    let (code, stdout, stderr) = flowc(&ok, &["check", "single.flow", "--format", "json"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""));
    let (code, stdout, stderr) = flowc(&ok, &["check", "durations/flows/durations.flow"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""));

    // Inside `flows/`, `file("templates/...")` is still relative to the project above.
    let flows = ok.join("messages/flows");
    for file in ["messages.flow", "./messages.flow", "."] {
        let (code, stdout, stderr) = flowc(&flows, &["check", file, "--format", "json"]);
        assert_eq!(
            (code, stdout.as_str(), stderr.as_str()),
            (0, "", ""),
            "{file}"
        );
    }

    // `flowc check flows` from the project root: the same project, files named from the root.
    let (code, stdout, stderr) = flowc(&ok.join("messages"), &["check", "flows"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""));
    let err_project = spec_dir("err").join("E0010_missing_template_file");
    let (code, stdout, _) = flowc(&err_project, &["check", "flows", "--format", "json"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains(r#""file":"flows/a.flow","line":9"#),
        "{stdout}"
    );
    let (code, stdout, _) = flowc(
        &err_project.join("flows"),
        &["check", ".", "--format", "json"],
    );
    assert_eq!(code, 1);
    assert!(stdout.contains(r#""file":"a.flow","line":9"#), "{stdout}");

    let err = spec_dir("err").join("E0017_wait_0d/flows");
    let (code, stdout, _) = flowc(&err, &["check", "a.flow", "--format", "json"]);
    assert_eq!(code, 1);
    let got = diagnostics("single E0017", &stdout);
    assert!(
        got.iter().any(|g| g["code"] == "E0017" && g["line"] == 5),
        "{stdout}"
    );
}
