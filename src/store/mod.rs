//! Where contact states, the timer queue and the seen `messageId`s live.
//!
//! Owns: the [`Store`] interface the drivers (simulate, test, the daemon) use, and
//! [`MemoryStore`], the in-memory implementation for simulate and tests.
//! Must not: decide anything about flows (that is the engine). Only this module (and later
//! its sled implementation) knows how states are kept; nothing here imports sled yet.

use crate::engine::time::Instant;
use crate::engine::ContactState;
use std::collections::{BTreeSet, HashMap, HashSet};

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

/// Everything in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    states: HashMap<String, ContactState>,
    queue: BTreeSet<(Instant, String)>,
    queued: HashMap<String, Instant>,
    seen: HashSet<String>,
    pending: HashSet<String>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn requeue(&mut self, contact: &str, wake: Option<Instant>, pending: bool) {
        match self.queued.get(contact) {
            Some(old) if Some(*old) == wake => {}
            Some(old) => {
                self.queue.remove(&(*old, contact.to_string()));
                self.queued.remove(contact);
                if let Some(w) = wake {
                    self.queue.insert((w, contact.to_string()));
                    self.queued.insert(contact.to_string(), w);
                }
            }
            None => {
                if let Some(w) = wake {
                    self.queue.insert((w, contact.to_string()));
                    self.queued.insert(contact.to_string(), w);
                }
            }
        }
        if pending {
            if !self.pending.contains(contact) {
                self.pending.insert(contact.to_string());
            }
        } else {
            self.pending.remove(contact);
        }
    }

    /// Read access to one state (tests and reports).
    pub fn get(&self, contact: &str) -> Option<&ContactState> {
        self.states.get(contact)
    }

    /// Every state (for size measurements).
    pub fn states(&self) -> impl Iterator<Item = (&String, &ContactState)> {
        self.states.iter()
    }
}

impl Store for MemoryStore {
    fn load(&mut self, contact: &str) -> Result<Option<ContactState>, StoreError> {
        Ok(self.states.get(contact).cloned())
    }

    fn save(&mut self, contact: &str, state: &ContactState) -> Result<(), StoreError> {
        self.requeue(contact, state.wake, state.pending);
        self.states.insert(contact.to_string(), state.clone());
        Ok(())
    }

    fn update<R>(
        &mut self,
        contact: &str,
        f: impl FnOnce(&mut ContactState) -> R,
    ) -> Result<R, StoreError> {
        let (result, wake, pending) = match self.states.get_mut(contact) {
            Some(state) => {
                let result = f(state);
                (result, state.wake, state.pending)
            }
            None => {
                let mut state = ContactState::default();
                let result = f(&mut state);
                let (wake, pending) = (state.wake, state.pending);
                self.states.insert(contact.to_string(), state);
                (result, wake, pending)
            }
        };
        self.requeue(contact, wake, pending);
        Ok(result)
    }

    fn next_due(&self) -> Option<(Instant, String)> {
        self.queue.first().cloned()
    }

    fn first_seen(&mut self, message_id: &str) -> Result<bool, StoreError> {
        Ok(self.seen.insert(message_id.to_string()))
    }

    fn contacts(&self) -> Vec<String> {
        let mut contacts: Vec<String> = self.states.keys().cloned().collect();
        contacts.sort();
        contacts
    }

    fn any_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}
