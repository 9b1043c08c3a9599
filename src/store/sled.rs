//! The durable store of the daemon, on sled 0.34.
//!
//! Owns: the on-disk layout (one sled tree, keys prefixed by kind so that one `Batch` covers a
//! whole group atomically), the encoding of contact states (packed MessagePack, see below), the
//! time-ordered timer index and its in-memory head, `messageId` dedupe, the outbox (entries,
//! their due index and the per-group records of entries due at once), the event history log
//! (records in chunks), small metadata, real durability on a sync thread of its own (see
//! [`SledStore::commit_then`]), opening with a short wait for the directory's lock
//! ([`open_locked`]), the removals of retention ([`Compactor`]), and the benchmark's raw sled
//! baseline ([`raw_ceiling`], [`space_by_kind`]).
//! Must not: decide anything about flows or deliveries (the engine and the daemon do), or what
//! retention keeps (`daemon::retention` does), or be
//! imported around: this is the only module that names sled (docs/architecture.md, invariant 3).
//!
//! Layout (one key space; `BE` = big-endian, `wake` = seconds with the sign bit flipped so that
//! byte order is time order):
//!
//! | key | value |
//! |---|---|
//! | `c` contact | contact state: `0xc1` + MessagePack with numbered field names ([`encode_state`]; older stores: MessagePack with field names) |
//! | `w` BE(least wake) BE(number) | the timer index: the timers one group set within one minute ([`WAKE_BUCKET`]), per timer its seconds after the least wake and its contact (LEB128 lengths); an entry stays when its timer moves or goes (skipped when it comes up: the state no longer waits for it), and the record goes once all of its have left the in-memory head ([`TimerHead`]) |
//! | `t` BE(wake) contact | empty: the timer index of older stores, moved into `w` records at open |
//! | `d` BE(number) | the `messageId`s first seen in one group, when the dedupe window is finite: BE i64 seconds of the group's now, then per id its 64-bit SipHash-1-3 ([`message_hash`]), 8 bytes each; held in memory ([`SeenIds`]) and removed by the [`Compactor`] once out of the window |
//! | `m` messageId | with no dedupe window (kept forever), and in stores before the `d` chunks: instant first seen, for retention: BE u32 seconds (older stores: BE i64; empty before retention) |
//! | `e` contact | the contact's outbox entries, one record: per entry, in idempotency-key order, the key's length (LEB128), the key, the entry's length (LEB128) and the entry (the caller's bytes); rewritten whole when one of them changes, removed by the [`Compactor`] with its last entry |
//! | `o` contact `\0` idempotency key | stores before the `e` records: one outbox entry (the caller's bytes); still read, an entry found here is rewritten here, and the [`Compactor`] removes them as before |
//! | `q` BE(next try) contact `\0` idempotency key | empty: outbox entries to dispatch later (due after their group's now, and retries) |
//! | `p` BE(number) | outbox entries that were due at once when decided, one record per group that decided any: per entry its id (contact `\0` idempotency key) with its length (LEB128) before it; removed in the group in which the last of them settles ([`SledStore::put_outbox`]) |
//! | `h` BE(sequence of its first record) | a chunk of applied records of one group: `0xc1 0x00`, then per record its length (LEB128) and the caller's bytes; or `0xc1 0x01` and those records compressed with zstd; a chunk of one record (and every key of older stores) is the record alone |
//! | `v` name | metadata (the caller's bytes); `v store:timers`: BE(contacts waiting), BE(number of the next `w` record) |
//!
//! Writes of a group are collected in memory (readers of this store see them at once) and go
//! to disk in one atomic `apply_batch` at [`SledStore::commit`].
//!
//! Encoding: contact states hold JSON traits (`serde_json::Value`) and use
//! `skip_serializing_if`, so a non-self-describing format (postcard, bincode) cannot read them
//! back; MessagePack (`rmp-serde`, struct fields by name) is the compact self-describing one,
//! and its field names, most of a waiting instance's bytes, are written as one-byte numbers
//! ([`FIELD_NAMES`]): the same map, so `skip_serializing_if` and new fields still work, and
//! the shape of `ContactState` is not touched. Fewer keys matter more than fewer bytes: sled
//! 0.34 costs about 100 B of page and log per key (leaves split at 16 entries), so what a
//! group writes for many contacts at once goes into records of that group rather than one
//! key each: the history log (chunks of about 16 KiB, compressed with zstd), the timers (`w`),
//! the applied `messageId`s (`d`) and the entries due at once (`p`). A waiting contact costs
//! one key of its own, its state.

use super::{Store, StoreError};
use crate::engine::time::Instant;
use crate::engine::ContactState;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

const CONTACT: u8 = b'c';
const TIMER: u8 = b't';
const WAKES: u8 = b'w';
const SEEN: u8 = b'm';
const SEEN_CHUNK: u8 = b'd';
const OUTBOX_RECORD: u8 = b'e';
/// One key per outbox entry: stores before the `e` records.
const OUTBOX: u8 = b'o';
const OUTBOX_DUE: u8 = b'q';
const OUTBOX_NOW: u8 = b'p';
const HISTORY: u8 = b'h';
const META: u8 = b'v';
/// The metadata name under which the number of timer keys is kept.
const TIMER_COUNT: &str = "store:timers";

/// How many timers the in-memory head holds after a refill (at least), and when it is
/// refilled.
const HEAD_FILL: usize = 4096;
const HEAD_LOW: usize = 256;
/// The span of wake instants one `w` record of a group covers (seconds).
const WAKE_BUCKET: i64 = 60;
/// Old `t` keys moved into `w` records per batch at open.
const MIGRATE_CHUNK: usize = 1_000;

/// The durable store. Not `Sync`: one thread (the daemon's core) writes; others read through
/// [`StoreReader`].
pub struct SledStore {
    db: sled::Db,
    batch: sled::Batch,
    /// Operations in `batch`.
    batch_ops: usize,
    /// States written in this group (what `load` sees before the commit).
    overlay: HashMap<String, ContactState>,
    /// Message ids first seen in this group (kept per id: no dedupe window).
    seen_overlay: std::collections::HashSet<String>,
    /// Message ids of the dedupe window (see [`SeenIds`]).
    seen: SeenIds,
    timers: TimerHead,
    next_history: u64,
    /// The history records of this group not yet in `batch` (see [`HistoryChunk`]).
    history_chunk: HistoryChunk,
    /// The thread that makes applied groups durable (see [`SledStore::commit_then`]).
    syncer: Option<Syncer>,
    /// The caller's clock (see [`SledStore::set_now`]): when a `messageId` was first seen.
    now: Instant,
    /// What the last commit did (for metrics).
    pub last_commit: CommitStats,
    due_now: DueNow,
    /// The `e` records written in this group, whole, by contact (what
    /// [`SledStore::outbox_entry`] sees before the commit).
    outbox_overlay: HashMap<String, Vec<u8>>,
    /// Whether the store held `o` keys (one per entry, stores before the `e` records) at open:
    /// only then is an entry looked for there.
    outbox_keys: bool,
    /// A read error met while writing an outbox entry: the group's commit fails with it
    /// rather than write a record without the entries it could not read.
    outbox_error: Option<StoreError>,
}

/// The `p` records (see the layout): the one the open group writes, and how many entries of
/// each written one are still unsettled. Rebuilt at start-up by [`SledStore::outbox_start`].
#[derive(Default)]
struct DueNow {
    /// The number of the open group's record.
    next: u64,
    /// The ids the open group lists (the value of its record).
    open: Vec<u8>,
    /// Unsettled entries per record number (the open one included).
    unsettled: HashMap<u64, usize>,
    /// The record each unsettled listed entry is in, by id.
    listed: HashMap<Vec<u8>, u64>,
}

/// Figures of one commit.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitStats {
    pub operations: usize,
    pub files_synced: usize,
    pub micros: u64,
}

/// Called on the sync thread once a group is durable (with its figures), or with the error
/// that kept it from being so.
pub type OnDurable = Box<dyn FnOnce(Result<CommitStats, StoreError>) + Send>;

/// Groups applied but not yet synced, at most (back-pressure on the writer).
pub const SYNC_QUEUE: usize = 4;

struct SyncJob {
    operations: usize,
    started: std::time::Instant,
    on_durable: OnDurable,
}

/// The sync thread: flush + fdatasync for every applied group, in order, several groups per
/// sync when they queue up.
struct Syncer {
    jobs: std::sync::mpsc::SyncSender<SyncJob>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    fn start(db: sled::Db, dir: PathBuf) -> Result<Syncer, StoreError> {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<SyncJob>(SYNC_QUEUE);
        let thread = std::thread::Builder::new()
            .name("flowc-sync".into())
            .spawn(move || {
                let mut files = DirSync::default();
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        group.push(more);
                    }
                    let writes = group.iter().any(|j| j.operations > 0);
                    let result = if writes {
                        db.flush()
                            .map_err(err)
                            .and_then(|_| files.sync(&dir))
                            .map_err(|e| e.0)
                    } else {
                        Ok(0)
                    };
                    for job in group {
                        let done = match &result {
                            Ok(files_synced) => Ok(CommitStats {
                                operations: job.operations,
                                files_synced: *files_synced,
                                micros: u64::try_from(job.started.elapsed().as_micros())
                                    .unwrap_or(u64::MAX),
                            }),
                            Err(e) => Err(StoreError(e.clone())),
                        };
                        (job.on_durable)(done);
                    }
                }
            })
            .map_err(|e| StoreError(format!("cannot start the sync thread: {e}")))?;
        Ok(Syncer {
            jobs,
            thread: Some(thread),
        })
    }
}

impl Drop for SledStore {
    /// Waits for the groups still being synced.
    fn drop(&mut self) {
        if let Some(mut syncer) = self.syncer.take() {
            drop(syncer.jobs);
            if let Some(t) = syncer.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// The timer index in memory: the timers of every `w` record read so far that have not fired
/// (and the new ones they cover), and the records read, to be removed once all of theirs
/// did. Refills read the index on from `cursor`, never from the start.
///
/// Why a head entry may fire: records are read in key order, (least wake, number), so every
/// timer in an unread record wakes at or after `frontier` (the least wake of the next one);
/// a timer of the head at or before it is the earliest there is (a tie is the same second).
/// Entries are not removed from records when a timer moves or goes: a contact whose state no
/// longer waits for that instant is skipped when its entry comes up
/// ([`SledStore::next_live_due`]).
#[derive(Debug, Default)]
struct TimerHead {
    head: BTreeSet<(Instant, String)>,
    /// The key of the last record read.
    cursor: Option<Vec<u8>>,
    /// The least wake of the next record after `cursor` (`None`: none, or not looked yet).
    frontier: Option<Instant>,
    exhausted: bool,
    /// Records read (or written already covered by the head), by their greatest wake: removed
    /// in the first group after every timer up to it left the head.
    read: BTreeSet<(Instant, Vec<u8>)>,
    /// Timers set in the open group: the ones the head covers, and the others, by bucket.
    open_covered: BTreeSet<(Instant, String)>,
    open_later: BTreeSet<(Instant, String)>,
    /// The number of the next record.
    next_record: u64,
    /// Contacts waiting (states with a wake), on disk or in the open batch.
    count: usize,
    /// The count last written to the store (`TIMER_COUNT`).
    stored_count: usize,
}

impl TimerHead {
    /// Whether a timer at `t` may be handed out: no unread record holds an earlier one.
    fn firable(&self, t: Instant) -> bool {
        self.exhausted || self.frontier.is_some_and(|f| t <= f)
    }
}

impl SledStore {
    /// Opens (or creates) the store in `dir`; a new store is not compressed.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        SledStore::open_with(dir, false)
    }

    /// Opens (or creates) the store in `dir`; a new one compresses its log with zstd when
    /// `compress` (`[store] compression`): about half the disk, at a large cost in CPU
    /// (sled compresses every page write with a fresh zstd context; docs/performance.md). An
    /// existing store keeps what it was created with.
    pub fn open_with(dir: &Path, compress: bool) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create `{}`: {e}", dir.display())))?;
        let config = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .cache_capacity(256 * 1024 * 1024)
            .use_compression(compressed(dir, compress))
            .compression_factor(1);
        let db = open_locked(&config, dir)?;
        let next_history = match db.scan_prefix([HISTORY]).next_back() {
            Some(Ok((k, v))) => be_u64(&k[1..]).map_or(0, |first| {
                first + history_records(&plain_history(&v)).count() as u64
            }),
            Some(Err(e)) => return Err(err(e)),
            None => 0,
        };
        // The number of waiting contacts and of the next `w` record are kept with every group
        // that changes them (so a cold start with a million waiting instances does not count
        // them); a store written before that is counted once. `t` keys of older stores are
        // moved into `w` records first.
        migrate_timer_keys(&db)?;
        let (count, next_record) = match db.get(key(META, TIMER_COUNT.as_bytes())).map_err(err)? {
            Some(v) => (
                be_u64(&v).map_or(0, |n| n as usize),
                v.get(8..).and_then(be_u64).unwrap_or(0),
            ),
            None => (0, 0),
        };
        let next_due_now = match db.scan_prefix([OUTBOX_NOW]).keys().next_back() {
            Some(k) => be_u64(&k.map_err(err)?[1..]).map_or(0, |n| n + 1),
            None => 0,
        };
        let outbox_keys = match db.scan_prefix([OUTBOX]).keys().next() {
            Some(k) => k.map(|_| true).map_err(err)?,
            None => false,
        };
        let syncer = Some(Syncer::start(db.clone(), dir.to_path_buf())?);
        let mut store = SledStore {
            db,
            batch: sled::Batch::default(),
            batch_ops: 0,
            overlay: HashMap::new(),
            seen_overlay: Default::default(),
            seen: SeenIds::default(),
            timers: TimerHead {
                count,
                next_record,
                stored_count: usize::MAX,
                ..TimerHead::default()
            },
            next_history,
            history_chunk: HistoryChunk::default(),
            syncer,
            now: 0,
            last_commit: CommitStats::default(),
            due_now: DueNow {
                next: next_due_now,
                ..DueNow::default()
            },
            outbox_overlay: HashMap::new(),
            outbox_keys,
            outbox_error: None,
        };
        store.refill()?;
        store.seen.load(&store.db)?;
        Ok(store)
    }

    /// Sets how long an applied `messageId` is remembered (`[store] dedupe_days`, in seconds;
    /// `None`: forever, which is also what a store does until told). With a window, the ids
    /// first seen in a group are written as one `d` chunk and held in memory as 64-bit
    /// hashes (about 20–36 B of RAM per id in the window, no key of their own on disk); kept
    /// forever, each gets an `m` key, as before the chunks (memory stays bounded).
    pub fn set_dedupe_window(&mut self, window: Option<i64>) {
        self.seen.window = window;
    }

    /// Sets the clock the store stamps `messageId`s with (the daemon's wall clock, once per
    /// group; the store itself reads no clock).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// A handle for the background compaction ([`Compactor`]).
    pub fn compactor(&self) -> Compactor {
        Compactor {
            db: self.db.clone(),
        }
    }

    /// A handle for other threads to read what is committed.
    pub fn reader(&self) -> StoreReader {
        StoreReader {
            db: self.db.clone(),
        }
    }

    /// Operations waiting for [`SledStore::commit`].
    pub fn pending_operations(&self) -> usize {
        self.batch_ops
    }

    /// Timers in the index.
    pub fn timers_pending(&self) -> usize {
        self.timers.count
    }

    /// Writes the open group in one atomic batch and makes it durable; returns once it is.
    /// (The daemon's core uses [`SledStore::commit_then`], which does the same without
    /// waiting.)
    pub fn commit(&mut self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.commit_then(Box::new(move |result| {
            let _ = tx.send(result);
        }))?;
        let stats = rx
            .recv()
            .map_err(|_| StoreError("the sync thread stopped".into()))??;
        self.last_commit = stats;
        Ok(())
    }

    /// Writes the open group in one atomic batch now, and calls `on_durable` on the store's
    /// sync thread once it is durable (or could not be made so), so that the caller can go on
    /// with the next group while the disk syncs this one.
    ///
    /// What is done, exactly: `Tree::apply_batch` here (atomic: after a crash all of the group
    /// or none of it is there; readers of this store see it at once). Then, on the sync thread,
    /// in commit order: `Db::flush` (sled writes its log buffers to the `db` file and calls
    /// `sync_file_range`, which is not a durability barrier: sled issue #1452), `fdatasync` of
    /// the `db` file, `fsync` of every other file in the directory that changed since the last
    /// sync (`conf`, `snap.*`, files under `blobs/`), and `fsync` of the directory (and of
    /// `blobs/`) when a file appeared or went away. Only then is `on_durable` called, and only
    /// then may the caller acknowledge anything of the group. Groups that queue up while a
    /// sync runs share the next one (one flush and one `fdatasync` for all of them); callbacks
    /// run in commit order, so a group is never reported durable before an earlier one. At
    /// most [`SYNC_QUEUE`] groups wait for the disk: the next commit blocks until one is done.
    pub fn commit_then(&mut self, on_durable: OnDurable) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        if let Some(e) = self.outbox_error.take() {
            return Err(e);
        }
        self.flush_history();
        self.flush_due_now();
        self.flush_outbox();
        if let Some((k, v)) = self.seen.close_chunk(self.now) {
            self.batch.insert(k, v);
        }
        let new_records = self.flush_timers();
        if self.batch_ops > 0 && (new_records || self.timers.count != self.timers.stored_count) {
            let mut value = (self.timers.count as u64).to_be_bytes().to_vec();
            value.extend_from_slice(&self.timers.next_record.to_be_bytes());
            self.put(key(META, TIMER_COUNT.as_bytes()), value);
            self.timers.stored_count = self.timers.count;
        }
        let operations = self.batch_ops;
        if operations > 0 {
            let batch = std::mem::take(&mut self.batch);
            self.db.apply_batch(batch).map_err(err)?;
            self.batch_ops = 0;
        }
        self.overlay.clear();
        self.seen_overlay.clear();
        let blocked = self
            .timers
            .head
            .first()
            .is_some_and(|(t, _)| !self.timers.firable(*t));
        if (self.timers.head.len() < HEAD_LOW || blocked) && !self.timers.exhausted {
            self.refill()?;
        }
        let job = SyncJob {
            operations,
            started,
            on_durable,
        };
        match &self.syncer {
            Some(s) => s
                .jobs
                .send(job)
                .map_err(|_| StoreError("the sync thread stopped".into())),
            None => Err(StoreError("the store is closed".into())),
        }
    }

