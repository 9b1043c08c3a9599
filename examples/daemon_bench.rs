//! Durable ingestion over HTTP, and the raw sled ceiling for the same write pattern, in one run.
//!
//! ```text
//! cargo run --release --example daemon_bench -- [EVENTS] [BATCH] [CLIENTS]
//! ```
//!
//! 1. Raw sled: per event read a state, write it, move its timer key (remove + insert), append
//!    an outbox entry; one `apply_batch` + `flush` + `fdatasync` per group of 100 events, then
//!    of 200 (the daemon's group size).
//! 2. The daemon (`flowc run`, in this process, dry-run, store in a temp dir) on loopback:
//!    `CLIENTS` connections post `/v1/batch` of `BATCH` `cart_abandoned` records (one new
//!    contact each, so each one starts a flow and its `wait 1h` timer); events/s counts records
//!    acknowledged with 200, that is durable.
//!
//! Prints one line per figure, and disk bytes per waiting instance.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(50_000);
    let batch = args.get(1).copied().unwrap_or(100);
    let clients = args.get(2).copied().unwrap_or(4);
    raw_sled(events, 100);
    raw_sled(events, 200);
    daemon(events, batch, clients);
}

fn raw_sled(events: usize, group_size: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::Config::new()
        .path(dir.path())
        .flush_every_ms(None)
        .open()
        .expect("sled");
    let db_file = std::fs::File::open(dir.path().join("db")).expect("db file");
    let state = vec![7u8; 180];
    let started = Instant::now();
    for group in 0..events.div_ceil(group_size) {
        let mut b = sled::Batch::default();
        for i in 0..group_size {
            let n = group * group_size + i;
            let key = format!("c{n:09}");
            let _ = db.get(key.as_bytes()).expect("get");
            b.insert(key.as_bytes(), state.clone());
            let mut old = vec![b't'];
            old.extend_from_slice(&(n as u64).to_be_bytes());
            old.extend_from_slice(key.as_bytes());
            b.remove(old);
            let mut new = vec![b't'];
            new.extend_from_slice(&(n as u64 + 3600).to_be_bytes());
            new.extend_from_slice(key.as_bytes());
            b.insert(new, b"".to_vec());
            let mut outbox = vec![b'o'];
            outbox.extend_from_slice(key.as_bytes());
            b.insert(outbox, vec![1u8; 120]);
        }
        db.apply_batch(b).expect("batch");
        db.flush().expect("flush");
        db_file.sync_data().expect("fdatasync");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "raw sled, group of {group_size} events (get + 4 writes each) + flush + fdatasync: {:.0} events/s ({events} events in {secs:.2} s)",
        events as f64 / secs
    );
}

