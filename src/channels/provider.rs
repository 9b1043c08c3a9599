//! SMS and push through a provider webhook, and webhook messages, over HTTP with ureq. The
//! HTTP client of the channels (the admin commands of `daemon::admin` use ureq too).
//!
//! Owns: the provider payloads (generic JSON for SMS and push, a Twilio-style form for SMS),
//! the `Idempotency-Key` header on every call, the `X-Flowc-Signature: sha256=HEX` HMAC of the
//! body when a signing secret is set, per-channel timeouts, and the classification of HTTP
//! results: 2xx sent; 408, 429, 5xx and connection errors or timeouts transient; other 4xx
//! (and 3xx: redirects are not followed) permanent; 410 Gone from an SMS or push provider is a
//! hard bounce (the number or push token is dead).
//! Must not: render templates (bodies arrive rendered) or retry (the daemon does).

use super::token::body_signature;
use super::{Outgoing, Receipt, SendError, Sender};
use crate::config::{Config, ProviderConfig};
use crate::syntax::ast::Channel;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The default provider timeout (`[sms|push|webhook] timeout_seconds`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How an SMS or push provider wants the send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `POST` of a JSON object (docs/channels.md).
    Generic,
    /// `POST` of `To`, `From`, `Body` as `application/x-www-form-urlencoded`, as Twilio's
    /// Messages API takes them (SMS only).
    Twilio,
}

/// SMS or push through one provider endpoint.
pub struct ProviderSender {
    channel: Channel,
    format: Format,
    /// The endpoint without credentials.
    url: String,
    /// `Basic ...` from `user:password@` in the configured URL.
    authorization: Option<String>,
    from: Option<String>,
    signing_secret: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for ProviderSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSender")
            .field("channel", &self.channel)
            .field("format", &self.format)
            .field("url", &self.url)
            .finish()
    }
}

impl ProviderSender {
    /// The sender `[sms]` or `[push]` describes; `None` without a `webhook`.
    pub fn from_config(
        channel: Channel,
        config: &ProviderConfig,
    ) -> Result<Option<ProviderSender>, String> {
        let section = channel.keyword();
        let Some(webhook) = &config.webhook else {
            return Ok(None);
        };
        let format = match config.format.as_deref() {
            None | Some("generic") | Some("json") => Format::Generic,
            Some("twilio") if channel == Channel::Sms => Format::Twilio,
            Some("twilio") => {
                return Err(format!(
                    "`[{section}] format = \"twilio\"` is for SMS only; use `generic` for {section}"
                ))
            }
            Some(other) => {
                return Err(format!(
                    "`[{section}] format = \"{other}\"` is not known: use `generic` (JSON){}",
                    if channel == Channel::Sms {
                        " or `twilio` (form)"
                    } else {
                        ""
                    }
                ))
            }
        };
        if format == Format::Twilio && config.from.is_none() {
            return Err(format!(
                "`[{section}] format = \"twilio\"` needs `from`: the sending number, such as `from = \"+15550100\"`"
            ));
        }
        let (url, authorization) = split_credentials(webhook)
            .map_err(|e| format!("`[{section}] webhook = \"{}\"`: {e}", redact(webhook)))?;
        let timeout = config
            .timeout_seconds
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        Ok(Some(ProviderSender {
            channel,
            format,
            url,
            authorization,
            from: config.from.clone(),
            signing_secret: config.signing_secret.clone(),
            agent: agent(timeout),
        }))
    }

