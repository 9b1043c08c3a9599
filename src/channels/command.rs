//! `flowc send-test` (render one message and really send it, marked as a test) and
//! `flowc preview` (render it to the terminal or an HTML file, sending nothing).
//!
//! Owns: the sample template context these commands build (`--contact`, `--trigger`,
//! `--event` files; the address from `--to`) and what they print.
//! Must not: render or send by other paths than the daemon's ([`super::prepare`] and
//! [`super::ChannelSenders`]), so that a test send shows exactly what a real one would.

use super::prepare::{address_trait, prepare, Links, Prepare};
use super::{ChannelSenders, Outgoing, SendError, Sender};
use crate::cli::{PreviewArgs, SendTestArgs, EXIT_CANNOT_RUN, EXIT_ERRORS, EXIT_OK};
use crate::compile::{CompiledMessage, CompiledProject, StateKind};
use crate::config::Config;
use crate::syntax::ast::Channel;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The contact id of test sends (and of any tracking events their links record).
pub const TEST_CONTACT: &str = "send-test";

/// Where the daemon and `send-test` keep a generated signing key: beside the store folder
/// (`.flowc/signing.key` for the default `.flowc/data`).
pub fn signing_key_file(project_root: &Path, config: &Config) -> PathBuf {
    let store = project_root.join(&config.store.path);
    store.with_file_name("signing.key")
}

