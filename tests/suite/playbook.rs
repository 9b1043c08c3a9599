//! The playbook through the real binary: the stdlib modules, their flow-test projects
//! (tests/playbook/*), the example shop (flows/) with its sample of events, and `flowc init`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::support::{flowc, repo};

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `flowc test DIR` passes; returns the number of cases.
fn assert_tests_pass(dir: &Path) -> usize {
    let (code, stdout, stderr) = flowc(&["test", path_str(dir)]);
    assert_eq!(code, 0, "{}:\n{stdout}{stderr}", dir.display());
    let summary = stdout.lines().last().unwrap_or_default();
    let passed: usize = summary
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected summary `{summary}` for {}", dir.display()));
    assert!(passed > 0, "{} has no test cases", dir.display());
    passed
}

/// `flowc build` loads, checks (errors) and compiles the project.
fn assert_builds(path: &Path) {
    let (code, _, stderr) = flowc(&["build", path_str(path)]);
    assert_eq!(code, 0, "{}:\n{stderr}", path.display());
}

/// `flowc check` reports no error (warnings are allowed).
fn assert_checks_clean(path: &Path) {
    let (code, stdout, stderr) = flowc(&["check", path_str(path), "--format", "json"]);
    assert_eq!(code, 0, "{}:\n{stdout}{stderr}", path.display());
    assert!(
        !stdout.contains(r#""severity":"error""#),
        "{}:\n{stdout}",
        path.display()
    );
}

fn stdlib_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("stdlib"))
        .expect("stdlib/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "flow"))
        .collect();
    files.sort();
    files
}

fn playbook_projects() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo("tests/playbook"))
        .expect("tests/playbook/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read_all(dir: &Path, extension: &str) -> String {
    let mut text = String::new();
    for entry in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.path().extension().is_some_and(|x| x == extension) {
            text.push_str(&std::fs::read_to_string(entry.path()).expect("read"));
            text.push('\n');
        }
    }
    text
}

/// `name` occurs in `text` as a whole word.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let before = text[..at].chars().next_back().map_or(true, |c| !word(c));
        let after = text[at + name.len()..]
            .chars()
            .next()
            .map_or(true, |c| !word(c));
        before && after
    })
}

/// `(kind, name)` of the declarations of a stdlib module: `segment NAME` and
/// `flow template NAME`.
fn declarations(source: &str) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    for line in source.lines() {
        let (kind, rest) = if let Some(rest) = line.strip_prefix("segment ") {
            ("segment", rest)
        } else if let Some(rest) = line.strip_prefix("flow template ") {
            ("template", rest)
        } else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        found.push((kind, name));
    }
    found
}

fn flow_names(project: &Path) -> Vec<String> {
    let loaded = flowc::project::Project::load(project).expect("load project");
    let config = flowc::config::Config::load(&loaded.root).expect("flowc.toml");
    let compiled = flowc::compile::compile(&loaded, &config).expect("compiles");
    compiled.flows.iter().map(|f| f.name.clone()).collect()
}

// ---------------------------------------------------------------- the stdlib

#[test]
fn every_stdlib_file_is_an_embedded_module() {
    let on_disk: BTreeSet<String> = stdlib_files()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let embedded: BTreeSet<String> = flowc::stdlib::MODULES
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(on_disk, embedded);
    for (name, text) in flowc::stdlib::MODULES {
        let file = std::fs::read_to_string(repo(&format!("stdlib/{name}.flow"))).unwrap();
        assert_eq!(
            &file, text,
            "stdlib/{name}.flow differs from the embedded copy"
        );
        assert!(
            text.starts_with(&format!("# stdlib/{name}:")),
            "stdlib/{name}.flow should open with `# stdlib/{name}: what it is for`"
        );
    }
}

#[test]
fn every_stdlib_module_builds_alone() {
    for file in stdlib_files() {
        assert_builds(&file);
    }
}

#[test]
fn every_stdlib_module_checks_clean() {
    for file in stdlib_files() {
        assert_checks_clean(&file);
    }
}

