//! The benchmark workload: synthetic shop traffic, deterministic by seed.
//!
//! Owns: a generator of contacts and their Segment records with shop-like distributions
//! (many page and product views, fewer carts, fewer orders, shipments that follow orders with
//! the same `order_id`, opens and clicks of emails, sign-ups and confirmations, identifies with
//! traits, consent and one of several timezones, a few later consent changes and
//! unsubscribes), streamed in timestamp order so that a million contacts need no more memory
//! than their generator states; and the same records written as JSON Lines for
//! `flowc simulate`.
//! Must not: read the clock, use randomness other than its seeded generator, or know anything
//! about the engine beyond the [`Record`] type.

use crate::engine::time::{self, Instant};
use crate::events::{Record, RecordKind};
use serde_json::{Map, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub contacts: usize,
    /// Same seed, same records, byte for byte.
    pub seed: u64,
    /// Length of the traffic, from 2026-01-05T00:00:00Z.
    pub days: u32,
    /// Mean number of visits per contact over `days` (each visit is a few records).
    pub visits_per_contact: u32,
}

impl Workload {
    /// The default shape at `contacts` contacts: 90 days, 3 visits each on average (about 11
    /// records per contact).
    pub fn shop(contacts: usize, seed: u64) -> Workload {
        Workload {
            contacts,
            seed,
            days: 90,
            visits_per_contact: 3,
        }
    }

    /// The first instant of the traffic.
    pub fn start(&self) -> Instant {
        time::parse_instant("2026-01-05T00:00:00Z").unwrap_or(1_767_571_200)
    }

    /// The records in timestamp order (ties in contact order), with `line` numbered from 1.
    pub fn records(&self) -> Records {
        Records::new(*self)
    }
}

/// The timezones contacts are spread over (the last one is unknown to the tz database only in
/// name: `UTC` is valid).
pub const TIMEZONES: [&str; 5] = [
    "Europe/Madrid",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/London",
    "UTC",
];

/// A small, fast, seeded generator (SplitMix64).
#[derive(Debug, Clone, Copy)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        rng.next();
        rng
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What a queued item of a contact becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Identify,
    /// A later identify that changes consent.
    ConsentChange,
    Visit,
    Page,
    Event(Event),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    ProductViewed,
    CartAbandoned,
    OrderCompleted(u32),
    OrderShipped(u32),
    EspressoBought,
    SignedUp,
    EmailConfirmed,
    EmailOpened,
    EmailClicked,
    Unsubscribed,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::ProductViewed => "Product Viewed",
            Event::CartAbandoned => "Cart Abandoned",
            Event::OrderCompleted(_) => "Order Completed",
            Event::OrderShipped(_) => "Order Shipped",
            Event::EspressoBought => "Espresso Bought",
            Event::SignedUp => "Signed Up",
            Event::EmailConfirmed => "Email Confirmed",
            Event::EmailOpened => "Email Opened",
            Event::EmailClicked => "Email Clicked",
            Event::Unsubscribed => "Unsubscribed",
        }
    }
}

/// One contact's generator: its random stream and its queued items, sorted by time.
#[derive(Debug)]
struct ContactGen {
    rng: Rng,
    queue: Vec<(Instant, Item)>,
    visits_left: u32,
    orders: u32,
    messages: u32,
}

impl ContactGen {
    fn push(&mut self, at: Instant, item: Item) {
        let position = self.queue.partition_point(|(t, _)| *t <= at);
        self.queue.insert(position, (at, item));
    }
}

/// The record stream of a [`Workload`].
#[derive(Debug)]
pub struct Records {
    workload: Workload,
    start: Instant,
    end: Instant,
    contacts: Vec<ContactGen>,
    heap: BinaryHeap<Reverse<(Instant, u32)>>,
    line: usize,
    /// `page` records are generated (they are in real files) but are not records of the
    /// engine; [`Records::next`] skips them, [`write_jsonl`] writes them.
    with_pages: bool,
}

