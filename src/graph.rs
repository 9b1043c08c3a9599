//! `flowc graph`: one compiled flow drawn as a Mermaid flowchart or a Graphviz digraph, ready
//! to paste into a pull request or a doc.
//!
//! Owns: the layout-free description of a flow's state machine (nodes, edges, labels) and its
//! two text renderings. Must not: interpret flows (it draws the IR the engine runs, so the
//! picture cannot drift from the behaviour) or read anything but the compiled project.

use crate::cli::{GraphArgs, GraphFormat, EXIT_CANNOT_RUN, EXIT_OK};
use crate::compile::show::clock;
use crate::compile::{CompiledFlow, CompiledProject, Reentry, StateKind};

/// The kind of a node, which decides its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeShape {
    /// The entry: triggers and header lines.
    Start,
    /// A send, a `set`, an `unsubscribe`.
    Action,
    /// `wait`, `wait until`, `wait for`.
    Wait,
    /// `if`, `split`.
    Decision,
    /// The end of the flow or a `stop`.
    Terminal,
    /// `exit on` / `exit if`: they apply at every step.
    Exit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub label: String,
    pub shape: NodeShape,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: Option<String>,
}

/// A flow as nodes and edges.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

fn state_id(index: u16) -> String {
    format!("s{index}")
}

/// Describes one compiled flow.
pub fn describe(project: &CompiledProject, flow: &CompiledFlow) -> Graph {
    let mut nodes = Vec::new();
    let mut edges = Vec::new();

    let mut start = Vec::new();
    for trigger in &flow.triggers {
        start.push(format!("when {}", project.show_trigger(trigger)));
    }
    if let Some(only_if) = &flow.only_if {
        start.push(format!("only if {}", project.show_expr(only_if)));
    }
    match flow.reentry {
        Reentry::NotWhileActive => {}
        Reentry::Never => start.push("reentry never".into()),
        Reentry::Always => start.push("reentry always".into()),
        Reentry::After(d) => start.push(format!("reentry after {d}")),
    }
    if let Some(quiet) = flow.quiet_hours {
        start.push(format!(
            "quiet hours {}..{}",
            clock(quiet.start),
            clock(quiet.end)
        ));
    }
    if flow.holdout_basis_points > 0 {
        start.push(format!(
            "holdout {}%",
            f64::from(flow.holdout_basis_points) / 100.0
        ));
    }
    if let Some(goal) = &flow.goal {
        let mut text = format!("goal {}", project.event_name(goal.event));
        if let Some(filter) = &goal.filter {
            text.push_str(&format!(" where {}", project.show_expr(filter)));
        }
        text.push_str(&format!(" within {}", goal.within));
        start.push(text);
    }
    nodes.push(Node {
        id: "start".into(),
        label: start.join("\n"),
        shape: NodeShape::Start,
    });
    edges.push(Edge {
        from: "start".into(),
        to: state_id(flow.entry.0),
        label: None,
    });

    let mut exits: Vec<String> = flow
        .exit_on
        .iter()
        .map(|e| format!("exit on {}", project.show_event_match(e)))
        .collect();
    exits.extend(
        flow.exit_if
            .iter()
            .map(|e| format!("exit if {}", project.show_expr(e))),
    );
    if !exits.is_empty() {
        exits.push("(at any step)".into());
        nodes.push(Node {
            id: "exits".into(),
            label: exits.join("\n"),
            shape: NodeShape::Exit,
        });
    }

    let next = |from: u16, to: u16, label: Option<String>| Edge {
        from: state_id(from),
        to: state_id(to),
        label,
    };
    for (index, state) in flow.states.iter().enumerate() {
        let index = u16::try_from(index).unwrap_or(u16::MAX);
        let id = state_id(index);
        let (label, shape) = match &state.kind {
            StateKind::End => ("end".to_string(), NodeShape::Terminal),
            StateKind::Stop => ("stop".to_string(), NodeShape::Terminal),
            StateKind::Send { message, next: to } => {
                edges.push(next(index, to.0, None));
                let label = match project.messages.get(message.index()) {
                    Some(m) => format!(
                        "send {}\n{}{}",
                        m.name,
                        m.channel.keyword(),
                        if m.transactional {
                            ", transactional"
                        } else {
                            ""
                        }
                    ),
                    None => "send ?".to_string(),
                };
                (label, NodeShape::Action)
            }
            StateKind::Wait { duration, next: to } => {
                edges.push(next(index, to.0, None));
                (format!("wait {duration}"), NodeShape::Wait)
            }
            StateKind::WaitUntil {
                minute_of_day,
                next: to,
            } => {
                edges.push(next(index, to.0, None));
                (
                    format!("wait until {}", clock(*minute_of_day)),
                    NodeShape::Wait,
                )
            }
            StateKind::WaitFor {
                arms,
                timeout,
                on_timeout,
            } => {
                let awaited: Vec<String> = arms
                    .iter()
                    .map(|arm| project.show_event_match(&arm.event))
                    .collect();
                for arm in arms {
                    edges.push(next(
                        index,
                        arm.next.0,
                        Some(format!("on {}", project.event_name(arm.event.event))),
                    ));
                }
                edges.push(next(index, on_timeout.0, Some(format!("after {timeout}"))));
                (
                    format!("wait for {}\nup to {timeout}", awaited.join(" or ")),
                    NodeShape::Wait,
                )
            }
            StateKind::Branch {
                conditions,
                otherwise,
            } => {
                for (condition, to) in conditions {
                    edges.push(next(index, to.0, Some(project.show_expr(condition))));
                }
                edges.push(next(index, otherwise.0, Some("else".into())));
                ("if".to_string(), NodeShape::Decision)
            }
            StateKind::Split { arms } => {
                let mut lower = 0u16;
                for (upper, to) in arms {
                    let share = f64::from(upper.saturating_sub(lower)) / 100.0;
                    lower = *upper;
                    edges.push(next(index, to.0, Some(format!("{share}%"))));
                }
                ("split".to_string(), NodeShape::Decision)
            }
            StateKind::Set {
                field,
                value,
                next: to,
            } => {
                edges.push(next(index, to.0, None));
                (
                    format!(
                        "set contact.{} = {}",
                        field.join("."),
                        project.show_expr(value)
                    ),
                    NodeShape::Action,
                )
            }
            StateKind::Unsubscribe { target, next: to } => {
                edges.push(next(index, to.0, None));
                let what = match target {
                    crate::compile::UnsubscribeTarget::Channel(c) => c.keyword(),
                    crate::compile::UnsubscribeTarget::All => "all",
                };
                (format!("unsubscribe {what}"), NodeShape::Action)
            }
        };
        let label = format!("{label}\n{}", state.source);
        nodes.push(Node { id, label, shape });
    }
    in_reading_order(Graph {
        name: flow.name.clone(),
        nodes,
        edges,
    })
}

