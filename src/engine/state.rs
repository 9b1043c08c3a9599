//! The per-contact state the engine reads and writes: small and serde-serialisable, because
//! the daemon keeps one per contact in its store.
//!
//! Owns: the layout of a contact's state (traits, consent withdrawals, the event history that
//! behaviour functions need, active flow instances, re-entry bookkeeping, marketing sends
//! inside the frequency-cap windows, segment memberships, pending goals, the next wake-up).
//! Must not: decide anything (that is the engine) or know how it is stored.

use crate::compile::{EventId, FlowId, SegmentId, StateId};
use crate::engine::time::Instant;
use crate::engine::traits::{Trait, Traits};
use crate::syntax::ast::Channel;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything the engine remembers about one contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    /// Traits from `identify` records and `set contact.x` steps (serialised as the
    /// `serde_json::Map` they were before [`Traits`]).
    #[serde(default, skip_serializing_if = "Traits::is_empty")]
    pub traits: Traits,
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
    /// Addresses and consents read from the traits, filled by the engine at the first send
    /// after a change of the traits (not stored; recomputed after a load). Code that edits
    /// `traits` outside the engine must call [`ContactState::traits_changed`].
    #[serde(skip)]
    pub channel_cache: Cached<ChannelBits>,
}

/// A value derived from the rest of a state: never part of its equality.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cached<T>(pub Option<T>);

impl<T> PartialEq for Cached<T> {
    fn eq(&self, _: &Cached<T>) -> bool {
        true
    }
}

/// Per channel (bits of [`channel_bit`]): an address is present, consent is `true`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelBits {
    address: u8,
    consent: u8,
}

impl ChannelBits {
    /// Read from traits (the rules of [`ContactState::has_address`] and `has_consent`).
    pub fn of(traits: &Traits) -> ChannelBits {
        let mut bits = ChannelBits::default();
        if traits.is_empty() {
            bits.address = channel_bit(Channel::Webhook);
            return bits;
        }
        let consent = traits.get("consent");
        for channel in [
            Channel::Email,
            Channel::Sms,
            Channel::Push,
            Channel::Webhook,
        ] {
            let bit = channel_bit(channel);
            let address = match address_trait(channel) {
                None => true,
                Some(key) => match traits.get(key) {
                    Some(Trait::Json(Value::String(s))) => !s.trim().is_empty(),
                    Some(Trait::Json(Value::Null)) | None => false,
                    Some(_) => true,
                },
            };
            if address {
                bits.address |= bit;
            }
            if consent
                .and_then(|c| c.get(channel.keyword()))
                .and_then(Value::as_bool)
                == Some(true)
            {
                bits.consent |= bit;
            }
        }
        bits
    }
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
    pub properties: Option<Props>,
}

/// A small JSON object kept in a state (trigger and event properties, history properties):
/// its entries sorted by key as in a `serde_json::Map` (a `BTreeMap`), in one allocation
/// (none when empty) instead of a B-tree node sized for eleven entries. Serialised exactly as
/// the `Map` it replaces (a map in key order), so states written before it load unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Props(Box<[(Box<str>, Value)]>);

impl Props {
    /// The entries of `map`, in its (key) order.
    pub fn from_map(map: &Map<String, Value>) -> Props {
        Props(
            map.iter()
                .map(|(k, v)| (Box::from(k.as_str()), v.clone()))
                .collect(),
        )
    }

    /// The entries of `map` whose keys are in `keys` (`None`: all).
    pub fn keep(map: &Map<String, Value>, keys: Option<&[String]>) -> Props {
        match keys {
            None => Props::from_map(map),
            Some(keys) => {
                let mut kept: Vec<(Box<str>, Value)> =
                    Vec::with_capacity(keys.len().min(map.len()));
                for key in keys {
                    if let Some(value) = map.get(key) {
                        kept.push((Box::from(key.as_str()), value.clone()));
                    }
                }
                Props::from_entries(kept)
            }
        }
    }

