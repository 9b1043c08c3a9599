//! `flowc check` and `flowc explain`. (placeholder)

use crate::cli::{CheckArgs, ExplainArgs, EXIT_CANNOT_RUN};

pub fn run(_args: &CheckArgs) -> u8 {
    EXIT_CANNOT_RUN
}

pub fn explain(_args: &ExplainArgs) -> u8 {
    EXIT_CANNOT_RUN
}
