//! `flowc simulate --explain CONTACT`: every decision the engine made about one contact, in
//! time order, each with the `file:line` of the construct that decided it.
//!
//! Owns: selecting a contact's entries from the engine's trace and their text form.
//! Must not: decide anything itself or re-derive reasons: every line is a
//! [`crate::engine::TraceEntry`] the engine wrote while it ran (so the explanation cannot drift
//! from the behaviour).

use crate::cli::{EXIT_CANNOT_RUN, EXIT_OK};
use crate::compile::CompiledProject;
use crate::engine::time::format_instant;
use crate::engine::{TraceEntry, TraceKind};
use crate::simulate::{trace_line, Simulation};
use std::io::Write;

/// One decision, ready to print (or to serve as JSON, e.g. by the daemon's contact trace).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub time: String,
    /// The flow, or empty for contact-wide decisions (segments, warnings).
    pub flow: String,
    /// `entered`, `not entered`, `waits`, `timer`, `received`, `branch`, `sent`, `skipped`, ...
    pub what: String,
    pub text: String,
    /// `file:line`, or empty when no construct decided it (a record ignored as a duplicate).
    pub source: String,
}

/// The decisions about `contact`, in the order the engine made them (time order).
pub fn decisions(project: &CompiledProject, trace: &[TraceEntry], contact: &str) -> Vec<Decision> {
    trace
        .iter()
        .filter(|e| e.contact == contact)
        .map(|e| {
            let source = e
                .source
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            // The trace text often ends with the location in parentheses: shown once, apart.
            let mut text = e.text.clone();
            let suffix = format!(" ({source})");
            if !source.is_empty() && text.ends_with(&suffix) {
                text.truncate(text.len() - suffix.len());
            }
            let what = match e.kind {
                TraceKind::Entered => "entered",
                TraceKind::NotEntered => "not entered",
                TraceKind::Exited => "exited",
                TraceKind::Completed => "completed",
                TraceKind::Timer => "timer",
                TraceKind::Received => "received",
                TraceKind::Deferred => "deferred",
                TraceKind::Step if text.starts_with("wait") => "waits",
                TraceKind::Step => "step",
                TraceKind::Segment => "segment",
                TraceKind::Goal => "goal",
                TraceKind::Send if text.starts_with("sent") => "sent",
                TraceKind::Send => "skipped",
                TraceKind::Branch => "branch",
                TraceKind::Warning => "warning",
            };
            Decision {
                time: format_instant(e.time),
                flow: e
                    .flow
                    .and_then(|f| project.flows.get(f.index()))
                    .map_or(String::new(), |f| f.name.clone()),
                what: what.to_string(),
                text,
                source,
            }
        })
        .collect()
}

/// The text form: one line per decision, columns aligned.
pub fn render(contact: &str, decisions: &[Decision]) -> String {
    let flow_width = decisions.iter().map(|d| d.flow.len()).max().unwrap_or(0);
    let what_width = decisions.iter().map(|d| d.what.len()).max().unwrap_or(0);
    let mut out = format!("decisions about contact `{contact}`:\n");
    for d in decisions {
        let mut line = format!(
            "{}  {:flow_width$}  {:what_width$}  {}",
            d.time, d.flow, d.what, d.text
        );
        if !d.source.is_empty() {
            line.push_str(&format!("  [{}]", d.source));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints the explanation of `contact` on standard output (the `--trace` lines, when asked,
/// still go to standard error). Exit 2 when the contact does not appear in the events.
pub fn command(project: &CompiledProject, sim: &Simulation, contact: &str, trace: bool) -> u8 {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for entry in &sim.trace {
        if trace || entry.kind == TraceKind::Warning {
            let _ = writeln!(err, "{}", trace_line(project, entry));
        }
    }
    if sim.store.get(contact).is_none() {
        let _ = writeln!(
            err,
            "error: contact `{contact}` does not appear in the events (no record has it as `userId` or `anonymousId`)"
        );
        return EXIT_CANNOT_RUN;
    }
    let decisions = decisions(project, &sim.trace, contact);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = out.write_all(render(contact, &decisions).as_bytes());
    EXIT_OK
}
