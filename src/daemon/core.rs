//! The daemon's core: the one thread that writes the store.
//!
//! Owns: group commit (a group takes the inputs waiting when it opens, at most
//! [`MAX_GROUP_EVENTS`] records; its writes go to the store in one atomic batch, the store's
//! sync thread makes it durable while this thread goes on with the next group, and no request
//! of the group is acknowledged, and none of its outbox entries dispatched, before it is
//! durable), the wall-clock timer loop (due timers fire once, in time order; after a
//! restart every overdue timer fires once), schedule ticks, turning delivery decisions into
//! outbox entries, the dispatch queue (dry-run file or worker pool, retries with backoff, dead
//! letters, hard-bounce suppression), and switching to a reloaded project version.
//! Must not: implement any semantics: it calls `Engine::apply` exactly as `simulate` does
//! (records at their own timestamp, timers with `Input::Timers`, ticks with `Input::Tick`).

use super::metrics::Metrics;
use super::outbox::{self, EntryStatus, OutboxEntry, Workers};
use super::Loaded;
use crate::channels::{Links, RetryPolicy, SendError};
use crate::compile::{CompiledProject, FlowId};
use crate::engine::time::{self, Instant};
use crate::engine::{Delivery, Engine, Input, Options, Outcome, Status, TraceKind};
use crate::events::Record;
use crate::simulate::Schedule;
use crate::store::sled::SledStore;
use crate::store::Store;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Records per group at most: each record writes about five keys (state, timer out and in,
/// messageId, history, outbox), so a group's batch stays around 1,000 operations. One request
/// is never split: a larger request is one group of its own.
pub const MAX_GROUP_EVENTS: usize = 200;
/// Timer wake-ups handled per group at most.
const MAX_GROUP_TIMERS: usize = 250;
/// Contacts visited per group by a schedule tick.
const TICK_CHUNK: usize = 500;

/// Called with the new project after a reload (senders, the server's view).
pub type OnReload = Box<dyn FnMut(&Arc<Loaded>) + Send>;

/// The answer to an ingestion: how many records were applied (the others were duplicates).
pub type IngestResult = Result<usize, String>;

/// Where the answer of an ingestion goes.
pub enum Reply {
    Async(tokio::sync::oneshot::Sender<IngestResult>),
    Blocking(Sender<IngestResult>),
    None,
}

impl Reply {
    fn send(self, result: IngestResult) {
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
            Reply::None => {}
        }
    }
}

/// What the core is asked to do.
pub enum Command {
    /// Apply records (already validated); answer once they are durable.
    Ingest { records: Vec<Record>, reply: Reply },
    /// A worker finished a send.
    Sent(outbox::Done),
    /// The dry-run writer appended (or failed to append) a batch.
    DryRunWritten(Vec<(Instant, OutboxEntry)>, Result<(), String>),
    /// A new project version passed check.
    Reload(Arc<Loaded>),
    /// Finish what is in flight, commit, and stop; answers when done.
    Shutdown(Sender<()>),
    /// The groups up to this one are durable (sent by the store's sync thread).
    Durable(u64),
}

impl Command {
    /// How many inputs the command brings to a group.
    fn records(&self) -> usize {
        match self {
            Command::Ingest { records, .. } => records.len().max(1),
            _ => 1,
        }
    }
}

/// How decisions leave the outbox.
pub enum Dispatch {
    DryRun {
        writer: outbox::DryRunWriter,
        /// A batch is being written.
        busy: bool,
    },
    Send {
        workers: Workers,
        in_flight: HashSet<(String, String)>,
    },
}

/// The core's state.
pub struct Core {
    pub store: SledStore,
    pub loaded: Arc<Loaded>,
    pub metrics: Arc<Metrics>,
    pub dispatch: Dispatch,
    pub links: Links,
    pub retry: RetryPolicy,
    /// Outbox entries to try: (due, contact, key).
    queue: BTreeSet<(Instant, String, String)>,
    /// `when every` flows: (next tick, flow, contact the current tick has reached).
    /// Each `when every` line: its next tick, the line, and the last contact of the tick in
    /// progress (ticks run a chunk of contacts per group).
    schedules: Vec<(Instant, Schedule, Option<String>)>,
    /// Called with the new project after a reload (senders, links).
    pub on_reload: OnReload,
    /// This core's own command channel (the sync thread reports durable groups on it; set by
    /// [`Core::run`]).
    own: Option<Sender<Command>>,
    /// The open group's number.
    group: u64,
    /// Outbox entries decided in groups not yet durable: (group, queue entry).
    undurable: Vec<(u64, (Instant, String, String))>,
    /// Sends that finished and whose outcome is written in a group not yet durable: (group,
    /// (contact, key)). They keep their dispatch slot until then, so that a crash repeats at
    /// most `send_concurrency` sends (the documented duplicate window).
    settling: Vec<(u64, (String, String))>,
}

