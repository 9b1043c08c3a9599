//! Integration tests: `flowc fmt`.
//!
//! Owns: the boundary `flowc::fmt` (layout, idempotency, meaning and comment preservation)
//! and the `flowc fmt` command run as a real binary (paths, `--check`, stdin, files that do
//! not parse). Inputs for the layout snapshots are `tests/fmt/*.flow.txt` (not `.flow`, so
//! that nothing else loads these deliberately messy files).
//! Must not: reformat the repository's own `.flow` files (it only reads them).

use flowc::fmt::{comment_texts, format_source, same_meaning, tree_without_spans};
use flowc::syntax::parse;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ───────────────────────────── helpers ─────────────────────────────

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Formats `text` and asserts everything a formatter owes: the output parses, has the same
/// tree (spans aside), the same comments in the same order, and formats to itself.
fn assert_sound(text: &str, what: &str) -> String {
    let before = parse(text).unwrap_or_else(|e| panic!("{what} does not parse: {e:?}"));
    let once = format_source(text).unwrap_or_else(|e| panic!("{what}: fmt failed: {e:?}"));
    let after = parse(&once)
        .unwrap_or_else(|e| panic!("{what}: formatted text does not parse: {e:?}\n{once}"));
    assert!(
        same_meaning(&before, &after),
        "{what}: formatting changed the tree\n--- input\n{text}\n--- output\n{once}\n--- trees\n{:#?}\n{:#?}",
        tree_without_spans(&before),
        tree_without_spans(&after)
    );
    assert_eq!(
        comment_texts(&before),
        comment_texts(&after),
        "{what}: comments lost or reordered\n{once}"
    );
    let twice = format_source(&once).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert_eq!(once, twice, "{what}: fmt is not idempotent");
    once
}

fn fmt(text: &str) -> String {
    assert_sound(text, "input")
}

fn flowc(args: &[&str], dir: &Path, stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowc"));
    command
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::piped());
    let mut child = command.spawn().expect("run flowc");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("flowc output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every `.flow` file of the repository (not `target/` or hidden folders).
fn repo_flow_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for top in ["flows", "stdlib", "tests", "src", "examples"] {
        let dir = repo().join(top);
        if !dir.exists() {
            continue;
        }
        for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
            let entry = entry.expect("walk");
            if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "flow")
            {
                files.push(entry.into_path());
            }
        }
    }
    files
}

const UNFORMATTED: &str = "flow f {\nwhen signed_up\n  send welcome   # hi\n}\n";
const FORMATTED: &str = "flow f {\n    when signed_up\n    send welcome  # hi\n}\n";

// ───────────────────────────── the repository's own files ─────────────────────────────

#[test]
fn every_repo_flow_is_idempotent_keeps_meaning_and_comments() {
    let mut parsed = 0;
    for path in repo_flow_files() {
        let source = std::fs::read_to_string(&path).expect("read");
        // Files that are meant not to parse (syntax-error corpora) are skipped.
        if parse(&source).is_err() {
            continue;
        }
        assert_sound(&source, &path.display().to_string());
        parsed += 1;
    }
    assert!(parsed >= 30, "only {parsed} flow files found");
}

#[test]
fn the_stdlib_and_the_example_shop_are_already_formatted() {
    for dir in ["stdlib", "flows"] {
        for entry in walkdir::WalkDir::new(repo().join(dir)) {
            let entry = entry.expect("walk");
            if entry.path().extension().is_some_and(|e| e == "flow") {
                let source = std::fs::read_to_string(entry.path()).expect("read");
                let formatted = format_source(&source).expect("parses");
                assert_eq!(
                    formatted,
                    source,
                    "{} is not in the canonical layout",
                    entry.path().display()
                );
            }
        }
    }
}

// ───────────────────────────── layout snapshots ─────────────────────────────

fn snapshot_input(name: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fmt").join(format!("{name}.flow.txt")))
        .expect("read input")
}

#[test]
fn snapshot_every_construct() {
    let output = fmt(&snapshot_input("messy"));
    insta::assert_snapshot!("fmt_messy", output);
}

#[test]
fn snapshot_comments_in_odd_places() {
    let input = snapshot_input("comments");
    let output = fmt(&input);
    insta::assert_snapshot!("fmt_comments", output);
}