impl Records {
    fn new(workload: Workload) -> Records {
        let start = workload.start();
        let end = start + i64::from(workload.days.max(1)) * 86_400;
        let mut contacts = Vec::with_capacity(workload.contacts);
        let mut heap = BinaryHeap::with_capacity(workload.contacts);
        for c in 0..workload.contacts {
            let mut rng = Rng::new(workload.seed.wrapping_mul(0x1000_0000_01b3) ^ c as u64);
            // Visits: a heavy tail (most contacts visit a few times, some often).
            let mean = u64::from(workload.visits_per_contact.max(1));
            let visits = match rng.below(10) {
                0..=5 => 1 + rng.below(mean),
                6..=8 => 1 + rng.below(2 * mean + 1),
                _ => 1 + rng.below(6 * mean + 1),
            } as u32;
            let first = start + rng.below((end - start) as u64 / 2) as i64;
            let mut generator = ContactGen {
                rng,
                queue: Vec::with_capacity(8),
                visits_left: visits,
                orders: 0,
                messages: 0,
            };
            generator.push(first, Item::Identify);
            generator.push(first + 60, Item::Visit);
            heap.push(Reverse((first, c as u32)));
            contacts.push(generator);
        }
        Records {
            workload,
            start,
            end,
            contacts,
            heap,
            line: 0,
            with_pages: false,
        }
    }

    /// The next item in time order, as JSON-ready parts: (time, contact, item).
    fn next_item(&mut self) -> Option<(Instant, u32, Item)> {
        loop {
            let Reverse((at, c)) = self.heap.pop()?;
            let end = self.end;
            let generator = &mut self.contacts[c as usize];
            if generator.queue.is_empty() {
                continue;
            }
            let (t, item) = generator.queue.remove(0);
            debug_assert_eq!(t, at);
            if item == Item::Visit {
                expand_visit(generator, t, end);
            }
            if let Some((next, _)) = generator.queue.first() {
                self.heap.push(Reverse((*next, c)));
            }
            if item == Item::Visit {
                continue;
            }
            if item == Item::Page && !self.with_pages {
                continue;
            }
            return Some((t, c, item));
        }
    }

    fn record(&mut self, at: Instant, c: u32, item: Item) -> Option<Record> {
        self.line += 1;
        let id = contact_id(c);
        let generator = &mut self.contacts[c as usize];
        let rng = &mut generator.rng;
        let (kind, event, traits, properties) = match item {
            Item::Identify => (
                RecordKind::Identify,
                String::new(),
                traits(c, rng),
                Map::new(),
            ),
            Item::ConsentChange => {
                let mut traits = Map::new();
                let mut consent = Map::new();
                consent.insert("email".into(), Value::Bool(rng.chance(50)));
                traits.insert("consent".into(), Value::Object(consent));
                (RecordKind::Identify, String::new(), traits, Map::new())
            }
            Item::Visit | Item::Page => return None,
            Item::Event(e) => {
                let mut properties = Map::new();
                match e {
                    Event::ProductViewed => {
                        let product = rng.below(500);
                        properties.insert("product_id".into(), Value::from(format!("p{product}")));
                        properties.insert("price".into(), Value::from(5 + (product % 60) as i64));
                    }
                    Event::CartAbandoned => {
                        properties.insert(
                            "cart_url".into(),
                            Value::from(format!("https://shop.example/cart/{c}")),
                        );
                        properties.insert("total".into(), Value::from(price(rng)));
                    }
                    Event::OrderCompleted(order) | Event::OrderShipped(order) => {
                        properties.insert("order_id".into(), Value::from(format!("o{c}-{order}")));
                        if matches!(e, Event::OrderCompleted(_)) {
                            properties.insert("total".into(), Value::from(price(rng)));
                        }
                    }
                    Event::EmailOpened | Event::EmailClicked => {
                        properties.insert("flow".into(), Value::from("abandoned_cart"));
                        properties.insert("message".into(), Value::from("cart_reminder"));
                    }
                    Event::Unsubscribed => {
                        properties.insert("channel".into(), Value::from("email"));
                    }
                    Event::EspressoBought | Event::SignedUp | Event::EmailConfirmed => {}
                }
                (
                    RecordKind::Track,
                    crate::compile::normalize_event_name(e.name()),
                    Map::new(),
                    properties,
                )
            }
        };
        let message_id = (kind == RecordKind::Track).then(|| {
            generator.messages += 1;
            format!("m{c}-{}", generator.messages)
        });
        Some(Record {
            line: self.line,
            kind,
            contact: id,
            time: at,
            nanos: 0,
            message_id,
            event,
            traits,
            properties,
        })
    }
}

impl Iterator for Records {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        loop {
            let (at, c, item) = self.next_item()?;
            if let Some(record) = self.record(at, c, item) {
                return Some(record);
            }
        }
    }
}