/// `flowc send-test MESSAGE --to ADDRESS [--contact FILE] [--trigger FILE] [--event FILE]`.
pub fn send_test(args: &SendTestArgs) -> u8 {
    let loaded = match load(&args.project, &args.message) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let samples = Samples {
        contact: args.contact.as_deref(),
        trigger: args.trigger.as_deref(),
        event: args.event.as_deref(),
        to: Some(&args.to),
    };
    let context = match samples.context(&loaded) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let senders = match ChannelSenders::from_config(&loaded.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: flowc.toml: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let channel = loaded.message.channel;
    if let Some(missing) = senders.missing(channel) {
        eprintln!(
            "error: cannot send {} messages: set {missing} in `{}`",
            channel.keyword(),
            loaded.root.join("flowc.toml").display()
        );
        return EXIT_CANNOT_RUN;
    }
    let key_file = signing_key_file(&loaded.root, &loaded.config);
    let signer = match super::signer_from_config(&loaded.config, Some(&key_file)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let links = Links::from_config(&loaded.config, signer);
    let now = chrono::Utc::now();
    let key = format!(
        "send-test-{}-{}",
        loaded.message.name,
        now.timestamp_nanos_opt().unwrap_or_default()
    );
    let time = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut outgoing = match prepare(
        &Prepare {
            message: &loaded.message,
            context: &context,
            idempotency_key: &key,
            time: &time,
            contact: TEST_CONTACT,
            flow: &loaded.flow,
            to: Some(&args.to),
        },
        Some(&links),
    ) {
        Ok(o) => o,
        Err(e) => return render_failed(&e),
    };
    mark_as_test(&mut outgoing);
    match senders.send(&outgoing) {
        Ok(receipt) => {
            println!(
                "sent {} message `{}` to {}{}",
                channel.keyword(),
                outgoing.message,
                outgoing.to,
                receipt
                    .provider_id
                    .map(|id| format!(" (id {id})"))
                    .unwrap_or_default()
            );
            EXIT_OK
        }
        Err(SendError::Transient(reason)) => {
            eprintln!("error: not sent, a temporary failure (the daemon would retry): {reason}");
            EXIT_ERRORS
        }
        Err(SendError::Permanent {
            reason,
            hard_bounce,
        }) => {
            eprintln!(
                "error: not sent, a permanent failure{}: {reason}",
                if hard_bounce {
                    " (the address does not exist: the daemon would suppress it)"
                } else {
                    ""
                }
            );
            EXIT_ERRORS
        }
    }
}

/// `[TEST] ` before the subject (email), title (push) or text (SMS), and a `test` field
/// that senders turn into an `X-Flowc-Test: true` header.
pub fn mark_as_test(outgoing: &mut Outgoing) {
    let field = match outgoing.channel {
        Channel::Email => Some("subject"),
        Channel::Push => Some("title"),
        Channel::Sms => Some("body"),
        Channel::Webhook => None,
    };
    for (name, value) in &mut outgoing.fields {
        if Some(name.as_str()) == field {
            *value = format!("[TEST] {value}");
        }
    }
    outgoing
        .fields
        .push(("test".to_string(), "true".to_string()));
}

/// `flowc preview MESSAGE [--contact FILE] [--trigger FILE] [--event FILE] [--to ADDRESS]
/// [--html FILE]`.
pub fn preview(args: &PreviewArgs) -> u8 {
    let loaded = match load(&args.project, &args.message) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let samples = Samples {
        contact: args.contact.as_deref(),
        trigger: args.trigger.as_deref(),
        event: args.event.as_deref(),
        to: args.to.as_deref(),
    };
    let context = match samples.context(&loaded) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let channel = loaded.message.channel;
    let to = args
        .to
        .clone()
        .or_else(|| super::prepare::address_of(channel, &context))
        .or_else(|| address_trait(channel).map(|t| format!("(the contact's `{t}`)")));
    let mut links = Links::from_config(&loaded.config, super::Signer::ephemeral());
    links.tracking = false;
    let outgoing = match prepare(
        &Prepare {
            message: &loaded.message,
            context: &context,
            idempotency_key: "preview",
            time: "",
            contact: TEST_CONTACT,
            flow: &loaded.flow,
            to: to.as_deref(),
        },
        Some(&links),
    ) {
        Ok(o) => o,
        Err(e) => return render_failed(&e),
    };
    let mut out = String::new();
    let kind = if outgoing.transactional {
        "transactional"
    } else {
        "marketing"
    };
    out.push_str(&format!(
        "message: {} ({}, {kind})\n",
        outgoing.message,
        channel.keyword()
    ));
    match channel {
        Channel::Email => {
            out.push_str(&format!("to: {}\n", outgoing.to));
            let from = outgoing
                .field("from")
                .map(str::to_string)
                .or_else(|| loaded.config.email.from.clone())
                .unwrap_or_else(|| "(set [email] from)".to_string());
            out.push_str(&format!("from: {from}\n"));
            if let Some(r) = outgoing
                .field("reply_to")
                .map(str::to_string)
                .or_else(|| loaded.config.email.reply_to.clone())
            {
                out.push_str(&format!("reply-to: {r}\n"));
            }
            out.push_str(&format!(
                "subject: {}\n",
                outgoing.field("subject").unwrap_or_default()
            ));
            if outgoing.field("unsubscribe_url").is_some() {
                out.push_str("list-unsubscribe: yes (one-click, marketing mail)\n");
            }
            out.push_str(&format!(
                "\n--- text ---\n{}\n",
                outgoing.field("text").unwrap_or_default()
            ));
            let html = outgoing.field("body").unwrap_or_default();
            match &args.html {
                Some(path) => {
                    if let Err(e) = std::fs::write(path, html) {
                        eprintln!("error: cannot write `{}`: {e}", path.display());
                        return EXIT_CANNOT_RUN;
                    }
                    out.push_str(&format!(
                        "\n--- html ---\n(written to {}; open it in a browser)\n",
                        path.display()
                    ));
                }
                None => out.push_str(&format!("\n--- html ---\n{html}\n")),
            }
        }
        Channel::Sms => {
            out.push_str(&format!(
                "to: {}\n\n{}\n",
                outgoing.to,
                outgoing.field("body").unwrap_or_default()
            ));
        }
        Channel::Push => {
            out.push_str(&format!("to: {}\n", outgoing.to));
            out.push_str(&format!(
                "title: {}\n",
                outgoing.field("title").unwrap_or_default()
            ));
            if let Some(url) = outgoing.field("url") {
                out.push_str(&format!("url: {url}\n"));
            }
            out.push_str(&format!(
                "\n{}\n",
                outgoing.field("body").unwrap_or_default()
            ));
        }
        Channel::Webhook => {
            let method = outgoing
                .field("method")
                .unwrap_or("POST")
                .to_ascii_uppercase();
            out.push_str(&format!("{method} {}\n", outgoing.to));
            match super::provider::WebhookSender::payload(&outgoing) {
                Ok(body) => {
                    let pretty = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| serde_json::to_string_pretty(&v).ok())
                        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                    out.push_str(&format!("\n{pretty}\n"));
                }
                Err(e) => return render_failed(&e),
            }
        }
    }
    print!("{out}");
    EXIT_OK
}

fn render_failed(error: &SendError) -> u8 {
    let reason = match error {
        SendError::Transient(r) | SendError::Permanent { reason: r, .. } => r,
    };
    eprintln!("error: {reason}");
    if reason.contains("is not defined") || reason.contains("are not defined") {
        eprintln!(
            "  = help: pass sample data: --contact contact.json (traits), --trigger trigger.json \
             (the trigger event's properties), --event event.json"
        );
    }
    EXIT_ERRORS
}

struct Loaded {
    root: PathBuf,
    config: Config,
    message: CompiledMessage,
    /// The first flow (by name) that sends the message, else `send_test`.
    flow: String,
}

fn load(project_path: &Path, name: &str) -> Result<Loaded, u8> {
    let compiled = crate::simulate::load_compiled(project_path)?;
    let root = match crate::project::Project::load(project_path) {
        Ok(p) => p.root,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(EXIT_CANNOT_RUN);
        }
    };
    let config = match Config::load(&root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(EXIT_CANNOT_RUN);
        }
    };
    let Some(message) = compiled.messages.iter().find(|m| m.name == name).cloned() else {
        let hint = crate::suggest::closest(name, compiled.messages.iter().map(|m| m.name.as_str()))
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_else(|| {
                let names: Vec<&str> = compiled.messages.iter().map(|m| m.name.as_str()).collect();
                if names.is_empty() {
                    "; the project declares no messages".to_string()
                } else {
                    format!("; the messages are: {}", names.join(", "))
                }
            });
        eprintln!("error: the project has no message `{name}`{hint}");
        return Err(EXIT_CANNOT_RUN);
    };
    let flow = flow_sending(&compiled, &message.name).unwrap_or_else(|| "send_test".to_string());
    Ok(Loaded {
        root,
        config,
        message,
        flow,
    })
}

