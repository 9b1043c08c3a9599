//! Checked AST → state machines (the serde IR). (placeholder)
