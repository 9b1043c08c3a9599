//! Message templates: `{{ ... }}` rendering with minijinja.
//!
//! Owns: the rendering rules for message fields. Strict about undefined variables: a missing
//! `contact.first_name` is a render error naming it, never an empty string. Escaping depends on
//! where a value lands ([`escape_for`]): HTML-escaped in an email `body`, JSON-string-escaped
//! in a webhook `body`, as is in subjects, plain text, SMS and push. A `null` value renders as
//! nothing (as `null` in JSON).
//! Must not: decide whether a message is sent, or read files (bodies from `file(...)` are
//! loaded by `compile`).

use crate::syntax::ast::Channel;
use minijinja::{escape_formatter, AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;
use std::sync::OnceLock;

/// How values written into one field are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As is: subjects, plain text, SMS, push, URLs.
    None,
    /// HTML-escaped (`<` becomes `&lt;`): the email `body`.
    Html,
    /// Escaped for the inside of a JSON string (`"` becomes `\"`); numbers, booleans, lists and
    /// objects are written as JSON: the webhook `body`.
    Json,
}

/// The escaping of field `field` of a `channel` message.
pub fn escape_for(channel: Channel, field: &str) -> Escape {
    match (channel, field) {
        (Channel::Email, "body") => Escape::Html,
        (Channel::Webhook, "body") => Escape::Json,
        _ => Escape::None,
    }
}

/// A field that could not be rendered: which one, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`{}: {reason}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct RenderError {
    pub field: String,
    /// 1-based line inside the field's template, when known.
    pub line: Option<usize>,
    pub reason: String,
}

/// Renders every field of a `channel` message with `context` (`{contact, trigger, event, flow,
/// message}`), each with its escaping ([`escape_for`]). Fields keep their order.
pub fn render_message(
    channel: Channel,
    fields: &[(String, String)],
    context: &Value,
) -> Result<Vec<(String, String)>, RenderError> {
    fields
        .iter()
        .map(|(name, text)| {
            render_one(name, text, escape_for(channel, name), context).map(|r| (name.clone(), r))
        })
        .collect()
}