    /// Entries in any order; the last of equal keys wins, as `Map::insert` would.
    pub fn from_entries(mut entries: Vec<(Box<str>, Value)>) -> Props {
        if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            // A stable sort keeps equal keys in insertion order; keep the last of each.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut deduped: Vec<(Box<str>, Value)> = Vec::with_capacity(entries.len());
            for entry in entries {
                match deduped.last_mut() {
                    Some(last) if last.0 == entry.0 => *last = entry,
                    _ => deduped.push(entry),
                }
            }
            entries = deduped;
        }
        Props(entries.into_boxed_slice())
    }

    /// A borrowed view (what expressions and templates read).
    pub fn view(&self) -> PropsRef<'_> {
        PropsRef(&self.0)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.view().get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_map(&self) -> Map<String, Value> {
        self.view().to_map()
    }

    /// Heap bytes held (for size measurements).
    pub fn heap_bytes(&self) -> usize {
        self.0.len() * std::mem::size_of::<(Box<str>, Value)>()
            + self.0.iter().map(|(k, _)| k.len()).sum::<usize>()
    }
}

impl Serialize for Props {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(serializer)
    }
}

/// A borrowed [`Props`] (an instance without carried properties lends an empty one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PropsRef<'a>(&'a [(Box<str>, Value)]);

impl<'a> PropsRef<'a> {
    pub const EMPTY: PropsRef<'static> = PropsRef(&[]);

    pub fn get(self, key: &str) -> Option<&'a Value> {
        let entries = self.0;
        // A handful of entries: a scan beats a binary search.
        if entries.len() <= 8 {
            return entries.iter().find(|(k, _)| &**k == key).map(|(_, v)| v);
        }
        entries
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &entries[i].1)
    }

    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    pub fn len(self) -> usize {
        self.0.len()
    }

    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// The same object as a `serde_json::Map` (templates and `--render` see exactly this).
    pub fn to_map(self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

impl Serialize for PropsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            map.serialize_entry(&**k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Props {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Props, D::Error> {
        Map::<String, Value>::deserialize(deserializer).map(|m| Props::from_map(&m))
    }
}

/// What an instance carries besides its position: kept behind one pointer, absent when the
/// flow reads no trigger or event property and the instance is not in a holdout (most
/// instances).
#[derive(Debug, Clone, Default, PartialEq)]
struct Carried {
    trigger: Props,
    event: Option<Props>,
    holdout: bool,
    holdout_reported: bool,
}

impl Carried {
    fn is_empty(&self) -> bool {
        self.trigger.is_empty() && self.event.is_none() && !self.holdout && !self.holdout_reported
    }
}

/// A contact's run through a flow. 40 bytes: the properties it carries and its holdout flags
/// are behind one pointer (none when it carries nothing).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "InstanceRepr<Props>")]
pub struct Instance {
    pub id: u32,
    pub flow: FlowId,
    /// The step the instance is at: a `wait for` it waits on, a `send` deferred by quiet hours,
    /// or the step to run when `wake` falls due.
    pub state: StateId,
    pub entered: Instant,
    pub wake: Option<Instant>,
    carried: Option<Box<Carried>>,
}

/// The serialised form of an [`Instance`] (the fields as they were before [`Carried`]).
#[derive(Serialize, Deserialize)]
struct InstanceRepr<T: IsEmpty> {
    id: u32,
    flow: FlowId,
    state: StateId,
    entered: Instant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wake: Option<Instant>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    holdout: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    holdout_reported: bool,
    /// The properties of the event that started the instance.
    #[serde(default, skip_serializing_if = "IsEmpty::is_empty_props")]
    trigger: T,
    /// The properties of the last event received by a `wait for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<T>,
}

/// `skip_serializing_if` for either form of the trigger properties.
trait IsEmpty {
    fn is_empty_props(&self) -> bool;
}

impl IsEmpty for Props {
    fn is_empty_props(&self) -> bool {
        self.is_empty()
    }
}

impl IsEmpty for PropsRef<'_> {
    fn is_empty_props(&self) -> bool {
        self.is_empty()
    }
}

impl From<InstanceRepr<Props>> for Instance {
    fn from(r: InstanceRepr<Props>) -> Instance {
        let mut instance = Instance::new(r.id, r.flow, r.state, r.entered, r.holdout, r.trigger);
        instance.wake = r.wake;
        if r.holdout_reported {
            instance.set_holdout_reported();
        }
        instance.set_event(r.event);
        instance
    }
}

impl Serialize for Instance {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        InstanceRepr {
            id: self.id,
            flow: self.flow,
            state: self.state,
            entered: self.entered,
            wake: self.wake,
            holdout: self.holdout(),
            holdout_reported: self.holdout_reported(),
            trigger: self.trigger(),
            event: self.event(),
        }
        .serialize(serializer)
    }
}