/// Regression: `flowc check stdlib` reported every module that another one `use`s as declared
/// twice (the folder's own file and the embedded copy); the folder's file now serves the `use`.
#[test]
fn the_stdlib_folder_checks_clean_as_one_project() {
    assert_checks_clean(&repo("stdlib"));
}

#[test]
fn every_stdlib_test_project_passes() {
    let mut total = 0;
    for dir in playbook_projects() {
        assert_builds(&dir);
        total += assert_tests_pass(&dir);
    }
    assert!(total >= 80, "only {total} stdlib flow tests");
}

/// Every template of the stdlib is instantiated by a test project, and every segment is
/// probed by one or read by a template.
#[test]
fn every_stdlib_template_and_segment_is_exercised() {
    let projects = read_all(&repo("tests/playbook"), "flow");
    let tests = read_all(&repo("tests/playbook"), "flowtest");
    let stdlib = read_all(&repo("stdlib"), "flow");
    let template_bodies: String = stdlib
        .split("flow template ")
        .skip(1)
        .map(|t| t.split("\n}\n").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut missing = Vec::new();
    let mut declared = 0;
    for (_, text) in flowc::stdlib::MODULES {
        for (kind, name) in declarations(text) {
            declared += 1;
            let exercised = match kind {
                "template" => projects.contains(&format!("= {name}(")),
                _ => mentions(&projects, &name) || mentions(&template_bodies, &name),
            };
            if !exercised {
                missing.push(format!("{kind} `{name}`"));
            }
        }
    }
    assert!(
        declared >= 30,
        "only {declared} declarations found in the stdlib"
    );
    assert!(missing.is_empty(), "not exercised: {missing:?}");
    assert!(
        tests.contains("exactly 72 hours"),
        "the espresso window edges"
    );
}

// ---------------------------------------------------------------- the example shop

#[test]
fn the_example_shop_builds_and_passes_its_tests() {
    assert_builds(&repo("flows"));
    let cases = assert_tests_pass(&repo("flows"));
    assert!(cases >= 40, "only {cases} shop tests");
}

#[test]
fn the_example_shop_checks_clean() {
    assert_checks_clean(&repo("flows"));
}

#[test]
fn every_shop_flow_has_a_flow_test() {
    let tests = read_all(&repo("flows/tests"), "flowtest");
    let untested: Vec<String> = flow_names(&repo("flows"))
        .into_iter()
        .filter(|flow| !mentions(&tests, flow))
        .collect();
    assert!(untested.is_empty(), "flows without a test: {untested:?}");
}

#[test]
fn the_sample_shows_every_sending_flow_of_the_shop() {
    let events = repo("flows/events/sample.jsonl");
    let (code, stdout, stderr) = flowc(&[
        "simulate",
        path_str(&repo("flows")),
        "--events",
        path_str(&events),
        "--render",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let mut flows = BTreeSet::new();
    let mut contacts = BTreeSet::new();
    let mut statuses = BTreeSet::new();
    let mut previous = String::new();
    for line in stdout.lines() {
        let delivery: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let field = |key: &str| delivery[key].as_str().unwrap_or_default().to_string();
        assert!(field("time") >= previous, "not sorted by time: {line}");
        previous = field("time");
        assert!(
            delivery.get("render_error").is_none(),
            "a template does not render: {line}"
        );
        if field("status") == "sent" {
            assert!(delivery.get("rendered").is_some(), "{line}");
        }
        flows.insert(field("flow"));
        contacts.insert(field("contact"));
        statuses.insert(format!("{} {}", field("status"), field("reason")));
    }
    assert!(contacts.len() >= 12, "only {} contacts", contacts.len());
    // `sunset_email` sends nothing: it withdraws consent.
    let silent: Vec<String> = flow_names(&repo("flows"))
        .into_iter()
        .filter(|f| f != "sunset_email" && !flows.contains(f))
        .collect();
    assert!(
        silent.is_empty(),
        "flows the sample never shows: {silent:?}"
    );
    assert!(
        statuses.contains("skipped frequency_cap"),
        "the sample shows the frequency cap: {statuses:?}"
    );
}

// ---------------------------------------------------------------- flowc.toml

/// The shop's and the starter's `flowc.toml` parse, and so does each with every commented-out
/// key switched on: a misspelt key would be refused (`deny_unknown_fields`).
#[test]
fn every_commented_flowc_toml_key_is_a_real_key() {
    for path in ["flows/flowc.toml", "src/init/starter/flowc.toml"] {
        let text = std::fs::read_to_string(repo(path)).expect("read flowc.toml");
        flowc::config::Config::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut switched_on = 0;
        let uncommented: String = text
            .lines()
            .map(|line| {
                let key = line.strip_prefix("# ").filter(|rest| {
                    rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    })
                });
                match key {
                    Some(rest) => {
                        switched_on += 1;
                        rest.to_string()
                    }
                    None => line.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            switched_on >= 10,
            "{path}: only {switched_on} commented keys"
        );
        flowc::config::Config::parse(&uncommented)
            .unwrap_or_else(|e| panic!("{path} with every key on: {e}"));
    }
}

// ---------------------------------------------------------------- flowc init

#[test]
fn init_writes_a_starter_that_builds_simulates_and_passes_its_tests() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("my-shop");
    let (code, stdout, stderr) = flowc(&["init", path_str(&dir)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("flowc test"), "{stdout}");
    let gitignore = std::fs::read_to_string(dir.join(".gitignore")).expect(".gitignore");
    assert!(gitignore.lines().any(|l| l.trim() == ".flowc/"));
    assert_builds(&dir);
    assert_tests_pass(&dir);
    let events = dir.join("events/sample.jsonl");
    let (code, stdout, stderr) = flowc(&[
        "simulate",
        path_str(&dir),
        "--events",
        path_str(&events),
        "--render",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.lines().count() >= 5, "{stdout}");
    assert!(!stdout.contains("render_error"), "{stdout}");
}

#[test]
fn init_writes_a_starter_that_checks_clean() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("my-shop");
    assert_eq!(flowc(&["init", path_str(&dir)]).0, 0);
    assert_checks_clean(&dir);
}

#[test]
fn init_refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("flowc.toml"), "# mine\n").expect("write");
    let (code, stdout, stderr) = flowc(&["init", path_str(dir.path())]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert!(stderr.contains("help:"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("flowc.toml")).unwrap(),
        "# mine\n",
        "init must not touch an existing file"
    );
    assert!(!dir.path().join("flows").exists());
}

// ---------------------------------------------------------------- docs/playbook.md

/// Every `<!-- graph: FLOW in PROJECT -->` of docs/playbook.md is followed by the Mermaid
/// drawing `flowc graph` makes of it. `UPDATE_PLAYBOOK_DOCS=1` rewrites them.
#[test]
fn the_playbook_diagrams_are_what_flowc_graph_draws() {
    let path = repo("docs/playbook.md");
    let text = std::fs::read_to_string(&path).expect("docs/playbook.md");
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut stale = Vec::new();
    let mut diagrams = 0;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        out.push(line.to_string());
        index += 1;
        let Some(spec) = line
            .strip_prefix("<!-- graph: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let (flow, project) = spec.split_once(" in ").expect("`FLOW in PROJECT`");
        assert_eq!(lines.get(index), Some(&"```mermaid"), "after `{line}`");
        let end = (index + 1..lines.len())
            .find(|&i| lines[i] == "```")
            .expect("a closing ```");
        let written = lines[index + 1..end].join("\n");
        let (code, drawn, stderr) = flowc(&[
            "graph",
            flow,
            "--project",
            path_str(&repo(project)),
            "--format",
            "mermaid",
        ]);
        assert_eq!(code, 0, "flowc graph {flow} --project {project}: {stderr}");
        let drawn = drawn.trim_end().to_string();
        if written != drawn {
            stale.push(format!("{flow} in {project}"));
        }
        out.push("```mermaid".to_string());
        out.push(drawn);
        out.push("```".to_string());
        index = end + 1;
        diagrams += 1;
    }
    let templates: Vec<String> = flowc::stdlib::MODULES
        .iter()
        .flat_map(|(_, source)| declarations(source))
        .filter(|(kind, _)| *kind == "template")
        .map(|(_, name)| name)
        .collect();
    assert!(
        diagrams >= templates.len(),
        "{diagrams} diagrams for {} templates",
        templates.len()
    );
    for name in &templates {
        assert!(
            text.contains(&format!("### `{name}(")),
            "docs/playbook.md has no section for template `{name}`"
        );
    }
    if std::env::var_os("UPDATE_PLAYBOOK_DOCS").is_some() {
        std::fs::write(&path, out.join("\n") + "\n").expect("write docs/playbook.md");
    } else {
        assert!(
            stale.is_empty(),
            "out of date in docs/playbook.md (run with UPDATE_PLAYBOOK_DOCS=1): {stale:?}"
        );
    }
}

// ---------------------------------------------------------------- every exit fires

/// A way out of a template (or a consent rule at its door), as the trace shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Exit {
    /// `exit on EVENT [where ...]`: `exited: exit on `EVENT``.
    On(String),
    /// `exit if EXPR`: `exited: exit if is true before the step at ...`.
    If,
    /// `only if EXPR`: `not_entered: ... `only if` is false`.
    OnlyIf,
    /// `stop` at `stdlib/FILE.flow:LINE`: `completed: stop (stdlib/FILE.flow:LINE)`.
    Stop(String),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::On(event) => write!(f, "exit on {event}"),
            Exit::If => write!(f, "exit if"),
            Exit::OnlyIf => write!(f, "only if"),
            Exit::Stop(at) => write!(f, "stop at {at}"),
        }
    }
}

