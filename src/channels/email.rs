//! Email over SMTP with lettre. The only module that imports lettre.
//!
//! Owns: turning an email [`Outgoing`] into a MIME message (multipart/alternative text + HTML,
//! `From`/`Reply-To`, a Message-ID derived from the idempotency key, `List-Unsubscribe` and
//! `List-Unsubscribe-Post` on marketing mail only) and sending it through `[email] smtp_url`;
//! classifying SMTP failures with lettre's own transient (4xx) / permanent (5xx) split, and
//! hard bounces (enhanced status 5.1.x, or a bare 550/551/553).
//! Must not: render templates or decide anything about consent. lettre sets the `Date` header
//! to the send time, as mail requires.

use super::{Outgoing, Receipt, SendError, Sender};
use crate::config::Config;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{SmtpTransport, Transport};
use std::time::Duration;

/// The default SMTP timeout (`[email] timeout_seconds`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends email through one SMTP server.
pub struct EmailSender {
    transport: SmtpTransport,
    /// Where the server is, for error messages (never the credentials).
    server: String,
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl EmailSender {
    /// The sender `[email]` describes, `None` when there is no `smtp_url` (nor
    /// `FLOWC_SMTP_URL`). An unusable URL or `from` is an error naming the key.
    pub fn from_config(config: &Config) -> Result<Option<EmailSender>, String> {
        let Some(url) = config.smtp_url() else {
            return Ok(None);
        };
        let from = config.email.from.as_deref().ok_or(
            "`[email] from` is missing: set it to the sender, such as `from = \"Shop <news@shop.example>\"`",
        )?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("`[email] from = \"{from}\"` is not an email address: {e}"))?;
        let reply_to = match &config.email.reply_to {
            Some(r) => Some(r.parse::<Mailbox>().map_err(|e| {
                format!("`[email] reply_to = \"{r}\"` is not an email address: {e}")
            })?),
            None => None,
        };
        let timeout = config
            .email
            .timeout_seconds
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        EmailSender::new(&url, from, reply_to, timeout).map(Some)
    }

    /// A sender for `smtp_url`: `smtp://host:port` (plain), `smtp://...?tls=required` (or
    /// `?tls=starttls`: STARTTLS required), `smtp://...?tls=opportunistic`,
    /// `smtps://host:465` (TLS from the start); `user:password@` for AUTH.
    pub fn new(
        smtp_url: &str,
        from: Mailbox,
        reply_to: Option<Mailbox>,
        timeout: Duration,
    ) -> Result<EmailSender, String> {
        let url = smtp_url.replace("tls=starttls", "tls=required");
        let server = describe_server(&url);
        let builder = SmtpTransport::from_url(&url).map_err(|e| {
            format!(
                "`[email] smtp_url` ({server}) is not usable: {e}; write it as `smtp://host:port`, \
                 `smtp://user:password@host:587?tls=required` or `smtps://user:password@host:465`"
            )
        })?;
        Ok(EmailSender {
            transport: builder.timeout(Some(timeout)).build(),
            server,
            from,
            reply_to,
        })
    }

    /// The MIME message for an email [`Outgoing`].
    pub fn build_message(&self, outgoing: &Outgoing) -> Result<Message, SendError> {
        let address = |field: &str, text: &str| {
            text.parse::<Mailbox>().map_err(|e| SendError::Permanent {
                reason: format!("{field} `{text}` is not an email address: {e}"),
                hard_bounce: false,
            })
        };
        let to = address("the address", &outgoing.to)?;
        let from = match outgoing.field("from").filter(|f| !f.trim().is_empty()) {
            Some(f) => address("`from`", f.trim())?,
            None => self.from.clone(),
        };
        let reply_to = match outgoing.field("reply_to").filter(|f| !f.trim().is_empty()) {
            Some(r) => Some(address("`reply_to`", r.trim())?),
            None => self.reply_to.clone(),
        };
        let domain = from.email.domain().to_string();
        let mut builder = Message::builder()
            .from(from)
            .to(to)
            .subject(outgoing.field("subject").unwrap_or_default())
            .message_id(Some(message_id(&outgoing.idempotency_key, &domain)));
        if let Some(reply_to) = reply_to {
            builder = builder.reply_to(reply_to);
        }
        if !outgoing.transactional {
            let mut targets = Vec::new();
            if let Some(url) = outgoing.field("unsubscribe_url") {
                targets.push(format!("<{url}>"));
            }
            if let Some(mailto) = outgoing.field("unsubscribe_mailto") {
                let mailto = mailto.trim();
                if mailto.starts_with("mailto:") {
                    targets.push(format!("<{mailto}>"));
                } else {
                    targets.push(format!("<mailto:{mailto}>"));
                }
            }
            if !targets.is_empty() {
                builder = builder.raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    targets.join(", "),
                ));
            }
            if outgoing.field("unsubscribe_url").is_some() {
                // RFC 8058: one-click only with an HTTPS (or HTTP) URL to POST to.
                builder = builder.raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_string(),
                ));
            }
        }
        if outgoing.field("test") == Some("true") {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Flowc-Test"),
                "true".to_string(),
            ));
        }
        let html = outgoing.field("body").unwrap_or_default().to_string();
        let text = match outgoing.field("text") {
            Some(t) => t.to_string(),
            None => super::html::to_text(&html),
        };
        builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| SendError::Permanent {
                reason: format!("cannot build the email: {e}"),
                hard_bounce: false,
            })
    }
}