    /// Writes bytes that do not decode as a state under `contact`, committed (for tests of
    /// what reads every state).
    #[cfg(test)]
    pub(crate) fn put_undecodable_state(&mut self, contact: &str) {
        self.db
            .insert(key(CONTACT, contact.as_bytes()), &[PACKED, 0xff, 0xff][..])
            .unwrap();
    }

    /// Puts metadata (in the open group).
    pub fn put_meta(&mut self, name: &str, value: &[u8]) {
        self.put(key(META, name.as_bytes()), value.to_vec());
    }

    /// Reads metadata (committed or in the open group is not distinguished: metadata is read at
    /// start-up).
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(key(META, name.as_bytes()))
            .map_err(err)?
            .map(|v| v.to_vec()))
    }

    /// Appends one applied record (the caller's bytes) to the history log: the records of a
    /// group go into chunks of about [`HISTORY_CHUNK`] bytes, one key each (see the layout).
    pub fn append_history(&mut self, record: &[u8]) {
        let chunk = &mut self.history_chunk;
        if chunk.records == 0 {
            chunk.first = self.next_history;
            chunk.bytes.clear();
            chunk.bytes.extend_from_slice(&[PACKED, PLAIN_CHUNK]);
            // The key the chunk will be written to.
            self.batch_ops += 1;
        }
        push_varint(&mut chunk.bytes, record.len());
        chunk.bytes.extend_from_slice(record);
        chunk.records += 1;
        self.next_history += 1;
        if chunk.bytes.len() >= HISTORY_CHUNK {
            self.flush_history();
        }
    }

    /// Puts the open history chunk into the batch (its operation was counted when it was
    /// opened). A chunk of one record is written as the record alone, as before chunks.
    fn flush_history(&mut self) {
        let chunk = &mut self.history_chunk;
        if chunk.records == 0 {
            return;
        }
        let value = if chunk.records == 1 {
            let (len, at) = read_varint(&chunk.bytes, 2).unwrap_or((0, 2));
            chunk.bytes[at..at + len].to_vec()
        } else {
            squeeze_history(&chunk.bytes)
        };
        chunk.records = 0;
        self.batch
            .insert(key(HISTORY, &chunk.first.to_be_bytes()), value);
    }

    /// Writes an outbox entry; with `due`, queues it for dispatch at that instant (and takes
    /// it off the dispatch queue at `was_due`).
    ///
    /// A new entry (no `was_due`) due by the group's now ([`SledStore::set_now`]) gets no `q`
    /// key: it is listed in the open group's `p` record, written in the same batch (one key
    /// for all of them). Taking such an entry off the queue (its outcome written) removes
    /// nothing of its own: the `p` record goes in the group in which its last entry settles.
    /// Other entries (due later, retries) get a `q` key as before.
    ///
    /// The entry goes into its contact's `e` record, read once per group (the open group's
    /// copy first) and written once at the commit however many of its entries changed; an
    /// entry of an older store's `o` key is rewritten there. A read error here makes the
    /// group's commit fail.
    pub fn put_outbox(
        &mut self,
        contact: &str,
        idempotency_key: &str,
        entry: &[u8],
        was_due: Option<Instant>,
        due: Option<Instant>,
    ) {
        let id = outbox_id(contact, idempotency_key);
        if let Some(t) = was_due {
            match self.due_now.listed.remove(&id) {
                Some(record) => self.settle_due_now(record),
                None => self.remove(due_key(t, &id)),
            }
        }
        match due {
            Some(t) if was_due.is_none() && t <= self.now => self.list_due_now(id.clone()),
            Some(t) => self.put(due_key(t, &id), Vec::new()),
            None => {}
        }
        self.write_outbox(contact, idempotency_key.as_bytes(), &id, entry);
    }

    /// Puts an entry into the open group's copy of its contact's `e` record (read from the
    /// store the first time in the group), or into its `o` key when an older store has it
    /// there.
    fn write_outbox(&mut self, contact: &str, idempotency_key: &[u8], id: &[u8], entry: &[u8]) {
        let read = match self.outbox_overlay.get(contact) {
            Some(_) => None,
            None => match self.db.get(key(OUTBOX_RECORD, contact.as_bytes())) {
                Ok(v) => Some(v.map(|v| v.to_vec()).unwrap_or_default()),
                Err(e) => {
                    self.outbox_error.get_or_insert(err(e));
                    return;
                }
            },
        };
        if self.outbox_keys {
            let record = read
                .as_deref()
                .or_else(|| self.outbox_overlay.get(contact).map(Vec::as_slice))
                .unwrap_or_default();
            if record_find(record, idempotency_key).is_err() {
                match self.db.get(key(OUTBOX, id)) {
                    Ok(Some(_)) => {
                        self.put(key(OUTBOX, id), entry.to_vec());
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.outbox_error.get_or_insert(err(e));
                        return;
                    }
                }
            }
        }
        let record = match read {
            Some(read) => {
                // The key the record will be written to.
                self.batch_ops += 1;
                self.outbox_overlay
                    .entry(contact.to_string())
                    .or_insert(read)
            }
            None => match self.outbox_overlay.get_mut(contact) {
                Some(record) => record,
                None => return,
            },
        };
        record_put(record, idempotency_key, entry);
    }

    /// Puts the `e` records the open group wrote into the batch (their operations were
    /// counted when they were first written).
    fn flush_outbox(&mut self) {
        for (contact, record) in self.outbox_overlay.drain() {
            self.batch
                .insert(key(OUTBOX_RECORD, contact.as_bytes()), record);
        }
    }

    /// Lists a new entry due at once in the open group's `p` record.
    fn list_due_now(&mut self, id: Vec<u8>) {
        let open = self.due_now.next;
        match self.due_now.listed.get(&id) {
            Some(record) if *record == open => return,
            // Decided again (same id): it is listed in this group's record now.
            Some(record) => {
                let record = *record;
                self.settle_due_now(record);
            }
            None => {}
        }
        if self.due_now.open.is_empty() {
            // The key the record will be written to.
            self.batch_ops += 1;
        }
        push_varint(&mut self.due_now.open, id.len());
        self.due_now.open.extend_from_slice(&id);
        *self.due_now.unsettled.entry(open).or_insert(0) += 1;
        self.due_now.listed.insert(id, open);
    }

    /// One entry of `p` record `record` settled; the record goes with its last one.
    fn settle_due_now(&mut self, record: u64) {
        let Some(n) = self.due_now.unsettled.get_mut(&record) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.due_now.unsettled.remove(&record);
            if record != self.due_now.next {
                self.remove(key(OUTBOX_NOW, &record.to_be_bytes()));
            }
        }
    }

    /// Puts the open group's `p` record into the batch (its operation was counted when it
    /// was opened); a record all of whose entries settled in this same group is not written.
    fn flush_due_now(&mut self) {
        if self.due_now.open.is_empty() {
            return;
        }
        let record = self.due_now.next;
        let value = std::mem::take(&mut self.due_now.open);
        if self.due_now.unsettled.contains_key(&record) {
            self.batch
                .insert(key(OUTBOX_NOW, &record.to_be_bytes()), value);
        }
        self.due_now.next += 1;
    }

    /// The queue to dispatch at start-up, by due time: (due, contact, idempotency key): every
    /// `q` key, and every entry listed in a `p` record for which `pending` (the caller reads
    /// its bytes) gives a due time (missing and settled entries are skipped). A `p` record
    /// with no pending entry left is removed (in the open group). Rebuilds what
    /// [`SledStore::put_outbox`] needs to settle the listed entries; call it once, before
    /// any outbox write.
    pub fn outbox_start(
        &mut self,
        pending: &dyn Fn(&[u8]) -> Option<Instant>,
    ) -> Result<Vec<(Instant, String, String)>, StoreError> {
        let mut queue = self.outbox_queue()?;
        let mut empty = Vec::new();
        for item in self.db.scan_prefix([OUTBOX_NOW]) {
            let (k, v) = item.map_err(err)?;
            let Some(record) = be_u64(&k[1..]) else {
                continue;
            };
            let mut unsettled = 0;
            for id in listed_ids(&v) {
                let Some((contact, key)) = split_outbox_id(id) else {
                    continue;
                };
                let Some(t) = self.outbox_entry(&contact, &key)?.and_then(|b| pending(&b)) else {
                    continue;
                };
                if self.due_now.listed.insert(id.to_vec(), record).is_none() {
                    unsettled += 1;
                }
                queue.push((t, contact, key));
            }
            if unsettled == 0 {
                empty.push(k.to_vec());
            } else {
                self.due_now.unsettled.insert(record, unsettled);
            }
        }
        for k in empty {
            self.remove(k);
        }
        queue.sort();
        queue.dedup();
        Ok(queue)
    }

    /// An outbox entry: from its contact's `e` record as the open group wrote it, else as
    /// committed; else (older stores) from its committed `o` key.
    pub fn outbox_entry(
        &self,
        contact: &str,
        idempotency_key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let k = idempotency_key.as_bytes();
        let found = match self.outbox_overlay.get(contact) {
            Some(record) => record_entry(record, k).map(<[u8]>::to_vec),
            None => self
                .db
                .get(key(OUTBOX_RECORD, contact.as_bytes()))
                .map_err(err)?
                .and_then(|record| record_entry(&record, k).map(<[u8]>::to_vec)),
        };
        if found.is_some() || !self.outbox_keys {
            return Ok(found);
        }
        let id = outbox_id(contact, idempotency_key);
        Ok(self
            .db
            .get(key(OUTBOX, &id))
            .map_err(err)?
            .map(|v| v.to_vec()))
    }

    /// The outbox entries with a `q` key, by due time: (due, contact, idempotency key). The
    /// daemon reads its queue once at start-up with [`SledStore::outbox_start`] (these and
    /// the pending entries of `p` records) and keeps it in memory afterwards.
    pub fn outbox_queue(&self) -> Result<Vec<(Instant, String, String)>, StoreError> {
        let mut queue = Vec::new();
        for item in self.db.scan_prefix([OUTBOX_DUE]) {
            let (k, _) = item.map_err(err)?;
            let Some(t) = k.get(1..9).and_then(be_u64).map(from_ordered) else {
                continue;
            };
            let id = &k[9..];
            if let Some((contact, key)) = split_outbox_id(id) {
                queue.push((t, contact, key));
            }
        }
        Ok(queue)
    }

    /// Runs `f` on every contact's state (schedule ticks), in key order, starting after
    /// `after`; stops after `limit` contacts and returns the last one visited.
    pub fn update_contacts_after(
        &mut self,
        after: Option<&str>,
        limit: usize,
        mut f: impl FnMut(&str, &mut ContactState),
    ) -> Result<Option<String>, StoreError> {
        let start = match after {
            Some(a) => {
                let mut k = key(CONTACT, a.as_bytes());
                k.push(0);
                k
            }
            None => vec![CONTACT],
        };
        let mut names = Vec::new();
        for item in self.db.range(start..).keys() {
            let k = item.map_err(err)?;
            if k.first() != Some(&CONTACT) {
                break;
            }
            names.push(String::from_utf8_lossy(&k[1..]).to_string());
            if names.len() >= limit {
                break;
            }
        }
        for name in &names {
            self.update(name, |state| f(name, state))?;
        }
        Ok(names.pop())
    }

    fn put(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.batch.insert(k, v);
        self.batch_ops += 1;
    }

    fn remove(&mut self, k: Vec<u8>) {
        self.batch.remove(k);
        self.batch_ops += 1;
    }

    fn committed_state(&self, contact: &str) -> Result<Option<ContactState>, StoreError> {
        match self.db.get(key(CONTACT, contact.as_bytes())).map_err(err)? {
            None => Ok(None),
            Some(bytes) => decode_state(&bytes).map(Some),
        }
    }

    fn set_timer(&mut self, contact: &str, old: Option<Instant>, new: Option<Instant>) {
        if old == new {
            return;
        }
        let timers = &mut self.timers;
        if let Some(t) = old {
            // Its entry in a record stays (skipped when it comes up); one of this group goes.
            let entry = (t, contact.to_string());
            timers.head.remove(&entry);
            timers.open_covered.remove(&entry);
            timers.open_later.remove(&entry);
            timers.count = timers.count.saturating_sub(1);
        }
        if let Some(t) = new {
            let entry = (t, contact.to_string());
            if timers.firable(t) {
                timers.head.insert(entry.clone());
                timers.open_covered.insert(entry);
            } else {
                timers.open_later.insert(entry);
            }
            timers.count += 1;
        }
    }

    /// Puts the open group's timers into the batch as `w` records, one per bucket of
    /// [`WAKE_BUCKET`] seconds (and per kind: covered by the head, or not), and removes the
    /// records read whose timers have all left the head. True when it wrote a record.
    fn flush_timers(&mut self) -> bool {
        let covered = std::mem::take(&mut self.timers.open_covered);
        let later = std::mem::take(&mut self.timers.open_later);
        let mut wrote = false;
        for (set, is_covered) in [(covered, true), (later, false)] {
            for (first, last, value) in wake_records(set) {
                let k = wake_key(first, self.timers.next_record);
                self.timers.next_record += 1;
                if is_covered {
                    self.timers.read.insert((last, k.clone()));
                }
                self.put(k, value);
                wrote = true;
            }
        }
        let head_first = self.timers.head.first().map(|(t, _)| *t);
        while let Some((last, _)) = self.timers.read.first() {
            if head_first.is_some_and(|h| h <= *last) {
                break;
            }
            // A record of this very group covered by the head stays until the next one.
            let Some((_, k)) = self.timers.read.pop_first() else {
                break;
            };
            self.remove(k);
        }
        wrote
    }

    /// Reads `w` records on from the cursor into the head (committed keys only: called when no
    /// group is open, at open and after a commit), until the head holds [`HEAD_FILL`] timers
    /// and its first may fire, or the index ends.
    fn refill(&mut self) -> Result<(), StoreError> {
        let start = match &self.timers.cursor {
            Some(c) => {
                let mut s = c.clone();
                s.push(0);
                s
            }
            None => vec![WAKES],
        };
        let timers = &mut self.timers;
        let mut records = self.db.range(start..);
        loop {
            let next = match records.next() {
                Some(item) => Some(item.map_err(err)?),
                None => None,
            };
            let Some((k, v)) = next.filter(|(k, _)| k.first() == Some(&WAKES)) else {
                timers.exhausted = true;
                timers.frontier = None;
                return Ok(());
            };
            let Some(first) = k.get(1..9).and_then(be_u64).map(from_ordered) else {
                continue;
            };
            let entries: Vec<(Instant, String)> = wake_entries(&v)
                .map(|(offset, contact)| (first.saturating_add(offset as i64), contact))
                .collect();
            let last = entries.iter().map(|(t, _)| *t).max().unwrap_or(first);
            // A record this store wrote covered by the head is in `read` already: its timers
            // are in the head, and it bounds nothing.
            if timers.read.contains(&(last, k.to_vec())) {
                timers.cursor = Some(k.to_vec());
                continue;
            }
            let full = timers.head.len() >= HEAD_FILL
                && timers.head.first().is_some_and(|(t, _)| *t <= first);
            if full {
                timers.frontier = Some(first);
                return Ok(());
            }
            timers.read.insert((last, k.to_vec()));
            timers.head.extend(entries);
            timers.cursor = Some(k.to_vec());
        }
    }

    /// The earliest timer that may fire whose contact still waits for it: entries of contacts
    /// that moved on (an event changed or ended their wait) are dropped from the head on the
    /// way. The state read is kept for the [`Store::update`] that fires it.
    pub fn next_live_due(&mut self) -> Result<Option<(Instant, String)>, StoreError> {
        loop {
            // Skipped entries change nothing, so a head they emptied (or left with a first
            // timer that may not fire yet) is read on here when no group is open: no commit
            // may follow to do it.
            let stuck = self
                .timers
                .head
                .first()
                .map_or(true, |(t, _)| !self.timers.firable(*t));
            if stuck && !self.timers.exhausted && self.batch_ops == 0 {
                self.refill()?;
            }
            let Some((t, contact)) = self.timers.head.first().cloned() else {
                return Ok(None);
            };
            if !self.timers.firable(t) {
                return Ok(None);
            }
            let live = match self.overlay.get(&contact) {
                Some(state) => state.wake == Some(t),
                None => match self.committed_state(&contact)? {
                    Some(state) if state.wake == Some(t) => {
                        self.overlay.insert(contact.clone(), state);
                        true
                    }
                    _ => false,
                },
            };
            if live {
                return Ok(Some((t, contact)));
            }
            self.timers.head.remove(&(t, contact));
        }
    }
}

