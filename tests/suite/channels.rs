//! Integration tests of the channels: real sends through a real SMTP server on loopback
//! (tests/channels/smtp_sink.py, aiosmtpd) parsed back with a MIME parser, provider and webhook
//! calls received by a loopback HTTP server, the tracking/unsubscribe router called directly,
//! and `flowc send-test` / `flowc preview` end to end.

use base64::Engine as _;
use flowc::channels::email::EmailSender;
use flowc::channels::token::{Claims, Kind};
use flowc::channels::{
    self, prepare, ChannelSenders, EventSink, Links, Outgoing, Prepare, SendError, Sender, Signer,
};
use flowc::compile::CompiledProject;
use flowc::config::Config;
use flowc::events::Record;
use hmac::{Hmac, Mac};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers: the test project, the SMTP sink, the HTTP receiver, a recording event sink.

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shop() -> &'static CompiledProject {
    static SHOP: OnceLock<CompiledProject> = OnceLock::new();
    SHOP.get_or_init(|| {
        flowc::simulate::load_compiled(&root().join("tests/channels/shop"))
            .expect("tests/channels/shop compiles")
    })
}

fn read_json(name: &str) -> Value {
    let path = root().join("tests/channels/shop").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ana() -> Value {
    read_json("contact.json")
}

fn cart_trigger() -> Value {
    read_json("trigger.json")["properties"].clone()
}

fn context(contact: Value, trigger: Value) -> Value {
    json!({"contact": contact, "trigger": trigger, "event": null, "flow": "f", "message": "m"})
}

fn links() -> Links {
    Links {
        public_url: "https://mail.shop.test".into(),
        signer: Signer::new("test-signing-key"),
        unsubscribe_mailto: Some("unsubscribe@shop.example".into()),
        tracking: true,
    }
}

/// Prepares message `name` of the test project for contact `c1` in flow `abandoned_cart`.
fn outgoing(name: &str, context: &Value, key: &str) -> Outgoing {
    let message = shop()
        .messages
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no message {name}"));
    prepare(
        &Prepare {
            message,
            context,
            idempotency_key: key,
            time: "2026-03-01T10:00:00Z",
            contact: "c1",
            flow: "abandoned_cart",
            to: None,
        },
        Some(&links()),
    )
    .unwrap_or_else(|e| panic!("prepare {name}: {e}"))
}

/// The Python with aiosmtpd: `FLOWC_TEST_PYTHON`, else target/test-venv (installed by
/// tests/channels/install_sink.sh, which scripts/test runs; run here once when missing).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(p) = std::env::var("FLOWC_TEST_PYTHON") {
            return PathBuf::from(p);
        }
        let python = root().join("target/test-venv/bin/python");
        let ready = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ready {
            let status = Command::new("bash")
                .arg(root().join("tests/channels/install_sink.sh"))
                .status()
                .expect("run tests/channels/install_sink.sh");
            assert!(
                status.success(),
                "tests/channels/install_sink.sh failed: the SMTP tests need Python 3 with venv \
                 and PyPI access to install aiosmtpd"
            );
        }
        python
    })
}

