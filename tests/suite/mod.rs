//! Integration tests by area. Each file owns one boundary of the product.

mod check;
mod engine;
mod fmt;
mod syntax;
mod testing;
