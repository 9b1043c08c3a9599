//! The daemon's HTTP interface (axum).
//!
//! Owns: the routes and their JSON answers: Segment-compatible ingestion (`POST /v1/batch`,
//! `/v1/track`, `/v1/identify`, also `/v1/page|screen|group|alias`, accepted and ignored), write
//! key checks (HTTP Basic user name or Bearer token, compared in constant time), gzip bodies,
//! size and batch-length limits, `GET /healthz`, `GET /metrics`, the admin reads
//! `GET /v1/flows`, `GET /v1/contacts/{id}` (and its `/trace`), `GET /v1/events`, `GET /v1/versions` and the
//! rollback `POST /v1/versions/{hash}/activate` (admin key), and mounting the tracking and
//! unsubscribe routes of `channels::tracking`.
//! Must not: apply anything itself: records are validated here and handed to the core, which
//! answers once they are durable; a batch with one bad record is refused whole (400 naming its
//! index) and nothing of it is applied.

// Helpers return the error answer itself (an axum `Response`), as handlers do.
#![allow(clippy::result_large_err)]

use crate::daemon::core::{Command, IngestResult, Reply};
use crate::daemon::metrics::Metrics;
use crate::daemon::outbox::OutboxEntry;
use crate::daemon::Loaded;
use crate::events::Record;
use crate::store::sled::StoreReader;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::io::Read;
use std::sync::mpsc::Sender;
use std::sync::{Arc, RwLock};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub core: Sender<Command>,
    pub write_keys: Arc<Vec<String>>,
    pub admin_key: Option<Arc<String>>,
    pub reader: StoreReader,
    pub metrics: Arc<Metrics>,
    pub current: Arc<RwLock<Arc<Loaded>>>,
    pub max_body_bytes: usize,
    pub max_batch_records: usize,
    pub started: std::time::Instant,
}

/// Every route of the daemon.
pub fn router(state: AppState, signer: crate::channels::Signer) -> Router {
    let sink = Arc::new(CoreSink {
        core: state.core.clone(),
    });
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/batch", post(batch))
        .route("/v1/track", post(|s, h, b| single(s, h, b, "track")))
        .route("/v1/identify", post(|s, h, b| single(s, h, b, "identify")))
        .route("/v1/page", post(|s, h, b| single(s, h, b, "page")))
        .route("/v1/screen", post(|s, h, b| single(s, h, b, "screen")))
        .route("/v1/group", post(|s, h, b| single(s, h, b, "group")))
        .route("/v1/alias", post(|s, h, b| single(s, h, b, "alias")))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/flows", get(flows))
        .route("/v1/contacts/{id}", get(contact))
        .route("/v1/contacts/{id}/trace", get(contact_trace))
        .route("/v1/events", get(events))
        .route("/v1/versions", get(versions))
        .route("/v1/versions/{hash}/activate", post(activate))
        .with_state(state)
        .merge(crate::channels::tracking::router(signer, sink))
        // The compressed body's limit; the decoded one is checked after gunzip.
        .layer(DefaultBodyLimit::max(limit))
}

/// The tracking routes' events go through the core like any batch.
struct CoreSink {
    core: Sender<Command>,
}

impl crate::channels::EventSink for CoreSink {
    fn ingest(&self, records: Vec<Record>) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.core
            .send(Command::Ingest {
                records,
                reply: Reply::Blocking(tx),
            })
            .map_err(|_| "the daemon is stopping".to_string())?;
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .map_err(|_| "the store did not answer".to_string())?
            .map(|_| ())
    }
}

fn error(status: StatusCode, message: impl Into<String>, index: Option<usize>) -> Response {
    let mut body = json!({"success": false, "error": message.into()});
    if let Some(i) = index {
        body["index"] = json!(i);
    }
    (status, Json(body)).into_response()
}

/// The key of a request: HTTP Basic user name, a Bearer token, or `writeKey` in the body.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string());
    }
    let encoded = value.strip_prefix("Basic ")?;
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next().unwrap_or("").to_string())
}

/// Whether `presented` equals one of `keys`, comparing every key in constant time.
pub fn key_matches(presented: &str, keys: &[String]) -> bool {
    use subtle::ConstantTimeEq;
    let mut found = subtle::Choice::from(0);
    for key in keys {
        found |= presented.as_bytes().ct_eq(key.as_bytes());
    }
    bool::from(found)
}

