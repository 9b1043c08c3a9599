//! Integration tests by area. Each file owns one boundary of the product.

mod architecture;
mod bench;
mod changes;
mod channels;
mod check;
mod check_spec;
mod daemon;
mod engine;
mod engine_spec;
mod fmt;
mod graph;
mod playbook;
mod support;
mod syntax;
mod testing;