/// Every template of the stdlib with its exits, stops and `only if`, read from the sources.
fn template_exits() -> Vec<(String, Vec<Exit>)> {
    let mut templates = Vec::new();
    for (module, source) in flowc::stdlib::MODULES {
        let mut current: Option<(String, Vec<Exit>)> = None;
        for (index, line) in source.lines().enumerate() {
            if let Some(rest) = line.strip_prefix("flow template ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                current = Some((name, Vec::new()));
                continue;
            }
            let Some((_, exits)) = current.as_mut() else {
                continue;
            };
            let statement = line.split('#').next().unwrap_or("").trim();
            if let Some(rest) = statement.strip_prefix("exit on ") {
                let event = rest.split_whitespace().next().unwrap_or("").to_string();
                exits.push(Exit::On(event));
            } else if statement.starts_with("exit if ") {
                exits.push(Exit::If);
            } else if statement.starts_with("only if ") {
                exits.push(Exit::OnlyIf);
            } else if statement == "stop" || statement.starts_with("stop ") {
                exits.push(Exit::Stop(format!("stdlib/{module}.flow:{}", index + 1)));
            }
            if line == "}" {
                templates.push(current.take().expect("a template"));
            }
        }
    }
    templates.sort();
    templates
}

/// `flow NAME = TEMPLATE(` of the project's own `.flow` files: flow name to template name.
fn instantiations(project: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(project)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "flow"))
    {
        let text = std::fs::read_to_string(entry.path()).expect("read");
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("flow ") else {
                continue;
            };
            let Some((flow, rhs)) = rest.split_once(" = ") else {
                continue;
            };
            let Some((template, _)) = rhs.split_once('(') else {
                continue;
            };
            found.push((flow.trim().to_string(), template.trim().to_string()));
        }
    }
    found
}