fn check_write_key(state: &AppState, headers: &HeaderMap, body: &Value) -> Result<(), Response> {
    if state.write_keys.is_empty() {
        return Ok(());
    }
    let presented = presented_key(headers).or_else(|| {
        body.get("writeKey")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match presented {
        Some(k) if key_matches(&k, &state.write_keys) => Ok(()),
        Some(_) => Err(error(
            StatusCode::UNAUTHORIZED,
            "the write key is not valid",
            None,
        )),
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "a write key is required: send it as the HTTP Basic user name or as a Bearer token",
            None,
        )),
    }
}

/// An admin request's view: the admin key checked, then the live version.
fn admin_view(state: &AppState, headers: &HeaderMap) -> Result<Arc<Loaded>, Response> {
    check_admin_key(state, headers)?;
    state
        .current
        .read()
        .map(|c| c.clone())
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "state lock", None))
}

fn check_admin_key(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(admin) = &state.admin_key else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "admin reads are off: set `[server] admin_key` or FLOWC_ADMIN_KEY",
            None,
        ));
    };
    match presented_key(headers) {
        Some(k) if key_matches(&k, std::slice::from_ref(admin.as_ref())) => Ok(()),
        _ => Err(error(
            StatusCode::UNAUTHORIZED,
            "the admin key is required (Bearer token or HTTP Basic user name)",
            None,
        )),
    }
}

/// The body as JSON: gunzipped when `Content-Encoding: gzip`, within the size limit.
fn decode_body(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let too_big = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {} bytes; send smaller batches",
                state.max_body_bytes
            ),
            None,
        )
    };
    let decoded;
    let bytes: &[u8] = if gzip {
        let mut out = Vec::new();
        let limit = u64::try_from(state.max_body_bytes).unwrap_or(u64::MAX) + 1;
        flate2::read::GzDecoder::new(&body[..])
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("the gzip body cannot be read: {e}"),
                    None,
                )
            })?;
        if out.len() > state.max_body_bytes {
            return Err(too_big());
        }
        decoded = out;
        &decoded
    } else {
        if body.len() > state.max_body_bytes {
            return Err(too_big());
        }
        body
    };
    serde_json::from_slice(bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
            None,
        )
    })
}

/// Parses and validates records; the first bad one refuses them all.
fn parse_records(state: &AppState, items: Vec<Value>) -> Result<Vec<Record>, Response> {
    let loaded = state
        .current
        .read()
        .map(|c| c.clone())
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "state lock", None))?;
    let mut records = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let parsed = crate::events::parse_owned_record(item, index + 1).and_then(|r| {
            if let Some(r) = &r {
                crate::events::validate(r, &loaded.compiled.schemas)?;
            }
            Ok(r)
        });
        match parsed {
            Ok(Some(record)) => records.push(record),
            Ok(None) => {}
            Err(e) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "record {index}: {}; nothing of this batch was applied",
                        e.reason
                    ),
                    Some(index),
                ))
            }
        }
    }
    Ok(records)
}

async fn ingest(state: &AppState, records: Vec<Record>) -> Response {
    let started = std::time::Instant::now();
    if records.is_empty() {
        return Json(json!({"success": true})).into_response();
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<IngestResult>();
    if state
        .core
        .send(Command::Ingest {
            records,
            reply: Reply::Async(tx),
        })
        .is_err()
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping",
            None,
        );
    }
    let answer = match rx.await {
        Ok(Ok(_)) => Json(json!({"success": true})).into_response(),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not stored, try again: {e}"),
            None,
        ),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping",
            None,
        ),
    };
    state.metrics.ingest_latency.observe(started.elapsed());
    answer
}

fn rejected(state: &AppState, response: Response) -> Response {
    state
        .metrics
        .requests_rejected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    response
}

async fn batch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let value = match decode_body(&state, &headers, &body) {
        Ok(v) => v,
        Err(r) => return rejected(&state, r),
    };
    if let Err(r) = check_write_key(&state, &headers, &value) {
        return rejected(&state, r);
    }
    let Value::Object(mut object) = value else {
        return rejected(
            &state,
            error(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object with a `batch` array",
                None,
            ),
        );
    };
    let Some(Value::Array(items)) = object.remove("batch") else {
        return rejected(
            &state,
            error(
                StatusCode::BAD_REQUEST,
                "the body has no `batch` array",
                None,
            ),
        );
    };
    if items.len() > state.max_batch_records {
        return rejected(
            &state,
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the batch has {} records, more than the limit of {}; split it",
                    items.len(),
                    state.max_batch_records
                ),
                None,
            ),
        );
    }
    match parse_records(&state, items) {
        Ok(records) => ingest(&state, records).await,
        Err(r) => rejected(&state, r),
    }
}