fn daemon(events: usize, batch: usize, clients: usize) {
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/channels/shop");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let addr = format!("127.0.0.1:{port}");
    let data = dir.path().join("store");
    let args = flowc::cli::RunArgs {
        project: project.clone(),
        listen: Some(addr.clone()),
        data: Some(data.clone()),
        dry_run: Some(dir.path().join("dry.jsonl")),
        log_format: flowc::cli::LogFormat::Text,
    };
    std::env::set_var("FLOWC_LOG", "warn");
    std::thread::spawn(move || flowc::daemon::command(&args));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stamp_of = |ago: i64| {
        (chrono::Utc::now() - chrono::Duration::seconds(ago))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    // 1. Throughput: new carts now (each one a waiting instance with its timer).
    let stamp = stamp_of(0);
    let cart = |n: usize| {
        format!(
            "{{\"type\":\"track\",\"userId\":\"u{n}\",\"event\":\"Cart Abandoned\",\"timestamp\":\"{stamp}\",\"messageId\":\"m{n}\",\"properties\":{{\"cart_url\":\"https://s/{n}\"}}}}"
        )
    };
    let (secs, mut latencies) = post_all(&addr, &cart, 0, events, batch, clients, None);
    latencies.sort();
    println!(
        "daemon over HTTP, batches of {batch}, {clients} connections, acknowledged = durable: {:.0} events/s ({events} events in {secs:.2} s); batch latency p50 {:?} p99 {:?}",
        events as f64 / secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    let bytes: u64 = walkdir::WalkDir::new(&data)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    println!(
        "store directory after it: {bytes} bytes, {:.0} bytes per waiting instance (state + timer + dedupe id + history record, before sled compacts its log)",
        bytes as f64 / events as f64
    );
    // 2. Timers while ingesting: carts of two hours ago, whose `wait 1h` is already due.
    let fired_before = metric(&addr, "flowc_timers_fired_total");
    let old = stamp_of(7200);
    let late_cart = |n: usize| {
        format!(
            "{{\"type\":\"track\",\"userId\":\"t{n}\",\"event\":\"Cart Abandoned\",\"timestamp\":\"{old}\",\"messageId\":\"t{n}\",\"properties\":{{\"cart_url\":\"https://s/{n}\"}}}}"
        )
    };
    let started = Instant::now();
    let (ingest_secs, _) = post_all(&addr, &late_cart, 0, events, batch, clients, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(&addr, "flowc_timers_fired_total") - fired_before < events as f64 {
        assert!(Instant::now() < deadline, "timers did not all fire");
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "timers fired while ingesting: {events} due timers (3 sends each) fired {:.2} s after the first request, ingestion took {ingest_secs:.2} s: {:.0} timers/s",
        secs,
        events as f64 / secs
    );
    // 3. Steady 10,000 events/s of orders, each deciding a receipt: the acknowledgement comes
    // after the commit that holds the record and its outbox entry.
    let order = |n: usize| {
        format!(
            "{{\"type\":\"track\",\"userId\":\"o{n}\",\"event\":\"Order Completed\",\"timestamp\":\"{stamp}\",\"messageId\":\"o{n}\",\"properties\":{{\"order_id\":\"{n}\"}}}}"
        )
    };
    let steady = 30_000;
    // 40 connections, each 5 records every 20 ms: 10,000 events/s offered while a batch's
    // answer takes under 20 ms.
    let (secs, mut latencies) = post_all(
        &addr,
        &order,
        0,
        steady,
        5,
        40,
        Some(Duration::from_millis(20)),
    );
    latencies.sort();
    println!(
        "steady {:.0} events/s (batches of 5 every 20 ms on 40 connections), ingestion to durable outbox entry: p50 {:?} p99 {:?}",
        steady as f64 / secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    let commits = metric(&addr, "flowc_commit_latency_seconds_count");
    println!(
        "group commits over the whole run: {commits:.0}, mean {:.2} ms each (batch + flush + fdatasync)",
        metric(&addr, "flowc_commit_latency_seconds_sum") / commits.max(1.0) * 1000.0
    );
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn metric(addr: &str, name: &str) -> f64 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let _ = write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Posts records `first..first + events` in batches over `clients` connections; with `pace`,
/// each connection sends one batch per `pace`. Returns the seconds and each batch's latency.
fn post_all(
    addr: &str,
    record: &(dyn Fn(usize) -> String + Sync),
    first: usize,
    events: usize,
    batch: usize,
    clients: usize,
    pace: Option<Duration>,
) -> (f64, Vec<Duration>) {
    let batches = events / batch;
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let mut conn = Connection::open(addr);
                    let mut latencies = Vec::new();
                    let mut next = Instant::now();
                    for b in (c..batches).step_by(clients) {
                        if let Some(p) = pace {
                            let now = Instant::now();
                            if next > now {
                                std::thread::sleep(next - now);
                            }
                            next += p;
                        }
                        let records: Vec<String> =
                            (0..batch).map(|i| record(first + b * batch + i)).collect();
                        let body = format!("{{\"batch\":[{}]}}", records.join(","));
                        let t = Instant::now();
                        let status = conn.post("/v1/batch", body.as_bytes());
                        assert_eq!(status, 200, "batch refused");
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    (started.elapsed().as_secs_f64(), latencies)
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

impl Connection {
    fn open(addr: &str) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect");
        let _ = stream.set_nodelay(true);
        Connection {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            host: addr.to_string(),
        }
    }

    fn post(&mut self, path: &str, body: &[u8]) -> u16 {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.writer.write_all(head.as_bytes()).expect("write");
        self.writer.write_all(body).expect("write");
        let mut status = 0;
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read");
            if status == 0 {
                status = line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
        status
    }
}