/// Renders one template text with `escape`; `name` names it in errors.
pub fn render_one(
    name: &str,
    text: &str,
    escape: Escape,
    context: &Value,
) -> Result<String, RenderError> {
    let env = environment();
    let template_name = match escape {
        Escape::None => name.to_string(),
        Escape::Html => format!("{name}.html"),
        Escape::Json => format!("{name}.json"),
    };
    let template = env
        .template_from_named_str(&template_name, text)
        .map_err(|e| RenderError {
            field: name.to_string(),
            line: e.line(),
            reason: e.detail().unwrap_or("invalid template").to_string(),
        })?;
    template.render(context).map_err(|e| {
        let reason = if e.kind() == minijinja::ErrorKind::UndefinedError {
            let mut missing: Vec<String> = template
                .undeclared_variables(true)
                .into_iter()
                .filter(|path| !defined(context, path))
                .collect();
            missing.sort();
            match missing.as_slice() {
                [] => format!(
                    "{} (a value used by the template is not defined)",
                    e.detail().unwrap_or("undefined value")
                ),
                [one] => format!(
                    "`{one}` is not defined for this contact; set it, or write `{{{{ {one} | default(\"...\") }}}}`"
                ),
                many => format!(
                    "{} are not defined for this contact",
                    many.iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        } else {
            e.detail().map_or_else(|| e.to_string(), str::to_string)
        };
        RenderError {
            field: name.to_string(),
            line: e.line(),
            reason,
        }
    })
}

/// Renders every field of a message with `context`; with `html_body` the `body` is
/// HTML-escaped. (The `flowc simulate --render` form of [`render_message`].)
pub fn render_fields(
    fields: &[(String, String)],
    context: &Value,
    html_body: bool,
) -> Result<Vec<(String, String)>, String> {
    fields
        .iter()
        .map(|(name, text)| {
            let escape = if html_body && name == "body" {
                Escape::Html
            } else {
                Escape::None
            };
            render_one(name, text, escape, context)
                .map(|r| (name.clone(), r))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Filters a template may name: minijinja's built-ins with the features flowc enables (flowc
/// registers none of its own). [`has_filter`] asks the environment itself, so the list is only
/// the set of names a did-you-mean may offer.
const FILTER_NAMES: &[&str] = &[
    "safe",
    "escape",
    "e",
    "lower",
    "upper",
    "title",
    "capitalize",
    "replace",
    "length",
    "count",
    "dictsort",
    "items",
    "reverse",
    "trim",
    "join",
    "split",
    "lines",
    "default",
    "d",
    "round",
    "abs",
    "int",
    "float",
    "attr",
    "first",
    "last",
    "min",
    "max",
    "sort",
    "list",
    "string",
    "bool",
    "batch",
    "slice",
    "sum",
    "indent",
    "select",
    "reject",
    "selectattr",
    "rejectattr",
    "map",
    "groupby",
    "unique",
    "chain",
    "zip",
    "pprint",
    "format",
    "tojson",
    "urlencode",
];

/// Tests a template may name after `is` (see [`FILTER_NAMES`]).
const TEST_NAMES: &[&str] = &[
    "undefined",
    "defined",
    "none",
    "safe",
    "escaped",
    "boolean",
    "odd",
    "even",
    "divisibleby",
    "number",
    "integer",
    "int",
    "float",
    "string",
    "sequence",
    "iterable",
    "mapping",
    "startingwith",
    "endingwith",
    "lower",
    "upper",
    "sameas",
    "eq",
    "equalto",
    "ne",
    "lt",
    "lessthan",
    "le",
    "gt",
    "greaterthan",
    "ge",
    "in",
    "true",
    "false",
    "filter",
    "test",
];

/// Whether the rendering environment has a filter named `name` (`{{ x | name }}`).
pub fn has_filter(name: &str) -> bool {
    has("filter", name)
}

/// Whether the rendering environment has a test named `name` (`{% if x is name %}`).
pub fn has_test(name: &str) -> bool {
    has("test", name)
}

fn has(kind: &str, name: &str) -> bool {
    let text = format!("{{% if name is {kind} %}}1{{% endif %}}");
    environment()
        .render_str(&text, minijinja::context! { name => name })
        .is_ok_and(|out| out == "1")
}

/// The filters of the rendering environment.
pub fn filter_names() -> impl Iterator<Item = &'static str> {
    FILTER_NAMES.iter().copied().filter(|n| has_filter(n))
}

/// The tests of the rendering environment.
pub fn test_names() -> impl Iterator<Item = &'static str> {
    TEST_NAMES.iter().copied().filter(|n| has_test(n))
}

const JSON_STRING: &str = "json-string";

/// One shared environment: templates are compiled per call with `template_from_named_str`,
/// whose name suffix selects the escaping.
fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else if name.ends_with(".json") {
                AutoEscape::Custom(JSON_STRING)
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(|out, state, value| {
            if state.auto_escape() == AutoEscape::Custom(JSON_STRING) {
                let text = if value.is_safe() {
                    value.to_string()
                } else if let Some(s) = value.as_str() {
                    let quoted = serde_json::to_string(s).map_err(json_error)?;
                    quoted[1..quoted.len() - 1].to_string()
                } else if value.is_none() || value.is_undefined() {
                    "null".to_string()
                } else {
                    serde_json::to_string(value).map_err(json_error)?
                };
                return out.write_str(&text).map_err(minijinja::Error::from);
            }
            if value.is_none() {
                return Ok(());
            }
            if state.auto_escape() == AutoEscape::Html && !value.is_safe() {
                // minijinja's escaper also writes `/` as `&#x2f;`, which makes every URL in an
                // `href` unreadable in the HTML source; the five characters below suffice.
                return out
                    .write_str(&escape_html(&value.to_string()))
                    .map_err(minijinja::Error::from);
            }
            escape_formatter(out, state, value)
        });
        env
    })
}

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn json_error(e: serde_json::Error) -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::BadSerialization,
        format!("cannot write the value as JSON: {e}"),
    )
}

