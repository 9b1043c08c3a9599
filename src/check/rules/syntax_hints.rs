//! "Did you mean" for syntax errors about a misspelt keyword: a channel (`can_receive(emial)`,
//! `message m: emial`, `unsubscribe emial`) or a step or header word (`wiat 2d`).
//!
//! ## What it does
//! The parser says what it expected and what it found; when the word found is close to one
//! that fits there, the help line names it.
//!
//! ## Example
//! ```text
//! only if can_receive(emial)      # E0001, help: did you mean `email`?
//! ```
//!
//! Must not: change the code, message or span of the syntax error.

use crate::diagnostic::{Code, Diagnostic};

const CHANNELS: &[&str] = &["email", "sms", "push", "webhook"];
const LINE_WORDS: &[&str] = &[
    "when",
    "only",
    "reentry",
    "exit",
    "quiet",
    "goal",
    "holdout",
    "send",
    "wait",
    "if",
    "split",
    "set",
    "unsubscribe",
    "stop",
];

/// Adds a "did you mean" help to a syntax error when the word found is a near miss.
pub fn improve(d: &mut Diagnostic) {
    if d.code != Code::Syntax {
        return;
    }
    let Some(found) = found_word(&d.message) else {
        return;
    };
    let candidates: &[&str] = if d.message.starts_with("expected a channel") {
        CHANNELS
    } else if d.label.contains("expected a step") || d.label.contains("expected a header") {
        LINE_WORDS
    } else {
        return;
    };
    if let Some(best) = crate::suggest::closest(found, candidates.iter().copied()) {
        d.help = Some(format!("did you mean `{best}`?"));
    }
}

/// `X` in "..., found `X`".
fn found_word(message: &str) -> Option<&str> {
    let rest = message.rsplit_once("found `")?.1;
    rest.strip_suffix('`')
}

#[cfg(test)]
mod tests {
    use super::found_word;

    #[test]
    fn finds_the_word() {
        assert_eq!(
            found_word("expected a channel (`email`), found `emial`"),
            Some("emial")
        );
        assert_eq!(found_word("expected `:`"), None);
    }
}