    /// The body and its content type for one send.
    pub fn payload(&self, outgoing: &Outgoing) -> (Vec<u8>, &'static str) {
        match self.format {
            Format::Twilio => {
                let mut form = vec![("To", outgoing.to.as_str())];
                if let Some(from) = &self.from {
                    // A Messaging Service SID (`MG...`) instead of a number.
                    let key = if from.starts_with("MG") && from.len() == 34 {
                        "MessagingServiceSid"
                    } else {
                        "From"
                    };
                    form.push((key, from.as_str()));
                }
                form.push(("Body", outgoing.field("body").unwrap_or_default()));
                (
                    form_encode(&form).into_bytes(),
                    "application/x-www-form-urlencoded",
                )
            }
            Format::Generic => {
                let mut object = Map::new();
                object.insert("channel".into(), json!(outgoing.channel.keyword()));
                object.insert("to".into(), json!(outgoing.to));
                if let Some(from) = &self.from {
                    object.insert("from".into(), json!(from));
                }
                let names: &[&str] = match self.channel {
                    Channel::Push => &["title", "body", "url"],
                    _ => &["body"],
                };
                for name in names {
                    if let Some(value) = outgoing.field(name) {
                        object.insert((*name).into(), json!(value));
                    }
                }
                insert_delivery(&mut object, outgoing);
                (
                    Value::Object(object).to_string().into_bytes(),
                    "application/json",
                )
            }
        }
    }
}

impl Sender for ProviderSender {
    fn send(&self, outgoing: &Outgoing) -> Result<Receipt, SendError> {
        let (body, content_type) = self.payload(outgoing);
        let mut headers = vec![
            ("Content-Type", content_type.to_string()),
            ("Idempotency-Key", outgoing.idempotency_key.clone()),
        ];
        if self.format == Format::Twilio {
            headers.push((
                "I-Twilio-Idempotency-Token",
                outgoing.idempotency_key.clone(),
            ));
        }
        if let Some(auth) = &self.authorization {
            headers.push(("Authorization", auth.clone()));
        }
        if let Some(secret) = &self.signing_secret {
            headers.push(("X-Flowc-Signature", body_signature(secret, &body)));
        }
        if outgoing.field("test") == Some("true") {
            headers.push(("X-Flowc-Test", "true".to_string()));
        }
        let hard_bounce_on_gone = true;
        call(
            &self.agent,
            "POST",
            &self.url,
            &headers,
            Some(body),
            hard_bounce_on_gone,
        )
    }
}

/// Webhook messages: the message's own `url`, `method` and JSON `body`.
pub struct WebhookSender {
    signing_secret: Option<String>,
    agent: ureq::Agent,
}

impl WebhookSender {
    pub fn from_config(config: &Config) -> WebhookSender {
        let timeout = config
            .webhook
            .timeout_seconds
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        WebhookSender {
            signing_secret: config.webhook.signing_secret.clone(),
            agent: agent(timeout),
        }
    }

    /// The body a webhook message sends: its rendered `body` (which must be JSON), else an
    /// object describing the delivery.
    pub fn payload(outgoing: &Outgoing) -> Result<Vec<u8>, SendError> {
        match outgoing.field("body") {
            Some(body) if !body.trim().is_empty() => {
                if let Err(e) = serde_json::from_str::<Value>(body) {
                    return Err(SendError::Permanent {
                        reason: format!(
                            "webhook message `{}`: the rendered `body` is not JSON ({e}); \
                             values are escaped for use inside JSON strings, so write \
                             `\"name\": \"{{{{ contact.name }}}}\"` for text and \
                             `\"total\": {{{{ trigger.total }}}}` for numbers",
                            outgoing.message
                        ),
                        hard_bounce: false,
                    });
                }
                Ok(body.as_bytes().to_vec())
            }
            _ => {
                let mut object = Map::new();
                insert_delivery(&mut object, outgoing);
                Ok(Value::Object(object).to_string().into_bytes())
            }
        }
    }
}

