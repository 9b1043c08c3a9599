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
        let parsed = match parse_fast(line, index + 1) {
            Some(parsed) => parsed,
            None => {
                let value: Value = serde_json::from_str(line).map_err(|e| RecordError {
                    line: index + 1,
                    reason: format!("not valid JSON: {e}"),
                })?;
                parse_owned_record(value, index + 1)
            }
        };
        if let Some(record) = parsed? {
            records.push(record);
        }
    }
    Ok(records)
}

/// The fields of a record flowc reads, deserialised straight from the text: no
/// `serde_json::Value` for the whole record, names borrowed. Anything this shape cannot hold
/// (a non-string `type`, `event` or `timestamp`, an escaped one, a non-object `traits`,
/// a duplicate key, bad JSON) makes [`parse_fast`] give up, and the line goes through the
/// general path, which gives the same records and the same errors.
#[derive(serde::Deserialize)]
struct FastRecord<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    #[serde(rename = "userId")]
    user_id: Option<Value>,
    #[serde(rename = "anonymousId")]
    anonymous_id: Option<Value>,
    #[serde(borrow)]
    timestamp: Option<&'a str>,
    #[serde(rename = "messageId")]
    message_id: Option<Value>,
    #[serde(borrow)]
    event: Option<&'a str>,
    traits: Option<Map<String, Value>>,
    properties: Option<Map<String, Value>>,
}

/// One line through [`FastRecord`]; `None` when the general path must decide.
fn parse_fast(line: &str, number: usize) -> Option<Result<Option<Record>, RecordError>> {
    // A derived struct would also accept a JSON array (fields by position).
    if !line.trim_start().starts_with('{') {
        return None;
    }
    let fast: FastRecord<'_> = serde_json::from_str(line).ok()?;
    Some(build(
        number,
        Parts {
            kind: fast.kind,
            user_id: fast.user_id.as_ref(),
            anonymous_id: fast.anonymous_id.as_ref(),
            timestamp: Ok(fast.timestamp),
            message_id: fast.message_id.as_ref(),
            event: fast.event,
            traits: fast.traits.unwrap_or_default(),
            properties: fast.properties.unwrap_or_default(),
        },
    ))
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
    let timestamp = match object.get("timestamp") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(other),
    };
    build(
        line,
        Parts {
            kind: object.get("type").and_then(Value::as_str),
            user_id: object.get("userId"),
            anonymous_id: object.get("anonymousId"),
            timestamp,
            message_id: object.get("messageId"),
            event: object.get("event").and_then(Value::as_str),
            traits,
            properties,
        },
    )
}

/// What a record's checks read, from either path.
struct Parts<'a> {
    kind: Option<&'a str>,
    user_id: Option<&'a Value>,
    anonymous_id: Option<&'a Value>,
    /// `Ok(None)`: missing or null; `Err`: not a string.
    timestamp: Result<Option<&'a str>, &'a Value>,
    message_id: Option<&'a Value>,
    /// `None`: missing or not a string.
    event: Option<&'a str>,
    traits: Map<String, Value>,
    properties: Map<String, Value>,
}