/// A running tests/channels/smtp_sink.py.
pub(super) struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub(super) fn start(replies: &[&str], auth: Option<&str>) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(python());
        command
            .arg(root().join("tests/channels/smtp_sink.py"))
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for reply in replies {
            command.arg("--reply").arg(reply);
        }
        if let Some(auth) = auth {
            command.arg("--auth").arg(auth);
        }
        let mut child = command.spawn().expect("start smtp_sink.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("smtp_sink.py did not start: {line:?}"));
        SmtpSink { child, port, dir }
    }

    pub(super) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in order: (envelope, raw message).
    pub(super) fn received(&self) -> Vec<(Value, Vec<u8>)> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let envelope = std::fs::read_to_string(eml.with_extension("json")).unwrap();
                (
                    serde_json::from_str(&envelope).unwrap(),
                    std::fs::read(&eml).unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn email_config(smtp_url: &str) -> Config {
    Config::parse(&format!(
        "[email]\nsmtp_url = \"{smtp_url}\"\nfrom = \"Shop <news@shop.example>\"\n\
         reply_to = \"care@shop.example\"\ntimeout_seconds = 5\n"
    ))
    .unwrap()
}

fn email_sender(smtp_url: &str) -> EmailSender {
    EmailSender::from_config(&email_config(smtp_url))
        .unwrap()
        .expect("email is configured")
}

/// A header's raw value, unfolded.
pub(super) fn header(message: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    message.header_raw(name).map(|raw| {
        raw.replace("\r\n", "")
            .replace('\n', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The token after `prefix` in `text`, up to a quote, `>` or whitespace.
fn token_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| c == '"' || c == '>' || c == ')' || c.is_whitespace())
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// One HTTP request as a loopback receiver saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A tiny HTTP/1.1 server on loopback that records requests and answers each with the next
/// scripted `(status, body)` (the last one repeats). `None` as status: never answer.
struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start(script: Vec<(Option<u16>, &'static str)>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                seen.lock().unwrap().push(request);
                let (status, body) = script[n.min(script.len() - 1)];
                n += 1;
                match status {
                    Some(status) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    None => {
                        // Hold the connection without answering until the client gives up.
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_secs(5));
                            drop(stream);
                        });
                    }
                }
            }
        });
        Receiver { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An [`EventSink`] that keeps what it is given.
#[derive(Default)]
struct Recorder {
    records: Mutex<Vec<Record>>,
}

impl EventSink for Recorder {
    fn ingest(&self, records: Vec<Record>) -> Result<(), String> {
        self.records.lock().unwrap().extend(records);
        Ok(())
    }
}

impl Recorder {
    fn taken(&self) -> Vec<Record> {
        std::mem::take(&mut *self.records.lock().unwrap())
    }
}

fn is_transient(result: &Result<channels::Receipt, SendError>) -> bool {
    matches!(result, Err(SendError::Transient(_)))
}

fn permanent(result: &Result<channels::Receipt, SendError>) -> Option<bool> {
    match result {
        Err(SendError::Permanent { hard_bounce, .. }) => Some(*hard_bounce),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Email through a real SMTP server.

#[test]
fn marketing_email_arrives_multipart_tracked_and_unsubscribable() {
    let sink = SmtpSink::start(&[], None);
    let out = outgoing(
        "cart_reminder",
        &context(ana(), cart_trigger()),
        "key-cart-1",
    );
    let receipt = email_sender(&sink.url()).send(&out).expect("sent");
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let (envelope, raw) = &received[0];
    assert_eq!(envelope["mail_from"], "news@shop.example");
    assert_eq!(envelope["rcpt_tos"], json!(["ana@shop.test"]));

    let message = MessageParser::default().parse(raw.as_slice()).unwrap();
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Shop"));
    assert_eq!(from.address(), Some("news@shop.example"));
    assert_eq!(
        message.reply_to().unwrap().first().unwrap().address(),
        Some("care@shop.example")
    );
    assert_eq!(message.subject(), Some("Ana, your cart is waiting"));
    // The Message-ID is derived from the idempotency key, and is the receipt's id.
    let expected_id = channels::email::message_id("key-cart-1", "shop.example");
    assert_eq!(format!("<{}>", message.message_id().unwrap()), expected_id);
    assert_eq!(receipt.provider_id.as_deref(), Some(expected_id.as_str()));

    // multipart/alternative with a text and an HTML part.
    let root_type = message.root_part().content_type().unwrap();
    assert_eq!(
        (root_type.ctype(), root_type.subtype()),
        ("multipart", Some("alternative"))
    );
    let types: Vec<String> = message.parts[1..]
        .iter()
        .map(|p| {
            let t = p.content_type().unwrap();
            format!("{}/{}", t.ctype(), t.subtype().unwrap_or(""))
        })
        .collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let html = message.body_html(0).unwrap().into_owned();
    let text = message.body_text(0).unwrap().into_owned();

    // The trait with `<script>` is escaped in HTML.
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    // Links rewritten to signed click redirects that lead to the original URL.
    assert!(!html.contains("href=\"https://shop.example/cart"), "{html}");
    let signer = Signer::new("test-signing-key");
    let clicks = token_after(&html, "https://mail.shop.test/t/c/");
    assert_eq!(clicks.len(), 1, "one http link: {html}");
    let click = signer.verify_kind(clicks[0], Kind::Click).unwrap();
    assert_eq!(
        click.url.as_deref(),
        Some("https://shop.example/cart/9?src=mail&step=2")
    );
    assert_eq!(
        (
            click.contact.as_str(),
            click.flow.as_str(),
            click.message.as_str()
        ),
        ("c1", "abandoned_cart", "cart_reminder")
    );
    assert!(html.contains("href=\"mailto:help@shop.example\""), "{html}");
    // The open pixel.
    let opens = token_after(&html, "https://mail.shop.test/t/o/");
    assert_eq!(opens.len(), 1, "{html}");
    assert!(signer.verify_kind(opens[0], Kind::Open).is_ok());
    // The text part: derived from the HTML, tags gone, links kept.
    assert!(text.contains("Hello Ana"), "{text}");
    assert!(text.contains("You left 3 items in your cart"), "{text}");
    assert!(!text.contains("<p>") && !text.contains("<a "), "{text}");
    assert!(
        text.contains("Back to your cart (https://mail.shop.test/t/c/"),
        "{text}"
    );

    // List-Unsubscribe (URL + mailto) and RFC 8058 one-click.
    let list = header(&message, "List-Unsubscribe").expect("List-Unsubscribe");
    let urls = token_after(&list, "<https://mail.shop.test/u/");
    assert_eq!(urls.len(), 1, "{list}");
    let unsubscribe = signer.verify_kind(urls[0], Kind::Unsubscribe).unwrap();
    assert_eq!(
        (unsubscribe.contact.as_str(), unsubscribe.channel.as_str()),
        ("c1", "email")
    );
    assert!(list.contains("<mailto:unsubscribe@shop.example>"), "{list}");
    assert_eq!(
        header(&message, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    // The body's own unsubscribe link is the same URL, not wrapped in a click redirect.
    assert!(
        html.contains(&format!("href=\"https://mail.shop.test/u/{}\"", urls[0])),
        "{html}"
    );
    assert_eq!(header(&message, "X-Flowc-Test"), None);
}

#[test]
fn transactional_email_has_no_unsubscribe_headers_and_keeps_its_text() {
    let sink = SmtpSink::start(&[], None);
    let trigger = json!({"order_id": "A-17"});
    let out = outgoing("receipt", &context(ana(), trigger), "key-receipt");
    email_sender(&sink.url()).send(&out).expect("sent");
    let received = sink.received();
    let message = MessageParser::default()
        .parse(received[0].1.as_slice())
        .unwrap();
    assert_eq!(message.subject(), Some("Order A-17"));
    assert_eq!(header(&message, "List-Unsubscribe"), None);
    assert_eq!(header(&message, "List-Unsubscribe-Post"), None);
    // The message's own reply_to wins over `[email] reply_to`.
    let reply_to = message.reply_to().unwrap().first().unwrap();
    assert_eq!(
        (reply_to.name(), reply_to.address()),
        (Some("Help"), Some("help@shop.example"))
    );
    assert_eq!(
        message.body_text(0).unwrap().trim_end(),
        "Thanks for order A-17: https://shop.example/orders/A-17"
    );
    let html = message.body_html(0).unwrap();
    // Transactional mail is still tracked (no opt-out in the message).
    assert!(html.contains("https://mail.shop.test/t/c/"), "{html}");
}

#[test]
fn tracking_off_leaves_links_alone_and_adds_no_pixel() {
    let sink = SmtpSink::start(&[], None);
    let out = outgoing("plain_news", &context(ana(), json!({})), "key-news");
    email_sender(&sink.url()).send(&out).expect("sent");
    let received = sink.received();
    let message = MessageParser::default()
        .parse(received[0].1.as_slice())
        .unwrap();
    let html = message.body_html(0).unwrap();
    assert!(
        html.contains("href=\"https://shop.example/news\""),
        "{html}"
    );
    assert!(!html.contains("/t/c/") && !html.contains("/t/o/"), "{html}");
    // Still marketing mail: still unsubscribable.
    assert!(header(&message, "List-Unsubscribe").is_some());
}

#[test]
fn smtp_replies_are_classified_and_a_retry_sends_once() {
    let sink = SmtpSink::start(
        &[
            "busy@shop.test=451",
            "flaky@shop.test=421 4.3.2 Try again later|250",
            "gone@shop.test=550 5.1.1 <gone@shop.test>: Recipient address rejected: User unknown",
            "nouser@shop.test=550 No such user here",
            "spam@shop.test=554 5.7.1 Message rejected as spam",
        ],
        None,
    );
    let sender = email_sender(&sink.url());
    let send_to = |address: &str, key: &str| {
        let mut contact = ana();
        contact["email"] = json!(address);
        sender.send(&outgoing(
            "cart_reminder",
            &context(contact, cart_trigger()),
            key,
        ))
    };
    assert!(is_transient(&send_to("busy@shop.test", "k-busy")));
    assert_eq!(permanent(&send_to("gone@shop.test", "k-gone")), Some(true));
    assert_eq!(
        permanent(&send_to("nouser@shop.test", "k-nouser")),
        Some(true)
    );
    assert_eq!(permanent(&send_to("spam@shop.test", "k-spam")), Some(false));
    // 421, then the retry (same key) is accepted: exactly one message arrives.
    assert!(is_transient(&send_to("flaky@shop.test", "k-flaky")));
    assert!(send_to("flaky@shop.test", "k-flaky").is_ok());
    let received = sink.received();
    assert_eq!(received.len(), 1, "only the accepted send arrives");
    assert_eq!(received[0].0["rcpt_tos"], json!(["flaky@shop.test"]));
    let message = MessageParser::default()
        .parse(received[0].1.as_slice())
        .unwrap();
    assert_eq!(
        format!("<{}>", message.message_id().unwrap()),
        channels::email::message_id("k-flaky", "shop.example")
    );
    // The reason names the server and the reply.
    match send_to("spam@shop.test", "k-spam2") {
        Err(SendError::Permanent { reason, .. }) => {
            assert!(reason.contains("127.0.0.1:"), "{reason}");
            assert!(reason.contains("5.7.1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn smtp_server_down_or_silent_is_transient() {
    // Nothing listens on a port that was just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = outgoing("cart_reminder", &context(ana(), cart_trigger()), "k-down");
    let result = email_sender(&format!("smtp://127.0.0.1:{port}")).send(&out);
    assert!(is_transient(&result), "{result:?}");

    // A server that accepts the connection and never greets: the timeout applies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let config = Config::parse(&format!(
        "[email]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"news@shop.example\"\ntimeout_seconds = 1\n"
    ))
    .unwrap();
    let sender = EmailSender::from_config(&config).unwrap().unwrap();
    let started = Instant::now();
    let result = sender.send(&out);
    assert!(is_transient(&result), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn smtp_auth_from_the_url() {
    let sink = SmtpSink::start(&[], Some("mailer:s3cret"));
    let out = outgoing("cart_reminder", &context(ana(), cart_trigger()), "k-auth");
    let good = email_sender(&format!("smtp://mailer:s3cret@127.0.0.1:{}", sink.port)).send(&out);
    assert!(good.is_ok(), "{good:?}");
    let bad = email_sender(&format!("smtp://mailer:wrong@127.0.0.1:{}", sink.port)).send(&out);
    assert_eq!(permanent(&bad), Some(false), "{bad:?}");
    assert_eq!(sink.received().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// SMS, push and webhooks through a loopback HTTP receiver.

#[test]
fn sms_generic_json_with_idempotency_key_and_signature() {
    let receiver = Receiver::start(vec![(Some(200), r#"{"id":"msg-1"}"#)]);
    let config = Config::parse(&format!(
        "[sms]\nwebhook = \"{}\"\nfrom = \"Shop\"\nsigning_secret = \"sms-secret\"\n",
        receiver.url("/sms")
    ))
    .unwrap();
    let senders = ChannelSenders::from_config(&config).unwrap();
    let mut contact = ana();
    contact["phone"] = json!("+34600000001");
    let out = outgoing("cart_sms", &context(contact, cart_trigger()), "key-sms-1");
    let receipt = senders.send(&out).expect("sent");
    assert_eq!(receipt.provider_id.as_deref(), Some("msg-1"));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/sms"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("idempotency-key"), Some("key-sms-1"));
    assert_eq!(
        r.header("x-flowc-signature"),
        Some(hmac_hex("sms-secret", &r.body).as_str())
    );
    assert_eq!(
        r.json(),
        json!({
            "channel": "sms",
            "to": "+34600000001",
            "from": "Shop",
            "body": "Ana, your cart: https://shop.example/cart/9?src=mail&step=2",
            "idempotency_key": "key-sms-1",
            "contact": "c1",
            "flow": "abandoned_cart",
            "message": "cart_sms",
            "time": "2026-03-01T10:00:00Z",
            "transactional": false
        })
    );
}

#[test]
fn sms_twilio_form_with_basic_auth() {
    let receiver = Receiver::start(vec![(Some(201), r#"{"sid":"SM123","status":"queued"}"#)]);
    let url = format!(
        "http://AC123:tok%2Fen@127.0.0.1:{}/2010-04-01/Accounts/AC123/Messages.json",
        receiver.port
    );
    let config = Config::parse(&format!(
        "[sms]\nwebhook = \"{url}\"\nformat = \"twilio\"\nfrom = \"+15550100\"\n"
    ))
    .unwrap();
    let senders = ChannelSenders::from_config(&config).unwrap();
    let mut contact = ana();
    contact["phone"] = json!("+34600000002");
    let out = outgoing("cart_sms", &context(contact, cart_trigger()), "key-sms-2");
    let receipt = senders.send(&out).expect("sent");
    assert_eq!(receipt.provider_id.as_deref(), Some("SM123"));
    let r = &receiver.requests()[0];
    assert_eq!(r.path, "/2010-04-01/Accounts/AC123/Messages.json");
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        r.header("authorization"),
        Some(
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("AC123:tok/en")
            )
            .as_str()
        )
    );
    assert_eq!(r.header("idempotency-key"), Some("key-sms-2"));
    assert_eq!(r.header("i-twilio-idempotency-token"), Some("key-sms-2"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&r.body).into_owned().collect();
    assert_eq!(
        form,
        [
            ("To".to_string(), "+34600000002".to_string()),
            ("From".to_string(), "+15550100".to_string()),
            (
                "Body".to_string(),
                "Ana, your cart: https://shop.example/cart/9?src=mail&step=2".to_string()
            ),
        ]
    );
}

#[test]
fn push_generic_json() {
    let receiver = Receiver::start(vec![(Some(202), "")]);
    let config = Config::parse(&format!(
        "[push]\nwebhook = \"{}\"\n",
        receiver.url("/push")
    ))
    .unwrap();
    let senders = ChannelSenders::from_config(&config).unwrap();
    let mut contact = ana();
    contact["push_token"] = json!("tok-abc");
    let out = outgoing(
        "review_push",
        &context(contact, json!({"order_id": "A-17"})),
        "key-push",
    );
    senders.send(&out).expect("sent");
    let r = &receiver.requests()[0];
    assert_eq!(r.header("idempotency-key"), Some("key-push"));
    assert_eq!(
        r.header("x-flowc-signature"),
        None,
        "no secret, no signature"
    );
    let body = r.json();
    assert_eq!(body["channel"], "push");
    assert_eq!(body["to"], "tok-abc");
    assert_eq!(body["title"], "How was it, Ana?");
    assert_eq!(body["body"], "Rate order A-17");
    assert_eq!(body["url"], "https://shop.example/review/A-17");
    assert_eq!(body["message"], "review_push");
}

#[test]
fn webhook_message_with_json_template_method_and_signature() {
    let receiver = Receiver::start(vec![(Some(204), "")]);
    let config =
        Config::parse("[webhook]\nsigning_secret = \"hook-secret\"\ntimeout_seconds = 3\n")
            .unwrap();
    let senders = ChannelSenders::from_config(&config).unwrap();
    let mut contact = ana();
    contact["first_name"] = json!("Ana \"La Jefa\"");
    let trigger = json!({"hook_url": receiver.url("/crm/contacts"), "total": 129.9});
    let out = outgoing("crm_hook", &context(contact, trigger), "key-hook");
    senders.send(&out).expect("sent");
    let r = &receiver.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("PUT", "/crm/contacts")
    );
    assert_eq!(r.header("idempotency-key"), Some("key-hook"));
    assert_eq!(
        r.header("x-flowc-signature"),
        Some(hmac_hex("hook-secret", &r.body).as_str())
    );
    assert_eq!(
        r.json(),
        json!({"email": "ana@shop.test", "name": "Ana \"La Jefa\"", "total": 129.9})
    );
}

#[test]
fn provider_failures_are_classified_and_retries_keep_the_key() {
    // 500, then 200: transient, then sent; both calls carry the same key.
    let receiver = Receiver::start(vec![(Some(500), "oops"), (Some(200), "{}")]);
    let config =
        Config::parse(&format!("[sms]\nwebhook = \"{}\"\n", receiver.url("/sms"))).unwrap();
    let senders = ChannelSenders::from_config(&config).unwrap();
    let mut contact = ana();
    contact["phone"] = json!("+34600000003");
    let out = outgoing(
        "cart_sms",
        &context(contact.clone(), cart_trigger()),
        "key-retry",
    );
    let first = senders.send(&out);
    match &first {
        Err(SendError::Transient(reason)) => {
            assert!(
                reason.contains("HTTP 500") && reason.contains("oops"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(senders.send(&out).is_ok());
    let keys: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert_eq!(keys, ["key-retry", "key-retry"]);

    for (status, expected) in [(400, Some(false)), (410, Some(true)), (404, Some(false))] {
        let receiver = Receiver::start(vec![(Some(status), "{\"error\":\"bad\"}")]);
        let config =
            Config::parse(&format!("[sms]\nwebhook = \"{}\"\n", receiver.url("/sms"))).unwrap();
        let result = ChannelSenders::from_config(&config).unwrap().send(&out);
        assert_eq!(permanent(&result), expected, "HTTP {status}: {result:?}");
    }
    let receiver = Receiver::start(vec![(Some(429), "")]);
    let config =
        Config::parse(&format!("[sms]\nwebhook = \"{}\"\n", receiver.url("/sms"))).unwrap();
    assert!(is_transient(
        &ChannelSenders::from_config(&config).unwrap().send(&out)
    ));

    // Connection refused, and a provider that never answers (timeout 1s): transient.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config::parse(&format!(
        "[sms]\nwebhook = \"http://127.0.0.1:{port}/sms\"\n"
    ))
    .unwrap();
    assert!(is_transient(
        &ChannelSenders::from_config(&config).unwrap().send(&out)
    ));
    let silent = Receiver::start(vec![(None, "")]);
    let config = Config::parse(&format!(
        "[sms]\nwebhook = \"{}\"\ntimeout_seconds = 1\n",
        silent.url("/sms")
    ))
    .unwrap();
    let started = Instant::now();
    assert!(is_transient(
        &ChannelSenders::from_config(&config).unwrap().send(&out)
    ));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn unconfigured_channels_fail_permanently_naming_the_key() {
    let senders = ChannelSenders::from_config(&Config::default()).unwrap();
    let mut contact = ana();
    contact["phone"] = json!("+34600000004");
    let out = outgoing("cart_sms", &context(contact, cart_trigger()), "k");
    match senders.send(&out) {
        Err(SendError::Permanent { reason, .. }) => {
            assert!(reason.contains("[sms] webhook"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let out = outgoing("cart_reminder", &context(ana(), cart_trigger()), "k");
    match senders.send(&out) {
        Err(SendError::Permanent { reason, .. }) => {
            assert!(reason.contains("smtp_url"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tracking and unsubscribe routes, called directly.

fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, headers, body)
    })
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn claims(kind: Kind, url: Option<&str>) -> Claims {
    Claims {
        kind,
        contact: "c1".into(),
        flow: "abandoned_cart".into(),
        message: "cart_reminder".into(),
        channel: "email".into(),
        url: url.map(str::to_string),
    }
}

fn tracking_router(recorder: &Arc<Recorder>) -> axum::Router {
    let sink: Arc<dyn EventSink> = recorder.clone();
    channels::tracking::router_with_clock(
        Signer::new("test-signing-key"),
        sink,
        Arc::new(|| 1_772_359_200),
    )
}

#[test]
fn open_pixel_records_email_opened() {
    let recorder = Arc::new(Recorder::default());
    let router = tracking_router(&recorder);
    let token = Signer::new("test-signing-key").sign(&claims(Kind::Open, None));
    let (status, headers, body) = call(&router, "GET", &format!("/t/o/{token}"), "");
    assert_eq!(status, 200);
    assert_eq!(header_of(&headers, "content-type"), Some("image/gif"));
    assert_eq!(body, channels::tracking::PIXEL_GIF);
    assert!(body.starts_with(b"GIF89a"));
    let records = recorder.taken();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (r.contact.as_str(), r.event.as_str()),
        ("c1", "email_opened")
    );
    assert_eq!(r.time, 1_772_359_200);
    assert_eq!(r.properties["flow"], "abandoned_cart");
    assert_eq!(r.properties["message"], "cart_reminder");
}

#[test]
fn click_redirects_to_the_original_url_and_records_email_clicked() {
    let recorder = Arc::new(Recorder::default());
    let router = tracking_router(&recorder);
    let url = "https://shop.example/cart/9?src=mail&step=2";
    let token = Signer::new("test-signing-key").sign(&claims(Kind::Click, Some(url)));
    let (status, headers, _) = call(&router, "GET", &format!("/t/c/{token}"), "");
    assert_eq!(status, 302);
    assert_eq!(header_of(&headers, "location"), Some(url));
    let records = recorder.taken();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event, "email_clicked");
    assert_eq!(records[0].properties["url"], url);
    assert_eq!(records[0].properties["flow"], "abandoned_cart");
    assert_eq!(records[0].properties["message"], "cart_reminder");
}

#[test]
fn forged_altered_or_misused_tokens_are_refused_and_record_nothing() {
    let recorder = Arc::new(Recorder::default());
    let router = tracking_router(&recorder);
    let ours = Signer::new("test-signing-key");
    let theirs = Signer::new("a-guessed-key");
    let click = ours.sign(&claims(Kind::Click, Some("https://shop.example/")));
    let forged = theirs.sign(&claims(Kind::Click, Some("https://evil.example/")));
    // Same signature, payload swapped for one pointing elsewhere.
    let (_, signature) = click.split_once('.').unwrap();
    let (evil_payload, _) = forged.split_once('.').unwrap();
    let altered = format!("{evil_payload}.{signature}");
    let mut flipped = click.clone().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let open = ours.sign(&claims(Kind::Open, None));
    for token in [
        forged.as_str(),
        altered.as_str(),
        flipped.as_str(),
        open.as_str(),
        "garbage",
        "a.b",
    ] {
        let (status, headers, _) = call(&router, "GET", &format!("/t/c/{token}"), "");
        assert_eq!(status, 400, "click with {token}");
        assert_eq!(header_of(&headers, "location"), None);
    }
    let forged_open = theirs.sign(&claims(Kind::Open, None));
    assert_eq!(
        call(&router, "GET", &format!("/t/o/{forged_open}"), "").0,
        404
    );
    let forged_unsubscribe = theirs.sign(&claims(Kind::Unsubscribe, None));
    for method in ["GET", "POST"] {
        let (status, _, _) = call(
            &router,
            method,
            &format!("/u/{forged_unsubscribe}"),
            "List-Unsubscribe=One-Click",
        );
        assert_eq!(status, 400, "{method} /u with a forged token");
        // A click token is not an unsubscribe token.
        assert_eq!(call(&router, method, &format!("/u/{click}"), "").0, 400);
    }
    assert!(recorder.taken().is_empty());
}

#[test]
fn unsubscribe_page_confirms_and_one_click_post_records_unsubscribed() {
    let recorder = Arc::new(Recorder::default());
    let router = tracking_router(&recorder);
    let url = links().unsubscribe_url(
        "c1",
        "abandoned_cart",
        "cart_reminder",
        flowc::syntax::ast::Channel::Email,
    );
    let path = url.strip_prefix("https://mail.shop.test").unwrap();
    // GET shows a confirmation and changes nothing (scanners follow links).
    let (status, _, body) = call(&router, "GET", path, "");
    assert_eq!(status, 200);
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert!(page.contains("marketing emails"), "{page}");
    assert!(recorder.taken().is_empty());
    // RFC 8058 one-click.
    let (status, _, body) = call(&router, "POST", path, "List-Unsubscribe=One-Click");
    assert_eq!(status, 200);
    assert!(String::from_utf8(body).unwrap().contains("unsubscribed"));
    let records = recorder.taken();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (r.contact.as_str(), r.event.as_str()),
        ("c1", "unsubscribed")
    );
    assert_eq!(
        Value::Object(r.properties.clone()),
        json!({"channel": "email", "flow": "abandoned_cart", "message": "cart_reminder"})
    );
}

#[test]
fn a_hard_bounce_becomes_an_unsubscribed_record() {
    let out = outgoing("cart_reminder", &context(ana(), cart_trigger()), "k");
    let record = channels::hard_bounce_record(&out, 1_772_359_200);
    assert_eq!(
        (record.contact.as_str(), record.event.as_str()),
        ("c1", "unsubscribed")
    );
    assert_eq!(
        Value::Object(record.properties.clone()),
        json!({"channel": "email", "flow": "abandoned_cart", "message": "cart_reminder", "reason": "hard_bounce"})
    );
}

// ---------------------------------------------------------------------------------------------
// `flowc send-test` and `flowc preview`.

/// A copy of tests/channels/shop with this flowc.toml.
fn project_copy(config: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&root().join("tests/channels/shop"), dir.path());
    std::fs::write(dir.path().join("flowc.toml"), config).unwrap();
    dir
}

fn flowc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flowc"))
        .args(args)
        .env_remove("FLOWC_SMTP_URL")
        .env_remove("FLOWC_SIGNING_KEY")
        .output()
        .unwrap()
}

#[test]
fn send_test_really_sends_one_marked_email() {
    let sink = SmtpSink::start(&[], None);
    let project = project_copy(&format!(
        "[server]\npublic_url = \"https://mail.shop.test\"\nsigning_key = \"k\"\n\
         [email]\nsmtp_url = \"{}\"\nfrom = \"Shop <news@shop.example>\"\n",
        sink.url()
    ));
    let dir = project.path().to_str().unwrap();
    let contact = format!("{dir}/contact.json");
    let trigger = format!("{dir}/trigger.json");
    let output = flowc(&[
        "send-test",
        "cart_reminder",
        "--to",
        "me@shop.test",
        "--contact",
        &contact,
        "--trigger",
        &trigger,
        dir,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sent email message `cart_reminder` to me@shop.test"),
        "{stdout}"
    );
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0["rcpt_tos"], json!(["me@shop.test"]));
    let message = MessageParser::default()
        .parse(received[0].1.as_slice())
        .unwrap();
    assert_eq!(message.subject(), Some("[TEST] Ana, your cart is waiting"));
    assert_eq!(header(&message, "X-Flowc-Test").as_deref(), Some("true"));
    let html = message.body_html(0).unwrap();
    assert!(html.contains("Hello Ana"), "{html}");
    // The same links as a real send: tracked, signed with the project's key.
    let clicks = token_after(&html, "https://mail.shop.test/t/c/");
    assert_eq!(clicks.len(), 1, "{html}");
    assert!(Signer::new("k").verify_kind(clicks[0], Kind::Click).is_ok());
    assert!(header(&message, "List-Unsubscribe").is_some());
}

#[test]
fn send_test_failures_are_clear() {
    let sink = SmtpSink::start(&["gone@shop.test=550"], None);
    let project = project_copy(&format!(
        "[email]\nsmtp_url = \"{}\"\nfrom = \"news@shop.example\"\n",
        sink.url()
    ));
    let dir = project.path().to_str().unwrap();
    // No sample contact: the template's variable is named, with the fix.
    let output = flowc(&["send-test", "cart_reminder", "--to", "me@shop.test", dir]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`contact.first_name` is not defined"),
        "{stderr}"
    );
    assert!(stderr.contains("--contact"), "{stderr}");
    // A hard bounce.
    let contact = format!("{dir}/contact.json");
    let trigger = format!("{dir}/trigger.json");
    let output = flowc(&[
        "send-test",
        "cart_reminder",
        "--to",
        "gone@shop.test",
        "--contact",
        &contact,
        "--trigger",
        &trigger,
        dir,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("permanent") && stderr.contains("does not exist"),
        "{stderr}"
    );
    // A misspelt message.
    let output = flowc(&["send-test", "cart_remindr", "--to", "me@shop.test", dir]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("did you mean `cart_reminder`"), "{stderr}");
    // A channel that is not configured.
    let output = flowc(&["send-test", "cart_sms", "--to", "+34600000005", dir]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[sms] webhook"), "{stderr}");
    assert!(sink.received().is_empty());
}

#[test]
fn send_test_sms_through_the_provider() {
    let receiver = Receiver::start(vec![(Some(200), r#"{"id":"p-9"}"#)]);
    let project = project_copy(&format!("[sms]\nwebhook = \"{}\"\n", receiver.url("/sms")));
    let dir = project.path().to_str().unwrap();
    let contact = format!("{dir}/contact.json");
    let trigger = format!("{dir}/trigger.json");
    let output = flowc(&[
        "send-test",
        "cart_sms",
        "--to",
        "+34600000006",
        "--contact",
        &contact,
        "--trigger",
        &trigger,
        dir,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("(id p-9)"));
    let r = &receiver.requests()[0];
    assert_eq!(r.header("x-flowc-test"), Some("true"));
    assert!(r
        .header("idempotency-key")
        .unwrap()
        .starts_with("send-test-cart_sms-"));
    let body = r.json();
    assert_eq!(body["to"], "+34600000006");
    assert_eq!(
        body["body"],
        "[TEST] Ana, your cart: https://shop.example/cart/9?src=mail&step=2"
    );
}

#[test]
fn preview_renders_without_sending() {
    let project = project_copy("[email]\nfrom = \"Shop <news@shop.example>\"\n");
    let dir = project.path().to_str().unwrap();
    let contact = format!("{dir}/contact.json");
    let trigger = format!("{dir}/trigger.json");
    let html_file = format!("{dir}/preview.html");
    let output = flowc(&[
        "preview",
        "cart_reminder",
        "--contact",
        &contact,
        "--trigger",
        &trigger,
        "--html",
        &html_file,
        dir,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("subject: Ana, your cart is waiting"),
        "{stdout}"
    );
    assert!(stdout.contains("to: ana@shop.test"), "{stdout}");
    assert!(
        stdout.contains("from: Shop <news@shop.example>"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Back to your cart (https://shop.example/cart/9?src=mail&step=2)"),
        "{stdout}"
    );
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert!(
        html.contains("href=\"https://shop.example/cart/9?src=mail&amp;step=2\""),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("/t/o/"), "a preview has no pixel: {html}");
    // A webhook preview shows the request.
    let output = flowc(&[
        "preview",
        "crm_hook",
        "--contact",
        &contact,
        "--trigger",
        &format!("{dir}/hook.json"),
        dir,
    ]);
    assert_eq!(output.status.code(), Some(2), "the trigger file is missing");
    std::fs::write(
        format!("{dir}/hook.json"),
        r#"{"hook_url": "https://crm.example/hook", "total": 5}"#,
    )
    .unwrap();
    let output = flowc(&[
        "preview",
        "crm_hook",
        "--contact",
        &contact,
        "--trigger",
        &format!("{dir}/hook.json"),
        dir,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("PUT https://crm.example/hook"), "{stdout}");
    assert!(stdout.contains("\"total\": 5"), "{stdout}");
}

#[test]
fn required_tls_never_falls_back_to_plain_text() {
    // The sink offers no STARTTLS and speaks no TLS: both URLs must fail, and nothing arrives.
    let sink = SmtpSink::start(&[], None);
    let out = outgoing("cart_reminder", &context(ana(), cart_trigger()), "k-tls");
    for url in [
        format!("smtp://127.0.0.1:{}?tls=required", sink.port),
        format!("smtp://127.0.0.1:{}?tls=starttls", sink.port),
        format!("smtps://127.0.0.1:{}", sink.port),
    ] {
        let result = email_sender(&url).send(&out);
        assert!(result.is_err(), "{url}: {result:?}");
    }
    assert!(sink.received().is_empty());
}

#[test]
fn engine_deliveries_render_and_send_like_the_daemon_will() {
    // The engine decides (simulate, with template contexts), the channel layer sends.
    let sink = SmtpSink::start(&[], None);
    let receiver = Receiver::start(vec![(Some(200), "{}")]);
    let records = flowc::events::parse_jsonl(&format!(
        "{}\n{}\n",
        r#"{"type":"identify","userId":"c9","timestamp":"2026-03-01T09:00:00Z","traits":{"email":"eve@shop.test","phone":"+34600000009","first_name":"Eve","city":"Vigo","consent":{"email":true,"sms":true}}}"#,
        r#"{"type":"track","userId":"c9","event":"Cart Abandoned","timestamp":"2026-03-01T10:00:00Z","properties":{"cart_url":"https://shop.example/cart/77","items":2}}"#,
    ))
    .unwrap();
    let options = flowc::simulate::SimulateOptions {
        until: flowc::engine::time::parse_instant("2026-03-02T00:00:00Z"),
        trace: false,
        render: true,
        progress: false,
    };
    let simulation = flowc::simulate::run(shop(), records, &options);
    let mut config = email_config(&sink.url());
    config.sms.webhook = Some(receiver.url("/sms"));
    let senders = ChannelSenders::from_config(&config).unwrap();
    let mut sent = Vec::new();
    for (i, delivery) in simulation.deliveries.iter().enumerate() {
        let key = format!("c9-abandoned_cart-{i}");
        let out = channels::prepare_delivery(shop(), delivery, &key, Some(&links())).unwrap();
        assert_eq!(out.time, "2026-03-01T11:00:00Z");
        senders.send(&out).unwrap();
        sent.push((out.message.clone(), out.to.clone()));
    }
    assert_eq!(
        sent,
        [
            ("cart_reminder".to_string(), "eve@shop.test".to_string()),
            ("cart_sms".to_string(), "+34600000009".to_string()),
            ("plain_news".to_string(), "eve@shop.test".to_string()),
        ]
    );
    let received = sink.received();
    assert_eq!(received.len(), 2);
    let message = MessageParser::default()
        .parse(received[0].1.as_slice())
        .unwrap();
    assert_eq!(message.subject(), Some("Eve, your cart is waiting"));
    assert_eq!(
        receiver.requests()[0].json()["body"],
        "Eve, your cart: https://shop.example/cart/77"
    );
}