impl Sender for WebhookSender {
    fn send(&self, outgoing: &Outgoing) -> Result<Receipt, SendError> {
        let method = outgoing
            .field("method")
            .map_or("POST".to_string(), |m| m.trim().to_ascii_uppercase());
        let with_body = match method.as_str() {
            "POST" | "PUT" | "PATCH" => true,
            "GET" | "DELETE" => false,
            other => {
                return Err(SendError::Permanent {
                    reason: format!(
                        "webhook message `{}`: method `{other}` is not one of POST, PUT, PATCH, GET, DELETE",
                        outgoing.message
                    ),
                    hard_bounce: false,
                })
            }
        };
        let body = if with_body {
            Self::payload(outgoing)?
        } else {
            Vec::new()
        };
        let (url, authorization) =
            split_credentials(&outgoing.to).map_err(|e| SendError::Permanent {
                reason: format!(
                    "webhook message `{}`: `url` {}: {e}",
                    outgoing.message,
                    redact(&outgoing.to)
                ),
                hard_bounce: false,
            })?;
        let mut headers = vec![("Idempotency-Key", outgoing.idempotency_key.clone())];
        if with_body {
            headers.push(("Content-Type", "application/json".to_string()));
        }
        if let Some(auth) = authorization {
            headers.push(("Authorization", auth));
        }
        if let Some(secret) = &self.signing_secret {
            headers.push(("X-Flowc-Signature", body_signature(secret, &body)));
        }
        if outgoing.field("test") == Some("true") {
            headers.push(("X-Flowc-Test", "true".to_string()));
        }
        call(
            &self.agent,
            &method,
            &url,
            &headers,
            with_body.then_some(body),
            false,
        )
    }
}

/// The delivery's own keys, beside a provider payload.
fn insert_delivery(object: &mut Map<String, Value>, outgoing: &Outgoing) {
    object.insert("idempotency_key".into(), json!(outgoing.idempotency_key));
    object.insert("contact".into(), json!(outgoing.contact));
    object.insert("flow".into(), json!(outgoing.flow));
    object.insert("message".into(), json!(outgoing.message));
    object.insert("time".into(), json!(outgoing.time));
    object.insert("transactional".into(), json!(outgoing.transactional));
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("flowc/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// One HTTP call, classified.
fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
    hard_bounce_on_gone: bool,
) -> Result<Receipt, SendError> {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let permanent = |reason: String| SendError::Permanent {
        reason,
        hard_bounce: false,
    };
    let result = match body {
        Some(body) => request
            .body(body)
            .map_err(|e| permanent(format!("{method} {}: {e}", redact(url))))
            .map(|r| agent.run(r))?,
        None => request
            .body(())
            .map_err(|e| permanent(format!("{method} {}: {e}", redact(url))))
            .map(|r| agent.run(r))?,
    };
    let mut response = match result {
        Ok(r) => r,
        Err(e) => return Err(classify_error(&e, method, url)),
    };
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(Receipt {
            provider_id: provider_id(&text),
        });
    }
    let excerpt: String = text.trim().chars().take(300).collect();
    let reason = format!(
        "{method} {} answered HTTP {status}{}",
        redact(url),
        if excerpt.is_empty() {
            String::new()
        } else {
            format!(": {excerpt}")
        }
    );
    Err(classify_status(status, reason, hard_bounce_on_gone))
}

/// 408, 429 and 5xx are transient; 410 is a hard bounce when `gone_is_bounce`; the rest
/// permanent.
pub fn classify_status(status: u16, reason: String, gone_is_bounce: bool) -> SendError {
    match status {
        408 | 429 | 500..=599 => SendError::Transient(reason),
        410 if gone_is_bounce => SendError::Permanent {
            reason,
            hard_bounce: true,
        },
        _ => SendError::Permanent {
            reason,
            hard_bounce: false,
        },
    }
}

fn classify_error(error: &ureq::Error, method: &str, url: &str) -> SendError {
    let reason = format!("{method} {}: {error}", redact(url));
    match error {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RedirectFailed => {
            SendError::Permanent {
                reason,
                hard_bounce: false,
            }
        }
        _ => SendError::Transient(reason),
    }
}

