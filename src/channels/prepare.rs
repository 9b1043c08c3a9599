//! From a decided delivery to an [`Outgoing`]: render the message's templates, find the
//! address, and for email add the tracking (click redirects, open pixel), the unsubscribe URL
//! and the plain-text part.
//!
//! Owns: which fields an [`Outgoing`] carries beyond the message's own (`unsubscribe_url`,
//! `unsubscribe_mailto`, a derived `text`), and the per-message `tracking` switch.
//! Must not: send anything, or read the clock (the caller passes the decision time).

use super::html;
use super::token::{Claims, Kind, Signer};
use super::{Outgoing, SendError};
use crate::compile::CompiledMessage;
use crate::config::Config;
use crate::syntax::ast::Channel;
use serde_json::Value;

/// Where tracking and unsubscribe links point, and how they are signed.
#[derive(Debug, Clone)]
pub struct Links {
    /// The daemon's public base URL, without a trailing `/` (`[server] public_url`).
    pub public_url: String,
    pub signer: Signer,
    /// `[email] unsubscribe_mailto`: a second `List-Unsubscribe` entry.
    pub unsubscribe_mailto: Option<String>,
    /// Off: no click rewriting and no open pixel for any message (`flowc preview`).
    pub tracking: bool,
}

impl Links {
    /// Links for this configuration: `[server] public_url`, else `http://` + `[server] listen`.
    pub fn from_config(config: &Config, signer: Signer) -> Links {
        let public_url = config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.listen));
        Links {
            public_url: public_url.trim_end_matches('/').to_string(),
            signer,
            unsubscribe_mailto: config.email.unsubscribe_mailto.clone(),
            tracking: true,
        }
    }

    /// `{public_url}/u/{token}`.
    pub fn unsubscribe_url(
        &self,
        contact: &str,
        flow: &str,
        message: &str,
        channel: Channel,
    ) -> String {
        let token = self.signer.sign(&Claims {
            kind: Kind::Unsubscribe,
            contact: contact.to_string(),
            flow: flow.to_string(),
            message: message.to_string(),
            channel: channel.keyword().to_string(),
            url: None,
        });
        format!("{}/u/{token}", self.public_url)
    }
}

/// One delivery to prepare.
#[derive(Debug, Clone, Copy)]
pub struct Prepare<'a> {
    pub message: &'a CompiledMessage,
    /// `{contact, trigger, event, flow, message}` as the engine captured it.
    pub context: &'a Value,
    pub idempotency_key: &'a str,
    /// The decision time, RFC 3339 UTC.
    pub time: &'a str,
    pub contact: &'a str,
    pub flow: &'a str,
    /// The address; `None` takes it from the contact's traits ([`address_of`]) or, for a
    /// webhook, from its rendered `url`.
    pub to: Option<&'a str>,
}

/// The contact trait holding a channel's address: `email`, `phone`, `push_token` (a webhook
/// has none: its address is the message's `url`).
pub fn address_trait(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Email => Some("email"),
        Channel::Sms => Some("phone"),
        Channel::Push => Some("push_token"),
        Channel::Webhook => None,
    }
}

/// The contact's address for `channel`, from `context.contact`.
pub fn address_of(channel: Channel, context: &Value) -> Option<String> {
    let value = context.get("contact")?.get(address_trait(channel)?)?;
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a message's `tracking` field turns tracking off (`"off"`, `"false"`, `false`,
/// `"no"`).
pub fn tracking_disabled(message: &CompiledMessage) -> bool {
    message.fields.iter().any(|(k, v)| {
        k == "tracking"
            && matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "off" | "false" | "no"
            )
    })
}