/// What the trace line of one flow says about how an instance ended or was kept out.
fn exit_of(rest: &str) -> Option<Exit> {
    if let Some(after) = rest.strip_prefix("exited: exit on `") {
        return Some(Exit::On(after.split('`').next()?.to_string()));
    }
    if rest.starts_with("exited: exit if ") {
        return Some(Exit::If);
    }
    if rest.starts_with("not_entered: ") && rest.contains("`only if` is false") {
        return Some(Exit::OnlyIf);
    }
    if let Some(after) = rest.strip_prefix("completed: stop (") {
        return Some(Exit::Stop(after.trim_end_matches(')').to_string()));
    }
    None
}

/// Runs every case of every flow-test project (tests/playbook/* and the example shop) with the
/// trace on, and returns, for each stdlib template, the exits seen firing, each with the case
/// where it fired first.
fn exits_seen_firing() -> std::collections::BTreeMap<(String, Exit), String> {
    let mut seen = std::collections::BTreeMap::new();
    let mut projects = playbook_projects();
    projects.push(repo("flows"));
    for project in projects {
        let templates: std::collections::HashMap<String, String> =
            instantiations(&project).into_iter().collect();
        let loaded = flowc::project::Project::load(&project).expect("load project");
        let config = flowc::config::Config::load(&loaded.root).expect("flowc.toml");
        let compiled = flowc::compile::compile(&loaded, &config).expect("compiles");
        for (shown, path) in flowc::testing::find_test_files(&project) {
            let text = std::fs::read_to_string(&path).expect("read");
            let cases = flowc::flowtest::parse(&text).expect("a well-formed .flowtest");
            for case in &cases {
                let result = flowc::testing::run_case(&compiled, case, true);
                for line in &result.trace {
                    // TIME CONTACT FLOW REST
                    let mut parts = line.splitn(4, ' ');
                    let (Some(_), Some(_), Some(flow), Some(rest)) =
                        (parts.next(), parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    let (Some(template), Some(exit)) = (templates.get(flow), exit_of(rest)) else {
                        continue;
                    };
                    seen.entry((template.clone(), exit)).or_insert_with(|| {
                        format!(
                            "{}/{}:{} \"{}\"",
                            project.file_name().unwrap().to_string_lossy(),
                            shown.display(),
                            case.line,
                            case.name
                        )
                    });
                }
            }
        }
    }
    seen
}

/// The acceptance rule of the playbook: for every stdlib template, each `exit on`, `exit if`,
/// `stop` and `only if` is seen firing (in the trace) in at least one flow test, of the
/// template's own test project under tests/playbook/ or of the example shop.
#[test]
fn every_exit_stop_and_consent_rule_of_every_template_fires_in_a_flow_test() {
    let templates = template_exits();
    assert!(templates.len() >= 18, "only {} templates", templates.len());
    let seen = exits_seen_firing();
    let mut never = Vec::new();
    let mut checked = 0;
    for (template, exits) in &templates {
        for exit in exits {
            checked += 1;
            if !seen.contains_key(&(template.clone(), exit.clone())) {
                never.push(format!("{template}: {exit}"));
            }
        }
    }
    assert!(checked >= 35, "only {checked} exits found in the stdlib");
    assert!(
        never.is_empty(),
        "never seen firing in a flow test: {never:#?}"
    );
}

/// The reader of the templates finds them all (a template with neither exit nor stop would be
/// listed with none, which is fine; one whose exits are missed would not).
#[test]
fn the_exit_reader_sees_what_the_stdlib_declares() {
    let templates = template_exits();
    let cart = &templates
        .iter()
        .find(|(name, _)| name == "abandoned_cart")
        .expect("abandoned_cart")
        .1;
    assert_eq!(
        cart,
        &vec![
            Exit::On("order_completed".to_string()),
            Exit::OnlyIf,
            Exit::If
        ]
    );
    let welcome = &templates
        .iter()
        .find(|(name, _)| name == "double_opt_in")
        .expect("double_opt_in")
        .1;
    assert_eq!(
        welcome,
        &vec![
            Exit::On("unsubscribed".to_string()),
            Exit::Stop("stdlib/welcome.flow:44".to_string())
        ]
    );
    let declared = read_all(&repo("stdlib"), "flow")
        .lines()
        .filter(|l| l.starts_with("flow template "))
        .count();
    assert_eq!(templates.len(), declared);
}

/// The stdlib segment a trace expression is, if it is exactly one: `NAME` or `NAME(ARGS)`.
fn segment_of<'a>(expression: &str, segments: &'a [String]) -> Option<&'a String> {
    segments.iter().find(|name| {
        expression == name.as_str()
            || expression
                .strip_prefix(name.as_str())
                .and_then(|rest| rest.strip_prefix('('))
                .is_some_and(|args| args.ends_with(')') && !args.contains(" and "))
    })
}

