//! `GET /v1/contacts/{id}/trace`: every decision about one contact, with its reason and the
//! `file:line` of the construct that decided it.
//!
//! Owns: the replay behind it. The contact's records are read from the stored history log,
//! run through `flowc simulate` (the engine, tracing on) on a virtual clock from the first
//! record up to the wall clock's now, with the live project version, and the decisions are
//! taken from that trace by `changes::explain` (the same code as `flowc simulate --explain`).
//! Replaying is the honest choice: the daemon runs the engine with tracing off, and a trace
//! kept on the side for every contact would cost on every event. What it shows is what the
//! live version decides on that history; it equals what the daemon decided when the contact's
//! records all arrived under this version and in time order (an older version's instance, a
//! record that arrived after a timer it precedes had fired: docs/runtime.md, "Time"). The real
//! deliveries, with their outbox status, are in `GET /v1/contacts/{id}`.
//! The notes hot reload kept of the contact's instances moved or ended by a version change
//! (`on change migrate | restart`, `super::reload::MigrationNote`) are added at their time.
//! Must not: decide anything (the engine does), or write the store.

use crate::changes::explain::{decisions, Decision};
use crate::compile::CompiledProject;
use crate::engine::time::Instant;
use crate::store::sled::StoreReader;

/// Records read per page of the history log.
const PAGE: usize = 10_000;

/// What the replay found: the records replayed and the decisions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContactTrace {
    pub contact: String,
    /// How many of the contact's records were replayed.
    pub records: usize,
    pub decisions: Vec<Decision>,
}

/// The trace of `contact`, `None` when no stored record has it.
pub fn contact_trace(
    reader: &StoreReader,
    project: &CompiledProject,
    contact: &str,
    now: Instant,
) -> Result<Option<ContactTrace>, String> {
    let mut records = Vec::new();
    let mut from = 0u64;
    loop {
        let page = reader.history(from, PAGE).map_err(|e| e.to_string())?;
        let Some(last) = page.last().map(|(seq, _)| *seq) else {
            break;
        };
        for (seq, bytes) in &page {
            let Some(value) = super::history_value(bytes) else {
                continue;
            };
            if value.get("userId").and_then(serde_json::Value::as_str) != Some(contact) {
                continue;
            }
            let line = usize::try_from(*seq).unwrap_or(usize::MAX);
            if let Ok(Some(record)) = crate::events::parse_owned_record(value, line) {
                records.push(record);
            }
        }
        if page.len() < PAGE {
            break;
        }
        from = last + 1;
    }
    if records.is_empty() {
        return Ok(None);
    }
    let count = records.len();
    let options = crate::simulate::SimulateOptions {
        until: Some(now),
        trace: true,
        render: false,
        progress: false,
    };
    let sim = crate::simulate::run(project, records, &options);
    let mut decided = decisions(project, &sim.trace, contact);
    let notes = super::reload::notes_of(reader, contact).map_err(|e| e.to_string())?;
    for note in notes {
        decided.push(Decision {
            time: crate::engine::time::format_instant(note.time),
            flow: note.flow,
            what: note.what,
            text: note.text,
            source: note.source,
        });
    }
    // Stable: the notes come after the replay's decisions of the same second.
    decided.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(Some(ContactTrace {
        contact: contact.to_string(),
        records: count,
        decisions: decided,
    }))
}
