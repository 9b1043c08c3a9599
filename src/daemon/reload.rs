//! Hot reload: watching the project, loading a new version, and carrying contact states over
//! to it.
//!
//! Owns: the notify watcher (flows/, templates/, flowc.toml; debounced), refusing a version that
//! fails check or compile (its diagnostics are logged, the running version goes on), and
//! [`migrate`]: the ids a state holds (flows, events, segments) are indexes into one compiled
//! project, so a new version maps them by name.
//! It also applies each changed flow's `on change` policy to the instances of its old versions,
//! as `changes::migrate` plans it (a pure function: this module only carries it out), refuses
//! a version whose `on change migrate` would strand waiting instances ([`refusal`]), and keeps
//! a note of each moved or ended instance for the contact's trace ([`MigrationNote`]).
//! Must not: apply anything to contacts beyond that (the engine decides).
//!
//! `pin` (the default): running instances finish on the flow version they started on: the old
//! version is kept in the running project (see [`super::versions`]) until its last instance
//! ends (it is dropped at the next reload or restart after that). `migrate`: they move to the
//! new version at the step a label or the step's place maps. `restart`: they end. Entries,
//! goals, history and memberships map by name.

use super::core::Command;
use crate::changes::migrate::{self, Fate, FlowPlan};
use crate::compile::{ChangePolicy, CompiledProject, EventId, FlowId, SegmentId};
use crate::engine::time::Instant;
use crate::engine::ContactState;
use crate::store::sled::SledStore;
use crate::store::StoreError;
use notify::{RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

/// How long the watcher waits for more changes before reloading.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// The longest a reload waits for the edits to settle.
const MAX_DEBOUNCE: Duration = Duration::from_millis(500);

/// Starts watching `root`; a version that loads sends [`Command::Reload`] to the core.
pub fn watch(
    root: PathBuf,
    current_hash: String,
    core: Sender<Command>,
    metrics: Arc<super::metrics::Metrics>,
) -> Result<notify::RecommendedWatcher, String> {
    let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|e| format!("cannot watch the project: {e}"))?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch `{}`: {e}", root.display()))?;
    let watched_root = root.clone();
    let _ = std::thread::Builder::new()
        .name("flowc-reload".into())
        .spawn(move || {
            let mut hash = current_hash;
            while let Ok(first) = rx.recv() {
                // Only project sources count (the store may live under the project and change
                // all the time); the quiet window restarts on each relevant change, within a
                // bound, so a steady stream of saves cannot hold a reload back.
                if !is_relevant(&watched_root, &first) {
                    continue;
                }
                let opened = std::time::Instant::now();
                let mut quiet_until = opened + DEBOUNCE;
                loop {
                    let now = std::time::Instant::now();
                    if now >= quiet_until || now >= opened + MAX_DEBOUNCE {
                        break;
                    }
                    match rx.recv_timeout(quiet_until - now) {
                        Ok(path) if is_relevant(&watched_root, &path) => {
                            quiet_until = std::time::Instant::now() + DEBOUNCE;
                        }
                        Ok(_) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                let started = std::time::Instant::now();
                match super::load(&watched_root) {
                    Ok(loaded) => {
                        if loaded.hash == hash {
                            continue;
                        }
                        hash = loaded.hash.clone();
                        tracing::info!(version = %hash, compile_ms = started.elapsed().as_millis() as u64, "project changed; switching to the new version");
                        if core.send(Command::Reload(Arc::new(loaded))).is_err() {
                            return;
                        }
                    }
                    Err(diagnostics) => {
                        metrics.reload_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(diagnostics = %diagnostics, "reload refused: the edited project does not check; the running version goes on");
                    }
                }
            }
        });
    Ok(watcher)
}

/// Changes under flows/, templates/, stdlib-free `.flow` files at the root, and flowc.toml.
fn is_relevant(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .unwrap_or_default();
    match first.as_str() {
        "flows" | "templates" => true,
        "flowc.toml" => true,
        _ => rel.components().count() == 1 && rel.extension().is_some_and(|e| e == "flow"),
    }
}

/// Carries the store over from the project `old` (as stored) to the new version `new`: builds
/// the project to run (`new` plus the old flow versions that still have running instances,
/// see [`super::versions`]), rewrites every state into its ids, and records it, in one atomic
/// commit. Returns that project and the number of states that changed.
pub fn carry_over(
    store: &mut SledStore,
    old: &CompiledProject,
    new: &CompiledProject,
    now: Instant,
) -> Result<(CompiledProject, usize), StoreError> {
    // Nothing changed while the daemon was stopped (and no older version is kept): no state
    // to map and no version to drop, so the states are not read (a cold start with a million
    // contacts would decode every one of them to find which versions run).
    if old == new {
        store.put_meta("project", &serde_json::to_vec(new).unwrap_or_default());
        store.commit()?;
        return Ok((new.clone(), 0));
    }
    let plans = migrate::plan(old, new);
    // Pinned (and unchanged) versions are kept for their instances; under `migrate` and
    // `restart` the new version takes them over.
    let kept = |index: usize| {
        plans
            .get(index)
            .map_or(true, |p| !p.changed || p.policy == ChangePolicy::Pin)
    };
    let mut running = std::collections::HashSet::new();
    store.reader().each_contact(|_, state| {
        for instance in &state.instances {
            if kept(instance.flow.index()) {
                running.insert(instance.flow.index());
            }
        }
    })?;
    let merged = super::versions::merge(new, old, &running);
    let mut map = IdMap::new(old, &merged);
    map.plans = plans;
    map.now = now;
    let mut changed = 0;
    if !map.identity {
        let mut after: Option<String> = None;
        loop {
            let mut notes: Vec<(String, Vec<MigrationNote>)> = Vec::new();
            let last = store.update_contacts_after(after.as_deref(), 1000, |contact, state| {
                let mut noted = Vec::new();
                if migrate_with(&map, contact, state, &mut noted) {
                    changed += 1;
                }
                if !noted.is_empty() {
                    notes.push((contact.to_string(), noted));
                }
            })?;
            for (contact, noted) in notes {
                let name = format!("{NOTES}{contact}");
                let mut all: Vec<MigrationNote> = store
                    .meta(&name)?
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                all.extend(noted);
                store.put_meta(&name, &serde_json::to_vec(&all).unwrap_or_default());
            }
            match last {
                Some(l) => after = Some(l),
                None => break,
            }
        }
    }
    store.put_meta("project", &serde_json::to_vec(&merged).unwrap_or_default());
    store.commit()?;
    Ok((merged, changed))
}

/// Maps a state's ids from `old` to `new` (pinning every instance); `true` when something
/// changed.
pub fn migrate(state: &mut ContactState, old: &CompiledProject, new: &CompiledProject) -> bool {
    migrate_with(&IdMap::new(old, new), "", state, &mut Vec::new())
}

/// Where a contact's migration notes are kept (metadata name + contact id).
pub const NOTES: &str = "migrated:";

/// One instance moved or ended by a version change, for `GET /v1/contacts/{id}/trace`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MigrationNote {
    /// When the version went live (wall clock).
    pub time: Instant,
    pub flow: String,
    /// `migrated` or `exited`.
    pub what: String,
    pub text: String,
    /// `file:line` of the step it waited at in the old version.
    pub source: String,
}

/// The migration notes of `contact`, oldest first.
pub fn notes_of(
    reader: &crate::store::sled::StoreReader,
    contact: &str,
) -> Result<Vec<MigrationNote>, StoreError> {
    Ok(reader
        .meta(&format!("{NOTES}{contact}"))?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

/// Why `next` may not go live over the running project `running`: the `E0033` diagnostics of
/// every waiting step that its `on change migrate` would strand, rendered in `next`'s own
/// sources; `None` when it may.
pub fn refusal(running: &CompiledProject, next: &super::Loaded) -> Option<String> {
    let strandings = migrate::strandings(running, &next.compiled);
    if strandings.is_empty() {
        return None;
    }
    let sources: Vec<(PathBuf, String)> = next
        .snapshot
        .files
        .iter()
        .filter(|f| f.path.ends_with(".flow"))
        .map(|f| (PathBuf::from(&f.path), f.text.clone()))
        .collect();
    let project = crate::project::Project::from_sources(next.root.clone(), sources);
    let diagnostics = crate::check::rules::migration::diagnostics(&project, &strandings);
    let text: Vec<String> = if diagnostics.is_empty() {
        strandings
            .iter()
            .map(|s| {
                format!(
                    "error[E0033]: flow `{}`: {} ({})",
                    s.flow, s.reason, s.source
                )
            })
            .collect()
    } else {
        diagnostics
            .iter()
            .map(|d| {
                let mut line = crate::simulate::describe_diagnostic(&project, d);
                if let Some(help) = &d.help {
                    line.push_str(&format!("\n  = help: {help}"));
                }
                line
            })
            .collect()
    };
    Some(text.join("\n"))
}

struct IdMap<'a> {
    identity: bool,
    events: Vec<Option<EventId>>,
    segments: Vec<Option<SegmentId>>,
    flows: Vec<Option<FlowId>>,
    old: &'a CompiledProject,
    new: &'a CompiledProject,
    /// What the version change does to each flow of `old` (empty: pin everything).
    plans: Vec<FlowPlan>,
    /// When the version goes live.
    now: Instant,
}

impl<'a> IdMap<'a> {
    fn new(old: &'a CompiledProject, new: &'a CompiledProject) -> IdMap<'a> {
        let by_name = |names: Vec<&str>| -> HashMap<String, u16> {
            names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i as u16))
                .collect()
        };
        let new_events = by_name(new.events.iter().map(String::as_str).collect());
        let new_segments = by_name(new.segments.iter().map(|s| s.name.as_str()).collect());
        let events: Vec<_> = old
            .events
            .iter()
            .map(|e| new_events.get(e).map(|i| EventId(*i)))
            .collect();
        let segments: Vec<_> = old
            .segments
            .iter()
            .map(|s| new_segments.get(&s.name).map(|i| SegmentId(*i)))
            .collect();
        // The same version when the new project has it (kept for running instances), else
        // the current version of the flow (the first of its name).
        let flows: Vec<_> = old
            .flows
            .iter()
            .map(|f| {
                new.flows
                    .iter()
                    .position(|g| g.name == f.name && g.hash == f.hash)
                    .or_else(|| new.flows.iter().position(|g| g.name == f.name))
                    .map(|i| FlowId(i as u16))
            })
            .collect();
        let identity = old.events == new.events
            && old.segments.len() == new.segments.len()
            && segments
                .iter()
                .enumerate()
                .all(|(i, s)| *s == Some(SegmentId(i as u16)))
            && old.flows.len() == new.flows.len()
            && old
                .flows
                .iter()
                .zip(&new.flows)
                .all(|(a, b)| a.name == b.name && a.hash == b.hash);
        IdMap {
            identity,
            events,
            segments,
            flows,
            old,
            new,
            plans: Vec::new(),
            now: 0,
        }
    }
}

