//! The command-line side of the daemon's admin API: `flowc versions`, `flowc rollback`,
//! `flowc export-events`, and the contacts waiting right now for `flowc diff --server|--store`.
//!
//! Owns: talking to a running daemon's admin endpoints (`--server URL --admin-key K`, HTTP with
//! ureq), reading a stopped daemon's store directly (`--data DIR`, or the project's
//! `[store] path`; a clear error when a running daemon holds the store's lock), and printing.
//! Must not: write the store or make a version live itself (the daemon's core does, through
//! the hot-reload path), or name sled.

use crate::cli::{
    AdminSource, ExportEventsArgs, RollbackArgs, VersionsArgs, EXIT_CANNOT_RUN, EXIT_OK,
};
use crate::store::sled::{SledStore, StoreReader};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .user_agent(concat!("flowc/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn admin_key(given: &Option<String>) -> Result<String, String> {
    given
        .clone()
        .or_else(|| std::env::var("FLOWC_ADMIN_KEY").ok())
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| {
            "the admin API needs the admin key: pass `--admin-key K` or set FLOWC_ADMIN_KEY"
                .to_string()
        })
}

/// One admin request; the body of a 2xx answer, else an error naming the status and the
/// daemon's message.
pub fn call(method: &str, server: &str, path: &str, key: &str) -> Result<String, String> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let agent = agent();
    let bearer = format!("Bearer {key}");
    let answer = match method {
        "POST" => agent
            .post(&url)
            .header("Authorization", &bearer)
            .send_empty(),
        _ => agent.get(&url).header("Authorization", &bearer).call(),
    };
    let mut response = answer.map_err(|e| format!("cannot reach `{url}`: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_string()
        .map_err(|e| format!("cannot read the answer of `{url}`: {e}"))?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(body);
        return Err(format!("{url} answered {status}: {message}"));
    }
    Ok(body)
}

