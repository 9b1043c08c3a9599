//! Message templates: `{{ ... }}` rendering with minijinja.
//!
//! Owns: the rendering rules for message fields (strict about undefined variables: a missing
//! `contact.first_name` is a render error naming it, never an empty string; HTML bodies are
//! auto-escaped).
//! Must not: decide whether a message is sent, or read files (bodies from `file(...)` are
//! loaded by `compile`).

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;

/// Renders every field of a message with `context` (`{contact, trigger, event, flow, message}`).
/// `html` fields (an email `body`) are HTML-escaped.
pub fn render_fields(
    fields: &[(String, String)],
    context: &Value,
    html_body: bool,
) -> Result<Vec<(String, String)>, String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    let mut out = Vec::new();
    for (name, text) in fields {
        let template_name = if html_body && name == "body" {
            format!("{name}.html")
        } else {
            name.clone()
        };
        let rendered = env
            .template_from_named_str(&template_name, text)
            .and_then(|t| t.render(context))
            .map_err(|e| format!("field `{name}`: {}", describe(&e)))?;
        out.push((name.clone(), rendered));
    }
    Ok(out)
}

fn describe(error: &minijinja::Error) -> String {
    let mut text = error.to_string();
    if error.kind() == minijinja::ErrorKind::UndefinedError {
        text.push_str(" (a variable in the template is not defined for this contact)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_escapes() {
        let fields = vec![
            (
                "subject".to_string(),
                "Hi {{ contact.first_name }}".to_string(),
            ),
            ("body".to_string(), "<p>{{ trigger.note }}</p>".to_string()),
        ];
        let ctx = serde_json::json!({"contact": {"first_name": "Ana"}, "trigger": {"note": "<b>"}});
        let out = render_fields(&fields, &ctx, true).unwrap();
        assert_eq!(out[0].1, "Hi Ana");
        assert_eq!(out[1].1, "<p>&lt;b&gt;</p>");
    }

    #[test]
    fn undefined_is_an_error() {
        let fields = vec![(
            "subject".to_string(),
            "Hi {{ contact.first_name }}".to_string(),
        )];
        let error = render_fields(&fields, &serde_json::json!({"contact": {}}), true).unwrap_err();
        assert!(error.contains("subject"), "{error}");
    }
}