impl Store for SledStore {
    fn load(&mut self, contact: &str) -> Result<Option<ContactState>, StoreError> {
        if let Some(state) = self.overlay.get(contact) {
            return Ok(Some(state.clone()));
        }
        self.committed_state(contact)
    }

    fn save(&mut self, contact: &str, state: &ContactState) -> Result<(), StoreError> {
        let old = self.load(contact)?.and_then(|s| s.wake);
        self.write_state(contact, old, state)
    }

    fn update<R>(
        &mut self,
        contact: &str,
        f: impl FnOnce(&mut ContactState) -> R,
    ) -> Result<R, StoreError> {
        let mut state = self.load(contact)?.unwrap_or_default();
        let old = state.wake;
        let result = f(&mut state);
        self.write_state(contact, old, &state)?;
        Ok(result)
    }

    /// The earliest timer that may fire (its contact may have moved on since: the daemon
    /// fires through [`SledStore::next_live_due`]).
    fn next_due(&self) -> Option<(Instant, String)> {
        self.timers
            .head
            .first()
            .filter(|(t, _)| self.timers.firable(*t))
            .cloned()
    }

    fn first_seen(&mut self, message_id: &str) -> Result<bool, StoreError> {
        let hash = message_hash(message_id);
        if self.seen.holds(hash, self.now) || self.seen_overlay.contains(message_id) {
            return Ok(false);
        }
        let k = key(SEEN, message_id.as_bytes());
        if self.seen.per_id_keys() && self.db.contains_key(&k).map_err(err)? {
            return Ok(false);
        }
        if self.seen.window.is_some() {
            if self.seen.remember(hash, self.now) {
                // The key the group's chunk will be written to.
                self.batch_ops += 1;
            }
        } else {
            self.seen_overlay.insert(message_id.to_string());
            self.put(k, seen_value(self.now));
            self.seen.per_id = true;
        }
        Ok(true)
    }

    fn contacts(&self) -> Vec<String> {
        self.db
            .scan_prefix([CONTACT])
            .keys()
            .filter_map(Result::ok)
            .map(|k| String::from_utf8_lossy(&k[1..]).to_string())
            .collect()
    }

    fn any_pending(&self) -> bool {
        self.timers.count > 0
    }
}

impl SledStore {
    fn write_state(
        &mut self,
        contact: &str,
        old_wake: Option<Instant>,
        state: &ContactState,
    ) -> Result<(), StoreError> {
        let bytes = encode_state(state)?;
        self.put(key(CONTACT, contact.as_bytes()), bytes);
        self.set_timer(contact, old_wake, state.wake);
        self.overlay.insert(contact.to_string(), state.clone());
        Ok(())
    }
}

/// Read access to the committed store from other threads (admin endpoints).
#[derive(Clone)]
pub struct StoreReader {
    db: sled::Db,
}

impl StoreReader {
    /// A contact's committed state.
    pub fn contact(&self, contact: &str) -> Result<Option<ContactState>, StoreError> {
        match self.db.get(key(CONTACT, contact.as_bytes())).map_err(err)? {
            None => Ok(None),
            Some(bytes) => decode_state(&bytes).map(Some),
        }
    }

    /// A contact's committed outbox entries (the caller's bytes), in idempotency-key order:
    /// its `e` record's and (older stores) its `o` keys'.
    pub fn outbox_of(&self, contact: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if let Some(record) = self
            .db
            .get(key(OUTBOX_RECORD, contact.as_bytes()))
            .map_err(err)?
        {
            entries.extend(record_items(&record).map(|(k, e, _)| (k.to_vec(), e.to_vec())));
        }
        let mut prefix = key(OUTBOX, contact.as_bytes());
        prefix.push(0);
        for item in self.db.scan_prefix(&prefix) {
            let (k, v) = item.map_err(err)?;
            entries.push((k[prefix.len()..].to_vec(), v.to_vec()));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries.into_iter().map(|(_, e)| e).collect())
    }

    /// Every contact state (for `/v1/flows`), decoded one at a time.
    pub fn each_contact(&self, mut f: impl FnMut(&str, &ContactState)) -> Result<(), StoreError> {
        for item in self.db.scan_prefix([CONTACT]) {
            let (k, v) = item.map_err(err)?;
            let state = decode_state(&v)?;
            f(&String::from_utf8_lossy(&k[1..]), &state);
        }
        Ok(())
    }

    /// Committed metadata.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(key(META, name.as_bytes()))
            .map_err(err)?
            .map(|v| v.to_vec()))
    }

    /// Committed metadata whose name starts with `prefix`, in name order.
    pub fn meta_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.db
            .scan_prefix(key(META, prefix.as_bytes()))
            .map(|item| {
                let (k, v) = item.map_err(err)?;
                Ok((String::from_utf8_lossy(&k[1..]).to_string(), v.to_vec()))
            })
            .collect()
    }

    /// Records of the history log (sequence number, the caller's bytes), oldest first, from
    /// sequence `from`, at most `limit`.
    pub fn history(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut start = key(HISTORY, &from.to_be_bytes());
        // The chunk holding `from` may start before it.
        if let Some(item) = self.db.range(vec![HISTORY]..=start.clone()).next_back() {
            start = item.map_err(err)?.0.to_vec();
        }
        let mut out = Vec::new();
        // The next sequence number wanted: a chunk the compactor is rewriting at this moment
        // (its records from the first one kept, under a later key) may be seen twice.
        let mut next = from;
        for item in self.db.range(start..) {
            let (k, v) = item.map_err(err)?;
            if k.first() != Some(&HISTORY) {
                break;
            }
            let first = be_u64(&k[1..]).unwrap_or(0);
            for (i, record) in history_records(&plain_history(&v)).enumerate() {
                let seq = first + i as u64;
                if seq < next {
                    continue;
                }
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push((seq, record.to_vec()));
                next = seq + 1;
            }
        }
        Ok(out)
    }

    /// Bytes on disk (sled's own estimate).
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// The records of a group not yet written: `first` is the sequence number of the first,
/// `bytes` the chunk as it will be stored.
#[derive(Debug, Default)]
struct HistoryChunk {
    first: u64,
    records: usize,
    bytes: Vec<u8>,
}

/// The `messageId`s of the dedupe window: their 64-bit hashes in memory, with the instant
/// each was first seen (an id older than the window is new again, whenever the compactor
/// removes its chunk), and the open group's chunk. Two different ids collide with
/// probability about n² / 2^65 for n ids in the window (one in 300,000 at ten million ids):
/// the later one would be taken for a resend.
#[derive(Default)]
struct SeenIds {
    /// `[store] dedupe_days` in seconds; `None`: forever (per-id `m` keys, not held here).
    window: Option<i64>,
    /// First-seen seconds by hash, of every id in a `d` chunk (and the open group's).
    first_seen: HashMap<u64, i64>,
    /// Whether the store may hold `m` keys (written by older versions, or with no window).
    per_id: bool,
    /// The number of the next chunk.
    next: u64,
    /// The open group's chunk: the hashes after the 8-byte instant.
    open: Vec<u8>,
    /// The store's now when the memory was last pruned.
    pruned_at: i64,
    /// The size of `first_seen` after the last prune.
    pruned_len: usize,
}

impl SeenIds {
    /// Reads every `d` chunk into memory (the compactor removes them once out of the window)
    /// and notes whether `m` keys exist.
    fn load(&mut self, db: &sled::Db) -> Result<(), StoreError> {
        for item in db.scan_prefix([SEEN_CHUNK]) {
            let (k, v) = item.map_err(err)?;
            let Some(t) = be_u64(&v).map(|t| t as i64) else {
                continue;
            };
            for hash in chunk_hashes(&v) {
                let seen = self.first_seen.entry(hash).or_insert(t);
                *seen = (*seen).max(t);
            }
            self.next = be_u64(&k[1..]).map_or(self.next, |n| n + 1);
        }
        self.pruned_len = self.first_seen.len();
        self.per_id = db.scan_prefix([SEEN]).next().is_some();
        Ok(())
    }

    /// Whether `hash` was first seen inside the window before `now`.
    fn holds(&self, hash: u64, now: i64) -> bool {
        self.first_seen
            .get(&hash)
            .is_some_and(|t| self.window.map_or(true, |w| *t > now - w))
    }

    /// Whether ids may have `m` keys of their own.
    fn per_id_keys(&self) -> bool {
        self.per_id || self.window.is_none()
    }

    /// Notes an id first seen at `now` in the open chunk; true when that opens the chunk.
    fn remember(&mut self, hash: u64, now: i64) -> bool {
        self.first_seen.insert(hash, now);
        let opened = self.open.is_empty();
        if opened {
            self.open.extend_from_slice(&now.to_be_bytes());
        }
        self.open.extend_from_slice(&hash.to_be_bytes());
        opened
    }