/// Whether a dotted path (`contact.first_name`) resolves in the context.
fn defined(context: &Value, path: &str) -> bool {
    let mut value = context;
    for part in path.split('.') {
        match value {
            Value::Object(map) => match map.get(part) {
                Some(v) => value = v,
                None => return false,
            },
            // A path below a scalar or a list is beyond what we can check here.
            _ => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_and_escapes() {
        let fields = fields(&[
            ("subject", "Hi {{ contact.first_name }}"),
            ("body", "<p>{{ trigger.note }}</p>"),
        ]);
        let ctx = json!({"contact": {"first_name": "Ana"}, "trigger": {"note": "<b>"}});
        let out = render_fields(&fields, &ctx, true).unwrap();
        assert_eq!(out[0].1, "Hi Ana");
        assert_eq!(out[1].1, "<p>&lt;b&gt;</p>");
    }

    #[test]
    fn undefined_is_an_error_naming_the_path() {
        let fields = fields(&[("subject", "Hi {{ contact.first_name }}")]);
        let error = render_fields(&fields, &json!({"contact": {}}), true).unwrap_err();
        assert!(error.contains("subject"), "{error}");
        assert!(
            error.contains("`contact.first_name` is not defined"),
            "{error}"
        );
    }

    #[test]
    fn default_filter_covers_a_missing_value() {
        let out = render_one(
            "subject",
            "Hi {{ contact.first_name | default('there') }}",
            Escape::None,
            &json!({"contact": {}}),
        )
        .unwrap();
        assert_eq!(out, "Hi there");
    }

    #[test]
    fn is_defined_tests_an_optional_value() {
        let text = "{% if contact.nick is defined %}{{ contact.nick }}{% else %}friend{% endif %}";
        let out = render_one("subject", text, Escape::None, &json!({"contact": {}})).unwrap();
        assert_eq!(out, "friend");
        let out = render_one(
            "subject",
            text,
            Escape::None,
            &json!({"contact": {"nick": "Al"}}),
        )
        .unwrap();
        assert_eq!(out, "Al");
    }

    #[test]
    fn subjects_and_sms_are_not_html_escaped() {
        let ctx = json!({"contact": {"name": "Tom & Jerry <3"}});
        let out = render_message(
            Channel::Email,
            &fields(&[
                ("subject", "{{ contact.name }}"),
                ("text", "{{ contact.name }}"),
            ]),
            &ctx,
        )
        .unwrap();
        assert_eq!(out[0].1, "Tom & Jerry <3");
        assert_eq!(out[1].1, "Tom & Jerry <3");
        let sms = render_message(
            Channel::Sms,
            &fields(&[("body", "{{ contact.name }}")]),
            &ctx,
        )
        .unwrap();
        assert_eq!(sms[0].1, "Tom & Jerry <3");
    }

    #[test]
    fn webhook_bodies_are_json_escaped() {
        let ctx = json!({"contact": {"name": "say \"hi\"\n", "n": 3, "tags": ["a"], "none": null}});
        let out = render_message(
            Channel::Webhook,
            &fields(&[(
                "body",
                r#"{"name": "{{ contact.name }}", "n": {{ contact.n }}, "tags": {{ contact.tags }}, "x": {{ contact.none }}}"#,
            )]),
            &ctx,
        )
        .unwrap();
        let parsed: Value = serde_json::from_str(&out[0].1).unwrap();
        assert_eq!(
            parsed,
            json!({"name": "say \"hi\"\n", "n": 3, "tags": ["a"], "x": null})
        );
    }

    #[test]
    fn null_renders_as_nothing_in_text() {
        let out = render_one(
            "subject",
            "[{{ contact.x }}]",
            Escape::None,
            &json!({"contact": {"x": null}}),
        )
        .unwrap();
        assert_eq!(out, "[]");
    }

    #[test]
    fn knows_its_filters_and_tests() {
        assert!(has_filter("upper") && has_filter("urlencode") && has_filter("default"));
        assert!(!has_filter("nosuchfilter"));
        assert!(has_test("defined") && has_test("odd"));
        assert!(!has_test("nosuchtest"));
        assert!(filter_names().any(|n| n == "title"));
    }

    #[test]
    fn syntax_errors_name_the_field_and_line() {
        let error = render_one("body", "ok\n{{ contact. }}", Escape::Html, &json!({})).unwrap_err();
        assert_eq!(error.field, "body");
        assert_eq!(error.line, Some(2));
    }
}