#[test]
fn snapshot_long_lines_are_wrapped() {
    let output = fmt(&snapshot_input("long"));
    for line in output.lines() {
        // The only line over the width holds one long string literal.
        assert!(
            line.chars().count() <= flowc::fmt::layout::WIDTH || line.contains("https://"),
            "too long: {line}"
        );
    }
    insta::assert_snapshot!("fmt_long", output);
}

// ───────────────────────────── rules ─────────────────────────────

#[test]
fn parentheses_only_where_precedence_needs_them() {
    let cases = [
        ("segment s = ((a and b)) or c", "segment s = a and b or c\n"),
        ("segment s = a and (b or c)", "segment s = a and (b or c)\n"),
        ("segment s = (a - b) - c", "segment s = a - b - c\n"),
        ("segment s = a - (b - c)", "segment s = a - (b - c)\n"),
        ("segment s = not (x == 1)", "segment s = not x == 1\n"),
        ("segment s = (not x) == y", "segment s = (not x) == y\n"),
        ("segment s = not (a and b)", "segment s = not (a and b)\n"),
        ("segment s = -(1 + 2) * 3", "segment s = -(1 + 2) * 3\n"),
        ("segment s = -(-x)", "segment s = -(-x)\n"),
        ("segment s = (a * b) + c", "segment s = a * b + c\n"),
        ("segment s = a * (b + c)", "segment s = a * (b + c)\n"),
        (
            "segment s = (x in [1, 2]) == true",
            "segment s = x in [1, 2] == true\n",
        ),
        (
            "segment s = x == (y in [1])",
            "segment s = x == (y in [1])\n",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(fmt(input), expected, "{input}");
    }
}

#[test]
fn an_or_in_a_wait_filter_keeps_its_parentheses() {
    // Without them, `or new up to` would start a second awaited event.
    let input = "flow f {\n    when a\n    wait for x where (vip or new) up to 1h\n}\n";
    assert_eq!(fmt(input), input);
    let two = "flow f {\n    when a\n    wait for x where event.n == 1 or y up to 1h\n}\n";
    assert_eq!(fmt(two), two);
}

#[test]
fn strings_are_re_escaped() {
    let input = "message m: sms {\n    body: \"say \\\"hi\\\"\\tand\\\\or\\nbye\"\n}\n";
    assert_eq!(fmt(input), input);
    let file = parse(input).expect("parses");
    let flowc::syntax::ast::Item::Message(m) = &file.items[0] else {
        panic!("a message")
    };
    let flowc::syntax::ast::FieldValue::Text(body) = &m.fields[0].value else {
        panic!("text")
    };
    assert_eq!(body.value, "say \"hi\"\tand\\or\nbye");
}

#[test]
fn literals_in_canonical_spelling() {
    let input =
        "flow f {\n    when every 1 day at 9:00 for s\n    wait 2 days\n    wait 90 minutes\n    \
                 holdout 12.50%\n    set contact.p = 49.90\n}\n";
    assert_eq!(
        fmt(input),
        "flow f {\n    when every day at 09:00 for s\n    wait 2d\n    wait 90min\n    \
         holdout 12.50%\n    set contact.p = 49.90\n}\n"
    );
}

#[test]
fn blank_lines_between_declarations_and_at_most_one_inside_blocks() {
    let input = "use stdlib/cart\nuse stdlib/consent\nsegment a = x\nsegment b = y\n\n\n\n\
                 message m: sms { body: \"x\" }\nflow f {\n\n    when e\n\n\n    send m\n    stop\n\n}\n";
    assert_eq!(
        fmt(input),
        "use stdlib/cart\nuse stdlib/consent\n\nsegment a = x\nsegment b = y\n\n\
         message m: sms {\n    body: \"x\"\n}\n\nflow f {\n    when e\n\n    send m\n    stop\n}\n"
    );
}

#[test]
fn header_lines_keep_their_place_among_steps() {
    // A header after a step is an error for `flowc check` (E0027); fmt must not hide it.
    let input = "flow f {\n    when a\n    send m\n    exit on b\n}\n";
    assert_eq!(fmt(input), input);
}

#[test]
fn statements_on_one_line_are_split() {
    assert_eq!(
        fmt("flow f { when a; send m; wait 1h; stop }"),
        "flow f {\n    when a\n    send m\n    wait 1h\n    stop\n}\n"
    );
}

#[test]
fn trailing_comma_keeps_an_argument_list_one_per_line() {
    let exploded = "flow x = t(\n    a: 1,\n    b: m,\n)\n";
    assert_eq!(fmt("flow x = t(a: 1, b: m,)"), exploded);
    assert_eq!(
        fmt("flow x = t(\n  a: 1,\n  b: m)"),
        "flow x = t(a: 1, b: m)\n"
    );
}

#[test]
fn empty_blocks_stay_empty_blocks() {
    // `{}` after `up to` and `else {}` are part of the tree: they must not disappear.
    let input = "flow f {\n    when a\n    wait for b up to 1d {}\n    if x {} else {}\n}\n";
    assert_eq!(fmt(input), input);
}

#[test]
fn crlf_line_endings_become_lf() {
    let output = fmt("flow f {\r\n    when a  # c\r\n\r\n    send m\r\n}\r\n");
    assert_eq!(output, "flow f {\n    when a  # c\n\n    send m\n}\n");
}

#[test]
fn an_empty_file_stays_empty_and_a_comment_only_file_keeps_its_comments() {
    assert_eq!(fmt(""), "");
    assert_eq!(fmt("  # one\n\n\n# two   \n"), "# one\n\n# two\n");
}

// ───────────────────────────── the command ─────────────────────────────

#[test]
fn check_lists_unformatted_files_with_a_diff_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.flow"), UNFORMATTED).expect("write");
    std::fs::write(dir.path().join("good.flow"), FORMATTED).expect("write");
    let out = flowc(&["fmt", "--check"], dir.path(), None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("bad.flow: not formatted"), "{stdout}");
    assert!(!stdout.contains("good.flow"), "{stdout}");
    assert!(stdout.contains("-  send welcome   # hi"), "{stdout}");
    assert!(stdout.contains("+    send welcome  # hi"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("bad.flow")).expect("read"),
        UNFORMATTED
    );

    std::fs::write(dir.path().join("bad.flow"), FORMATTED).expect("write");
    let out = flowc(&["fmt", "--check"], dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn fmt_rewrites_only_files_that_change_and_walks_folders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("flows/nested")).expect("mkdir");
    std::fs::create_dir_all(root.join("target")).expect("mkdir");
    std::fs::create_dir_all(root.join(".hidden")).expect("mkdir");
    std::fs::write(root.join("flows/nested/a.flow"), UNFORMATTED).expect("write");
    std::fs::write(root.join("flows/b.flow"), FORMATTED).expect("write");
    std::fs::write(root.join("target/c.flow"), UNFORMATTED).expect("write");
    std::fs::write(root.join(".hidden/d.flow"), UNFORMATTED).expect("write");
    std::fs::write(root.join("notes.txt"), UNFORMATTED).expect("write");
    let before = std::fs::metadata(root.join("flows/b.flow"))
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));

    let out = flowc(&["fmt"], root, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect("read");
    assert_eq!(read("flows/nested/a.flow"), FORMATTED);
    assert_eq!(read("flows/b.flow"), FORMATTED);
    assert_eq!(read("target/c.flow"), UNFORMATTED, "target/ is skipped");
    assert_eq!(
        read(".hidden/d.flow"),
        UNFORMATTED,
        "hidden folders are skipped"
    );
    assert_eq!(read("notes.txt"), UNFORMATTED);
    let after = std::fs::metadata(root.join("flows/b.flow"))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after, "an unchanged file is not rewritten");
    // No temporary files are left behind.
    let leftovers: Vec<_> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("flowc-fmt"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A file named explicitly is formatted whatever its folder.
    let out = flowc(&["fmt", "target/c.flow"], root, None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(read("target/c.flow"), FORMATTED);
}

#[test]
fn a_file_that_does_not_parse_is_left_alone_with_its_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = "flow f {\n    when a\n    wait soon\n}\n";
    std::fs::write(dir.path().join("broken.flow"), broken).expect("write");
    std::fs::write(dir.path().join("other.flow"), UNFORMATTED).expect("write");
    let out = flowc(&["fmt", "."], dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("broken.flow:3:10: error: expected a duration such as `2d`, found `soon`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("broken.flow")).expect("read"),
        broken
    );
    // The other files are still formatted.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("other.flow")).expect("read"),
        FORMATTED
    );
}

