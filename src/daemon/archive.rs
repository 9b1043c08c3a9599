//! Every project version that ever ran, kept in the store: its source, hash and time.
//!
//! Owns: the snapshot of a project's sources taken when it is loaded (`flowc.toml`, every file
//! under `flows/` and `templates/`, the `.flow` files at the top: the files hot reload watches),
//! the stored record of a version (metadata `version:HASH`, JSON) and the `live` marker,
//! reading them back (`flowc versions`, `GET /v1/versions`), and rebuilding a loaded version
//! from its record (for `POST /v1/versions/{hash}/activate`: the files are written to a
//! temporary folder and loaded, checked and compiled exactly as at start-up).
//! Must not: make a version live (the core does, through the hot-reload path) or name sled.

use super::Loaded;
use crate::store::sled::{SledStore, StoreReader};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a version is stored (metadata name).
const PREFIX: &str = "version:";
/// The hash of the version that is live (metadata name).
const LIVE: &str = "live";
/// How many versions are stored (metadata name, decimal).
const COUNT: &str = "versions";

/// One source file of a project version, its path relative to the project.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// A flow of a version: its name and its own version (`CompiledFlow::hash`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FlowVersion {
    pub name: String,
    pub hash: String,
}

/// What a loaded version keeps to be stored: its flows and its source files.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub flows: Vec<FlowVersion>,
    pub files: Vec<SourceFile>,
}

/// One stored version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The project version (`/healthz` `version`).
    pub hash: String,
    /// When it first went live (Unix seconds, wall clock).
    pub time: i64,
    /// Its place in the order the versions first went live (0 for the first).
    #[serde(default)]
    pub seq: u64,
    pub flows: Vec<FlowVersion>,
    pub files: Vec<SourceFile>,
}

/// The files hot reload watches, as text, sorted by path (files that are not UTF-8 are left
/// out: the compiler could not have read them either).
pub fn snapshot_files(root: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .unwrap_or_default();
        let wanted = match first.as_str() {
            "flows" | "templates" | "flowc.toml" => true,
            _ => rel.components().count() == 1 && rel.extension().is_some_and(|e| e == "flow"),
        };
        if !wanted {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(entry.path()) {
            let path = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect::<Vec<_>>()
                .join("/");
            files.push(SourceFile { path, text });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// Stores `loaded` as a version if it is new (first time live: `now`) and marks it live, in
/// the store's open group (the caller commits).
pub fn record(store: &mut SledStore, loaded: &Loaded, now: i64) -> Result<(), String> {
    let name = format!("{PREFIX}{}", loaded.hash);
    if store.meta(&name).map_err(|e| e.to_string())?.is_none() {
        let seq = store
            .meta(COUNT)
            .map_err(|e| e.to_string())?
            .and_then(|b| String::from_utf8_lossy(&b).parse::<u64>().ok())
            .unwrap_or(0);
        store.put_meta(COUNT, (seq + 1).to_string().as_bytes());
        let record = VersionRecord {
            hash: loaded.hash.clone(),
            time: now,
            seq,
            flows: loaded.snapshot.flows.clone(),
            files: loaded.snapshot.files.clone(),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
        store.put_meta(&name, &bytes);
    }
    store.put_meta(LIVE, loaded.hash.as_bytes());
    Ok(())
}

/// Every stored version, oldest first, and the live one's hash.
pub fn list(reader: &StoreReader) -> Result<(Vec<VersionRecord>, Option<String>), String> {
    let mut versions: Vec<VersionRecord> = reader
        .meta_prefix(PREFIX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
        .collect();
    versions.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.hash.cmp(&b.hash)));
    let live = reader
        .meta(LIVE)
        .map_err(|e| e.to_string())?
        .map(|b| String::from_utf8_lossy(&b).to_string());
    Ok((versions, live))
}

/// Why a version could not be found.
#[derive(Debug)]
pub enum FindError {
    Unknown(String),
    Ambiguous(String),
    Store(String),
}

impl std::fmt::Display for FindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FindError::Unknown(h) => write!(f, "no stored version `{h}` (see `flowc versions`)"),
            FindError::Ambiguous(h) => write!(
                f,
                "`{h}` is the start of several stored versions; give more of the hash"
            ),
            FindError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// The stored version whose hash is `hash` or starts with it (at least 4 characters).
pub fn find(reader: &StoreReader, hash: &str) -> Result<VersionRecord, FindError> {
    let (versions, _) = list(reader).map_err(FindError::Store)?;
    if let Some(v) = versions.iter().find(|v| v.hash == hash) {
        return Ok(v.clone());
    }
    if hash.len() < 4 {
        return Err(FindError::Unknown(hash.to_string()));
    }
    let mut matching = versions.into_iter().filter(|v| v.hash.starts_with(hash));
    match (matching.next(), matching.next()) {
        (Some(v), None) => Ok(v),
        (Some(_), Some(_)) => Err(FindError::Ambiguous(hash.to_string())),
        _ => Err(FindError::Unknown(hash.to_string())),
    }
}

/// Rebuilds a stored version: its files are written to a temporary folder, loaded, checked and
/// compiled as at start-up, and the result must have the stored hash. `root` is the running
/// project's folder (the watcher and the signing key stay there).
pub fn restore(record: &VersionRecord, root: &Path) -> Result<Loaded, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "flowc-version-{}-{}-{nanos}",
        &record.hash[..record.hash.len().min(12)],
        std::process::id()
    ));
    let result = write_and_load(record, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let mut loaded = result?;
    if loaded.hash != record.hash {
        return Err(format!(
            "the stored sources of `{}` compile to `{}` with this flowc (another flowc or stdlib version?); nothing changed",
            record.hash, loaded.hash
        ));
    }
    loaded.root = root.to_path_buf();
    Ok(loaded)
}

fn write_and_load(record: &VersionRecord, dir: &Path) -> Result<Loaded, String> {
    for file in &record.files {
        if file.path.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(format!("stored file `{}` has a bad path", file.path));
        }
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
        }
        std::fs::write(&path, &file.text)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    }
    super::load(dir).map_err(|diagnostics| {
        format!(
            "the stored sources of `{}` no longer check:\n{diagnostics}",
            record.hash
        )
    })
}

/// The listing as JSON (without the files): `{"live": hash, "versions": [...]}`.
pub fn to_json(versions: &[VersionRecord], live: Option<&str>) -> serde_json::Value {
    let list: Vec<serde_json::Value> = versions
        .iter()
        .map(|v| {
            serde_json::json!({
                "hash": v.hash,
                "time": crate::engine::time::format_instant(v.time),
                "live": live == Some(v.hash.as_str()),
                "flows": v.flows.iter().map(|f| serde_json::json!({"name": f.name, "version": f.hash})).collect::<Vec<_>>(),
                "files": v.files.len(),
            })
        })
        .collect();
    serde_json::json!({ "live": live, "versions": list })
}