/// Opens a stopped daemon's store to read it.
pub fn open_store(project: &Path, data: &Option<PathBuf>) -> Result<StoreReader, String> {
    let dir = match data {
        Some(d) => d.clone(),
        None => {
            let config = crate::config::Config::load(project).map_err(|e| e.to_string())?;
            project.join(&config.store.path)
        }
    };
    if !dir.is_dir() {
        return Err(format!(
            "there is no store at `{}` (has `flowc run` started there? pass `--data DIR`)",
            dir.display()
        ));
    }
    match SledStore::open(&dir) {
        Ok(store) => Ok(store.reader()),
        Err(e) if e.0.contains(crate::store::sled::IN_USE) => Err(format!(
            "the store `{}` is in use by a running `flowc run`; ask the daemon instead: `--server URL --admin-key K`",
            dir.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The listing as `GET /v1/versions` gives it.
fn versions_json(project: &Path, source: &AdminSource) -> Result<Value, String> {
    match &source.server {
        Some(server) => {
            let key = admin_key(&source.admin_key)?;
            let body = call("GET", server, "/v1/versions", &key)?;
            serde_json::from_str(&body).map_err(|e| format!("the daemon's answer is not JSON: {e}"))
        }
        None => {
            let reader = open_store(project, &source.data)?;
            let (versions, live) = super::archive::list(&reader)?;
            Ok(super::archive::to_json(&versions, live.as_deref()))
        }
    }
}

/// The text of `flowc versions`: one line per version, oldest first, `*` marking the live one.
pub fn render_versions(listing: &Value) -> String {
    let mut out = String::new();
    let versions = listing["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        out.push_str("no stored versions\n");
        return out;
    }
    for v in &versions {
        let hash = v["hash"].as_str().unwrap_or("");
        let flows: Vec<String> = v["flows"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| {
                        let name = f["name"].as_str().unwrap_or("");
                        let version = f["version"].as_str().unwrap_or("");
                        format!("{name}@{}", &version[..version.len().min(8)])
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "{} {}  {}  {} flows: {}\n",
            if v["live"] == Value::Bool(true) {
                "*"
            } else {
                " "
            },
            &hash[..hash.len().min(12)],
            v["time"].as_str().unwrap_or(""),
            flows.len(),
            flows.join(", ")
        ));
    }
    out.push_str("(* live; `flowc rollback HASH --server URL` makes another one live)\n");
    out
}

/// `flowc versions`.
pub fn versions(args: &VersionsArgs) -> u8 {
    match versions_json(&args.project, &args.source) {
        Ok(listing) => {
            match args.format {
                crate::cli::ChangeFormat::Text => print!("{}", render_versions(&listing)),
                crate::cli::ChangeFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&listing).unwrap_or_default()
                ),
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_CANNOT_RUN
        }
    }
}

/// `flowc rollback`.
pub fn rollback(args: &RollbackArgs) -> u8 {
    let run = || -> Result<Value, String> {
        let key = admin_key(&args.admin_key)?;
        let path = format!("/v1/versions/{}/activate", args.version);
        let body = call("POST", &args.server, &path, &key)?;
        serde_json::from_str(&body).map_err(|e| format!("the daemon's answer is not JSON: {e}"))
    };
    match run() {
        Ok(answer) => {
            let version = answer["version"].as_str().unwrap_or("");
            let previous = answer["previous"].as_str().unwrap_or("");
            if version == previous {
                println!("{version} was already live");
            } else {
                println!(
                    "{version} is live (was {previous}); running instances follow each flow's `on change` policy"
                );
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_CANNOT_RUN
        }
    }
}

/// One history record as a JSON object.
type Object = serde_json::Map<String, Value>;

/// Records per page of the history.
const PAGE: usize = 10_000;

/// One page of the history from sequence `from`: (seq, the record's JSON object without
/// `seq`).
fn history_page(
    project: &Path,
    source: &AdminSource,
    reader: &mut Option<StoreReader>,
    from: u64,
) -> Result<Vec<(u64, Object)>, String> {
    let mut page = Vec::new();
    match &source.server {
        Some(server) => {
            let key = admin_key(&source.admin_key)?;
            let body = call(
                "GET",
                server,
                &format!("/v1/events?from={from}&limit={PAGE}"),
                &key,
            )?;
            for line in body.lines().filter(|l| !l.trim().is_empty()) {
                let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(line) else {
                    return Err(format!(
                        "the daemon sent a line that is not a JSON object: {line}"
                    ));
                };
                let seq = object
                    .remove("seq")
                    .and_then(|s| s.as_u64())
                    .unwrap_or(from);
                page.push((seq, object));
            }
        }
        None => {
            if reader.is_none() {
                *reader = Some(open_store(project, &source.data)?);
            }
            let Some(r) = reader.as_ref() else {
                return Ok(page);
            };
            for (seq, bytes) in r.history(from, PAGE).map_err(|e| e.to_string())? {
                if let Some(Value::Object(object)) = super::history_value(&bytes) {
                    page.push((seq, object));
                }
            }
        }
    }
    Ok(page)
}

fn bound(text: &Option<String>, flag: &str) -> Result<Option<i64>, String> {
    match text {
        None => Ok(None),
        Some(t) => crate::engine::time::parse_instant(t)
            .map(Some)
            .ok_or_else(|| {
                format!("`{flag} {t}` is not an RFC 3339 instant such as 2026-03-01T00:00:00Z")
            }),
    }
}

/// `flowc export-events`: the history log as JSON Lines (the Segment shape the history keeps,
/// which `flowc simulate --events` reads), oldest first, optionally within `[since, until)`.
pub fn export_events(args: &ExportEventsArgs) -> u8 {
    let run = || -> Result<usize, String> {
        let since = bound(&args.since, "--since")?;
        let until = bound(&args.until, "--until")?;
        let mut text = String::new();
        let mut written = 0;
        let mut reader = None;
        let mut from = 0u64;
        loop {
            let page = history_page(&args.project, &args.source, &mut reader, from)?;
            let Some(last) = page.last().map(|(seq, _)| *seq) else {
                break;
            };
            for (_, object) in &page {
                let time = object
                    .get("timestamp")
                    .and_then(Value::as_str)
                    .and_then(crate::engine::time::parse_instant);
                let inside = match time {
                    Some(t) => since.map_or(true, |s| t >= s) && until.map_or(true, |u| t < u),
                    None => since.is_none() && until.is_none(),
                };
                if inside {
                    text.push_str(&Value::Object(object.clone()).to_string());
                    text.push('\n');
                    written += 1;
                }
            }
            if page.len() < PAGE {
                break;
            }
            from = last + 1;
        }
        match &args.out {
            Some(path) => std::fs::write(path, text)
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?,
            None => {
                use std::io::Write;
                std::io::stdout()
                    .write_all(text.as_bytes())
                    .map_err(|e| format!("cannot write to standard output: {e}"))?;
            }
        }
        Ok(written)
    };
    match run() {
        Ok(n) => {
            if args.out.is_some() {
                eprintln!("{n} records written");
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_CANNOT_RUN
        }
    }
}

/// Contacts waiting right now at one step of one flow version of a daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveWaiting {
    pub flow: String,
    /// The flow's version (`CompiledFlow::hash`): step numbers mean something only in it.
    pub version: String,
    pub step: u16,
    pub count: u64,
    pub examples: Vec<String>,
}

/// Who waits where in a running daemon (`GET /v1/flows`) or a stopped one's store.
pub fn waiting_now(
    server: Option<&str>,
    admin_key_given: &Option<String>,
    store: Option<&Path>,
) -> Result<Vec<LiveWaiting>, String> {
    let mut out = Vec::new();
    if let Some(server) = server {
        let key = admin_key(admin_key_given)?;
        let body = call("GET", server, "/v1/flows", &key)?;
        let flows: Value = serde_json::from_str(&body)
            .map_err(|e| format!("the daemon's answer is not JSON: {e}"))?;
        for flow in flows["flows"].as_array().cloned().unwrap_or_default() {
            for step in flow["steps"].as_array().cloned().unwrap_or_default() {
                out.push(LiveWaiting {
                    flow: flow["name"].as_str().unwrap_or("").to_string(),
                    version: flow["version"].as_str().unwrap_or("").to_string(),
                    step: step["step"]
                        .as_u64()
                        .and_then(|s| u16::try_from(s).ok())
                        .unwrap_or(0),
                    count: step["instances"].as_u64().unwrap_or(0),
                    examples: step["examples"]
                        .as_array()
                        .map(|e| {
                            e.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
        return Ok(out);
    }
    let Some(dir) = store else {
        return Ok(out);
    };
    let reader = open_store(Path::new("."), &Some(dir.to_path_buf()))?;
    let Some(bytes) = reader.meta("project").map_err(|e| e.to_string())? else {
        return Ok(out);
    };
    let project: crate::compile::CompiledProject = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the store's project version cannot be read: {e}"))?;
    let mut groups: std::collections::BTreeMap<(u16, u16), (u64, Vec<String>)> = Default::default();
    reader
        .each_contact(|id, state| {
            for i in &state.instances {
                let entry = groups.entry((i.flow.0, i.state.0)).or_default();
                entry.0 += 1;
                if entry.1.len() < 3 {
                    entry.1.push(id.to_string());
                }
            }
        })
        .map_err(|e| e.to_string())?;
    for ((flow, step), (count, examples)) in groups {
        if let Some(f) = project.flows.get(usize::from(flow)) {
            out.push(LiveWaiting {
                flow: f.name.clone(),
                version: f.hash.clone(),
                step,
                count,
                examples,
            });
        }
    }
    Ok(out)
}