#[test]
fn stdin_to_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = flowc(&["fmt", "-"], dir.path(), Some(UNFORMATTED));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), FORMATTED);

    let out = flowc(&["fmt", "-", "--check"], dir.path(), Some(UNFORMATTED));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("<stdin>: not formatted"));
    let out = flowc(&["fmt", "-", "--check"], dir.path(), Some(FORMATTED));
    assert_eq!(out.status.code(), Some(0));

    let out = flowc(&["fmt", "-"], dir.path(), Some("flow {\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("<stdin>:1:6: error:"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn a_missing_path_exits_2_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.flow"), UNFORMATTED).expect("write");
    let out = flowc(&["fmt", "a.flow", "nowhere"], dir.path(), None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`nowhere` does not exist"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.flow")).expect("read"),
        UNFORMATTED
    );
}

#[test]
fn a_file_that_is_not_utf8_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.flow"), b"flow f {\xff}\n").expect("write");
    let out = flowc(&["fmt"], dir.path(), None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not valid UTF-8"),
        "{}",
        text(&out.stderr)
    );
}

// ───────────────────────────── properties ─────────────────────────────

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("contact.plan".to_string()),
        Just("trigger.total".to_string()),
        Just("event.amount".to_string()),
        Just("3".to_string()),
        Just("49.90".to_string()),
        Just("\"a \\\"b\\\" c\"".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("2 days".to_string()),
        Just("10%".to_string()),
        Just("09:00".to_string()),
        Just("vip".to_string()),
        Just("big_spender(100, period: 30d)".to_string()),
        Just("exists(contact.email)".to_string()),
        Just("can_receive(sms)".to_string()),
        Just("count(order_completed where event.total > 10 within 2w)".to_string()),
        Just("count(order_completed)".to_string()),
        Just("since(order_completed)".to_string()),
        Just("sum(order_completed.total within 30d)".to_string()),
        Just("last(order_completed.total)".to_string()),
        Just("[1, \"x\", contact.a]".to_string()),
    ]
}

