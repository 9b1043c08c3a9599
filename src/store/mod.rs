//! Where contact states, the timer queue and the seen `messageId`s live.
//!
//! Owns: the [`Store`] interface the drivers (simulate, test, the daemon) use, and
//! [`MemoryStore`], the in-memory implementation for simulate and tests (each contact id held
//! once, inline next to its state when short, in a table of slots; wake-ups in a heap of
//! 8-byte entries; its index of the contacts
//! whose history holds given events, so that a schedule tick visits only the contacts that can
//! be in its audience); [`sled::SledStore`], the durable one of the daemon.
//! Must not: decide anything about flows (that is the engine). Only this module knows how
//! states are kept; only `store::sled` imports sled.

pub mod sled;

use crate::compile::EventId;
use crate::engine::time::Instant;
use crate::engine::{ContactState, FastSet, ShortKeyHasher};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hasher;

/// A failure of the storage layer.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// Contact states, their wake-up queue, and message-id dedupe.
pub trait Store {
    /// A contact's state (`None` when the contact is new).
    fn load(&mut self, contact: &str) -> Result<Option<ContactState>, StoreError>;
    /// Saves a state and (re)queues the contact at its `wake`.
    fn save(&mut self, contact: &str, state: &ContactState) -> Result<(), StoreError>;
    /// Runs `f` on a contact's state (a default one when new) and saves it.
    fn update<R>(
        &mut self,
        contact: &str,
        f: impl FnOnce(&mut ContactState) -> R,
    ) -> Result<R, StoreError> {
        let mut state = self.load(contact)?.unwrap_or_default();
        let result = f(&mut state);
        self.save(contact, &state)?;
        Ok(result)
    }
    /// The earliest queued wake-up, without removing it.
    fn next_due(&self) -> Option<(Instant, String)>;
    /// Records a `messageId`; `false` when it was seen before (the record must be ignored).
    fn first_seen(&mut self, message_id: &str) -> Result<bool, StoreError>;
    /// Every known contact, sorted (schedule ticks visit them all).
    fn contacts(&self) -> Vec<String>;
    /// Whether any contact has something other than recurring triggers pending.
    fn any_pending(&self) -> bool;
}

/// Everything in memory. Contacts are interned to indexes so that the timer queue compares
/// integers; each id is held once, in its [`Slot`] (the index holds slot numbers).
#[derive(Debug, Default)]
pub struct MemoryStore {
    index: NameIndex,
    slots: Vec<Slot>,
    /// Wake-ups as a min-heap with lazy deletion: an entry is live only while it equals
    /// `queued[slot]`; stale entries are dropped when they reach the top (a contiguous heap is
    /// far kinder to the cache than a tree with one node per contact).
    queue: SlotHeap,
    seen: FastSet<String>,
    /// Per slot: something other than a recurring trigger is pending (a flag per contact,
    /// not a hash set: schedule ticks requeue every contact).
    pending: Vec<bool>,
    pending_count: usize,
    /// History indexes ([`MemoryStore::watch_history`]), kept true after every change of a
    /// state.
    watches: Vec<Watch>,
}

/// One contact: its id, its state and its queued wake-up side by side, so that finding a
/// contact by id (which compares the id) brings in the cache lines the update reads next
/// (at a million contacts each record's look-up is a cache miss per separate array).
#[derive(Debug, Default)]
struct Slot {
    name: Name,
    /// The wake-up the queue holds for this slot (its entries for other instants are stale).
    queued: Option<Instant>,
    state: ContactState,
}

/// A contact id: inline when it has at most [`Name::INLINE`] bytes (no allocation of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Short { len: u8, bytes: [u8; Name::INLINE] },
    Long(Box<str>),
}

impl Default for Name {
    fn default() -> Name {
        Name::Short {
            len: 0,
            bytes: [0; Name::INLINE],
        }
    }
}

impl Name {
    /// Bytes held inline (the enum is 24 bytes, as a `String`).
    const INLINE: usize = 22;

