//! The HTTP side of tracking and unsubscribing, as an axum [`Router`] the daemon mounts:
//!
//! - `GET /t/o/{token}`: the open pixel (a 1x1 GIF); records `email_opened`.
//! - `GET /t/c/{token}`: 302 to the link's original URL; records `email_clicked` (with
//!   `properties.url`).
//! - `GET /u/{token}`: a confirmation page with one button (nothing changes on GET, so link
//!   scanners cannot unsubscribe anyone).
//! - `POST /u/{token}`: unsubscribes (the page's button, and RFC 8058 one-click
//!   `List-Unsubscribe=One-Click` from mail clients); records `unsubscribed` with
//!   `properties.channel`.
//!
//! Every event has `properties.flow` and `properties.message` and goes through the
//! [`EventSink`], like a record from `/v1/batch`. A token that is not signed by this server's
//! key, altered, or of the wrong kind is refused (404 for the pixel, 400 otherwise) and
//! records nothing.
//! Owns: these four routes, their pages and the records they produce.
//! Must not: touch the store directly (only through the sink).

use super::token::{Claims, Kind, Signer};
use super::EventSink;
use crate::engine::time::Instant;
use crate::events::{Record, RecordKind};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map};
use std::sync::Arc;

/// The clock the handlers stamp events with (the daemon's; a fixed one in tests).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The wall clock, in whole seconds.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

#[derive(Clone)]
struct Tracking {
    signer: Signer,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

/// The tracking and unsubscribe routes, stamping events with the wall clock.
pub fn router(signer: Signer, sink: Arc<dyn EventSink>) -> Router {
    router_with_clock(signer, sink, system_clock())
}

/// [`router`] with a given clock.
pub fn router_with_clock(signer: Signer, sink: Arc<dyn EventSink>, clock: Clock) -> Router {
    Router::new()
        .route("/t/o/{token}", get(open))
        .route("/t/c/{token}", get(click))
        .route("/u/{token}", get(unsubscribe_page).post(unsubscribe))
        .with_state(Tracking {
            signer,
            sink,
            clock,
        })
}

/// A transparent 1x1 GIF.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// The record a tracking or unsubscribe request produces.
pub fn event_record(claims: &Claims, event: &str, time: Instant) -> Record {
    let mut properties = Map::new();
    properties.insert("flow".into(), json!(claims.flow));
    properties.insert("message".into(), json!(claims.message));
    properties.insert("channel".into(), json!(claims.channel));
    if let Some(url) = &claims.url {
        properties.insert("url".into(), json!(url));
    }
    Record {
        line: 1,
        kind: RecordKind::Track,
        contact: claims.contact.clone(),
        time,
        nanos: 0,
        message_id: None,
        event: event.to_string(),
        traits: Map::new(),
        properties,
    }
}

async fn record(state: &Tracking, claims: &Claims, event: &str) -> Result<(), Response> {
    let record = event_record(claims, event, (state.clock)());
    let sink = state.sink.clone();
    let result = tokio::task::spawn_blocking(move || sink.ingest(vec![record]))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    result.map_err(|e| {
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            &format!("This could not be recorded just now ({e}). Please try again in a minute."),
        )
    })
}

async fn open(State(state): State<Tracking>, Path(token): Path<String>) -> Response {
    let Ok(claims) = state.signer.verify_kind(&token, Kind::Open) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // An open that cannot be recorded still shows the image: it is not worth a broken mail.
    let _ = record(&state, &claims, "email_opened").await;
    (
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, max-age=0"),
        ],
        PIXEL_GIF,
    )
        .into_response()
}

async fn click(State(state): State<Tracking>, Path(token): Path<String>) -> Response {
    let claims = match state.signer.verify_kind(&token, Kind::Click) {
        Ok(c) => c,
        Err(e) => return invalid_link(&e.to_string()),
    };
    let Some(url) = claims.url.clone().filter(|u| {
        let lower = u.to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    }) else {
        return invalid_link("the link has no web address");
    };
    let Ok(location) = HeaderValue::from_str(&url) else {
        return invalid_link("the link's address is not valid");
    };
    // A click that cannot be recorded still takes the reader where they wanted to go.
    let _ = record(&state, &claims, "email_clicked").await;
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

async fn unsubscribe_page(State(state): State<Tracking>, Path(token): Path<String>) -> Response {
    let claims = match state.signer.verify_kind(&token, Kind::Unsubscribe) {
        Ok(c) => c,
        Err(e) => return invalid_link(&e.to_string()),
    };
    let what = channel_words(&claims.channel);
    let body = format!(
        "<p>Do you want to stop receiving {what}?</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form>"
    );
    page_html(StatusCode::OK, "Unsubscribe", &body)
}

async fn unsubscribe(State(state): State<Tracking>, Path(token): Path<String>) -> Response {
    let claims = match state.signer.verify_kind(&token, Kind::Unsubscribe) {
        Ok(c) => c,
        Err(e) => return invalid_link(&e.to_string()),
    };
    if let Err(response) = record(&state, &claims, "unsubscribed").await {
        return response;
    }
    let what = channel_words(&claims.channel);
    page(
        StatusCode::OK,
        "You are unsubscribed",
        &format!("You will not receive {what} any more."),
    )
}

fn channel_words(channel: &str) -> &'static str {
    match channel {
        "sms" => "text messages from us",
        "push" => "notifications from us",
        "all" => "any messages from us",
        _ => "marketing emails from us",
    }
}

fn invalid_link(why: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        &format!(
            "This link cannot be used: {why}. Please use the link from the message as it was sent."
        ),
    )
}

/// A small page; `text` is escaped.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    page_html(status, title, &format!("<p>{}</p>", escape(text)))
}

fn page_html(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}\
         button{{font-size:1rem;padding:.5rem 1.5rem}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>",
        title = escape(title)
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn escape(text: &str) -> String {
    super::html::escape_attribute(text)
}
