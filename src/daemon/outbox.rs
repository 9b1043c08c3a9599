//! The outbox: what the daemon keeps per delivery decision, and the two ways entries leave it:
//! the dry-run file and the pool of sending threads.
//!
//! Owns: [`OutboxEntry`] (its statuses and JSON form), the idempotency key of a step, the
//! dry-run writer (one simulate-format line per decision, appended and synced, never twice for
//! one key), and the bounded worker pool that calls [`crate::channels::Sender`].
//! Must not: write the store (the core does, after a worker reports) or decide retries (the core
//! asks `channels::retry`).

use crate::channels::{Outgoing, Receipt, SendError, Sender};
use crate::engine::time::Instant;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};

/// Where an outbox entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Waiting for its first try.
    Pending,
    /// A transient failure; tried again at `next_try`.
    Retrying,
    /// The provider accepted it.
    Sent,
    /// The engine decided not to send (`reason`).
    Skipped,
    /// Written to the dry-run file instead of sent.
    DryRun,
    /// Given up: a permanent failure, a render error, or the give-up time passed.
    Dead,
}

impl EntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Pending => "pending",
            EntryStatus::Retrying => "retrying",
            EntryStatus::Sent => "sent",
            EntryStatus::Skipped => "skipped",
            EntryStatus::DryRun => "dry_run",
            EntryStatus::Dead => "dead",
        }
    }
}

/// One delivery decision as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub key: String,
    pub contact: String,
    pub flow: String,
    /// The version (hash) of the flow that decided it.
    pub flow_hash: String,
    pub message: String,
    pub channel: String,
    /// The decision time.
    pub time: Instant,
    pub status: EntryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The decision as a line of the simulate format.
    pub line: String,
    /// What to send (real sends only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<Outgoing>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_try: Option<Instant>,
    /// When it is due for (another) try, while it is queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_try: Option<Instant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

impl OutboxEntry {
    /// The stored form: MessagePack with field names (the optional fields are skipped when
    /// empty, so a positional form could not be read back).
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self)
            .unwrap_or_else(|_| serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads the stored form, or the JSON that stores written before it hold.
    pub fn decode(bytes: &[u8]) -> Option<OutboxEntry> {
        if bytes.first() == Some(&b'{') {
            return serde_json::from_slice(bytes).ok();
        }
        rmp_serde::from_slice(bytes).ok()
    }
}

/// The idempotency key of one step: a hash of the contact, the flow and its version, the
/// message, the decision time, what caused it (a record's messageId or content, a timer, a
/// schedule tick) and its rank among identical decisions of that one input. Distinct steps get
/// distinct keys; a retried send keeps its key (it is stored with the entry).
pub fn idempotency_key(
    contact: &str,
    flow: &str,
    flow_hash: &str,
    message: &str,
    time: Instant,
    cause: &str,
    rank: usize,
) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [
        contact,
        flow,
        flow_hash,
        message,
        &time.to_string(),
        cause,
        &rank.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The dry-run file: one line per decision, each with its `key`; a key already in the file
/// (a crash between the append and the outbox commit) is not written again.
pub struct DryRun {
    path: PathBuf,
    file: std::fs::File,
    written: HashSet<String>,
}

impl DryRun {
    pub fn open(path: &Path) -> Result<DryRun, String> {
        let mut written = HashSet::new();
        if let Ok(existing) = std::fs::File::open(path) {
            for line in std::io::BufReader::new(existing).lines() {
                let Ok(line) = line else { break };
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Some(key) = value.get("key").and_then(|k| k.as_str()) {
                        written.insert(key.to_string());
                    }
                }
            }
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open the dry-run file `{}`: {e}", path.display()))?;
        Ok(DryRun {
            path: path.to_path_buf(),
            file,
            written,
        })
    }

    /// Appends the lines of entries not written yet, then syncs the file.
    pub fn write(&mut self, entries: &[OutboxEntry]) -> Result<(), String> {
        let mut text = String::new();
        for entry in entries {
            if self.written.contains(&entry.key) {
                continue;
            }
            let line = entry.line.trim_end_matches('}');
            text.push_str(&format!(
                "{line},\"key\":\"{}\",\"flow_version\":\"{}\"}}\n",
                entry.key,
                &entry.flow_hash.get(..12).unwrap_or(&entry.flow_hash)
            ));
        }
        if !text.is_empty() {
            self.file
                .write_all(text.as_bytes())
                .and_then(|()| self.file.sync_data())
                .map_err(|e| format!("cannot write `{}`: {e}", self.path.display()))?;
        }
        for entry in entries {
            self.written.insert(entry.key.clone());
        }
        Ok(())
    }
}

/// The dry-run file on a thread of its own, so that its appends and syncs never hold up a
/// group commit. One batch at a time: the core hands a batch, the writer reports it written.
pub struct DryRunWriter {
    jobs: mpsc::Sender<Vec<(Instant, OutboxEntry)>>,
}

impl DryRunWriter {
    /// Starts the writer; `report` gets each batch back with whether it was written.
    pub fn start(
        mut file: DryRun,
        report: impl Fn(Vec<(Instant, OutboxEntry)>, Result<(), String>) + Send + 'static,
    ) -> DryRunWriter {
        let (jobs, receiver) = mpsc::channel::<Vec<(Instant, OutboxEntry)>>();
        let _ = std::thread::Builder::new()
            .name("flowc-dry-run".into())
            .spawn(move || {
                while let Ok(batch) = receiver.recv() {
                    let entries: Vec<OutboxEntry> = batch.iter().map(|(_, e)| e.clone()).collect();
                    let result = file.write(&entries);
                    if result.is_err() {
                        // A failing disk: do not spin; the core queues the batch again.
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    report(batch, result);
                }
            });
        DryRunWriter { jobs }
    }

    pub fn submit(&self, batch: Vec<(Instant, OutboxEntry)>) -> bool {
        self.jobs.send(batch).is_ok()
    }
}

/// One send for a worker.
pub struct Job {
    pub contact: String,
    pub key: String,
    pub due: Instant,
    pub outgoing: Outgoing,
}

/// What a worker reports.
pub struct Done {
    pub contact: String,
    pub key: String,
    pub due: Instant,
    pub result: Result<Receipt, SendError>,
}

/// A fixed number of threads that send; the core hands out at most that many jobs at once.
pub struct Workers {
    jobs: mpsc::Sender<Job>,
    pub size: usize,
}

impl Workers {
    /// Starts `size` threads sending through `senders` (swapped on reload) and reporting with
    /// `report`.
    pub fn start(
        size: usize,
        senders: Arc<RwLock<Arc<dyn Sender>>>,
        report: impl Fn(Done) + Send + Sync + 'static,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Workers {
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let report = Arc::new(report);
        for i in 0..size {
            let receiver = receiver.clone();
            let senders = senders.clone();
            let report = report.clone();
            let metrics = metrics.clone();
            let _ = std::thread::Builder::new()
                .name(format!("flowc-send-{i}"))
                .spawn(move || loop {
                    let job = match receiver.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let sender = match senders.read() {
                        Ok(s) => s.clone(),
                        Err(_) => return,
                    };
                    let started = std::time::Instant::now();
                    let result = sender.send(&job.outgoing);
                    metrics.send_latency.observe(started.elapsed());
                    report(Done {
                        contact: job.contact,
                        key: job.key,
                        due: job.due,
                        result,
                    });
                });
        }
        Workers { jobs, size }
    }

    pub fn submit(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}
