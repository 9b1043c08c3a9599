//! The benchmark suite behind `flowc-bench` (see docs/performance.md).
//!
//! Owns: the measured workloads (records through the in-memory engine; `flowc simulate` in
//! process and as the real binary; state and instance sizes; timers; growth with contacts,
//! flows and pending timers; parse + check of a generated project, [`check`]), the median of
//! several runs, and the table of figures.
//! Must not: change what the engine decides (it drives the same public API as `simulate`),
//! assert anything about time (CI runs `--quick` only to prove the suite works), or be used
//! by any command. It reads the wall clock, which is why it lives outside `engine`.
//!
//! The daemon's figures (HTTP ingestion, durable events/s, timers over sled, cold start,
//! reload) are [`daemon`]'s sections, run against the real binary when there is one.

pub mod check;
pub mod daemon;
pub mod workload;

use crate::compile::CompiledProject;
use crate::engine::{ContactState, Engine, Input, Instance, Options as EngineOptions, Outcome};
use crate::events::Record;
use crate::simulate::{self, SimulateOptions};
use crate::store::{MemoryStore, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant as Clock;
pub use workload::Workload;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The project (the ten shop flows of `tests/engine/bench`).
    pub project: PathBuf,
    /// Contacts for the engine, state and timer figures.
    pub sizes: Vec<usize>,
    /// Contacts for `flowc simulate` in process (the file is held in memory).
    pub simulate_sizes: Vec<usize>,
    /// Contacts for the real binary and for growth with flows.
    pub binary_size: usize,
    /// Copies of the flows for growth with flows (1 = the ten flows).
    pub flow_copies: Vec<usize>,
    /// Lines of the generated projects of the `check` section.
    pub check_lines: Vec<usize>,
    /// Runs per figure (the median is reported).
    pub runs: usize,
    pub seed: u64,
    /// The `flowc` binary for the end-to-end figure (`None`: skipped).
    pub flowc_binary: Option<PathBuf>,
    /// Live heap bytes, from a counting allocator in the binary (`None`: no RAM figures).
    pub allocated: Option<fn() -> u64>,
    /// Only sections whose name contains this.
    pub only: Option<String>,
    /// Print each figure as it is measured (to standard error).
    pub verbose: bool,
}

impl Options {
    /// The full suite: 10k / 100k / 1M contacts.
    pub fn full(project: PathBuf) -> Options {
        Options {
            project,
            sizes: vec![10_000, 100_000, 1_000_000],
            simulate_sizes: vec![10_000, 100_000, 300_000],
            binary_size: 100_000,
            flow_copies: vec![1, 2, 4],
            check_lines: vec![10_000, 40_000],
            runs: 3,
            seed: 42,
            flowc_binary: None,
            allocated: None,
            only: None,
            verbose: false,
        }
    }

    /// The smoke mode CI runs: every section on a few hundred contacts, one run.
    pub fn quick(project: PathBuf) -> Options {
        Options {
            sizes: vec![100, 200, 400],
            simulate_sizes: vec![100, 200, 400],
            binary_size: 200,
            flow_copies: vec![1, 2],
            check_lines: vec![500],
            runs: 1,
            ..Options::full(project)
        }
    }

    fn wants(&self, section: &str) -> bool {
        self.only.as_deref().map_or(true, |o| section.contains(o))
    }
}

/// One measured figure: the median of `samples`.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub section: &'static str,
    pub name: String,
    /// The size it was measured at (`10k contacts`).
    pub size: String,
    pub unit: &'static str,
    pub samples: Vec<f64>,
}

impl Figure {
    fn new(
        section: &'static str,
        name: impl Into<String>,
        size: impl Into<String>,
        unit: &'static str,
        samples: Vec<f64>,
    ) -> Figure {
        Figure {
            section,
            name: name.into(),
            size: size.into(),
            unit,
            samples,
        }
    }

    pub fn median(&self) -> f64 {
        median(&self.samples)
    }
}

/// Everything one run of the suite measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub figures: Vec<Figure>,
}

impl Report {
    /// The figures as a Markdown table (median, min–max, runs).
    pub fn table(&self) -> String {
        let mut text = String::from(
            "| section | figure | size | median | unit | min–max | runs |\n|---|---|---|---:|---|---|---:|\n",
        );
        for f in &self.figures {
            let (lo, hi) = f
                .samples
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(*v), hi.max(*v))
                });
            let spread = if f.samples.len() > 1 {
                format!("{}–{}", number(lo), number(hi))
            } else {
                String::new()
            };
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                f.section,
                f.name,
                f.size,
                number(f.median()),
                f.unit,
                spread,
                f.samples.len()
            ));
        }
        text
    }

    pub fn find(&self, name: &str, size: &str) -> Option<&Figure> {
        self.figures
            .iter()
            .find(|f| f.name == name && f.size == size)
    }
}