/// `c42`.
pub fn contact_id(c: u32) -> String {
    format!("c{c}")
}

fn price(rng: &mut Rng) -> f64 {
    // Mostly small baskets, some large ones (so that `sum(order_completed.total within
    // 365d) > 500` makes a few VIPs).
    let cents = match rng.below(10) {
        0..=6 => 1_000 + rng.below(6_000),
        7..=8 => 5_000 + rng.below(15_000),
        _ => 15_000 + rng.below(45_000),
    };
    cents as f64 / 100.0
}

fn traits(c: u32, rng: &mut Rng) -> Map<String, Value> {
    let mut traits = Map::new();
    if rng.chance(95) {
        traits.insert("email".into(), Value::from(format!("c{c}@example.com")));
    }
    if rng.chance(30) {
        traits.insert("phone".into(), Value::from(format!("+3460{c:07}")));
    }
    if rng.chance(25) {
        traits.insert("push_token".into(), Value::from(format!("tok-{c}")));
    }
    traits.insert(
        "first_name".into(),
        Value::from(["Ana", "Ben", "Chloé", "Dev", "Emi"][(c % 5) as usize]),
    );
    let zone = match rng.below(100) {
        0..=39 => 0,
        40..=69 => 1,
        70..=79 => 2,
        80..=94 => 3,
        _ => 4,
    };
    traits.insert("timezone".into(), Value::from(TIMEZONES[zone]));
    if rng.chance(70) {
        traits.insert(
            "birthday".into(),
            Value::from(format!(
                "19{:02}-{:02}-{:02}",
                50 + rng.below(50),
                1 + rng.below(12),
                1 + rng.below(28)
            )),
        );
    }
    let mut consent = Map::new();
    consent.insert("email".into(), Value::Bool(rng.chance(80)));
    consent.insert("sms".into(), Value::Bool(rng.chance(40)));
    consent.insert("push".into(), Value::Bool(rng.chance(60)));
    traits.insert("consent".into(), Value::Object(consent));
    traits
}

/// A visit: a page view, product views, maybe a cart, maybe an order (and later its
/// shipment), maybe opens and clicks; the first visit may sign the contact up. Queues the
/// next visit while the contact has visits left.
fn expand_visit(generator: &mut ContactGen, at: Instant, end: Instant) {
    let first = generator.orders == 0 && generator.messages == 0;
    let rng = &mut generator.rng;
    let mut t = at;
    let mut items: Vec<(Instant, Item)> = Vec::with_capacity(8);
    fn step(t: &mut Instant, rng: &mut Rng) -> Instant {
        *t += 20 + rng.below(240) as i64;
        *t
    }
    items.push((step(&mut t, rng), Item::Page));
    if first && rng.chance(30) {
        items.push((step(&mut t, rng), Item::Event(Event::SignedUp)));
        if rng.chance(70) {
            let confirm = t + 60 + rng.below(3 * 3600) as i64;
            items.push((confirm, Item::Event(Event::EmailConfirmed)));
        }
    }
    let views = 1 + rng.below(5);
    for _ in 0..views {
        items.push((step(&mut t, rng), Item::Event(Event::ProductViewed)));
    }
    if rng.chance(8) {
        items.push((step(&mut t, rng), Item::Event(Event::EspressoBought)));
    }
    if rng.chance(30) {
        items.push((step(&mut t, rng), Item::Event(Event::CartAbandoned)));
        if rng.chance(40) {
            let order = generator.orders;
            generator.orders += 1;
            let rng = &mut generator.rng;
            let placed = t + 300 + rng.below(2 * 3600) as i64;
            items.push((placed, Item::Event(Event::OrderCompleted(order))));
            if rng.chance(90) {
                let shipped = placed + 86_400 + rng.below(4 * 86_400) as i64;
                items.push((shipped, Item::Event(Event::OrderShipped(order))));
            }
        }
    }
    let rng = &mut generator.rng;
    if rng.chance(25) {
        let opened = at + 3600 + rng.below(3 * 86_400) as i64;
        items.push((opened, Item::Event(Event::EmailOpened)));
        if rng.chance(30) {
            items.push((opened + 30, Item::Event(Event::EmailClicked)));
        }
    }
    if rng.chance(3) {
        items.push((at + rng.below(86_400) as i64, Item::ConsentChange));
    }
    if rng.chance(1) {
        items.push((at + 86_400, Item::Event(Event::Unsubscribed)));
    }
    generator.visits_left = generator.visits_left.saturating_sub(1);
    if generator.visits_left > 0 {
        let rng = &mut generator.rng;
        let gap = 86_400 + rng.below(21 * 86_400) as i64;
        let next = at + gap;
        if next < end {
            generator.push(next, Item::Visit);
        }
    }
    for (t, item) in items {
        generator.push(t, item);
    }
}

