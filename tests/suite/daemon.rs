//! `flowc run` end to end: the real binary on a free loopback port with a temporary store,
//! real HTTP requests, and the dry-run file compared with `flowc simulate` for the same records.
//!
//! Time is made testable without sleeping: records carry timestamps in the past, so their
//! timers (`wait 2s`, `wait 1h` in tests/daemon/shop) are already due by the wall clock when
//! they arrive; the daemon applies each record at its own timestamp and fires each timer at its
//! own instant, so its decisions equal the simulator's.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers: a copy of the test project, the daemon process, a small HTTP client.

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_flowc")
}

/// A fresh copy of tests/daemon/shop (the daemon writes `.flowc/` into its project; the reload
/// test edits it).
fn project_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/daemon/shop");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&from).unwrap();
        let to = dir.path().join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Daemon {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Daemon {
    /// `flowc ARGS --server URL --admin-key K` against this daemon (the admin-API client).
    fn admin(&self, args: &[&str]) -> (i32, String, String) {
        let server = format!("http://{}", self.addr);
        let mut all = args.to_vec();
        all.extend(["--server", &server, "--admin-key", "admin-test-key"]);
        flowc(&all)
    }

    fn start(project: &Path, data: &Path, dry_run: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_on(project, data, dry_run, env, free_port())
    }

    fn start_on(
        project: &Path,
        data: &Path,
        dry_run: &Path,
        env: &[(&str, &str)],
        port: u16,
    ) -> Daemon {
        let addr = format!("127.0.0.1:{port}");
        let log = data.with_extension(format!("{port}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut command = Command::new(bin());
        command
            .arg("run")
            .arg(project)
            .args(["--listen", &addr, "--data"])
            .arg(data)
            .arg("--dry-run")
            .arg(dry_run)
            .env_remove("FLOWC_WRITE_KEY")
            .env_remove("FLOWC_ADMIN_KEY")
            .env("FLOWC_ADMIN_KEY", "admin-test-key")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let daemon = Daemon { child, addr, log };
        daemon.wait_healthy();
        daemon
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) = self.try_request("GET", "/healthz", &[], b"") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the daemon did not start:\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The project version `/healthz` reports live.
    fn version(&self) -> String {
        let (_, body) = self.request("GET", "/healthz", &[], b"");
        serde_json::from_str::<Value>(&body).unwrap()["version"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits until a version other than `old` is live (a hot reload or rollback) and returns it.
    fn wait_for_new_version(&self, old: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let live = self.version();
            if live != old {
                return live;
            }
            assert!(Instant::now() < deadline, "no reload:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, String)> {
        http(&self.addr, method, path, headers, body)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log_text()))
    }

    fn post_batch(&self, records: &[Value]) -> (u16, String) {
        let body = json!({ "batch": records }).to_string();
        self.request(
            "POST",
            "/v1/batch",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    fn admin_get(&self, path: &str) -> (u16, String) {
        self.request(
            "GET",
            path,
            &[("Authorization", "Bearer admin-test-key")],
            b"",
        )
    }

    /// SIGTERM, and the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in `{text}`")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Records for one contact: identify (with or without consent), a cart, and for some an
/// order that ends the cart flow before its first reminder.
fn contact_records(id: &str, base: i64, variant: usize) -> Vec<Value> {
    let mut consent = json!({"email": true, "sms": true});
    if variant % 5 == 3 {
        consent = json!({"email": true, "sms": false});
    }
    let mut records = vec![
        json!({"type": "identify", "userId": id, "timestamp": rfc3339(base),
               "messageId": format!("{id}-i"),
               "traits": {"email": format!("{id}@x.test"), "phone": "+34600000000",
                          "first_name": "Ana", "consent": consent}}),
        json!({"type": "track", "userId": id, "event": "Cart Abandoned", "timestamp": rfc3339(base + 1),
               "messageId": format!("{id}-c"), "properties": {"cart_url": format!("https://shop.test/{id}")}}),
    ];
    if variant % 4 == 1 {
        // Exits the cart flow one second after entry, before the `wait 2s` ends.
        records.push(
            json!({"type": "track", "userId": id, "event": "Order Completed",
                            "timestamp": rfc3339(base + 2), "messageId": format!("{id}-o"),
                            "properties": {"order_id": format!("o-{id}")}}),
        );
    }
    records
}

/// What `flowc simulate` gives for these records.
fn simulate(project: &Path, records: &[Value]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&events, text).unwrap();
    simulate_file(project, &events)
}

/// The dry-run file's lines without the extra fields, sorted.
fn dry_run_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut v: serde_json::Map<String, Value> = serde_json::from_str(l).unwrap();
            v.remove("key");
            v.remove("flow_version");
            // Same key order as simulate's lines.
            let order = [
                "time", "contact", "flow", "message", "channel", "status", "reason",
            ];
            let fields: Vec<String> = order
                .iter()
                .filter_map(|k| v.get(*k).map(|x| format!("\"{k}\":{x}")))
                .collect();
            format!("{{{}}}", fields.join(","))
        })
        .collect();
    lines.sort();
    lines
}

fn dry_run_keys(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Polls until the dry-run file has `n` lines (or the time is up).
fn wait_for_lines(path: &Path, n: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let lines = dry_run_lines(path);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn metric(daemon: &Daemon, name: &str) -> f64 {
    let (_, text) = daemon.request("GET", "/metrics", &[], b"");
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------
// The daemon and the simulator agree.

#[test]
fn daemon_deliveries_equal_simulate_for_the_same_records() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(project.path(), &data.path().join("store"), &dry, &[]);
    let base = now() - 3 * 3600;
    let mut records = Vec::new();
    for i in 0..30 {
        records.extend(contact_records(&format!("c{i:02}"), base + i as i64 * 7, i));
        if i == 0 {
            // An unsubscribe from SMS before the second reminder. (All records of a contact
            // go in one batch: a record that arrives after a timer it precedes has fired
            // cannot undo that send; see docs/runtime.md.)
            records.push(
                json!({"type": "track", "userId": "c00", "event": "unsubscribed",
                                "timestamp": rfc3339(base + 600), "messageId": "c00-u",
                                "properties": {"channel": "sms"}}),
            );
        }
    }
    let expected = simulate(project.path(), &records);
    assert!(expected.len() > 40, "the scenario sends: {expected:?}");
    assert!(expected.iter().any(|l| l.contains("no_consent")));
    assert!(expected.iter().any(|l| l.contains("\"unsubscribed\"")));
    // Two batches, then the first again (its messageIds make it a no-op).
    let half = records.iter().position(|r| r["userId"] == "c15").unwrap();
    let (first, second) = records.split_at(half);
    assert_eq!(daemon.post_batch(first).0, 200);
    assert_eq!(daemon.post_batch(second).0, 200);
    assert_eq!(daemon.post_batch(first).0, 200);
    let got = wait_for_lines(&dry, expected.len(), Duration::from_secs(10));
    assert_eq!(
        got,
        expected,
        "dry-run file vs simulate\n{}",
        daemon.log_text()
    );
    let with_ids = first
        .iter()
        .filter(|r| r.get("messageId").is_some())
        .count();
    assert_eq!(
        metric(&daemon, "flowc_events_duplicate_total"),
        with_ids as f64
    );
    assert_eq!(metric(&daemon, "flowc_timers_pending"), 0.0);
    // The admin views see the contact and the flows.
    let (status, body) = daemon.admin_get("/v1/contacts/c03");
    assert_eq!(status, 200, "{body}");
    let contact: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(contact["traits"]["email"], "c03@x.test");
    assert_eq!(contact["consent"]["sms"], false);
    let statuses: Vec<&str> = contact["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["dry_run", "dry_run"], "{body}");
    let (status, body) = daemon.admin_get("/v1/flows");
    assert_eq!(status, 200);
    let flows: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(flows["flows"][0]["name"], "abandoned_cart");
    assert_eq!(flows["contacts"], 30);
    // The history log holds every applied record once.
    let (status, body) = daemon.admin_get("/v1/events?from=0&limit=100000");
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), records.len());
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn a_live_timer_fires_on_the_wall_clock_and_an_overdue_one_once_after_a_restart() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(project.path(), &store, &dry, &[]);
    let t = now();
    let live = contact_records("live", t - 1, 0);
    assert_eq!(daemon.post_batch(&live).0, 200);
    // `wait 2s` from t: due at t + 2 by the wall clock.
    let lines = wait_for_lines(&dry, 1, Duration::from_secs(5));
    assert_eq!(lines.len(), 1, "{}", daemon.log_text());
    assert!(lines[0].contains("\"contact\":\"live\"") && lines[0].contains("cart_reminder"));
    assert!(now() >= t + 2, "not before it was due (t + 2)");
    // A cart whose reminder falls due while the daemon is stopped.
    let overdue = contact_records("later", now() - 1, 0);
    assert_eq!(daemon.post_batch(&overdue).0, 200);
    assert_eq!(daemon.terminate().code(), Some(0));
    assert_eq!(
        dry_run_lines(&dry).len(),
        1,
        "nothing for `later` before its time"
    );
    std::thread::sleep(Duration::from_millis(3200));
    let daemon = Daemon::start(project.path(), &store, &dry, &[]);
    let lines = wait_for_lines(&dry, 2, Duration::from_secs(5));
    assert_eq!(lines.len(), 2);
    assert!(lines
        .iter()
        .any(|l| l.contains("\"later\"") && l.contains("cart_reminder")));
    assert_eq!(daemon.terminate().code(), Some(0));
    // Again: nothing fires twice.
    let daemon = Daemon::start(project.path(), &store, &dry, &[]);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(dry_run_lines(&dry).len(), 2);
    let keys = dry_run_keys(&dry);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), keys.len());
    daemon.kill9();
}

// ---------------------------------------------------------------------------------------------
// Ingestion: keys, limits, bad records.

#[test]
fn ingestion_checks_keys_limits_and_refuses_a_bad_batch_whole() {
    let project = project_copy();
    std::fs::write(
        project.path().join("flowc.toml"),
        "[server]\nmax_batch_records = 3\nmax_body_bytes = 4096\n[defaults]\ntimezone = \"UTC\"\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(
        project.path(),
        &data.path().join("store"),
        &dry,
        &[("FLOWC_WRITE_KEY", "wk_one,wk_two")],
    );
    let t = now() - 3600;
    let one = json!({"batch": contact_records("k1", t, 0)[..1].to_vec()}).to_string();
    let post = |headers: &[(&str, &str)], body: &str| {
        daemon.request("POST", "/v1/batch", headers, body.as_bytes())
    };
    let (status, body) = post(&[], &one);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("write key is required"), "{body}");
    let (status, _) = post(&[("Authorization", "Bearer wk_nope")], &one);
    assert_eq!(status, 401);
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("wk_two:")
    );
    let (status, body) = post(&[("Authorization", &basic)], &one);
    assert_eq!((status, body.as_str()), (200, "{\"success\":true}"));
    // A bad record refuses the batch whole, naming its index; nothing of it is applied.
    let mut bad = contact_records("k2", t, 0);
    bad[1]["timestamp"] = json!("yesterday");
    let (status, body) = post(
        &[("Authorization", "Bearer wk_one")],
        &json!({ "batch": bad }).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["index"], 1);
    assert_eq!(answer["success"], false);
    assert!(
        answer["error"].as_str().unwrap().contains("timestamp"),
        "{body}"
    );
    assert_eq!(
        daemon.admin_get("/v1/contacts/k2").0,
        404,
        "nothing applied"
    );
    assert_eq!(daemon.admin_get("/v1/contacts/k1").0, 200);
    // Limits: batch length and body size.
    let four: Vec<Value> = (0..4)
        .flat_map(|i| contact_records(&format!("n{i}"), t, 0)[..1].to_vec())
        .collect();
    let (status, body) = post(
        &[("Authorization", "Bearer wk_one")],
        &json!({ "batch": four }).to_string(),
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("limit of 3"), "{body}");
    let big = json!({"batch": [{"type": "identify", "userId": "big", "timestamp": rfc3339(t),
                                "traits": {"blob": "x".repeat(5000)}}]})
    .to_string();
    let (status, _) = post(&[("Authorization", "Bearer wk_one")], &big);
    assert_eq!(status, 413);
    // Gzip bodies, /v1/track and /v1/identify.
    let identify =
        json!({"userId": "g1", "timestamp": rfc3339(t), "traits": {"email": "g@x.test"}})
            .to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(identify.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let (status, body) = daemon.request(
        "POST",
        "/v1/identify",
        &[
            ("Authorization", "Bearer wk_one"),
            ("Content-Encoding", "gzip"),
            ("Content-Type", "application/json"),
        ],
        &gz,
    );
    assert_eq!(status, 200, "{body}");
    let track = json!({"userId": "g1", "event": "Order Completed", "timestamp": rfc3339(t + 1), "properties": {"order_id": "o1"}}).to_string();
    let (status, _) = post(&[("Authorization", "Bearer wk_one")], &track);
    assert_eq!(status, 400, "a track record is not a batch");
    let (status, _) = daemon.request(
        "POST",
        "/v1/track",
        &[("Authorization", "Bearer wk_one")],
        track.as_bytes(),
    );
    assert_eq!(status, 200);
    let lines = wait_for_lines(&dry, 1, Duration::from_secs(5));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"g1\"") && l.contains("receipt")),
        "{lines:?}"
    );
    // Admin reads need the admin key.
    assert_eq!(daemon.request("GET", "/v1/contacts/g1", &[], b"").0, 401);
    assert_eq!(
        daemon
            .request(
                "GET",
                "/v1/flows",
                &[("Authorization", "Bearer wk_one")],
                b""
            )
            .0,
        401
    );
    let (status, body) = daemon.admin_get("/v1/contacts/g1");
    assert_eq!(status, 200);
    assert!(body.contains("\"receipt\""), "{body}");
    // 401 twice, 400 for the bad record and for a record that is not a batch, 413 for the
    // batch length (the body-size 413 is answered before the handler).
    assert!(metric(&daemon, "flowc_requests_rejected_total") >= 5.0);
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn without_a_write_key_only_loopback_is_served() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("run")
        .arg(project.path())
        .args(["--listen", "0.0.0.0:0", "--data"])
        .arg(data.path())
        .env_remove("FLOWC_WRITE_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without a write key"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Crashes: kill -9 at random moments.

/// A tiny xorshift, seeded from the clock (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn kill_9_loses_no_acknowledged_record_and_sends_no_step_twice() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let dry = data.path().join("dry.jsonl");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let base = now() - 3 * 3600;
    let contacts = 960;
    let batches: Vec<Vec<Value>> = (0..contacts / 8)
        .map(|b| {
            (0..8)
                .flat_map(|i| {
                    let n = b * 8 + i;
                    contact_records(&format!("k{n:03}"), base + n as i64, n)
                })
                .collect()
        })
        .collect();
    let all: Vec<Value> = batches.iter().flatten().cloned().collect();
    let expected = simulate(project.path(), &all);
    let mut acknowledged: HashSet<usize> = HashSet::new();
    let mut crashes = 0;
    let mut killed_mid_ingestion = false;
    for round in 0..6 {
        let port = free_port();
        let daemon = Daemon::start_on(project.path(), &store, &dry, &[], port);
        let addr = daemon.addr.clone();
        let todo: Vec<usize> = (0..batches.len())
            .filter(|b| !acknowledged.contains(b))
            .collect();
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let remaining = todo.len();
        let sent = {
            let batches = batches.clone();
            let progress = progress.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for b in todo {
                    let body = json!({ "batch": batches[b] }).to_string();
                    match http(&addr, "POST", "/v1/batch", &[], body.as_bytes()) {
                        Ok((200, _)) => {
                            acked.push(b);
                            progress.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        _ => break,
                    }
                }
                acked
            })
        };
        if round < 5 {
            // Kill while batches are in flight: after a random share of this round's batches
            // was acknowledged (their timers firing and their decisions being written
            // meanwhile), plus a random fraction of a millisecond or so.
            let target =
                (rng.below(remaining as u64 / 2 + 1) as usize).min(remaining.saturating_sub(1));
            let deadline = Instant::now() + Duration::from_secs(20);
            while progress.load(std::sync::atomic::Ordering::SeqCst) < target {
                assert!(Instant::now() < deadline, "seed {seed}: no progress");
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
            daemon.kill9();
            crashes += 1;
        } else {
            // The last run: everything goes in, then every due timer fires.
            let acked = sent.join().unwrap();
            acknowledged.extend(acked);
            let lines = wait_for_lines(&dry, expected.len(), Duration::from_secs(15));
            assert_eq!(acknowledged.len(), batches.len());
            assert_eq!(
                lines,
                expected,
                "seed {seed}: after {crashes} crashes the deliveries differ from simulate\n{}",
                daemon.log_text()
            );
            let (_, history) = daemon.admin_get("/v1/events?from=0&limit=100000");
            let mut count: BTreeMap<String, usize> = BTreeMap::new();
            for line in history.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                *count
                    .entry(v["messageId"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            assert_eq!(count.len(), all.len(), "seed {seed}: every record applied");
            assert!(
                count.values().all(|n| *n == 1),
                "seed {seed}: a record applied twice"
            );
            assert_eq!(daemon.terminate().code(), Some(0));
            break;
        }
        // What was acknowledged before the crash must be there after it.
        let acked = sent.join().unwrap();
        eprintln!(
            "seed {seed} round {round}: killed after {} of {remaining} batches acknowledged",
            acked.len()
        );
        killed_mid_ingestion |= acked.len() < remaining;
        acknowledged.extend(acked.iter().copied());
        let check = Daemon::start(project.path(), &store, &dry, &[]);
        for b in &acked {
            for record in &batches[*b] {
                let id = record["userId"].as_str().unwrap();
                assert_eq!(
                    check.admin_get(&format!("/v1/contacts/{id}")).0,
                    200,
                    "seed {seed}: contact {id} of an acknowledged batch lost"
                );
            }
        }
        check.kill9();
    }
    let keys = dry_run_keys(&dry);
    assert_eq!(
        keys.iter().collect::<HashSet<_>>().len(),
        keys.len(),
        "seed {seed}: a step was written twice"
    );
    assert_eq!(crashes, 5);
    assert!(
        killed_mid_ingestion,
        "seed {seed}: no kill landed while batches were in flight"
    );
}

// ---------------------------------------------------------------------------------------------
// Hot reload.

#[test]
fn a_broken_edit_is_refused_and_a_good_one_is_live_within_a_second() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let dry = data.path().join("dry.jsonl");
    // The store where it is by default, inside the watched project.
    let store = project.path().join(".flowc/data");
    let daemon = Daemon::start(project.path(), &store, &dry, &[]);
    let first = daemon.version();
    let flow_file = project.path().join("flows/shop.flow");
    let original = std::fs::read_to_string(&flow_file).unwrap();
    std::fs::write(
        &flow_file,
        original.replace("send receipt", "send no_such_message"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !daemon.log_text().contains("reload refused") {
        assert!(
            Instant::now() < deadline,
            "no refusal logged:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        daemon.log_text().contains("no_such_message"),
        "the diagnostic is logged"
    );
    assert_eq!(daemon.version(), first, "the old version goes on");
    let t = now() - 60;
    let order = |id: &str| {
        json!({"type": "track", "userId": id, "event": "Order Completed", "timestamp": rfc3339(t),
               "properties": {"order_id": "o1"}})
    };
    let identify = |id: &str| json!({"type": "identify", "userId": id, "timestamp": rfc3339(t - 1), "traits": {"email": format!("{id}@x.test")}});
    assert_eq!(daemon.post_batch(&[identify("r1"), order("r1")]).0, 200);
    let lines = wait_for_lines(&dry, 1, Duration::from_secs(5));
    assert!(lines[0].contains("receipt"));
    // A good edit: a new flow on `refund_requested`.
    let good = format!(
        "{original}\nmessage refund_ack: email transactional {{\n    subject: \"Refund\"\n    body: \"<p>ok</p>\"\n}}\n\nflow refunds {{\n    when refund_requested\n    send refund_ack\n}}\n"
    );
    let edited = Instant::now();
    std::fs::write(&flow_file, good).unwrap();
    daemon.wait_for_new_version(&first, Duration::from_secs(5));
    let took = edited.elapsed();
    assert!(took < Duration::from_secs(1), "live after {took:?}");
    let refund = json!({"type": "track", "userId": "r1", "event": "Refund Requested", "timestamp": rfc3339(t + 5)});
    assert_eq!(daemon.post_batch(&[refund]).0, 200);
    let lines = wait_for_lines(&dry, 2, Duration::from_secs(5));
    assert!(lines.iter().any(|l| l.contains("refund_ack")), "{lines:?}");
    assert_eq!(metric(&daemon, "flowc_reloads_total"), 1.0);
    assert!(metric(&daemon, "flowc_reload_failures_total") >= 1.0);
    assert_eq!(daemon.terminate().code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// The outbox with a real provider: retries, dead letters, hard bounces.

/// A provider endpoint on loopback: answers by the phone number in the body (`+34410...`:
/// 410 Gone, `+34400...`: 400), else 500 to the first try of each `Idempotency-Key` and 200
/// after. Returns the address and the calls seen: (idempotency key, status answered).
type Calls = std::sync::Arc<std::sync::Mutex<Vec<(String, u16)>>>;

fn provider() -> (String, Calls) {
    provider_answering(false)
}

/// [`provider`], or one that accepts every call (`always_ok`).
fn provider_answering(always_ok: bool) -> (String, Calls) {
    use std::io::{BufRead, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, u16)>::new()));
    let seen = calls.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut key = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("idempotency-key:") {
                    key = line.split_once(':').unwrap().1.trim().to_string();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if key.is_empty() || reader.read_exact(&mut body).is_err() {
                // A request cut off by a killed daemon: never complete, never answered.
                continue;
            }
            let body = String::from_utf8_lossy(&body).to_string();
            let status = {
                let mut calls = seen.lock().unwrap();
                let status = if always_ok {
                    200
                } else if body.contains("+34410") {
                    410
                } else if body.contains("+34400") {
                    400
                } else if calls.iter().any(|(k, _)| *k == key) {
                    200
                } else {
                    500
                };
                calls.push((key, status));
                status
            };
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{{\"id\":\"p-1\"}}"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (addr, calls)
}

#[test]
fn the_outbox_retries_transient_failures_and_dead_letters_permanent_ones() {
    let project = project_copy();
    let (addr, calls) = provider();
    std::fs::write(
        project.path().join("flowc.toml"),
        format!("[sms]\nwebhook = \"http://{addr}/sms\"\n[retry]\nfirst_delay_seconds = 1\nmax_delay_seconds = 1\n[defaults]\ntimezone = \"UTC\"\n"),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let addr_daemon = format!("127.0.0.1:{}", free_port());
    let log = data.path().join("daemon.log");
    let mut child = start_sending(project.path(), &store, &addr_daemon, &log);
    let daemon_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let base = now() - 3 * 3600;
    let mut records = Vec::new();
    for (id, phone) in [
        ("ok", "+34600000000"),
        ("gone", "+34410000000"),
        ("bad", "+34400000000"),
    ] {
        let mut r = contact_records(id, base, 0);
        r[0]["traits"]["phone"] = json!(phone);
        records.extend(r);
    }
    let body = json!({ "batch": records }).to_string();
    assert_eq!(
        http(&addr_daemon, "POST", "/v1/batch", &[], body.as_bytes())
            .unwrap()
            .0,
        200
    );
    let contact = |id: &str| admin_contact(&addr_daemon, id);
    let sms_of = |c: &Value| delivery_on(c, "sms");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = sms_of(&contact("ok"));
        if ok["status"] == "sent" {
            assert_eq!(ok["attempts"], 2, "one 500, then 200: {ok}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no retry: {ok}\n{}",
            daemon_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = contact("gone");
    assert_eq!(sms_of(&gone)["status"], "dead", "{gone}");
    assert_eq!(
        gone["unsubscribed"],
        json!(["sms"]),
        "a hard bounce suppresses sms: {gone}"
    );
    let bad = contact("bad");
    assert_eq!(sms_of(&bad)["status"], "dead");
    assert_eq!(bad["unsubscribed"], json!([]), "a 400 is no bounce");
    // Email is not configured here: a permanent failure naming the key to set.
    let email = delivery_on(&bad, "email");
    assert_eq!(email["status"], "dead");
    assert!(
        email["last_error"].as_str().unwrap().contains("smtp_url"),
        "{email}"
    );
    // Every call carried the entry's idempotency key; the retried one kept it.
    let calls = calls.lock().unwrap().clone();
    let ok_key = sms_of(&contact("ok"))["key"].as_str().unwrap().to_string();
    assert_eq!(
        calls
            .iter()
            .filter(|(k, _)| *k == ok_key)
            .map(|(_, s)| *s)
            .collect::<Vec<_>>(),
        [500, 200]
    );
    assert_eq!(calls.len(), 4, "{calls:?}");
    let (_, metrics) = http(&addr_daemon, "GET", "/metrics", &[], b"").unwrap();
    assert!(
        metrics.contains("flowc_deliveries_total{status=\"sent\",channel=\"sms\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flowc_deliveries_total{status=\"failed\",channel=\"sms\"} 1"),
        "{metrics}"
    );
    assert_eq!(child.terminate(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// An official SDK: segment-analytics-python, host pointed at the daemon.

/// target/test-venv's Python with the SDK (installed by tests/daemon/install_sdk.sh, run here
/// once when missing).
fn python_with_sdk() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/test-venv/bin/python");
    let has_sdk = |p: &Path| {
        Command::new(p)
            .args(["-c", "import segment.analytics"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has_sdk(&python) {
        let status = Command::new("bash")
            .arg(root.join("tests/daemon/install_sdk.sh"))
            .status()
            .expect("run tests/daemon/install_sdk.sh");
        assert!(
            status.success() && has_sdk(&python),
            "tests/daemon/install_sdk.sh failed: the SDK test needs Python 3 with venv and PyPI"
        );
    }
    python
}

#[test]
fn the_segment_python_sdk_sends_and_the_flow_fires() {
    let python = python_with_sdk();
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(
        project.path(),
        &data.path().join("store"),
        &dry,
        &[("FLOWC_WRITE_KEY", "wk_sdk")],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/daemon/sdk_send.py");
    let host = format!("http://{}", daemon.addr);
    let out = Command::new(&python)
        .arg(&script)
        .args([&host, "wk_sdk"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        daemon.log_text()
    );
    let lines = wait_for_lines(&dry, 2, Duration::from_secs(5));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("\"sdk-1\"") && lines[0].contains("cart_reminder"));
    assert!(lines[1].contains("cart_sms") && lines[1].contains("\"sent\""));
    // A wrong write key: the SDK reports the 401.
    let out = Command::new(&python)
        .arg(&script)
        .args([&host, "wk_wrong"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("401"),
        "{out:?}"
    );
    assert_eq!(dry_run_lines(&dry).len(), 2);
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn a_running_instance_finishes_on_the_version_it_started_on() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(project.path(), &data.path().join("store"), &dry, &[]);
    // `old` entered an hour ago: its reminder is due at once, its SMS in about 4 seconds.
    let entered = now() - 3600 + 2;
    assert_eq!(
        daemon.post_batch(&contact_records("old", entered - 1, 0)).0,
        200
    );
    let lines = wait_for_lines(&dry, 1, Duration::from_secs(5));
    assert!(lines[0].contains("cart_reminder"), "{lines:?}");
    // The new version sends the receipt instead of the SMS after the hour.
    let flow_file = project.path().join("flows/shop.flow");
    let original = std::fs::read_to_string(&flow_file).unwrap();
    let edited = original.replace(
        "    wait 1h\n    send cart_sms",
        "    wait 1h\n    send receipt",
    );
    assert_ne!(edited, original);
    let first = daemon.version();
    std::fs::write(&flow_file, edited).unwrap();
    daemon.wait_for_new_version(&first, Duration::from_secs(3));
    // Both versions are loaded, the old one with its one instance.
    let (_, body) = daemon.admin_get("/v1/flows");
    let flows: Value = serde_json::from_str(&body).unwrap();
    let carts: Vec<&Value> = flows["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "abandoned_cart")
        .collect();
    assert_eq!(carts.len(), 2, "{body}");
    assert_ne!(carts[0]["version"], carts[1]["version"]);
    assert_eq!(carts[1]["instances"], 1, "{body}");
    // A contact entering now, an hour ago by its timestamps, runs the new version.
    assert_eq!(
        daemon
            .post_batch(&contact_records("new", now() - 3 * 3600, 0))
            .0,
        200
    );
    let lines = wait_for_lines(&dry, 4, Duration::from_secs(8));
    assert_eq!(lines.len(), 4, "{lines:?}\n{}", daemon.log_text());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"old\"") && l.contains("cart_sms")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"new\"") && l.contains("\"receipt\"")),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("\"new\"") && l.contains("cart_sms")),
        "{lines:?}"
    );
    let versions: Vec<(String, String)> = std::fs::read_to_string(&dry)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["message"].as_str().unwrap().to_string(),
                v["flow_version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let of = |m: &str| {
        versions
            .iter()
            .filter(|(x, _)| x == m)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(of("cart_sms").len(), 1);
    assert_ne!(
        of("cart_sms")[0],
        of("receipt")[0],
        "the SMS came from the old version"
    );
    assert_eq!(daemon.terminate().code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// Tracking and unsubscribe links become ordinary, durable events.

#[test]
fn opens_clicks_and_unsubscribes_go_through_the_ingestion_path() {
    use flowc::channels::token::{Claims, Kind};
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(
        project.path(),
        &data.path().join("store"),
        &dry,
        &[("FLOWC_SIGNING_KEY", "tracking-test-key")],
    );
    let t = now() - 3 * 3600;
    // `sms` keeps its consent until the unsubscribe below.
    assert_eq!(daemon.post_batch(&contact_records("tr", t, 0)).0, 200);
    let signer = flowc::channels::Signer::new("tracking-test-key");
    let claims = |kind: Kind, channel: &str, url: Option<&str>| Claims {
        kind,
        contact: "tr".into(),
        flow: "abandoned_cart".into(),
        message: "cart_reminder".into(),
        channel: channel.into(),
        url: url.map(str::to_string),
    };
    let (status, _) = daemon.request(
        "GET",
        &format!("/t/o/{}", signer.sign(&claims(Kind::Open, "email", None))),
        &[],
        b"",
    );
    assert_eq!(status, 200);
    let (status, _) = daemon.request(
        "GET",
        &format!(
            "/t/c/{}",
            signer.sign(&claims(Kind::Click, "email", Some("https://shop.test/x")))
        ),
        &[],
        b"",
    );
    assert_eq!(status, 302);
    // A token signed with another key is refused and records nothing.
    let forged =
        flowc::channels::Signer::new("other").sign(&claims(Kind::Unsubscribe, "sms", None));
    assert_eq!(
        daemon.request("POST", &format!("/u/{forged}"), &[], b"").0,
        400
    );
    let (status, _) = daemon.request(
        "POST",
        &format!(
            "/u/{}",
            signer.sign(&claims(Kind::Unsubscribe, "sms", None))
        ),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(status, 200);
    let (_, history) = daemon.admin_get("/v1/events?from=0");
    let events: Vec<String> = history
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["event"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        events,
        [
            "cart_abandoned",
            "email_opened",
            "email_clicked",
            "unsubscribed"
        ],
        "{history}"
    );
    let (_, body) = daemon.admin_get("/v1/contacts/tr");
    let contact: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(contact["unsubscribed"], json!(["sms"]), "{body}");
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn kill_9_during_dispatch_sends_each_step_with_one_idempotency_key() {
    let project = project_copy();
    let (provider_addr, calls) = provider_answering(true);
    std::fs::write(
        project.path().join("flowc.toml"),
        format!(
            "[sms]\nwebhook = \"http://{provider_addr}/sms\"\n[defaults]\ntimezone = \"UTC\"\n"
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let base = now() - 3 * 3600;
    let records: Vec<Value> = (0..300)
        .flat_map(|n| contact_records(&format!("d{n:03}"), base + n as i64, n))
        .collect();
    let expected_sms = simulate(project.path(), &records)
        .iter()
        .filter(|l| l.contains("cart_sms") && l.contains("\"sent\""))
        .count();
    assert!(expected_sms > 150);
    let log = data.path().join("daemon.log");
    let start = |port: u16| -> KillOnDrop {
        start_sending(project.path(), &store, &format!("127.0.0.1:{port}"), &log)
    };
    let port = free_port();
    let mut child = start(port);
    let body = json!({ "batch": records }).to_string();
    assert_eq!(
        http(
            &format!("127.0.0.1:{port}"),
            "POST",
            "/v1/batch",
            &[],
            body.as_bytes()
        )
        .unwrap()
        .0,
        200
    );
    // Kill -9 three times while the sends go out.
    let mut killed_with_sends_left = 0;
    for _ in 0..3 {
        let seen = calls.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(10);
        while calls.lock().unwrap().len() < seen + 10 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let keys: HashSet<String> = calls
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        if keys.len() < expected_sms {
            killed_with_sends_left += 1;
        }
        child = start(free_port());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let keys: HashSet<String> = calls
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        if keys.len() >= expected_sms {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {expected_sms} sends\n{}",
            keys.len(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let all = calls.lock().unwrap().clone();
    let keys: HashSet<&String> = all.iter().map(|(k, _)| k).collect();
    // Every sent step reached the provider, each under exactly one idempotency key; a call
    // repeated after a crash (the documented window) carries the same key.
    assert_eq!(keys.len(), expected_sms, "one key per step");
    assert!(
        all.len() - keys.len() <= 3 * 8,
        "repeats only for sends in flight at a crash (3 crashes, 8 at a time): {}",
        all.len() - keys.len()
    );
    assert!(
        killed_with_sends_left >= 1,
        "no kill landed during dispatch"
    );
    assert_eq!(child.terminate(), Some(0));
}

/// A child process killed when dropped (a failing test leaves no daemon behind).
/// `GET /v1/contacts/{id}` with the test's admin key, as JSON.
fn admin_contact(addr: &str, id: &str) -> Value {
    let (_, body) = http(
        addr,
        "GET",
        &format!("/v1/contacts/{id}"),
        &[("Authorization", "Bearer admin-test-key")],
        b"",
    )
    .unwrap();
    serde_json::from_str(&body).unwrap()
}

/// A contact's first delivery on `channel` (`null` when there is none yet).
fn delivery_on(contact: &Value, channel: &str) -> Value {
    contact["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["channel"] == channel)
        .cloned()
        .unwrap_or(Value::Null)
}

/// `flowc run` without `--dry-run` (it really sends) on `addr`, its log appended to `log`, the
/// admin key `admin-test-key` and no secrets from the environment; returns once `/healthz`
/// answers.
fn start_sending(project: &Path, store: &Path, addr: &str, log: &Path) -> KillOnDrop {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = KillOnDrop(
        Command::new(bin())
            .arg("run")
            .arg(project)
            .args(["--listen", addr, "--data"])
            .arg(store)
            .env("FLOWC_ADMIN_KEY", "admin-test-key")
            .env_remove("FLOWC_WRITE_KEY")
            .env_remove("FLOWC_SMTP_URL")
            .env_remove("FLOWC_SIGNING_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http(addr, "GET", "/healthz", &[], b""), Ok((200, _))) {
        assert!(
            Instant::now() < deadline,
            "the daemon did not start:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

struct KillOnDrop(Child);

impl KillOnDrop {
    /// SIGTERM, and the exit code (panics after 20 s).
    fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigterm_exits_0_even_with_an_idle_keep_alive_connection_open() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        project.path(),
        &data.path().join("store"),
        &data.path().join("dry.jsonl"),
        &[],
    );
    let mut idle = TcpStream::connect(&daemon.addr).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let started = Instant::now();
    assert_eq!(daemon.terminate().code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Real email: the daemon's outbox through a real SMTP server (tests/channels/smtp_sink.py).

/// The whole path of an email in production: records in over HTTP, the cart flow's timer, the
/// outbox, lettre, a real SMTP server; what the server received parsed with a MIME parser;
/// the click link of the received mail followed back into the daemon; and a 550 for one
/// address (a hard bounce) dead-letters the send and suppresses the address.
#[test]
fn email_goes_out_over_real_smtp_with_tracking_and_a_550_suppresses_the_address() {
    use super::channels::{header, SmtpSink};
    use mail_parser::MessageParser;

    let sink = SmtpSink::start(&["nobody@x.test=550 5.1.1 User unknown"], None);
    let project = project_copy();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    std::fs::write(
        project.path().join("flowc.toml"),
        format!(
            "[server]\npublic_url = \"http://{addr}\"\nsigning_key = \"test-signing-key\"\n\
             [email]\nsmtp_url = \"{}\"\nfrom = \"Shop <news@shop.test>\"\n\
             [retry]\nfirst_delay_seconds = 1\nmax_delay_seconds = 1\n\
             [defaults]\ntimezone = \"UTC\"\n",
            sink.url()
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("daemon.log");
    let mut child = start_sending(project.path(), &data.path().join("store"), &addr, &log);
    let daemon_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // ana abandons a cart (marketing), bob orders (transactional receipt), nobody's address
    // does not exist. Two hours ago: the `wait 2s` before the cart reminder is long due.
    let base = now() - 2 * 3600;
    let mut records = contact_records("ana", base, 0);
    records.extend(contact_records("bob", base, 1));
    let mut nobody = contact_records("nobody", base, 0);
    nobody[0]["traits"]["email"] = json!("nobody@x.test");
    records.extend(nobody);
    // noname has no `first_name`: the subject `{{ contact.first_name }}, ...` cannot render.
    let mut noname = contact_records("noname", base, 0);
    noname[0]["traits"]
        .as_object_mut()
        .unwrap()
        .remove("first_name");
    records.extend(noname);
    let body = json!({ "batch": records }).to_string();
    let (status, answer) = http(&addr, "POST", "/v1/batch", &[], body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{answer}");

    let contact = |id: &str| admin_contact(&addr, id);
    let email_of = |c: &Value| delivery_on(c, "email");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let done = email_of(&contact("ana"))["status"] == "sent"
            && email_of(&contact("bob"))["status"] == "sent"
            && email_of(&contact("nobody"))["status"] == "dead"
            && email_of(&contact("noname"))["status"] == "dead";
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ana {}\nbob {}\nnobody {}\n{}",
            email_of(&contact("ana")),
            email_of(&contact("bob")),
            email_of(&contact("nobody")),
            daemon_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // What the SMTP server received: the cart reminder and the receipt, nothing for nobody.
    let received = sink.received();
    let to_of = |envelope: &Value| envelope["rcpt_tos"][0].as_str().unwrap().to_string();
    let recipients: Vec<String> = received.iter().map(|(e, _)| to_of(e)).collect();
    assert_eq!(recipients.len(), 2, "{recipients:?}");
    assert!(
        recipients.contains(&"ana@x.test".to_string()),
        "{recipients:?}"
    );
    assert!(
        recipients.contains(&"bob@x.test".to_string()),
        "{recipients:?}"
    );
    let raw_for = |to: &str| {
        received
            .iter()
            .find(|(e, _)| to_of(e) == to)
            .map(|(_, raw)| raw.clone())
            .unwrap()
    };

    let raw = raw_for("ana@x.test");
    let cart = MessageParser::default().parse(raw.as_slice()).unwrap();
    assert_eq!(cart.subject(), Some("Ana, your cart is waiting"));
    assert!(header(&cart, "From").unwrap().contains("news@shop.test"));
    assert!(header(&cart, "Message-ID").is_some());
    let list = header(&cart, "List-Unsubscribe").expect("marketing mail has List-Unsubscribe");
    assert!(list.contains(&format!("http://{addr}/u/")), "{list}");
    assert_eq!(
        header(&cart, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let html = cart.body_html(0).unwrap().into_owned();
    assert!(
        cart.body_text(0).is_some(),
        "a plain part derived from the HTML"
    );
    assert!(
        html.contains(&format!("http://{addr}/t/o/")),
        "open pixel: {html}"
    );
    let click_prefix = format!("http://{addr}/t/c/");
    let start = html.find(&click_prefix).expect("a rewritten link") + click_prefix.len() - 5;
    let path: String = html[start..]
        .chars()
        .take_while(|c| !matches!(c, '"' | '\'' | '>' | ' '))
        .collect();
    assert!(
        !html.contains("href=\"https://shop.test/ana\""),
        "the cart link is rewritten: {html}"
    );

    // Following the click link of the received mail lands on the cart, and is recorded.
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 30"),
        "a redirect: {response}"
    );
    assert!(
        response
            .to_ascii_lowercase()
            .contains("location: https://shop.test/ana"),
        "{response}"
    );

    // The transactional receipt carries no unsubscribe headers.
    let raw = raw_for("bob@x.test");
    let receipt = MessageParser::default().parse(raw.as_slice()).unwrap();
    assert_eq!(receipt.subject(), Some("Order o-bob"));
    assert_eq!(header(&receipt, "List-Unsubscribe"), None);
    assert_eq!(header(&receipt, "List-Unsubscribe-Post"), None);

    // The 550 is a hard bounce: dead letter, and no more marketing email to that address.
    let nobody = contact("nobody");
    let dead = email_of(&nobody);
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("550"),
        "{dead}"
    );
    assert!(
        nobody["unsubscribed"]
            .as_array()
            .unwrap()
            .contains(&json!("email")),
        "a hard bounce suppresses email: {nobody}"
    );

    // A template that cannot render is a dead letter naming the missing value, never a blank.
    let noname = email_of(&contact("noname"));
    let error = noname["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("first_name"), "{noname}");
    assert!(
        !recipients.contains(&"noname@x.test".to_string()),
        "nothing was sent: {recipients:?}"
    );
    assert_eq!(child.terminate(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// Stored versions and rollback.

fn flowc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("FLOWC_ADMIN_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn every_version_is_stored_and_a_rollback_makes_an_old_one_live_for_new_entrants() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let store_arg = store.to_str().unwrap();
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(project.path(), &store, &dry, &[]);
    let first = daemon.version();
    // The running daemon holds the store: reading it directly says so.
    let (code, _, err) = flowc(&["versions", "--data", store_arg]);
    assert_eq!(code, 2);
    assert!(err.contains("in use by a running `flowc run`"), "{err}");
    // An edit goes live through hot reload: the SMS becomes the receipt.
    let flow_file = project.path().join("flows/shop.flow");
    let original = std::fs::read_to_string(&flow_file).unwrap();
    let edited = original.replace(
        "    wait 1h\n    send cart_sms",
        "    wait 1h\n    send receipt",
    );
    assert_ne!(edited, original);
    std::fs::write(&flow_file, edited).unwrap();
    let second = daemon.wait_for_new_version(&first, Duration::from_secs(3));
    // Both versions are stored, the second live.
    let (status, body) = daemon.admin_get("/v1/versions");
    assert_eq!(status, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).unwrap();
    let hashes: Vec<&str> = listing["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, vec![first.as_str(), second.as_str()], "{body}");
    assert_eq!(listing["live"], second.as_str());
    assert_eq!(listing["versions"][1]["live"], true);
    assert!(listing["versions"][0]["flows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "abandoned_cart"));
    assert_eq!(daemon.request("GET", "/v1/versions", &[], b"").0, 401);
    let (code, out, err) = daemon.admin(&["versions"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("flows:")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("  ") && lines[0].contains(&first[..12]),
        "{out}"
    );
    assert!(
        lines[1].starts_with("* ") && lines[1].contains(&second[..12]),
        "{out}"
    );
    // Roll back to the first version (by a prefix of its hash).
    let (code, _, err) = daemon.admin(&["rollback", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("404") && err.contains("no stored version"),
        "{err}"
    );
    let (code, out, err) = daemon.admin(&["rollback", &first[..12]]);
    assert_eq!(code, 0, "{err}\n{}", daemon.log_text());
    assert!(out.contains(&format!("{first} is live")), "{out}");
    assert_eq!(daemon.version(), first);
    // A new entrant runs the old version: the SMS after the hour, not the receipt.
    assert_eq!(
        daemon
            .post_batch(&contact_records("late", now() - 3 * 3600, 0))
            .0,
        200
    );
    let lines = wait_for_lines(&dry, 2, Duration::from_secs(8));
    assert_eq!(lines.len(), 2, "{lines:?}\n{}", daemon.log_text());
    assert!(
        lines.iter().any(|l| l.contains("cart_reminder")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("cart_sms")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("receipt")), "{lines:?}");
    // No third version: the first one is live again.
    let (_, body) = daemon.admin_get("/v1/versions");
    let listing: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listing["versions"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(listing["live"], first.as_str());
    assert_eq!(daemon.terminate().code(), Some(0));
    // Stopped: the store is read directly.
    let (code, out, err) = flowc(&["versions", "--data", store_arg]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("flows:")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("* ") && lines[0].contains(&first[..12]),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// Exporting the history.

fn simulate_file(project: &Path, events: &Path) -> Vec<String> {
    let out = Command::new(bin())
        .arg("simulate")
        .arg(project)
        .arg("--events")
        .arg(events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn exported_events_simulate_to_the_daemons_dry_run_deliveries_and_the_trace_explains_them() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(project.path(), &store, &dry, &[]);
    let server = format!("http://{}", daemon.addr);
    let base = now() - 3 * 3600;
    let mut records = Vec::new();
    for i in 0..12 {
        records.extend(contact_records(&format!("e{i:02}"), base + i as i64 * 7, i));
    }
    let expected = simulate(project.path(), &records);
    assert!(expected.len() > 15, "{expected:?}");
    assert_eq!(daemon.post_batch(&records).0, 200);
    let got = wait_for_lines(&dry, expected.len(), Duration::from_secs(10));
    assert_eq!(got.len(), expected.len(), "{}", daemon.log_text());
    // Export through the admin API, simulate the export: the daemon's deliveries.
    let exported = data.path().join("export.jsonl");
    let (code, _, err) = daemon.admin(&["export-events", "--out", exported.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("{} records written", records.len())),
        "{err}"
    );
    let text = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(text.lines().count(), records.len());
    assert!(!text.contains("\"seq\""), "{text}");
    assert_eq!(
        simulate_file(project.path(), &exported),
        dry_run_lines(&dry)
    );
    // The contact trace: every decision, with its place in the source; the sends are the
    // daemon's own deliveries.
    let (status, body) = daemon.admin_get("/v1/contacts/e00/trace");
    assert_eq!(status, 200, "{body}");
    let trace: Value = serde_json::from_str(&body).unwrap();
    let decisions = trace["decisions"].as_array().unwrap();
    let whats: Vec<&str> = decisions
        .iter()
        .map(|d| d["what"].as_str().unwrap())
        .collect();
    assert_eq!(
        whats,
        [
            "entered",
            "waits",
            "timer",
            "sent",
            "waits",
            "timer",
            "sent",
            "completed"
        ],
        "{body}"
    );
    assert!(
        decisions.iter().all(|d| d["source"]
            .as_str()
            .unwrap()
            .starts_with("flows/shop.flow:")),
        "{body}"
    );
    let sent: Vec<(String, String)> = decisions
        .iter()
        .filter(|d| d["what"] == "sent")
        .map(|d| {
            (
                d["time"].as_str().unwrap().to_string(),
                d["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let delivered: Vec<(String, String)> = std::fs::read_to_string(&dry)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["contact"] == "e00")
        .map(|v| {
            (
                v["time"].as_str().unwrap().to_string(),
                v["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(sent.len(), delivered.len(), "{body}");
    for ((time, text), (dtime, message)) in sent.iter().zip(&delivered) {
        assert_eq!(time, dtime, "{body}");
        assert!(text.contains(message.as_str()), "{text} vs {message}");
    }
    let (status, body) = daemon.admin_get("/v1/contacts/e01/trace");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"exited\""), "{body}");
    assert_eq!(daemon.admin_get("/v1/contacts/nobody/trace").0, 404);
    assert_eq!(
        daemon.request("GET", "/v1/contacts/e00/trace", &[], b"").0,
        401
    );
    // A time range: the records of the contacts from e06 on (timestamps from base + 42 s).
    let since = rfc3339(base + 6 * 7);
    let (code, out, err) = daemon.admin(&["export-events", "--since", &since]);
    assert_eq!(code, 0, "{err}");
    let later = records
        .iter()
        .filter(|r| r["timestamp"].as_str().unwrap() >= since.as_str())
        .count();
    assert_eq!(out.lines().count(), later);
    assert!(out.lines().all(|l| !l.contains("\"e05\"")), "{out}");
    let (code, _, err) = flowc(&["export-events", "--server", &server, "--until", "tomorrow"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`--until tomorrow` is not an RFC 3339 instant"),
        "{err}"
    );
    assert_eq!(daemon.terminate().code(), Some(0));
    // The stopped daemon's store gives the same export.
    let (code, out, err) = flowc(&["export-events", "--data", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, text);
}

// ---------------------------------------------------------------------------------------------
// `flowc diff` with the contacts waiting right now.

#[test]
fn diff_reports_the_pin_impact_on_contacts_waiting_in_the_daemon_now() {
    let project = project_copy();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(project.path(), &store, &dry, &[]);
    // `w1` got its reminder and waits in `wait 1h`.
    assert_eq!(
        daemon.post_batch(&contact_records("w1", now() - 11, 0)).0,
        200
    );
    let lines = wait_for_lines(&dry, 1, Duration::from_secs(5));
    assert!(lines[0].contains("cart_reminder"), "{lines:?}");
    // NEW sends the receipt instead of the SMS.
    let new = project_copy();
    let flow_file = new.path().join("flows/shop.flow");
    let original = std::fs::read_to_string(&flow_file).unwrap();
    std::fs::write(
        &flow_file,
        original.replace(
            "    wait 1h\n    send cart_sms",
            "    wait 1h\n    send receipt",
        ),
    )
    .unwrap();
    let old_arg = project.path().to_str().unwrap();
    let new_arg = new.path().to_str().unwrap();
    let (code, out, err) = daemon.admin(&["diff", old_arg, new_arg]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("### contacts waiting now"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("- 1 waiting in `abandoned_cart`"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("e.g. `w1`"), "{line}");
    assert!(line.contains("still runs `send cart_sms`"), "{line}");
    let (code, out_json, err) = daemon.admin(&["diff", old_arg, new_arg, "--format", "json"]);
    assert_eq!(code, 1, "{err}");
    let json: Value = serde_json::from_str(&out_json).unwrap();
    assert_eq!(json["impact"].as_array().unwrap().len(), 1, "{out_json}");
    assert_eq!(json["impact"][0]["count"], 1);
    assert_eq!(json["impact"][0]["examples"], json!(["w1"]));
    assert_eq!(daemon.terminate().code(), Some(0));
    // The stopped daemon's store says the same.
    let (code, out_store, err) =
        flowc(&["diff", old_arg, new_arg, "--store", store.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out_store, out);
}

// ---------------------------------------------------------------------------------------------
// The migration policy: what `flowc diff --server` predicts for the contacts waiting now is
// what the daemon delivers to them after the version changes on disk.

const JOURNEY_MESSAGES: &str =
    "message j1: email {\n    subject: \"j1\"\n    body: \"<p>j1</p>\"\n}\n\n\
message j1b: email {\n    subject: \"j1b\"\n    body: \"<p>j1b</p>\"\n}\n\n\
message j2: email {\n    subject: \"j2\"\n    body: \"<p>j2</p>\"\n}\n\n\
message j3: email {\n    subject: \"j3\"\n    body: \"<p>j3</p>\"\n}\n\n";

/// OLD: a labelled `wait 1h`, then an unlabelled `wait 2h`.
fn journey_old(policy: &str) -> String {
    format!(
        "{JOURNEY_MESSAGES}flow journey {{\n    when journey_started\n    only if can_receive(email)\n    on change {policy}\n    step first: wait 1h\n    send j1\n    wait 2h\n    send j2\n}}\n"
    )
}

/// NEW: a step added before the label, the labelled wait shortened by a minute (under
/// `migrate` it keeps its start, so it is over at once), the first message replaced, one added
/// at the end (the `wait 2h` maps by its place).
fn journey_new(policy: &str) -> String {
    format!(
        "{JOURNEY_MESSAGES}flow journey {{\n    when journey_started\n    only if can_receive(email)\n    on change {policy}\n    send j3\n    step first: wait 59min\n    send j1b\n    wait 2h\n    send j2\n    send j3\n}}\n"
    )
}

/// The journey deliveries of the dry-run file: (contact, message), in file order.
fn journey_deliveries(dry: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dry)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["flow"] == "journey")
        .map(|v| {
            (
                v["contact"].as_str().unwrap().to_string(),
                v["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn journey_records(id: &str, started: i64) -> Vec<Value> {
    vec![
        json!({"type": "identify", "userId": id, "timestamp": rfc3339(started - 1),
               "messageId": format!("{id}-i"),
               "traits": {"email": format!("{id}@x.test"), "consent": {"email": true}}}),
        json!({"type": "track", "userId": id, "event": "Journey Started",
               "timestamp": rfc3339(started), "messageId": format!("{id}-s")}),
    ]
}

/// Contacts `x1`, `x2` wait at `wait 1h` and `y1`, `y2` at `wait 2h`, all due `due_in` seconds
/// from now; the version under `policy` changes on disk; the deliveries afterwards must be
/// what `flowc diff OLD NEW --server URL --format json` predicted for those contacts.
/// Returns the prediction (`impact`), the deliveries after the change and the daemon.
fn policy_change(
    policy: &str,
    due_in: i64,
    before_change: impl FnOnce(&Daemon, &Path),
) -> (Vec<Value>, Vec<(String, String)>, Daemon, tempfile::TempDir) {
    let project = project_copy();
    let journey = project.path().join("flows/journey.flow");
    std::fs::write(&journey, journey_old(policy)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(project.path(), &data.path().join("store"), &dry, &[]);
    let start = now();
    let mut records = Vec::new();
    for id in ["x1", "x2"] {
        records.extend(journey_records(id, start - 3600 + due_in));
    }
    for id in ["y1", "y2"] {
        // Their `wait 1h` ended in the past (j1 goes out at once); `wait 2h` is due soon.
        records.extend(journey_records(id, start - 3 * 3600 + due_in));
    }
    assert_eq!(daemon.post_batch(&records).0, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while journey_deliveries(&dry).len() < 2 {
        assert!(Instant::now() < deadline, "{}", daemon.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        journey_deliveries(&dry),
        vec![
            ("y1".to_string(), "j1".to_string()),
            ("y2".to_string(), "j1".to_string())
        ]
    );
    before_change(&daemon, project.path());
    // The prediction, from the daemon's waiting contacts.
    let new = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(new.path().join("flows")).unwrap();
    std::fs::copy(
        project.path().join("flowc.toml"),
        new.path().join("flowc.toml"),
    )
    .unwrap();
    std::fs::copy(
        project.path().join("flows/shop.flow"),
        new.path().join("flows/shop.flow"),
    )
    .unwrap();
    std::fs::write(new.path().join("flows/journey.flow"), journey_new(policy)).unwrap();
    let (code, out, err) = daemon.admin(&[
        "diff",
        project.path().to_str().unwrap(),
        new.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{err}{out}");
    let prediction: Value = serde_json::from_str(&out).unwrap();
    let impact: Vec<Value> = prediction["impact"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["flow"] == "journey")
        .cloned()
        .collect();
    assert_eq!(impact.len(), 2, "{out}");
    // The change, on disk.
    let before = daemon.version();
    let delivered_before = journey_deliveries(&dry).len();
    std::fs::write(&journey, journey_new(policy)).unwrap();
    daemon.wait_for_new_version(&before, Duration::from_secs(5));
    assert!(
        now() < start + due_in - 1,
        "the change came too late for the test's timers"
    );
    if policy == "migrate" {
        // The shortened wait is over: due at the switch, not at the old wait's end.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !journey_deliveries(&dry).contains(&("x1".to_string(), "j1b".to_string())) {
            assert!(Instant::now() < deadline, "{}", daemon.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            now() < start + due_in - 2,
            "x1's shortened wait fired at its old end"
        );
    }
    // Every predicted delivery, then a little longer (nothing else may come).
    let expected: usize = impact
        .iter()
        .map(|i| {
            i["count"].as_u64().unwrap() as usize
                * i["on_change"]["then_sends"].as_array().unwrap().len()
        })
        .sum();
    let deadline = Instant::now() + Duration::from_secs((due_in + 5) as u64);
    while journey_deliveries(&dry).len() < delivered_before + expected {
        assert!(
            Instant::now() < deadline,
            "{:?}\n{}",
            journey_deliveries(&dry),
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    while now() < start + due_in + 2 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = journey_deliveries(&dry).split_off(delivered_before);
    // Exactly what was predicted, contact by contact (sends of one instant reach the dry-run
    // file in the outbox's key order, so each contact's messages are compared as a multiset).
    let mut contacts = 0;
    for step in &impact {
        let mut predicted: Vec<String> = step["on_change"]["then_sends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect();
        predicted.sort();
        assert_eq!(step["count"], 2, "{step}");
        for contact in step["examples"].as_array().unwrap() {
            let contact = contact.as_str().unwrap();
            let mut got: Vec<String> = after
                .iter()
                .filter(|(c, _)| c == contact)
                .map(|(_, m)| m.clone())
                .collect();
            got.sort();
            assert_eq!(got, predicted, "{contact} under {policy}: {step}");
            contacts += 1;
        }
    }
    assert_eq!(contacts, 4);
    assert_eq!(after.len(), expected, "{after:?}");
    (impact, after, daemon, project)
}

fn action_at(impact: &[Value], waiting_at: &str) -> String {
    let step = impact
        .iter()
        .find(|i| i["waiting_at"] == waiting_at)
        .unwrap_or_else(|| panic!("{impact:?}"));
    step["on_change"]["action"].as_str().unwrap().to_string()
}

#[test]
fn under_pin_waiting_contacts_get_the_old_versions_messages_as_diff_predicted() {
    let (impact, after, daemon, _project) = policy_change("pin", 12, |_, _| {});
    assert_eq!(action_at(&impact, "wait 1h"), "keeps_old_version");
    assert_eq!(action_at(&impact, "wait 2h"), "keeps_old_version");
    let mut messages: Vec<&str> = after.iter().map(|(_, m)| m.as_str()).collect();
    messages.sort();
    assert_eq!(messages, ["j1", "j1", "j2", "j2"]);
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn under_migrate_waiting_contacts_move_by_label_and_place_as_diff_predicted() {
    let (impact, after, daemon, _project) = policy_change("migrate", 20, |daemon, project| {
        // First a version that drops the unlabelled `wait 2h`: refused, the old one goes on.
        let before = daemon.version();
        let stranding = journey_old("migrate").replace("    wait 2h\n", "");
        std::fs::write(project.join("flows/journey.flow"), stranding).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !daemon.log_text().contains("E0033") {
            assert!(Instant::now() < deadline, "{}", daemon.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(daemon.version(), before);
        assert!(
            daemon.log_text().contains("wait 2h"),
            "{}",
            daemon.log_text()
        );
        std::fs::write(project.join("flows/journey.flow"), journey_old("migrate")).unwrap();
    });
    assert_eq!(action_at(&impact, "wait 1h"), "moves");
    assert_eq!(action_at(&impact, "wait 2h"), "moves");
    let first = impact
        .iter()
        .find(|i| i["waiting_at"] == "wait 1h")
        .unwrap();
    assert_eq!(
        first["on_change"]["retimed"]["new"], "wait 59min",
        "{first}"
    );
    let of = |contact: &str| {
        let mut messages: Vec<&str> = after
            .iter()
            .filter(|(c, _)| c == contact)
            .map(|(_, m)| m.as_str())
            .collect();
        messages.sort();
        messages
    };
    let (x1, y1) = (of("x1"), of("y1"));
    assert_eq!((x1, y1), (vec!["j1b"], vec!["j2", "j3"]));
    // The contact's trace shows the move.
    let (status, body) = daemon.admin_get("/v1/contacts/x1/trace");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("moved from `wait 1h`") && body.contains("by its label `first`"),
        "{body}"
    );
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn under_restart_waiting_contacts_are_ended_and_get_nothing_as_diff_predicted() {
    let (impact, after, daemon, _project) = policy_change("restart", 12, |_, _| {});
    assert_eq!(action_at(&impact, "wait 1h"), "ends");
    assert_eq!(action_at(&impact, "wait 2h"), "ends");
    assert!(after.is_empty(), "{after:?}");
    let (_, body) = daemon.admin_get("/v1/contacts/y2/trace");
    assert!(body.contains("on change restart"), "{body}");
    assert_eq!(daemon.terminate().code(), Some(0));
}

/// A rollback to a stored version whose `on change migrate` would strand contacts waiting in
/// the live one is refused (409, the E0033 text) and the live version goes on;
/// `flowc versions --format json` lists both stored versions.
#[test]
fn a_rollback_that_would_strand_waiting_contacts_is_refused() {
    let project = project_copy();
    let journey = project.path().join("flows/journey.flow");
    let short = format!(
        "{JOURNEY_MESSAGES}flow journey {{\n    when journey_started\n    only if can_receive(email)\n    on change migrate\n    step first: wait 1h\n    send j1\n}}\n"
    );
    std::fs::write(&journey, &short).unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let dry = data.path().join("dry.jsonl");
    let daemon = Daemon::start(project.path(), &store, &dry, &[]);
    let first = daemon.version();
    // B adds a second, unlabelled wait: nothing waits in A's steps that B lacks.
    std::fs::write(&journey, journey_old("migrate")).unwrap();
    let second = daemon.wait_for_new_version(&first, Duration::from_secs(5));
    // `y` waits at B's `wait 2h`, which A does not have.
    let records = journey_records("y", now() - 3 * 3600 + 600);
    assert_eq!(daemon.post_batch(&records).0, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while journey_deliveries(&dry).is_empty() {
        assert!(Instant::now() < deadline, "{}", daemon.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = daemon.request(
        "POST",
        &format!("/v1/versions/{first}/activate"),
        &[("Authorization", "Bearer admin-test-key")],
        b"",
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("E0033") && body.contains("wait 2h"), "{body}");
    assert_eq!(daemon.version(), second);
    let (code, _, err) = daemon.admin(&["rollback", &first]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("E0033"), "{err}");
    let (code, out, err) = daemon.admin(&["versions", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let listing: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listing["live"], second.as_str(), "{out}");
    let hashes: Vec<&str> = listing["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, vec![first.as_str(), second.as_str()]);
    assert_eq!(daemon.terminate().code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// Retention: a real sled directory, compacted as the background thread does.

fn outbox_entry(key: &str, status: flowc::daemon::outbox::EntryStatus, time: i64) -> Vec<u8> {
    flowc::daemon::outbox::OutboxEntry {
        key: key.into(),
        contact: "c1".into(),
        flow: "f".into(),
        flow_hash: "h".into(),
        message: "m".into(),
        channel: "email".into(),
        time,
        status,
        reason: None,
        line: String::new(),
        outgoing: None,
        attempts: 0,
        first_try: None,
        next_try: None,
        last_error: None,
        provider_id: None,
    }
    .encode()
}

fn history_at(t: i64, id: &str) -> Vec<u8> {
    let stamp = chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
    serde_json::to_vec(&json!({"type": "track", "userId": "c1", "event": "e", "timestamp": stamp, "messageId": id})).unwrap()
}

#[test]
fn retention_forgets_old_ids_history_and_finished_entries_and_keeps_the_window() {
    use flowc::daemon::outbox::EntryStatus;
    use flowc::daemon::retention::{compact, Removed, Windows};
    use flowc::store::sled::SledStore;
    use flowc::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400;
    let now = 1_000 * day;
    {
        let mut store = SledStore::open(dir.path()).unwrap();
        store.set_dedupe_window(Some(7 * day));
        // Ten days ago: outside the 7-day dedupe window, inside the 90-day history window.
        store.set_now(now - 10 * day);
        assert!(store.first_seen("old").unwrap());
        store.append_history(&history_at(now - 100 * day, "ancient"));
        store.append_history(&history_at(now - 10 * day, "old"));
        store.put_outbox(
            "c1",
            "sent-40d",
            &outbox_entry("sent-40d", EntryStatus::Sent, now - 40 * day),
            None,
            None,
        );
        store.put_outbox(
            "c1",
            "dead-40d",
            &outbox_entry("dead-40d", EntryStatus::Dead, now - 40 * day),
            None,
            None,
        );
        store.put_outbox(
            "c1",
            "retrying-40d",
            &outbox_entry("retrying-40d", EntryStatus::Retrying, now - 40 * day),
            None,
            Some(now + 60),
        );
        store.commit().unwrap();
        store.set_now(now - day);
        assert!(store.first_seen("recent").unwrap());
        store.append_history(&history_at(now - day, "recent"));
        store.put_outbox(
            "c1",
            "sent-1d",
            &outbox_entry("sent-1d", EntryStatus::Sent, now - day),
            None,
            None,
        );
        store.commit().unwrap();
        let windows = Windows::from_config(&flowc::config::StoreConfig::default());
        let removed = compact(&store.compactor(), &windows, now, &|| {}).unwrap();
        assert_eq!(
            removed,
            Removed {
                dedupe: 1,
                history: 1,
                outbox: 2
            }
        );
        // A second pass finds nothing more.
        let again = compact(&store.compactor(), &windows, now, &|| {}).unwrap();
        assert_eq!(again, Removed::default());
        store.set_now(now);
        store.append_history(&history_at(now, "now"));
        store.commit().unwrap();
    }
    let mut store = SledStore::open(dir.path()).unwrap();
    store.set_dedupe_window(Some(7 * day));
    store.set_now(now);
    // Inside the window a resent record is still a duplicate; the forgotten id is new again.
    assert!(!store.first_seen("recent").unwrap());
    assert!(store.first_seen("old").unwrap());
    let reader = store.reader();
    let history: Vec<(u64, String)> = reader
        .history(0, 10)
        .unwrap()
        .into_iter()
        .map(|(seq, bytes)| {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            (seq, v["messageId"].as_str().unwrap().to_string())
        })
        .collect();
    // Sequence numbers go on (never reused after a compaction).
    assert_eq!(
        history,
        vec![(1, "old".into()), (2, "recent".into()), (3, "now".into())]
    );
    let keys: Vec<String> = reader
        .outbox_of("c1")
        .unwrap()
        .iter()
        .map(|b| flowc::daemon::outbox::OutboxEntry::decode(b).unwrap().key)
        .collect();
    assert_eq!(
        keys,
        vec!["retrying-40d".to_string(), "sent-1d".to_string()]
    );
    assert_eq!(
        store.outbox_queue().unwrap().len(),
        1,
        "the retry stays queued"
    );
}

#[test]
fn the_compact_history_form_reads_back_as_the_json_form_and_old_json_still_reads() {
    let mut traits = serde_json::Map::new();
    traits.insert("email".into(), json!("a@x.example"));
    let mut properties = serde_json::Map::new();
    properties.insert("total".into(), json!(42.5));
    properties.insert("items".into(), json!([1, 2, {"sku": "x"}]));
    let record = flowc::events::Record {
        line: 1,
        kind: flowc::events::RecordKind::Track,
        contact: "c1".into(),
        time: 1_764_000_000,
        nanos: 250_000_000,
        message_id: Some("m1".into()),
        event: "order_completed".into(),
        traits,
        properties,
    };
    let json_form = flowc::daemon::record_json(&record);
    let compact = flowc::daemon::record_bytes(&record);
    assert!(
        compact.len() * 2 < json_form.len(),
        "{} vs {}",
        compact.len(),
        json_form.len()
    );
    let from_json = flowc::daemon::history_value(&json_form).unwrap();
    assert_eq!(flowc::daemon::history_value(&compact).unwrap(), from_json);
    assert_eq!(from_json["timestamp"], "2025-11-24T16:00:00.250Z");
    assert_eq!(from_json["properties"]["items"][2]["sku"], "x");
}
