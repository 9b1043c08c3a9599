//! The rules of `flowc check`, one per file or per small group of codes (ruff's layout). Each
//! file opens with what it does, why the problem matters, and an example; `flowc explain`
//! tells the same in the terminal.
//!
//! Must not: render diagnostics (that is `check::render`) or stop at the first problem.

pub mod arms;
pub mod consent;
pub mod duplicates;
pub mod event_names;
pub mod expressions;
pub mod flows;
pub mod instances;
pub mod labels;
pub mod message_events;
pub mod message_properties;
pub mod messages;
pub mod migration;
pub mod quiet_hours;
pub mod segments;
pub mod split;
pub mod syntax_hints;
pub mod unreachable;
pub mod unused;
pub mod waits;
