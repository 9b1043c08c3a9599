//! Signed tokens for tracking and unsubscribe links (`/t/o/{token}`, `/t/c/{token}`,
//! `/u/{token}`).
//!
//! Owns: the token format and its signature. A token is `PAYLOAD.SIGNATURE`, both base64url
//! without padding: PAYLOAD is a small JSON object (what the link is for: kind, contact, flow,
//! message, channel, and the target URL of a click), SIGNATURE is HMAC-SHA256 over
//! `flowc-token-v1.` + PAYLOAD with the project's signing key. Changing one character of either
//! part makes [`Signer::verify`] refuse the token; without the key no token can be made.
//! Tokens carry no secret and do not expire (an unsubscribe link must keep working).
//! Must not: read configuration files or the clock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const DOMAIN: &[u8] = b"flowc-token-v1.";

/// What a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// The open pixel.
    #[serde(rename = "o")]
    Open,
    /// A click redirect.
    #[serde(rename = "c")]
    Click,
    /// The unsubscribe page and one-click POST.
    #[serde(rename = "u")]
    Unsubscribe,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "k")]
    pub kind: Kind,
    /// The contact id.
    #[serde(rename = "c")]
    pub contact: String,
    #[serde(rename = "f")]
    pub flow: String,
    #[serde(rename = "m")]
    pub message: String,
    /// `email`, `sms`, `push` (the channel an unsubscribe withdraws).
    #[serde(rename = "ch")]
    pub channel: String,
    /// The original URL of a click.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match (it was altered or not made by this server)")]
    BadSignature,
    #[error("the link is not a {0} link")]
    WrongKind(&'static str),
}

/// Makes and checks tokens with one secret key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { key: <secret> }")
    }
}

impl Signer {
    /// A signer with this secret (any length; at least 32 random bytes is recommended).
    pub fn new(key: impl AsRef<[u8]>) -> Signer {
        Signer {
            key: key.as_ref().to_vec(),
        }
    }

    /// A signer with a fresh random key, for runs whose links need not outlive the process.
    pub fn ephemeral() -> Signer {
        let mut key = [0u8; 32];
        if getrandom::getrandom(&mut key).is_err() {
            // No OS randomness: fall back to a key nobody else can know in advance either.
            let seed = format!(
                "{:?}{:?}",
                std::time::SystemTime::now(),
                std::thread::current().id()
            );
            key.copy_from_slice(&crate::channels::sha256(seed.as_bytes()));
        }
        Signer::new(key)
    }

    /// The token for these claims.
    pub fn sign(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The claims of a token this signer made, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(payload)
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
    }

    /// [`Signer::verify`], and the token must be of `kind`.
    pub fn verify_kind(&self, token: &str, kind: Kind) -> Result<Claims, TokenError> {
        let claims = self.verify(token)?;
        if claims.kind != kind {
            return Err(TokenError::WrongKind(match kind {
                Kind::Open => "tracking",
                Kind::Click => "click",
                Kind::Unsubscribe => "unsubscribe",
            }));
        }
        Ok(claims)
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(DOMAIN);
        mac.update(payload.as_bytes());
        mac
    }
}

/// `sha256=HEX`: the HMAC-SHA256 of `body` with `secret`, as the `X-Flowc-Signature` header.
pub fn body_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            kind: Kind::Click,
            contact: "c1".into(),
            flow: "welcome".into(),
            message: "hello".into(),
            channel: "email".into(),
            url: Some("https://shop.example/a?b=1&c=2".into()),
        }
    }

    #[test]
    fn round_trip() {
        let signer = Signer::new("k");
        let token = signer.sign(&claims());
        assert_eq!(signer.verify(&token).unwrap(), claims());
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    }

    #[test]
    fn another_key_is_refused() {
        let token = Signer::new("k").sign(&claims());
        assert_eq!(
            Signer::new("other").verify(&token),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn every_altered_character_is_refused() {
        let signer = Signer::new("k");
        let token = signer.sign(&claims());
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered != token {
                assert!(signer.verify(&altered).is_err(), "position {i} accepted");
            }
        }
    }

    #[test]
    fn a_payload_with_a_changed_url_is_refused() {
        let signer = Signer::new("k");
        let token = signer.sign(&claims());
        let (_, signature) = token.split_once('.').unwrap();
        let mut evil = claims();
        evil.url = Some("https://evil.example/".into());
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).unwrap());
        assert_eq!(
            signer.verify(&format!("{payload}.{signature}")),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let signer = Signer::new("k");
        let token = signer.sign(&claims());
        assert!(signer.verify_kind(&token, Kind::Click).is_ok());
        assert_eq!(
            signer.verify_kind(&token, Kind::Unsubscribe),
            Err(TokenError::WrongKind("unsubscribe"))
        );
    }

    #[test]
    fn body_signature_is_hex_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            body_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
