//! `flowc backtest`: two versions of a project over the same history, and the deliveries that
//! differ.
//!
//! Owns: comparing two lists of delivery lines (the exact lines `flowc simulate` prints) as
//! multisets, pairing what moved in time or changed status, and the per-(flow, message)
//! report with its stable JSON schema ([`BACKTEST_FORMAT_VERSION`]).
//! Must not: run flows other than through [`crate::simulate::run`] or judge which version is
//! right. Invariant: `added` + the new side of `moved` is exactly the multiset difference
//! NEW − OLD of the two simulate outputs, and `removed` + the old side of `moved` is OLD − NEW.

use serde::Serialize;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The version of the JSON schema of [`BacktestReport`].
pub const BACKTEST_FORMAT_VERSION: u32 = 1;

/// One delivery line, parsed for grouping (the line itself is kept as simulate printed it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Line {
    pub time: String,
    pub contact: String,
    pub flow: String,
    pub message: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The line exactly as `flowc simulate` prints it.
    pub line: String,
}

impl Line {
    /// Parses a delivery line of RUNTIME.md 2.
    pub fn parse(line: &str) -> Option<Line> {
        let value: Json = serde_json::from_str(line).ok()?;
        let field = |k: &str| value.get(k).and_then(Json::as_str).map(str::to_string);
        Some(Line {
            time: field("time")?,
            contact: field("contact")?,
            flow: field("flow")?,
            message: field("message")?,
            status: field("status")?,
            reason: field("reason"),
            line: line.to_string(),
        })
    }
}

/// A delivery of OLD and its counterpart in NEW: the same contact, flow and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub old: Line,
    pub new: Line,
}

/// The differences for one (flow, message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageReport {
    pub flow: String,
    pub message: String,
    /// Deliveries only NEW makes.
    pub added: usize,
    /// Deliveries only OLD makes.
    pub removed: usize,
    /// Deliveries both make to the same contact but at another time, or with another status
    /// or reason.
    pub moved: usize,
    /// Every contact concerned, sorted.
    pub contacts: Vec<String>,
    /// Up to `--examples` lines of each kind.
    pub examples: Examples,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Examples {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub moved: Vec<Moved>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BacktestReport {
    pub format_version: u32,
    pub equal: bool,
    pub old_deliveries: usize,
    pub new_deliveries: usize,
    /// Per (flow, message), sorted.
    pub messages: Vec<MessageReport>,
    /// Every differing line, complete (the sides of `moved` included), sorted.
    pub added: Vec<Line>,
    pub removed: Vec<Line>,
    pub moved: Vec<Moved>,
}

/// Compares the delivery lines of two runs (each in simulate's order).
pub fn compare(old: &[String], new: &[String], max_examples: usize) -> BacktestReport {
    let parse =
        |lines: &[String]| -> Vec<Line> { lines.iter().filter_map(|l| Line::parse(l)).collect() };
    let old_lines = parse(old);
    let new_lines = parse(new);
    // Multiset difference on the exact line.
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for l in &new_lines {
        *counts.entry(l.line.as_str()).or_default() += 1;
    }
    let mut removed = Vec::new();
    for l in &old_lines {
        let c = counts.entry(l.line.as_str()).or_default();
        if *c > 0 {
            *c -= 1;
        } else {
            removed.push(l.clone());
        }
    }
    let mut remaining: BTreeMap<&str, i64> = BTreeMap::new();
    for l in &old_lines {
        *remaining.entry(l.line.as_str()).or_default() += 1;
    }
    let mut added = Vec::new();
    for l in &new_lines {
        let c = remaining.entry(l.line.as_str()).or_default();
        if *c > 0 {
            *c -= 1;
        } else {
            added.push(l.clone());
        }
    }
    // Pair what is left by (contact, flow, message), in time order.
    type Key = (String, String, String);
    let key = |l: &Line| -> Key { (l.contact.clone(), l.flow.clone(), l.message.clone()) };
    let mut by_key: BTreeMap<Key, (Vec<Line>, Vec<Line>)> = BTreeMap::new();
    for l in removed {
        by_key.entry(key(&l)).or_default().0.push(l);
    }
    for l in added {
        by_key.entry(key(&l)).or_default().1.push(l);
    }
    let (mut added, mut removed, mut moved) = (Vec::new(), Vec::new(), Vec::new());
    for (_, (mut olds, mut news)) in by_key {
        olds.sort();
        news.sort();
        let pairs = olds.len().min(news.len());
        let rest_old = olds.split_off(pairs);
        let rest_new = news.split_off(pairs);
        for (o, n) in olds.into_iter().zip(news) {
            moved.push(Moved { old: o, new: n });
        }
        removed.extend(rest_old);
        added.extend(rest_new);
    }
    added.sort();
    removed.sort();
    moved.sort_by(|a, b| (&a.old, &a.new).cmp(&(&b.old, &b.new)));

    let mut groups: Groups = BTreeMap::new();
    let mut contacts: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for l in &added {
        let g = group(&mut groups, &mut contacts, l);
        g.added += 1;
        if g.examples.added.len() < max_examples {
            g.examples.added.push(l.line.clone());
        }
    }
    for l in &removed {
        let g = group(&mut groups, &mut contacts, l);
        g.removed += 1;
        if g.examples.removed.len() < max_examples {
            g.examples.removed.push(l.line.clone());
        }
    }
    for m in &moved {
        let g = group(&mut groups, &mut contacts, &m.old);
        g.moved += 1;
        if g.examples.moved.len() < max_examples {
            g.examples.moved.push(m.clone());
        }
    }
    let messages: Vec<MessageReport> = groups
        .into_iter()
        .map(|(k, mut g)| {
            g.contacts = contacts
                .remove(&k)
                .unwrap_or_default()
                .into_iter()
                .collect();
            g
        })
        .collect();
    BacktestReport {
        format_version: BACKTEST_FORMAT_VERSION,
        equal: messages.is_empty(),
        old_deliveries: old_lines.len(),
        new_deliveries: new_lines.len(),
        messages,
        added,
        removed,
        moved,
    }
}

type Groups = BTreeMap<(String, String), MessageReport>;

fn group<'a>(
    groups: &'a mut Groups,
    contacts: &mut BTreeMap<(String, String), BTreeSet<String>>,
    l: &Line,
) -> &'a mut MessageReport {
    contacts
        .entry((l.flow.clone(), l.message.clone()))
        .or_default()
        .insert(l.contact.clone());
    groups
        .entry((l.flow.clone(), l.message.clone()))
        .or_insert_with(|| MessageReport {
            flow: l.flow.clone(),
            message: l.message.clone(),
            added: 0,
            removed: 0,
            moved: 0,
            contacts: Vec::new(),
            examples: Examples::default(),
        })
}

