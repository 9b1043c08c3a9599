//! The abstract syntax tree of one `.flow` file.
//!
//! Owns: the data types every later stage reads (check, fmt, compile). Every node that a
//! diagnostic can point at carries a [`Span`] (byte offsets into its file's text).
//! Must not: know about pest, parsing, files on disk or diagnostics rendering. The parser
//! (`syntax::parser`) is the only producer of these values.

use serde::{Deserialize, Serialize};

/// A half-open byte range `start..end` into the text of the file a node came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start)
    }
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// A name as written (`[a-z_][a-z0-9_]*`) and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A `#` comment, kept so that `flowc fmt` can put it back. `text` starts with `#`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

/// One parsed `.flow` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceFile {
    pub uses: Vec<Use>,
    pub items: Vec<Item>,
    /// Every comment of the file, in source order.
    pub comments: Vec<Comment>,
}

/// `use stdlib/NAME`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Use {
    /// The module name after `stdlib/`.
    pub module: Ident,
    pub span: Span,
}

/// A top-level declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Item {
    Segment(SegmentDecl),
    Message(MessageDecl),
    Flow(FlowDecl),
    FlowTemplate(FlowTemplateDecl),
    FlowInstance(FlowInstanceDecl),
    Policy(PolicyDecl),
    Event(EventDecl),
}

impl Item {
    /// The declared name (`None` for `policy`, which has none).
    pub fn name(&self) -> Option<&Ident> {
        match self {
            Item::Segment(d) => Some(&d.name),
            Item::Message(d) => Some(&d.name),
            Item::Flow(d) => Some(&d.name),
            Item::FlowTemplate(d) => Some(&d.name),
            Item::FlowInstance(d) => Some(&d.name),
            Item::Policy(_) => None,
            Item::Event(d) => Some(&d.name),
        }
    }
    pub fn span(&self) -> Span {
        match self {
            Item::Segment(d) => d.span,
            Item::Message(d) => d.span,
            Item::Flow(d) => d.span,
            Item::FlowTemplate(d) => d.span,
            Item::FlowInstance(d) => d.span,
            Item::Policy(d) => d.span,
            Item::Event(d) => d.span,
        }
    }
}

/// `segment NAME[(PARAMS)] = EXPR`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Expr,
    pub span: Span,
}

/// `NAME: TYPE` in a segment or template parameter list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: Ident,
    pub ty: ParamType,
    pub ty_span: Span,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParamType {
    Duration,
    Number,
    String,
    Bool,
    /// Templates only: a message name.
    Message,
    /// Templates only: a segment name.
    Segment,
    /// Templates only: an event name (an addition to the contract).
    Event,
}

impl ParamType {
    pub fn keyword(self) -> &'static str {
        match self {
            ParamType::Duration => "duration",
            ParamType::Number => "number",
            ParamType::String => "string",
            ParamType::Bool => "bool",
            ParamType::Message => "message",
            ParamType::Segment => "segment",
            ParamType::Event => "event",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Sms,
        Channel::Push,
        Channel::Webhook,
    ];
    pub fn keyword(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Webhook => "webhook",
        }
    }
    pub fn from_keyword(word: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.keyword() == word)
    }
}

/// `message NAME: CHANNEL [transactional] { FIELD: VALUE ... }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDecl {
    pub name: Ident,
    pub channel: Channel,
    pub channel_span: Span,
    pub transactional: bool,
    pub fields: Vec<MessageField>,
    pub span: Span,
}

/// `FIELD: VALUE` inside a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageField {
    pub name: Ident,
    pub value: FieldValue,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FieldValue {
    /// A string that may hold `{{ ... }}` template expressions.
    Text(StringLit),
    /// `file("path")`, relative to the project root.
    File(StringLit),
    /// `true` / `false` (for switches such as `track: false`).
    Bool { value: bool, span: Span },
}

impl FieldValue {
    pub fn span(&self) -> Span {
        match self {
            FieldValue::Text(s) | FieldValue::File(s) => s.span,
            FieldValue::Bool { span, .. } => *span,
        }
    }
}

/// A double-quoted string. `value` has its escapes resolved; `span` covers the quotes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringLit {
    pub value: String,
    pub span: Span,
}

/// `policy { POLICY_LINE... }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDecl {
    pub lines: Vec<PolicyLine>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyLine {
    pub kind: PolicyKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PolicyKind {
    /// `quiet hours HH:MM..HH:MM`: the default for every flow.
    QuietHours(QuietHours),
    /// `limit CHANNEL N per DURATION`: a frequency cap over all flows, marketing sends only.
    Limit {
        channel: Channel,
        channel_span: Span,
        count: u32,
        count_span: Span,
        per: Duration,
    },
}

/// `event NAME { PROP: TYPE ... }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDecl {
    pub name: Ident,
    pub properties: Vec<PropertyDecl>,
    pub span: Span,
}

/// `PROP: TYPE` or `PROP: TYPE?` in an event schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyDecl {
    pub name: Ident,
    pub ty: PropertyType,
    pub optional: bool,
    pub ty_span: Span,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    String,
    Number,
    Bool,
    /// An RFC 3339 timestamp string.
    Time,
    List,
    Object,
}

