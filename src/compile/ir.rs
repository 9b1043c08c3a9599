//! The compiled project: the serialisable intermediate representation the engine runs.
//!
//! Owns: the data types of the IR and its format version. Everything is a table indexed by a
//! small newtype (`FlowId`, `StateId`, `EventId`, `SegmentId`, `MessageId`), so that the IR
//! serialises cleanly, diffs well and contact states can refer to it with a few bytes.
//! Must not: hold behaviour (the engine interprets it) or anything that is not serialisable.
//! Invariant: the serialised form is a compatibility boundary; bump [`FORMAT_VERSION`] on any
//! change of meaning.

pub use crate::syntax::ast::ChangePolicy;
use crate::syntax::ast::{Channel, DurationUnit, PropertyType};
use serde::{Deserialize, Serialize};

/// The version of the serialised IR. Bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u16);
        impl $name {
            pub fn index(self) -> usize {
                usize::from(self.0)
            }
        }
    };
}

id_type!(
    /// An index into [`CompiledProject::flows`] (flows are sorted by name).
    FlowId
);
id_type!(
    /// An index into [`CompiledFlow::states`].
    StateId
);
id_type!(
    /// An interned, normalised event name: an index into [`CompiledProject::events`].
    EventId
);
id_type!(
    /// A segment instance (a segment with its arguments): an index into
    /// [`CompiledProject::segments`].
    SegmentId
);
id_type!(
    /// An index into [`CompiledProject::messages`].
    MessageId
);

/// The whole project, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledProject {
    pub format_version: u32,
    /// `[defaults] timezone` (IANA name).
    pub default_timezone: String,
    /// Every event name the project mentions, normalised, sorted.
    pub events: Vec<String>,
    /// Segment instances: one per (segment, arguments) used anywhere.
    pub segments: Vec<CompiledSegment>,
    pub messages: Vec<CompiledMessage>,
    /// Sorted by name: at one instant flows are run in this order.
    pub flows: Vec<CompiledFlow>,
    pub policy: CompiledPolicy,
    /// Event schemas (`event NAME { ... }`), by event.
    pub schemas: Vec<EventSchema>,
    /// What the engine keeps of each event in a contact's history (indexed by `EventId`).
    pub history: Vec<HistoryNeed>,
}

/// A segment with its parameters substituted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledSegment {
    /// `lapsed` or `inactive(30d)`.
    pub name: String,
    pub expr: Expr,
    pub source: SourceLoc,
}

/// A file and a 1-based line: where a construct was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SourceLoc {
    pub file: String,
    pub line: u32,
}

impl std::fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledMessage {
    pub name: String,
    pub channel: Channel,
    pub transactional: bool,
    /// Field name → template text (`file(...)` contents already loaded).
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CompiledPolicy {
    pub quiet_hours: Option<QuietWindow>,
    pub limits: Vec<Limit>,
}

/// Quiet hours in minutes since local midnight: start inclusive, end exclusive, may wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietWindow {
    pub start: u16,
    pub end: u16,
}

/// `limit CHANNEL N per D`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    pub channel: Channel,
    pub count: u32,
    pub per: Dur,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSchema {
    pub event: String,
    pub properties: Vec<PropertySchema>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertySchema {
    pub name: String,
    pub ty: PropertyType,
    pub optional: bool,
}

/// How much of one event's history behaviour functions need.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HistoryNeed {
    /// Keep no record of this event at all.
    pub keep: bool,
    /// Only the latest occurrence is needed (`since`, `last`).
    pub last_only: bool,
    /// How far back occurrences are needed, in seconds (`None`: forever).
    pub horizon: Option<i64>,
    /// Property paths to keep; `None` keeps none.
    pub properties: Vec<Vec<String>>,
}

/// A duration: fixed seconds, or calendar months/years in the contact's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dur {
    Seconds(i64),
    Months(i64),
}

impl Dur {
    pub fn from_literal(amount: u64, unit: DurationUnit) -> Dur {
        let amount = i64::try_from(amount).unwrap_or(i64::MAX / 1_000_000);
        match unit {
            DurationUnit::Months => Dur::Months(amount),
            DurationUnit::Years => Dur::Months(amount.saturating_mul(12)),
            fixed => Dur::Seconds(amount.saturating_mul(fixed.fixed_seconds().unwrap_or(1))),
        }
    }
    /// An upper bound in seconds (a month counts 31 days).
    pub fn max_seconds(self) -> i64 {
        match self {
            Dur::Seconds(s) => s,
            Dur::Months(m) => m.saturating_mul(31 * 86_400),
        }
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Dur::Months(m) if m % 12 == 0 => write!(f, "{}y", m / 12),
            Dur::Months(m) => write!(f, "{m}mo"),
            Dur::Seconds(s) if s % 604_800 == 0 && s != 0 => write!(f, "{}w", s / 604_800),
            Dur::Seconds(s) if s % 86_400 == 0 && s != 0 => write!(f, "{}d", s / 86_400),
            Dur::Seconds(s) if s % 3600 == 0 && s != 0 => write!(f, "{}h", s / 3600),
            Dur::Seconds(s) if s % 60 == 0 && s != 0 => write!(f, "{}min", s / 60),
            Dur::Seconds(s) => write!(f, "{s}s"),
        }
    }
}

