//! The daemon's figures of the benchmark suite: the real `flowc run` binary on loopback, a
//! store in a temp directory, the dry-run file as the channel.
//!
//! Owns: the daemon workloads and their `--only` names — `daemon-http` (durable events/s over
//! HTTP with batches, and the raw sled ceiling for the same write pattern in the same run),
//! `daemon-disk` (bytes per waiting instance, and what the live keys are), `daemon-cold` (process
//! start → `/healthz` answers, with every waiting instance in the store), `daemon-jump`
//! (timers fired/s when the daemon starts an hour later and every timer is due),
//! `daemon-ingest-timers` (timers fired/s while ingesting), `daemon-latency` (ingestion →
//! durable outbox entry at a steady 10,000 events/s, with the disk's fsync floor), and
//! `daemon-reload` (a flow file written → the new version live in `/healthz`).
//! Must not: name sled (the raw ceiling is `store::sled::raw_ceiling`), assert any time (CI
//! runs `--quick` to prove it works), or reach into the daemon: it talks HTTP to a child
//! process, as a shop's servers would.

use super::{size_label, BenchError, Figure, Options};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant as Clock};

/// The project every daemon figure runs (carts wait 1h then send three messages; orders send
/// a receipt at once and wait 3 days).
const PROJECT: &str = "tests/channels/shop";
/// Records per HTTP batch and client connections of the throughput figure.
const BATCH: usize = 100;
const CLIENTS: usize = 4;

/// The daemon's sections, by their `--only` names.
pub const SECTIONS: [&str; 7] = [
    "daemon-http",
    "daemon-disk",
    "daemon-cold",
    "daemon-jump",
    "daemon-ingest-timers",
    "daemon-latency",
    "daemon-reload",
];

/// Which daemon sections `options` asks for.
fn wanted(options: &Options) -> Vec<&'static str> {
    SECTIONS.into_iter().filter(|s| options.wants(s)).collect()
}