/// Every stdlib segment is seen in a flow-test trace holding for a contact (a probe's `if`
/// taken, the segment entered, a schedule entering its members) and, unless it is only ever a
/// schedule's audience (whose non-members the trace does not list), not holding (an `if` not
/// taken, the segment left).
#[test]
fn every_stdlib_segment_is_seen_true_and_false_in_a_flow_test() {
    let segments: Vec<String> = flowc::stdlib::MODULES
        .iter()
        .flat_map(|(_, source)| declarations(source))
        .filter(|(kind, _)| *kind == "segment")
        .map(|(_, name)| name)
        .collect();
    // Longest first, so that `engaged_email(...)` is not read as `engaged`.
    let mut by_length = segments.clone();
    by_length.sort_by_key(|name| std::cmp::Reverse(name.len()));
    let mut member = BTreeSet::new();
    let mut not_member = BTreeSet::new();
    let mut projects = playbook_projects();
    projects.push(repo("flows"));
    for project in projects {
        let loaded = flowc::project::Project::load(&project).expect("load project");
        let config = flowc::config::Config::load(&loaded.root).expect("flowc.toml");
        let compiled = flowc::compile::compile(&loaded, &config).expect("compiles");
        for (_, path) in flowc::testing::find_test_files(&project) {
            let text = std::fs::read_to_string(&path).expect("read");
            for case in &flowc::flowtest::parse(&text).expect("a well-formed .flowtest") {
                for line in flowc::testing::run_case(&compiled, case, true).trace {
                    let quoted = |marker: &str| {
                        line.split_once(marker)
                            .and_then(|(_, rest)| rest.split_once('`'))
                            .map(|(expression, after)| (expression.to_string(), after.to_string()))
                    };
                    if let Some((expression, after)) = quoted("branch: `") {
                        if let Some(name) = segment_of(&expression, &by_length) {
                            if after.starts_with(" is true") {
                                member.insert(name.clone());
                            } else if after.starts_with(" is false") {
                                not_member.insert(name.clone());
                            }
                        }
                    }
                    for (marker, holds) in [
                        ("entered segment `", true),
                        ("schedule for `", true),
                        ("left segment `", false),
                    ] {
                        if let Some((expression, _)) = quoted(marker) {
                            if let Some(name) = segment_of(&expression, &by_length) {
                                if holds {
                                    member.insert(name.clone());
                                } else {
                                    not_member.insert(name.clone());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let stdlib = read_all(&repo("stdlib"), "flow");
    let schedule_only = |name: &str| {
        stdlib.contains(&format!(" for {name}"))
            && !stdlib.contains(&format!("when entering {name}"))
    };
    let never_member: Vec<&String> = segments.iter().filter(|s| !member.contains(*s)).collect();
    let never_out: Vec<&String> = segments
        .iter()
        .filter(|s| !not_member.contains(*s) && !schedule_only(s))
        .collect();
    assert!(segments.len() >= 15, "only {} segments", segments.len());
    assert!(
        never_member.is_empty(),
        "never seen holding in a flow test: {never_member:?}"
    );
    assert!(
        never_out.is_empty(),
        "never seen not holding in a flow test: {never_out:?}"
    );
}

/// docs/playbook.md names every stdlib segment, and every `.flow` example in it parses.
#[test]
fn the_playbook_documents_every_segment_and_its_examples_parse() {
    let text = std::fs::read_to_string(repo("docs/playbook.md")).expect("docs/playbook.md");
    for (module, source) in flowc::stdlib::MODULES {
        for (kind, name) in declarations(source) {
            assert!(
                text.contains(&format!("`{name}")),
                "docs/playbook.md does not mention the {kind} `{name}` of stdlib/{module}"
            );
        }
    }
    let mut examples = 0;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line != "```" && line != "```flow" {
            if line.starts_with("```") {
                // Another language (mermaid, sh, toml): skip to its end.
                for inner in lines.by_ref() {
                    if inner == "```" {
                        break;
                    }
                }
            }
            continue;
        }
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let block = block.join("\n") + "\n";
        if !(block.contains("flow ") || block.contains("segment ") || block.contains("use ")) {
            continue;
        }
        examples += 1;
        if let Err(e) = flowc::syntax::parse(&block) {
            panic!("a docs/playbook.md example does not parse: {e:?}\n{block}");
        }
    }
    assert!(
        examples >= 15,
        "only {examples} examples in docs/playbook.md"
    );
}

/// The shop's custom abandoned cart shows the cart of the event: each item's name, image,
/// price, quantity and line total, the cart's total and its link; a cart without items gets
/// the link-only message.
#[test]
fn the_shop_cart_email_shows_the_items_of_the_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("cart.jsonl");
    std::fs::write(
        &events,
        [
            r#"{"type":"identify","userId":"c1","timestamp":"2026-03-01T09:00:00Z","traits":{"email":"ana@example.com","first_name":"Ana","consent":{"email":true}}}"#,
            r#"{"type":"track","userId":"c1","event":"Cart Abandoned","timestamp":"2026-03-01T10:00:00Z","properties":{"cart_url":"https://brisacoffee.example/cart/c1","total":31.5,"items":[{"name":"Ethiopia Guji 250 g","image_url":"https://cdn.example/guji.jpg","price":12.5,"quantity":2},{"name":"Paper filters","image_url":"https://cdn.example/filters.jpg","price":6.5,"quantity":1}]}}"#,
            r#"{"type":"identify","userId":"c2","timestamp":"2026-03-01T09:00:00Z","traits":{"email":"bo@example.com","consent":{"email":true}}}"#,
            r#"{"type":"track","userId":"c2","event":"Cart Abandoned","timestamp":"2026-03-01T10:00:00Z","properties":{"cart_url":"https://brisacoffee.example/cart/c2","total":9.0}}"#,
        ]
        .join("\n")
            + "\n",
    )
    .expect("write");
    let (code, stdout, stderr) = flowc(&[
        "simulate",
        path_str(&repo("flows")),
        "--events",
        path_str(&events),
        "--until",
        "2026-03-01T12:00:00Z",
        "--render",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let first: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let find = |contact: &str| {
        first
            .iter()
            .find(|d| d["contact"] == contact && d["time"] == "2026-03-01T11:00:00Z")
            .unwrap_or_else(|| panic!("no reminder at 11:00 for {contact}: {stdout}"))
    };
    let items = find("c1");
    assert_eq!(items["message"], "cart_items_email", "{items}");
    let body = items["rendered"]["body"].as_str().expect("a rendered body");
    for shown in [
        "Ethiopia Guji 250 g",
        "https://cdn.example/guji.jpg",
        "Quantity: 2",
        "12.50",
        "25.00",
        "Paper filters",
        "https://cdn.example/filters.jpg",
        "Quantity: 1",
        "6.50",
        "31.50",
        "https://brisacoffee.example/cart/c1",
    ] {
        assert!(
            body.contains(shown),
            "`{shown}` is not in the email:\n{body}"
        );
    }
    let link = find("c2");
    assert_eq!(link["message"], "cart_link_email", "{link}");
    let body = link["rendered"]["body"].as_str().expect("a rendered body");
    assert!(
        body.contains("https://brisacoffee.example/cart/c2"),
        "{body}"
    );
}

/// The stdlib, the example shop and the stdlib's test projects are in the canonical layout.
#[test]
fn the_playbook_flows_are_in_the_canonical_layout() {
    let (code, stdout, stderr) = flowc(&[
        "fmt",
        "--check",
        path_str(&repo("stdlib")),
        path_str(&repo("flows")),
        path_str(&repo("tests/playbook")),
    ]);
    assert_eq!(code, 0, "run `flowc fmt` on them:\n{stdout}{stderr}");
}
