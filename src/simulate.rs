//! `flowc simulate`: the engine on a virtual clock over a file of records.
//!
//! Owns: the driver loop (records in timestamp order, ties in file order; at one instant
//! records before contact timers before schedule ticks), which contacts a schedule tick visits
//! (those of the store's history index that can be in its audience, [`tick_requires`]), the
//! end of the run (`--until`, or when nothing but recurring triggers is pending), and the
//! output format of RUNTIME.md 2.
//! `--trace` writes human-readable lines to standard error, so that standard output stays
//! exactly the delivery lines.
//! Must not: change the engine's decisions or read the wall clock.
//!
//! Exit codes: 0 success; 1 the project has errors or the events file has a bad record (the
//! line and reason are printed, nothing is simulated); 2 the command could not run (missing
//! project or events file, a bad `--until`).

use crate::cli::{SimulateArgs, EXIT_CANNOT_RUN, EXIT_ERRORS, EXIT_OK};
use crate::compile::{CompiledProject, Dur, EventId, FlowId, Trigger};
use crate::engine::time::{self, Instant};
use crate::engine::{eval, ContactState};
use crate::engine::{Delivery, Engine, Input, Options, Outcome, TraceEntry, TraceKind};
use crate::events::{self, Record};
use crate::store::{MemoryStore, Store};
use chrono_tz::Tz;
use std::io::{IsTerminal, Write};

/// What a simulation run is asked for.
#[derive(Debug, Clone, Default)]
pub struct SimulateOptions {
    /// Stop the clock here (inclusive).
    pub until: Option<Instant>,
    pub trace: bool,
    pub render: bool,
    /// Show a progress bar (only when asked and standard error is a terminal).
    pub progress: bool,
}

/// Everything a run produced.
#[derive(Debug, Default)]
pub struct Simulation {
    /// Sorted by (time, contact, flow, message).
    pub deliveries: Vec<Delivery>,
    pub trace: Vec<TraceEntry>,
    pub conversions: Vec<(FlowId, String, Instant)>,
    pub entries: Vec<(FlowId, bool)>,
    /// The store at the end (states, for measurements and tests).
    pub store: MemoryStore,
    pub records_applied: usize,
    pub duplicates: usize,
}

/// Runs records (already parsed and validated) through the engine on a virtual clock.
pub fn run(
    project: &CompiledProject,
    mut records: Vec<Record>,
    options: &SimulateOptions,
) -> Simulation {
    events::sort_for_replay(&mut records);
    run_in_order(project, &records, options)
}