/// Keeps only the steps reachable from the entry, in the order a reader follows them (depth
/// first, edges in source order), numbered `s0, s1, ...` in that order.
fn in_reading_order(graph: Graph) -> Graph {
    let successors = |id: &str| -> Vec<String> {
        graph
            .edges
            .iter()
            .filter(|e| e.from == id)
            .map(|e| e.to.clone())
            .collect()
    };
    let mut order: Vec<String> = Vec::new();
    let mut stack = vec!["start".to_string()];
    while let Some(id) = stack.pop() {
        if order.contains(&id) {
            continue;
        }
        let mut next = successors(&id);
        next.reverse();
        stack.extend(next);
        order.push(id);
    }
    let rename = |id: &str| -> String {
        match order.iter().position(|o| o == id) {
            Some(_) if id == "start" || id == "exits" => id.to_string(),
            // `order[0]` is `start`.
            Some(i) => state_id(u16::try_from(i - 1).unwrap_or(u16::MAX)),
            None => id.to_string(),
        }
    };
    let mut nodes: Vec<Node> = Vec::new();
    if let Some(start) = graph.nodes.iter().find(|n| n.id == "start") {
        nodes.push(start.clone());
    }
    if let Some(exits) = graph.nodes.iter().find(|n| n.id == "exits") {
        nodes.push(exits.clone());
    }
    for id in order.iter().skip(1) {
        if let Some(node) = graph.nodes.iter().find(|n| &n.id == id) {
            nodes.push(Node {
                id: rename(id),
                ..node.clone()
            });
        }
    }
    let mut edges: Vec<(usize, Edge)> = graph
        .edges
        .iter()
        .filter_map(|e| {
            let from = order.iter().position(|o| *o == e.from)?;
            Some((
                from,
                Edge {
                    from: rename(&e.from),
                    to: rename(&e.to),
                    label: e.label.clone(),
                },
            ))
        })
        .collect();
    edges.sort_by_key(|(from, _)| *from);
    let edges = edges.into_iter().map(|(_, e)| e).collect();
    Graph {
        name: graph.name,
        nodes,
        edges,
    }
}