impl PropertyType {
    pub fn keyword(self) -> &'static str {
        match self {
            PropertyType::String => "string",
            PropertyType::Number => "number",
            PropertyType::Bool => "bool",
            PropertyType::Time => "time",
            PropertyType::List => "list",
            PropertyType::Object => "object",
        }
    }
}

/// `flow NAME { HEADER... STEP... }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowDecl {
    pub name: Ident,
    pub body: FlowBody,
    pub span: Span,
}

/// `flow template NAME(PARAMS) { HEADER... STEP... }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowTemplateDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: FlowBody,
    pub span: Span,
}

/// `flow NAME = TEMPLATE(ARG: VALUE, ...)`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowInstanceDecl {
    pub name: Ident,
    pub template: Ident,
    pub args: Vec<Arg>,
    /// The span of the parenthesised argument list.
    pub args_span: Span,
    pub span: Span,
}

/// An argument of a segment call or a template instantiation: `VALUE` or `NAME: VALUE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowBody {
    pub header: Vec<HeaderLine>,
    pub steps: Vec<Step>,
    /// The span of `{ ... }`.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderLine {
    pub kind: HeaderKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HeaderKind {
    /// `when EVENT [where EXPR]`
    WhenEvent { event: Ident, filter: Option<Expr> },
    /// `when entering SEGMENT[(ARGS)]`
    WhenEntering { segment: SegmentRef },
    /// `when every DURATION [at HH:MM] for SEGMENT` (`day`/`week` parse as `1d`/`1w`)
    WhenEvery {
        every: DurationExpr,
        at: Option<TimeOfDay>,
        segment: SegmentRef,
    },
    /// `when anniversary of contact.FIELD [at HH:MM]`
    WhenAnniversary { field: Path, at: Option<TimeOfDay> },
    /// `only if EXPR`
    OnlyIf(Expr),
    /// `reentry never | always | after DURATION`
    Reentry(Reentry),
    /// `exit on EVENT [where EXPR]`
    ExitOn { event: Ident, filter: Option<Expr> },
    /// `exit if EXPR`
    ExitIf(Expr),
    /// `quiet hours HH:MM..HH:MM`
    QuietHours(QuietHours),
    /// `goal EVENT [where EXPR] within DURATION`
    Goal {
        event: Ident,
        filter: Option<Expr>,
        within: DurationExpr,
    },
    /// `holdout N%`
    Holdout(Percent),
    /// `on change pin | migrate | restart`
    OnChange {
        policy: ChangePolicy,
        /// The span of the policy word.
        policy_span: Span,
    },
}

/// What a new version of a flow does to the instances running in the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangePolicy {
    /// They finish on the version they started on (the default).
    #[default]
    Pin,
    /// They move to the new version, at the step a label or the step's place maps.
    Migrate,
    /// They end ("exited: flow changed"); nothing more is sent to them by the old version.
    Restart,
}

impl ChangePolicy {
    pub fn keyword(self) -> &'static str {
        match self {
            ChangePolicy::Pin => "pin",
            ChangePolicy::Migrate => "migrate",
            ChangePolicy::Restart => "restart",
        }
    }
    pub fn is_pin(&self) -> bool {
        *self == ChangePolicy::Pin
    }
}

/// A segment used by name, with arguments when it has parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub name: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reentry {
    Never,
    Always,
    After(DurationExpr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

/// `HH:MM`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub span: Span,
}

impl TimeOfDay {
    pub fn minutes_since_midnight(self) -> u32 {
        u32::from(self.hour) * 60 + u32::from(self.minute)
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// `N%` (0..=100, decimals allowed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percent {
    pub value: f64,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DurationUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    /// Calendar months in the contact's timezone.
    Months,
    /// Calendar years in the contact's timezone.
    Years,
}

impl DurationUnit {
    /// The canonical short suffix used by `flowc fmt`.
    pub fn short(self) -> &'static str {
        match self {
            DurationUnit::Seconds => "s",
            DurationUnit::Minutes => "min",
            DurationUnit::Hours => "h",
            DurationUnit::Days => "d",
            DurationUnit::Weeks => "w",
            DurationUnit::Months => "mo",
            DurationUnit::Years => "y",
        }
    }
    /// Length in seconds for fixed units; `None` for calendar units.
    pub fn fixed_seconds(self) -> Option<i64> {
        match self {
            DurationUnit::Seconds => Some(1),
            DurationUnit::Minutes => Some(60),
            DurationUnit::Hours => Some(3600),
            DurationUnit::Days => Some(86_400),
            DurationUnit::Weeks => Some(604_800),
            DurationUnit::Months | DurationUnit::Years => None,
        }
    }
}

/// A duration literal such as `2d` or `2 days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Duration {
    pub amount: u64,
    pub unit: DurationUnit,
    pub span: Span,
}

