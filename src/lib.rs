//! flowc: marketing automation flows as code.
//!
//! The pipeline: text → [`syntax`] (AST with spans) → [`check`] (names, types, lints,
//! diagnostics) → [`compile`] (state machines, serde IR) → [`engine`] (pure and deterministic:
//! state + input + now → new state + delivery decisions) → the shell (`store`, `channels`,
//! `server`, `daemon`, `cli`). See `docs/architecture.md`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bench;
pub mod build;
pub mod changes;
pub mod channels;
pub mod check;
pub mod cli;
pub mod compile;
pub mod config;
pub mod daemon;
pub mod diagnostic;
pub mod engine;
pub mod events;
pub mod flowtest;
pub mod fmt;
pub mod graph;
pub mod init;
pub mod project;
pub mod server;
pub mod simulate;
pub mod stdlib;
pub mod store;
pub mod suggest;
pub mod syntax;
pub mod template;
pub mod testing;