fn flow_sending(project: &CompiledProject, message: &str) -> Option<String> {
    let id = project.messages.iter().position(|m| m.name == message)?;
    project
        .flows
        .iter()
        .find(|f| {
            f.states.iter().any(
                |s| matches!(&s.kind, StateKind::Send { message, .. } if message.index() == id),
            )
        })
        .map(|f| f.name.clone())
}

/// Sample data files for the template context.
struct Samples<'a> {
    contact: Option<&'a Path>,
    trigger: Option<&'a Path>,
    event: Option<&'a Path>,
    to: Option<&'a str>,
}

impl Samples<'_> {
    /// `{contact, trigger, event, flow, message}`; the `--to` address also becomes the
    /// contact's address trait.
    fn context(&self, loaded: &Loaded) -> Result<Value, String> {
        let mut contact = match self.contact {
            Some(path) => read_object(path, "traits")?,
            None => Map::new(),
        };
        if let (Some(to), Some(t)) = (self.to, address_trait(loaded.message.channel)) {
            contact.insert(t.to_string(), json!(to));
        }
        let trigger = match self.trigger {
            Some(path) => read_object(path, "properties")?,
            None => Map::new(),
        };
        let event = match self.event {
            Some(path) => Value::Object(read_object(path, "properties")?),
            None => Value::Null,
        };
        Ok(json!({
            "contact": contact,
            "trigger": trigger,
            "event": event,
            "flow": loaded.flow,
            "message": loaded.message.name,
        }))
    }
}

/// A JSON object from a file: the object itself, or the `traits`/`properties` of a Segment
/// record (`{"type":"identify","traits":{...}}`).
fn read_object(path: &Path, inner: &str) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("`{}` is not JSON: {e}", path.display()))?;
    match value {
        Value::Object(mut map) => {
            if map.contains_key("type") {
                if let Some(Value::Object(inner)) = map.remove(inner) {
                    return Ok(inner);
                }
            }
            Ok(map)
        }
        _ => Err(format!(
            "`{}` must hold one JSON object such as {{\"first_name\": \"Ana\"}}",
            path.display()
        )),
    }
}