/// The provider's id for the send, from a JSON answer: `sid` (Twilio), `id`, `message_id`.
fn provider_id(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    ["sid", "id", "message_id", "messageId"]
        .iter()
        .find_map(|k| match value.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

/// Splits `user:password@` out of a URL into an HTTP Basic `Authorization` value.
fn split_credentials(raw: &str) -> Result<(String, Option<String>), String> {
    let mut url = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{}` is not http or https", url.scheme()));
    }
    if url.username().is_empty() && url.password().is_none() {
        return Ok((url.to_string(), None));
    }
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let user = decode(url.username());
    let password = decode(url.password().unwrap_or_default());
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok((url.to_string(), Some(auth)))
}

/// A URL for messages: credentials and query replaced by `...`.
fn redact(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            if url.query().is_some() {
                url.set_query(Some("..."));
            }
            url.to_string()
        }
        Err(_) => "(not a URL)".to_string(),
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let t = |s| classify_status(s, String::new(), true);
        assert!(matches!(t(500), SendError::Transient(_)));
        assert!(matches!(t(503), SendError::Transient(_)));
        assert!(matches!(t(429), SendError::Transient(_)));
        assert!(matches!(t(408), SendError::Transient(_)));
        assert!(matches!(
            t(400),
            SendError::Permanent {
                hard_bounce: false,
                ..
            }
        ));
        assert!(matches!(
            t(302),
            SendError::Permanent {
                hard_bounce: false,
                ..
            }
        ));
        assert!(matches!(
            t(410),
            SendError::Permanent {
                hard_bounce: true,
                ..
            }
        ));
        assert!(matches!(
            classify_status(410, String::new(), false),
            SendError::Permanent {
                hard_bounce: false,
                ..
            }
        ));
    }

    #[test]
    fn credentials_become_basic_auth() {
        let (url, auth) = split_credentials("https://AC1:s%40cret@api.example/x?y=1").unwrap();
        assert_eq!(url, "https://api.example/x?y=1");
        assert_eq!(
            auth.unwrap(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("AC1:s@cret")
            )
        );
        assert_eq!(
            split_credentials("http://h/x").unwrap(),
            ("http://h/x".to_string(), None)
        );
        assert!(split_credentials("ftp://h/x").is_err());
        assert_eq!(redact("https://u:p@h/x?token=1"), "https://h/x?...");
    }

    #[test]
    fn provider_ids() {
        assert_eq!(provider_id(r#"{"sid":"SM1"}"#).as_deref(), Some("SM1"));
        assert_eq!(provider_id(r#"{"id":7}"#).as_deref(), Some("7"));
        assert_eq!(provider_id("ok"), None);
    }

    #[test]
    fn twilio_messaging_service_sid() {
        let config = ProviderConfig {
            webhook: Some("http://127.0.0.1:9/sms".into()),
            format: Some("twilio".into()),
            from: Some(format!("MG{}", "0".repeat(32))),
            ..ProviderConfig::default()
        };
        let sender = ProviderSender::from_config(Channel::Sms, &config)
            .unwrap()
            .unwrap();
        let outgoing = Outgoing {
            idempotency_key: "k".into(),
            time: String::new(),
            contact: "c".into(),
            flow: "f".into(),
            message: "m".into(),
            channel: Channel::Sms,
            transactional: false,
            to: "+1 555".into(),
            fields: vec![("body".into(), "a&b".into())],
        };
        let (body, content_type) = sender.payload(&outgoing);
        assert_eq!(content_type, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            format!(
                "To=%2B1+555&MessagingServiceSid=MG{}&Body=a%26b",
                "0".repeat(32)
            )
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let config = ProviderConfig {
            webhook: Some("http://127.0.0.1:9/push".into()),
            format: Some("twilio".into()),
            ..ProviderConfig::default()
        };
        let error = ProviderSender::from_config(Channel::Push, &config).unwrap_err();
        assert!(error.contains("[push] format"), "{error}");
        let config = ProviderConfig {
            webhook: Some("http://127.0.0.1:9/sms".into()),
            format: Some("twilio".into()),
            ..ProviderConfig::default()
        };
        let error = ProviderSender::from_config(Channel::Sms, &config).unwrap_err();
        assert!(error.contains("needs `from`"), "{error}");
    }
}