impl Sender for EmailSender {
    fn send(&self, outgoing: &Outgoing) -> Result<Receipt, SendError> {
        let message = self.build_message(outgoing)?;
        let id = message.headers().get_raw("Message-ID").map(str::to_string);
        match self.transport.send(&message) {
            Ok(_) => Ok(Receipt { provider_id: id }),
            Err(e) => Err(classify(&e, &self.server)),
        }
    }
}

/// `<HEX@DOMAIN>`: the same key always gives the same Message-ID, so a resend after a crash is
/// recognisably the same message.
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    let digest = super::sha256(idempotency_key.as_bytes());
    format!("<{}.flowc@{domain}>", hex::encode(&digest[..16]))
}

/// lettre's classification: 4xx replies, connection, network, TLS and timeout errors are
/// transient; 5xx replies and client errors are permanent.
pub fn classify(error: &SmtpError, server: &str) -> SendError {
    let text = error.to_string();
    if error.is_permanent() {
        let code = error.status().map_or(0, u16::from);
        let reply = text.split_once(": ").map_or("", |(_, r)| r);
        SendError::Permanent {
            reason: format!("SMTP {server} refused the message: {text}"),
            hard_bounce: is_hard_bounce(code, reply),
        }
    } else if error.is_client() {
        SendError::Permanent {
            reason: format!("SMTP {server}: {text}"),
            hard_bounce: false,
        }
    } else if error.is_transient() {
        SendError::Transient(format!("SMTP {server} deferred the message: {text}"))
    } else {
        SendError::Transient(format!("SMTP {server}: {text}"))
    }
}

/// A permanent reply that says the address does not exist: an enhanced status code `5.1.1`
/// (bad mailbox), `5.1.2` (bad domain), `5.1.3` (bad address syntax) or `5.1.10` (null MX),
/// or, when the server gives no enhanced code, a bare 550, 551 or 553.
pub fn is_hard_bounce(code: u16, reply: &str) -> bool {
    match enhanced_status(reply) {
        Some((5, 1, detail)) => matches!(detail, 1 | 2 | 3 | 10),
        Some(_) => false,
        None => matches!(code, 550 | 551 | 553),
    }
}

/// `5.1.1` at the start of a reply text.
fn enhanced_status(reply: &str) -> Option<(u16, u16, u16)> {
    let word = reply.split_whitespace().next()?;
    let mut parts = word.split('.');
    let class = parts.next()?.parse().ok()?;
    let subject = parts.next()?.parse().ok()?;
    let detail = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((class, subject, detail))
}

/// `host:port` of an SMTP URL, without credentials.
fn describe_server(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_bounces() {
        assert!(is_hard_bounce(
            550,
            "5.1.1 <x@y>: Recipient address rejected"
        ));
        assert!(is_hard_bounce(550, "No such user here"));
        assert!(is_hard_bounce(554, "5.1.10 null MX"));
        assert!(!is_hard_bounce(550, "5.7.1 Message rejected as spam"));
        assert!(!is_hard_bounce(552, "5.2.2 Mailbox full"));
        assert!(!is_hard_bounce(554, "Transaction failed"));
    }

    #[test]
    fn server_descriptions_hide_credentials() {
        assert_eq!(
            describe_server("smtps://u:p@mail.example:465/ehlo?x=1"),
            "mail.example:465"
        );
        assert_eq!(describe_server("smtp://127.0.0.1:2525"), "127.0.0.1:2525");
    }

    #[test]
    fn message_ids_are_stable_per_key() {
        assert_eq!(
            message_id("k", "shop.example"),
            message_id("k", "shop.example")
        );
        assert_ne!(
            message_id("k", "shop.example"),
            message_id("k2", "shop.example")
        );
        assert!(message_id("k", "shop.example").ends_with(".flowc@shop.example>"));
    }

    #[test]
    fn urls() {
        let from: Mailbox = "Shop <news@shop.example>".parse().unwrap();
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://u:p@mail.example:587?tls=required",
            "smtp://mail.example?tls=starttls",
            "smtp://mail.example?tls=opportunistic",
            "smtps://u:p@mail.example",
        ] {
            assert!(
                EmailSender::new(url, from.clone(), None, DEFAULT_TIMEOUT).is_ok(),
                "{url}"
            );
        }
        let error = EmailSender::new("imap://x", from, None, DEFAULT_TIMEOUT).unwrap_err();
        assert!(error.contains("smtp_url"), "{error}");
    }
}
