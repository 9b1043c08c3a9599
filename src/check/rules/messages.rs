//! Message declarations: `E0008` (a field the channel does not know), `E0009` (a required
//! field missing), `E0010` (a `file("...")` that does not exist), `E0011` (a `{{ ... }}`
//! template that does not parse) and `E0025` (a template variable other than `contact`,
//! `trigger`, `event`, `flow`, `message`).
//!
//! ## What it does
//! Compares the fields of each message with those of its channel (LANGUAGE.md 2), checks that
//! every `file(...)` exists under the project root, and parses every template with minijinja,
//! the engine that renders it, mapping its errors back to the line and column in the `.flow`
//! file (or naming the line of the template file).
//!
//! ## Why is this bad?
//! Each of these fails at send time, for a real contact, in production: a render error is a
//! failed delivery.
//!
//! ## Example
//! ```text
//! message cart_reminder: email {
//!     subjet: "Your cart"                           # E0008 (did you mean `subject`?)
//!     body: "Hi {{ contact.first_name }"            # E0011
//! }                                                 # E0009: no `subject`
//! ```
//!
//! Must not: render anything with data (the channels do). It reads the files `file(...)`
//! names: the only file access of `check`.

use crate::check::context::{did_you_mean, Context, TriggerRead};
use crate::diagnostic::Code;
use crate::project::SourceUnit;
use crate::syntax::ast::{self, Channel, FieldValue, Span};

/// `(known fields, required fields)` of a channel.
pub fn fields_of(channel: Channel) -> (&'static [&'static str], &'static [&'static str]) {
    match channel {
        Channel::Email => (
            &["subject", "body", "text", "from", "reply_to", "tracking"],
            &["subject", "body"],
        ),
        Channel::Sms => (&["body"], &["body"]),
        Channel::Push => (&["title", "body", "url"], &["title", "body"]),
        Channel::Webhook => (&["url", "method", "body"], &["url"]),
    }
}

/// What a template may read (LANGUAGE.md 2), plus what the runtime adds and minijinja's
/// global functions.
const TEMPLATE_ROOTS: &[&str] = &["contact", "trigger", "event", "flow", "message"];
const TEMPLATE_EXTRAS: &[&str] = &[
    "unsubscribe_url",
    "range",
    "dict",
    "debug",
    "namespace",
    "loop",
    "joiner",
    "cycler",
    "lipsum",
];