    /// The open chunk's key and value, if it holds any id (its operation was counted when
    /// it was opened); forgets, now and then, the ids that left the window.
    fn close_chunk(&mut self, now: i64) -> Option<(Vec<u8>, Vec<u8>)> {
        if let Some(w) = self.window {
            let grown = self.first_seen.len() > 2 * self.pruned_len.max(4096);
            if grown || now - self.pruned_at >= 3_600 {
                self.first_seen.retain(|_, t| *t > now - w);
                self.pruned_at = now;
                self.pruned_len = self.first_seen.len();
            }
        }
        if self.open.is_empty() {
            return None;
        }
        let k = key(SEEN_CHUNK, &self.next.to_be_bytes());
        self.next += 1;
        Some((k, std::mem::take(&mut self.open)))
    }
}

/// The hashes of a `d` chunk's value (after its 8-byte instant).
fn chunk_hashes(value: &[u8]) -> impl Iterator<Item = u64> + '_ {
    value
        .get(8..)
        .unwrap_or_default()
        .chunks_exact(8)
        .filter_map(|h| h.try_into().ok().map(u64::from_be_bytes))
}

/// The hash a `messageId` is remembered by in a `d` chunk: SipHash-1-3 with fixed keys,
/// a specified function, so the same on every build (std's `DefaultHasher` is not promised
/// to stay so).
fn message_hash(message_id: &str) -> u64 {
    use std::hash::Hasher;
    let mut h =
        siphasher::sip::SipHasher13::new_with_keys(0x666c_6f77_635f_6d69, 0x645f_6465_6475_7065);
    h.write(message_id.as_bytes());
    h.finish()
}

/// The size (uncompressed) from which a history chunk is closed and a new one opened: about
/// one group of small records (a group holds up to 200); compressed, a chunk stays far under
/// sled's inline limit (values above a quarter of a segment, 128 KiB, go to `blobs/`). At
/// 100,000 bench carts, 16 KiB gave 326 B per waiting instance, 4 KiB 345 B, 64 KiB 326 B.
const HISTORY_CHUNK: usize = 16 * 1024;

/// The second byte of a history chunk (after [`PACKED`]): its records as they are, or
/// compressed with zstd.
const PLAIN_CHUNK: u8 = 0;
const ZSTD_CHUNK: u8 = 1;

/// A plain chunk ([`PACKED`], [`PLAIN_CHUNK`], records) as stored: the records compressed
/// with zstd (level 1) behind [`PACKED`], [`ZSTD_CHUNK`] when that is smaller (the records of
/// a group share their layout, event names, property names), else as it is.
fn squeeze_history(plain: &[u8]) -> Vec<u8> {
    match zstd::block::compress(&plain[2..], 1) {
        Ok(z) if z.len() + 2 < plain.len() => {
            let mut out = Vec::with_capacity(z.len() + 2);
            out.push(PACKED);
            out.push(ZSTD_CHUNK);
            out.extend_from_slice(&z);
            out
        }
        _ => plain.to_vec(),
    }
}

/// How `records` are stored under one key: a record alone, or a (squeezed) chunk.
fn history_value(records: &[&[u8]]) -> Vec<u8> {
    if let [one] = records {
        return one.to_vec();
    }
    let mut plain = vec![PACKED, PLAIN_CHUNK];
    for r in records {
        push_varint(&mut plain, r.len());
        plain.extend_from_slice(r);
    }
    squeeze_history(&plain)
}

/// A stored history value in the plain form [`history_records`] reads (a compressed chunk
/// decompressed; an undecodable one as no records).
fn plain_history(value: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match value {
        [PACKED, ZSTD_CHUNK, z @ ..] => {
            let mut plain = vec![PACKED, PLAIN_CHUNK];
            match zstd::stream::copy_decode(z, &mut plain) {
                Ok(()) => std::borrow::Cow::Owned(plain),
                Err(_) => std::borrow::Cow::Owned(vec![PACKED, PLAIN_CHUNK]),
            }
        }
        _ => std::borrow::Cow::Borrowed(value),
    }
}

/// The records in one plain history value ([`plain_history`]): a chunk ([`PACKED`],
/// [`PLAIN_CHUNK`], then each record as its length in LEB128 and its bytes), or one record
/// alone (stores written before chunks; chunks of one). A chunk of a kind this version does
/// not know has no records.
fn history_records(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let chunked = value.first() == Some(&PACKED);
    let mut at = if value.get(1) == Some(&PLAIN_CHUNK) {
        2
    } else {
        value.len()
    };
    let mut single = (!chunked).then_some(value);
    std::iter::from_fn(move || {
        if let Some(one) = single.take() {
            return Some(one);
        }
        if !chunked || at >= value.len() {
            return None;
        }
        let (len, start) = read_varint(value, at)?;
        let record = value.get(start..start.checked_add(len)?)?;
        at = start + len;
        Some(record)
    })
}

fn push_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A LEB128 number at `at`: (the number, where what follows it starts).
fn read_varint(bytes: &[u8], mut at: usize) -> Option<(usize, usize)> {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let b = *bytes.get(at)?;
        at += 1;
        n |= usize::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some((n, at));
        }
        shift += 7;
        if shift > 35 {
            return None;
        }
    }
}

/// The first byte of a contact state with numbered field names, and of a history chunk: `0xc1`
/// is the one byte MessagePack never uses, and no JSON text starts with it, so a value written
/// before these forms (a MessagePack map, a JSON object, a MessagePack array) never starts with
/// it.
const PACKED: u8 = 0xc1;

/// The field names of `ContactState` and of what it holds (instances, past events), numbered
/// by their place here. The list is part of the format: names are only ever appended (at most
/// 32). A name missing here stays a string, so a new field needs no change of the format.
const FIELD_NAMES: [&str; 24] = [
    "traits",
    "withdrawn",
    "withdrawn_all",
    "history",
    "instances",
    "entries",
    "sends",
    "members",
    "goals",
    "next_instance",
    "wake",
    "segment_wake",
    "anniversary_wake",
    "pending",
    "id",
    "flow",
    "state",
    "entered",
    "holdout",
    "holdout_reported",
    "trigger",
    "event",
    "time",
    "properties",
];

/// Encodes a contact state: MessagePack with field names (`rmp_serde::to_vec_named`, which
/// keeps `skip_serializing_if` readable), then every map key that is one of [`FIELD_NAMES`]
/// replaced by its number as a negative fixint (one byte instead of the name), behind the
/// [`PACKED`] byte. A state whose MessagePack has a negative fixint map key of its own (no
/// state does: its maps are keyed by field names and JSON strings) is stored as it is.
pub fn encode_state(state: &ContactState) -> Result<Vec<u8>, StoreError> {
    let named = rmp_serde::to_vec_named(state)
        .map_err(|e| StoreError(format!("cannot encode a state: {e}")))?;
    let mut packed = Vec::with_capacity(named.len());
    packed.push(PACKED);
    match rename_keys(&named, &mut packed, Rename::Pack) {
        Some(_) => Ok(packed),
        None => Ok(named),
    }
}

/// Decodes a contact state, in either form [`encode_state`] writes (and so the named form of
/// stores written before the packed one).
pub fn decode_state(bytes: &[u8]) -> Result<ContactState, StoreError> {
    let bad = |e: String| StoreError(format!("cannot decode a state: {e}"));
    match bytes.split_first() {
        Some((&PACKED, rest)) => {
            let mut named = Vec::with_capacity(rest.len() * 2);
            rename_keys(rest, &mut named, Rename::Unpack)
                .ok_or_else(|| bad("a damaged packed state".into()))?;
            rmp_serde::from_slice(&named).map_err(|e| bad(e.to_string()))
        }
        _ => rmp_serde::from_slice(bytes).map_err(|e| bad(e.to_string())),
    }
}

/// Which way [`rename_keys`] goes.
#[derive(Clone, Copy, PartialEq)]
enum Rename {
    /// Field names to numbers.
    Pack,
    /// Numbers to field names.
    Unpack,
}

/// Copies the one MessagePack value at the start of `input` to `out`, with map keys renamed
/// as `way` says; returns the bytes of `input` it took, `None` when `input` is not
/// MessagePack (or nested deeper than a state ever is) or, packing, a map key is already a
/// negative fixint.
fn rename_keys(input: &[u8], out: &mut Vec<u8>, way: Rename) -> Option<usize> {
    rename_value(input, 0, out, way, 0)
}

/// [`rename_keys`] of the value at `at`: returns where it ends.
fn rename_value(
    input: &[u8],
    at: usize,
    out: &mut Vec<u8>,
    way: Rename,
    depth: usize,
) -> Option<usize> {
    // The common values first: one-byte ones, short strings.
    let b = *input.get(at)?;
    if !(0x80..0xe0).contains(&b) || matches!(b, 0xc0 | 0xc2 | 0xc3) {
        out.push(b);
        return Some(at + 1);
    }
    if (0xa0..=0xbf).contains(&b) {
        let end = at + 1 + usize::from(b & 0x1f);
        out.extend_from_slice(input.get(at..end)?);
        return Some(end);
    }
    let (header, body, children) = value_shape(input, at)?;
    let end = at.checked_add(header)?.checked_add(body)?;
    out.extend_from_slice(input.get(at..end)?);
    let mut at = end;
    match children {
        Children::None => {}
        Children::Array(n) => {
            if depth > 64 {
                return None;
            }
            for _ in 0..n {
                at = rename_value(input, at, out, way, depth + 1)?;
            }
        }
        Children::Map(n) => {
            if depth > 64 {
                return None;
            }
            for _ in 0..n {
                at = rename_key(input, at, out, way)?;
                at = rename_value(input, at, out, way, depth + 1)?;
            }
        }
    }
    Some(at)
}

/// One map key at `at`, renamed: returns where it ends.
fn rename_key(input: &[u8], at: usize, out: &mut Vec<u8>, way: Rename) -> Option<usize> {
    let b = *input.get(at)?;
    match way {
        Rename::Pack => {
            if b >= 0xe0 {
                return None;
            }
            if (0xa0..=0xbf).contains(&b) {
                let len = usize::from(b & 0x1f);
                let name = input.get(at + 1..at + 1 + len)?;
                if let Some(n) = field_number(name) {
                    out.push(0xe0 + n);
                    return Some(at + 1 + len);
                }
            }
        }
        Rename::Unpack => {
            if b >= 0xe0 {
                let name = FIELD_NAMES.get(usize::from(b - 0xe0))?;
                out.push(0xa0 | name.len() as u8);
                out.extend_from_slice(name.as_bytes());
                return Some(at + 1);
            }
        }
    }
    let (header, body, children) = value_shape(input, at)?;
    match children {
        // A map key that is itself a container: copied as a value.
        Children::Array(_) | Children::Map(_) => rename_value(input, at, out, way, 64),
        Children::None => {
            let end = at.checked_add(header)?.checked_add(body)?;
            out.extend_from_slice(input.get(at..end)?);
            Some(end)
        }
    }
}

/// The number of a field name in [`FIELD_NAMES`].
fn field_number(name: &[u8]) -> Option<u8> {
    // Names of one length are few: compare only those.
    FIELD_NAMES
        .iter()
        .position(|f| f.len() == name.len() && f.as_bytes() == name)
        .map(|n| n as u8)
}

/// What follows a MessagePack header.
enum Children {
    None,
    Array(usize),
    Map(usize),
}

/// The MessagePack value at `at`: (header bytes, body bytes, contained values).
fn value_shape(input: &[u8], at: usize) -> Option<(usize, usize, Children)> {
    let b = *input.get(at)?;
    let n = |bytes: usize| -> Option<usize> {
        let s = input.get(at + 1..at + 1 + bytes)?;
        Some(s.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x)))
    };
    Some(match b {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0, Children::None),
        0x80..=0x8f => (1, 0, Children::Map(usize::from(b & 0x0f))),
        0x90..=0x9f => (1, 0, Children::Array(usize::from(b & 0x0f))),
        0xa0..=0xbf => (1, usize::from(b & 0x1f), Children::None),
        0xc4 | 0xd9 => (2, n(1)?, Children::None),
        0xc5 | 0xda => (3, n(2)?, Children::None),
        0xc6 | 0xdb => (5, n(4)?, Children::None),
        0xc7 => (3, n(1)?, Children::None),
        0xc8 => (4, n(2)?, Children::None),
        0xc9 => (6, n(4)?, Children::None),
        0xca => (1, 4, Children::None),
        0xcb => (1, 8, Children::None),
        0xcc | 0xd0 => (1, 1, Children::None),
        0xcd | 0xd1 => (1, 2, Children::None),
        0xce | 0xd2 => (1, 4, Children::None),
        0xcf | 0xd3 => (1, 8, Children::None),
        0xd4 => (2, 1, Children::None),
        0xd5 => (2, 2, Children::None),
        0xd6 => (2, 4, Children::None),
        0xd7 => (2, 8, Children::None),
        0xd8 => (2, 16, Children::None),
        0xdc => (3, 0, Children::Array(n(2)?)),
        0xdd => (5, 0, Children::Array(n(4)?)),
        0xde => (3, 0, Children::Map(n(2)?)),
        0xdf => (5, 0, Children::Map(n(4)?)),
        0xc1 => return None,
    })
}

/// Which files of the sled directory were synced, so that a commit syncs only what changed.
#[derive(Debug, Default)]
struct DirSync {
    db_file: Option<File>,
    seen: HashMap<PathBuf, (u64, Option<std::time::SystemTime>)>,
}

impl DirSync {
    /// `fdatasync` of `db`, `fsync` of changed files, `fsync` of the directories whose listing
    /// changed. Returns how many files were synced.
    fn sync(&mut self, dir: &Path) -> Result<usize, StoreError> {
        let io = |what: &str, e: std::io::Error| StoreError(format!("{what}: {e}"));
        let mut synced = 0;
        if self.db_file.is_none() {
            self.db_file = Some(File::open(dir.join("db")).map_err(|e| io("open db", e))?);
        }
        if let Some(f) = &self.db_file {
            f.sync_data().map_err(|e| io("fdatasync db", e))?;
            synced += 1;
        }
        let mut now: HashMap<PathBuf, (u64, Option<std::time::SystemTime>)> = HashMap::new();
        let mut dirs = vec![dir.to_path_buf()];
        let mut listing_changed = Vec::new();
        while let Some(d) = dirs.pop() {
            let entries = std::fs::read_dir(&d).map_err(|e| io("list the store", e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.file_name().is_some_and(|n| n == "db") {
                    continue;
                }
                let stamp = (meta.len(), meta.modified().ok());
                if self.seen.get(&path) != Some(&stamp) {
                    if !self.seen.contains_key(&path) {
                        listing_changed.push(d.clone());
                    }
                    File::open(&path)
                        .and_then(|f| f.sync_all())
                        .map_err(|e| io("fsync", e))?;
                    synced += 1;
                }
                now.insert(path, stamp);
            }
        }
        if self.seen.keys().any(|k| !now.contains_key(k)) {
            listing_changed.push(dir.to_path_buf());
        }
        if !listing_changed.is_empty() || self.seen.is_empty() {
            listing_changed.push(dir.to_path_buf());
            listing_changed.sort();
            listing_changed.dedup();
            for d in listing_changed {
                File::open(&d)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| io("fsync the directory", e))?;
                synced += 1;
            }
        }
        self.seen = now;
        Ok(synced)
    }
}