/// One flow as a state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledFlow {
    pub name: String,
    /// sha2-256 of the canonical JSON of this flow (with `hash` empty), hex.
    pub hash: String,
    pub source: SourceLoc,
    pub triggers: Vec<Trigger>,
    pub only_if: Option<Expr>,
    pub reentry: Reentry,
    pub exit_on: Vec<EventMatch>,
    pub exit_if: Vec<Expr>,
    /// The flow's own quiet hours, else the policy's.
    pub quiet_hours: Option<QuietWindow>,
    pub goal: Option<Goal>,
    /// Share of entrants kept as a control group, in basis points (0..=10000).
    pub holdout_basis_points: u16,
    /// The trigger properties an instance keeps after entry (what exit/wait filters, steps and
    /// templates read); `None` keeps them all.
    pub trigger_keys: Option<Vec<String>>,
    /// The properties of a received event an instance keeps; `None` keeps them all.
    pub event_keys: Option<Vec<String>>,
    /// The first step.
    pub entry: StateId,
    pub states: Vec<State>,
    /// `on change` and the step labels: how a new version of the flow takes over the
    /// instances running in an older one. Left out of the JSON (and so of the hash) when it is
    /// the default, so that flows without them keep the hash they had before.
    #[serde(default, skip_serializing_if = "ChangeRules::is_default")]
    pub change: ChangeRules,
}

/// `on change POLICY` and the `step NAME:` labels of one flow.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChangeRules {
    #[serde(default, skip_serializing_if = "ChangePolicy::is_pin")]
    pub policy: ChangePolicy,
    /// Each label and the state of the step it names, in source order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, StateId)>,
}

impl ChangeRules {
    pub fn is_default(&self) -> bool {
        self.policy.is_pin() && self.labels.is_empty()
    }
    /// The label of a state, if its step has one.
    pub fn label_of(&self, state: StateId) -> Option<&str> {
        self.labels
            .iter()
            .find(|(_, s)| *s == state)
            .map(|(l, _)| l.as_str())
    }
    /// The state a label names.
    pub fn state_of(&self, label: &str) -> Option<StateId> {
        self.labels
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, s)| *s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Trigger {
    /// `when EVENT [where EXPR]`
    Event(EventMatch),
    /// `when entering SEGMENT`
    Entering(SegmentId),
    /// `when every D [at HH:MM] for SEGMENT` (project default timezone)
    Every {
        every: Dur,
        at: Option<u16>,
        segment: SegmentId,
    },
    /// `when anniversary of contact.FIELD [at HH:MM]` (contact's timezone)
    Anniversary { field: Vec<String>, at: u16 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMatch {
    pub event: EventId,
    pub filter: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reentry {
    /// The default: not while an instance is active.
    NotWhileActive,
    Never,
    Always,
    After(Dur),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub event: EventId,
    pub filter: Option<Expr>,
    pub within: Dur,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub kind: StateKind,
    pub source: SourceLoc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StateKind {
    /// The end of the flow.
    End,
    /// `stop`
    Stop,
    Send {
        message: MessageId,
        next: StateId,
    },
    Wait {
        duration: Dur,
        next: StateId,
    },
    WaitUntil {
        minute_of_day: u16,
        next: StateId,
    },
    WaitFor {
        arms: Vec<WaitArm>,
        timeout: Dur,
        on_timeout: StateId,
    },
    /// `if`/`else if`/`else`: the first true condition wins.
    Branch {
        conditions: Vec<(Expr, StateId)>,
        otherwise: StateId,
    },
    /// `split`: arm `i` is taken when the bucket (0..10000) is below `upper[i]`.
    Split {
        arms: Vec<(u16, StateId)>,
    },
    Set {
        field: Vec<String>,
        value: Expr,
        next: StateId,
    },
    Unsubscribe {
        target: UnsubscribeTarget,
        next: StateId,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitArm {
    pub event: EventMatch,
    pub next: StateId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnsubscribeTarget {
    Channel(Channel),
    All,
}

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Root {
    Contact,
    Trigger,
    Event,
}

/// A compiled expression: names resolved, parameters substituted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Duration(Dur),
    /// A time of day, minutes since midnight.
    Time(u16),
    List(Vec<Expr>),
    Path {
        root: Root,
        fields: Vec<String>,
    },
    Exists {
        root: Root,
        fields: Vec<String>,
    },
    Segment(SegmentId),
    CanReceive(Channel),
    Count {
        event: EventId,
        filter: Option<Box<Expr>>,
        within: Option<Dur>,
    },
    Sum {
        event: EventId,
        property: Vec<String>,
        within: Option<Dur>,
    },
    Last {
        event: EventId,
        property: Vec<String>,
    },
    Since(EventId),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    In {
        needle: Box<Expr>,
        list: Box<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl CompiledProject {
    pub fn event_id(&self, name: &str) -> Option<EventId> {
        self.events
            .binary_search_by(|e| e.as_str().cmp(name))
            .ok()
            .and_then(|i| u16::try_from(i).ok())
            .map(EventId)
    }
    pub fn event_name(&self, id: EventId) -> &str {
        self.events.get(id.index()).map_or("?", String::as_str)
    }
    pub fn flow_id(&self, name: &str) -> Option<FlowId> {
        self.flows
            .iter()
            .position(|f| f.name == name)
            .and_then(|i| u16::try_from(i).ok())
            .map(FlowId)
    }
}
