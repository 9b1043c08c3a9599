//! Segment records (`identify` and `track`) as the engine reads them.
//!
//! Owns: parsing one JSON record or a JSON Lines file into [`Record`]s, with errors that name
//! the line and the reason; event-name normalisation at the boundary; validation against the
//! project's `event` schemas.
//! Must not: decide anything about contacts or flows (that is `engine`), or read files (the
//! caller hands in text).
//!
//! Rules (documented in docs/runtime.md):
//! - `type` is `identify` or `track`; `page`, `screen`, `group` and `alias` records are
//!   accepted and ignored; any other type is an error.
//! - The contact is `userId`, else `anonymousId` (strings or numbers).
//! - `timestamp` is required, RFC 3339 with an offset; there is no fallback to `sentAt` or
//!   the time of reading, because a simulation must not depend on when it runs. Fractions of
//!   a second order records but the engine works in whole seconds.
//! - `track` needs `event`; `unsubscribed` needs `properties.channel` in
//!   `email|sms|push|all` (a missing channel means `all`).

use crate::compile::{normalize_event_name, EventSchema};
use crate::engine::time::Instant;
use crate::syntax::ast::PropertyType;
use chrono::DateTime;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Identify,
    Track,
}

/// One record, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line in its file (or index + 1 in a batch).
    pub line: usize,
    pub kind: RecordKind,
    pub contact: String,
    /// Whole seconds.
    pub time: Instant,
    /// Nanoseconds within the second, for ordering only.
    pub nanos: u32,
    pub message_id: Option<String>,
    /// `track`: the normalised event name.
    pub event: String,
    pub traits: Map<String, Value>,
    pub properties: Map<String, Value>,
}

/// A bad record: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RecordError {
    pub line: usize,
    pub reason: String,
}

/// Parses a JSON Lines text. Blank lines are skipped. The first bad line is an error and no
/// record is returned.
pub fn parse_jsonl(text: &str) -> Result<Vec<Record>, RecordError> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| RecordError {
            line: index + 1,
            reason: format!("not valid JSON: {e}"),
        })?;
        if let Some(record) = parse_owned_record(value, index + 1)? {
            records.push(record);
        }
    }
    Ok(records)
}

/// Parses one record; `Ok(None)` for record types flowc ignores.
pub fn parse_record(value: &Value, line: usize) -> Result<Option<Record>, RecordError> {
    parse_owned_record(value.clone(), line)
}

/// [`parse_record`] taking the value, so that traits and properties are moved, not copied.
pub fn parse_owned_record(mut value: Value, line: usize) -> Result<Option<Record>, RecordError> {
    let fail = |reason: String| RecordError { line, reason };
    let Some(object) = value.as_object_mut() else {
        return Err(fail("a record must be a JSON object".to_string()));
    };
    let traits = take_object(object, "traits").map_err(fail)?;
    let properties = take_object(object, "properties").map_err(fail)?;
    let object = &*object;
    let kind = match object.get("type").and_then(Value::as_str) {
        Some("identify") => RecordKind::Identify,
        Some("track") => RecordKind::Track,
        Some("page" | "screen" | "group" | "alias") => return Ok(None),
        Some(other) => {
            return Err(fail(format!(
                "unknown record type `{other}`; flowc reads `identify` and `track` records"
            )))
        }
        None => {
            return Err(fail(
                "`type` is missing; use `\"type\":\"identify\"` or `\"type\":\"track\"`"
                    .to_string(),
            ))
        }
    };
    let contact = ["userId", "anonymousId"]
        .iter()
        .find_map(|key| match object.get(*key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(|| {
            fail("no `userId` or `anonymousId`; a record must name its contact".to_string())
        })?;
    let (time, nanos) = match object.get("timestamp") {
        None | Some(Value::Null) => {
            return Err(fail(
                "`timestamp` is missing; every record needs an RFC 3339 time such as `2026-03-01T10:00:00Z`".to_string(),
            ))
        }
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(dt) => (dt.timestamp(), dt.timestamp_subsec_nanos()),
            Err(e) => {
                return Err(fail(format!(
                    "`timestamp` `{s}` is not an RFC 3339 time ({e}); write it like `2026-03-01T10:00:00Z`"
                )))
            }
        },
        Some(other) => return Err(fail(format!("`timestamp` must be an RFC 3339 string, found `{other}`"))),
    };
    let message_id = match object.get("messageId") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let event = match kind {
        RecordKind::Identify => String::new(),
        RecordKind::Track => {
            let raw = object
                .get("event")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("a `track` record needs an `event` name".to_string()))?;
            let name = normalize_event_name(raw);
            if name.is_empty() {
                return Err(fail(format!("event name `{raw}` has no letters or digits")));
            }
            name
        }
    };
    if event == "unsubscribed" {
        match properties.get("channel") {
            None | Some(Value::Null) => {}
            Some(Value::String(c)) if ["email", "sms", "push", "all"].contains(&c.as_str()) => {}
            Some(other) => {
                return Err(fail(format!(
                    "`unsubscribed` has `properties.channel` = {other}; use \"email\", \"sms\", \"push\" or \"all\""
                )))
            }
        }
    }
    Ok(Some(Record {
        line,
        kind,
        contact,
        time,
        nanos,
        message_id,
        event,
        traits,
        properties,
    }))
}