async fn single(
    state: State<AppState>,
    headers: HeaderMap,
    body: Bytes,
    kind: &'static str,
) -> Response {
    let State(state) = state;
    let mut value = match decode_body(&state, &headers, &body) {
        Ok(v) => v,
        Err(r) => return rejected(&state, r),
    };
    if let Err(r) = check_write_key(&state, &headers, &value) {
        return rejected(&state, r);
    }
    if let Value::Object(object) = &mut value {
        object.entry("type").or_insert_with(|| json!(kind));
    }
    match parse_records(&state, vec![value]) {
        Ok(records) => ingest(&state, records).await,
        Err(r) => rejected(&state, r),
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    let version = state
        .current
        .read()
        .map(|c| c.hash.clone())
        .unwrap_or_default();
    Json(json!({
        "status": "ok",
        "version": version,
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
    .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn flows(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let loaded = match admin_view(&state, &headers) {
        Ok(loaded) => loaded,
        Err(r) => return r,
    };
    let reader = state.reader.clone();
    let counted = tokio::task::spawn_blocking(move || {
        // Per (flow, step): instances, and the first few contact ids (in key order).
        let mut counts: std::collections::BTreeMap<(u16, u16), (u64, Vec<String>)> =
            Default::default();
        let mut contacts = 0u64;
        reader
            .each_contact(|id, s| {
                contacts += 1;
                for i in &s.instances {
                    let entry = counts.entry((i.flow.0, i.state.0)).or_default();
                    entry.0 += 1;
                    if entry.1.len() < 3 {
                        entry.1.push(id.to_string());
                    }
                }
            })
            .map(|()| (counts, contacts))
    })
    .await;
    let (counts, contacts) = match counted {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    };
    let flows: Vec<Value> = loaded
        .compiled
        .flows
        .iter()
        .enumerate()
        .map(|(fi, flow)| {
            let steps: Vec<Value> = counts
                .iter()
                .filter(|((f, _), _)| usize::from(*f) == fi)
                .map(|((_, s), (n, examples))| {
                    let source = flow
                        .states
                        .get(usize::from(*s))
                        .map(|st| st.source.to_string())
                        .unwrap_or_default();
                    json!({"step": s, "source": source, "instances": n, "examples": examples})
                })
                .collect();
            let total: u64 = steps.iter().filter_map(|s| s["instances"].as_u64()).sum();
            json!({
                "name": flow.name,
                "version": flow.hash,
                "source": flow.source.to_string(),
                "instances": total,
                "steps": steps,
            })
        })
        .collect();
    Json(json!({
        "project_version": loaded.hash,
        "contacts": contacts,
        "flows": flows,
    }))
    .into_response()
}

/// `GET /v1/events?from=N&limit=M`: the applied records, oldest first, as JSON Lines, each
/// with its sequence number `seq` (export; the next page starts at the last `seq` + 1).
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(r) = check_admin_key(&state, &headers) {
        return r;
    }
    let from = query
        .get("from")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u64);
    let limit = query
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000usize)
        .min(100_000);
    let reader = state.reader.clone();
    let read = tokio::task::spawn_blocking(move || reader.history(from, limit)).await;
    let rows = match read {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    };
    let mut text = String::new();
    for (seq, bytes) in rows {
        if let Some(Value::Object(mut object)) = crate::daemon::history_value(&bytes) {
            object.insert("seq".into(), json!(seq));
            text.push_str(&Value::Object(object).to_string());
            text.push('\n');
        }
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], text).into_response()
}

async fn contact(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let loaded = match admin_view(&state, &headers) {
        Ok(loaded) => loaded,
        Err(r) => return r,
    };
    let contact_state = match state.reader.contact(&id) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return error(StatusCode::NOT_FOUND, format!("no contact `{id}`"), None);
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    };
    let mut entries: Vec<OutboxEntry> = state
        .reader
        .outbox_of(&id)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| OutboxEntry::decode(b))
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.time));
    entries.truncate(100);
    let deliveries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "time": crate::engine::time::format_instant(e.time),
                "flow": e.flow,
                "flow_version": e.flow_hash,
                "message": e.message,
                "channel": e.channel,
                "status": e.status.as_str(),
                "reason": e.reason,
                "key": e.key,
                "attempts": e.attempts,
                "next_try": e.next_try.map(crate::engine::time::format_instant),
                "last_error": e.last_error,
                "provider_id": e.provider_id,
            })
        })
        .collect();
    let channels = ["email", "sms", "push", "webhook"];
    let withdrawn: Vec<&str> = channels
        .iter()
        .enumerate()
        .filter(|(i, _)| contact_state.withdrawn & (1 << i) != 0)
        .map(|(_, c)| *c)
        .collect();
    let withdrawn_all: Vec<&str> = channels
        .iter()
        .enumerate()
        .filter(|(i, _)| contact_state.withdrawn_all & (1 << i) != 0)
        .map(|(_, c)| *c)
        .collect();
    let instances: Vec<Value> = contact_state
        .instances
        .iter()
        .map(|i| {
            let flow = loaded.compiled.flows.get(i.flow.index());
            json!({
                "flow": flow.map(|f| f.name.clone()),
                "flow_version": flow.map(|f| f.hash.clone()),
                "step": i.state.0,
                "source": flow.and_then(|f| f.states.get(i.state.index())).map(|s| s.source.to_string()),
                "entered": crate::engine::time::format_instant(i.entered),
                "wake": i.wake.map(crate::engine::time::format_instant),
                "holdout": i.holdout(),
            })
        })
        .collect();
    Json(json!({
        "contact": id,
        "traits": contact_state.traits,
        "consent": contact_state.traits.get("consent").map(crate::engine::Trait::to_json).unwrap_or(json!({})),
        "unsubscribed": withdrawn,
        "unsubscribed_all": withdrawn_all,
        "instances": instances,
        "next_wake": contact_state.wake.map(crate::engine::time::format_instant),
        "deliveries": deliveries,
    }))
    .into_response()
}

