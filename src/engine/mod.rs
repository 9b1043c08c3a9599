//! The pure engine: state + input + now → new state + decisions. (placeholder)
