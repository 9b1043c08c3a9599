//! Changing live flows safely: what a new version changes (`flowc diff`, with the impact on
//! contacts waiting in the old one), what it would have delivered (`flowc backtest`), why a
//! contact got what it got (`flowc simulate --explain`), and which guarantees hold in every
//! ordering of events within bounds (`flowc verify`). See docs/changes.md.
//!
//! Owns: comparisons and explorations built on the compiled IR and the real engine.
//! Must not: implement any semantics of its own: every run goes through `engine::Engine`
//! (directly, or through `simulate`), so that what these tools say is what the runtime does.

pub mod backtest;
pub mod command;
pub mod diff;
pub mod explain;
pub mod migrate;
pub mod verify;