impl Duration {
    /// An upper-bound length in seconds, for lints and ordering (a month counts 31 days,
    /// a year 366 days).
    pub fn approx_max_seconds(self) -> i64 {
        let per = match self.unit {
            DurationUnit::Months => 31 * 86_400,
            DurationUnit::Years => 366 * 86_400,
            fixed => fixed.fixed_seconds().unwrap_or(0),
        };
        (self.amount as i64).saturating_mul(per)
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.short())
    }
}

/// Where a duration is expected: a literal, or (inside a template or parameterised segment)
/// the name of a `duration` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DurationExpr {
    Literal(Duration),
    Param(Ident),
}

impl DurationExpr {
    pub fn span(&self) -> Span {
        match self {
            DurationExpr::Literal(d) => d.span,
            DurationExpr::Param(i) => i.span,
        }
    }
}

/// A block `{ STEPS }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub steps: Vec<Step>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    /// The step without its label.
    pub span: Span,
    /// `step NAME:` before the step: a stable name that `on change migrate` maps by.
    #[serde(default)]
    pub label: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StepKind {
    /// `send MESSAGE`
    Send { message: Ident },
    /// `wait DURATION`
    Wait { duration: DurationExpr },
    /// `wait until HH:MM`
    WaitUntil { time: TimeOfDay },
    /// `wait for EVENT [where EXPR] [or EVENT [where EXPR]]... up to DURATION ...`
    WaitFor(WaitFor),
    /// `if EXPR { } [else if EXPR { }]... [else { }]`
    If {
        branches: Vec<IfBranch>,
        otherwise: Option<Block>,
    },
    /// `split { N% { } ... }`
    Split { arms: Vec<SplitArm> },
    /// `set contact.FIELD = EXPR`
    Set { field: Path, value: Expr },
    /// `unsubscribe CHANNEL | all`
    Unsubscribe {
        target: UnsubscribeTarget,
        target_span: Span,
    },
    /// `stop`
    Stop,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitFor {
    /// The awaited events, in source order (one for the single form).
    pub events: Vec<EventMatcher>,
    pub timeout: DurationExpr,
    pub body: WaitForBody,
    /// `else { ... }`: the steps run when the wait timed out.
    pub otherwise: Option<Block>,
}

/// An event name with an optional `where` filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMatcher {
    pub event: Ident,
    pub filter: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WaitForBody {
    /// No block after `up to D` (the flow goes on with the next step either way).
    None,
    /// `{ STEPS-IF-RECEIVED }` (any of the awaited events).
    Received(Block),
    /// `{ on EVENT { STEPS } ... }`: one arm per awaited event.
    Arms(Vec<OnArm>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnArm {
    pub event: Ident,
    pub block: Block,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IfBranch {
    pub condition: Expr,
    pub block: Block,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitArm {
    pub share: Percent,
    pub block: Block,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnsubscribeTarget {
    Channel(Channel),
    All,
}

/// A dotted path such as `contact.address.city`. `root` is the first name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Path {
    pub root: Ident,
    pub fields: Vec<Ident>,
    pub span: Span,
}

impl Path {
    /// `contact.address.city` as text.
    pub fn dotted(&self) -> String {
        let mut out = self.root.name.clone();
        for f in &self.fields {
            out.push('.');
            out.push_str(&f.name);
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    Bool(bool),
    Null,
    Number(f64),
    String(String),
    Duration(Duration),
    Percent(f64),
    Time(TimeOfDay),
    /// `[A, B, ...]` (the right side of `in`, or a list literal).
    List(Vec<Expr>),
    /// A dotted path with at least one field: `contact.email`, `trigger.cart_id`, `event.total`.
    Path(Path),
    /// A bare name: a segment without arguments, or a parameter.
    Name(Ident),
    /// `NAME(ARGS)`: a parameterised segment.
    SegmentCall {
        name: Ident,
        args: Vec<Arg>,
    },
    /// `exists(PATH)`
    Exists(Path),
    /// `can_receive(CHANNEL)`
    CanReceive {
        channel: Channel,
        channel_span: Span,
    },
    /// `count(EVENT [where EXPR] [within DURATION])`
    Count {
        event: Ident,
        filter: Option<Box<Expr>>,
        within: Option<DurationExpr>,
    },
    /// `sum(EVENT.PROP [within DURATION])`
    Sum {
        event: Ident,
        property: Vec<Ident>,
        within: Option<DurationExpr>,
    },
    /// `last(EVENT.PROP)`
    Last {
        event: Ident,
        property: Vec<Ident>,
    },
    /// `since(EVENT)`
    Since {
        event: Ident,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `X in [A, B]`
    In {
        needle: Box<Expr>,
        list: Box<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
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

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
    /// Binding strength: higher binds tighter. `or` 1, `and` 2, comparisons 4, `+ -` 5, `* /` 6
    /// (`not` is 3, `in` is 4).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => 4,
            BinaryOp::Add | BinaryOp::Sub => 5,
            BinaryOp::Mul | BinaryOp::Div => 6,
        }
    }
}

/// The `event` root in expressions refers to different events depending on where it stands;
/// the checker decides whether that place has one (LANGUAGE.md 6: "an `event.` path outside a
/// `wait for` received block" is an error).
pub const PATH_ROOTS: [&str; 3] = ["contact", "trigger", "event"];