/// Runs the wanted daemon sections with `binary`, `options.runs` times each; every figure
/// goes to `push` as soon as it is complete.
pub fn run(
    options: &Options,
    binary: &Path,
    push: &mut dyn FnMut(Vec<Figure>),
) -> Result<(), BenchError> {
    let wanted = wanted(options);
    if wanted.is_empty() {
        return Ok(());
    }
    let wants = |s: &str| wanted.contains(&s);
    let waiting = options
        .sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(1_000)
        .max(100);
    let waiting = waiting / BATCH * BATCH;
    let size = size_label(waiting);
    let late = (waiting / 20).clamp(400, 50_000) / BATCH * BATCH;
    let steady = if waiting >= 100_000 { 30_000 } else { 2_000 };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(PROJECT);
    let mut samples = Samples::default();
    for round in 0..options.runs.max(1) {
        let dir =
            std::env::temp_dir().join(format!("flowc-bench-daemon-{}-{round}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let project = dir.join("project");
        copy_dir(&source, &project)?;
        let result = one_round(
            options,
            binary,
            &dir,
            &project,
            &Sizes {
                waiting,
                late,
                steady,
            },
            &wants,
            &mut samples,
        );
        let _ = std::fs::remove_dir_all(&dir);
        result?;
    }
    let s = samples;
    let ingest_size = format!("{} late carts", late);
    let steady_size = format!("{steady} orders");
    if wants("daemon-http") {
        let raw_events = waiting.min(200_000);
        push(vec![
            Figure::new(
                "daemon-http",
                format!("durable events over HTTP (batches of {BATCH}, {CLIENTS} connections, 200 = durable)"),
                &size,
                "events/s",
                s.http_rate,
            ),
            Figure::new("daemon-http", "  batch latency p50", &size, "ms", s.http_p50),
            Figure::new("daemon-http", "  batch latency p99", &size, "ms", s.http_p99),
            Figure::new(
                "daemon-http",
                "  group commits, mean (batch + flush + fdatasync)",
                &size,
                "ms",
                s.http_commit,
            ),
            Figure::new(
                "daemon-http",
                "raw sled ceiling, same writes, groups of 100 events",
                size_label(raw_events),
                "events/s",
                s.raw_100,
            ),
            Figure::new(
                "daemon-http",
                "raw sled ceiling, same writes, groups of 200 events",
                size_label(raw_events),
                "events/s",
                s.raw_200,
            ),
            Figure::new(
                "daemon-http",
                "records acknowledged",
                &size,
                "records",
                s.http_records,
            ),
        ]);
    }
    if wants("daemon-disk") {
        let mut figures = vec![Figure::new(
            "daemon-disk",
            "store directory per waiting instance (incl. its timer, dedupe id, history record)",
            &size,
            "B",
            s.disk_per_instance,
        )];
        for (kind, bytes) in s.kinds {
            figures.push(Figure::new(
                "daemon-disk",
                format!("  live `{kind}` keys + values per waiting instance"),
                &size,
                "B",
                bytes,
            ));
        }
        figures.push(Figure::new(
            "daemon-disk",
            "  sled keys per waiting instance (sled costs ~100 B of page and log per key)",
            &size,
            "keys",
            s.keys_per_instance,
        ));
        figures.push(Figure::new(
            "daemon-disk",
            "waiting instances in the store",
            &size,
            "instances",
            s.waiting,
        ));
        push(figures);
    }
    if wants("daemon-cold") {
        push(vec![Figure::new(
            "daemon-cold",
            "cold start: process start → /healthz answers",
            format!("{size} waiting"),
            "ms",
            s.cold,
        )]);
    }
    if wants("daemon-jump") {
        push(vec![
            Figure::new(
                "daemon-jump",
                "timers fired after a 1-hour jump (the daemon starts an hour later)",
                format!("{size} waiting"),
                "timers/s",
                s.jump_rate,
            ),
            Figure::new(
                "daemon-jump",
                "timers fired after the jump",
                format!("{size} waiting"),
                "timers",
                s.jump_fired,
            ),
        ]);
    }
    if wants("daemon-ingest-timers") {
        push(vec![
            Figure::new(
                "daemon-ingest-timers",
                "timers fired while ingesting (carts whose wait 1h is already due)",
                &ingest_size,
                "timers/s",
                s.late_rate,
            ),
            Figure::new(
                "daemon-ingest-timers",
                "timers fired while ingesting",
                &ingest_size,
                "timers",
                s.late_fired,
            ),
        ]);
    }
    if wants("daemon-latency") {
        push(vec![
            Figure::new(
                "daemon-latency",
                "steady load offered (batches of 5 every 20 ms on 40 connections)",
                &steady_size,
                "events/s",
                s.steady_rate,
            ),
            Figure::new(
                "daemon-latency",
                "ingestion → durable outbox entry, p50",
                &steady_size,
                "ms",
                s.steady_p50,
            ),
            Figure::new(
                "daemon-latency",
                "ingestion → durable outbox entry, p99",
                &steady_size,
                "ms",
                s.steady_p99,
            ),
            Figure::new(
                "daemon-latency",
                "the disk's floor: one 4 KiB append + fdatasync",
                "200 rounds",
                "ms",
                s.fsync_floor,
            ),
            Figure::new(
                "daemon-latency",
                "orders acknowledged",
                &steady_size,
                "records",
                s.steady_records,
            ),
        ]);
    }
    if wants("daemon-reload") {
        push(vec![Figure::new(
            "daemon-reload",
            "hot reload: flow file written → new version in /healthz",
            "1 flow file",
            "ms",
            s.reload,
        )]);
    }
    Ok(())
}

struct Sizes {
    waiting: usize,
    late: usize,
    steady: usize,
}

/// One sample per round of each figure.
#[derive(Default)]
struct Samples {
    http_rate: Vec<f64>,
    http_p50: Vec<f64>,
    http_p99: Vec<f64>,
    http_commit: Vec<f64>,
    http_records: Vec<f64>,
    raw_100: Vec<f64>,
    raw_200: Vec<f64>,
    disk_per_instance: Vec<f64>,
    kinds: Vec<(String, Vec<f64>)>,
    keys_per_instance: Vec<f64>,
    waiting: Vec<f64>,
    cold: Vec<f64>,
    jump_rate: Vec<f64>,
    jump_fired: Vec<f64>,
    late_rate: Vec<f64>,
    late_fired: Vec<f64>,
    steady_rate: Vec<f64>,
    steady_p50: Vec<f64>,
    steady_p99: Vec<f64>,
    steady_records: Vec<f64>,
    fsync_floor: Vec<f64>,
    reload: Vec<f64>,
}

fn one_round(
    options: &Options,
    binary: &Path,
    dir: &Path,
    project: &Path,
    sizes: &Sizes,
    wants: &dyn Fn(&str) -> bool,
    s: &mut Samples,
) -> Result<(), BenchError> {
    let say = |what: &str| {
        if options.verbose {
            eprintln!("  daemon: {what}");
        }
    };
    let n = sizes.waiting;
    if wants("daemon-http") {
        let raw_events = n.min(200_000);
        for (group, into) in [(100, &mut s.raw_100), (200, &mut s.raw_200)] {
            let raw = dir.join(format!("raw{group}"));
            std::fs::create_dir_all(&raw).map_err(io)?;
            // The sizes of the daemon's own writes for these carts (the `daemon-disk`
            // section's live bytes: a ~60 B packed state, ~3 B of history chunk per record).
            let seconds = crate::store::sled::raw_ceiling(&raw, raw_events, group, 60, 3 * group)
                .map_err(|e| BenchError(e.to_string()))?;
            into.push(raw_events as f64 / seconds.max(1e-9));
            let _ = std::fs::remove_dir_all(&raw);
        }
    }
    let now = chrono::Utc::now().timestamp();
    if ["daemon-http", "daemon-disk", "daemon-cold", "daemon-jump"]
        .iter()
        .any(|w| wants(w))
    {
        let store = dir.join("store-a");
        // Every cart a new contact starting `abandoned_cart`: one waiting instance and its
        // `wait 1h` timer each.
        say(&format!("{n} carts over HTTP"));
        let daemon = Daemon::start(binary, project, &store, dir, "a", 0)?;
        let cart = |i: usize| cart_json(&format!("u{i}"), now, i);
        let (seconds, mut latencies) = post_all(&daemon.addr, &cart, n, BATCH, CLIENTS, None)?;
        latencies.sort();
        s.http_rate.push(n as f64 / seconds.max(1e-9));
        s.http_p50.push(ms(percentile(&latencies, 0.5)));
        s.http_p99.push(ms(percentile(&latencies, 0.99)));
        s.http_records
            .push(metric(&daemon.addr, "flowc_events_in_total")?);
        let commits = metric(&daemon.addr, "flowc_commit_latency_seconds_count")?;
        let sum = metric(&daemon.addr, "flowc_commit_latency_seconds_sum")?;
        s.http_commit.push(sum / commits.max(1.0) * 1000.0);
        daemon.stop()?;
        let bytes = dir_bytes(&store);
        s.disk_per_instance.push(bytes as f64 / n as f64);
        let usage =
            crate::store::sled::space_by_kind(&store).map_err(|e| BenchError(e.to_string()))?;
        let mut waiting_instances = 0;
        let keys: u64 = usage.iter().map(|k| k.entries).sum();
        s.keys_per_instance.push(keys as f64 / n as f64);
        for kind in usage {
            if kind.name == "contact" {
                waiting_instances = kind.entries;
            }
            let per = (kind.key_bytes + kind.value_bytes) as f64 / n as f64;
            match s.kinds.iter_mut().find(|(k, _)| *k == kind.name) {
                Some((_, v)) => v.push(per),
                None => s.kinds.push((kind.name.to_string(), vec![per])),
            }
        }
        s.waiting.push(waiting_instances as f64);
        if wants("daemon-cold") {
            say("cold start");
            let started = Clock::now();
            let daemon = Daemon::start(binary, project, &store, dir, "cold", 0)?;
            s.cold.push(ms(daemon.ready_after.max(started.elapsed())));
            daemon.stop()?;
        }
        if wants("daemon-jump") {
            say("1-hour jump");
            // The carts' timers are due at now + 1h: a daemon whose clock is 1h 2 min ahead
            // finds every one of them due at start.
            let daemon = Daemon::start(binary, project, &store, dir, "jump", 3600 + 120)?;
            let began = Clock::now();
            let fired = wait_for(&daemon.addr, "flowc_timers_fired_total", n as f64)?;
            s.jump_rate
                .push(fired / began.elapsed().as_secs_f64().max(1e-9));
            s.jump_fired.push(fired);
            daemon.stop()?;
        }
        let _ = std::fs::remove_dir_all(&store);
    }
    if ["daemon-ingest-timers", "daemon-latency", "daemon-reload"]
        .iter()
        .any(|w| wants(w))
    {
        let store = dir.join("store-b");
        let daemon = Daemon::start(binary, project, &store, dir, "b", 0)?;
        if wants("daemon-ingest-timers") {
            // Carts of two hours ago: their `wait 1h` is due as soon as they are applied.
            say(&format!("{} late carts", sizes.late));
            let before = metric(&daemon.addr, "flowc_timers_fired_total")?;
            let late = |i: usize| cart_json(&format!("t{i}"), now - 7200, i);
            let began = Clock::now();
            post_all(&daemon.addr, &late, sizes.late, BATCH, CLIENTS, None)?;
            let fired = wait_for(
                &daemon.addr,
                "flowc_timers_fired_total",
                before + sizes.late as f64,
            )? - before;
            s.late_rate
                .push(fired / began.elapsed().as_secs_f64().max(1e-9));
            s.late_fired.push(fired);
        }
        if wants("daemon-latency") {
            say(&format!("{} orders at 10,000/s", sizes.steady));
            // On a quiet daemon: the sends of the timers above dispatched first.
            wait_for_zero(&daemon.addr, "flowc_outbox_depth")?;
            let floor = dir.join("floor");
            std::fs::create_dir_all(&floor).map_err(io)?;
            let per = crate::store::sled::fsync_floor(&floor, 200)
                .map_err(|e| BenchError(e.to_string()))?;
            s.fsync_floor.push(per * 1000.0);
            let before = metric(&daemon.addr, "flowc_events_in_total")?;
            let order = |i: usize| order_json(&format!("o{i}"), now, i);
            // 40 connections, each 5 records every 20 ms: 10,000 events/s offered while a
            // batch's answer takes under 20 ms. A batch is answered after the commit that
            // holds its records and their outbox entries (`receipt` is decided at once).
            let (seconds, mut latencies) = post_all(
                &daemon.addr,
                &order,
                sizes.steady,
                5,
                40,
                Some(Duration::from_millis(20)),
            )?;
            latencies.sort();
            s.steady_rate.push(sizes.steady as f64 / seconds.max(1e-9));
            s.steady_p50.push(ms(percentile(&latencies, 0.5)));
            s.steady_p99.push(ms(percentile(&latencies, 0.99)));
            s.steady_records
                .push(metric(&daemon.addr, "flowc_events_in_total")? - before);
        }
        if wants("daemon-reload") {
            say("hot reload");
            s.reload.push(reload_once(&daemon, project)?);
        }
        daemon.stop()?;
        let _ = std::fs::remove_dir_all(&store);
    }
    Ok(())
}

/// Writes an edited flow file and waits until `/healthz` names a new version.
fn reload_once(daemon: &Daemon, project: &Path) -> Result<f64, BenchError> {
    let before = healthz_version(&daemon.addr)?;
    let file = project.join("flows/shop.flow");
    let text = std::fs::read_to_string(&file).map_err(io)?;
    let edited = if text.contains("    wait 3d\n") {
        text.replace("    wait 3d\n", "    wait 4d\n")
    } else {
        text.replace("    wait 4d\n", "    wait 3d\n")
    };
    let began = Clock::now();
    std::fs::write(&file, edited).map_err(io)?;
    let deadline = began + Duration::from_secs(30);
    loop {
        if healthz_version(&daemon.addr)? != before {
            return Ok(ms(began.elapsed()));
        }
        if Clock::now() > deadline {
            return Err(BenchError(format!(
                "the edited flow was not live after 30 s (see {})",
                daemon.log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn cart_json(contact: &str, time: i64, i: usize) -> String {
    format!(
        "{{\"type\":\"track\",\"userId\":\"{contact}\",\"event\":\"Cart Abandoned\",\"timestamp\":\"{}\",\"messageId\":\"{contact}\",\"properties\":{{\"cart_url\":\"https://s/{i}\"}}}}",
        stamp(time)
    )
}

fn order_json(contact: &str, time: i64, i: usize) -> String {
    format!(
        "{{\"type\":\"track\",\"userId\":\"{contact}\",\"event\":\"Order Completed\",\"timestamp\":\"{}\",\"messageId\":\"{contact}\",\"properties\":{{\"order_id\":\"{i}\"}}}}",
        stamp(time)
    )
}

fn stamp(time: i64) -> String {
    chrono::DateTime::from_timestamp(time, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn io(e: std::io::Error) -> BenchError {
    BenchError(e.to_string())
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn dir_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), BenchError> {
    for entry in walkdir::WalkDir::new(from)
        .into_iter()
        .filter_map(Result::ok)
    {
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).map_err(io)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(io)?;
        }
    }
    Ok(())
}

/// One `flowc run` child process.
struct Daemon {
    child: Child,
    addr: String,
    log: PathBuf,
    /// From spawning the process to the first `/healthz` answer.
    ready_after: Duration,
}

impl Daemon {
    fn start(
        binary: &Path,
        project: &Path,
        store: &Path,
        dir: &Path,
        name: &str,
        clock_offset: i64,
    ) -> Result<Daemon, BenchError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(io)?;
        let addr = format!("127.0.0.1:{port}");
        let log = dir.join(format!("daemon-{name}.log"));
        let started = Clock::now();
        let mut child = Command::new(binary)
            .arg("run")
            .arg(project)
            .arg("--listen")
            .arg(&addr)
            .arg("--data")
            .arg(store)
            .arg("--dry-run")
            .arg(dir.join(format!("dry-{name}.jsonl")))
            .env("FLOWC_LOG", "warn")
            .env("FLOWC_CLOCK_OFFSET_SECONDS", clock_offset.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(io)?)
            .spawn()
            .map_err(|e| BenchError(format!("{}: {e}", binary.display())))?;
        let deadline = started + Duration::from_secs(120);
        loop {
            if get(&addr, "/healthz").is_ok_and(|(status, _)| status == 200) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(BenchError(format!(
                    "`flowc run` exited ({status}):\n{text}"
                )));
            }
            if Clock::now() > deadline {
                let _ = child.kill();
                return Err(BenchError("`flowc run` did not answer within 120 s".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(Daemon {
            child,
            addr,
            log,
            ready_after: started.elapsed(),
        })
    }

    /// SIGTERM (a graceful drain), then SIGKILL after 60 s.
    fn stop(mut self) -> Result<(), BenchError> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Clock::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            if Clock::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls a metric until it reaches `target` (at most 10 minutes); its last value.
fn wait_for(addr: &str, name: &str, target: f64) -> Result<f64, BenchError> {
    let deadline = Clock::now() + Duration::from_secs(600);
    loop {
        let v = metric(addr, name)?;
        if v >= target {
            return Ok(v);
        }
        if Clock::now() > deadline {
            return Err(BenchError(format!("{name} stayed at {v} (< {target})")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls a gauge until it is 0 (at most 10 minutes).
fn wait_for_zero(addr: &str, name: &str) -> Result<(), BenchError> {
    let deadline = Clock::now() + Duration::from_secs(600);
    loop {
        let v = metric(addr, name)?;
        if v == 0.0 {
            return Ok(());
        }
        if Clock::now() > deadline {
            return Err(BenchError(format!("{name} stayed at {v}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn healthz_version(addr: &str) -> Result<String, BenchError> {
    let (_, body) = get(addr, "/healthz").map_err(io)?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| BenchError(format!("/healthz: {e}")))?;
    Ok(v["version"].as_str().unwrap_or_default().to_string())
}

fn metric(addr: &str, name: &str) -> Result<f64, BenchError> {
    let (_, body) = get(addr, "/metrics").map_err(io)?;
    let text = String::from_utf8_lossy(&body);
    Ok(text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

fn get(addr: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut conn = Connection::open(addr)?;
    conn.request("GET", path, b"")
}

/// Posts records `0..events` in batches of `batch` over `clients` connections; with `pace`,
/// each connection sends one batch per `pace`. The seconds, and each batch's latency.
fn post_all(
    addr: &str,
    record: &(dyn Fn(usize) -> String + Sync),
    events: usize,
    batch: usize,
    clients: usize,
    pace: Option<Duration>,
) -> Result<(f64, Vec<Duration>), BenchError> {
    let batches = events / batch;
    let started = Clock::now();
    let latencies: Result<Vec<Vec<Duration>>, BenchError> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || -> Result<Vec<Duration>, BenchError> {
                    let mut conn = Connection::open(addr).map_err(io)?;
                    let mut latencies = Vec::new();
                    let mut next = Clock::now();
                    for b in (c..batches).step_by(clients) {
                        if let Some(p) = pace {
                            let now = Clock::now();
                            if next > now {
                                std::thread::sleep(next - now);
                            }
                            next += p;
                        }
                        let records: Vec<String> =
                            (0..batch).map(|i| record(b * batch + i)).collect();
                        let body = format!("{{\"batch\":[{}]}}", records.join(","));
                        let t = Clock::now();
                        let (status, answer) = conn
                            .request("POST", "/v1/batch", body.as_bytes())
                            .map_err(io)?;
                        if status != 200 {
                            return Err(BenchError(format!(
                                "/v1/batch answered {status}: {}",
                                String::from_utf8_lossy(&answer)
                            )));
                        }
                        latencies.push(t.elapsed());
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError("a client panicked".into())))
            })
            .collect()
    });
    let latencies = latencies?.into_iter().flatten().collect();
    Ok((started.elapsed().as_secs_f64(), latencies))
}

/// One keep-alive HTTP/1.1 connection (enough HTTP for the daemon's answers).
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

impl Connection {
    fn open(addr: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Connection {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            host: addr.to_string(),
        })
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.writer.write_all(head.as_bytes())?;
        self.writer.write_all(body)?;
        let mut status = 0;
        let mut length = 0;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            if status == 0 {
                status = line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                continue;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut answer = vec![0; length];
        self.reader.read_exact(&mut answer)?;
        Ok((status, answer))
    }
}