fn short(l: &Line) -> String {
    let mut text = format!("{} {} {}", l.time, l.contact, l.status);
    if let Some(r) = &l.reason {
        let _ = write!(text, " ({r})");
    }
    text
}

/// The report as markdown.
pub fn render_text(report: &BacktestReport) -> String {
    let mut out = String::new();
    if report.equal {
        let _ = writeln!(
            out,
            "No delivery changes: both versions make the same {} deliveries.",
            report.old_deliveries
        );
        return out;
    }
    let _ = writeln!(
        out,
        "## flowc backtest: {} added, {} removed, {} moved ({} → {} deliveries)\n",
        report.added.len(),
        report.removed.len(),
        report.moved.len(),
        report.old_deliveries,
        report.new_deliveries
    );
    let mut flow = "";
    for m in &report.messages {
        if m.flow != flow {
            if !flow.is_empty() {
                out.push('\n');
            }
            flow = &m.flow;
            let _ = writeln!(out, "### flow `{flow}`\n");
        }
        let _ = writeln!(
            out,
            "- `{}`: {} added, {} removed, {} moved; {} contact{}: {}",
            m.message,
            m.added,
            m.removed,
            m.moved,
            m.contacts.len(),
            if m.contacts.len() == 1 { "" } else { "s" },
            m.contacts
                .iter()
                .take(10)
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
                + if m.contacts.len() > 10 { ", ..." } else { "" }
        );
        for line in &m.examples.added {
            if let Some(l) = Line::parse(line) {
                let _ = writeln!(out, "  - added: {}", short(&l));
            }
        }
        for line in &m.examples.removed {
            if let Some(l) = Line::parse(line) {
                let _ = writeln!(out, "  - removed: {}", short(&l));
            }
        }
        for moved in &m.examples.moved {
            let _ = writeln!(
                out,
                "  - moved: {} → {}",
                short(&moved.old),
                short(&moved.new)
            );
        }
    }
    out
}