fn mermaid_text(text: &str) -> String {
    text.replace('&', "#amp;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('\n', "<br/>")
}

/// A Mermaid flowchart (GitHub renders it in Markdown inside a ```` ```mermaid ```` block).
pub fn mermaid(graph: &Graph) -> String {
    let mut out = format!("---\ntitle: {}\n---\nflowchart TD\n", graph.name);
    for node in &graph.nodes {
        let label = mermaid_text(&node.label);
        let shape = match node.shape {
            NodeShape::Start => format!("([\"{label}\"])"),
            NodeShape::Action => format!("[\"{label}\"]"),
            NodeShape::Wait => format!("[/\"{label}\"/]"),
            NodeShape::Decision => format!("{{\"{label}\"}}"),
            NodeShape::Terminal => format!("((\"{label}\"))"),
            NodeShape::Exit => format!("[[\"{label}\"]]"),
        };
        out.push_str(&format!("    {}{shape}\n", node.id));
    }
    for edge in &graph.edges {
        match &edge.label {
            Some(label) => out.push_str(&format!(
                "    {} -->|\"{}\"| {}\n",
                edge.from,
                mermaid_text(label),
                edge.to
            )),
            None => out.push_str(&format!("    {} --> {}\n", edge.from, edge.to)),
        }
    }
    if graph.nodes.iter().any(|n| n.shape == NodeShape::Exit) {
        out.push_str("    style exits stroke-dasharray: 5 5\n");
    }
    out
}

fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A Graphviz digraph (`flowc graph FLOW --format dot | dot -Tsvg > flow.svg`).
pub fn dot(graph: &Graph) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n    rankdir=TB;\n    node [fontname=\"Helvetica\", fontsize=11];\n    edge [fontname=\"Helvetica\", fontsize=10];\n",
        dot_text(&graph.name)
    );
    for node in &graph.nodes {
        let shape = match node.shape {
            NodeShape::Start => "shape=box, style=\"rounded,bold\"",
            NodeShape::Action => "shape=box",
            NodeShape::Wait => "shape=parallelogram",
            NodeShape::Decision => "shape=diamond",
            NodeShape::Terminal => "shape=doublecircle",
            NodeShape::Exit => "shape=note, style=dashed",
        };
        out.push_str(&format!(
            "    {} [label=\"{}\", {shape}];\n",
            node.id,
            dot_text(&node.label)
        ));
    }
    for edge in &graph.edges {
        match &edge.label {
            Some(label) => out.push_str(&format!(
                "    {} -> {} [label=\"{}\"];\n",
                edge.from,
                edge.to,
                dot_text(label)
            )),
            None => out.push_str(&format!("    {} -> {};\n", edge.from, edge.to)),
        }
    }
    out.push_str("}\n");
    out
}

/// `flowc graph`.
pub fn command(args: &GraphArgs) -> u8 {
    let project = match crate::simulate::load_compiled(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Some(flow) = project.flows.iter().find(|f| f.name == args.flow) else {
        let names: Vec<&str> = project.flows.iter().map(|f| f.name.as_str()).collect();
        eprintln!("error: no flow named `{}` in the project", args.flow);
        match crate::suggest::closest(&args.flow, names.iter().copied()) {
            Some(name) => eprintln!("help: did you mean `{name}`?"),
            None => eprintln!("help: the flows are: {}", names.join(", ")),
        }
        return EXIT_CANNOT_RUN;
    };
    let graph = describe(&project, flow);
    let text = match args.format {
        GraphFormat::Mermaid => mermaid(&graph),
        GraphFormat::Dot => dot(&graph),
    };
    print!("{text}");
    EXIT_OK
}