/// The checks and normalisation of a record, in the order its errors are reported.
fn build(line: usize, parts: Parts<'_>) -> Result<Option<Record>, RecordError> {
    let fail = |reason: String| RecordError { line, reason };
    let Parts {
        kind,
        user_id,
        anonymous_id,
        timestamp,
        message_id,
        event,
        traits,
        properties,
    } = parts;
    let kind = match kind {
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
    let contact = [user_id, anonymous_id]
        .iter()
        .find_map(|value| match value {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(|| {
            fail("no `userId` or `anonymousId`; a record must name its contact".to_string())
        })?;
    let (time, nanos) = match timestamp {
        Ok(None) => {
            return Err(fail(
                "`timestamp` is missing; every record needs an RFC 3339 time such as `2026-03-01T10:00:00Z`".to_string(),
            ))
        }
        Ok(Some(s)) => match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(dt) => (dt.timestamp(), dt.timestamp_subsec_nanos()),
            Err(e) => {
                return Err(fail(format!(
                    "`timestamp` `{s}` is not an RFC 3339 time ({e}); write it like `2026-03-01T10:00:00Z`"
                )))
            }
        },
        Err(other) => return Err(fail(format!("`timestamp` must be an RFC 3339 string, found `{other}`"))),
    };
    let message_id = match message_id {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let event = match kind {
        RecordKind::Identify => String::new(),
        RecordKind::Track => {
            let raw =
                event.ok_or_else(|| fail("a `track` record needs an `event` name".to_string()))?;
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
    fn the_fast_path_agrees_with_the_general_one() {
        let lines = [
            r#"{"type":"identify","userId":"c1","timestamp":"2026-03-01T10:00:00Z","traits":{"email":"a@x","consent":{"email":true}}}"#,
            r#"{"type":"track","userId":42,"event":"Order Completed","timestamp":"2026-03-01T10:00:00.5+01:00","properties":{"total":3.5},"messageId":7}"#,
            r#"{"type":"track","userId":"  ","anonymousId":"a1","event":"x","timestamp":"2026-03-01T10:00:00Z","messageId":{"a":1}}"#,
            r#"{"type":"track","userId":"c","event":"unsubscribed","timestamp":"2026-03-01T10:00:00Z","properties":{"channel":"fax"}}"#,
            r#"{"type":"track","userId":"c","event":"unsubscribed","timestamp":"2026-03-01T10:00:00Z","properties":null,"traits":null}"#,
            r#"{"type":"tr\u0061ck","userId":"c","event":"x","timestamp":"2026-03-01T10:00:00Z"}"#,
            r#"{"type":"track","userId":"c","event":"x","event":"y","timestamp":"2026-03-01T10:00:00Z"}"#,
            r#"{"type":"track","userId":"c","event":5,"timestamp":"2026-03-01T10:00:00Z"}"#,
            r#"{"type":"identify","userId":"c","event":5,"timestamp":"2026-03-01T10:00:00Z"}"#,
            r#"{"type":"track","userId":"c","event":"x","timestamp":12}"#,
            r#"{"type":"track","userId":"c","event":"x","timestamp":null}"#,
            r#"{"type":"track","userId":"c","event":"x","timestamp":"yesterday"}"#,
            r#"{"type":7,"userId":"c","event":"x","timestamp":"2026-03-01T10:00:00Z"}"#,
            r#"{"type":"page","userId":"c","timestamp":"2026-03-01T10:00:00Z","properties":{"path":"/"}}"#,
            r#"{"type":"alien","userId":"c","timestamp":"2026-03-01T10:00:00Z"}"#,
            r#"{"type":"track","event":"x","timestamp":"2026-03-01T10:00:00Z"}"#,
            r#"{"type":"track","userId":"c","event":"!!","timestamp":"2026-03-01T10:00:00Z","extra":[1,{"a":null}]}"#,
            r#"{"type":"track","userId":"c","event":"x","timestamp":"2026-03-01T10:00:00Z","traits":[1]}"#,
            r#"["track","c","x","2026-03-01T10:00:00Z"]"#,
            r#"{"type":"track","userId":"c","event":"x","timestamp":"2026-03-01T10:00:00Z"} trailing"#,
            r#"  {"type":"identify","userId":"ü\n","timestamp":"2026-03-01T10:00:00Z","traits":{"a":{"a":1,"a":2}}}"#,
        ];
        assert!(parse_fast(lines[0], 1).is_some() && parse_fast(lines[1], 1).is_some());
        for line in lines {
            let general = serde_json::from_str::<Value>(line)
                .map_err(|e| e.to_string())
                .map(|v| parse_owned_record(v, 1));
            if let Some(fast) = parse_fast(line, 1) {
                assert_eq!(Ok(fast), general, "{line}");
            }
            let whole = parse_jsonl(line).map(|r| r.into_iter().next());
            match general {
                Ok(record) => assert_eq!(
                    whole.map_err(|e| e.reason),
                    record.map_err(|e| e.reason),
                    "{line}"
                ),
                Err(_) => assert!(whole.is_err(), "{line}"),
            }
        }
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