/// Whether the store in `dir` compresses its log with zstd: a new store as `new_store` says;
/// an existing one keeps what it was created with (sled's `conf` file says; sled refuses to
/// open a store with the other setting), so a store opens whatever the setting is now.
fn compressed(dir: &Path, new_store: bool) -> bool {
    // The file ends in a binary CRC: read it as bytes.
    match std::fs::read(dir.join("conf")) {
        Ok(bytes) => String::from_utf8_lossy(&bytes)
            .lines()
            .any(|l| l.trim() == "use_compression: true"),
        Err(_) => new_store,
    }
}

/// Removes what retention lets go (`daemon::retention` decides when): old `messageId`s, old
/// history records, finished outbox entries. It runs on its own thread beside the core's
/// groups: every removal is a compare-and-swap against the value it read (so a key the core
/// rewrote in the meantime stays), removals are not synced (one lost in a crash is redone by
/// the next pass), and `pause` is called between chunks so that ingestion keeps the CPU.
pub struct Compactor {
    db: sled::Db,
}

/// Keys looked at between two calls of the pause.
const COMPACT_CHUNK: usize = 2_000;

impl Compactor {
    /// Forgets the `messageId`s first seen before `cutoff`: the `d` chunks of groups before
    /// it (from the oldest on; the core never rewrites a chunk, and its memory already takes
    /// such ids for new), and `m` keys by their own time. An `m` key stored without a time
    /// (by a store older than retention) is stamped `now`, so it expires one window later.
    /// Returns how many ids were forgotten.
    pub fn dedupe(
        &self,
        cutoff: Instant,
        now: Instant,
        pause: &dyn Fn(),
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for item in self.db.scan_prefix([SEEN_CHUNK]) {
            let (k, v) = item.map_err(err)?;
            if be_u64(&v).is_some_and(|t| t as i64 >= cutoff) {
                break;
            }
            removed += chunk_hashes(&v).count() as u64;
            batch.remove(k);
            in_batch += 1;
            if in_batch >= COMPACT_CHUNK {
                self.db
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(err)?;
                in_batch = 0;
                pause();
            }
        }
        if in_batch > 0 {
            self.db.apply_batch(batch).map_err(err)?;
        }
        removed += self.sweep(SEEN, pause, &|v| match seen_time(v) {
            None => Sweep::Replace(seen_value(now)),
            Some(t) if t < cutoff => Sweep::Remove,
            Some(_) => Sweep::Keep,
        })?;
        Ok(removed)
    }

    /// Removes history records from the oldest on while `time_of` (the caller reads its
    /// bytes) is before `cutoff`; stops at the first younger one, and always keeps the newest
    /// record (the next sequence number is found from it at open). A chunk whose records all
    /// go is removed; the chunk holding the first younger record is written again with the
    /// records it keeps, under the sequence number of the first of them (the core only ever
    /// writes new history keys, so no compare-and-swap is needed). Returns how many records
    /// went.
    pub fn history(
        &self,
        cutoff: Instant,
        time_of: &dyn Fn(&[u8]) -> Option<Instant>,
        pause: &dyn Fn(),
    ) -> Result<u64, StoreError> {
        let last = match self.db.scan_prefix([HISTORY]).keys().next_back() {
            Some(k) => k.map_err(err)?,
            None => return Ok(0),
        };
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        let mut records_in_batch = 0;
        for item in self.db.scan_prefix([HISTORY]) {
            let (k, v) = item.map_err(err)?;
            let plain = plain_history(&v);
            let records: Vec<&[u8]> = history_records(&plain).collect();
            if records.is_empty() {
                break;
            }
            let mut old = records
                .iter()
                .take_while(|r| time_of(r).is_some_and(|t| t < cutoff))
                .count();
            if k == last {
                old = old.min(records.len().saturating_sub(1));
            }
            if old > 0 {
                batch.remove(k.clone());
                in_batch += 1;
                records_in_batch += old as u64;
            }
            if old < records.len() {
                if old > 0 {
                    let first = be_u64(&k[1..]).unwrap_or(0) + old as u64;
                    batch.insert(
                        key(HISTORY, &first.to_be_bytes()),
                        history_value(&records[old..]),
                    );
                }
                break;
            }
            if in_batch >= COMPACT_CHUNK {
                self.db
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(err)?;
                removed += records_in_batch;
                in_batch = 0;
                records_in_batch = 0;
                pause();
            }
        }
        if in_batch > 0 {
            self.db.apply_batch(batch).map_err(err)?;
            removed += records_in_batch;
        }
        Ok(removed)
    }

    /// Removes the outbox entries for which `expired` (the caller reads its bytes) says so;
    /// an entry still in the dispatch queue is never removed (the caller says expired only
    /// for finished ones: a pending entry listed in a `p` record, or one with a `q` key, is
    /// not finished). `p` records are left alone: one is removed with its last entry's
    /// outcome, before that entry can be finished, and start-up skips listed entries that are
    /// missing. An `e` record is rewritten without its expired entries (removed when none is
    /// left) with a compare-and-swap against what was read: a record the core rewrote
    /// meanwhile is left for the next pass. Then the `o` keys of older stores, one by one.
    /// Returns how many entries were removed.
    pub fn outbox(
        &self,
        expired: &dyn Fn(&[u8]) -> bool,
        pause: &dyn Fn(),
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut looked = 0;
        for item in self.db.scan_prefix([OUTBOX_RECORD]) {
            let (k, v) = item.map_err(err)?;
            let mut kept = Vec::with_capacity(v.len());
            let mut gone = 0;
            for (_, entry, whole) in record_items(&v) {
                looked += 1;
                if looked % COMPACT_CHUNK == 0 {
                    pause();
                }
                if expired(entry) {
                    gone += 1;
                } else {
                    kept.extend_from_slice(&v[whole]);
                }
            }
            if gone == 0 {
                continue;
            }
            let new = (!kept.is_empty()).then_some(kept);
            if self
                .db
                .compare_and_swap(&k, Some(&v), new)
                .map_err(err)?
                .is_ok()
            {
                removed += gone;
            }
        }
        Ok(removed
            + self.sweep(OUTBOX, pause, &|v| {
                if expired(v) {
                    Sweep::Remove
                } else {
                    Sweep::Keep
                }
            })?)
    }

    /// Walks the keys of `prefix`, pausing every [`COMPACT_CHUNK`] keys, and applies what
    /// `decide` says of each value with compare-and-swap (an entry changed meanwhile by the
    /// core is left as it is); returns how many were removed.
    fn sweep(
        &self,
        prefix: u8,
        pause: &dyn Fn(),
        decide: &dyn Fn(&[u8]) -> Sweep,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        for (n, item) in self.db.scan_prefix([prefix]).enumerate() {
            let (k, v) = item.map_err(err)?;
            if n % COMPACT_CHUNK == COMPACT_CHUNK - 1 {
                pause();
            }
            let new = match decide(&v) {
                Sweep::Keep => continue,
                Sweep::Replace(bytes) => Some(bytes),
                Sweep::Remove => None,
            };
            let gone = new.is_none();
            if self
                .db
                .compare_and_swap(&k, Some(&v), new)
                .map_err(err)?
                .is_ok()
                && gone
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// What a [`Compactor`] sweep does with one entry.
enum Sweep {
    Keep,
    Replace(Vec<u8>),
    Remove,
}

/// Live entries of one kind of key (see the layout table).
#[derive(Debug, Clone, Default)]
pub struct KindUsage {
    pub name: &'static str,
    pub entries: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

/// What the live keys and values of the store in `dir` add up to, per kind (the store must
/// not be open elsewhere). Sled's own per-entry and log overhead is the directory's size
/// minus these.
pub fn space_by_kind(dir: &Path) -> Result<Vec<KindUsage>, StoreError> {
    let db = sled::Config::new()
        .path(dir)
        .use_compression(compressed(dir, false))
        .open()
        .map_err(err)?;
    let name = |prefix: u8| match prefix {
        CONTACT => "contact",
        TIMER => "timer-keys",
        WAKES => "timer",
        SEEN => "dedupe-ids",
        SEEN_CHUNK => "dedupe",
        OUTBOX_RECORD => "outbox",
        OUTBOX => "outbox-keys",
        OUTBOX_DUE => "outbox-due",
        OUTBOX_NOW => "outbox-due-now",
        HISTORY => "history",
        META => "meta",
        _ => "other",
    };
    let mut kinds: Vec<KindUsage> = Vec::new();
    for item in db.iter() {
        let (k, v) = item.map_err(err)?;
        let kind = name(k.first().copied().unwrap_or(0));
        let at = match kinds.iter().position(|u| u.name == kind) {
            Some(at) => at,
            None => {
                kinds.push(KindUsage {
                    name: kind,
                    ..KindUsage::default()
                });
                kinds.len() - 1
            }
        };
        kinds[at].entries += 1;
        kinds[at].key_bytes += k.len() as u64;
        kinds[at].value_bytes += v.len() as u64;
    }
    Ok(kinds)
}

/// The raw sled ceiling for the daemon's write pattern of the benchmark's `daemon-http`
/// section (the baseline, here because only this module names sled), in this module's
/// layout: per event (a new contact) read its state and write it (`state_bytes`); per group
/// one `w` record of the timers, one chunk of the messageIds' hashes and one history chunk
/// (`history_bytes`); one `apply_batch` + `flush` + `fdatasync` of the `db`
/// file per group of `group` events. No engine, no HTTP, no encoding: what sled alone takes.
/// Returns the seconds the `events` took, in a fresh store in `dir`.
pub fn raw_ceiling(
    dir: &Path,
    events: usize,
    group: usize,
    state_bytes: usize,
    history_bytes: usize,
) -> Result<f64, StoreError> {
    let db = sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .map_err(err)?;
    let db_file = File::open(dir.join("db")).map_err(|e| StoreError(format!("open db: {e}")))?;
    let state = vec![7u8; state_bytes];
    let group = group.max(1);
    let started = std::time::Instant::now();
    for g in 0..events.div_ceil(group) {
        let mut b = sled::Batch::default();
        let mut seen = (g as i64).to_be_bytes().to_vec();
        let mut wakes = Vec::new();
        for i in 0..group {
            let n = g * group + i;
            let contact = format!("u{n}");
            let _ = db.get(key(CONTACT, contact.as_bytes())).map_err(err)?;
            b.insert(key(CONTACT, contact.as_bytes()), state.clone());
            push_wake_entry(&mut wakes, i as u64, &contact);
            seen.extend_from_slice(&message_hash(&format!("m-{n}")).to_be_bytes());
        }
        b.insert(wake_key((g * group) as i64 + 3600, g as u64), wakes);
        b.insert(
            key(SEEN_CHUNK, &(g as u64).to_be_bytes()),
            std::mem::take(&mut seen),
        );
        let mut history = vec![HISTORY];
        history.extend_from_slice(&((g * group) as u64).to_be_bytes());
        b.insert(history, vec![3u8; history_bytes]);
        db.apply_batch(b).map_err(err)?;
        db.flush().map_err(err)?;
        db_file
            .sync_data()
            .map_err(|e| StoreError(format!("fdatasync db: {e}")))?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The disk's own floor: `fdatasync` of a file after each 4 KiB append, `rounds` times
/// (what one group commit cannot go below). Returns the seconds per round.
pub fn fsync_floor(dir: &Path, rounds: usize) -> Result<f64, StoreError> {
    use std::io::Write as _;
    let io = |e: std::io::Error| StoreError(format!("fsync floor: {e}"));
    let mut file = File::create(dir.join("fsync-floor")).map_err(io)?;
    let block = vec![0u8; 4096];
    let started = std::time::Instant::now();
    for _ in 0..rounds.max(1) {
        file.write_all(&block).map_err(io)?;
        file.sync_data().map_err(io)?;
    }
    Ok(started.elapsed().as_secs_f64() / rounds.max(1) as f64)
}

/// Words of the error [`SledStore::open`] gives when another process holds the store (callers
/// match on them to say what to do instead).
pub const IN_USE: &str = "is in use by another process";

/// How long [`open_locked`] waits for the store's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled, waiting up to [`LOCK_WAIT`] while the directory's lock is held: sled's I/O
/// threads can hold the `db` file (and its lock) for a moment after the last handle of a
/// store in the same process is dropped, so a reopen right after a close could fail. A lock
/// still held after that is another process using the store, and the error says so.
fn open_locked(config: &sled::Config, dir: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(e) if e.to_string().contains("could not acquire lock") => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(StoreError(format!(
                        "the store `{}` {IN_USE} (is another `flowc run` using this data \
                         directory? stop it, or give this one its own `--data DIR`)",
                        dir.display()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                return Err(StoreError(format!(
                    "cannot open the store `{}`: {e}",
                    dir.display()
                )))
            }
        }
    }
}

fn err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

/// The value of a `messageId` key: when it was first seen, in seconds, as 4 bytes (BE u32)
/// while that holds it (until 2106), else 8 (BE i64, as stores before the 4-byte form).
fn seen_value(t: Instant) -> Vec<u8> {
    match u32::try_from(t) {
        Ok(t) => t.to_be_bytes().to_vec(),
        Err(_) => t.to_be_bytes().to_vec(),
    }
}

/// When a `messageId` was first seen, from either form of [`seen_value`] (`None`: stored
/// without a time, by a store older than retention).
fn seen_time(value: &[u8]) -> Option<Instant> {
    match value.len() {
        4 => Some(Instant::from(u32::from_be_bytes(value.try_into().ok()?))),
        8.. => be_u64(value).map(|t| t as Instant),
        _ => None,
    }
}

fn ordered(t: Instant) -> u64 {
    (t as u64) ^ (1 << 63)
}

fn from_ordered(v: u64) -> Instant {
    (v ^ (1 << 63)) as i64
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    let eight: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(eight))
}

/// The key of a `w` record: its least wake, then its number.
fn wake_key(first: Instant, number: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(WAKES);
    k.extend_from_slice(&ordered(first).to_be_bytes());
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// One timer of a `w` record's value: seconds after the record's least wake and the contact,
/// each as LEB128 (the contact's length before it).
fn push_wake_entry(value: &mut Vec<u8>, offset: u64, contact: &str) {
    push_varint(value, offset as usize);
    push_varint(value, contact.len());
    value.extend_from_slice(contact.as_bytes());
}

/// The timers of a `w` record's value (see [`push_wake_entry`]); stops at a truncated one.
fn wake_entries(value: &[u8]) -> impl Iterator<Item = (u64, String)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (offset, start) = read_varint(value, at)?;
        let (len, start) = read_varint(value, start)?;
        let contact = value.get(start..start.checked_add(len)?)?;
        at = start + len;
        Some((offset as u64, String::from_utf8_lossy(contact).to_string()))
    })
}

/// Timers in time order as the values of `w` records, one per bucket of [`WAKE_BUCKET`]
/// seconds: (least wake, greatest wake, value).
fn wake_records(
    timers: impl IntoIterator<Item = (Instant, String)>,
) -> Vec<(Instant, Instant, Vec<u8>)> {
    let mut records: Vec<(Instant, Instant, Vec<u8>)> = Vec::new();
    for (t, contact) in timers {
        match records.last_mut() {
            Some((first, last, value))
                if t.div_euclid(WAKE_BUCKET) == first.div_euclid(WAKE_BUCKET) =>
            {
                push_wake_entry(value, (t - *first) as u64, &contact);
                *last = t;
            }
            _ => {
                let mut value = Vec::new();
                push_wake_entry(&mut value, 0, &contact);
                records.push((t, t, value));
            }
        }
    }
    records
}

/// Moves the `t` keys of stores written before `w` records (one empty key per waiting
/// contact: `t` BE(wake) contact) into records, [`MIGRATE_CHUNK`] keys per atomic batch (a
/// crash in between leaves the rest for the next start), numbering them after any record there
/// is and keeping the count of waiting contacts.
fn migrate_timer_keys(db: &sled::Db) -> Result<(), StoreError> {
    let count_key = key(META, TIMER_COUNT.as_bytes());
    if db.get(&count_key).map_err(err)?.is_none() {
        // Before the count was kept: count the keys once.
        let n = db.scan_prefix([TIMER]).count() as u64;
        if n > 0 {
            db.insert(&count_key, n.to_be_bytes().to_vec())
                .map_err(err)?;
        }
    }
    loop {
        let mut chunk = Vec::new();
        for k in db.scan_prefix([TIMER]).keys().take(MIGRATE_CHUNK) {
            chunk.push(k.map_err(err)?);
        }
        if chunk.is_empty() {
            return Ok(());
        }
        let meta = db.get(&count_key).map_err(err)?;
        let count = meta.as_ref().and_then(|v| be_u64(v)).unwrap_or(0);
        let mut number = meta
            .as_ref()
            .and_then(|v| v.get(8..))
            .and_then(be_u64)
            .unwrap_or(0);
        let mut batch = sled::Batch::default();
        let mut timers = Vec::new();
        for k in &chunk {
            batch.remove(k.clone());
            if let Some(t) = k.get(1..9).and_then(be_u64).map(from_ordered) {
                timers.push((t, String::from_utf8_lossy(&k[9..]).to_string()));
            }
        }
        for (first, _, value) in wake_records(timers) {
            batch.insert(wake_key(first, number), value);
            number += 1;
        }
        let mut value = count.to_be_bytes().to_vec();
        value.extend_from_slice(&number.to_be_bytes());
        batch.insert(count_key.clone(), value);
        db.apply_batch(batch).map_err(err)?;
    }
}

fn outbox_id(contact: &str, idempotency_key: &str) -> Vec<u8> {
    let mut id = contact.as_bytes().to_vec();
    id.push(0);
    id.extend_from_slice(idempotency_key.as_bytes());
    id
}

fn split_outbox_id(id: &[u8]) -> Option<(String, String)> {
    let at = id.iter().position(|b| *b == 0)?;
    Some((
        String::from_utf8_lossy(&id[..at]).to_string(),
        String::from_utf8_lossy(&id[at + 1..]).to_string(),
    ))
}

/// The entries of an `e` record (see the layout), in order: (idempotency key, entry, the
/// bytes of the whole item); stops at a truncated one.
fn record_items(value: &[u8]) -> impl Iterator<Item = (&[u8], &[u8], std::ops::Range<usize>)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (key_len, key_at) = read_varint(value, at)?;
        let key_end = key_at.checked_add(key_len)?;
        let key = value.get(key_at..key_end)?;
        let (len, entry_at) = read_varint(value, key_end)?;
        let end = entry_at.checked_add(len)?;
        let entry = value.get(entry_at..end)?;
        let whole = at..end;
        at = end;
        Some((key, entry, whole))
    })
}

