//! Channels: turning one decided delivery into a real send (SMTP email, SMS and push through a
//! provider webhook, webhook messages) or into a dry-run record.
//!
//! Owns: the [`Outgoing`] contract between the daemon's outbox and the senders, the
//! transient/permanent classification of failures ([`SendError`]), and the [`EventSink`]
//! through which tracking and unsubscribe requests become ordinary events.
//! Must not: decide whether to send (that is the engine), keep durable state (that is the
//! store), or read the wall clock for anything but timeouts and retry delays.

use crate::syntax::ast::Channel;
use serde::{Deserialize, Serialize};

/// One send, decided by the engine and rendered, as the outbox keeps it until it is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Stable per (contact, flow instance, step): the outbox key, the SMTP Message-ID seed and
    /// the `Idempotency-Key` header at providers.
    pub idempotency_key: String,
    /// When the engine decided the send (RFC 3339 UTC).
    pub time: String,
    pub contact: String,
    pub flow: String,
    pub message: String,
    pub channel: Channel,
    pub transactional: bool,
    /// The address: an email address, a phone number, a push token, or the webhook URL.
    pub to: String,
    /// Rendered fields of the message, in declaration order (`subject`, `body`, `text`, `title`,
    /// `url`, `method`, `from`, `reply_to`).
    pub fields: Vec<(String, String)>,
}

impl Outgoing {
    /// A rendered field by name.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Connection errors, timeouts, SMTP 4xx, HTTP 5xx and 429: retry with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// SMTP 5xx, HTTP 4xx, a render error: give up (dead letter).
    #[error("permanent: {reason}")]
    Permanent {
        reason: String,
        /// The address does not exist (SMTP 5.1.1 / 550): suppress it for marketing.
        hard_bounce: bool,
    },
}

/// What a provider said when it accepted a send.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Receipt {
    /// The provider's id for the send (SMTP Message-ID, provider message id), if any.
    pub provider_id: Option<String>,
}

/// Where the channel layer hands events it produces itself (`email_opened`, `email_clicked`,
/// `unsubscribed`, hard-bounce suppressions): the daemon implements it by committing the
/// records durably, exactly as if they came in over `/v1/batch`.
pub trait EventSink: Send + Sync {
    fn ingest(&self, records: Vec<crate::events::Record>) -> Result<(), String>;
}

/// Something that can make one send. Blocking: the daemon calls it from a bounded pool of
/// worker threads, so a slow provider never stalls ingestion or timers.
pub trait Sender: Send + Sync {
    fn send(&self, outgoing: &Outgoing) -> Result<Receipt, SendError>;
}
