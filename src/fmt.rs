//! `flowc fmt`: the canonical layout. (placeholder)

use crate::cli::{FmtArgs, EXIT_CANNOT_RUN};

pub fn command(_args: &FmtArgs) -> u8 {
    EXIT_CANNOT_RUN
}
