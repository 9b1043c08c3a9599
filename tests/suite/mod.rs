//! Integration tests by area. Each file owns one boundary of the product.

mod architecture;
mod bench;
mod channels;
mod check;
mod engine;
mod fmt;
mod graph;
mod playbook;
mod syntax;
mod testing;