/// Writes the workload as JSON Lines (page records included, as a real export has them);
/// returns the number of lines. The text is formatted by hand, field by field, in the order
/// Segment libraries send them.
pub fn write_jsonl(workload: &Workload, out: &mut impl Write) -> std::io::Result<usize> {
    let mut records = Records::new(*workload);
    records.with_pages = true;
    let mut lines = 0;
    let mut line = String::with_capacity(512);
    while let Some((at, c, item)) = records.next_item() {
        line.clear();
        if item == Item::Page {
            records.line += 1;
            // Not from the contact's random stream: with or without pages, the same records.
            let page = (at as u64 ^ u64::from(c)) % 40;
            line.push_str(&format!(
                "{{\"type\":\"page\",\"userId\":\"c{c}\",\"name\":\"p{page}\",\"timestamp\":\"{}\",\"properties\":{{\"path\":\"/p/{page}\"}}}}",
                time::format_instant(at)
            ));
        } else {
            let Some(record) = records.record(at, c, item) else {
                continue;
            };
            line.push_str(&record_json(&record, item));
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        lines += 1;
    }
    let _ = records.start;
    let _ = records.workload;
    Ok(lines)
}

/// One record as a Segment JSON object.
fn record_json(record: &Record, item: Item) -> String {
    let mut object = Map::new();
    match record.kind {
        RecordKind::Identify => {
            object.insert("type".into(), Value::from("identify"));
        }
        RecordKind::Track => {
            object.insert("type".into(), Value::from("track"));
        }
    }
    object.insert("userId".into(), Value::from(record.contact.clone()));
    if let Item::Event(e) = item {
        object.insert("event".into(), Value::from(e.name()));
    }
    object.insert(
        "timestamp".into(),
        Value::from(time::format_instant(record.time)),
    );
    if let Some(id) = &record.message_id {
        object.insert("messageId".into(), Value::from(id.clone()));
    }
    if !record.traits.is_empty() {
        object.insert("traits".into(), Value::Object(record.traits.clone()));
    }
    if !record.properties.is_empty() {
        object.insert(
            "properties".into(),
            Value::Object(record.properties.clone()),
        );
    }
    Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_records_in_time_order() {
        let workload = Workload::shop(200, 7);
        let a: Vec<Record> = workload.records().collect();
        let b: Vec<Record> = workload.records().collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].time <= w[1].time));
        assert!(a.len() > 200 * 4, "{}", a.len());
        let other: Vec<Record> = Workload::shop(200, 8).records().collect();
        assert_ne!(a, other);
    }

    #[test]
    fn jsonl_parses_back_to_the_same_records() {
        let workload = Workload::shop(100, 3);
        let mut text = Vec::new();
        let lines = write_jsonl(&workload, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(lines, text.lines().count());
        let parsed = crate::events::parse_jsonl(&text).unwrap();
        let generated: Vec<Record> = workload.records().collect();
        assert_eq!(parsed.len(), generated.len());
        for (p, g) in parsed.iter().zip(&generated) {
            assert_eq!(
                (
                    &p.contact,
                    p.time,
                    &p.event,
                    &p.traits,
                    &p.properties,
                    &p.message_id
                ),
                (
                    &g.contact,
                    g.time,
                    &g.event,
                    &g.traits,
                    &g.properties,
                    &g.message_id
                )
            );
        }
    }

    #[test]
    fn the_mix_is_shop_like() {
        let records: Vec<Record> = Workload::shop(2_000, 1).records().collect();
        let count = |name: &str| records.iter().filter(|r| r.event == name).count();
        let views = count("product_viewed");
        let carts = count("cart_abandoned");
        let orders = count("order_completed");
        assert!(views > 3 * carts && carts > orders && orders > 0);
        assert!(count("email_opened") > count("email_clicked"));
        assert!(records.iter().any(|r| r.kind == RecordKind::Identify));
    }
}