/// Where the entry of `key` is in an `e` record: the bytes of its whole item; or, when it is
/// not there, where it goes (keys in byte order; the end of the last readable item).
fn record_find(value: &[u8], key: &[u8]) -> Result<std::ops::Range<usize>, usize> {
    let mut end = 0;
    for (k, _, whole) in record_items(value) {
        match k.cmp(key) {
            std::cmp::Ordering::Equal => return Ok(whole),
            std::cmp::Ordering::Greater => return Err(whole.start),
            std::cmp::Ordering::Less => end = whole.end,
        }
    }
    Err(end)
}

/// The entry of `key` in an `e` record.
fn record_entry<'a>(value: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let whole = record_find(value, key).ok()?;
    record_items(&value[whole])
        .next()
        .map(|(_, entry, _)| entry)
}

/// Writes the entry of `key` into an `e` record (in place of the one there, or in key order).
fn record_put(record: &mut Vec<u8>, key: &[u8], entry: &[u8]) {
    let mut item = Vec::with_capacity(key.len() + entry.len() + 6);
    push_varint(&mut item, key.len());
    item.extend_from_slice(key);
    push_varint(&mut item, entry.len());
    item.extend_from_slice(entry);
    let at = record_find(record, key).unwrap_or_else(|at| at..at);
    record.splice(at, item);
}

/// The ids of a `p` record's value (see the layout); stops at a truncated one.
fn listed_ids(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (len, start) = read_varint(value, at)?;
        let id = value.get(start..start.checked_add(len)?)?;
        at = start + len;
        Some(id)
    })
}

