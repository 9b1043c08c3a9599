//! Retention: what the store may forget, and the background thread that compacts it.
//!
//! Owns: the windows of `[store] dedupe_days`, `history_days` and `outbox_days` (defaults 7,
//! 90 and 30 days; 0 keeps forever), what counts as old (a `messageId` by when it was first
//! seen, a history record by its own timestamp, an outbox entry once finished — sent, dead,
//! skipped or dry run — by its delivery time), the pass every `compact_every_seconds`, and
//! its metrics.
//! Must not: block the core (the pass runs on its own thread through
//! `store::sled::Compactor`, pausing between chunks), or remove anything still pending (a
//! pending or retrying outbox entry, a record inside its window).

use super::metrics::Metrics;
use super::outbox::{EntryStatus, OutboxEntry};
use crate::config::StoreConfig;
use crate::engine::time::Instant;
use crate::store::sled::Compactor;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const DAY: i64 = 86_400;

/// The windows, in seconds (`None`: kept forever).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    pub dedupe: Option<i64>,
    pub history: Option<i64>,
    pub outbox: Option<i64>,
    pub every: Duration,
}

impl Windows {
    pub fn from_config(store: &StoreConfig) -> Windows {
        let days = |v: Option<u64>, default: i64| match v {
            Some(0) => None,
            Some(d) => Some(
                i64::try_from(d)
                    .unwrap_or(i64::MAX / DAY)
                    .saturating_mul(DAY),
            ),
            None => Some(default * DAY),
        };
        Windows {
            dedupe: days(store.dedupe_days, 7),
            history: days(store.history_days, 90),
            outbox: days(store.outbox_days, 30),
            every: Duration::from_secs(store.compact_every_seconds.unwrap_or(600).max(1)),
        }
    }
}

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Removed {
    pub dedupe: u64,
    pub history: u64,
    pub outbox: u64,
}

/// One pass at `now`.
pub fn compact(
    store: &Compactor,
    windows: &Windows,
    now: Instant,
    pause: &dyn Fn(),
) -> Result<Removed, String> {
    let mut removed = Removed::default();
    if let Some(w) = windows.dedupe {
        removed.dedupe = store
            .dedupe(now - w, now, pause)
            .map_err(|e| e.to_string())?;
    }
    if let Some(w) = windows.history {
        removed.history = store
            .history(now - w, &history_time, pause)
            .map_err(|e| e.to_string())?;
    }
    if let Some(w) = windows.outbox {
        let cutoff = now - w;
        removed.outbox = store
            .outbox(&|bytes| finished_before(bytes, cutoff), pause)
            .map_err(|e| e.to_string())?;
    }
    Ok(removed)
}

/// A history record's own timestamp (either stored form: `super::history_value`).
fn history_time(bytes: &[u8]) -> Option<Instant> {
    let value = super::history_value(bytes)?;
    chrono::DateTime::parse_from_rfc3339(value.get("timestamp")?.as_str()?)
        .ok()
        .map(|t| t.timestamp())
}

/// A finished outbox entry whose delivery time is before `cutoff`.
fn finished_before(bytes: &[u8], cutoff: Instant) -> bool {
    let Some(entry) = OutboxEntry::decode(bytes) else {
        return false;
    };
    let finished = matches!(
        entry.status,
        EntryStatus::Sent | EntryStatus::Dead | EntryStatus::Skipped | EntryStatus::DryRun
    );
    finished && entry.time < cutoff
}

/// Starts the background thread: a pass every `windows.every` (the first one after one
/// interval), counted in the metrics.
pub fn start(store: Compactor, windows: Windows, metrics: Arc<Metrics>) {
    if windows.dedupe.is_none() && windows.history.is_none() && windows.outbox.is_none() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("flowc-compact".into())
        .spawn(move || loop {
            std::thread::sleep(windows.every);
            let began = std::time::Instant::now();
            let pause = || std::thread::sleep(Duration::from_millis(1));
            match compact(&store, &windows, super::core::wall_now(), &pause) {
                Ok(r) => {
                    let m = &metrics;
                    m.compacted_dedupe.fetch_add(r.dedupe, Ordering::Relaxed);
                    m.compacted_history.fetch_add(r.history, Ordering::Relaxed);
                    m.compacted_outbox.fetch_add(r.outbox, Ordering::Relaxed);
                    m.compactions.fetch_add(1, Ordering::Relaxed);
                    m.compaction_latency.observe(began.elapsed());
                    if r != Removed::default() {
                        tracing::info!(
                            dedupe = r.dedupe,
                            history = r.history,
                            outbox = r.outbox,
                            "compaction removed what retention lets go"
                        );
                    }
                }
                Err(e) => tracing::error!(error = %e, "compaction"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the compaction thread: {e}; nothing is compacted");
    }
}