/// Renders a message into an [`Outgoing`]. A render error, or no address, is a permanent
/// failure naming the field or the missing trait. With `links`, marketing email gets an
/// `unsubscribe_url` (and `unsubscribe_mailto`), and email whose message does not say
/// `tracking: "off"` gets its links rewritten to `/t/c/...` and an open pixel `/t/o/...`.
/// Templates also see `unsubscribe_url` (empty without `links`).
pub fn prepare(p: &Prepare<'_>, links: Option<&Links>) -> Result<Outgoing, SendError> {
    let message = p.message;
    let channel = message.channel;
    let unsubscribe_url = links
        .map(|l| l.unsubscribe_url(p.contact, p.flow, &message.name, channel))
        .unwrap_or_default();
    let mut context = p.context.clone();
    if let Value::Object(map) = &mut context {
        map.insert(
            "unsubscribe_url".to_string(),
            Value::String(unsubscribe_url.clone()),
        );
    }
    let template_fields: Vec<(String, String)> = message
        .fields
        .iter()
        .filter(|(k, _)| k != "tracking")
        .cloned()
        .collect();
    let mut fields = crate::template::render_message(channel, &template_fields, &context)
        .map_err(|e| permanent(format!("message `{}`: {e}", message.name)))?;

    let to = match (p.to, channel) {
        (Some(to), _) => to.to_string(),
        (None, Channel::Webhook) => field(&fields, "url").unwrap_or_default().trim().to_string(),
        (None, _) => address_of(channel, &context).ok_or_else(|| {
            permanent(format!(
                "contact `{}` has no `{}` trait for {} message `{}`",
                p.contact,
                address_trait(channel).unwrap_or("address"),
                channel.keyword(),
                message.name
            ))
        })?,
    };
    if to.is_empty() {
        return Err(permanent(format!(
            "{} message `{}` has no address (a webhook needs a `url`)",
            channel.keyword(),
            message.name
        )));
    }

    if channel == Channel::Email {
        if let Some(links) = links {
            if links.tracking && !tracking_disabled(message) {
                track_body(&mut fields, links, p);
            }
        }
        if field(&fields, "text").is_none() {
            let text = html::to_text(field(&fields, "body").unwrap_or_default());
            fields.push(("text".to_string(), text));
        }
        if !message.transactional {
            if let Some(links) = links {
                fields.push(("unsubscribe_url".to_string(), unsubscribe_url));
                if let Some(mailto) = &links.unsubscribe_mailto {
                    fields.push(("unsubscribe_mailto".to_string(), mailto.clone()));
                }
            }
        }
    }

    Ok(Outgoing {
        idempotency_key: p.idempotency_key.to_string(),
        time: p.time.to_string(),
        contact: p.contact.to_string(),
        flow: p.flow.to_string(),
        message: message.name.clone(),
        channel,
        transactional: message.transactional,
        to,
        fields,
    })
}

/// [`prepare`] for a delivery the engine decided (run with `Options::capture_context`, so that
/// it carries its template context).
pub fn prepare_delivery(
    project: &crate::compile::CompiledProject,
    delivery: &crate::engine::Delivery,
    idempotency_key: &str,
    links: Option<&Links>,
) -> Result<Outgoing, SendError> {
    let message = project
        .messages
        .get(delivery.message.index())
        .ok_or_else(|| {
            permanent(format!(
                "no message #{} in the project",
                delivery.message.index()
            ))
        })?;
    let flow = project
        .flows
        .get(delivery.flow.index())
        .map_or("", |f| f.name.as_str());
    let context = delivery.context.as_ref().ok_or_else(|| {
        permanent(format!(
            "the delivery of `{}` has no template context (run the engine with capture_context)",
            message.name
        ))
    })?;
    prepare(
        &Prepare {
            message,
            context,
            idempotency_key,
            time: &crate::engine::time::format_instant(delivery.time),
            contact: &delivery.contact,
            flow,
            to: None,
        },
        links,
    )
}