pub fn check(ctx: &mut Context<'_>, unit: &SourceUnit, decl: &ast::MessageDecl) {
    let channel = decl.channel.keyword();
    let (known, required) = fields_of(decl.channel);
    for field in &decl.fields {
        let name = field.name.name.as_str();
        if !known.contains(&name) {
            let help = did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                format!(
                    "{} {channel} message has the fields {}",
                    article(channel),
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            let d = Context::at(
                unit,
                Code::UnknownMessageField,
                field.name.span,
                format!(
                    "{} {channel} message has no field `{name}`",
                    article(channel)
                ),
            )
            .with_label(format!("not {} {channel} field", article(channel)))
            .with_help(help);
            ctx.report(d);
        }
        match &field.value {
            FieldValue::Bool { span, .. } if name != "tracking" && known.contains(&name) => {
                let d = Context::at(
                    unit,
                    Code::TypeMismatch,
                    *span,
                    format!("the field `{name}` takes text, not true or false"),
                )
                .with_label("expected a string")
                .with_help(format!("write the {name} in double quotes"));
                ctx.report(d);
            }
            FieldValue::Bool { .. } => {}
            FieldValue::Text(text) => {
                if decl.channel == Channel::Webhook && name == "method" {
                    let method = text.value.to_ascii_uppercase();
                    if !["POST", "PUT", "PATCH", "GET", "DELETE"].contains(&method.as_str()) {
                        let d = Context::at(
                            unit,
                            Code::BadValue,
                            text.span,
                            format!("`{}` is not an HTTP method a webhook can use", text.value),
                        )
                        .with_label("unknown method")
                        .with_help(
                            "write one of `POST` (the default), `PUT`, `PATCH`, `GET`, `DELETE`",
                        );
                        ctx.report(d);
                    }
                }
                inline_template(ctx, unit, &decl.name.name, text);
            }
            FieldValue::File(path) => file_template(ctx, unit, &decl.name.name, path),
        }
    }
    for name in required {
        if !decl.fields.iter().any(|f| f.name.name == *name) {
            let d = Context::at(
                unit,
                Code::MissingMessageField,
                decl.name.span,
                format!("{channel} message `{}` has no `{name}`", decl.name.name),
            )
            .with_label(format!("missing `{name}`"))
            .with_help(format!(
                "add `{name}: \"...\"` ({} {channel} message needs {})",
                article(channel),
                required
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
            ctx.report(d);
        }
    }
}

/// "an email", "an sms", "a push", "a webhook".
pub fn article(channel: &str) -> &'static str {
    if channel.starts_with('e') || channel.starts_with('s') {
        "an"
    } else {
        "a"
    }
}

fn environment() -> minijinja::Environment<'static> {
    minijinja::Environment::new()
}

/// A template written in the `.flow` file: errors point into the string.
fn inline_template(ctx: &mut Context<'_>, unit: &SourceUnit, message: &str, text: &ast::StringLit) {
    if !text.value.contains("{{") && !text.value.contains("{%") && !text.value.contains("{#") {
        return;
    }
    let env = environment();
    let literal = unit.text.get(text.span.start..text.span.end).unwrap_or("");
    let map = |offset: usize| text.span.start + source_offset(literal, offset);
    match env.template_from_str(&text.value) {
        Err(e) => {
            let span = match e.range() {
                Some(r) => Span::new(map(r.start), map(r.end.max(r.start + 1)).min(text.span.end)),
                None => text.span,
            };
            let d = Context::at(
                unit,
                Code::TemplateSyntax,
                span,
                format!(
                    "the template does not parse: {}",
                    e.detail().unwrap_or("syntax error")
                ),
            )
            .with_label("here")
            .with_help(syntax_help(e.detail().unwrap_or("")));
            ctx.report(d);
        }
        Ok(template) => {
            for name in unknown_variables(&template) {
                let span = find_word(&text.value, &name)
                    .map(|at| Span::new(map(at), map(at + name.len())))
                    .unwrap_or(text.span);
                report_variable(ctx, unit, span, &name, None);
            }
            for used in unknown_filters(&text.value) {
                let span = Span::new(map(used.at), map(used.at + used.name.len()));
                report_filter(ctx, unit, span, &used, None);
            }
            for root in ["trigger", "event"] {
                for property in properties_of(&template, root) {
                    if guarded(&text.value, root, &property) {
                        continue;
                    }
                    let dotted = format!("{root}.{property}");
                    let span = find_word(&text.value, &dotted)
                        .map(|at| Span::new(map(at), map(at + dotted.len())))
                        .unwrap_or(text.span);
                    let read = TriggerRead {
                        property,
                        span,
                        in_file: None,
                    };
                    reads(ctx, root)
                        .entry(message.to_string())
                        .or_default()
                        .push(read);
                }
            }
        }
    }
}

/// Whether the template tests the value before it uses it (`{% if event.x is defined %}`,
/// `{% if event is defined %}`) or gives a default (`{{ event.x | default("") }}`): then a
/// missing value is expected, not an error.
fn guarded(text: &str, root: &str, property: &str) -> bool {
    let dotted = format!("{root}.{property}");
    text.contains(&format!("{dotted} is defined"))
        || text.contains(&format!("{root} is defined"))
        || text.contains(&format!("{dotted} | default"))
        || text.contains(&format!("{dotted}|default"))
}

/// Where the reads of `root` (`trigger` or `event`) are kept.
fn reads<'a>(
    ctx: &'a mut Context<'_>,
    root: &str,
) -> &'a mut std::collections::HashMap<String, Vec<TriggerRead>> {
    if root == "trigger" {
        &mut ctx.trigger_reads
    } else {
        &mut ctx.event_reads
    }
}