    fn new(id: &str) -> Name {
        match u8::try_from(id.len()) {
            Ok(len) if id.len() <= Name::INLINE => {
                let mut bytes = [0; Name::INLINE];
                bytes[..id.len()].copy_from_slice(id.as_bytes());
                Name::Short { len, bytes }
            }
            _ => Name::Long(id.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Short { len, bytes } => &bytes[..usize::from(*len)],
            Name::Long(id) => id.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Always UTF-8: the bytes of a `&str` (validating a short id is a few steps).
            Name::Short { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Name::Long(id) => id,
        }
    }
}

/// The contacts whose history holds an occurrence of one of `events` that still counts: an
/// occurrence of `events[i].0` counts until `events[i].1` seconds after it (`None`: for ever).
/// A bit per slot (a tick walks them in slot order, 64 contacts a word), the instant each
/// slot's last counting occurrence stops counting, and those instants in a min-heap with lazy
/// deletion, so that a tick first drops the contacts whose occurrences have all run out.
#[derive(Debug, Default)]
struct Watch {
    events: Vec<(EventId, Option<i64>)>,
    bits: Vec<u64>,
    /// Per slot: until when it belongs (exclusive; `Instant::MIN`: it does not).
    until: Vec<Instant>,
    expiries: SlotHeap,
}

/// The slots of contact ids: a hash table of slot numbers (4 bytes each, plus hashbrown's
/// control byte) keyed by `slots[slot].name`, so that an id is not stored a second time as a
/// hash-map key (a `HashMap<String, u32>` bucket is 32 bytes plus its copy of the id).
#[derive(Debug, Default)]
struct NameIndex {
    slots: hashbrown::HashTable<u32>,
}

impl NameIndex {
    fn hash(name: &str) -> u64 {
        let mut hasher = ShortKeyHasher::default();
        hasher.write(name.as_bytes());
        hasher.finish()
    }

    /// The slot of `name`.
    fn get(&self, name: &str, slots: &[Slot]) -> Option<u32> {
        self.slots
            .find(NameIndex::hash(name), |&slot| {
                slots[slot as usize].name.as_bytes() == name.as_bytes()
            })
            .copied()
    }

    /// Adds `slot`, whose name is not in the index yet.
    fn insert(&mut self, slot: u32, slots: &[Slot]) {
        self.slots.insert_unique(
            NameIndex::hash(slots[slot as usize].name.as_str()),
            slot,
            |&s| NameIndex::hash(slots[s as usize].name.as_str()),
        );
    }
}

/// A min-heap of (instant, slot) pairs, ordered by instant then slot, in 8 bytes an entry
/// instead of 16: an instant within 2^31 seconds (68 years) of the first one pushed is kept
/// as a 32-bit offset from a base packed with its slot in one `u64` whose order is the
/// pair's; any other instant (none in practice) goes to a second heap of full pairs. The
/// store's timer queue holds an entry per waiting contact, so its entry size is most of what
/// a waiting instance costs the store.
#[derive(Debug, Default)]
struct SlotHeap {
    /// The instant of offset 0 (set at the first push).
    base: Option<Instant>,
    near: BinaryHeap<Reverse<u64>>,
    far: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl SlotHeap {
    fn len(&self) -> usize {
        self.near.len() + self.far.len()
    }

    /// A heap of `pairs` (built in one pass, not pushed one by one).
    fn from_pairs(pairs: impl Iterator<Item = (Instant, u32)>) -> SlotHeap {
        let mut heap = SlotHeap::default();
        let (mut near, mut far) = (Vec::new(), Vec::new());
        for (time, slot) in pairs {
            match heap.key(time) {
                Some(key) => near.push(Reverse(key | u64::from(slot))),
                None => far.push(Reverse((time, slot))),
            }
        }
        heap.near = BinaryHeap::from(near);
        heap.far = BinaryHeap::from(far);
        heap
    }

    /// `time` as the upper half of a packed entry (`None`: out of the packed range). The
    /// first call sets the base.
    fn key(&mut self, time: Instant) -> Option<u64> {
        let base = *self
            .base
            .get_or_insert_with(|| time.saturating_sub(1 << 31));
        let offset = u32::try_from(time.checked_sub(base)?).ok()?;
        Some(u64::from(offset) << 32)
    }

    fn push(&mut self, time: Instant, slot: u32) {
        match self.key(time) {
            Some(key) => self.near.push(Reverse(key | u64::from(slot))),
            None => self.far.push(Reverse((time, slot))),
        }
    }

    /// The smallest pair, without removing it.
    fn peek(&self) -> Option<(Instant, u32)> {
        let near = match (self.near.peek(), self.base) {
            (Some(Reverse(key)), Some(base)) => Some((base + (key >> 32) as i64, *key as u32)),
            _ => None,
        };
        match (near, self.far.peek()) {
            (Some(n), Some(Reverse(f))) => Some(n.min(*f)),
            (n, f) => n.or(f.map(|Reverse(f)| *f)),
        }
    }

    /// Removes the smallest pair.
    fn pop(&mut self) {
        let top = self.peek();
        if top.is_some() && self.far.peek().map(|Reverse(f)| *f) == top {
            self.far.pop();
        } else {
            self.near.pop();
        }
    }

    /// Keeps only the pairs `keep` accepts.
    fn retain(&mut self, mut keep: impl FnMut(Instant, u32) -> bool) {
        if let Some(base) = self.base {
            self.near
                .retain(|Reverse(key)| keep(base + (key >> 32) as i64, *key as u32));
        }
        self.far.retain(|Reverse((t, slot))| keep(*t, *slot));
    }
}

impl Watch {
    /// Until when a state belongs (`Instant::MIN`: not at all, `Instant::MAX`: for ever).
    fn until(&self, state: &ContactState) -> Instant {
        let mut until = Instant::MIN;
        for e in &state.history {
            if let Some((_, lifetime)) = self.events.iter().find(|(id, _)| *id == e.event) {
                until = until.max(lifetime.map_or(Instant::MAX, |l| e.time.saturating_add(l)));
            }
        }
        until
    }

    fn set(&mut self, slot: usize, until: Instant) {
        if slot >= self.until.len() {
            if until == Instant::MIN {
                return;
            }
            self.until.resize(slot + 1, Instant::MIN);
            self.bits.resize(slot / 64 + 1, 0);
        }
        if self.until[slot] == until {
            return;
        }
        self.until[slot] = until;
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if until == Instant::MIN {
            self.bits[word] &= !bit;
            return;
        }
        self.bits[word] |= bit;
        if until != Instant::MAX {
            self.expiries.push(until, slot as u32);
            if self.expiries.len() > 2 * self.until.len() + 1024 {
                let until = &self.until;
                self.expiries.retain(|t, slot| until[slot as usize] == t);
            }
        }
    }

    /// Takes out the slots whose occurrences all stopped counting at or before `now`.
    fn expire(&mut self, now: Instant) {
        while let Some((t, slot)) = self.expiries.peek() {
            if t > now {
                break;
            }
            self.expiries.pop();
            if self.until[slot as usize] == t {
                self.set(slot as usize, Instant::MIN);
            }
        }
    }
}

/// A history index of a [`MemoryStore`] ([`MemoryStore::watch_history`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchId(usize);

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn slot(&mut self, contact: &str) -> usize {
        if let Some(i) = self.index.get(contact, &self.slots) {
            return i as usize;
        }
        let i = self.slots.len();
        self.slots.push(Slot {
            name: Name::new(contact),
            ..Slot::default()
        });
        self.index.insert(i as u32, &self.slots);
        self.pending.push(false);
        i
    }

    /// After any change of a slot's state: its queue entry, its pending flag, its watches.
    fn changed(&mut self, slot: usize) {
        let state = &self.slots[slot].state;
        let (wake, pending) = (state.wake, state.pending);
        for watch in &mut self.watches {
            let until = watch.until(state);
            watch.set(slot, until);
        }
        self.requeue(slot, wake, pending);
    }

    fn requeue(&mut self, slot: usize, wake: Option<Instant>, pending: bool) {
        let id = slot as u32;
        if self.slots[slot].queued != wake {
            self.slots[slot].queued = wake;
            if let Some(w) = wake {
                self.queue.push(w, id);
            }
            self.drop_stale();
        }
        if self.pending[slot] != pending {
            self.pending[slot] = pending;
            if pending {
                self.pending_count += 1;
            } else {
                self.pending_count -= 1;
            }
        }
    }

    /// Keeps the top of the heap live, and the heap within twice the live entries.
    fn drop_stale(&mut self) {
        while let Some((w, id)) = self.queue.peek() {
            if self.slots[id as usize].queued == Some(w) {
                break;
            }
            self.queue.pop();
        }
        if self.queue.len() > 2 * self.slots.len() + 1024 {
            self.queue = SlotHeap::from_pairs(
                self.slots
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.queued.map(|w| (w, i as u32))),
            );
        }
    }

    /// Read access to one state (tests and reports).
    pub fn get(&self, contact: &str) -> Option<&ContactState> {
        self.index
            .get(contact, &self.slots)
            .map(|i| &self.slots[i as usize].state)
    }

    /// Every contact and its state, in the order they were first seen.
    pub fn states(&self) -> impl Iterator<Item = (&str, &ContactState)> {
        self.slots.iter().map(|s| (s.name.as_str(), &s.state))
    }

    /// Runs `f` on every contact, in the order they were first seen (schedule ticks).
    pub fn update_all(&mut self, mut f: impl FnMut(&str, &mut ContactState)) {
        for slot in 0..self.slots.len() {
            let Slot { name, state, .. } = &mut self.slots[slot];
            f(name.as_str(), state);
            self.changed(slot);
        }
    }

    /// The earliest queued wake-up ([`Store::next_due`] without the contact's name).
    pub fn next_due_at(&self) -> Option<Instant> {
        self.queue.peek().map(|(t, _)| t)
    }

    /// Runs `f` on the contact of the earliest queued wake-up, if any, as
    /// [`Store::update`] on the contact [`Store::next_due`] names would.
    pub fn update_next_due(&mut self, f: impl FnOnce(&str, &mut ContactState)) {
        if let Some((_, slot)) = self.queue.peek() {
            let slot = slot as usize;
            let Slot { name, state, .. } = &mut self.slots[slot];
            f(name.as_str(), state);
            self.changed(slot);
        }
    }

    /// Starts an index of the contacts whose history holds an occurrence of one of `events`
    /// that still counts (an occurrence of `events[i].0` counts for `events[i].1` seconds,
    /// `None`: for ever): the contacts that can be in the audience of a segment that
    /// `eval::required_events` says needs one of them, within windows no longer than those
    /// lifetimes. It is kept true as states change. Asking twice for the same events gives
    /// the same index.
    pub fn watch_history(&mut self, events: &[(EventId, Option<i64>)]) -> WatchId {
        if let Some(i) = self.watches.iter().position(|w| w.events == events) {
            return WatchId(i);
        }
        let mut watch = Watch {
            events: events.to_vec(),
            ..Watch::default()
        };
        for (slot, s) in self.slots.iter().enumerate() {
            let until = watch.until(&s.state);
            watch.set(slot, until);
        }
        self.watches.push(watch);
        WatchId(self.watches.len() - 1)
    }

    /// The contacts a history index holds at `now`, in the order they were first seen.
    pub fn watched(&mut self, watch: WatchId, now: Instant) -> Vec<&str> {
        let watch = &mut self.watches[watch.0];
        watch.expire(now);
        let mut contacts = Vec::new();
        for (word, bits) in watch.bits.iter().enumerate() {
            let mut bits = *bits;
            while bits != 0 {
                contacts.push(
                    self.slots[word * 64 + bits.trailing_zeros() as usize]
                        .name
                        .as_str(),
                );
                bits &= bits - 1;
            }
        }
        contacts
    }

    /// Runs `f` on every contact a history index holds at `now`, in the order they were
    /// first seen, as [`MemoryStore::update_all`] would reach them: the contacts in the index
    /// when the call begins (`f` on one contact does not change another's history), each
    /// once.
    pub fn update_watched(
        &mut self,
        watch: WatchId,
        now: Instant,
        mut f: impl FnMut(&str, &mut ContactState),
    ) {
        self.watches[watch.0].expire(now);
        for word in 0..self.watches[watch.0].bits.len() {
            // A copy: `f` may take the contact out of the index (its history pruned).
            let mut bits = self.watches[watch.0].bits[word];
            while bits != 0 {
                let slot = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Slot { name, state, .. } = &mut self.slots[slot];
                f(name.as_str(), state);
                self.changed(slot);
            }
        }
    }
}

impl Store for MemoryStore {
    fn load(&mut self, contact: &str) -> Result<Option<ContactState>, StoreError> {
        Ok(self.get(contact).cloned())
    }

