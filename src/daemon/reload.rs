//! Hot reload: watching the project, loading a new version, and carrying contact states over
//! to it.
//!
//! Owns: the notify watcher (flows/, templates/, flowc.toml; debounced), refusing a version that
//! fails check or compile (its diagnostics are logged, the running version goes on), and
//! [`migrate`]: the ids a state holds (flows, events, segments) are indexes into one compiled
//! project, so a new version maps them by name.
//! Must not: apply anything to contacts beyond that renaming of ids (the engine decides).
//!
//! Running instances finish on the flow version they started on: the old version is kept in
//! the running project (see [`super::versions`]) until its last instance ends (it is dropped at
//! the next reload or restart after that). Entries, goals, history and memberships map by name.

use super::core::Command;
use crate::compile::{CompiledProject, EventId, FlowId, SegmentId};
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
) -> Result<(CompiledProject, usize), StoreError> {
    let mut running = std::collections::HashSet::new();
    store.reader().each_contact(|_, state| {
        for instance in &state.instances {
            running.insert(instance.flow.index());
        }
    })?;
    let merged = super::versions::merge(new, old, &running);
    let map = IdMap::new(old, &merged);
    let mut changed = 0;
    if !map.identity {
        let mut after: Option<String> = None;
        loop {
            let last = store.update_contacts_after(after.as_deref(), 1000, |contact, state| {
                if migrate_with(&map, contact, state) {
                    changed += 1;
                }
            })?;
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

/// Maps a state's ids from `old` to `new`; `true` when something changed.
pub fn migrate(state: &mut ContactState, old: &CompiledProject, new: &CompiledProject) -> bool {
    migrate_with(&IdMap::new(old, new), "", state)
}

struct IdMap<'a> {
    identity: bool,
    events: Vec<Option<EventId>>,
    segments: Vec<Option<SegmentId>>,
    flows: Vec<Option<FlowId>>,
    old: &'a CompiledProject,
    new: &'a CompiledProject,
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
        }
    }
}

fn migrate_with(map: &IdMap<'_>, contact: &str, state: &mut ContactState) -> bool {
    if map.identity {
        return false;
    }
    let before = state.clone();
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
        instance.flow = new_id;
        if new_flow.hash == old_flow.hash {
            return true;
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