/// A failure that stops the suite (the project does not load, the binary fails).
#[derive(Debug, thiserror::Error)]
#[error("bench: {0}")]
pub struct BenchError(pub String);

/// Runs the suite.
pub fn run(options: &Options) -> Result<Report, BenchError> {
    let compiled = load(&options.project)?;
    let mut report = Report::default();
    let push = |report: &mut Report, figures: Vec<Figure>| {
        if options.verbose {
            for f in &figures {
                eprintln!(
                    "  {} {} [{}]: {} {}",
                    f.section,
                    f.name,
                    f.size,
                    number(f.median()),
                    f.unit
                );
            }
        }
        report.figures.extend(figures);
    };
    if options.wants("engine") {
        for &contacts in &options.sizes {
            push(&mut report, engine_section(&compiled, options, contacts));
        }
    }
    if options.wants("timers") {
        for &contacts in &options.sizes {
            push(&mut report, timers_section(&compiled, options, contacts));
        }
    }
    if options.wants("flows") {
        for &copies in &options.flow_copies {
            push(&mut report, flows_section(options, copies)?);
        }
    }
    if options.wants("simulate") {
        for &contacts in &options.simulate_sizes {
            push(&mut report, simulate_section(&compiled, options, contacts)?);
        }
    }
    if options.wants("binary") {
        if let Some(binary) = &options.flowc_binary {
            push(&mut report, binary_section(&compiled, options, binary)?);
        }
    }
    if options.wants("check") {
        for &lines in &options.check_lines {
            push(&mut report, check::section(options, lines)?);
        }
    }
    if let Some(binary) = &options.flowc_binary {
        daemon::run(options, binary, &mut |figures| push(&mut report, figures))?;
    }
    Ok(report)
}