impl Instance {
    pub fn new(
        id: u32,
        flow: FlowId,
        state: StateId,
        entered: Instant,
        holdout: bool,
        trigger: Props,
    ) -> Instance {
        Instance {
            id,
            flow,
            state,
            entered,
            wake: None,
            carried: (!trigger.is_empty() || holdout).then(|| {
                Box::new(Carried {
                    trigger,
                    event: None,
                    holdout,
                    holdout_reported: false,
                })
            }),
        }
    }

    /// In the control group: goes through silently.
    pub fn holdout(&self) -> bool {
        self.carried.as_ref().is_some_and(|c| c.holdout)
    }

    /// The holdout line (at the first send) has been written.
    pub fn holdout_reported(&self) -> bool {
        self.carried.as_ref().is_some_and(|c| c.holdout_reported)
    }

    pub fn set_holdout_reported(&mut self) {
        self.carried
            .get_or_insert_with(Box::default)
            .holdout_reported = true;
    }

    /// The properties of the event that started the instance (only those the flow reads).
    pub fn trigger(&self) -> PropsRef<'_> {
        self.carried
            .as_ref()
            .map_or(PropsRef::EMPTY, |c| c.trigger.view())
    }

    /// The properties of the last event received by a `wait for`.
    pub fn event(&self) -> Option<PropsRef<'_>> {
        self.carried
            .as_ref()
            .and_then(|c| c.event.as_ref().map(Props::view))
    }

    pub fn set_event(&mut self, event: Option<Props>) {
        match (&mut self.carried, event) {
            (Some(c), event) => c.event = event,
            (None, None) => {}
            (None, Some(event)) => {
                self.carried = Some(Box::new(Carried {
                    event: Some(event),
                    ..Carried::default()
                }))
            }
        }
        if self.carried.as_ref().is_some_and(|c| c.is_empty()) {
            self.carried = None;
        }
    }

    /// Heap bytes held (for size measurements).
    pub fn heap_bytes(&self) -> usize {
        self.carried.as_ref().map_or(0, |c| {
            std::mem::size_of::<Carried>()
                + c.trigger.heap_bytes()
                + c.event.as_ref().map_or(0, Props::heap_bytes)
        })
    }
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
    /// Forgets what the state derives from its traits (after any change of `traits`).
    pub fn traits_changed(&mut self) {
        self.channel_cache = Cached(None);
    }

    /// Fills the cache of addresses and consents (before sends).
    pub fn fill_channel_cache(&mut self) {
        if self.channel_cache.0.is_none() {
            self.channel_cache = Cached(Some(ChannelBits::of(&self.traits)));
        }
    }

    fn channel_bits(&self) -> ChannelBits {
        self.channel_cache
            .0
            .unwrap_or_else(|| ChannelBits::of(&self.traits))
    }

    /// Whether the contact has an address for `channel` (webhooks need none).
    pub fn has_address(&self, channel: Channel) -> bool {
        self.channel_bits().address & channel_bit(channel) != 0
    }

    /// `consent.CHANNEL == true` in the traits.
    pub fn has_consent(&self, channel: Channel) -> bool {
        self.channel_bits().consent & channel_bit(channel) != 0
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The serialised form of an instance as it was written before [`Props`] and
    /// [`Carried`] (a `serde_json::Map` per object): states in a store must load unchanged.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct OldInstance {
        id: u32,
        flow: FlowId,
        state: StateId,
        entered: Instant,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wake: Option<Instant>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        holdout: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        holdout_reported: bool,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        trigger: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<Map<String, Value>>,
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        }
    }

    #[test]
    fn instances_serialise_as_before_in_json_and_messagepack() {
        let olds = [
            OldInstance {
                id: 7,
                flow: FlowId(2),
                state: StateId(5),
                entered: 1_770_000_000,
                wake: Some(1_770_003_600),
                holdout: false,
                holdout_reported: false,
                trigger: Map::new(),
                event: None,
            },
            OldInstance {
                id: 1,
                flow: FlowId(0),
                state: StateId(1),
                entered: -5,
                wake: None,
                holdout: true,
                holdout_reported: true,
                trigger: object(json!({"zeta": [1, {"b": 2}], "order_id": "o1", "a": null})),
                event: Some(Map::new()),
            },
            OldInstance {
                id: 3,
                flow: FlowId(4),
                state: StateId(2),
                entered: 11,
                wake: Some(12),
                holdout: true,
                holdout_reported: false,
                trigger: Map::new(),
                event: None,
            },
            OldInstance {
                id: 2,
                flow: FlowId(1),
                state: StateId(3),
                entered: 9,
                wake: Some(10),
                holdout: false,
                holdout_reported: false,
                trigger: Map::new(),
                event: Some(object(json!({"order_id": "o2", "total": 12.5}))),
            },
        ];
        for old in &olds {
            let json = serde_json::to_string(old).unwrap();
            let new: Instance = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&new).unwrap(), json);
            assert_eq!(new.trigger().to_map(), old.trigger);
            assert_eq!(new.event().map(PropsRef::to_map), old.event);
            let packed = rmp_serde::to_vec_named(old).unwrap();
            let new: Instance = rmp_serde::from_slice(&packed).unwrap();
            assert_eq!(rmp_serde::to_vec_named(&new).unwrap(), packed);
            let back: OldInstance = rmp_serde::from_slice(&packed).unwrap();
            assert_eq!(&back, old);
        }
        // An instance that carries nothing has no heap part.
        let bare: Instance =
            serde_json::from_str(&serde_json::to_string(&olds[0]).unwrap()).unwrap();
        assert_eq!(bare.heap_bytes(), 0);
        assert_eq!(std::mem::size_of::<Instance>(), 40);
    }

    #[test]
    fn props_keep_the_last_of_equal_keys_in_key_order() {
        let props = Props::from_entries(vec![
            ("b".into(), json!(1)),
            ("a".into(), json!(2)),
            ("b".into(), json!(3)),
        ]);
        let mut map = Map::new();
        map.insert("b".into(), json!(1));
        map.insert("a".into(), json!(2));
        map.insert("b".into(), json!(3));
        assert_eq!(props.to_map(), map);
        assert_eq!(
            serde_json::to_string(&props).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(props.get("b"), Some(&json!(3)));
        assert_eq!(props.get("c"), None);
        let many: Map<String, Value> = (0..20).map(|i| (format!("k{i}"), json!(i))).collect();
        let kept = Props::keep(
            &many,
            Some(&["k3".into(), "k19".into(), "k3".into(), "x".into()]),
        );
        assert_eq!(kept.to_map(), object(json!({"k19": 19, "k3": 3})));
        let all = Props::from_map(&many);
        for (key, value) in &many {
            assert_eq!(all.get(key), Some(value));
        }
    }

    #[test]
    fn cached_channels_agree_with_the_traits() {
        let cases = [
            json!({}),
            json!({"email": "a@x", "consent": {"email": true, "sms": true}}),
            json!({"email": "  ", "phone": 600, "push_token": null, "consent": {"push": "yes"}}),
            json!({"email": ["x"], "consent": true}),
            json!({"phone": "+34", "consent": {"sms": true, "webhook": true, "email": false}}),
        ];
        for traits in cases {
            let mut state = ContactState {
                traits: Traits::from_map(&object(traits.clone())),
                ..Default::default()
            };
            let uncached: Vec<(bool, bool)> = [
                Channel::Email,
                Channel::Sms,
                Channel::Push,
                Channel::Webhook,
            ]
            .iter()
            .map(|c| (state.has_address(*c), state.has_consent(*c)))
            .collect();
            state.fill_channel_cache();
            assert!(state.channel_cache.0.is_some());
            let cached: Vec<(bool, bool)> = [
                Channel::Email,
                Channel::Sms,
                Channel::Push,
                Channel::Webhook,
            ]
            .iter()
            .map(|c| (state.has_address(*c), state.has_consent(*c)))
            .collect();
            assert_eq!(cached, uncached, "{traits}");
            let t = state.traits.to_map();
            let expected_email = match t.get("email") {
                Some(Value::String(s)) => !s.trim().is_empty(),
                Some(Value::Null) | None => false,
                Some(_) => true,
            };
            assert_eq!(cached[0].0, expected_email, "{traits}");
            let expected_sms_consent = t
                .get("consent")
                .and_then(|c| c.get("sms"))
                .and_then(Value::as_bool)
                == Some(true);
            assert_eq!(cached[1].1, expected_sms_consent, "{traits}");
            assert!(cached[3].0, "webhooks need no address");
        }
    }
}