/// The wall clock in whole seconds (plus [`clock_offset`]).
pub fn wall_now() -> Instant {
    i64::try_from(wall_since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// The wall clock since the epoch, plus [`clock_offset`].
fn wall_since_epoch() -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let offset = clock_offset();
    if offset >= 0 {
        now + Duration::from_secs(offset.unsigned_abs())
    } else {
        now.saturating_sub(Duration::from_secs(offset.unsigned_abs()))
    }
}

/// Seconds added to the daemon's wall clock: `FLOWC_CLOCK_OFFSET_SECONDS` (default 0), read
/// once. Benchmarks and tests use it to start a daemon an hour "later" on a store whose
/// timers are then all due at once (docs/runtime.md).
pub fn clock_offset() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("FLOWC_CLOCK_OFFSET_SECONDS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

impl Core {
    pub fn new(
        store: SledStore,
        loaded: Arc<Loaded>,
        metrics: Arc<Metrics>,
        dispatch: Dispatch,
        links: Links,
        retry: RetryPolicy,
        on_reload: OnReload,
    ) -> Result<Core, String> {
        let mut store = store;
        store.set_now(wall_now());
        // The `q` keys and the entries of `p` records still pending (src/store/sled.rs).
        let queue: BTreeSet<_> = store
            .outbox_start(&|bytes| {
                OutboxEntry::decode(bytes)
                    .filter(|e| matches!(e.status, EntryStatus::Pending))
                    .map(|e| e.time)
            })
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let mut core = Core {
            store,
            loaded,
            metrics,
            dispatch,
            links,
            retry,
            queue,
            schedules: Vec::new(),
            on_reload,
            own: None,
            group: 0,
            undurable: Vec::new(),
            settling: Vec::new(),
        };
        core.load_schedules()?;
        let loaded = core.loaded.clone();
        core.record_version(&loaded);
        core.gauges();
        Ok(core)
    }

    /// The `when every` ticks: from the store (so that a tick due while the daemon was down
    /// fires once after the restart), else the first tick after now.
    fn load_schedules(&mut self) -> Result<(), String> {
        let project = &self.loaded.compiled;
        let tz = self.loaded.config.default_timezone();
        let first = crate::simulate::first_schedule_ticks(project, tz, wall_now());
        let mut schedules = Vec::new();
        for (t, schedule) in first {
            let key = tick_key(project, &schedule);
            let stored = self
                .store
                .meta(&key)
                .map_err(|e| e.to_string())?
                .and_then(|b| serde_json::from_slice::<(Instant, Option<String>)>(&b).ok());
            match stored {
                Some((at, after)) => schedules.push((at, schedule, after)),
                None => {
                    self.store.put_meta(
                        &key,
                        &serde_json::to_vec(&(t, None::<String>)).unwrap_or_default(),
                    );
                    schedules.push((t, schedule, None));
                }
            }
        }
        self.schedules = schedules;
        self.store.commit().map_err(|e| e.to_string())
    }

    /// Runs until a shutdown command; `own` sends to `rx` (the sync thread reports durable
    /// groups on it).
    pub fn run(mut self, rx: Receiver<Command>, own: Sender<Command>) {
        self.own = Some(own);
        let mut shutdown: Option<Sender<()>> = None;
        let mut draining_since: Option<std::time::Instant> = None;
        loop {
            let wait = self.wait_time();
            let mut group = Vec::new();
            match rx.recv_timeout(wait) {
                Ok(command) => group.push(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if shutdown.is_none() {
                        let (tx, _rx) = std::sync::mpsc::channel();
                        shutdown = Some(tx);
                    }
                }
            }
            // The group takes what is waiting now, and no more than MAX_GROUP_EVENTS: it
            // does not wait for more (while the disk syncs one group the next one fills up,
            // which is the batching; waiting would only add latency).
            let mut records: usize = group.iter().map(Command::records).sum();
            while !group.is_empty() && records < MAX_GROUP_EVENTS {
                match rx.try_recv() {
                    Ok(command) => {
                        records += command.records();
                        group.push(command);
                    }
                    Err(_) => break,
                }
            }
            let mut replies = Vec::new();
            let mut reload = None;
            self.store.set_now(wall_now());
            self.process(group, &mut replies, &mut reload, &mut shutdown);
            self.fire_timers();
            self.tick_schedules();
            self.commit_group(replies);
            if let Some(loaded) = reload {
                self.switch(loaded);
            }
            self.dispatch_due();
            self.gauges();
            if let Some(done) = &shutdown {
                let since = *draining_since.get_or_insert_with(std::time::Instant::now);
                let in_flight = match &self.dispatch {
                    Dispatch::Send { in_flight, .. } => in_flight.len(),
                    Dispatch::DryRun { busy, .. } => usize::from(*busy),
                };
                if in_flight == 0 || since.elapsed() > Duration::from_secs(10) {
                    let _ = self.store.commit();
                    tracing::info!(in_flight, "core stopped");
                    let _ = done.send(());
                    return;
                }
            }
        }
    }

    /// Applies the group and has it synced; its requests are answered, and its outbox entries
    /// handed to dispatch (`Command::Durable`), only once it is durable.
    fn commit_group(&mut self, replies: Vec<(Reply, usize)>) {
        if self.store.pending_operations() == 0 && replies.is_empty() {
            // Nothing of the open group is unwritten: its settled sends are durable.
            self.release_settled(self.group);
            return;
        }
        let group = self.group;
        self.group += 1;
        let own = self.own.clone();
        let metrics = self.metrics.clone();
        let on_durable: crate::store::sled::OnDurable = Box::new(move |result| match result {
            Ok(stats) => {
                metrics.commits.fetch_add(1, Ordering::Relaxed);
                metrics
                    .commit_latency
                    .observe(Duration::from_micros(stats.micros));
                for (reply, n) in replies {
                    reply.send(Ok(n));
                }
                if let Some(own) = own {
                    let _ = own.send(Command::Durable(group));
                }
            }
            Err(e) => refuse_and_stop(replies, &e.to_string()),
        });
        if let Err(e) = self.store.commit_then(on_durable) {
            // The callback was not queued (it is dropped with its replies, which answers
            // them as failed); stop as below.
            tracing::error!(error = %e, "the store could not commit; the daemon stops");
            std::thread::sleep(Duration::from_millis(200));
            std::process::exit(2);
        }
    }

    /// Outbox entries of groups up to `group` are durable: they may be dispatched.
    fn durable(&mut self, group: u64) {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.undurable)
            .into_iter()
            .partition(|(g, _)| *g <= group);
        self.undurable = waiting;
        self.queue.extend(ready.into_iter().map(|(_, entry)| entry));
        self.release_settled(group);
    }

    /// Frees the dispatch slots of sends whose outcome is durable (groups up to `group`).
    fn release_settled(&mut self, group: u64) {
        if self.settling.is_empty() {
            return;
        }
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.settling)
            .into_iter()
            .partition(|(g, _)| *g <= group);
        self.settling = waiting;
        if let Dispatch::Send { in_flight, .. } = &mut self.dispatch {
            for (_, send) in done {
                in_flight.remove(&send);
            }
        }
    }

    /// Queues an outbox entry for dispatch once the open group is durable.
    fn queue_after_commit(&mut self, due: Instant, contact: &str, key: &str) {
        self.undurable
            .push((self.group, (due, contact.to_string(), key.to_string())));
    }

    /// How long to wait for a command: until the next timer, tick or outbox entry is due.
    fn wait_time(&self) -> Duration {
        let mut next = Instant::MAX;
        if let Some((t, _)) = self.store.next_due() {
            next = next.min(t);
        }
        if let Some((t, _, _)) = self.schedules.iter().min_by_key(|s| s.0) {
            next = next.min(*t);
        }
        if let Some((t, _, _)) = self.queue.first() {
            if self.can_dispatch() {
                next = next.min(*t);
            }
        }
        let cap = Duration::from_millis(250);
        if next == Instant::MAX {
            return cap;
        }
        let now = wall_since_epoch();
        let due = Duration::from_secs(u64::try_from(next.max(0)).unwrap_or(0));
        due.saturating_sub(now).min(cap)
    }

    fn can_dispatch(&self) -> bool {
        match &self.dispatch {
            Dispatch::DryRun { busy, .. } => !busy,
            Dispatch::Send { workers, in_flight } => in_flight.len() < workers.size,
        }
    }

    fn gauges(&self) {
        let m = &self.metrics;
        m.timers_pending
            .store(self.store.timers_pending() as u64, Ordering::Relaxed);
        m.outbox_depth
            .store(self.queue.len() as u64, Ordering::Relaxed);
        if let Dispatch::Send { in_flight, .. } = &self.dispatch {
            m.dispatch_in_flight
                .store(in_flight.len() as u64, Ordering::Relaxed);
        }
    }

    fn engine_options(&self) -> Options {
        Options {
            trace: false,
            capture_context: matches!(self.dispatch, Dispatch::Send { .. }),
        }
    }

    fn process(
        &mut self,
        group: Vec<Command>,
        replies: &mut Vec<(Reply, usize)>,
        reload: &mut Option<Arc<Loaded>>,
        shutdown: &mut Option<Sender<()>>,
    ) {
        let loaded = self.loaded.clone();
        let engine = Engine::new(&loaded.compiled, self.engine_options());
        for command in group {
            match command {
                Command::Ingest { mut records, reply } => {
                    crate::events::sort_for_replay(&mut records);
                    let mut applied = 0;
                    for record in &records {
                        match self.apply_record(&engine, record) {
                            Ok(true) => applied += 1,
                            Ok(false) => {}
                            Err(e) => tracing::error!(error = %e, "store"),
                        }
                    }
                    replies.push((reply, applied));
                }
                Command::Sent(done) => self.finished(&engine, done),
                Command::DryRunWritten(batch, result) => self.written(batch, result),
                Command::Reload(next) => *reload = Some(next),
                Command::Shutdown(done) => *shutdown = Some(done),
                Command::Durable(group) => self.durable(group),
            }
        }
    }

    /// Applies one record (unless its messageId was applied before) at its own timestamp, no
    /// later than the wall clock.
    fn apply_record(&mut self, engine: &Engine<'_>, record: &Record) -> Result<bool, String> {
        if let Some(id) = &record.message_id {
            if !self.store.first_seen(id).map_err(|e| e.to_string())? {
                self.metrics
                    .events_duplicate
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
        }
        let now = record.time.min(wall_now());
        let mut out = Outcome::default();
        self.store
            .update(&record.contact, |state| {
                engine.apply(&record.contact, state, Input::Record(record), now, &mut out)
            })
            .map_err(|e| e.to_string())?;
        self.store.append_history(&super::record_bytes(record));
        self.metrics.events_in.fetch_add(1, Ordering::Relaxed);
        let cause = match &record.message_id {
            Some(id) => format!("record:{id}"),
            None => format!(
                "record:{}:{}:{}:{}",
                record.time, record.nanos, record.event, record.line
            ),
        };
        self.decided(engine, out, &cause);
        Ok(true)
    }

    /// Fires every timer due by the wall clock, earliest first.
    fn fire_timers(&mut self) {
        let loaded = self.loaded.clone();
        let engine = Engine::new(&loaded.compiled, self.engine_options());
        let now = wall_now();
        for _ in 0..MAX_GROUP_TIMERS {
            let (due, contact) = match self.store.next_live_due() {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "timer");
                    break;
                }
            };
            if due > now {
                break;
            }
            let mut out = Outcome::default();
            let result = self.store.update(&contact, |state| {
                engine.apply(&contact, state, Input::Timers, now, &mut out);
                // A state whose wake did not move past now would come back at once.
                if state.wake.is_some_and(|w| w <= now) {
                    state.wake = Some(now + 1);
                }
            });
            if let Err(e) = result {
                tracing::error!(error = %e, contact, "timer");
                break;
            }
            self.metrics.timers_fired.fetch_add(1, Ordering::Relaxed);
            self.decided(&engine, out, &format!("timer:{due}"));
        }
    }

    /// Runs due schedule ticks, a chunk of contacts per group; the progress is stored with the
    /// group, so a crash resumes the tick where it stopped.
    fn tick_schedules(&mut self) {
        let now = wall_now();
        let loaded = self.loaded.clone();
        let engine = Engine::new(&loaded.compiled, self.engine_options());
        let tz = loaded.config.default_timezone();
        for index in 0..self.schedules.len() {
            let (at, schedule, after) = self.schedules[index].clone();
            if at > now {
                continue;
            }
            let mut out = Outcome::default();
            let result = self
                .store
                .update_contacts_after(after.as_deref(), TICK_CHUNK, |c, s| {
                    engine.apply(c, s, schedule.input(), at, &mut out)
                });
            let name = loaded.compiled.flows[schedule.flow.index()].name.clone();
            let key = tick_key(&loaded.compiled, &schedule);
            match result {
                Ok(Some(last)) => {
                    self.schedules[index].2 = Some(last);
                }
                Ok(None) => {
                    self.schedules[index] = (schedule.next_tick(tz, at), schedule, None);
                    tracing::info!(flow = %name, at = %time::format_instant(at), "schedule tick done");
                }
                Err(e) => {
                    tracing::error!(error = %e, flow = %name, "schedule tick");
                    continue;
                }
            }
            let (t, _, after) = &self.schedules[index];
            self.store
                .put_meta(&key, &serde_json::to_vec(&(*t, after)).unwrap_or_default());
            self.decided(&engine, out, &format!("{key}:{at}"));
        }
    }

    /// Turns the decisions of one input into outbox entries.
    fn decided(&mut self, engine: &Engine<'_>, out: Outcome, cause: &str) {
        let project = engine.project;
        for entry in &out.trace {
            if entry.kind == TraceKind::Warning {
                tracing::warn!(contact = %entry.contact, "{}", entry.text);
            }
        }
        let mut seen: Vec<(String, FlowId, crate::compile::MessageId, Instant)> = Vec::new();
        for delivery in &out.deliveries {
            let id = (
                delivery.contact.clone(),
                delivery.flow,
                delivery.message,
                delivery.time,
            );
            let rank = seen.iter().filter(|s| **s == id).count();
            seen.push(id);
            let entry = self.entry_for(project, delivery, cause, rank);
            let due = matches!(entry.status, EntryStatus::Pending).then_some(entry.time);
            self.metrics.delivery(
                match entry.status {
                    EntryStatus::Skipped => "skipped",
                    EntryStatus::Dead => "dead",
                    _ => "decided",
                },
                &entry.channel,
            );
            self.store
                .put_outbox(&entry.contact, &entry.key, &entry.encode(), None, due);
            if let Some(t) = due {
                self.queue_after_commit(t, &entry.contact, &entry.key);
            }
        }
    }

    fn entry_for(
        &self,
        project: &crate::compile::CompiledProject,
        delivery: &Delivery,
        cause: &str,
        rank: usize,
    ) -> OutboxEntry {
        let flow = project.flows.get(delivery.flow.index());
        let flow_name = flow.map_or("", |f| f.name.as_str());
        let flow_hash = flow.map_or("", |f| f.hash.as_str());
        let message = project
            .messages
            .get(delivery.message.index())
            .map_or("", |m| m.name.as_str());
        let key = outbox::idempotency_key(
            &delivery.contact,
            flow_name,
            flow_hash,
            message,
            delivery.time,
            cause,
            rank,
        );
        let mut entry = OutboxEntry {
            key: key.clone(),
            contact: delivery.contact.clone(),
            flow: flow_name.to_string(),
            flow_hash: flow_hash.to_string(),
            message: message.to_string(),
            channel: delivery.channel.keyword().to_string(),
            time: delivery.time,
            status: EntryStatus::Pending,
            reason: delivery.reason.map(|r| r.as_str().to_string()),
            line: crate::simulate::delivery_line(project, delivery, false),
            outgoing: None,
            attempts: 0,
            first_try: None,
            next_try: Some(delivery.time),
            last_error: None,
            provider_id: None,
        };
        let dry_run = matches!(self.dispatch, Dispatch::DryRun { .. });
        if delivery.status == Status::Skipped && !dry_run {
            entry.status = EntryStatus::Skipped;
            entry.next_try = None;
        } else if !dry_run {
            match crate::channels::prepare_delivery(project, delivery, &key, Some(&self.links)) {
                Ok(outgoing) => entry.outgoing = Some(outgoing),
                Err(e) => {
                    entry.status = EntryStatus::Dead;
                    entry.next_try = None;
                    entry.last_error = Some(e.to_string());
                    tracing::warn!(contact = %entry.contact, flow = %entry.flow, message = %entry.message, error = %e, "delivery cannot be prepared; dead letter");
                }
            }
        }
        entry
    }

    /// Hands due outbox entries to the dry-run file or the workers.
    fn dispatch_due(&mut self) {
        let now = wall_now();
        match &mut self.dispatch {
            Dispatch::DryRun { writer, busy } => {
                if *busy {
                    return;
                }
                let mut batch = Vec::new();
                while let Some((t, _, _)) = self.queue.first() {
                    if *t > now || batch.len() >= MAX_GROUP_EVENTS {
                        break;
                    }
                    let Some((t, contact, key)) = self.queue.pop_first() else {
                        break;
                    };
                    match self.store.outbox_entry(&contact, &key) {
                        Ok(Some(bytes)) => {
                            if let Some(entry) = OutboxEntry::decode(&bytes) {
                                batch.push((t, entry));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "outbox read"),
                    }
                }
                if !batch.is_empty() {
                    *busy = writer.submit(batch);
                }
            }
            Dispatch::Send { workers, in_flight } => {
                while in_flight.len() < workers.size {
                    let Some((t, _, _)) = self.queue.first() else {
                        break;
                    };
                    if *t > now {
                        break;
                    }
                    let Some((t, contact, key)) = self.queue.pop_first() else {
                        break;
                    };
                    let entry = match self.store.outbox_entry(&contact, &key) {
                        Ok(Some(bytes)) => OutboxEntry::decode(&bytes),
                        Ok(None) => None,
                        Err(e) => {
                            tracing::error!(error = %e, "outbox read");
                            None
                        }
                    };
                    let Some(outgoing) = entry.and_then(|e| e.outgoing) else {
                        continue;
                    };
                    in_flight.insert((contact.clone(), key.clone()));
                    workers.submit(outbox::Job {
                        contact,
                        key,
                        due: t,
                        outgoing,
                    });
                }
            }
        }
    }

    /// Marks entries the dry-run writer appended (or queues them again when it could not).
    fn written(&mut self, batch: Vec<(Instant, OutboxEntry)>, result: Result<(), String>) {
        if let Dispatch::DryRun { busy, .. } = &mut self.dispatch {
            *busy = false;
        }
        if let Err(e) = result {
            tracing::error!(error = %e, "dry-run file; trying again");
            for (t, entry) in batch {
                self.queue.insert((t, entry.contact, entry.key));
            }
            return;
        }
        for (t, mut entry) in batch {
            self.metrics.delivery("dry_run", &entry.channel);
            entry.status = EntryStatus::DryRun;
            entry.next_try = None;
            self.store
                .put_outbox(&entry.contact, &entry.key, &entry.encode(), Some(t), None);
        }
    }

    /// Records the outcome of a send: sent, retry later, or dead (a hard bounce also records
    /// an `unsubscribed` event for the address's channel).
    fn finished(&mut self, engine: &Engine<'_>, done: outbox::Done) {
        // The slot stays taken until the outcome written below is durable (release_settled).
        self.settling
            .push((self.group, (done.contact.clone(), done.key.clone())));
        let Ok(Some(bytes)) = self.store.outbox_entry(&done.contact, &done.key) else {
            return;
        };
        let Some(mut entry) = OutboxEntry::decode(&bytes) else {
            return;
        };
        let now = wall_now();
        entry.attempts += 1;
        let first = *entry.first_try.get_or_insert(now);
        let mut bounce = None;
        match done.result {
            Ok(receipt) => {
                entry.status = EntryStatus::Sent;
                entry.next_try = None;
                entry.provider_id = receipt.provider_id;
                self.metrics.delivery("sent", &entry.channel);
            }
            Err(SendError::Transient(reason)) => {
                let since = Duration::from_secs(u64::try_from(now - first).unwrap_or(0));
                match self.retry.next(entry.attempts, since, &entry.key) {
                    crate::channels::Retry::After(delay) => {
                        let at = now + i64::try_from(delay.as_secs().max(1)).unwrap_or(60);
                        entry.status = EntryStatus::Retrying;
                        entry.next_try = Some(at);
                        self.metrics.delivery("failed", &entry.channel);
                        tracing::warn!(contact = %entry.contact, message = %entry.message, attempt = entry.attempts, retry_in_s = delay.as_secs(), error = %reason, "transient send failure");
                    }
                    crate::channels::Retry::GiveUp => {
                        entry.status = EntryStatus::Dead;
                        entry.next_try = None;
                        self.metrics.delivery("dead", &entry.channel);
                        tracing::error!(contact = %entry.contact, message = %entry.message, error = %reason, "gave up; dead letter");
                    }
                }
                entry.last_error = Some(reason);
            }
            Err(SendError::Permanent {
                reason,
                hard_bounce,
            }) => {
                entry.status = EntryStatus::Dead;
                entry.next_try = None;
                self.metrics.delivery("dead", &entry.channel);
                tracing::error!(contact = %entry.contact, message = %entry.message, error = %reason, hard_bounce, "permanent send failure; dead letter");
                entry.last_error = Some(reason);
                if hard_bounce {
                    bounce = entry
                        .outgoing
                        .as_ref()
                        .map(|o| crate::channels::hard_bounce_record(o, now));
                }
            }
        }
        let next = entry.next_try;
        self.store.put_outbox(
            &entry.contact,
            &entry.key,
            &entry.encode(),
            Some(done.due),
            next,
        );
        if let Some(t) = next {
            self.queue_after_commit(t, &entry.contact, &entry.key);
        }
        if let Some(record) = bounce {
            if let Err(e) = self.apply_record(engine, &record) {
                tracing::error!(error = %e, "hard bounce record");
            }
        }
    }

    /// Stores the version going live (if new) and marks it live (`super::archive`).
    fn record_version(&mut self, loaded: &Loaded) {
        let stored = super::archive::record(&mut self.store, loaded, wall_now())
            .and_then(|()| self.store.commit().map_err(|e| e.to_string()));
        if let Err(e) = stored {
            tracing::error!(error = %e, version = %loaded.hash, "could not store the project version");
        }
    }

    /// Makes a reloaded version the running one (keeping the old versions of flows that still
    /// have running instances).
    fn switch(&mut self, next: Arc<Loaded>) {
        let old = self.loaded.clone();
        if let Some(diagnostics) = super::reload::refusal(&old.compiled, &next) {
            self.metrics.reload_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(version = %next.hash, diagnostics = %diagnostics, "reload refused: the new version would strand waiting instances; the running version goes on");
            return;
        }
        match super::reload::carry_over(&mut self.store, &old.compiled, &next.compiled, wall_now())
        {
            Ok((merged, n)) => {
                let kept = merged.flows.len() - next.compiled.flows.len();
                let next = Arc::new(Loaded {
                    compiled: merged,
                    config: next.config.clone(),
                    hash: next.hash.clone(),
                    root: next.root.clone(),
                    snapshot: next.snapshot.clone(),
                });
                self.record_version(&next);
                (self.on_reload)(&next);
                self.loaded = next;
                self.metrics.reloads.fetch_add(1, Ordering::Relaxed);
                // New `when every` flows start ticking; removed ones stop.
                let _ = self.load_schedules();
                tracing::info!(version = %self.loaded.hash, contacts_migrated = n, old_versions_kept = kept, "new project version live");
            }
            Err(e) => {
                self.metrics.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "reload failed while carrying states over; the old version keeps running");
            }
        }
    }
}

/// What is in memory (the open group, the timer head) no longer matches the disk: refuse the
/// group and stop, so that a restart recovers from what is durable (crash-only).
fn refuse_and_stop(replies: Vec<(Reply, usize)>, error: &str) {
    tracing::error!(error = %error, "the store could not commit; requests of this group are refused and the daemon stops");
    for (reply, _) in replies {
        reply.send(Err(error.to_string()));
    }
    std::thread::sleep(Duration::from_millis(200));
    std::process::exit(2);
}

/// Where a schedule's progress is kept: `tick:FLOW` for a flow's first `when every` line,
/// `tick:FLOW#N` for its N-th trigger line after that.
fn tick_key(project: &CompiledProject, schedule: &Schedule) -> String {
    let name = &project.flows[schedule.flow.index()].name;
    let first = project.flows[schedule.flow.index()]
        .triggers
        .iter()
        .position(|t| matches!(t, crate::compile::Trigger::Every { .. }));
    if first == Some(schedule.trigger) {
        format!("tick:{name}")
    } else {
        format!("tick:{name}#{}", schedule.trigger)
    }
}