fn migrate_with(
    map: &IdMap<'_>,
    contact: &str,
    state: &mut ContactState,
    notes: &mut Vec<MigrationNote>,
) -> bool {
    if map.identity {
        return false;
    }
    let before = state.clone();
    let tz = migrate::contact_timezone(&state.traits, &map.new.default_timezone);
    let flow = |f: FlowId| map.flows.get(f.index()).copied().flatten();
    state.history.retain_mut(
        |p| match map.events.get(p.event.index()).copied().flatten() {
            Some(e) => {
                p.event = e;
                true
            }
            None => false,
        },
    );
    state.instances.retain_mut(|instance| {
        let Some(old_flow) = map.old.flows.get(instance.flow.index()) else {
            return false;
        };
        let Some(new_id) = flow(instance.flow) else {
            tracing::warn!(contact, flow = %old_flow.name, "flow removed; its instance ends");
            return false;
        };
        let new_flow = &map.new.flows[new_id.index()];
        let old_index = instance.flow.index();
        instance.flow = new_id;
        if new_flow.hash == old_flow.hash {
            return true;
        }
        if let Some(plan) = map.plans.get(old_index).filter(|p| p.changed) {
            let point = plan.fate_of(instance.state);
            let (from, source) = point.map_or_else(
                || ("its step".to_string(), String::new()),
                |p| crate::changes::diff::step_text(map.old, old_flow, p.step),
            );
            let note = |what: &str, text: String| MigrationNote {
                time: map.now,
                flow: old_flow.name.clone(),
                what: what.to_string(),
                text,
                source: source.clone(),
            };
            match (plan.policy, point) {
                (ChangePolicy::Migrate, Some(p)) if matches!(p.fate, Fate::Moves { .. }) => {
                    migrate::move_instance(
                        instance, old_flow, p.step, new_flow, &p.fate, map.now, tz,
                    );
                    let to = match &p.fate {
                        Fate::Moves { to_step, label, .. } => {
                            let (text, at) =
                                crate::changes::diff::step_text(map.new, new_flow, *to_step);
                            let by = label
                                .as_ref()
                                .map_or("by its place".to_string(), |l| format!("by its label `{l}`"));
                            format!("`{text}` ({at}), {by}")
                        }
                        _ => String::new(),
                    };
                    notes.push(note(
                        "migrated",
                        format!("flow changed (on change migrate): moved from `{from}` to {to}"),
                    ));
                    return true;
                }
                (ChangePolicy::Migrate, _) => {
                    tracing::warn!(contact, flow = %old_flow.name, "no step of the new version takes over this instance's step; the instance ends");
                    notes.push(note(
                        "exited",
                        format!("flow changed (on change migrate): nothing takes over `{from}`"),
                    ));
                    return false;
                }
                (ChangePolicy::Restart, _) => {
                    notes.push(note(
                        "exited",
                        format!("flow changed (on change restart): ended at `{from}`"),
                    ));
                    return false;
                }
                (ChangePolicy::Pin, _) => {}
            }
        }
        let same_kind = match (
            old_flow.states.get(instance.state.index()),
            new_flow.states.get(instance.state.index()),
        ) {
            (Some(a), Some(b)) => std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind),
            _ => false,
        };
        if !same_kind {
            tracing::warn!(contact, flow = %new_flow.name, "the step this instance waits at is gone in the new version; the instance ends");
        }
        same_kind
    });
    state.instances.sort_by_key(|i| (i.flow, i.id));
    if !notes.is_empty() {
        // A moved timer (a retimed wait) or an ended instance: the contact's next wake-up.
        migrate::rewake(state);
    }
    state.entries.retain_mut(|(f, _)| match flow(*f) {
        Some(n) => {
            *f = n;
            true
        }
        None => false,
    });
    state.goals.retain_mut(|(f, _)| match flow(*f) {
        Some(n) => {
            *f = n;
            true
        }
        None => false,
    });
    state
        .members
        .retain_mut(|s| match map.segments.get(s.index()).copied().flatten() {
            Some(n) => {
                *s = n;
                true
            }
            None => false,
        });
    state.members.sort();
    *state != before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(dir: &str) -> CompiledProject {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let project = crate::project::Project::load(&root).expect("loads");
        let config = crate::config::Config::load(&project.root).expect("flowc.toml");
        crate::compile::compile(&project, &config).expect("compiles")
    }

    #[test]
    fn an_unchanged_project_carries_over_without_reading_a_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        store.put_undecodable_state("broken");
        let shop = compiled("flows");
        let (merged, changed) = carry_over(&mut store, &shop, &shop, 0).unwrap();
        assert_eq!((merged, changed), (shop.clone(), 0));
        assert_eq!(
            store.meta("project").unwrap(),
            Some(serde_json::to_vec(&shop).unwrap())
        );
        // A changed project does read every state (and so meets the broken one).
        let other = compiled("tests/daemon/shop");
        assert!(carry_over(&mut store, &shop, &other, 0).is_err());
    }
}