/// `GET /v1/versions`: every stored project version, oldest first, and which one is live.
async fn versions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = check_admin_key(&state, &headers) {
        return r;
    }
    let reader = state.reader.clone();
    match tokio::task::spawn_blocking(move || crate::daemon::archive::list(&reader)).await {
        Ok(Ok((versions, live))) => {
            Json(crate::daemon::archive::to_json(&versions, live.as_deref())).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e, None),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    }
}

/// `POST /v1/versions/{hash}/activate`: rebuilds a stored version from its sources and hands
/// it to the core as a hot reload; answers once it is live (running instances keep theirs).
async fn activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    use crate::daemon::archive;
    let current = match admin_view(&state, &headers) {
        Ok(loaded) => loaded,
        Err(r) => return r,
    };
    let reader = state.reader.clone();
    let root = current.root.clone();
    let restored = tokio::task::spawn_blocking(move || match archive::find(&reader, &hash) {
        Ok(record) => {
            archive::restore(&record, &root).map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e))
        }
        Err(e @ archive::FindError::Unknown(_)) => Err((StatusCode::NOT_FOUND, e.to_string())),
        Err(e @ archive::FindError::Ambiguous(_)) => Err((StatusCode::BAD_REQUEST, e.to_string())),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    })
    .await;
    let loaded = match restored {
        Ok(Ok(l)) => l,
        Ok(Err((status, e))) => return error(status, e, None),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    };
    let target = loaded.hash.clone();
    let previous = current.hash.clone();
    // Refused like a hot reload would refuse it (`on change migrate` stranding instances).
    if let Some(diagnostics) = crate::daemon::reload::refusal(&current.compiled, &loaded) {
        return error(
            StatusCode::CONFLICT,
            format!("`{target}` would strand waiting instances; the running version goes on:\n{diagnostics}"),
            None,
        );
    }
    if target != previous {
        tracing::info!(version = %target, "rollback requested: activating a stored version");
        if state.core.send(Command::Reload(Arc::new(loaded))).is_err() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is stopping",
                None,
            );
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let live = state
                .current
                .read()
                .map(|c| c.hash.clone())
                .unwrap_or_default();
            if live == target {
                break;
            }
            if std::time::Instant::now() > deadline {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("`{target}` is not live 10 s after the request; see the daemon's log"),
                    None,
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    Json(json!({"success": true, "version": target, "previous": previous})).into_response()
}

/// `GET /v1/contacts/{id}/trace`: the contact's decisions, replayed from its stored history
/// with the live version (`crate::daemon::trace`).
async fn contact_trace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let loaded = match admin_view(&state, &headers) {
        Ok(loaded) => loaded,
        Err(r) => return r,
    };
    let reader = state.reader.clone();
    let now = crate::daemon::core::wall_now();
    let contact = id.clone();
    let replayed = tokio::task::spawn_blocking(move || {
        crate::daemon::trace::contact_trace(&reader, &loaded.compiled, &contact, now)
            .map(|t| (t, loaded.hash.clone()))
    })
    .await;
    match replayed {
        Ok(Ok((Some(trace), version))) => Json(json!({
            "contact": trace.contact,
            "version": version,
            "until": crate::engine::time::format_instant(now),
            "records": trace.records,
            "method": "replay of the contact's stored history with the live version",
            "decisions": trace.decisions,
        }))
        .into_response(),
        Ok(Ok((None, _))) => error(
            StatusCode::NOT_FOUND,
            format!("no stored record has contact `{id}`"),
            None,
        ),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e, None),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    }
}