/// [`run`] over records already in replay order ([`events::sort_for_replay`]), borrowed: the
/// caller decides when they are freed (`flowc simulate` leaves that to the end of the process).
pub fn run_in_order(
    project: &CompiledProject,
    records: &[Record],
    options: &SimulateOptions,
) -> Simulation {
    let engine = Engine::new(
        project,
        Options {
            trace: options.trace,
            capture_context: options.render,
        },
    );
    let default_tz: Tz = project.default_timezone.parse().unwrap_or(chrono_tz::UTC);
    let mut store = MemoryStore::new();
    let mut out = Outcome::default();
    let mut sim = Simulation::default();
    let Some(start) = records.first().map(|r| r.time) else {
        sim.store = store;
        return sim;
    };
    let mut schedules = first_schedule_ticks(project, default_tz, start);
    // Per schedule: the store's index of the contacts that can be in its audience (those whose
    // history holds an event its segment needs, recently enough), or `None` when every
    // contact can be.
    let audiences: Vec<_> = schedules
        .iter()
        .map(|(_, schedule)| {
            tick_requires(project, schedule).map(|events| store.watch_history(&events))
        })
        .collect();
    let progress = (options.progress && records.len() > 200_000 && std::io::stderr().is_terminal())
        .then(|| {
            let bar = indicatif::ProgressBar::new(records.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });

    let mut next_record = 0;
    loop {
        let record_at = records.get(next_record).map(|r| r.time);
        if record_at.is_none() && options.until.is_none() && !store.any_pending() {
            break;
        }
        let timer = store.next_due_at();
        let tick = schedules
            .iter()
            .enumerate()
            .min_by_key(|(_, (t, schedule))| (*t, schedule.flow, schedule.trigger))
            .map(|(i, (t, _))| (*t, i));
        // Records before timers before ticks at one instant.
        let next = [
            record_at.map(|t| (t, 0u8)),
            timer.map(|t| (t, 1)),
            tick.map(|(t, _)| (t, 2)),
        ];
        let Some((at, kind)) = next.into_iter().flatten().min() else {
            break;
        };
        if options.until.is_some_and(|u| at > u) {
            break;
        }
        match kind {
            0 => {
                let record = &records[next_record];
                next_record += 1;
                if let Some(bar) = &progress {
                    bar.inc(1);
                }
                if let Some(id) = &record.message_id {
                    if !store.first_seen(id).unwrap_or(true) {
                        sim.duplicates += 1;
                        if options.trace {
                            out.trace.push(TraceEntry {
                                time: record.time,
                                contact: record.contact.clone(),
                                flow: None,
                                kind: TraceKind::Step,
                                text: format!(
                                    "line {}: messageId `{id}` already applied, record ignored",
                                    record.line
                                ),
                                source: None,
                            });
                        }
                        continue;
                    }
                }
                sim.records_applied += 1;
                let _ = store.update(&record.contact, |state| {
                    engine.apply(
                        &record.contact,
                        state,
                        Input::Record(record),
                        record.time,
                        &mut out,
                    )
                });
            }
            1 => {
                if let Some(t) = timer {
                    store.update_next_due(|contact, state| {
                        engine.apply(contact, state, Input::Timers, t, &mut out)
                    });
                }
            }
            _ => {
                if let Some((t, index)) = tick {
                    let schedule = schedules[index].1;
                    let flow = schedule.flow;
                    if options.trace {
                        out.trace.push(TraceEntry {
                            time: t,
                            contact: String::new(),
                            flow: Some(flow),
                            kind: TraceKind::Timer,
                            text: "schedule tick".to_string(),
                            source: None,
                        });
                    }
                    let mut tick = |contact: &str, state: &mut ContactState| {
                        engine.apply(contact, state, schedule.input(), t, &mut out)
                    };
                    // A contact outside the index cannot be a member: its tick would change
                    // nothing, so it is not visited (same output, O(candidates) a tick).
                    match audiences[index] {
                        Some(watch) => store.update_watched(watch, t, &mut tick),
                        None => store.update_all(&mut tick),
                    }
                    schedules[index].0 = schedule.next_tick(default_tz, t);
                }
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let message_name = |d: &Delivery| {
        project
            .messages
            .get(d.message.index())
            .map_or("", |m| m.name.as_str())
    };
    out.deliveries.sort_by(|a, b| {
        (a.time, &a.contact, a.flow, message_name(a)).cmp(&(
            b.time,
            &b.contact,
            b.flow,
            message_name(b),
        ))
    });
    sim.deliveries = out.deliveries;
    sim.trace = out.trace;
    sim.conversions = out.conversions;
    sim.entries = out.entries;
    sim.store = store;
    sim
}

/// One `when every` line of a flow: a tick enters that line's audience, at its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub flow: FlowId,
    /// The index of the line among the flow's triggers.
    pub trigger: usize,
    pub every: Dur,
}

impl Schedule {
    /// The tick after `t`.
    pub fn next_tick(&self, default_tz: Tz, t: Instant) -> Instant {
        time::next_tick(self.every, default_tz, t)
    }

    /// The engine input of one of its ticks.
    pub fn input(&self) -> Input<'static> {
        Input::Tick(self.flow, self.trigger)
    }
}

/// Added to an event's lifetime for [`tick_requires`]: a calendar window (`within 1mo`) is
/// measured in the contact's timezone, and across a change of UTC offset it can be longer
/// than the `max_seconds` the horizon is made of. Two days cover any offset change; a longer
/// lifetime only visits a few more contacts.
const LIFETIME_MARGIN: i64 = 2 * 86_400;

/// Who a tick of `schedule` can enter: the contacts whose history holds an occurrence of one
/// of these events still inside its lifetime (seconds, `None`: for ever), or, when `None`,
/// anyone. The events are `eval::required_events` of the schedule's segment (a member's
/// history holds at least one occurrence that a `count` or `sum` of the segment counts); the
/// lifetime of an event is how long the engine keeps it (`HistoryNeed::horizon`, the longest
/// `within` that reads it anywhere, plus a margin), so an older occurrence is outside every
/// window of the segment and cannot make the contact a member, even while its history still
/// holds it.
pub fn tick_requires(
    project: &CompiledProject,
    schedule: &Schedule,
) -> Option<Vec<(EventId, Option<i64>)>> {
    let flow = project.flows.get(schedule.flow.index())?;
    let Some(Trigger::Every { segment, .. }) = flow.triggers.get(schedule.trigger) else {
        return None;
    };
    let segment = project.segments.get(segment.index())?;
    let events = eval::required_events(project, &segment.expr, 0)?;
    Some(
        events
            .into_iter()
            .map(|event| {
                let lifetime = project
                    .history
                    .get(event.index())
                    .filter(|need| !need.last_only)
                    .and_then(|need| need.horizon)
                    .map(|h| h.saturating_add(LIFETIME_MARGIN));
                (event, lifetime)
            })
            .collect(),
    )
}

/// Every `when every` line of a project with its first tick, the first one strictly after
/// `start` (shared by simulate and the daemon, so both tick alike).
pub fn first_schedule_ticks(
    project: &CompiledProject,
    default_tz: Tz,
    start: Instant,
) -> Vec<(Instant, Schedule)> {
    let mut schedules = Vec::new();
    for (index, flow) in project.flows.iter().enumerate() {
        for (trigger, line) in flow.triggers.iter().enumerate() {
            if let Trigger::Every { every, at, .. } = line {
                schedules.push((
                    time::first_tick(*every, *at, default_tz, start),
                    Schedule {
                        flow: FlowId(index as u16),
                        trigger,
                        every: *every,
                    },
                ));
            }
        }
    }
    schedules
}

/// Parses, validates and runs a JSON Lines text (for `flowc test` and other callers): the
/// first bad record is an error naming its line, and then nothing is run.
pub fn run_jsonl(
    project: &CompiledProject,
    jsonl: &str,
    options: &SimulateOptions,
) -> Result<Simulation, events::RecordError> {
    let records = events::parse_jsonl(jsonl)?;
    for record in &records {
        events::validate(record, &project.schemas)?;
    }
    Ok(run(project, records, options))
}

/// The delivery lines of a simulation, in output order.
pub fn delivery_lines(project: &CompiledProject, simulation: &Simulation) -> Vec<String> {
    simulation
        .deliveries
        .iter()
        .map(|d| delivery_line(project, d, false))
        .collect()
}

/// Writes the delivery lines of a simulation (each with its newline), in output order,
/// through one reused buffer: what `flowc simulate` prints.
pub fn write_deliveries(
    project: &CompiledProject,
    simulation: &Simulation,
    render: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut buffer = String::with_capacity(64 * 1024);
    for delivery in &simulation.deliveries {
        push_delivery_line(&mut buffer, project, delivery, render);
        buffer.push('\n');
        if buffer.len() > 60 * 1024 {
            out.write_all(buffer.as_bytes())?;
            buffer.clear();
        }
    }
    out.write_all(buffer.as_bytes())
}

/// One delivery as the RUNTIME.md 2 line (keys in order; `rendered` only with `--render`).
pub fn delivery_line(project: &CompiledProject, delivery: &Delivery, render: bool) -> String {
    let mut line = String::with_capacity(160);
    push_delivery_line(&mut line, project, delivery, render);
    line
}

/// Appends [`delivery_line`] to `line`.
fn push_delivery_line(
    line: &mut String,
    project: &CompiledProject,
    delivery: &Delivery,
    render: bool,
) {
    let flow = project
        .flows
        .get(delivery.flow.index())
        .map_or("", |f| f.name.as_str());
    let message = project.messages.get(delivery.message.index());
    // Written field by field (no `format!`, no serde_json value per string): one line per
    // delivery is the bulk of `flowc simulate`'s output.
    line.push_str("{\"time\":\"");
    time::push_instant(line, delivery.time);
    line.push_str("\",\"contact\":");
    push_json_string(line, &delivery.contact);
    line.push_str(",\"flow\":");
    push_json_string(line, flow);
    line.push_str(",\"message\":");
    push_json_string(line, message.map_or("", |m| m.name.as_str()));
    line.push_str(",\"channel\":\"");
    line.push_str(delivery.channel.keyword());
    line.push_str("\",\"status\":\"");
    line.push_str(delivery.status.as_str());
    line.push('"');
    if let Some(reason) = delivery.reason {
        line.push_str(",\"reason\":\"");
        line.push_str(reason.as_str());
        line.push('"');
    }
    if render && delivery.reason.is_none() {
        if let (Some(message), Some(context)) = (message, &delivery.context) {
            let html = message.channel == crate::syntax::ast::Channel::Email;
            match crate::template::render_fields(&message.fields, context, html) {
                Ok(fields) => {
                    // Fields in the order the message declares them.
                    let fields: Vec<String> = fields
                        .iter()
                        .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
                        .collect();
                    line.push_str(&format!(",\"rendered\":{{{}}}", fields.join(",")));
                }
                Err(e) => line.push_str(&format!(",\"render_error\":{}", json_string(&e))),
            }
        }
    }
    line.push('}');
}

/// One `--trace` line.
pub fn trace_line(project: &CompiledProject, entry: &TraceEntry) -> String {
    let mut line = format!("{} ", time::format_instant(entry.time));
    if !entry.contact.is_empty() {
        line.push_str(&entry.contact);
        line.push(' ');
    }
    if let Some(flow) = entry.flow.and_then(|f| project.flows.get(f.index())) {
        line.push_str(&flow.name);
        line.push(' ');
    }
    line.push_str(&format!("{}: {}", entry.kind.as_str(), entry.text));
    if let Some(source) = &entry.source {
        let shown = source.to_string();
        if !entry.text.contains(&shown) {
            line.push_str(&format!(" ({shown})"));
        }
    }
    line
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it (`"`, `\\`, and
/// control characters; nothing else).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{byte:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Loads, checks and compiles a project, printing diagnostics. `Err` holds the exit code.
pub fn load_compiled(path: &std::path::Path) -> Result<CompiledProject, u8> {
    let project = match crate::project::Project::load(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(EXIT_CANNOT_RUN);
        }
    };
    let config = match crate::config::Config::load(&project.root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(EXIT_CANNOT_RUN);
        }
    };
    crate::check::command::gate(&project)?;
    crate::compile::compile(&project, &config).map_err(|diagnostics| {
        crate::check::command::print_errors(&project, &diagnostics);
        EXIT_ERRORS
    })
}

/// A one-screen rendering of a diagnostic: `error[E0002]: ... --> file:line:column`.
pub fn describe_diagnostic(
    project: &crate::project::Project,
    d: &crate::diagnostic::Diagnostic,
) -> String {
    let (line, column) = project.unit(&d.file).map_or((0, 0), |u| {
        crate::diagnostic::line_column(&u.text, d.span.start)
    });
    let severity = match d.severity {
        crate::diagnostic::Severity::Error => "error",
        crate::diagnostic::Severity::Warning => "warning",
    };
    let mut text = format!(
        "{severity}[{}]: {}\n  --> {}:{line}:{column}",
        d.code,
        d.message,
        d.file.display()
    );
    if let Some(help) = &d.help {
        text.push_str(&format!("\n  = help: {help}"));
    }
    text
}

/// `flowc simulate`.
pub fn command(args: &SimulateArgs) -> u8 {
    let until = match &args.until {
        None => None,
        Some(text) => match time::parse_instant(text) {
            Some(t) => Some(t),
            None => {
                eprintln!("error: `--until {text}` is not an RFC 3339 time such as `2026-04-01T00:00:00Z`");
                return EXIT_CANNOT_RUN;
            }
        },
    };
    let project = match load_compiled(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let text = match std::fs::read_to_string(&args.events) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", args.events.display());
            return EXIT_CANNOT_RUN;
        }
    };
    let mut records = match events::parse_jsonl(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: {}: {e}; nothing was simulated",
                args.events.display()
            );
            return EXIT_ERRORS;
        }
    };
    for record in &records {
        if let Err(e) = events::validate(record, &project.schemas) {
            eprintln!(
                "error: {}: {e}; nothing was simulated",
                args.events.display()
            );
            return EXIT_ERRORS;
        }
    }
    let options = SimulateOptions {
        until,
        trace: args.trace || args.explain.is_some(),
        render: args.render,
        progress: true,
    };
    events::sort_for_replay(&mut records);
    let sim = run_in_order(&project, &records, &options);
    if let Some(contact) = &args.explain {
        return crate::changes::explain::command(&project, &sim, contact, args.trace);
    }
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for entry in &sim.trace {
        if args.trace || entry.kind == TraceKind::Warning {
            let _ = writeln!(err, "{}", trace_line(&project, entry));
        }
    }
    if args.trace {
        for (index, flow) in project.flows.iter().enumerate() {
            let id = FlowId(index as u16);
            let entered = sim.entries.iter().filter(|(f, _)| *f == id).count();
            if entered == 0 {
                continue;
            }
            let holdouts = sim.entries.iter().filter(|(f, h)| *f == id && *h).count();
            let converted = sim.conversions.iter().filter(|(f, _, _)| *f == id).count();
            let _ = writeln!(
                err,
                "summary {}: {entered} entered ({holdouts} holdout), {converted} goal conversions",
                flow.name
            );
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A closed pipe (`| head`) ends the output, not the command.
    if write_deliveries(&project, &sim, args.render, &mut out).is_ok() {
        let _ = out.flush();
    }
    // The process ends here: the operating system takes the memory back at once, so the
    // records, states and the input text are not freed one allocation at a time (a second
    // at a million contacts).
    std::mem::forget((sim, records, text));
    EXIT_OK
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        let mut every: String = (0u8..128).map(char::from).collect();
        every.push_str("é中😀 \u{2028}\u{7f}");
        for s in [every.as_str(), "", "plain", "a\"b\\c", "\u{1}x\u{1f}"] {
            assert_eq!(
                super::json_string(s),
                serde_json::Value::from(s).to_string()
            );
        }
    }
}
