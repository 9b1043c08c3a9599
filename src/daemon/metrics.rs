//! The daemon's counters, gauges and latency histograms, and their Prometheus text form.
//!
//! Owns: what `/metrics` shows (names, labels, buckets).
//! Must not: block (every update is an atomic or a short lock) or decide anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A Prometheus histogram of seconds.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: std::time::Duration) {
        let seconds = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Everything `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_in: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub requests_rejected: AtomicU64,
    pub timers_fired: AtomicU64,
    pub timers_pending: AtomicU64,
    pub outbox_depth: AtomicU64,
    pub dispatch_in_flight: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    pub commits: AtomicU64,
    /// Retention passes finished, and what they removed (`super::retention`).
    pub compactions: AtomicU64,
    pub compacted_dedupe: AtomicU64,
    pub compacted_history: AtomicU64,
    pub compacted_outbox: AtomicU64,
    /// (status, channel) → count: `sent`, `skipped`, `failed` (retry), `dead`, `dry_run`.
    pub deliveries: Mutex<BTreeMap<(String, String), u64>>,
    /// From the request to its durable acknowledgement.
    pub ingest_latency: Histogram,
    /// One group commit (batch, flush, fdatasync).
    pub commit_latency: Histogram,
    /// One send through a channel.
    pub send_latency: Histogram,
    /// One retention pass.
    pub compaction_latency: Histogram,
}

impl Metrics {
    pub fn delivery(&self, status: &str, channel: &str) {
        if let Ok(mut map) = self.deliveries.lock() {
            *map.entry((status.to_string(), channel.to_string()))
                .or_insert(0) += 1;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64, kind: &str| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            &mut out,
            "flowc_events_in_total",
            "Records applied.",
            &self.events_in,
            "counter",
        );
        counter(
            &mut out,
            "flowc_events_duplicate_total",
            "Records ignored because their messageId was already applied.",
            &self.events_duplicate,
            "counter",
        );
        counter(
            &mut out,
            "flowc_requests_rejected_total",
            "Ingestion requests answered with a 4xx.",
            &self.requests_rejected,
            "counter",
        );
        counter(
            &mut out,
            "flowc_timers_fired_total",
            "Contact timer wake-ups handled.",
            &self.timers_fired,
            "counter",
        );
        counter(
            &mut out,
            "flowc_timers_pending",
            "Timers in the durable index.",
            &self.timers_pending,
            "gauge",
        );
        counter(
            &mut out,
            "flowc_outbox_depth",
            "Outbox entries waiting to be sent or retried.",
            &self.outbox_depth,
            "gauge",
        );
        counter(
            &mut out,
            "flowc_dispatch_in_flight",
            "Sends in progress.",
            &self.dispatch_in_flight,
            "gauge",
        );
        counter(
            &mut out,
            "flowc_reloads_total",
            "Project versions loaded by hot reload.",
            &self.reloads,
            "counter",
        );
        counter(
            &mut out,
            "flowc_reload_failures_total",
            "Edits refused by hot reload.",
            &self.reload_failures,
            "counter",
        );
        counter(
            &mut out,
            "flowc_commits_total",
            "Durable group commits.",
            &self.commits,
            "counter",
        );
        counter(
            &mut out,
            "flowc_compactions_total",
            "Retention passes finished.",
            &self.compactions,
            "counter",
        );
        let _ = writeln!(
            out,
            "# HELP flowc_compacted_total Entries retention removed, by kind.\n# TYPE flowc_compacted_total counter"
        );
        for (kind, v) in [
            ("dedupe", &self.compacted_dedupe),
            ("history", &self.compacted_history),
            ("outbox", &self.compacted_outbox),
        ] {
            let _ = writeln!(
                out,
                "flowc_compacted_total{{kind=\"{kind}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP flowc_deliveries_total Delivery decisions and send outcomes.\n# TYPE flowc_deliveries_total counter"
        );
        if let Ok(map) = self.deliveries.lock() {
            for ((status, channel), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "flowc_deliveries_total{{status=\"{status}\",channel=\"{channel}\"}} {n}"
                );
            }
        }
        self.ingest_latency.render(
            &mut out,
            "flowc_ingest_latency_seconds",
            "From an ingestion request to its durable acknowledgement.",
        );
        self.commit_latency.render(
            &mut out,
            "flowc_commit_latency_seconds",
            "One group commit: batch, flush and fdatasync.",
        );
        self.send_latency.render(
            &mut out,
            "flowc_send_latency_seconds",
            "One send through a channel.",
        );
        self.compaction_latency.render(
            &mut out,
            "flowc_compaction_seconds",
            "One retention pass (background, beside ingestion).",
        );
        out
    }
}