fn operator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("or"),
        Just("and"),
        Just("=="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">="),
        Just("+"),
        Just("-"),
        Just("*"),
        Just("/"),
        Just("in"),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 48, 2, |inner| {
        prop_oneof![
            3 => (inner.clone(), operator(), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            2 => inner.clone().prop_map(|a| format!("({a})")),
            1 => inner.clone().prop_map(|a| format!("not {a}")),
            1 => inner.clone().prop_map(|a| format!("-{a}")),
            1 => inner.clone().prop_map(|a| format!("(\n    {a}  # inside\n)")),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}\n    and {b}")),
        ]
    })
}

/// A program with the expressions in every place an expression can stand.
fn program(e: &[String]) -> String {
    format!(
        "segment big_spender(min: number, period: duration) = contact.x > min\n\
         segment s = {0}\n\
         flow template t(m: message, d: duration) {{\n\
         when order_completed where {1}\n\
         only if {2}\n\
         exit if {3}  # stop\n\
         goal order_completed where {1} within 7d\n\
         if {0} {{ send m }} else if {1} {{\n  set contact.x = {2}\n}} else {{ stop }}\n\
         wait for a where {3} or b up to d {{ on a {{ send m }} on b {{ stop }} }}\n\
         }}\n\
         flow x = t(m: welcome, d: 2d)\n",
        e[0], e[1], e[2], e[3]
    )
}

/// Whitespace and comment mutations of a valid file that keep it a valid file (most of the
/// time: mutations that do not parse are skipped).
fn mutate(source: &str, seeds: &[u32]) -> String {
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    for (round, seed) in seeds.iter().enumerate() {
        if lines.is_empty() {
            break;
        }
        let at = *seed as usize % lines.len();
        match (seed / 7 + round as u32) % 6 {
            0 => lines[at] = lines[at].trim_start().to_string(),
            1 => lines[at] = format!("\t  {}", lines[at]),
            2 => lines.insert(at, String::new()),
            3 => lines[at] = format!("{}   # note {round}", lines[at]),
            4 => lines.insert(at, format!("# own line {round}")),
            _ => lines[at] = lines[at].replace(' ', "  "),
        }
    }
    lines.join("\n")
}