fn due_key(t: Instant, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + id.len());
    k.push(OUTBOX_DUE);
    k.extend_from_slice(&ordered(t).to_be_bytes());
    k.extend_from_slice(id);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(wake: Option<Instant>) -> ContactState {
        ContactState {
            wake,
            ..ContactState::default()
        }
    }

    #[test]
    fn a_store_held_by_another_handle_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let _held = SledStore::open(dir.path()).unwrap();
        let started = std::time::Instant::now();
        let err = SledStore::open(dir.path()).err().expect("the lock is held");
        assert!(err.0.contains(IN_USE), "{}", err.0);
        assert!(err.0.contains("--data DIR"), "{}", err.0);
        // It waited for the lock before giving up (a closing handle releases it in that time).
        assert!(started.elapsed() >= LOCK_WAIT);
    }

    #[test]
    fn a_store_reopens_right_after_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..20 {
            let mut store = SledStore::open(dir.path()).unwrap();
            store.put_meta("round", &[round]);
            store.commit().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.meta("round").unwrap(), Some(vec![19]));
    }

    #[test]
    fn states_timers_and_dedupe_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = SledStore::open(dir.path()).unwrap();
            let mut s = state(Some(200));
            s.traits.insert("email".into(), serde_json::json!("a@x"));
            store.save("a", &s).unwrap();
            store.save("b", &state(Some(100))).unwrap();
            assert!(store.first_seen("m1").unwrap());
            assert!(!store.first_seen("m1").unwrap());
            assert_eq!(store.next_due(), Some((100, "b".to_string())));
            store.commit().unwrap();
            store.save("b", &state(None)).unwrap();
            store.commit().unwrap();
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.next_due(), Some((200, "a".to_string())));
        assert_eq!(store.timers_pending(), 1);
        assert!(!store.first_seen("m1").unwrap());
        let a = store.load("a").unwrap().unwrap();
        assert_eq!(a.traits["email"], "a@x");
        assert_eq!(store.contacts(), vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn a_store_opens_whatever_compression_it_was_created_with() {
        for created_compressed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            {
                let mut store = SledStore::open_with(dir.path(), created_compressed).unwrap();
                store.save("a", &state(Some(7))).unwrap();
                store.commit().unwrap();
            }
            for now_compressed in [false, true] {
                let mut store = SledStore::open_with(dir.path(), now_compressed).unwrap();
                assert_eq!(store.load("a").unwrap().unwrap().wake, Some(7));
                assert_eq!(store.next_due(), Some((7, "a".to_string())));
            }
            assert_eq!(
                compressed(dir.path(), !created_compressed),
                created_compressed
            );
        }
    }

    #[test]
    fn the_head_is_read_on_from_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        let n = HEAD_FILL + 500;
        for i in 0..n {
            store
                .save(&format!("c{i:05}"), &state(Some(1000 + i as i64)))
                .unwrap();
        }
        store.commit().unwrap();
        drop(store);
        let mut store = SledStore::open(dir.path()).unwrap();
        // Whole records are read: at most one bucket's worth more.
        let read = store.timers.head.len();
        assert!(
            (HEAD_FILL..HEAD_FILL + WAKE_BUCKET as usize).contains(&read),
            "{read}"
        );
        // A timer later than the cursor is not in the head yet, an earlier one is.
        store.save("late", &state(Some(1_000_000))).unwrap();
        store.save("early", &state(Some(5))).unwrap();
        store.commit().unwrap();
        let mut fired = Vec::new();
        loop {
            for _ in 0..100 {
                let Some((t, c)) = store.next_due() else {
                    break;
                };
                fired.push(t);
                store.save(&c, &state(None)).unwrap();
            }
            store.commit().unwrap();
            if store.next_due().is_none() {
                break;
            }
        }
        assert_eq!(fired.len(), n + 2);
        assert!(fired.windows(2).all(|w| w[0] <= w[1]), "in time order");
        assert_eq!(fired[0], 5);
        assert_eq!(fired[n + 1], 1_000_000);
    }

    /// Timers set, moved and cancelled at random over many groups and reopens fire once
    /// each, at the wake their contact's state holds, in time order, and leave no record.
    #[test]
    fn timers_moved_and_cancelled_fire_once_in_order_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut wakes: HashMap<String, Option<Instant>> = HashMap::new();
        for round in 0..6 {
            let mut store = SledStore::open(dir.path()).unwrap();
            for _group in 0..20 {
                for _ in 0..300 {
                    let contact = format!("c{}", next(2_000));
                    let wake = match next(10) {
                        0 => None,
                        _ => Some(1_000 + next(20_000) as i64),
                    };
                    store.save(&contact, &state(wake)).unwrap();
                    wakes.insert(contact, wake);
                }
                store.commit().unwrap();
            }
            let waiting = wakes.values().filter(|w| w.is_some()).count();
            assert_eq!(store.timers_pending(), waiting, "round {round}");
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        let mut fired = Vec::new();
        loop {
            for _ in 0..97 {
                let Some((t, c)) = store.next_live_due().unwrap() else {
                    break;
                };
                fired.push((t, c.clone()));
                store.save(&c, &state(None)).unwrap();
            }
            store.commit().unwrap();
            if fired.len() % 1_000 < 97 {
                // A reopen halfway through.
                drop(store);
                store = SledStore::open(dir.path()).unwrap();
            }
            if store.next_live_due().unwrap().is_none() {
                break;
            }
        }
        let mut expected: Vec<(Instant, String)> = wakes
            .iter()
            .filter_map(|(c, w)| w.map(|t| (t, c.clone())))
            .collect();
        expected.sort();
        assert!(fired.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
        fired.sort();
        assert_eq!(fired, expected);
        assert_eq!(store.timers_pending(), 0);
        store.commit().unwrap();
        assert_eq!(keys_of(&store, WAKES), 0);
    }

    /// A head whose timers all turn out to have moved on is read on without a commit (none
    /// may come: skipping writes nothing), and a record written covered by the head does not
    /// stop the reading.
    #[test]
    fn a_head_of_skipped_timers_reads_on_without_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let n = 3 * HEAD_FILL;
        {
            let mut store = SledStore::open(dir.path()).unwrap();
            for i in 0..n {
                store
                    .save(&format!("c{i:05}"), &state(Some(1_000 + i as i64)))
                    .unwrap();
            }
            store.commit().unwrap();
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        assert!(!store.timers.exhausted);
        // All but the last 100 move on: the head's entries go with their records, the
        // unread records keep theirs (skipped when they come up).
        for i in 0..n - 100 {
            store.save(&format!("c{i:05}"), &state(None)).unwrap();
        }
        // A timer covered by the head, in the same group.
        store.save("early", &state(Some(1_001))).unwrap();
        store.commit().unwrap();
        assert_eq!(store.timers_pending(), 101);
        let mut fired = Vec::new();
        while let Some((t, c)) = store.next_live_due().unwrap() {
            fired.push(t);
            store.save(&c, &state(None)).unwrap();
            store.commit().unwrap();
            if fired.len() > 200 {
                break;
            }
        }
        assert_eq!(fired.len(), 101);
        assert_eq!(fired[0], 1_001);
        assert!(fired.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(fired[100], 1_000 + n as i64 - 1);
    }

    #[test]
    fn timer_keys_of_older_stores_move_into_records() {
        for with_count in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            {
                let store = SledStore::open(dir.path()).unwrap();
                // `t` BE(ordered wake) contact, empty: one key per waiting contact.
                for (t, c) in [(110u64, "b"), (100, "a"), (100_000, "c")] {
                    let mut k = vec![b't'];
                    k.extend_from_slice(&(t ^ (1 << 63)).to_be_bytes());
                    k.extend_from_slice(c.as_bytes());
                    store.db.insert(k, Vec::<u8>::new()).unwrap();
                    let s = encode_state(&state(Some(t as i64))).unwrap();
                    store.db.insert(key(CONTACT, c.as_bytes()), s).unwrap();
                }
                store.db.remove(key(META, TIMER_COUNT.as_bytes())).unwrap();
                if with_count {
                    store
                        .db
                        .insert(
                            key(META, TIMER_COUNT.as_bytes()),
                            3u64.to_be_bytes().to_vec(),
                        )
                        .unwrap();
                }
            }
            let mut store = SledStore::open(dir.path()).unwrap();
            assert_eq!(keys_of(&store, TIMER), 0);
            assert_eq!(keys_of(&store, WAKES), 2);
            assert_eq!(store.timers_pending(), 3);
            let mut fired = Vec::new();
            while let Some((t, c)) = store.next_live_due().unwrap() {
                fired.push((t, c.clone()));
                store.save(&c, &state(None)).unwrap();
            }
            assert_eq!(
                fired,
                vec![(100, "a".into()), (110, "b".into()), (100_000, "c".into())]
            );
            store.commit().unwrap();
            assert_eq!(store.timers_pending(), 0);
        }
    }

    /// The state of a bench cart as the store wrote it before packed states
    /// (`rmp_serde::to_vec_named`): one instance waiting 1h with its trigger property.
    const NAMED_STATE: &str = "84a9696e7374616e6365739186a2696400a4666c6f7700a5737461746503a7\
        656e7465726564ce6b0ebb07a477616b65ce6b0ec917a77472696767657281a8636172745f75726cab6874\
        7470733a2f2f732f31ad6e6578745f696e7374616e636501a477616b65ce6b0ec917a770656e64696e67c3";

    const MESSAGE_HASH_OF_M81: u64 = 365_398_007_548_550_845;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn cart_json() -> serde_json::Value {
        serde_json::json!({
            "instances": [{"id": 0, "flow": 0, "state": 3, "entered": 1796127495_i64,
                "wake": 1796131095_i64, "trigger": {"cart_url": "https://s/1"}}],
            "next_instance": 1, "wake": 1796131095_i64, "pending": true
        })
    }

    #[test]
    fn a_state_in_the_named_form_of_older_stores_still_decodes() {
        let old = hex(NAMED_STATE);
        assert_eq!(old.len(), 117);
        let state = decode_state(&old).unwrap();
        assert_eq!(serde_json::to_value(&state).unwrap(), cart_json());
        assert_eq!(state.wake, Some(1796131095));
        // Written again, it is packed: the same state in about half the bytes.
        let packed = encode_state(&state).unwrap();
        assert_eq!(packed[0], PACKED);
        assert!(packed.len() < 60, "{} bytes", packed.len());
        assert_eq!(decode_state(&packed).unwrap(), state);
        // And the named form of today's encoder is read too.
        let named = rmp_serde::to_vec_named(&state).unwrap();
        assert_eq!(named, old);
        assert_eq!(decode_state(&named).unwrap(), state);
    }

    #[test]
    fn packed_states_round_trip_with_traits_named_like_fields() {
        let mut s: ContactState = serde_json::from_value(serde_json::json!({
            "traits": {"wake": 1, "time": {"event": [1, 2]}, "email": "a@x", "": null,
                "long": "x".repeat(300), "n": -5, "f": 1.5},
            "history": [{"event": 2, "time": 10, "properties": {"state": "s", "id": -3}}],
            "instances": [{"id": 1, "flow": 2, "state": 3, "entered": -7, "holdout": true,
                "trigger": {"wake": "w"}, "event": {"properties": []}}],
            "entries": [[1, 5]], "members": [4], "goals": [[2, 99]],
            "next_instance": 2, "wake": 100, "segment_wake": -1, "pending": true
        }))
        .unwrap();
        s.withdrawn = 3;
        let packed = encode_state(&s).unwrap();
        assert_eq!(packed[0], PACKED);
        let back = decode_state(&packed).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.traits["time"]["event"], serde_json::json!([1, 2]));
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&s).unwrap()
        );
        // A value that is not MessagePack is refused, not misread.
        assert!(decode_state(&[PACKED, 0x81, 0xff, 0x01]).is_err());
        assert!(decode_state(&[PACKED, 0x82]).is_err());
    }

    #[test]
    fn a_map_key_that_is_a_negative_number_keeps_the_named_form() {
        // {-1: 2}: packing would confuse the key with a field number.
        let mut out = Vec::new();
        assert_eq!(
            rename_keys(&[0x81, 0xff, 0x02], &mut out, Rename::Pack),
            None
        );
        out.clear();
        assert_eq!(
            rename_keys(
                &[0x92, 0xff, 0x81, 0xa4, b'w', b'a', b'k', b'e', 0xc3],
                &mut out,
                Rename::Pack
            ),
            Some(9)
        );
        assert_eq!(out, vec![0x92, 0xff, 0x81, 0xea, 0xc3]);
    }

    #[test]
    fn history_chunks_read_from_any_record_and_continue_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let record = |n: u64| format!("{{\"n\":{n},\"pad\":\"{}\"}}", "p".repeat(40)).into_bytes();
        let total = 400u64;
        {
            let store = SledStore::open(dir.path()).unwrap();
            // An old store's one-record keys first.
            for n in 0..3u64 {
                store
                    .db
                    .insert(key(HISTORY, &n.to_be_bytes()), record(n))
                    .unwrap();
            }
            drop(store);
            let mut store = SledStore::open(dir.path()).unwrap();
            assert_eq!(store.next_history, 3);
            // A group of 300 (several chunks), then groups of 1 and of 2.
            for n in 3..303 {
                store.append_history(&record(n));
            }
            store.commit().unwrap();
            store.append_history(&record(303));
            store.commit().unwrap();
            store.append_history(&record(304));
            store.append_history(&record(305));
            store.commit().unwrap();
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.next_history, 306);
        for n in 306..total {
            store.append_history(&record(n));
        }
        store.commit().unwrap();
        let keys = store.db.scan_prefix([HISTORY]).count();
        let squeezed = store
            .db
            .scan_prefix([HISTORY])
            .values()
            .filter(|v| v.as_ref().unwrap().starts_with(&[PACKED, ZSTD_CHUNK]))
            .count();
        assert!(squeezed > 0, "the chunks of similar records are compressed");
        assert!(keys < 20, "{keys} keys for {total} records");
        // The group of one is stored as the record alone, as before chunks.
        assert_eq!(
            store
                .db
                .get(key(HISTORY, &303u64.to_be_bytes()))
                .unwrap()
                .unwrap(),
            record(303)
        );
        let reader = store.reader();
        let all = reader.history(0, usize::MAX).unwrap();
        assert_eq!(all.len(), total as usize);
        for (i, (seq, bytes)) in all.iter().enumerate() {
            assert_eq!(*seq, i as u64);
            assert_eq!(bytes, &record(i as u64));
        }
        for (from, limit) in [
            (0, 1),
            (1, 5),
            (150, 7),
            (302, 3),
            (303, 1),
            (399, 10),
            (400, 5),
        ] {
            let page = reader.history(from, limit).unwrap();
            let want: Vec<u64> = (from..(from + limit as u64).min(total)).collect();
            assert_eq!(
                page.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
                want,
                "{from} {limit}"
            );
        }
    }

    #[test]
    fn the_compactor_removes_whole_chunks_of_old_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        // Record bytes are their time; an old one-record key, then chunks.
        store
            .db
            .insert(key(HISTORY, &0u64.to_be_bytes()), b"5".to_vec())
            .unwrap();
        store.next_history = 1;
        let times = |from: u64, to: u64| (from..to).map(|t| t.to_string().into_bytes());
        for r in times(10, 20) {
            store.append_history(&r);
        }
        store.commit().unwrap();
        for r in times(20, 30) {
            store.append_history(&r);
        }
        store.commit().unwrap();
        for r in times(30, 32) {
            store.append_history(&r);
        }
        store.commit().unwrap();
        let time_of = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<Instant>().ok();
        let compactor = store.compactor();
        // 25 is inside the second chunk: the old key, the first chunk and the first five
        // records of the second go (16 records); the second is written again from seq 16.
        assert_eq!(compactor.history(25, &time_of, &|| {}).unwrap(), 16);
        let left = store.reader().history(0, 100).unwrap();
        let seqs: Vec<u64> = left.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (16..23).collect::<Vec<_>>());
        assert_eq!(left[0].1, b"25".to_vec());
        assert!(store
            .db
            .get(key(HISTORY, &16u64.to_be_bytes()))
            .unwrap()
            .is_some());
        assert_eq!(store.reader().history(18, 1).unwrap()[0].1, b"27".to_vec());
        // Everything old: the newest record stays.
        // A reader that meets a chunk and its rewrite (the compactor's batch between its
        // reads) gives each record once.
        store
            .db
            .insert(key(HISTORY, &19u64.to_be_bytes()), b"28".to_vec())
            .unwrap();
        let seqs: Vec<u64> = store
            .reader()
            .history(0, 100)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(seqs, (16..23).collect::<Vec<_>>());
        store.db.remove(key(HISTORY, &19u64.to_be_bytes())).unwrap();
        assert_eq!(compactor.history(1000, &time_of, &|| {}).unwrap(), 6);
        assert_eq!(
            store.reader().history(0, 100).unwrap(),
            vec![(22, b"31".to_vec())]
        );
        drop((store, compactor));
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.next_history, 23);
    }

    #[test]
    fn message_ids_of_either_value_form_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        store.set_now(1_000);
        assert!(store.first_seen("new").unwrap());
        store.commit().unwrap();
        assert_eq!(store.db.get(key(SEEN, b"new")).unwrap().unwrap().len(), 4);
        // As older stores wrote them: 8 bytes, and empty.
        store
            .db
            .insert(key(SEEN, b"old"), 500i64.to_be_bytes().to_vec())
            .unwrap();
        store
            .db
            .insert(key(SEEN, b"older"), Vec::<u8>::new())
            .unwrap();
        assert_eq!(seen_time(&seen_value(-1)), Some(-1));
        assert_eq!(seen_time(&seen_value(5_000_000_000)), Some(5_000_000_000));
        let compactor = store.compactor();
        assert_eq!(compactor.dedupe(800, 2_000, &|| {}).unwrap(), 1);
        assert!(!store.first_seen("new").unwrap());
        assert!(store.first_seen("old").unwrap());
        assert_eq!(
            seen_time(&store.db.get(key(SEEN, b"older")).unwrap().unwrap()),
            Some(2_000)
        );
        assert_eq!(compactor.dedupe(1_001, 3_000, &|| {}).unwrap(), 1);
        assert!(!store.first_seen("older").unwrap());
    }

    #[test]
    fn message_ids_of_a_window_go_in_one_chunk_per_group_and_expire_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let week = 7 * 86_400;
        {
            let mut store = SledStore::open(dir.path()).unwrap();
            store.set_dedupe_window(Some(week));
            store.set_now(1_000);
            assert!(store.first_seen("a").unwrap());
            assert!(store.first_seen("b").unwrap());
            assert!(!store.first_seen("a").unwrap());
            assert_eq!(store.pending_operations(), 1);
            store.commit().unwrap();
            store.set_now(2_000);
            assert!(store.first_seen("c").unwrap());
            assert!(!store.first_seen("b").unwrap());
            store.commit().unwrap();
            assert_eq!(keys_of(&store, SEEN), 0);
            assert_eq!(keys_of(&store, SEEN_CHUNK), 2);
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        store.set_dedupe_window(Some(week));
        store.set_now(1_500 + week);
        // `a` and `b` (first seen at 1,000) left the window; `c` (2,000) did not.
        assert!(!store.first_seen("c").unwrap());
        assert!(store.first_seen("a").unwrap());
        assert!(!store.first_seen("a").unwrap());
        store.commit().unwrap();
        assert_eq!(
            store
                .compactor()
                .dedupe(1_500, 1_500 + week, &|| {})
                .unwrap(),
            2
        );
        assert_eq!(keys_of(&store, SEEN_CHUNK), 2);
        drop(store);
        let mut store = SledStore::open(dir.path()).unwrap();
        store.set_dedupe_window(Some(week));
        store.set_now(1_600 + week);
        assert!(!store.first_seen("a").unwrap());
        assert!(store.first_seen("b").unwrap());
        assert!(!store.first_seen("c").unwrap());
    }

    #[test]
    fn per_id_keys_of_older_stores_still_dedupe_beside_chunks() {
        let dir = tempfile::tempdir().unwrap();
        {
            // As earlier versions (and a window of forever) write them.
            let mut store = SledStore::open(dir.path()).unwrap();
            store.set_now(1_000);
            assert!(store.first_seen("old").unwrap());
            store.commit().unwrap();
            assert_eq!(keys_of(&store, SEEN), 1);
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        store.set_dedupe_window(Some(86_400));
        store.set_now(2_000);
        assert!(!store.first_seen("old").unwrap());
        assert!(store.first_seen("new").unwrap());
        store.commit().unwrap();
        assert_eq!((keys_of(&store, SEEN), keys_of(&store, SEEN_CHUNK)), (1, 1));
        assert!(!store.first_seen("new").unwrap());
        // Forever again: new ids get keys of their own, chunked ones are still known.
        store.set_dedupe_window(None);
        assert!(!store.first_seen("new").unwrap());
        assert!(store.first_seen("later").unwrap());
        store.commit().unwrap();
        assert_eq!((keys_of(&store, SEEN), keys_of(&store, SEEN_CHUNK)), (2, 1));
    }

    #[test]
    fn the_message_hash_is_pinned() {
        // It is on disk: a change would forget every id of the window at the upgrade.
        assert_eq!(message_hash("m-81"), MESSAGE_HASH_OF_M81);
        assert_ne!(message_hash("m-81"), message_hash("m-82"));
    }

    #[test]
    fn outbox_entries_and_their_queue() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        store.put_outbox("c1", "k1", b"one", None, Some(50));
        store.put_outbox("c1", "k2", b"two", None, Some(40));
        store.commit().unwrap();
        store.put_outbox("c1", "k2", b"done", Some(40), None);
        store.commit().unwrap();
        assert_eq!(
            store.outbox_queue().unwrap(),
            vec![(50, "c1".to_string(), "k1".to_string())]
        );
        let reader = store.reader();
        assert_eq!(
            reader.outbox_of("c1").unwrap(),
            vec![b"one".to_vec(), b"done".to_vec()]
        );
        store.append_history(b"{}");
        store.append_history(b"{\"a\":1}");
        store.commit().unwrap();
        assert_eq!(
            reader.history(1, 10).unwrap(),
            vec![(1, b"{\"a\":1}".to_vec())]
        );
    }

    /// The start-up reader of the tests: an entry is pending while its bytes say so, due at 100.
    fn pending_at_100(bytes: &[u8]) -> Option<Instant> {
        (bytes == b"pending").then_some(100)
    }

    fn keys_of(store: &SledStore, prefix: u8) -> usize {
        store.db.scan_prefix([prefix]).count()
    }

    fn queued(store: &mut SledStore) -> Vec<(Instant, String, String)> {
        store.outbox_start(&pending_at_100).unwrap()
    }

    fn entry(contact: &str, key: &str) -> (Instant, String, String) {
        (100, contact.to_string(), key.to_string())
    }

    #[test]
    fn entries_due_at_once_share_one_record_that_goes_with_the_last_of_them() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = SledStore::open(dir.path()).unwrap();
            assert!(queued(&mut store).is_empty());
            // (The first commit of an open also writes the timer count.)
            store.put_meta("m", b"");
            store.commit().unwrap();
            store.set_now(100);
            for k in ["k1", "k2", "k3"] {
                store.put_outbox("c1", k, b"pending", None, Some(100));
            }
            // Due later: a `q` key as before.
            store.put_outbox("c2", "later", b"pending-later", None, Some(500));
            store.commit().unwrap();
            // c1's `e` record (its three entries) and one `p` record, plus c2's record and
            // the later one's `q`.
            assert_eq!(store.last_commit.operations, 4);
            assert_eq!(keys_of(&store, OUTBOX_NOW), 1);
            assert_eq!(keys_of(&store, OUTBOX_DUE), 1);
            // k1 written: its outcome (c1's record again) is the only write.
            store.put_outbox("c1", "k1", b"done", Some(100), None);
            store.commit().unwrap();
            assert_eq!(store.last_commit.operations, 1);
            assert_eq!(keys_of(&store, OUTBOX_NOW), 1);
        }
        {
            // A crash before k2 and k3 settled: both are found again (k1 is not).
            let mut store = SledStore::open(dir.path()).unwrap();
            assert_eq!(
                queued(&mut store),
                vec![
                    entry("c1", "k2"),
                    entry("c1", "k3"),
                    (500, "c2".into(), "later".into())
                ]
            );
            store.set_now(200);
            store.put_outbox("c1", "k2", b"done", Some(100), None);
            store.commit().unwrap();
            assert_eq!(keys_of(&store, OUTBOX_NOW), 1);
            // The last one settles: the record goes in the same group.
            store.put_outbox("c1", "k3", b"done", Some(100), None);
            store.commit().unwrap();
            assert_eq!(store.last_commit.operations, 2);
            assert_eq!(keys_of(&store, OUTBOX_NOW), 0);
            assert_eq!(
                store.reader().outbox_of("c1").unwrap(),
                vec![b"done".to_vec(), b"done".to_vec(), b"done".to_vec()]
            );
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            queued(&mut store),
            vec![(500, "c2".to_string(), "later".to_string())]
        );
    }

    #[test]
    fn a_retry_of_a_listed_entry_gets_a_due_key_and_settles_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        store.set_now(100);
        store.put_outbox("c1", "k1", b"pending", None, Some(100));
        store.commit().unwrap();
        store.put_outbox("c1", "k1", b"retrying", Some(100), Some(160));
        store.commit().unwrap();
        assert_eq!(keys_of(&store, OUTBOX_NOW), 0);
        assert_eq!(
            store.outbox_queue().unwrap(),
            vec![(160, "c1".to_string(), "k1".to_string())]
        );
        // The retry's outcome takes its `q` key away as before.
        store.put_outbox("c1", "k1", b"done", Some(160), None);
        store.commit().unwrap();
        assert_eq!(keys_of(&store, OUTBOX_DUE), 0);
        drop(store);
        let mut store = SledStore::open(dir.path()).unwrap();
        assert!(queued(&mut store).is_empty());
    }

    #[test]
    fn a_record_with_nothing_pending_left_is_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = SledStore::open(dir.path()).unwrap();
            store.set_now(100);
            store.put_outbox("c1", "k1", b"pending", None, Some(100));
            store.put_outbox("c1", "k2", b"pending", None, Some(100));
            store.commit().unwrap();
            // Behind the record's back (the core always settles through `put_outbox`, in
            // the batch that removes the record with its last entry): one entry settled,
            // one gone altogether, as the compactor removes finished ones. Start-up must
            // bear a record that outlived its entries.
            let mut record = Vec::new();
            record_put(&mut record, b"k1", b"done");
            store.db.insert(key(OUTBOX_RECORD, b"c1"), record).unwrap();
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        assert!(queued(&mut store).is_empty());
        store.commit().unwrap();
        assert_eq!(keys_of(&store, OUTBOX_NOW), 0);
        // New records are numbered on.
        store.set_now(100);
        store.put_outbox("c1", "k3", b"pending", None, Some(90));
        store.commit().unwrap();
        drop(store);
        let mut store = SledStore::open(dir.path()).unwrap();
        assert_eq!(queued(&mut store), vec![entry("c1", "k3")]);
    }

    #[test]
    fn a_store_with_due_keys_only_starts_as_before() {
        // What every store written before `p` records holds: a `q` key for every entry
        // (the bytes of the old layout: `q` BE(ordered due) contact 0 key, empty value).
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            let mut old = vec![b'q'];
            old.extend_from_slice(&(100u64 ^ (1 << 63)).to_be_bytes());
            old.extend_from_slice(b"c1\0k1");
            store.db.insert(old, Vec::<u8>::new()).unwrap();
            store.db.insert(b"oc1\0k1", &b"pending"[..]).unwrap();
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        assert_eq!(queued(&mut store), vec![entry("c1", "k1")]);
        store.set_now(100);
        store.put_outbox("c1", "k1", b"done", Some(100), None);
        store.commit().unwrap();
        assert_eq!(keys_of(&store, OUTBOX_DUE), 0);
        // The outcome of an entry of the old layout is written where it is.
        assert_eq!(store.db.get(b"oc1\0k1").unwrap().unwrap(), &b"done"[..]);
        assert_eq!(keys_of(&store, OUTBOX_RECORD), 0);
    }

    #[test]
    fn a_contacts_entries_are_one_record_in_key_order_and_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        store.put_meta("m", b"");
        store.commit().unwrap();
        store.put_outbox("c1", "k2", b"two", None, None);
        store.put_outbox("c1", "k1", b"one", None, None);
        // The open group's record is read first.
        assert_eq!(store.outbox_entry("c1", "k2").unwrap().unwrap(), b"two");
        assert_eq!(
            store.reader().outbox_of("c1").unwrap(),
            Vec::<Vec<u8>>::new()
        );
        store.commit().unwrap();
        assert_eq!(store.last_commit.operations, 1);
        // The bytes of the layout: per entry LEB128(key length), key, LEB128(entry length),
        // entry, in key order.
        assert_eq!(
            store.db.get(b"ec1").unwrap().unwrap(),
            &b"\x02k1\x03one\x02k2\x03two"[..]
        );
        assert_eq!(keys_of(&store, OUTBOX), 0);
        // A rewrite in a later group reads the committed record and keeps the others.
        store.put_outbox("c1", "k1", b"one, longer", None, None);
        store.put_outbox("c1", "k0", b"zero", None, None);
        store.commit().unwrap();
        assert_eq!(store.last_commit.operations, 1);
        assert_eq!(
            store.reader().outbox_of("c1").unwrap(),
            vec![b"zero".to_vec(), b"one, longer".to_vec(), b"two".to_vec()]
        );
        assert_eq!(
            store.outbox_entry("c1", "k1").unwrap().unwrap(),
            b"one, longer"
        );
        assert_eq!(store.outbox_entry("c1", "k3").unwrap(), None);
        assert_eq!(store.outbox_entry("c2", "k1").unwrap(), None);
        // Retention rewrites the record without what expired, and removes it when empty.
        let compactor = store.compactor();
        assert_eq!(compactor.outbox(&|e| e == b"two", &|| {}).unwrap(), 1);
        assert_eq!(
            store.db.get(b"ec1").unwrap().unwrap(),
            &b"\x02k0\x04zero\x02k1\x0bone, longer"[..]
        );
        assert_eq!(compactor.outbox(&|_| true, &|| {}).unwrap(), 2);
        assert_eq!(keys_of(&store, OUTBOX_RECORD), 0);
    }

    #[test]
    fn outbox_entries_of_older_stores_still_read_settle_in_place_and_expire() {
        // What main before the `e` records wrote: an `o` key per entry (`o` contact 0 key),
        // and a `p` record listing the entries due at once (LEB128 length, contact 0 key).
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.db.insert(b"oc1\0old-a", &b"pending"[..]).unwrap();
            store.db.insert(b"oc1\0old-z", &b"sent"[..]).unwrap();
            let mut p = vec![b'p'];
            p.extend_from_slice(&0u64.to_be_bytes());
            store.db.insert(p, &b"\x08c1\0old-a"[..]).unwrap();
        }
        let mut store = SledStore::open(dir.path()).unwrap();
        assert_eq!(queued(&mut store), vec![entry("c1", "old-a")]);
        store.set_now(100);
        store.put_outbox("c1", "new-m", b"pending", None, Some(100));
        store.commit().unwrap();
        assert_eq!(
            store.reader().outbox_of("c1").unwrap(),
            vec![b"pending".to_vec(), b"pending".to_vec(), b"sent".to_vec()]
        );
        // The old entry's outcome: rewritten in its `o` key, not copied into the record;
        // the old `p` record goes with it.
        store.put_outbox("c1", "old-a", b"done", Some(100), None);
        store.commit().unwrap();
        assert_eq!(store.db.get(b"oc1\0old-a").unwrap().unwrap(), &b"done"[..]);
        assert_eq!(
            store.db.get(b"ec1").unwrap().unwrap(),
            &b"\x05new-m\x07pending"[..]
        );
        assert_eq!(store.outbox_entry("c1", "old-a").unwrap().unwrap(), b"done");
        assert_eq!(store.outbox_entry("c1", "old-z").unwrap().unwrap(), b"sent");
        assert_eq!(
            store.outbox_entry("c1", "new-m").unwrap().unwrap(),
            b"pending"
        );
        assert_eq!(keys_of(&store, OUTBOX_NOW), 1);
        // Retention removes old keys and record entries alike.
        let finished = |e: &[u8]| e == b"done" || e == b"sent";
        assert_eq!(store.compactor().outbox(&finished, &|| {}).unwrap(), 2);
        assert_eq!(keys_of(&store, OUTBOX), 0);
        store.put_outbox("c1", "new-m", b"done", Some(100), None);
        store.commit().unwrap();
        assert_eq!(keys_of(&store, OUTBOX_NOW), 0);
        assert_eq!(store.compactor().outbox(&finished, &|| {}).unwrap(), 1);
        assert_eq!(keys_of(&store, OUTBOX_RECORD), 0);
        assert!(store.reader().outbox_of("c1").unwrap().is_empty());
    }

    #[test]
    fn one_contact_with_500_entries_is_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let entry_of = |k: usize, status: &str| format!("{status} {k:04} {}", "x".repeat(200));
        let mut store = SledStore::open(dir.path()).unwrap();
        store.put_meta("m", b"");
        store.commit().unwrap();
        store.set_now(100);
        for group in 0..50 {
            for k in group * 10..group * 10 + 10 {
                let e = entry_of(k, "pending");
                store.put_outbox("c1", &format!("k{k:04}"), e.as_bytes(), None, Some(100));
            }
            store.commit().unwrap();
            // The record and the group's `p` record.
            assert_eq!(store.last_commit.operations, 2);
        }
        for k in 0..500 {
            let e = entry_of(k, "done");
            store.put_outbox("c1", &format!("k{k:04}"), e.as_bytes(), Some(100), None);
            if k % 100 == 99 {
                store.commit().unwrap();
            }
        }
        assert_eq!(keys_of(&store, OUTBOX_NOW), 0);
        assert_eq!(keys_of(&store, OUTBOX_RECORD), 1);
        drop(store);
        let mut store = SledStore::open(dir.path()).unwrap();
        assert!(queued(&mut store).is_empty());
        let all = store.reader().outbox_of("c1").unwrap();
        let want: Vec<Vec<u8>> = (0..500).map(|k| entry_of(k, "done").into_bytes()).collect();
        assert_eq!(all, want);
        assert_eq!(
            store.outbox_entry("c1", "k0250").unwrap().unwrap(),
            entry_of(250, "done").as_bytes()
        );
        let odd = |e: &[u8]| e[8] % 2 == 1;
        assert_eq!(store.compactor().outbox(&odd, &|| {}).unwrap(), 250);
        assert_eq!(store.reader().outbox_of("c1").unwrap().len(), 250);
        assert_eq!(store.compactor().outbox(&|_| true, &|| {}).unwrap(), 250);
        assert_eq!(keys_of(&store, OUTBOX_RECORD), 0);
    }

    /// The sled operations of one fired timer with three sends, decided and later written
    /// (the bench's daemon-jump shape), in groups of 250 timers: state put, then the
    /// contact's `e` record (its three entries) at the decision and again with the outcomes,
    /// and the timers' `w` records, one written and one removed per group (9 before the `e`
    /// and `w` records: a timer key removed and one put per timer, an `o` key per send, each
    /// written twice); with the store's clock before the due time (as before `p` records),
    /// also a `q` put and a `q` remove per send.
    #[test]
    fn operations_per_fired_timer() {
        fn per_timer(now: Instant) -> f64 {
            let dir = tempfile::tempdir().unwrap();
            let mut store = SledStore::open(dir.path()).unwrap();
            for c in 0..250 {
                store.save(&format!("c{c}"), &state(Some(100))).unwrap();
            }
            store.commit().unwrap();
            store.set_now(now);
            let mut ops = 0;
            for c in 0..250 {
                let contact = format!("c{c}");
                store.update(&contact, |s| s.wake = Some(100_000)).unwrap();
                for k in 0..3 {
                    store.put_outbox(&contact, &format!("k{k}"), b"pending", None, Some(100));
                }
            }
            store.commit().unwrap();
            ops += store.last_commit.operations;
            for c in 0..250 {
                for k in 0..3 {
                    let contact = format!("c{c}");
                    store.put_outbox(&contact, &format!("k{k}"), b"done", Some(100), None);
                }
            }
            store.commit().unwrap();
            ops += store.last_commit.operations;
            assert!(store.outbox_queue().unwrap().is_empty());
            assert_eq!(keys_of(&store, OUTBOX_NOW), 0);
            ops as f64 / 250.0
        }
        // A store clock before the due time gives every entry a `q` key: the old layout.
        let before = per_timer(0);
        let after = per_timer(100);
        eprintln!("sled operations per fired timer (3 sends): {before} -> {after}");
        assert!(before >= 9.0, "{before}");
        assert!(after <= 3.1, "{after}");
    }
}