fn take_object(object: &mut Map<String, Value>, key: &str) -> Result<Map<String, Value>, String> {
    match object.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(format!("`{key}` must be a JSON object")),
    }
}

/// Checks a `track` record against its event's schema: every required property present,
/// every present property of the declared type (`null` is accepted for optional ones).
pub fn validate(record: &Record, schemas: &[EventSchema]) -> Result<(), RecordError> {
    if record.kind != RecordKind::Track {
        return Ok(());
    }
    let Some(schema) = schemas.iter().find(|s| s.event == record.event) else {
        return Ok(());
    };
    for property in &schema.properties {
        let fail = |reason: String| RecordError {
            line: record.line,
            reason,
        };
        match record.properties.get(&property.name) {
            None | Some(Value::Null) if property.optional => {}
            None | Some(Value::Null) => {
                return Err(fail(format!(
                    "event `{}` requires property `{}` ({}) but the record has none",
                    record.event,
                    property.name,
                    property.ty.keyword()
                )))
            }
            Some(value) => {
                let ok = match property.ty {
                    PropertyType::String => value.is_string(),
                    PropertyType::Number => value.is_number(),
                    PropertyType::Bool => value.is_boolean(),
                    PropertyType::Time => value
                        .as_str()
                        .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok()),
                    PropertyType::List => value.is_array(),
                    PropertyType::Object => value.is_object(),
                };
                if !ok {
                    return Err(fail(format!(
                        "property `{}` of event `{}` must be a {}, found `{value}`",
                        property.name,
                        record.event,
                        property.ty.keyword()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Sorts records into the order the engine applies them: by timestamp, ties in file order.
pub fn sort_for_replay(records: &mut [Record]) {
    records.sort_by_key(|r| (r.time, r.nanos, r.line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_identify_and_track() {
        let text = r#"{"type":"identify","userId":"c1","timestamp":"2026-03-01T10:00:00Z","traits":{"email":"a@x"}}

{"type":"track","anonymousId":"a9","event":"Order Completed","timestamp":"2026-03-01T11:00:00+01:00","properties":{"total":3}}"#;
        let records = parse_jsonl(text).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].event, "order_completed");
        assert_eq!(records[1].contact, "a9");
        assert_eq!(records[1].line, 3);
        assert_eq!(records[1].time, records[0].time);
    }

    #[test]
    fn bad_lines_name_the_line_and_reason() {
        let text = "{\"type\":\"track\",\"userId\":\"c\",\"event\":\"x\",\"timestamp\":\"2026-03-01T10:00:00Z\"}\n{oops\n";
        let error = parse_jsonl(text).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.reason.starts_with("not valid JSON"));
        let missing =
            parse_jsonl("{\"type\":\"track\",\"userId\":\"c\",\"event\":\"x\"}").unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("line 1: `timestamp` is missing"),
            "{missing}"
        );
        let bad_channel = parse_jsonl(
            "{\"type\":\"track\",\"userId\":\"c\",\"event\":\"unsubscribed\",\"timestamp\":\"2026-03-01T10:00:00Z\",\"properties\":{\"channel\":\"fax\"}}",
        )
        .unwrap_err();
        assert!(bad_channel.reason.contains("fax"));
    }
}
