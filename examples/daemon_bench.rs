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
    let now = chrono::Utc::now();
    let stamp = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let batches = events / batch;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let addr = addr.clone();
                let stamp = stamp.clone();
                scope.spawn(move || {
                    let mut conn = Connection::open(&addr);
                    let mut latencies = Vec::new();
                    for b in (c..batches).step_by(clients) {
                        let records: Vec<String> = (0..batch)
                            .map(|i| {
                                let n = b * batch + i;
                                format!(
                                    "{{\"type\":\"track\",\"userId\":\"u{n}\",\"event\":\"Cart Abandoned\",\"timestamp\":\"{stamp}\",\"messageId\":\"m{n}\",\"properties\":{{\"cart_url\":\"https://s/{n}\"}}}}"
                                )
                            })
                            .collect();
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
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "daemon over HTTP, batches of {batch}, {clients} connections, acknowledged = durable: {:.0} events/s ({} events in {secs:.2} s); batch latency p50 {:?} p99 {:?}",
        (batches * batch) as f64 / secs,
        batches * batch,
        p(0.5),
        p(0.99),
    );
    let bytes: u64 = walkdir::WalkDir::new(&data)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    println!(
        "store directory after the run: {bytes} bytes, {:.0} bytes per waiting instance (state + timer + dedupe id + history record, before sled compacts its log)",
        bytes as f64 / (batches * batch) as f64
    );
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
