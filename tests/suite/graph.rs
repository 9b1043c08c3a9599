//! `flowc graph` through the real binary: Mermaid and Graphviz text of one flow, pinned by
//! snapshots, plus structural checks that hold for any drawing.

use std::path::Path;

fn graph(format: &str, flow: &str) -> (i32, String, String) {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/graph");
    super::support::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_flowc"))
            .args(["graph", flow, "--format", format, "--project"])
            .arg(&project),
    )
}

#[test]
fn mermaid_draws_every_step_branch_and_exit() {
    let (code, text, stderr) = graph("mermaid", "welcome");
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("welcome_mermaid", text);
    // Every edge joins declared nodes.
    let declared: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("    ") && !l.contains("-->") && !l.contains("style"))
        .map(|l| l.trim().split(['[', '(', '{']).next().unwrap_or(""))
        .collect();
    for line in text.lines().filter(|l| l.contains("-->")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let from = words[0];
        let to = words[words.len() - 1];
        assert!(declared.contains(&from), "{from} undeclared in\n{text}");
        assert!(declared.contains(&to), "{to} undeclared in\n{text}");
    }
    assert!(text.contains("on email_opened"));
    assert!(text.contains("after 2d"));
    assert!(text.contains("exit on order_completed where trigger.total #gt; 0"));
}

#[test]
fn dot_is_a_digraph_with_quoted_labels() {
    let (code, text, stderr) = graph("dot", "welcome");
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("welcome_dot", text);
    assert!(text.starts_with("digraph \"welcome\" {"));
    assert!(text.trim_end().ends_with('}'));
    assert_eq!(text.matches('"').count() % 2, 0, "unbalanced quotes");
}

#[test]
fn an_unknown_flow_suggests_the_closest_name() {
    let (code, _, stderr) = graph("mermaid", "welcom");
    assert_eq!(code, 2);
    assert!(stderr.contains("no flow named `welcom`"), "{stderr}");
    assert!(stderr.contains("did you mean `welcome`?"), "{stderr}");
}