    fn save(&mut self, contact: &str, state: &ContactState) -> Result<(), StoreError> {
        let slot = self.slot(contact);
        self.slots[slot].state = state.clone();
        self.changed(slot);
        Ok(())
    }

    fn update<R>(
        &mut self,
        contact: &str,
        f: impl FnOnce(&mut ContactState) -> R,
    ) -> Result<R, StoreError> {
        let slot = self.slot(contact);
        let result = f(&mut self.slots[slot].state);
        self.changed(slot);
        Ok(result)
    }

    fn next_due(&self) -> Option<(Instant, String)> {
        self.queue
            .peek()
            .map(|(t, i)| (t, self.slots[i as usize].name.as_str().to_string()))
    }

    fn first_seen(&mut self, message_id: &str) -> Result<bool, StoreError> {
        if self.seen.contains(message_id) {
            return Ok(false);
        }
        Ok(self.seen.insert(message_id.to_string()))
    }

    fn contacts(&self) -> Vec<String> {
        let mut contacts: Vec<String> = self
            .slots
            .iter()
            .map(|s| s.name.as_str().to_string())
            .collect();
        contacts.sort();
        contacts
    }

    fn any_pending(&self) -> bool {
        self.pending_count > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PastEvent;

    fn occurrence(event: u16, time: Instant) -> PastEvent {
        PastEvent {
            event: EventId(event),
            time,
            properties: None,
        }
    }

    const E1: (EventId, Option<i64>) = (EventId(1), None);
    const E2: (EventId, Option<i64>) = (EventId(2), Some(100));

    /// The contacts whose history holds event 1, or event 2 of after `now - 100`, by brute
    /// force.
    fn holding(store: &MemoryStore, now: Instant) -> Vec<String> {
        store
            .states()
            .filter(|(_, s)| {
                s.history
                    .iter()
                    .any(|e| e.event == E1.0 || (e.event == E2.0 && e.time + 100 > now))
            })
            .map(|(name, _)| name.to_string())
            .collect()
    }

    fn watched(store: &mut MemoryStore, watch: WatchId, now: Instant) -> Vec<String> {
        let contacts = store.watched(watch, now);
        contacts.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn the_contact_index_finds_every_id_once_stored() {
        let mut store = MemoryStore::new();
        let ids: Vec<String> = (0..5_000)
            .map(|i| match i % 4 {
                0 => format!("c{i}"),
                1 => format!("user-{i:08}@example.com"),
                2 => "x".repeat(i % 40),
                // Multi-byte ids around the inline limit (22 bytes): 21, 23, 25 bytes.
                _ if i % 100 == 3 => format!("{}{}", "é".repeat(10 + i % 3), i % 7),
                _ => format!("{i}"),
            })
            .collect();
        for (i, id) in ids.iter().enumerate() {
            store
                .update(id, |s| s.next_instance = i as u32 + 1)
                .unwrap();
        }
        // `"x".repeat(n)` repeats ids (n < 40): a repeated id is the same contact.
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(store.states().count(), distinct.len());
        assert_eq!(store.index.slots.len(), distinct.len());
        for (i, id) in ids.iter().enumerate() {
            let last = ids.iter().rposition(|other| other == id).unwrap();
            assert!(last >= i);
            assert_eq!(
                store.get(id).map(|s| s.next_instance),
                Some(last as u32 + 1)
            );
            let slot = store.index.get(id, &store.slots).unwrap() as usize;
            assert_eq!(store.slots[slot].name.as_str(), id);
        }
        for missing in [
            "c1",
            "user-00000000@example.com",
            "c5000",
            "x".repeat(41).as_str(),
        ] {
            assert!(store.get(missing).is_none(), "{missing}");
        }
        // Short ids are held inline, longer ones on the heap; both read back as given.
        assert!(matches!(
            Name::new(&"é".repeat(11)),
            Name::Short { len: 22, .. }
        ));
        assert!(matches!(Name::new(&"x".repeat(23)), Name::Long(_)));
        assert_eq!(std::mem::size_of::<Name>(), std::mem::size_of::<String>());
        let mut sorted: Vec<String> = distinct.into_iter().cloned().collect();
        sorted.sort();
        assert_eq!(store.contacts(), sorted);
    }

    #[test]
    fn the_packed_heap_pops_in_the_order_of_a_heap_of_pairs() {
        // Instants near the first one (packed), far before and after it (the second heap),
        // at both ends of the packed range, and repeated; slots in any order.
        let first: Instant = 1_770_000_000;
        let mut times = vec![
            first,
            first - (1 << 31),
            first - (1 << 31) - 1,
            first + (1 << 31) - 1,
            first + (1 << 31),
            Instant::MIN,
            Instant::MAX,
            -5,
            first,
        ];
        let mut x: u64 = 42;
        for _ in 0..2_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let spread = if x % 7 == 0 { 1 << 40 } else { 86_400 * 30 };
            times.push(first - spread / 2 + ((x >> 20) % spread as u64) as i64);
        }
        let mut heap = SlotHeap::default();
        let mut reference = BinaryHeap::new();
        for (i, t) in times.iter().enumerate() {
            let slot = (i as u32).wrapping_mul(2_654_435_761) % 300;
            heap.push(*t, slot);
            reference.push(Reverse((*t, slot)));
        }
        assert!(heap.far.len() >= 5, "the far heap is exercised");
        assert_eq!(heap.len(), reference.len());
        let rebuilt = SlotHeap::from_pairs(reference.iter().map(|Reverse(p)| *p));
        let mut rebuilt = rebuilt;
        // Half popped, then a retain, then the rest.
        for _ in 0..times.len() / 2 {
            let Reverse(expected) = reference.pop().unwrap();
            assert_eq!(heap.peek(), Some(expected));
            assert_eq!(rebuilt.peek(), Some(expected));
            heap.pop();
            rebuilt.pop();
        }
        heap.retain(|t, slot| (t ^ i64::from(slot)) % 3 != 0);
        reference.retain(|Reverse((t, slot))| (t ^ i64::from(*slot)) % 3 != 0);
        assert_eq!(heap.len(), reference.len());
        while let Some(Reverse(expected)) = reference.pop() {
            assert_eq!(heap.peek(), Some(expected));
            heap.pop();
        }
        assert_eq!(heap.peek(), None);
        assert_eq!(std::mem::size_of::<Reverse<u64>>(), 8);
    }

    #[test]
    fn a_history_index_follows_every_change_of_a_state_and_time() {
        let mut store = MemoryStore::new();
        // Contacts before the index exists are indexed when it starts.
        store
            .update("early", |s| s.history.push(occurrence(1, 10)))
            .unwrap();
        let watch = store.watch_history(&[E1, E2]);
        assert_eq!(store.watch_history(&[E1, E2]), watch);
        assert_eq!(watched(&mut store, watch, 0), vec!["early"]);
        // 130 contacts (three words of bits); every third gains event 2, the others event 3.
        for i in 0..130 {
            let event = if i % 3 == 0 { 2 } else { 3 };
            store
                .update(&format!("c{i}"), |s| s.history.push(occurrence(event, 20)))
                .unwrap();
        }
        let expected = holding(&store, 20);
        assert_eq!(expected.len(), 1 + 44);
        assert_eq!(watched(&mut store, watch, 20), expected);
        // A contact gains the event later (through `save` too), another's history is pruned.
        store
            .update("c1", |s| s.history.push(occurrence(1, 30)))
            .unwrap();
        let mut state = store.get("c2").cloned().unwrap();
        state.history.push(occurrence(2, 90));
        store.save("c2", &state).unwrap();
        store.update("c0", |s| s.history.clear()).unwrap();
        store
            .update("early", |s| s.history.retain(|e| e.time > 15))
            .unwrap();
        assert_eq!(watched(&mut store, watch, 30), holding(&store, 30));
        assert!(!watched(&mut store, watch, 30).contains(&"c0".to_string()));
        assert!(watched(&mut store, watch, 30).contains(&"c1".to_string()));

        // A visit reaches the contacts of the index when it begins, each once, in the order
        // they were first seen, even when it takes one out of the index on the way.
        let before = watched(&mut store, watch, 40);
        let mut visited = Vec::new();
        store.update_watched(watch, 40, |contact, state| {
            visited.push(contact.to_string());
            if contact == "c3" || contact == "c129" {
                state.history.clear();
            }
        });
        assert_eq!(visited, before);
        assert_eq!(watched(&mut store, watch, 40), holding(&store, 40));
        assert!(!watched(&mut store, watch, 40).contains(&"c129".to_string()));
        // `update_all` keeps it true as well.
        store.update_all(|contact, state| {
            if contact == "c4" {
                state.history.push(occurrence(1, 40));
            }
        });
        assert_eq!(watched(&mut store, watch, 40), holding(&store, 40));
        assert!(watched(&mut store, watch, 40).contains(&"c4".to_string()));

        // Time alone: event 2 of 20 stops counting at 120, c2's of 90 at 190.
        let mut visited = Vec::new();
        store.update_watched(watch, 120, |contact, _| visited.push(contact.to_string()));
        assert_eq!(visited, holding(&store, 120));
        assert_eq!(visited, vec!["c1", "c2", "c4"]);
        assert_eq!(watched(&mut store, watch, 190), vec!["c1", "c4"]);
        // A new occurrence brings a contact back after it ran out.
        store
            .update("c6", |s| s.history.push(occurrence(2, 200)))
            .unwrap();
        assert_eq!(watched(&mut store, watch, 250), vec!["c1", "c4", "c6"]);
        assert_eq!(watched(&mut store, watch, 300), holding(&store, 300));
    }
}
