//! The per-contact state the engine reads and writes: small and serde-serialisable, because
//! the daemon keeps one per contact in its store.
//!
//! Owns: the layout of a contact's state (traits, consent withdrawals, the event history that
//! behaviour functions need, active flow instances, re-entry bookkeeping, marketing sends
//! inside the frequency-cap windows, segment memberships, pending goals, the next wake-up).
//! Must not: decide anything (that is the engine) or know how it is stored.

use crate::compile::{EventId, FlowId, SegmentId, StateId};
use crate::engine::time::Instant;
use crate::syntax::ast::Channel;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything the engine remembers about one contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    /// Traits from `identify` records and `set contact.x` steps.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub traits: Map<String, Value>,
    /// Channels (bit per [`channel_bit`]) unsubscribed since consent was last given.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub withdrawn: u8,
    /// Channels for which an `all` unsubscribe is in effect (blocks transactional sends too).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub withdrawn_all: u8,
    /// The occurrences behaviour functions need (see `compile::HistoryNeed`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PastEvent>,
    /// Active flow instances, ordered by (flow, id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
    /// The last entry into each `reentry never`/`reentry after` flow entered so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<(FlowId, Instant)>,
    /// Marketing sends still inside a frequency-cap window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<(Channel, Instant)>,
    /// `when entering` segments the contact is a member of, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<SegmentId>,
    /// Goals waiting for their event: (flow, deadline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<(FlowId, Instant)>,
    /// The id of the next instance.
    #[serde(default)]
    pub next_instance: u32,
    /// The next instant the engine must be called with [`crate::engine::Input::Timers`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<Instant>,
    /// The next instant a `when entering` segment can change by time alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_wake: Option<Instant>,
    /// The next anniversary of an anniversary flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anniversary_wake: Option<Instant>,
    /// The contact's timezone, parsed once (not stored; recomputed after a load).
    #[serde(skip)]
    pub cached_timezone: Option<chrono_tz::Tz>,
    /// Whether something other than a recurring trigger (anniversary) is pending.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// One occurrence of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastEvent {
    pub event: EventId,
    pub time: Instant,
    /// Only the properties behaviour functions read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Box<Map<String, Value>>>,
}

/// A contact's run through a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: u32,
    pub flow: FlowId,
    /// The step the instance is at: a `wait for` it waits on, a `send` deferred by quiet hours,
    /// or the step to run when `wake` falls due.
    pub state: StateId,
    pub entered: Instant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<Instant>,
    /// In the control group: goes through silently.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holdout: bool,
    /// The holdout line (at the first send) has been written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holdout_reported: bool,
    /// The properties of the event that started the instance.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub trigger: Map<String, Value>,
    /// The properties of the last event received by a `wait for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Map<String, Value>>,
}

/// The bit of a channel in [`ContactState::withdrawn`].
pub fn channel_bit(channel: Channel) -> u8 {
    match channel {
        Channel::Email => 1,
        Channel::Sms => 2,
        Channel::Push => 4,
        Channel::Webhook => 8,
    }
}

/// The trait that holds a channel's address (`None`: the channel needs none).
pub fn address_trait(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Email => Some("email"),
        Channel::Sms => Some("phone"),
        Channel::Push => Some("push_token"),
        Channel::Webhook => None,
    }
}

/// Why a send was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    NoAddress,
    NoConsent,
    Unsubscribed,
    FrequencyCap,
    Holdout,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoAddress => "no_address",
            SkipReason::NoConsent => "no_consent",
            SkipReason::Unsubscribed => "unsubscribed",
            SkipReason::FrequencyCap => "frequency_cap",
            SkipReason::Holdout => "holdout",
        }
    }
}

impl ContactState {
    /// Whether the contact has an address for `channel` (webhooks need none).
    pub fn has_address(&self, channel: Channel) -> bool {
        match address_trait(channel) {
            None => true,
            Some(key) => match self.traits.get(key) {
                Some(Value::String(s)) => !s.trim().is_empty(),
                Some(Value::Null) | None => false,
                Some(_) => true,
            },
        }
    }

    /// `consent.CHANNEL == true` in the traits.
    pub fn has_consent(&self, channel: Channel) -> bool {
        self.traits
            .get("consent")
            .and_then(|c| c.get(channel.keyword()))
            .and_then(Value::as_bool)
            == Some(true)
    }

    /// Why a marketing send on `channel` cannot go out (RUNTIME.md 3), in the contract's order.
    pub fn marketing_block(&self, channel: Channel) -> Option<SkipReason> {
        if channel == Channel::Webhook {
            // Webhooks go to the shop's own systems: no address or consent, only `all`.
            return (self.withdrawn_all & channel_bit(channel) != 0)
                .then_some(SkipReason::Unsubscribed);
        }
        if !self.has_address(channel) {
            Some(SkipReason::NoAddress)
        } else if !self.has_consent(channel) {
            Some(SkipReason::NoConsent)
        } else if self.withdrawn & channel_bit(channel) != 0 {
            Some(SkipReason::Unsubscribed)
        } else {
            None
        }
    }

    /// Why a transactional send on `channel` cannot go out.
    pub fn transactional_block(&self, channel: Channel) -> Option<SkipReason> {
        if !self.has_address(channel) {
            Some(SkipReason::NoAddress)
        } else if self.withdrawn_all & channel_bit(channel) != 0 {
            Some(SkipReason::Unsubscribed)
        } else {
            None
        }
    }

    /// `can_receive(channel)`.
    pub fn can_receive(&self, channel: Channel) -> bool {
        self.marketing_block(channel).is_none()
    }
}
