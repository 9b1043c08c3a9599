//! Channels: turning one decided delivery into a real send (SMTP email, SMS and push through a
//! provider webhook, webhook messages) or into a dry-run record.
//!
//! Owns: the [`Outgoing`] contract between the daemon's outbox and the senders, the
//! transient/permanent classification of failures ([`SendError`]), and the [`EventSink`]
//! through which tracking and unsubscribe requests become ordinary events.
//! Must not: decide whether to send (that is the engine), keep durable state (that is the
//! store), or read the wall clock for anything but timeouts and retry delays.
//!
//! Map: [`prepare`] renders a message into an [`Outgoing`] (templates, address, tracking,
//! unsubscribe URL); [`email`] (lettre) and [`provider`] (ureq) send it; [`ChannelSenders`]
//! routes by channel; [`retry`] says when to try again; [`tracking`] serves the links;
//! [`token`] signs them; [`command`] is `flowc send-test` and `flowc preview`.

pub mod command;
pub mod email;
pub mod html;
pub mod prepare;
pub mod provider;
pub mod retry;
pub mod token;
pub mod tracking;

pub use prepare::{prepare, prepare_delivery, Links, Prepare};
pub use retry::{Retry, RetryPolicy};
pub use token::Signer;

use crate::config::Config;
use crate::syntax::ast::Channel;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

/// One sender per channel, from `flowc.toml`: email when `[email] smtp_url` (or
/// `FLOWC_SMTP_URL`) is set, SMS and push when their `webhook` is set, webhook messages always.
/// A send on a channel that is not configured fails permanently, naming the key to set.
pub struct ChannelSenders {
    pub email: Option<Arc<dyn Sender>>,
    pub sms: Option<Arc<dyn Sender>>,
    pub push: Option<Arc<dyn Sender>>,
    pub webhook: Option<Arc<dyn Sender>>,
}

impl ChannelSenders {
    /// The senders `config` describes; a key that is set but unusable is an error naming it.
    pub fn from_config(config: &Config) -> Result<ChannelSenders, String> {
        let email = email::EmailSender::from_config(config)?;
        let sms = provider::ProviderSender::from_config(Channel::Sms, &config.sms)?;
        let push = provider::ProviderSender::from_config(Channel::Push, &config.push)?;
        Ok(ChannelSenders {
            email: email.map(|s| Arc::new(s) as Arc<dyn Sender>),
            sms: sms.map(|s| Arc::new(s) as Arc<dyn Sender>),
            push: push.map(|s| Arc::new(s) as Arc<dyn Sender>),
            webhook: Some(Arc::new(provider::WebhookSender::from_config(config))),
        })
    }

    /// The sender of a channel, if it is configured.
    pub fn get(&self, channel: Channel) -> Option<&Arc<dyn Sender>> {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
            Channel::Push => self.push.as_ref(),
            Channel::Webhook => self.webhook.as_ref(),
        }
    }

    /// What to set in `flowc.toml` so that `channel` can send (`None`: it can).
    pub fn missing(&self, channel: Channel) -> Option<&'static str> {
        if self.get(channel).is_some() {
            return None;
        }
        Some(match channel {
            Channel::Email => "`[email] smtp_url` (or FLOWC_SMTP_URL) and `from`",
            Channel::Sms => "`[sms] webhook`",
            Channel::Push => "`[push] webhook`",
            Channel::Webhook => "`[webhook]`",
        })
    }
}

impl Sender for ChannelSenders {
    fn send(&self, outgoing: &Outgoing) -> Result<Receipt, SendError> {
        match self.get(outgoing.channel) {
            Some(sender) => sender.send(outgoing),
            None => Err(SendError::Permanent {
                reason: format!(
                    "{} is not configured: set {} in flowc.toml",
                    outgoing.channel.keyword(),
                    self.missing(outgoing.channel).unwrap_or("it")
                ),
                hard_bounce: false,
            }),
        }
    }
}

/// [`ChannelSenders::from_config`] as one shared sender.
pub fn senders_from_config(config: &Config) -> Result<Arc<dyn Sender>, String> {
    Ok(Arc::new(ChannelSenders::from_config(config)?))
}

/// The signing key for tracking and unsubscribe links: `[server] signing_key` or
/// `FLOWC_SIGNING_KEY`; else the key kept in `key_file` (created with 32 random bytes the
/// first time, so links keep working across restarts). `None` for `key_file` and no key
/// configured gives a key that lives as long as the process.
pub fn signer_from_config(
    config: &Config,
    key_file: Option<&std::path::Path>,
) -> Result<Signer, String> {
    if let Some(key) = config.signing_key() {
        return Ok(Signer::new(key.trim()));
    }
    let Some(path) = key_file else {
        return Ok(Signer::ephemeral());
    };
    match std::fs::read(path) {
        Ok(key) if !key.is_empty() => return Ok(Signer::new(key)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot read the signing key `{}`: {e}",
                path.display()
            ))
        }
    }
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key)
        .map_err(|e| format!("cannot make a signing key: {e}; set `[server] signing_key`"))?;
    let key = hex::encode(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
    }
    match write_secret(path, key.as_bytes()) {
        Ok(()) => Ok(Signer::new(key)),
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path)
            .map(Signer::new)
            .map_err(|e| format!("cannot read the signing key `{}`: {e}", path.display())),
        Err(e) => Err(format!(
            "cannot write the signing key `{}`: {e}",
            path.display()
        )),
    }
}

/// Writes a file only its owner can read (on Unix).
fn write_secret(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// The `unsubscribed` record that a hard bounce produces, so that no more marketing goes to
/// the dead address (`properties.reason` = `hard_bounce`).
pub fn hard_bounce_record(
    outgoing: &Outgoing,
    time: crate::engine::time::Instant,
) -> crate::events::Record {
    let claims = token::Claims {
        kind: token::Kind::Unsubscribe,
        contact: outgoing.contact.clone(),
        flow: outgoing.flow.clone(),
        message: outgoing.message.clone(),
        channel: outgoing.channel.keyword().to_string(),
        url: None,
    };
    let mut record = tracking::event_record(&claims, "unsubscribed", time);
    record
        .properties
        .insert("reason".into(), serde_json::json!("hard_bounce"));
    record
}

/// SHA-256 of some bytes.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use token::{Claims, Kind};

    fn claims() -> Claims {
        Claims {
            kind: Kind::Open,
            contact: "c".into(),
            flow: "f".into(),
            message: "m".into(),
            channel: "email".into(),
            url: None,
        }
    }

    #[test]
    fn a_generated_key_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".flowc/signing.key");
        let config = Config::default();
        let first = signer_from_config(&config, Some(&file)).unwrap();
        let token = first.sign(&claims());
        let again = signer_from_config(&config, Some(&file)).unwrap();
        assert!(again.verify(&token).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A configured key wins over the file.
        let configured = Config::parse("[server]\nsigning_key = \"abc\"\n").unwrap();
        let signer = signer_from_config(&configured, Some(&file)).unwrap();
        assert!(signer.verify(&token).is_err());
        assert!(Signer::new("abc").verify(&signer.sign(&claims())).is_ok());
    }
}