/// Rewrites the `http(s)` links of the HTML `body` to signed click redirects (leaving the
/// unsubscribe link alone) and adds the open pixel.
fn track_body(fields: &mut [(String, String)], links: &Links, p: &Prepare<'_>) {
    let Some((_, body)) = fields.iter_mut().find(|(k, _)| k == "body") else {
        return;
    };
    let claims = |kind: Kind, url: Option<String>| Claims {
        kind,
        contact: p.contact.to_string(),
        flow: p.flow.to_string(),
        message: p.message.name.clone(),
        channel: "email".to_string(),
        url,
    };
    let own_unsubscribe = format!("{}/u/", links.public_url);
    let rewritten = html::rewrite_links(body, |url| {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://"))
            || url.starts_with(&own_unsubscribe)
        {
            return None;
        }
        let token = links
            .signer
            .sign(&claims(Kind::Click, Some(url.to_string())));
        Some(format!("{}/t/c/{token}", links.public_url))
    });
    let pixel_token = links.signer.sign(&claims(Kind::Open, None));
    let pixel = format!(
        "<img src=\"{}/t/o/{pixel_token}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">",
        links.public_url
    );
    *body = html::insert_before_body_end(&rewritten, &pixel);
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn permanent(reason: String) -> SendError {
    SendError::Permanent {
        reason,
        hard_bounce: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(channel: Channel, transactional: bool, fields: &[(&str, &str)]) -> CompiledMessage {
        CompiledMessage {
            name: "m".into(),
            channel,
            transactional,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn links() -> Links {
        Links {
            public_url: "https://mail.example".into(),
            signer: Signer::new("k"),
            unsubscribe_mailto: Some("mailto:unsub@shop.example".into()),
            tracking: true,
        }
    }

    fn run(
        message: &CompiledMessage,
        context: &Value,
        links: Option<&Links>,
    ) -> Result<Outgoing, SendError> {
        prepare(
            &Prepare {
                message,
                context,
                idempotency_key: "key-1",
                time: "2026-03-01T10:00:00Z",
                contact: "c1",
                flow: "f",
                to: None,
            },
            links,
        )
    }

    #[test]
    fn marketing_email_is_tracked_and_unsubscribable() {
        let m = message(
            Channel::Email,
            false,
            &[
                ("subject", "Hi {{ contact.name }}"),
                (
                    "body",
                    "<p>{{ contact.name }}: <a href=\"https://shop.example/c?a=1&amp;b=2\">cart</a> <a href=\"{{ unsubscribe_url }}\">unsubscribe</a></p>",
                ),
            ],
        );
        let ctx = json!({"contact": {"name": "<script>x</script>", "email": "a@b.example"}});
        let links = links();
        let out = run(&m, &ctx, Some(&links)).unwrap();
        assert_eq!(out.to, "a@b.example");
        assert_eq!(out.field("subject"), Some("Hi <script>x</script>"));
        let body = out.field("body").unwrap();
        assert!(body.contains("&lt;script&gt;x"), "{body}");
        assert!(!body.contains("<script"), "{body}");
        assert!(!body.contains("https://shop.example/c"), "{body}");
        assert!(body.contains("https://mail.example/t/c/"), "{body}");
        assert!(
            body.contains("<img src=\"https://mail.example/t/o/"),
            "{body}"
        );
        let unsubscribe = out.field("unsubscribe_url").unwrap();
        assert!(
            html::decode_entities(body).contains(unsubscribe),
            "the unsubscribe link is not wrapped: {body}"
        );
        assert_eq!(
            out.field("unsubscribe_mailto"),
            Some("mailto:unsub@shop.example")
        );
        // The click token carries the original URL.
        let start = body.find("/t/c/").unwrap() + 5;
        let token = &body[start..start + body[start..].find('"').unwrap()];
        let claims = links.signer.verify_kind(token, Kind::Click).unwrap();
        assert_eq!(
            claims.url.as_deref(),
            Some("https://shop.example/c?a=1&b=2")
        );
        assert_eq!((claims.contact.as_str(), claims.flow.as_str()), ("c1", "f"));
        // The derived text keeps the (tracked) link.
        assert!(out
            .field("text")
            .unwrap()
            .contains("cart (https://mail.example/t/c/"));
    }

    #[test]
    fn transactional_email_has_no_unsubscribe_fields() {
        let m = message(
            Channel::Email,
            true,
            &[("subject", "s"), ("body", "<p>b</p>"), ("text", "t")],
        );
        let out = run(&m, &json!({"contact": {"email": "a@b"}}), Some(&links())).unwrap();
        assert_eq!(out.field("unsubscribe_url"), None);
        assert_eq!(out.field("text"), Some("t"));
        assert!(out.field("body").unwrap().contains("/t/o/"));
    }

    #[test]
    fn tracking_off_keeps_links_and_adds_no_pixel() {
        let m = message(
            Channel::Email,
            false,
            &[
                ("subject", "s"),
                ("body", "<a href=\"https://x.example/\">x</a>"),
                ("tracking", "off"),
            ],
        );
        let out = run(&m, &json!({"contact": {"email": "a@b"}}), Some(&links())).unwrap();
        assert_eq!(
            out.field("body"),
            Some("<a href=\"https://x.example/\">x</a>")
        );
        assert_eq!(out.field("tracking"), None);
        assert!(out.field("unsubscribe_url").is_some());
    }

    #[test]
    fn missing_address_and_render_errors_are_permanent() {
        let m = message(Channel::Sms, false, &[("body", "hi")]);
        let error = run(&m, &json!({"contact": {}}), None).unwrap_err();
        assert!(
            matches!(&error, SendError::Permanent { reason, hard_bounce: false } if reason.contains("`phone`")),
            "{error:?}"
        );
        let m = message(
            Channel::Sms,
            false,
            &[("body", "hi {{ contact.first_name }}")],
        );
        let error = run(&m, &json!({"contact": {"phone": "+1"}}), None).unwrap_err();
        assert!(
            matches!(&error, SendError::Permanent { reason, .. } if reason.contains("contact.first_name")),
            "{error:?}"
        );
    }

    #[test]
    fn webhook_address_is_its_url() {
        let m = message(
            Channel::Webhook,
            false,
            &[
                ("url", "https://hooks.example/{{ contact.id }}"),
                ("body", "{\"a\": \"{{ contact.id }}\"}"),
            ],
        );
        let out = run(&m, &json!({"contact": {"id": "x\"y"}}), Some(&links())).unwrap();
        assert_eq!(out.to, "https://hooks.example/x\"y");
        assert_eq!(out.field("body"), Some("{\"a\": \"x\\\"y\"}"));
        assert_eq!(out.field("unsubscribe_url"), None);
    }
}
