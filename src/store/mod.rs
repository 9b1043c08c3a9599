//! Where contact states, the timer queue and the seen `messageId`s live.
//!
//! Owns: the [`Store`] interface the drivers (simulate, test, the daemon) use, and
//! [`MemoryStore`], the in-memory implementation for simulate and tests; [`sled::SledStore`],
//! the durable one of the daemon.
//! Must not: decide anything about flows (that is the engine). Only this module knows how
//! states are kept; only `store::sled` imports sled.

pub mod sled;

use crate::engine::time::Instant;
use crate::engine::{ContactState, FastMap, FastSet};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

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
/// integers.
#[derive(Debug, Default)]
pub struct MemoryStore {
    index: FastMap<String, u32>,
    names: Vec<String>,
    states: Vec<ContactState>,
    queued: Vec<Option<Instant>>,
    /// Wake-ups as a min-heap with lazy deletion: an entry is live only while it equals
    /// `queued[slot]`; stale entries are dropped when they reach the top (a contiguous heap is
    /// far kinder to the cache than a tree with one node per contact).
    queue: BinaryHeap<Reverse<(Instant, u32)>>,
    seen: FastSet<String>,
    /// Per slot: something other than a recurring trigger is pending (a flag per contact,
    /// not a hash set: schedule ticks requeue every contact).
    pending: Vec<bool>,
    pending_count: usize,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn slot(&mut self, contact: &str) -> usize {
        if let Some(i) = self.index.get(contact) {
            return *i as usize;
        }
        let i = self.states.len();
        self.index.insert(contact.to_string(), i as u32);
        self.names.push(contact.to_string());
        self.states.push(ContactState::default());
        self.queued.push(None);
        self.pending.push(false);
        i
    }

    fn requeue(&mut self, slot: usize, wake: Option<Instant>, pending: bool) {
        let id = slot as u32;
        if self.queued[slot] != wake {
            self.queued[slot] = wake;
            if let Some(w) = wake {
                self.queue.push(Reverse((w, id)));
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
        while let Some(Reverse((w, id))) = self.queue.peek().copied() {
            if self.queued[id as usize] == Some(w) {
                break;
            }
            self.queue.pop();
        }
        if self.queue.len() > 2 * self.states.len() + 1024 {
            self.queue = self
                .queued
                .iter()
                .enumerate()
                .filter_map(|(i, w)| w.map(|w| Reverse((w, i as u32))))
                .collect();
        }
    }

    /// Read access to one state (tests and reports).
    pub fn get(&self, contact: &str) -> Option<&ContactState> {
        self.index.get(contact).map(|i| &self.states[*i as usize])
    }

    /// Every state (for size measurements).
    pub fn states(&self) -> impl Iterator<Item = (&String, &ContactState)> {
        self.names.iter().zip(self.states.iter())
    }

    /// Runs `f` on every contact, in the order they were first seen (schedule ticks).
    pub fn update_all(&mut self, mut f: impl FnMut(&str, &mut ContactState)) {
        for slot in 0..self.states.len() {
            let state = &mut self.states[slot];
            f(&self.names[slot], state);
            let (wake, pending) = (state.wake, state.pending);
            self.requeue(slot, wake, pending);
        }
    }
}

impl Store for MemoryStore {
    fn load(&mut self, contact: &str) -> Result<Option<ContactState>, StoreError> {
        Ok(self.get(contact).cloned())
    }

    fn save(&mut self, contact: &str, state: &ContactState) -> Result<(), StoreError> {
        let slot = self.slot(contact);
        self.states[slot] = state.clone();
        self.requeue(slot, state.wake, state.pending);
        Ok(())
    }

    fn update<R>(
        &mut self,
        contact: &str,
        f: impl FnOnce(&mut ContactState) -> R,
    ) -> Result<R, StoreError> {
        let slot = self.slot(contact);
        let state = &mut self.states[slot];
        let result = f(state);
        let (wake, pending) = (state.wake, state.pending);
        self.requeue(slot, wake, pending);
        Ok(result)
    }

    fn next_due(&self) -> Option<(Instant, String)> {
        self.queue
            .peek()
            .map(|Reverse((t, i))| (*t, self.names[*i as usize].clone()))
    }

    fn first_seen(&mut self, message_id: &str) -> Result<bool, StoreError> {
        if self.seen.contains(message_id) {
            return Ok(false);
        }
        Ok(self.seen.insert(message_id.to_string()))
    }

    fn contacts(&self) -> Vec<String> {
        let mut contacts = self.names.clone();
        contacts.sort();
        contacts
    }

    fn any_pending(&self) -> bool {
        self.pending_count > 0
    }
}
