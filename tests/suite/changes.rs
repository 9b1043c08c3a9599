//! Changing live flows through the real binary: `flowc diff` (text, JSON, `--git`, the impact
//! on waiting contacts), `flowc backtest` (exactly the difference of two `flowc simulate`
//! runs), `flowc simulate --explain` and `flowc verify` (seeded bugs whose counterexamples,
//! replayed through `flowc simulate`, show the violation; the shipped shop).
//! Fixtures: tests/changes/ (v1 and v2 of a small shop, their events, three seeded bugs).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/changes")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn flowc_in(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_flowc"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run flowc");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn flowc(args: &[&str]) -> Run {
    flowc_in(&fixtures(), args)
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

// ----- flowc diff -----

#[test]
fn diff_reports_retimed_removed_and_added_steps_with_the_pin_impact() {
    let run = flowc(&["diff", "v1", "v2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!("diff_v1_v2", run.stdout);
    let text = &run.stdout;
    assert!(
        text.contains("- **retimed** `wait 1h` → `wait 2h` (shop.flow:40)"),
        "{text}"
    );
    assert!(
        text.contains("- **removed** `send cart_last_call` (was at shop.flow:37)"),
        "{text}"
    );
    assert!(
        text.contains("- **added** `send cart_coupon` (shop.flow:44)"),
        "{text}"
    );
    assert!(text.contains("### flow `order_thanks` added"), "{text}");
    assert!(
        text.contains("`big_spender` changed: `sum(order_completed.total) > 100` → `sum(order_completed.total) > 200` (affects `vip`)"),
        "{text}"
    );
    assert!(
        text.contains("- limit email: `limit email 3 per 1d` → `limit email 2 per 1d`"),
        "{text}"
    );
}

#[test]
fn diff_json_lists_every_change_in_a_stable_schema() {
    let run = flowc(&["diff", "v1", "v2", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let diff = json(&run);
    assert_eq!(diff["format_version"], 1);
    assert_eq!(diff["equal"], false);
    let flows: Vec<(String, String)> = diff["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        flows,
        vec![
            ("abandoned_cart".to_string(), "changed".to_string()),
            ("order_thanks".to_string(), "added".to_string()),
            ("vip".to_string(), "changed".to_string()),
        ]
    );
    let cart = &diff["flows"][0];
    let kinds: Vec<String> = cart["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["change"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["retimed", "removed", "added", "added"]);
    assert_eq!(cart["steps"][0]["old"]["text"], "wait 1h");
    assert_eq!(cart["steps"][0]["new"]["text"], "wait 2h");
    assert_eq!(cart["steps"][0]["new"]["source"], "shop.flow:40");
    assert_eq!(strings(&cart["messages_changed"]), ["cart_reminder"]);
    // Every step of OLD where a contact can wait, with what pin does to it.
    let waiting: Vec<&str> = cart["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["waiting_at"].as_str().unwrap())
        .collect();
    assert_eq!(waiting, ["wait 1h", "wait 1d"]);
    let at_1d = &cart["waiting"][1]["pin"];
    assert_eq!(
        strings(&at_1d["still_runs_removed"]),
        ["send cart_last_call"]
    );
    assert_eq!(
        strings(&at_1d["misses_added"]),
        ["if trigger.total > 50", "send cart_coupon"]
    );
    assert_eq!(
        cart["waiting"][0]["pin"]["runs_old_form"][0]["new"],
        "wait 2h"
    );
    assert_eq!(
        strings(&diff["flows"][2]["segments_changed"]),
        ["big_spender"]
    );
    let messages: Vec<(String, String)> = diff["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        messages,
        [
            ("cart_coupon", "added"),
            ("cart_last_call", "removed"),
            ("cart_reminder", "changed"),
            ("first_order_thanks", "added"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(diff["messages"][2]["changes"][0]["what"], "subject");
    assert_eq!(
        diff["messages"][2]["changes"][0]["new"],
        "Your cart is waiting"
    );
    assert_eq!(strings(&diff["segments"][0]["affects"]), ["vip"]);
    assert_eq!(diff["policy"][0]["what"], "limit email");
}

#[test]
fn diff_ignores_what_no_contact_can_notice_and_exits_0() {
    let same = flowc(&["diff", "v1", "v1"]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(
        same.stdout.starts_with("No semantic changes"),
        "{}",
        same.stdout
    );

    // Comments and blank lines move every source line: the flow's hash changes, the diff is
    // still empty.
    let dir = tempfile::tempdir().unwrap();
    let moved = dir.path().join("moved");
    copy_dir(&fixtures().join("v1"), &moved);
    let source = std::fs::read_to_string(moved.join("shop.flow")).unwrap();
    std::fs::write(
        moved.join("shop.flow"),
        format!("# a comment\n\n# and another\n{source}"),
    )
    .unwrap();
    let v1_build = flowc(&["build", "v1"]);
    let moved_build = flowc_in(dir.path(), &["build", "moved"]);
    assert_ne!(
        json(&v1_build)["flows"][0]["hash"],
        json(&moved_build)["flows"][0]["hash"]
    );
    let run = flowc(&["diff", "v1", moved.to_str().unwrap(), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(json(&run)["equal"], true);
}

#[test]
fn diff_git_compares_a_revision_with_the_working_tree() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .current_dir(repo)
            .args([
                "-c",
                "user.name=flowc",
                "-c",
                "user.email=flowc@example.com",
            ])
            .args(args)
            .output()
            .expect("run git");
        assert!(status.status.success(), "git {args:?}: {status:?}");
    };
    git(&["init", "-q"]);
    copy_dir(&fixtures().join("v1"), &repo.join("shop"));
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v1"]);
    std::fs::copy(fixtures().join("v2/shop.flow"), repo.join("shop/shop.flow")).unwrap();

    let from_git = flowc_in(repo, &["diff", "--git", "HEAD", "shop"]);
    assert_eq!(from_git.code, 1, "{}", from_git.stderr);
    let from_folders = flowc(&["diff", "v1", "v2"]);
    assert_eq!(from_git.stdout, from_folders.stdout);
    // From inside the project folder too.
    let inside = flowc_in(&repo.join("shop"), &["diff", "--git", "HEAD"]);
    assert_eq!(inside.stdout, from_folders.stdout, "{}", inside.stderr);

    let bad = flowc_in(repo, &["diff", "--git", "no-such-rev", "shop"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("`no-such-rev` is not a git revision"),
        "{}",
        bad.stderr
    );
}

#[test]
fn diff_impact_counts_the_contacts_waiting_at_each_step() {
    // At 10:45 ana and ben wait in the first `wait 1h`; cora never entered (no consent), dan
    // entered and waits too.
    let run = flowc(&[
        "diff",
        "v1",
        "v2",
        "--format",
        "json",
        "--events",
        "events.jsonl",
        "--until",
        "2026-03-02T10:45:00Z",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let impact = json(&run)["impact"].clone();
    assert_eq!(impact.as_array().unwrap().len(), 1, "{impact}");
    assert_eq!(impact[0]["flow"], "abandoned_cart");
    assert_eq!(impact[0]["waiting_at"], "wait 1h");
    assert_eq!(impact[0]["count"], 3);
    assert_eq!(strings(&impact[0]["examples"]), ["ana", "ben", "dan"]);
    assert_eq!(impact[0]["pin"]["affected"], true);
    assert_eq!(impact[0]["pin"]["runs_old_form"][0]["old"], "wait 1h");

    // At noon ben has ordered (exit), ana and dan wait a day before the last call that v2
    // removed: under pin they still get it, as OLD would send it.
    let noon = flowc(&[
        "diff",
        "v1",
        "v2",
        "--events",
        "events.jsonl",
        "--until",
        "2026-03-02T12:00:00Z",
    ]);
    assert!(
        noon.stdout.contains("- 2 waiting in `abandoned_cart` at `wait 1d` (shop.flow:36), e.g. `ana`, `dan`: finishes on the old version: still runs `send cart_last_call` (removed in the new version)"),
        "{}",
        noon.stdout
    );
    let old_run = flowc(&["simulate", "v1", "--events", "events.jsonl"]);
    assert!(old_run.stdout.contains(
        r#"{"time":"2026-03-03T11:00:00Z","contact":"ana","flow":"abandoned_cart","message":"cart_last_call","channel":"email","status":"sent"}"#
    ));
}

#[test]
fn diff_shows_the_changed_lines_of_a_long_message_body() {
    let dir = tempfile::tempdir().unwrap();
    let edited = dir.path().join("edited");
    copy_dir(&fixtures().join("v1"), &edited);
    let source = std::fs::read_to_string(edited.join("shop.flow")).unwrap();
    std::fs::write(
        edited.join("shop.flow"),
        source.replace(
            r#"body: "<p>You are one of our best customers</p>""#,
            r#"body: "<p>You are one of our best customers</p>\n<p>Here is a gift</p>""#,
        ),
    )
    .unwrap();
    let run = flowc(&["diff", "v1", edited.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "- `vip_thanks` changed (sent by `vip`)\n  - body changed:\n\n    ```diff\n    +<p>Here is a gift</p>\n    ```"
        ),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("- sends `vip_thanks`, whose content changed"));
}

#[test]
fn a_version_that_does_not_compile_is_exit_2_not_a_difference() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shop.flow"),
        "flow f {\n    when go\n    send nothing_here\n}\n",
    )
    .unwrap();
    let broken = dir.path().to_str().unwrap();
    let diff = flowc(&["diff", "v1", broken]);
    assert_eq!(diff.code, 2, "{}", diff.stdout);
    assert!(
        diff.stderr.contains("unknown message `nothing_here`"),
        "{}",
        diff.stderr
    );
    assert!(diff.stdout.is_empty());
    let backtest = flowc(&["backtest", broken, "v1", "--events", "events.jsonl"]);
    assert_eq!(backtest.code, 2, "{}", backtest.stdout);
}

#[test]
fn diff_needs_two_folders_or_a_revision() {
    let run = flowc(&["diff", "v1"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("give two project folders"),
        "{}",
        run.stderr
    );
    let missing = flowc(&["diff", "v1", "no_such_folder"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
}

// ----- flowc backtest -----

type Multiset = BTreeMap<String, i64>;

fn multiset(lines: &str) -> Multiset {
    let mut set = Multiset::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        *set.entry(line.to_string()).or_default() += 1;
    }
    set
}

fn minus(a: &Multiset, b: &Multiset) -> Multiset {
    let mut out = Multiset::new();
    for (line, n) in a {
        let left = n - b.get(line).copied().unwrap_or(0);
        if left > 0 {
            out.insert(line.clone(), left);
        }
    }
    out
}

#[test]
fn backtest_reports_exactly_the_difference_of_two_simulate_runs() {
    let old = flowc(&["simulate", "v1", "--events", "events.jsonl"]);
    let new = flowc(&["simulate", "v2", "--events", "events.jsonl"]);
    assert_eq!((old.code, new.code), (0, 0), "{}{}", old.stderr, new.stderr);
    let (old_set, new_set) = (multiset(&old.stdout), multiset(&new.stdout));

    let run = flowc(&[
        "backtest",
        "v1",
        "v2",
        "--events",
        "events.jsonl",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = json(&run);
    assert_eq!(report["format_version"], 1);
    let side = |key: &str, moved_side: &str| -> Multiset {
        let mut lines: Vec<String> = report[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["line"].as_str().unwrap().to_string())
            .collect();
        lines.extend(
            report["moved"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m[moved_side]["line"].as_str().unwrap().to_string()),
        );
        multiset(&lines.join("\n"))
    };
    assert_eq!(side("added", "new"), minus(&new_set, &old_set));
    assert_eq!(side("removed", "old"), minus(&old_set, &new_set));
    assert!(!minus(&new_set, &old_set).is_empty());
    assert_eq!(report["old_deliveries"], old.stdout.lines().count());
    assert_eq!(report["new_deliveries"], new.stdout.lines().count());

    // Per flow and message, with the contacts.
    let reminder = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message"] == "cart_reminder")
        .unwrap();
    assert_eq!(reminder["flow"], "abandoned_cart");
    assert_eq!(reminder["moved"], 2, "{reminder}");
    assert_eq!(reminder["removed"], 1, "{reminder}");
    assert_eq!(strings(&reminder["contacts"]), ["ana", "ben", "dan"]);

    let text = flowc(&["backtest", "v1", "v2", "--events", "events.jsonl"]);
    assert_eq!(text.code, 1);
    insta::assert_snapshot!("backtest_v1_v2", text.stdout);
}

#[test]
fn backtest_of_one_version_against_itself_changes_nothing() {
    let run = flowc(&["backtest", "v1", "v1", "--events", "events.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("No delivery changes"),
        "{}",
        run.stdout
    );
}

#[test]
fn backtest_until_stops_both_runs() {
    let run = flowc(&[
        "backtest",
        "v1",
        "v2",
        "--events",
        "events.jsonl",
        "--until",
        "2026-03-02T11:10:00Z",
        "--format",
        "json",
    ]);
    let report = json(&run);
    // Only the first reminders (11:00 in v1) and ben's order thanks have no counterpart yet.
    let removed: Vec<String> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["time"].as_str().unwrap().to_string())
        .collect();
    assert!(
        removed.iter().all(|t| t.as_str() <= "2026-03-02T11:10:00Z"),
        "{removed:?}"
    );
    assert_eq!(report["new_deliveries"], 0);
}

// ----- flowc simulate --explain -----

#[test]
fn explain_gives_every_decision_in_time_order_with_its_source() {
    let run = flowc(&[
        "simulate",
        "v2",
        "--events",
        "events.jsonl",
        "--explain",
        "dan",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("explain_dan", run.stdout);
    let text = &run.stdout;
    assert!(
        text.contains("entered    when `cart_abandoned`: entered  [shop.flow:35]"),
        "{text}"
    );
    assert!(
        text.contains("waits      wait 2h until 2026-03-02T12:00:00Z  [shop.flow:40]"),
        "{text}"
    );
    assert!(
        text.contains("skipped    skipped `cart_reminder` (email): unsubscribed  [shop.flow:41]"),
        "{text}"
    );
    assert!(
        text.contains("branch     `trigger.total > 50` is true: branch 1 taken  [shop.flow:43]"),
        "{text}"
    );
    // Time order.
    let times: Vec<&str> = text.lines().skip(1).map(|l| &l[..20]).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);

    let ana = flowc(&[
        "simulate",
        "v1",
        "--events",
        "events.jsonl",
        "--explain",
        "ana",
    ]);
    assert!(ana.stdout.contains("not entered  when `cart_abandoned`: not entered, an instance is already active  [shop.flow:29]"), "{}", ana.stdout);
    let ben = flowc(&[
        "simulate",
        "v1",
        "--events",
        "events.jsonl",
        "--explain",
        "ben",
    ]);
    assert!(ben.stdout.contains("2026-03-02T11:30:00Z  abandoned_cart  exited     exit on `order_completed`  [shop.flow:29]"), "{}", ben.stdout);
    let cora = flowc(&[
        "simulate",
        "v1",
        "--events",
        "events.jsonl",
        "--explain",
        "cora",
    ]);
    assert!(
        cora.stdout
            .contains("not entered  when `cart_abandoned`: not entered, `only if` is false"),
        "{}",
        cora.stdout
    );

    // Every delivery of the contact is one `sent` or `skipped` decision.
    let plain = flowc(&["simulate", "v2", "--events", "events.jsonl"]);
    let dan_deliveries = plain
        .stdout
        .lines()
        .filter(|l| l.contains(r#""contact":"dan""#))
        .count();
    let decisions = text
        .lines()
        .filter(|l| l.contains("  sent  ") || l.contains("  skipped  "))
        .count();
    assert_eq!(dan_deliveries, decisions);
}

#[test]
fn plain_simulate_output_is_unchanged_by_tracing() {
    let plain = flowc(&["simulate", "v2", "--events", "events.jsonl"]);
    let traced = flowc(&["simulate", "v2", "--events", "events.jsonl", "--trace"]);
    assert_eq!(plain.stdout, traced.stdout);
    assert!(plain.stderr.is_empty(), "{}", plain.stderr);
    // The trace names the construct of the new decisions.
    assert!(traced.stderr.contains("dan abandoned_cart branch: `trigger.total > 50` is true: branch 1 taken (shop.flow:43)"), "{}", traced.stderr);
    assert!(
        traced
            .stderr
            .contains("ana abandoned_cart send: sent `cart_reminder` (email) (shop.flow:41)"),
        "{}",
        traced.stderr
    );
    for line in plain.stdout.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert!(keys.len() == 6 || keys.len() == 7, "{line}");
    }
}

#[test]
fn explain_of_an_unknown_contact_is_an_error() {
    let run = flowc(&[
        "simulate",
        "v1",
        "--events",
        "events.jsonl",
        "--explain",
        "nobody",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("contact `nobody` does not appear in the events"),
        "{}",
        run.stderr
    );
}

// ----- flowc verify -----

/// Runs `flowc verify` on a fixture, writes its first counterexample and replays it.
fn verify_and_replay(project: &str, property: &str) -> (Value, Run) {
    let dir = tempfile::tempdir().unwrap();
    let counterexample = dir.path().join("counterexample.jsonl");
    let run = flowc(&[
        "verify",
        project,
        "--format",
        "json",
        "--counterexample",
        counterexample.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = json(&run);
    let finding = report["findings"][0].clone();
    assert_eq!(finding["property"], property, "{report}");
    let text = std::fs::read_to_string(&counterexample).unwrap();
    assert_eq!(
        text.lines().count(),
        finding["counterexample"].as_array().unwrap().len()
    );
    let until = finding["until"].as_str().unwrap().to_string();
    let replay = flowc(&[
        "simulate",
        project,
        "--events",
        counterexample.to_str().unwrap(),
        "--until",
        &until,
        "--trace",
    ]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    (finding, replay)
}

#[test]
fn verify_finds_a_wait_with_no_way_out() {
    let (finding, replay) = verify_and_replay("stuck", "wait_can_end");
    assert_eq!(strings(&finding["flows"]), ["payment"]);
    assert_eq!(finding["source"], "flows.flow:13");
    // Replayed up to the horizon: the contact entered, waits until 2029 and nothing ends it.
    assert!(
        replay.stderr.contains("payment entered"),
        "{}",
        replay.stderr
    );
    assert!(
        replay
            .stderr
            .contains("payment step: wait for an event up to 2029-"),
        "{}",
        replay.stderr
    );
    assert!(!replay.stderr.contains("timed out"), "{}", replay.stderr);
    assert!(replay.stdout.is_empty(), "{}", replay.stdout);
}

#[test]
fn verify_finds_a_flow_that_exceeds_a_limit_alone() {
    let (finding, replay) = verify_and_replay("over_limit", "limit");
    assert_eq!(strings(&finding["flows"]), ["cart"]);
    let last = replay.stdout.lines().last().unwrap_or_default().to_string();
    let value: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(value["flow"], "cart");
    assert_eq!(value["message"], "cart_follow_up");
    assert_eq!(value["reason"], "frequency_cap");
    assert_eq!(value["time"], finding["until"]);
}

#[test]
fn verify_finds_two_flows_sending_one_message_within_an_hour() {
    let (finding, replay) = verify_and_replay("duplicate", "duplicate_send");
    assert_eq!(strings(&finding["flows"]), ["welcome", "onboarding"]);
    let sent: Vec<Value> = replay
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["message"] == "welcome_email" && v["status"] == "sent")
        .collect();
    assert_eq!(sent.len(), 2, "{}", replay.stdout);
    assert_ne!(sent[0]["flow"], sent[1]["flow"]);
    let instant = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    assert!(instant(&sent[1]) - instant(&sent[0]) < 3600);
}

#[test]
fn verify_finds_an_exit_that_can_never_fire() {
    let run = flowc(&["verify", "dead_exit", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report = json(&run);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["property"], "exit_reachable");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("`exit on order_completed` never stops a contact waiting at `wait 1d`"),
        "{report}"
    );
    // The `exit if` on `contact.vip` was reached (through an `identify`): 2 checked, 1 failed.
    let exits = &report["checks"][1];
    assert_eq!(
        (exits["checked"].clone(), exits["failed"].clone()),
        (2.into(), 1.into())
    );
    // The counterexample leads to the waiting step: replayed, the contact is waiting there.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ce.jsonl");
    let lines: Vec<String> = strings(&findings[0]["counterexample"]);
    std::fs::write(&file, lines.join("\n")).unwrap();
    let replay = flowc(&[
        "simulate",
        "dead_exit",
        "--events",
        file.to_str().unwrap(),
        "--until",
        "2026-03-02T12:00:00Z",
        "--trace",
    ]);
    assert!(
        replay.stderr.contains("follow_up step: wait 1d until"),
        "{}",
        replay.stderr
    );
}

#[test]
fn verify_passes_on_sound_projects() {
    for project in ["v1", "v2"] {
        let run = flowc(&["verify", project]);
        assert_eq!(run.code, 0, "{project}: {}", run.stdout);
        assert!(run.stdout.contains("ok   wait_can_end"), "{}", run.stdout);
        assert!(
            run.stdout
                .contains("ok   exit_reachable: 2 checked, 0 failed"),
            "{}",
            run.stdout
        );
    }
}

/// The shipped shop verifies clean. It once had one genuine finding: signing up again after
/// the welcome completed entered `welcome` again, and three sign-ups within a day met
/// `limit email 2 per 1d` with the flow alone; `double_opt_in` now has `reentry after 30d`
/// (flows/tests/welcome.flowtest pins the deliveries of that history).
#[test]
fn verify_of_the_shipped_shop_finds_nothing_since_welcome_has_reentry_after_30d() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = flowc_in(root, &["verify", "flows", "--format", "json"]);
    let report = json(&run);
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.is_empty(), "{report}");
    assert_eq!(run.code, 0, "{report}");
}

// ---------------------------------------------------------------------------------------------
// The migration policy: `on change`, `step NAME:` labels, the stranding check.

const MIGRATION_MESSAGES: &str =
    "message a: email transactional {\n    subject: \"a\"\n    body: \"<p>a</p>\"\n}\n\n\
message b: email transactional {\n    subject: \"b\"\n    body: \"<p>b</p>\"\n}\n\n";

/// A project folder holding one flow file.
fn project_with(flow: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flows")).unwrap();
    std::fs::write(
        dir.path().join("flows/f.flow"),
        format!("{MIGRATION_MESSAGES}{flow}"),
    )
    .unwrap();
    dir
}

const MIGRATE_OLD: &str = "flow f {\n    when go\n    on change migrate\n    step first: wait 1d\n    send a\n    wait 3d\n    send b\n}\n";
/// Drops the unlabelled `wait 3d`.
const MIGRATE_STRANDS: &str =
    "flow f {\n    when go\n    on change migrate\n    step first: wait 1d\n    send a\n    send b\n}\n";

#[test]
fn check_against_old_refuses_a_migration_that_strands_and_accepts_a_label_that_maps_it() {
    let old = project_with(MIGRATE_OLD);
    let new = project_with(MIGRATE_STRANDS);
    let old_arg = old.path().to_str().unwrap();
    let run = flowc_in(
        new.path(),
        &["check", ".", "--against", old_arg, "--format", "json"],
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let line: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["code"], "E0033");
    assert_eq!(line["file"], "flows/f.flow");
    // At the new version's `on change migrate` line (line 13 of the file).
    assert_eq!(line["line"], 13, "{line}");
    assert!(line["label"]
        .as_str()
        .unwrap()
        .contains("`wait 3d` (flows/f.flow:16 in the old version)"));
    assert!(line["help"].as_str().unwrap().contains("on change pin"));
    // Without `--against` the new version is fine on its own.
    assert_eq!(flowc_in(new.path(), &["check", "."]).code, 0);
    // A label on both sides maps the wait to its shorter successor.
    let old = project_with(&MIGRATE_OLD.replace("    wait 3d", "    step later: wait 3d"));
    let new = project_with(&MIGRATE_STRANDS.replace(
        "    send a\n    send b",
        "    send a\n    step later: wait 1d\n    send b",
    ));
    let run = flowc_in(
        new.path(),
        &["check", ".", "--against", old.path().to_str().unwrap()],
    );
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    // Pin and restart strand nobody.
    for policy in ["pin", "restart"] {
        let new = project_with(&MIGRATE_STRANDS.replace("migrate", policy));
        let old = project_with(MIGRATE_OLD);
        let run = flowc_in(
            new.path(),
            &["check", ".", "--against", old.path().to_str().unwrap()],
        );
        assert_eq!(run.code, 0, "{policy}: {}", run.stderr);
    }
}

#[test]
fn diff_reports_a_stranding_migration_with_exit_3_and_predicts_under_the_policy() {
    let old = project_with(MIGRATE_OLD);
    let new = project_with(MIGRATE_STRANDS);
    let (o, n) = (old.path().to_str().unwrap(), new.path().to_str().unwrap());
    let run = flowc(&["diff", o, n, "--format", "json"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let diff = json(&run);
    assert_eq!(diff["strandings"][0]["step"], "wait 3d", "{}", run.stdout);
    assert_eq!(diff["strandings"][0]["flow"], "f");
    let waiting = diff["flows"][0]["waiting"].as_array().unwrap();
    let actions: Vec<&str> = waiting
        .iter()
        .map(|w| w["on_change"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["moves", "stranded"]);
    // The `wait 1d` moves by its label, and then gets `a` and `b` (the new flow's path).
    assert_eq!(waiting[0]["on_change"]["label"], "first");
    assert_eq!(strings(&waiting[0]["on_change"]["then_sends"]), ["a", "b"]);
    let text = flowc(&["diff", o, n]);
    assert_eq!(text.code, 3);
    assert!(text.stdout.contains("### refused"), "{}", text.stdout);
    // Under restart the same edit ends them; under pin they keep the old version's path.
    for (policy, action, first_sends) in [
        ("restart", "ends", vec![]),
        ("pin", "keeps_old_version", vec!["a".to_string()]),
    ] {
        let old = project_with(&MIGRATE_OLD.replace("migrate", policy));
        let new = project_with(&MIGRATE_STRANDS.replace("migrate", policy));
        let run = flowc(&[
            "diff",
            old.path().to_str().unwrap(),
            new.path().to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(run.code, 1, "{policy}: {}", run.stderr);
        let diff = json(&run);
        let first = &diff["flows"][0]["waiting"][0]["on_change"];
        assert_eq!(first["action"], action, "{policy}: {first}");
        assert_eq!(first["policy"], policy);
        assert_eq!(strings(&first["then_sends"]), first_sends, "{policy}");
    }
}

#[test]
fn labels_and_the_policy_line_are_formatted_kept_and_part_of_the_flow_version() {
    let messy = "flow f {\n    when go\n  on change   restart   # why\n    step   first :wait 1d\n    send a\n    if contact.vip == true {\n  step   vip_only:   send b\n    }\n}\n";
    let dir = project_with(messy);
    let run = flowc_in(dir.path(), &["fmt", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let formatted = std::fs::read_to_string(dir.path().join("flows/f.flow")).unwrap();
    assert!(
        formatted.contains("    on change restart  # why\n    step first: wait 1d\n")
            && formatted.contains("        step vip_only: send b\n"),
        "{formatted}"
    );
    // Idempotent.
    let run = flowc_in(dir.path(), &["fmt", "--check", "."]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // The policy and the labels are in the flow's version (its hash); without them the hash
    // is what it was before they existed (the same JSON).
    let hash = |flow: &str| -> String {
        let dir = project_with(flow);
        let run = flowc_in(dir.path(), &["build", ".", "--out", "build.json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let built: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("build.json")).unwrap())
                .unwrap();
        built["flows"][0]["hash"].as_str().unwrap().to_string()
    };
    let plain = "flow f {\n    when go\n    wait 1d\n    send a\n}\n";
    // On the same line, so that no step moves to another source line.
    let pinned = plain.replace("    when go\n", "    when go; on change pin\n");
    let migrating = plain.replace("    when go\n", "    when go; on change migrate\n");
    let labelled = plain.replace("    wait 1d", "    step first: wait 1d");
    let h = hash(plain);
    assert_eq!(hash(&pinned), h, "`on change pin` is the default");
    assert_ne!(hash(&migrating), h);
    assert_ne!(hash(&labelled), h);
}
