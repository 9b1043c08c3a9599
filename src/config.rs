//! `flowc.toml`: the project's configuration as typed data.
//!
//! Owns: the schema of every key, defaults, and environment overrides of secrets.
//! Must not: open sockets, files other than `flowc.toml`, or the store.

use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub email: EmailConfig,
    #[serde(default)]
    pub sms: ProviderConfig,
    #[serde(default)]
    pub push: ProviderConfig,
    #[serde(default)]
    pub webhook: WebhookConfig,
    #[serde(default)]
    pub defaults: DefaultsConfig,
    #[serde(default)]
    pub retry: RetryConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    pub public_url: Option<String>,
    #[serde(default)]
    pub write_keys: Vec<String>,
    pub admin_key: Option<String>,
    /// Secret for signing tracking and unsubscribe tokens (or FLOWC_SIGNING_KEY).
    pub signing_key: Option<String>,
    /// `flowc run`: bytes of one request body at most, after gzip decoding (default 4 MiB).
    pub max_body_bytes: Option<usize>,
    /// `flowc run`: records of one `/v1/batch` at most (default 10,000).
    pub max_batch_records: Option<usize>,
    /// `flowc run`: sends in progress at once (default 8).
    pub send_concurrency: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: None,
            write_keys: Vec::new(),
            admin_key: None,
            signing_key: None,
            max_body_bytes: None,
            max_batch_records: None,
            send_concurrency: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_string()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default = "default_store_path")]
    pub path: String,
    /// `flowc run`: days an applied `messageId` is remembered, so that a resent record is
    /// ignored (default 7, Segment's window; 0 keeps them forever).
    pub dedupe_days: Option<u64>,
    /// `flowc run`: days the history log keeps a record, for export-events, backtests and
    /// contact traces (default 90; 0 keeps it forever).
    pub history_days: Option<u64>,
    /// `flowc run`: days a finished outbox entry (sent, dead, skipped, dry run) is kept for
    /// `/v1/contacts/{id}` (default 30; 0 keeps them forever).
    pub outbox_days: Option<u64>,
    /// `flowc run`: seconds between two background compactions (default 600).
    pub compact_every_seconds: Option<u64>,
    /// `flowc run`: a new store compresses its log with zstd (default false: about half the
    /// disk, a fifth of the write throughput; an existing store keeps its setting).
    pub compression: Option<bool>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_store_path(),
            dedupe_days: None,
            history_days: None,
            outbox_days: None,
            compact_every_seconds: None,
            compression: None,
        }
    }
}

fn default_store_path() -> String {
    ".flowc/data".to_string()
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub smtp_url: Option<String>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub timeout_seconds: Option<u64>,
    /// An address for `List-Unsubscribe: <mailto:...>` beside the one-click URL.
    pub unsubscribe_mailto: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub webhook: Option<String>,
    /// `generic` (JSON, the default) or `twilio` (form-encoded, SMS only).
    pub format: Option<String>,
    pub timeout_seconds: Option<u64>,
    /// The sender (`From` of a Twilio-style SMS, `from` of the generic JSON).
    pub from: Option<String>,
    /// Secret for an `X-Flowc-Signature` HMAC header on provider calls.
    pub signing_secret: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Secret for the `X-Flowc-Signature` HMAC header on webhook messages.
    pub signing_secret: Option<String>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DefaultsConfig {
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        DefaultsConfig {
            timezone: default_timezone(),
        }
    }
}

fn default_timezone() -> String {
    "UTC".to_string()
}

/// `[retry]`: how the daemon retries transient send failures (RFC 5321 4.5.4.1 asks for a
/// configurable retry interval and give-up time).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// The first retry delay (default 60).
    pub first_delay_seconds: Option<u64>,
    /// The longest delay between two tries (default 3600).
    pub max_delay_seconds: Option<u64>,
    /// Give up (dead letter) this long after the first try (default 96, four days).
    pub give_up_hours: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` is not valid: {message}")]
    Invalid { path: String, message: String },
}

/// Why a `flowc.toml` text is not valid, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// What is wrong, without the position.
    pub message: String,
    /// The whole error as other commands print it.
    pub full: String,
    pub help: String,
    /// A few words for the place (`unknown key`).
    pub label: String,
    /// Byte range in the text, when known.
    pub span: Option<std::ops::Range<usize>>,
}

impl Config {
    /// Reads `flowc.toml` in `root`; a missing file gives the defaults.
    pub fn load(root: &Path) -> Result<Config, ConfigError> {
        let path = root.join("flowc.toml");
        let display = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: display,
                    source,
                })
            }
        };
        let config = Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: display.clone(),
            message,
        })?;
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        Config::parse_located(text).map_err(|p| p.full)
    }

    /// [`Config::parse`], with where the problem is (for `flowc check`).
    pub fn parse_located(text: &str) -> Result<Config, ConfigProblem> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            let help = if message.starts_with("unknown field") {
                "remove the key or fix its name (the keys of each section are listed in docs/runtime.md, Configuration)"
                    .to_string()
            } else if message.starts_with("missing field") || message.starts_with("invalid type") {
                "give the key a value of the type it takes".to_string()
            } else {
                "write TOML: `[section]` lines, then `key = \"value\"` lines".to_string()
            };
            let label = if message.starts_with("unknown field") {
                "unknown key"
            } else {
                "here"
            };
            ConfigProblem {
                label: label.to_string(),
                span: e.span(),
                full: e.to_string(),
                message,
                help,
            }
        })?;
        let timezone = &config.defaults.timezone;
        if timezone.parse::<chrono_tz::Tz>().is_err() {
            let message = format!(
                "`[defaults] timezone = \"{timezone}\"` is not an IANA timezone name such as `Europe/Madrid`"
            );
            let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
            let help = match crate::suggest::closest(timezone, names) {
                Some(best) => format!("did you mean `{best}`?"),
                None => "write an IANA timezone name such as `Europe/Madrid` or `UTC`".to_string(),
            };
            let quoted = format!("\"{timezone}\"");
            let span = text.find(&quoted).map(|at| at + 1..at + 1 + timezone.len());
            return Err(ConfigProblem {
                label: "not an IANA timezone".to_string(),
                span,
                full: message.clone(),
                message,
                help,
            });
        }
        Ok(config)
    }

    /// The default timezone (validated by [`Config::parse`]).
    pub fn default_timezone(&self) -> chrono_tz::Tz {
        self.defaults.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// Secrets that an environment variable overrides (so they need not be committed).
impl Config {
    /// `[email] smtp_url`, or `FLOWC_SMTP_URL` when it is set.
    pub fn smtp_url(&self) -> Option<String> {
        env_secret("FLOWC_SMTP_URL").or_else(|| self.email.smtp_url.clone())
    }

    /// `[server] signing_key`, or `FLOWC_SIGNING_KEY` when it is set.
    pub fn signing_key(&self) -> Option<String> {
        env_secret("FLOWC_SIGNING_KEY").or_else(|| self.server.signing_key.clone())
    }
}

fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