/// The first field of every `ROOT.NAME` (`trigger.`, `event.`) a template reads.
fn properties_of(template: &minijinja::Template<'_, '_>, root: &str) -> Vec<String> {
    let prefix = format!("{root}.");
    let mut found: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter_map(|v| {
            v.strip_prefix(prefix.as_str())
                .map(|rest| rest.split('.').next().unwrap_or(rest).to_string())
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// How to fix a template syntax error, from minijinja's words.
fn syntax_help(detail: &str) -> String {
    if detail.contains("end of input") {
        "close what is open: `{{ ... }}` with `}}`, `{% if %}` with `{% endif %}`, `{% for %}` with `{% endfor %}`".to_string()
    } else if detail.contains("unexpected `}`") {
        "an expression ends with two braces: `{{ contact.first_name }}`".to_string()
    } else {
        "write expressions as `{{ contact.first_name }}` and blocks as `{% if contact.vip %}...{% endif %}`".to_string()
    }
}

/// A template from `file("...")`: the file must exist; its errors name its line.
fn file_template(ctx: &mut Context<'_>, unit: &SourceUnit, message: &str, path: &ast::StringLit) {
    let full = ctx.project.root.join(&path.value);
    let text = match std::fs::read_to_string(&full) {
        Ok(text) => text,
        Err(e) => {
            let (message, help) = if e.kind() == std::io::ErrorKind::NotFound || full.is_dir() {
                (
                    format!("`{}` does not exist", path.value),
                    format!(
                        "paths in `file(...)` are relative to the project root (`{}`); create the file or fix the path",
                        match ctx.project.root.as_os_str().is_empty() {
                            true => std::path::Path::new(".").display(),
                            false => ctx.project.root.display(),
                        }
                    ),
                )
            } else {
                (
                    format!("cannot read `{}`: {e}", path.value),
                    "save the file as UTF-8 text that flowc can read".to_string(),
                )
            };
            let d = Context::at(unit, Code::FileNotFound, path.span, message)
                .with_label("no such file")
                .with_help(help);
            ctx.report(d);
            return;
        }
    };
    let env = environment();
    match env.template_from_str(&text) {
        Err(e) => {
            let line = e.line().map(|l| format!(" line {l}")).unwrap_or_default();
            let d = Context::at(
                unit,
                Code::TemplateSyntax,
                path.span,
                format!(
                    "the template `{}`{line} does not parse: {}",
                    path.value,
                    e.detail().unwrap_or("syntax error")
                ),
            )
            .with_label("in this file")
            .with_help(format!("fix `{}`{line}", path.value));
            ctx.report(d);
        }
        Ok(template) => {
            for name in unknown_variables(&template) {
                let line = find_word(&text, &name).map(|at| text[..at].matches('\n').count() + 1);
                report_variable(ctx, unit, path.span, &name, Some((&path.value, line)));
            }
            for used in unknown_filters(&text) {
                let line = text[..used.at].matches('\n').count() + 1;
                report_filter(ctx, unit, path.span, &used, Some((&path.value, line)));
            }
            for root in ["trigger", "event"] {
                for property in properties_of(&template, root) {
                    if guarded(&text, root, &property) {
                        continue;
                    }
                    let dotted = format!("{root}.{property}");
                    let line = find_word(&text, &dotted)
                        .map_or(1, |at| text[..at].matches('\n').count() + 1);
                    let read = TriggerRead {
                        property,
                        span: path.span,
                        in_file: Some((path.value.clone(), line)),
                    };
                    reads(ctx, root)
                        .entry(message.to_string())
                        .or_default()
                        .push(read);
                }
            }
        }
    }
}

/// The variables a template reads that are neither a template root (`contact`, `trigger`, ...)
/// nor one of minijinja's own names, sorted.
fn unknown_variables(template: &minijinja::Template<'_, '_>) -> Vec<String> {
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !TEMPLATE_ROOTS.contains(&v.as_str()) && !TEMPLATE_EXTRAS.contains(&v.as_str()))
        .collect();
    unknown.sort();
    unknown
}

fn report_variable(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    span: Span,
    name: &str,
    file: Option<(&str, Option<usize>)>,
) {
    let help = did_you_mean(name, TEMPLATE_ROOTS.iter().copied())
        .unwrap_or_else(|| "templates read `contact.`, `trigger.`, `event.`, `flow` and `message`: write `{{ contact.NAME }}` for a contact trait".to_string());
    let message = match file {
        Some((path, Some(line))) => {
            format!("unknown template variable `{name}` in `{path}` line {line}")
        }
        Some((path, None)) => format!("unknown template variable `{name}` in `{path}`"),
        None => format!("unknown template variable `{name}`"),
    };
    let d = Context::at(unit, Code::UnknownTemplateVariable, span, message)
        .with_label("not a template variable")
        .with_help(help);
    ctx.report(d);
}

/// A filter (`{{ x | NAME }}`, `{% filter NAME %}`) or test (`x is NAME`) a template names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FilterUse {
    /// A test after `is`, else a filter.
    test: bool,
    name: String,
    /// Byte offset of the name in the template text.
    at: usize,
}

/// The filters and tests a template names that the rendering environment does not have
/// (minijinja looks them up only when the expression runs, so they parse).
fn unknown_filters(text: &str) -> Vec<FilterUse> {
    filter_uses(text)
        .into_iter()
        .filter(|u| {
            if u.test {
                !crate::template::has_test(&u.name)
            } else {
                !crate::template::has_filter(&u.name)
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'t> {
    Name(&'t str),
    Punct(u8),
}

/// Every filter and test named inside the `{{ ... }}` and `{% ... %}` tags of `text` (string
/// literals, comments and `{% raw %}` blocks skipped).
fn filter_uses(text: &str) -> Vec<FilterUse> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let close: &[u8] = match bytes[i + 1] {
            b'{' => b"}}",
            b'%' => b"%}",
            b'#' => {
                i = find_from(bytes, i + 2, b"#}").map_or(bytes.len(), |e| e + 2);
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let block = bytes[i + 1] == b'%';
        let mut tokens: Vec<(Token<'_>, usize)> = Vec::new();
        let mut j = i + 2;
        while j < bytes.len() && !bytes[j..].starts_with(close) {
            let b = bytes[j];
            if b == b'"' || b == b'\'' {
                j += 1;
                while j < bytes.len() && bytes[j] != b {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                j += 1;
            } else if b.is_ascii_alphabetic() || b == b'_' {
                let start = j;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                tokens.push((Token::Name(&text[start..j]), start));
            } else {
                if !b.is_ascii_whitespace() {
                    tokens.push((Token::Punct(b), j));
                }
                j += 1;
            }
        }
        let mut k = 0;
        while k < tokens.len() {
            let after_dot = k > 0 && tokens[k - 1].0 == Token::Punct(b'.');
            match tokens[k].0 {
                Token::Punct(b'|') => {
                    if let Some((Token::Name(name), at)) = tokens.get(k + 1) {
                        found.push(FilterUse {
                            test: false,
                            name: name.to_string(),
                            at: *at,
                        });
                    }
                }
                Token::Name("is") if !after_dot => {
                    let mut next = k + 1;
                    if tokens.get(next).is_some_and(|t| t.0 == Token::Name("not")) {
                        next += 1;
                    }
                    if let Some((Token::Name(name), at)) = tokens.get(next) {
                        found.push(FilterUse {
                            test: true,
                            name: name.to_string(),
                            at: *at,
                        });
                    }
                }
                Token::Name("filter") if block && k == 0 => {
                    if let Some((Token::Name(name), at)) = tokens.get(1) {
                        found.push(FilterUse {
                            test: false,
                            name: name.to_string(),
                            at: *at,
                        });
                    }
                }
                _ => {}
            }
            k += 1;
        }
        i = (j + 2).min(bytes.len().max(j));
        if block && tokens.first().is_some_and(|t| t.0 == Token::Name("raw")) {
            i = find_from(bytes, i, b"endraw")
                .and_then(|e| find_from(bytes, e, b"%}"))
                .map_or(bytes.len(), |e| e + 2);
        }
    }
    found
}

/// The first occurrence of `needle` in `bytes` at or after `from`.
fn find_from(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn report_filter(
    ctx: &mut Context<'_>,
    unit: &SourceUnit,
    span: Span,
    used: &FilterUse,
    file: Option<(&str, usize)>,
) {
    let (kind, names): (&str, Vec<&str>) = if used.test {
        ("test", crate::template::test_names().collect())
    } else {
        ("filter", crate::template::filter_names().collect())
    };
    let place = match file {
        Some((path, line)) => format!(" in `{path}` line {line}"),
        None => String::new(),
    };
    let help = did_you_mean(&used.name, names.iter().copied()).unwrap_or_else(|| {
        if used.test {
            "tests are written `{% if contact.x is defined %}`; the template engine has `defined`, `none`, `number`, `string`, `odd`, `even`, `in` and more (see docs/language.md)".to_string()
        } else {
            "filters are written `{{ contact.first_name | title }}`; the template engine has `default`, `upper`, `lower`, `title`, `trim`, `round`, `join`, `urlencode` and more (see docs/language.md)".to_string()
        }
    });
    let d = Context::at(
        unit,
        Code::UnknownTemplateFilter,
        span,
        format!("unknown template {kind} `{}`{place}", used.name),
    )
    .with_label(format!("not a {kind} of the template engine"))
    .with_help(help);
    ctx.report(d);
}

/// The byte offset in a string literal's source (quotes included) of byte `offset` of its
/// value (escapes resolved).
pub fn source_offset(literal: &str, offset: usize) -> usize {
    let mut value = 0;
    let mut chars = literal.char_indices().skip(1).peekable();
    while let Some((at, c)) = chars.next() {
        if value >= offset {
            return at;
        }
        if c == '\\' {
            chars.next();
            value += 1;
        } else if c == '"' {
            return at;
        } else {
            value += c.len_utf8();
        }
    }
    literal.len().saturating_sub(1)
}

/// The first occurrence of `word` as a whole name (not after a `.`, not part of a longer name).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    text.match_indices(word).map(|(at, _)| at).find(|&at| {
        let before = at.checked_sub(1).and_then(|i| bytes.get(i)).copied();
        let after = bytes.get(at + word.len()).copied();
        !before.is_some_and(|b| is_name(b) || b == b'.') && !after.is_some_and(is_name)
    })
}

#[cfg(test)]
mod tests {
    use super::{filter_uses, source_offset, FilterUse};

    fn uses(text: &str) -> Vec<(bool, String, usize)> {
        filter_uses(text)
            .into_iter()
            .map(|FilterUse { test, name, at }| (test, name, at))
            .collect()
    }

    #[test]
    fn finds_filters_and_tests_in_tags_only() {
        assert_eq!(
            uses("a | b {{ x | upper }}"),
            vec![(false, "upper".to_string(), 13)]
        );
        assert_eq!(
            uses("{% if x is not defined %}{% endif %}"),
            vec![(true, "defined".to_string(), 15)]
        );
        assert_eq!(uses("{{ \"a | b\" ~ x.is }}"), vec![]);
        assert_eq!(uses("{# x | y #}{% raw %}{{ x | y }}{% endraw %}"), vec![]);
        assert_eq!(
            uses("{% filter upper %}x{% endfilter %}"),
            vec![(false, "upper".to_string(), 10)]
        );
    }

    #[test]
    fn offsets_skip_escapes() {
        // "a\"b{{" : value a"b{{ ; value offset 3 (`{`) is source offset 5.
        assert_eq!(source_offset("\"a\\\"b{{\"", 3), 5);
        assert_eq!(source_offset("\"abc\"", 0), 1);
    }
}