/// Nested steps, with comments on their own lines and at line ends, blank lines and `;`.
fn steps() -> impl Strategy<Value = String> {
    let simple = prop_oneof![
        Just("send m".to_string()),
        Just("wait 2 days".to_string()),
        Just("wait until 9:00".to_string()),
        Just("set contact.n = contact.n + 1".to_string()),
        Just("unsubscribe sms".to_string()),
        Just("stop".to_string()),
        Just("# a note\nsend m".to_string()),
        Just("send m   # at the end".to_string()),
        Just("\n\nwait 1h".to_string()),
        Just("send m; wait 1h".to_string()),
    ];
    let step = simple.prop_recursive(4, 24, 3, |inner| {
        let block = proptest::collection::vec(inner, 0..3).prop_map(|s| s.join("\n"));
        prop_oneof![
            (block.clone(), block.clone()).prop_map(|(a, b)| format!("if contact.x > 1 {{ {a}\n}} else {{\n{b} }}")),
            (block.clone(), block.clone(), block.clone()).prop_map(|(a, b, c)| {
                format!("if x {{\n{a}\n}}  # first\nelse if y {{ # second\n{b}\n}} else {{\n{c}\n# last\n}}")
            }),
            (block.clone(), block.clone()).prop_map(|(a, b)| format!("split {{\n  # arms\n  50% {{\n{a}\n}}\n  50% {{ {b}\n}} }}")),
            (block.clone(), block.clone()).prop_map(|(a, b)| {
                format!("wait for a or b where event.n > 1 up to 2d {{\non a {{\n{a}\n}} # arm\non b {{ {b}\n}}\n}}")
            }),
            (block.clone(), block.clone()).prop_map(|(a, b)| format!("wait for a up to 1h {{\n{a}\n}}\nelse {{\n{b}\n}}")),
        ]
    });
    proptest::collection::vec(step, 1..5).prop_map(|s| s.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// For generated flows of nested steps with comments and blank lines, fmt is sound.
    #[test]
    fn fmt_is_sound_on_generated_nested_steps(body in steps()) {
        let source = format!("# a flow\nflow f {{  # open\n  when a\n{body}\n}}  # close\n");
        prop_assume!(parse(&source).is_ok(), "does not parse");
        assert_sound(&source, "generated flow");
    }

    /// For generated programs that parse, fmt is idempotent, keeps the tree and the comments.
    #[test]
    fn fmt_is_sound_on_generated_programs(e in proptest::collection::vec(expression(), 4)) {
        let source = program(&e);
        prop_assume!(parse(&source).is_ok(), "does not parse");
        assert_sound(&source, "generated program");
    }

    /// Repo files with whitespace and comments moved about: fmt is sound on each that parses.
    #[test]
    fn fmt_is_sound_on_mutated_repo_files(
        file in 0usize..1000,
        seeds in proptest::collection::vec(any::<u32>(), 1..12),
    ) {
        let files = repo_flow_files();
        let path = &files[file % files.len()];
        let source = std::fs::read_to_string(path).expect("read");
        let mutated = mutate(&source, &seeds);
        prop_assume!(parse(&mutated).is_ok(), "the mutation does not parse");
        assert_sound(&mutated, &path.display().to_string());
    }
}

// ───────────────────────────── docs/language.md ─────────────────────────────

/// The fenced blocks of a Markdown file whose info string is `fence` (possibly followed by a
/// space and more words), in order.
fn fenced_blocks(markdown: &str, fence: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let opens = line
            .trim_end()
            .strip_prefix("```")
            .and_then(|info| info.strip_prefix(fence))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '));
        match &mut current {
            None if opens => current = Some(String::new()),
            Some(block) if line.trim_end() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn every_flow_example_of_the_language_reference_parses_and_is_formatted() {
    let doc = std::fs::read_to_string(repo().join("docs/language.md")).expect("read");
    let examples = fenced_blocks(&doc, "flow");
    assert!(examples.len() >= 12, "only {} examples", examples.len());
    for example in &examples {
        let formatted = assert_sound(example, &format!("docs/language.md example:\n{example}"));
        assert_eq!(&formatted, example, "not in the layout of flowc fmt");
    }
    // Examples of check errors parse (the checker rejects them, not the parser)...
    for example in fenced_blocks(&doc, "flow-error") {
        assert_sound(
            &example,
            &format!("docs/language.md error example:\n{example}"),
        );
    }
    // ...and syntax-error examples do not.
    let syntax_errors = fenced_blocks(&doc, "flow-syntax-error");
    assert_eq!(syntax_errors.len(), 2);
    for example in syntax_errors {
        assert!(parse(&example).is_err(), "parses:\n{example}");
    }
}

#[test]
fn the_language_reference_documents_every_diagnostic_code() {
    let doc = std::fs::read_to_string(repo().join("docs/language.md")).expect("read");
    let diagnostics = doc
        .split_once("\n## Diagnostics\n")
        .map(|(_, rest)| rest)
        .expect("a Diagnostics section");
    for code in flowc::diagnostic::Code::ALL {
        let heading = format!("\n### {}: ", code.as_str());
        assert!(
            diagnostics.contains(&heading),
            "{} is not documented",
            code.as_str()
        );
    }
}

/// Each example of the Diagnostics section, checked on its own, gives its code (and maybe
/// others: the examples leave out the rest of the project).
#[test]
fn every_diagnostic_example_gives_its_code() {
    let doc = std::fs::read_to_string(repo().join("docs/language.md")).expect("read");
    let (_, diagnostics) = doc.split_once("\n## Diagnostics\n").expect("section");
    let mut checked = 0;
    for section in diagnostics.split("\n### ").skip(1) {
        let code = &section[..5];
        let dir = tempfile::tempdir().expect("tempdir");
        // A `flowc.toml` example is checked beside a flow without problems.
        let config = tagged_blocks(section, "toml file=flowc.toml");
        let example = ["flow-error", "flow-syntax-error"]
            .iter()
            .find_map(|fence| fenced_blocks(section, fence).into_iter().next())
            .or_else(|| {
                config
                    .as_ref()
                    .map(|_| "flow welcome {\n    when signed_up\n    stop\n}\n".to_string())
            })
            .unwrap_or_else(|| panic!("{code} has no example"));
        if let Some(config) = &config {
            std::fs::write(dir.path().join("flowc.toml"), config).expect("write");
        }
        std::fs::write(dir.path().join("example.flow"), &example).expect("write");
        // A `flow-old` block is the version running now: checked `--against` it.
        let old_dir = tempfile::tempdir().expect("tempdir");
        let old = fenced_blocks(section, "flow-old").into_iter().next();
        let mut args = vec!["check", ".", "--format", "json"];
        let old_path = old_dir.path().display().to_string();
        if let Some(old) = &old {
            std::fs::write(old_dir.path().join("example.flow"), old).expect("write");
            args.extend(["--against", old_path.as_str()]);
        }
        let out = flowc(&args, dir.path(), None);
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("\"code\":\"{code}\"")),
            "{code}: the example does not give it\n{example}\n{stdout}{}",
            text(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 34);
}

/// The text of the first fenced block whose info string is exactly `info`.
fn tagged_blocks(markdown: &str, info: &str) -> Option<String> {
    let start = markdown.find(&format!("```{info}\n"))? + info.len() + 4;
    let end = markdown[start..].find("```\n")? + start;
    Some(markdown[start..end].to_string())
}

#[test]
fn the_first_project_of_the_language_reference_delivers_what_it_says() {
    let doc = std::fs::read_to_string(repo().join("docs/language.md")).expect("read");
    let flow = tagged_blocks(&doc, "flow file=flows/cart.flow").expect("the flow");
    let events = tagged_blocks(&doc, "jsonl events").expect("the events");
    let deliveries = tagged_blocks(&doc, "jsonl deliveries").expect("the deliveries");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("flows")).expect("mkdir");
    std::fs::write(dir.path().join("flows/cart.flow"), flow).expect("write");
    std::fs::write(dir.path().join("events.jsonl"), events).expect("write");
    let out = flowc(
        &["simulate", ".", "--events", "events.jsonl"],
        dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), deliveries);
}