fn load(root: &Path) -> Result<CompiledProject, BenchError> {
    let project = crate::project::Project::load(root)
        .map_err(|e| BenchError(format!("{}: {e}", root.display())))?;
    let config = crate::config::Config::load(&project.root).unwrap_or_default();
    let errors: Vec<String> = crate::check::check(&project)
        .iter()
        .filter(|d| d.severity == crate::diagnostic::Severity::Error)
        .map(|d| simulate::describe_diagnostic(&project, d))
        .collect();
    if !errors.is_empty() {
        return Err(BenchError(errors.join("\n")));
    }
    crate::compile::compile(&project, &config).map_err(|d| {
        BenchError(
            d.iter()
                .map(|d| simulate::describe_diagnostic(&project, d))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// `10k contacts`.
fn size_label(contacts: usize) -> String {
    let n = if contacts >= 1_000_000 && contacts % 1_000_000 == 0 {
        format!("{}M", contacts / 1_000_000)
    } else if contacts >= 1_000 && contacts % 1_000 == 0 {
        format!("{}k", contacts / 1_000)
    } else {
        contacts.to_string()
    };
    format!("{n} contacts")
}

/// `10k lines`.
fn size_label_lines(lines: usize) -> String {
    if lines >= 1_000 {
        format!("{:.1}k lines", lines as f64 / 1_000.0)
    } else {
        format!("{lines} lines")
    }
}

/// Records in chunks of this many are generated outside the timed loop.
const CHUNK: usize = 200_000;

/// One pass of records through the engine.
struct EngineRun {
    records: usize,
    seconds: f64,
    deliveries: usize,
    store: MemoryStore,
}

/// Every record of the workload through `MemoryStore::update` + `Engine::apply`, one by one
/// on one core, as the daemon applies them (each record first fires its contact's timers
/// due before it). Generation is not timed.
fn engine_pass(compiled: &CompiledProject, workload: &Workload) -> EngineRun {
    let engine = Engine::new(compiled, EngineOptions::default());
    let mut store = MemoryStore::new();
    let mut out = Outcome::default();
    let mut generator = workload.records();
    let mut chunk: Vec<Record> = Vec::with_capacity(CHUNK);
    let (mut records, mut seconds, mut deliveries) = (0, 0.0, 0);
    loop {
        chunk.clear();
        chunk.extend(generator.by_ref().take(CHUNK));
        if chunk.is_empty() {
            break;
        }
        let began = Clock::now();
        deliveries += apply_chunk(&engine, &mut store, &chunk, &mut out);
        seconds += began.elapsed().as_secs_f64();
        records += chunk.len();
    }
    deliveries += out.deliveries.len();
    EngineRun {
        records,
        seconds,
        deliveries,
        store,
    }
}

/// The timed loop of [`engine_pass`] (not inlined, so that `valgrind --tool=callgrind
/// --toggle-collect='*apply_chunk*'` counts exactly its instructions). Returns the
/// deliveries drained from `out`.
#[inline(never)]
pub fn apply_chunk(
    engine: &Engine<'_>,
    store: &mut MemoryStore,
    chunk: &[Record],
    out: &mut Outcome,
) -> usize {
    let mut drained = 0;
    for record in chunk {
        let _ = store.update(&record.contact, |state| {
            engine.apply(
                &record.contact,
                state,
                Input::Record(record),
                record.time,
                out,
            )
        });
        if out.deliveries.len() >= 100_000 {
            drained += out.deliveries.len();
            out.deliveries.clear();
            out.entries.clear();
            out.conversions.clear();
        }
    }
    drained
}

fn engine_section(compiled: &CompiledProject, options: &Options, contacts: usize) -> Vec<Figure> {
    let workload = Workload::shop(contacts, options.seed);
    let size = size_label(contacts);
    let mut rates = Vec::new();
    let mut last = None;
    for _ in 0..options.runs.max(1) {
        let run = engine_pass(compiled, &workload);
        rates.push(run.records as f64 / run.seconds.max(1e-9));
        last = Some(run);
    }
    let Some(run) = last else {
        return Vec::new();
    };
    let mut figures = vec![
        Figure::new(
            "engine",
            "records through the in-memory engine, one core",
            &size,
            "events/s",
            rates,
        ),
        Figure::new(
            "engine",
            "records in the workload",
            &size,
            "records",
            vec![run.records as f64],
        ),
        Figure::new(
            "engine",
            "delivery decisions",
            &size,
            "deliveries",
            vec![run.deliveries as f64],
        ),
    ];
    figures.extend(state_figures(&run.store, options, &size));
    figures
}

/// Sizes of contact states and of waiting instances, JSON-encoded and in memory.
fn state_figures(store: &MemoryStore, options: &Options, size: &str) -> Vec<Figure> {
    let mut json: Vec<f64> = Vec::new();
    let mut memory: Vec<f64> = Vec::new();
    let mut instance_json: Vec<f64> = Vec::new();
    let mut instance_memory: Vec<f64> = Vec::new();
    // Memory is measured by cloning (a lower bound: a clone has no spare capacity), on a
    // sample so that 1M contacts stay quick.
    let step = (store.states().count() / 20_000).max(1);
    for (index, (_, state)) in store.states().enumerate() {
        json.push(serde_json::to_vec(state).map_or(0, |v| v.len()) as f64);
        for instance in &state.instances {
            instance_json.push(serde_json::to_vec(instance).map_or(0, |v| v.len()) as f64);
        }
        if index % step != 0 {
            continue;
        }
        if let Some(allocated) = options.allocated {
            memory.push(heap_of(allocated, state) + std::mem::size_of::<ContactState>() as f64);
            for instance in &state.instances {
                instance_memory
                    .push(heap_of(allocated, instance) + std::mem::size_of::<Instance>() as f64);
            }
        }
    }
    let mut figures = vec![
        Figure::new(
            "state",
            "contact state, JSON, mean",
            size,
            "B",
            vec![mean(&json)],
        ),
        Figure::new(
            "state",
            "contact state, JSON, p99",
            size,
            "B",
            vec![percentile(&mut json, 0.99)],
        ),
    ];
    if !memory.is_empty() {
        figures.push(Figure::new(
            "state",
            "contact state, in memory, mean",
            size,
            "B",
            vec![mean(&memory)],
        ));
        figures.push(Figure::new(
            "state",
            "contact state, in memory, p99",
            size,
            "B",
            vec![percentile(&mut memory, 0.99)],
        ));
    }
    figures.push(Figure::new(
        "state",
        "waiting instances at the end",
        size,
        "instances",
        vec![instance_json.len() as f64],
    ));
    if !instance_json.is_empty() {
        figures.push(Figure::new(
            "state",
            "one waiting instance, JSON, mean",
            size,
            "B",
            vec![mean(&instance_json)],
        ));
    }
    if !instance_memory.is_empty() {
        figures.push(Figure::new(
            "state",
            "one waiting instance, in memory, mean",
            size,
            "B",
            vec![mean(&instance_memory)],
        ));
    }
    figures
}

/// Heap bytes a clone of `value` allocates.
fn heap_of<T: Clone>(allocated: fn() -> u64, value: &T) -> f64 {
    let before = allocated();
    let copy = value.clone();
    let after = allocated();
    drop(copy);
    after.saturating_sub(before) as f64
}

/// Every contact identifies and abandons a cart at about the same time (one waiting
/// instance each, due an hour later); then the clock jumps past the hour and every timer is
/// fired through the store's queue, as the daemon's timer loop does.
fn timers_section(compiled: &CompiledProject, options: &Options, contacts: usize) -> Vec<Figure> {
    let size = size_label(contacts);
    let start = Workload::shop(1, 0).start() + 10 * 3600;
    let engine = Engine::new(compiled, EngineOptions::default());
    let mut rates = Vec::new();
    let mut ram = Vec::new();
    let mut contact_ram = Vec::new();
    let mut fired_total = 0;
    for _ in 0..options.runs.max(1) {
        let mut store = MemoryStore::new();
        let mut out = Outcome::default();
        let identify = |c: usize| {
            let mut traits = serde_json::Map::new();
            traits.insert("email".into(), format!("c{c}@example.com").into());
            traits.insert("consent".into(), serde_json::json!({"email": true}));
            traits.insert("timezone".into(), "UTC".into());
            Record {
                line: c + 1,
                kind: crate::events::RecordKind::Identify,
                contact: workload::contact_id(c as u32),
                time: start + (c % 60) as i64,
                nanos: 0,
                message_id: None,
                event: String::new(),
                traits,
                properties: serde_json::Map::new(),
            }
        };
        let empty = options.allocated.map(|a| a());
        for c in 0..contacts {
            let record = identify(c);
            let _ = store.update(&record.contact, |state| {
                engine.apply(
                    &record.contact,
                    state,
                    Input::Record(&record),
                    record.time,
                    &mut out,
                )
            });
        }
        let before = options.allocated.map(|a| a());
        if let (Some(before), Some(empty)) = (before, empty) {
            contact_ram.push(before.saturating_sub(empty) as f64 / contacts.max(1) as f64);
        }
        for c in 0..contacts {
            let mut properties = serde_json::Map::new();
            properties.insert("total".into(), 42.5.into());
            properties.insert("cart_url".into(), "https://shop.example/cart/1".into());
            let record = Record {
                kind: crate::events::RecordKind::Track,
                event: "cart_abandoned".into(),
                traits: serde_json::Map::new(),
                properties,
                time: start + 60 + (c % 60) as i64,
                ..identify(c)
            };
            let _ = store.update(&record.contact, |state| {
                engine.apply(
                    &record.contact,
                    state,
                    Input::Record(&record),
                    record.time,
                    &mut out,
                )
            });
        }
        if let (Some(allocated), Some(before)) = (options.allocated, before) {
            ram.push(allocated().saturating_sub(before) as f64 / contacts.max(1) as f64);
        }
        out.deliveries.clear();
        // The jump: one hour and two minutes later, every cart timer is due.
        let now = start + 3600 + 180;
        let began = Clock::now();
        let mut fired = 0usize;
        while let Some((due, contact)) = store.next_due() {
            if due > now {
                break;
            }
            let _ = store.update(&contact, |state| {
                engine.apply(&contact, state, Input::Timers, now, &mut out)
            });
            fired += 1;
        }
        let seconds = began.elapsed().as_secs_f64();
        rates.push(fired as f64 / seconds.max(1e-9));
        fired_total = fired;
    }
    let mut figures = vec![
        Figure::new(
            "timers",
            "timers fired after a 1-hour jump, one core",
            &size,
            "timers/s",
            rates,
        ),
        Figure::new(
            "timers",
            "contacts whose timer fired",
            &size,
            "contacts",
            vec![fired_total as f64],
        ),
    ];
    if !ram.is_empty() {
        figures.push(Figure::new(
            "timers",
            "RAM added per waiting instance (store, queue, instance)",
            &size,
            "B",
            ram,
        ));
    }
    if !contact_ram.is_empty() {
        figures.push(Figure::new(
            "timers",
            "RAM per contact after its identify (state with 3 traits, id, index, store slot)",
            &size,
            "B",
            contact_ram,
        ));
    }
    figures
}

/// The engine figure with the flows copied `copies` times (10, 20, 40 flows).
fn flows_section(options: &Options, copies: usize) -> Result<Vec<Figure>, BenchError> {
    let compiled = if copies <= 1 {
        load(&options.project)?
    } else {
        let dir =
            std::env::temp_dir().join(format!("flowc-bench-flows-{}-{copies}", std::process::id()));
        let flows = dir.join("flows");
        std::fs::create_dir_all(&flows).map_err(|e| BenchError(e.to_string()))?;
        let source = options.project.join("flows/shop.flow");
        let text = std::fs::read_to_string(&source)
            .map_err(|e| BenchError(format!("{}: {e}", source.display())))?;
        let write = |name: &str, text: &str| {
            std::fs::write(flows.join(name), text).map_err(|e| BenchError(e.to_string()))
        };
        write("shop.flow", &text)?;
        let first_flow = text.find("\nflow ").unwrap_or(text.len());
        for copy in 2..=copies {
            let renamed: Vec<String> = text[first_flow..]
                .lines()
                .map(|line| match line.strip_prefix("flow ") {
                    Some(rest) => {
                        let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                        format!("flow {name}_{copy} {tail}")
                    }
                    None => line.to_string(),
                })
                .collect();
            write(&format!("copy{copy}.flow"), &renamed.join("\n"))?;
        }
        let compiled = load(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        compiled?
    };
    let contacts = options.binary_size;
    let workload = Workload::shop(contacts, options.seed);
    let mut rates = Vec::new();
    for _ in 0..options.runs.max(1) {
        let run = engine_pass(&compiled, &workload);
        rates.push(run.records as f64 / run.seconds.max(1e-9));
    }
    Ok(vec![Figure::new(
        "flows",
        format!("records through the engine, {} flows", compiled.flows.len()),
        size_label(contacts),
        "events/s",
        rates,
    )])
}

/// The workload as JSON Lines, in memory.
fn jsonl(workload: &Workload) -> Result<String, BenchError> {
    let mut bytes = Vec::new();
    workload::write_jsonl(workload, &mut bytes).map_err(|e| BenchError(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| BenchError(e.to_string()))
}

/// `flowc simulate` in process: parse and validate the JSON Lines text, run the virtual
/// clock (records, timers, daily ticks) until nothing is pending, format the delivery lines
/// into a buffer.
fn simulate_section(
    compiled: &CompiledProject,
    options: &Options,
    contacts: usize,
) -> Result<Vec<Figure>, BenchError> {
    let size = size_label(contacts);
    let text = jsonl(&Workload::shop(contacts, options.seed))?;
    let lines = text.lines().count();
    let (mut total, mut parse, mut engine, mut output) = (vec![], vec![], vec![], vec![]);
    let mut deliveries = 0;
    for _ in 0..options.runs.max(1) {
        let began = Clock::now();
        let mut records = simulate_parse(compiled, &text)?;
        let records_count = records.len();
        let parsed = Clock::now();
        let sim = simulate_run(compiled, &mut records);
        let ran = Clock::now();
        let sink = simulate_output(compiled, &sim);
        let written = Clock::now();
        drop(sink);
        deliveries = sim.deliveries.len();
        drop(sim);
        drop(records);
        let seconds = |a: Clock, b: Clock| (b - a).as_secs_f64().max(1e-9);
        total.push(lines as f64 / seconds(began, written));
        parse.push(lines as f64 / seconds(began, parsed));
        engine.push(records_count as f64 / seconds(parsed, ran));
        output.push(deliveries as f64 / seconds(ran, written));
    }
    Ok(vec![
        Figure::new(
            "simulate",
            "flowc simulate in process, JSON lines in → delivery lines out",
            &size,
            "lines/s",
            total,
        ),
        Figure::new(
            "simulate",
            "  of which parse + validate",
            &size,
            "lines/s",
            parse,
        ),
        Figure::new(
            "simulate",
            "  of which the virtual clock (records, timers, daily ticks)",
            &size,
            "records/s",
            engine,
        ),
        Figure::new(
            "simulate",
            "  of which delivery lines",
            &size,
            "lines/s",
            output,
        ),
        Figure::new(
            "simulate",
            "input lines (records + page views)",
            &size,
            "lines",
            vec![lines as f64],
        ),
        Figure::new(
            "simulate",
            "input size",
            &size,
            "MB",
            vec![text.len() as f64 / 1e6],
        ),
        Figure::new(
            "simulate",
            "delivery lines",
            &size,
            "lines",
            vec![deliveries as f64],
        ),
    ])
}

/// Phase 1 of `flowc simulate`: parse and validate (not inlined: a callgrind target).
#[inline(never)]
pub fn simulate_parse(compiled: &CompiledProject, text: &str) -> Result<Vec<Record>, BenchError> {
    let records =
        crate::events::parse_jsonl(text).map_err(|e| BenchError(format!("generated file: {e}")))?;
    for record in &records {
        crate::events::validate(record, &compiled.schemas)
            .map_err(|e| BenchError(format!("generated file: {e}")))?;
    }
    Ok(records)
}

/// Phase 2: the virtual clock, as `flowc simulate` runs it (the records sorted, then borrowed;
/// they are freed by the caller, outside the timed part, as the command leaves them to the
/// end of the process).
#[inline(never)]
pub fn simulate_run(compiled: &CompiledProject, records: &mut [Record]) -> simulate::Simulation {
    crate::events::sort_for_replay(records);
    simulate::run_in_order(compiled, records, &SimulateOptions::default())
}

/// Phase 3: the delivery lines, as `flowc simulate` writes them.
#[inline(never)]
pub fn simulate_output(compiled: &CompiledProject, sim: &simulate::Simulation) -> Vec<u8> {
    let mut sink: Vec<u8> = Vec::with_capacity(sim.deliveries.len() * 128);
    let _ = simulate::write_deliveries(compiled, sim, false, &mut sink);
    sink
}

/// The real binary on a generated file: `flowc simulate PROJECT --events FILE > FILE`.
fn binary_section(
    compiled: &CompiledProject,
    options: &Options,
    binary: &Path,
) -> Result<Vec<Figure>, BenchError> {
    let contacts = options.binary_size;
    let size = size_label(contacts);
    let workload = Workload::shop(contacts, options.seed);
    let dir = std::env::temp_dir().join(format!("flowc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| BenchError(e.to_string()))?;
    let events = dir.join("events.jsonl");
    let output = dir.join("deliveries.jsonl");
    let lines = {
        let file = std::fs::File::create(&events).map_err(|e| BenchError(e.to_string()))?;
        let mut writer = std::io::BufWriter::new(file);
        let lines =
            workload::write_jsonl(&workload, &mut writer).map_err(|e| BenchError(e.to_string()))?;
        writer.flush().map_err(|e| BenchError(e.to_string()))?;
        lines
    };
    let bytes = std::fs::metadata(&events).map_or(0, |m| m.len());
    let mut rates = Vec::new();
    let mut delivered = 0;
    for _ in 0..options.runs.max(1) {
        let out = std::fs::File::create(&output).map_err(|e| BenchError(e.to_string()))?;
        let began = Clock::now();
        let status = std::process::Command::new(binary)
            .arg("simulate")
            .arg(&options.project)
            .arg("--events")
            .arg(&events)
            .stdout(out)
            .status()
            .map_err(|e| BenchError(format!("{}: {e}", binary.display())))?;
        let seconds = began.elapsed().as_secs_f64();
        if !status.success() {
            return Err(BenchError(format!(
                "`{} simulate` failed: {status}",
                binary.display()
            )));
        }
        rates.push(lines as f64 / seconds.max(1e-9));
        delivered = std::fs::read_to_string(&output).map_or(0, |t| t.lines().count());
    }
    // The binary must say what the library says.
    let expected = simulate::run(
        compiled,
        crate::events::parse_jsonl(&std::fs::read_to_string(&events).unwrap_or_default())
            .map_err(|e| BenchError(e.to_string()))?,
        &SimulateOptions::default(),
    )
    .deliveries
    .len();
    let _ = std::fs::remove_dir_all(&dir);
    if expected != delivered {
        return Err(BenchError(format!(
            "the binary printed {delivered} delivery lines, the library decided {expected}"
        )));
    }
    Ok(vec![
        Figure::new(
            "binary",
            "`flowc simulate --events FILE > FILE`, whole process",
            &size,
            "lines/s",
            rates,
        ),
        Figure::new(
            "binary",
            "events file",
            &size,
            "MB",
            vec![bytes as f64 / 1e6],
        ),
        Figure::new(
            "binary",
            "delivery lines written",
            &size,
            "lines",
            vec![delivered as f64],
        ),
    ])
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[index.min(values.len() - 1)]
}

/// `1,234,567` for large numbers, one decimal for small ones.
fn number(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    if v.abs() < 100.0 && v.fract() != 0.0 {
        return format!("{v:.1}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}
