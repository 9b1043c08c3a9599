//! Engine benchmark: records through the in-memory engine for many contacts and the ten flows
//! of `tests/engine/bench/flows/shop.flow`, over a year of virtual time.
//!
//! `cargo run --release --example engine_bench -- [CONTACTS] [EVENTS_PER_CONTACT]`
//! Prints events/s, deliveries, and the serialised size of contact states.

use flowc::config::Config;
use flowc::events::{Record, RecordKind};
use flowc::project::Project;
use flowc::simulate::{self, SimulateOptions};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let contacts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let per_contact: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engine/bench");
    let project = Project::load(&root).expect("bench project");
    assert!(project.diagnostics.is_empty(), "{:?}", project.diagnostics);
    let compiled = flowc::compile::compile(&project, &Config::default()).expect("compile");

    let start = flowc::engine::time::parse_instant("2026-01-01T00:00:00Z").expect("start");
    let year = 365 * 86_400;
    let events = [
        "product_viewed",
        "cart_abandoned",
        "order_completed",
        "order_shipped",
        "espresso_bought",
        "signed_up",
        "email_confirmed",
    ];
    let mut records = Vec::with_capacity(contacts * (per_contact + 1));
    let mut seed: u64 = 42;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for c in 0..contacts {
        let id = format!("c{c}");
        let mut traits = Map::new();
        traits.insert("email".into(), json!(format!("{id}@example.com")));
        traits.insert("consent".into(), json!({"email": true, "push": c % 2 == 0}));
        traits.insert(
            "timezone".into(),
            json!(["Europe/Madrid", "America/New_York", "Asia/Tokyo", "UTC"][c % 4]),
        );
        traits.insert(
            "birthday".into(),
            json!(format!(
                "19{:02}-{:02}-{:02}",
                50 + c % 50,
                1 + c % 12,
                1 + c % 28
            )),
        );
        if c % 3 == 0 {
            traits.insert("push_token".into(), json!("tok"));
        }
        records.push(Record {
            line: records.len() + 1,
            kind: RecordKind::Identify,
            contact: id.clone(),
            time: start + (next() % 86_400) as i64,
            nanos: 0,
            message_id: None,
            event: String::new(),
            traits,
            properties: Map::new(),
        });
        for i in 0..per_contact {
            let event = events[(next() % events.len() as u64) as usize];
            let mut properties = Map::new();
            properties.insert("order_id".into(), Value::from(format!("o{}", i / 2)));
            properties.insert("total".into(), Value::from((next() % 200) as f64));
            records.push(Record {
                line: records.len() + 1,
                kind: RecordKind::Track,
                contact: id.clone(),
                time: start + 86_400 + (next() % year as u64) as i64,
                nanos: 0,
                message_id: Some(format!("m{c}-{i}")),
                event: event.to_string(),
                traits: Map::new(),
                properties,
            });
        }
    }
    let total = records.len();
    // 1. Records only: every record through the engine, timers not fired.
    {
        let mut sorted = records.clone();
        flowc::events::sort_for_replay(&mut sorted);
        let engine = flowc::engine::Engine::new(&compiled, flowc::engine::Options::default());
        let mut store = flowc::store::MemoryStore::new();
        let mut out = flowc::engine::Outcome::default();
        let began = Instant::now();
        for record in &sorted {
            use flowc::store::Store;
            let _ = store.update(&record.contact, |state| {
                engine.apply(
                    &record.contact,
                    state,
                    flowc::engine::Input::Record(record),
                    record.time,
                    &mut out,
                )
            });
            if out.deliveries.len() > 100_000 {
                out.deliveries.clear();
            }
        }
        let elapsed = began.elapsed().as_secs_f64();
        println!(
            "records only: {total} in {elapsed:.2}s: {:.0} events/s",
            total as f64 / elapsed
        );
    }
    if std::env::var_os("BENCH_RECORDS_ONLY").is_some() {
        return;
    }
    // 2. A year of virtual time: records, timers, daily ticks.
    let until = start + year + 86_400 * 30;
    let began = Instant::now();
    let sim = simulate::run(
        &compiled,
        records,
        &SimulateOptions {
            until: Some(until),
            ..Default::default()
        },
    );
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "contacts: {contacts}, records: {total}, flows: {}",
        compiled.flows.len()
    );
    println!(
        "simulated a year in {elapsed:.2}s: {:.0} records/s (timers and ticks included)",
        total as f64 / elapsed
    );
    println!(
        "deliveries: {}, entries: {}, conversions: {}",
        sim.deliveries.len(),
        sim.entries.len(),
        sim.conversions.len()
    );
    let mut sizes: Vec<usize> = sim
        .store
        .states()
        .map(|(_, s)| serde_json::to_vec(s).map_or(0, |v| v.len()))
        .collect();
    sizes.sort_unstable();
    let sum: usize = sizes.iter().sum();
    println!(
        "state size (JSON): mean {} B, median {} B, p99 {} B, max {} B",
        sum / sizes.len().max(1),
        sizes.get(sizes.len() / 2).copied().unwrap_or(0),
        sizes.get(sizes.len() * 99 / 100).copied().unwrap_or(0),
        sizes.last().copied().unwrap_or(0)
    );
    let waiting: Vec<usize> = sim
        .store
        .states()
        .flat_map(|(_, s)| {
            s.instances
                .iter()
                .map(|i| serde_json::to_vec(i).map_or(0, |v| v.len()))
        })
        .collect();
    if !waiting.is_empty() {
        println!(
            "waiting instances at the end: {}, mean {} B each (JSON)",
            waiting.len(),
            waiting.iter().sum::<usize>() / waiting.len()
        );
    }
}
