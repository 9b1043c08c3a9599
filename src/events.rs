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
use std::borrow::Cow;

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

/// Parses a JSON Lines text. Blank lines are skipped, and so is a UTF-8 byte-order mark at the
/// start (spreadsheet and Windows tools write one). The first bad line is an error and no
/// record is returned.
pub fn parse_jsonl(text: &str) -> Result<Vec<Record>, RecordError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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
    #[serde(rename = "userId", borrow)]
    user_id: Option<Id<'a>>,
    #[serde(rename = "anonymousId", borrow)]
    anonymous_id: Option<Id<'a>>,
    #[serde(borrow)]
    timestamp: Option<&'a str>,
    #[serde(rename = "messageId", borrow)]
    message_id: Option<Id<'a>>,
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
            user_id: fast.user_id,
            anonymous_id: fast.anonymous_id,
            timestamp: Ok(fast.timestamp),
            message_id: fast.message_id,
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
            user_id: object.get("userId").map(Id::of),
            anonymous_id: object.get("anonymousId").map(Id::of),
            timestamp,
            message_id: object.get("messageId").map(Id::of),
            event: object.get("event").and_then(Value::as_str),
            traits,
            properties,
        },
    )
}

/// A `userId`, `anonymousId` or `messageId`: only strings and numbers name anything.
#[derive(Debug)]
enum Id<'a> {
    /// Borrowed from the text when it has no escape.
    Str(Cow<'a, str>),
    Number(serde_json::Number),
    Other,
}

impl<'a> Id<'a> {
    fn of(value: &'a Value) -> Id<'a> {
        match value {
            Value::String(s) => Id::Str(Cow::Borrowed(s)),
            Value::Number(n) => Id::Number(n.clone()),
            _ => Id::Other,
        }
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Id<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Id<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Id<'a>, E> {
                Ok(Id::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Id<'a>, E> {
                Ok(Id::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Id<'a>, E> {
                Ok(Id::Str(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Id<'a>, E> {
                Ok(Id::Number(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Id<'a>, E> {
                Ok(Id::Number(v.into()))
            }
            // As `serde_json::Value` does (JSON has no NaN or infinity).
            fn visit_f64<E>(self, v: f64) -> Result<Id<'a>, E> {
                Ok(serde_json::Number::from_f64(v).map_or(Id::Other, Id::Number))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Id<'a>, E> {
                Ok(Id::Other)
            }
            fn visit_unit<E>(self) -> Result<Id<'a>, E> {
                Ok(Id::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Id<'a>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Id::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Id<'a>, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Id::Other)
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

/// What a record's checks read, from either path.
struct Parts<'a> {
    kind: Option<&'a str>,
    user_id: Option<Id<'a>>,
    anonymous_id: Option<Id<'a>>,
    /// `Ok(None)`: missing or null; `Err`: not a string.
    timestamp: Result<Option<&'a str>, &'a Value>,
    message_id: Option<Id<'a>>,
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
        .into_iter()
        .find_map(|id| match id {
            Some(Id::Str(s)) if !s.trim().is_empty() => Some(s.into_owned()),
            Some(Id::Number(n)) => Some(n.to_string()),
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
        Ok(Some(s)) => match parse_timestamp(s.trim()).ok_or(()).or_else(|()| {
            DateTime::parse_from_rfc3339(s.trim())
                .map(|dt| (dt.timestamp(), dt.timestamp_subsec_nanos()))
        }) {
            Ok(parsed) => parsed,
            Err(e) => {
                return Err(fail(format!(
                    "`timestamp` `{s}` is not an RFC 3339 time ({e}); write it like `2026-03-01T10:00:00Z`"
                )))
            }
        },
        Err(other) => return Err(fail(format!("`timestamp` must be an RFC 3339 string, found `{other}`"))),
    };
    let message_id = match message_id {
        Some(Id::Str(s)) => Some(s.into_owned()),
        Some(Id::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let event = match kind {
        RecordKind::Identify => String::new(),
        RecordKind::Track => {
            let raw =
                event.ok_or_else(|| fail("a `track` record needs an `event` name".to_string()))?;
            let name = normalized_event_name(raw);
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

/// [`normalize_event_name`], with ASCII names (nearly all) done byte by byte: for ASCII,
/// `is_alphanumeric` and `to_lowercase` are their ASCII versions.
fn normalized_event_name(raw: &str) -> String {
    if !raw.is_ascii() {
        return normalize_event_name(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut pending_separator = false;
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() {
            if pending_separator && !out.is_empty() {
                out.push('_');
            }
            pending_separator = false;
            out.push(char::from(byte.to_ascii_lowercase()));
        } else {
            pending_separator = true;
        }
    }
    out
}

/// The usual form of an RFC 3339 time, `2026-03-01T10:00:00Z`, `…:00.123+01:00`, as
/// (seconds, nanoseconds) of its instant; `None` for anything else (another separator or
/// case, a leap second, more than nine digits of fraction, an invalid date or offset), which
/// chrono then decides. Where both accept a text they agree (a test checks).
fn parse_timestamp(text: &str) -> Option<(Instant, u32)> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let mut n = 0;
        for &c in b.get(range)? {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(c - b'0');
        }
        Some(n)
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0;
    if b[at] == b'.' {
        let start = at + 1;
        at = start;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        let count = at - start;
        if count == 0 || count > 9 {
            return None;
        }
        nanos = digits(start..at)? * 10u32.pow(9 - count as u32);
    }
    let offset = match b.get(at..)? {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let (y, m, d) = (i64::from(year), i64::from(month), i64::from(day));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    Some((seconds, nanos))
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
                    PropertyType::Time => value.as_str().is_some_and(|s| {
                        parse_timestamp(s).is_some() || DateTime::parse_from_rfc3339(s).is_ok()
                    }),
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
            r#"{"type":"track","userId":"u\u0031","messageId":"m\"1","event":"x","timestamp":"2026-03-01T10:00:00.123456789-05:30"}"#,
            r#"{"type":"track","userId":1.5e3,"messageId":-7,"event":"x","timestamp":"2026-03-01 10:00:00z"}"#,
            r#"{"type":"track","userId":true,"anonymousId":[1,{"a":[]}],"event":"x","timestamp":"2026-03-01T10:00:00Z"}"#,
            r#"{"type":"track","userId":null,"anonymousId":"  a  ","messageId":null,"event":"x","timestamp":"2026-02-29T10:00:00Z"}"#,
            r#"{"type":"track","userId":18446744073709551615,"event":"Ünïcode Évent","timestamp":"2024-02-29T23:59:59.5+14:00"}"#,
            r#"{"type":"track","userId":"c","event":"x","timestamp":"2026-03-01T10:00:60Z"}"#,
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
    fn the_timestamp_parser_agrees_with_chrono_on_calendar_edges() {
        for year in [0, 1, 4, 100, 400, 1900, 1970, 2000, 2024, 2026, 2100, 9999] {
            for (month, day) in [
                (1, 31),
                (2, 28),
                (2, 29),
                (2, 30),
                (4, 30),
                (4, 31),
                (12, 31),
            ] {
                for offset in ["Z", "+00:00", "-00:00", "+23:59", "-12:30"] {
                    let text = format!("{year:04}-{month:02}-{day:02}T23:59:59.5{offset}");
                    let chrono = DateTime::parse_from_rfc3339(&text)
                        .ok()
                        .map(|dt| (dt.timestamp(), dt.timestamp_subsec_nanos()));
                    assert_eq!(parse_timestamp(&text), chrono, "{text}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_timestamp_parser_agrees_with_chrono(
            year in 0u32..10_000,
            month in 0u32..14,
            day in 0u32..33,
            time in (0u32..25, 0u32..61, 0u32..62),
            fraction in proptest::option::of("[0-9]{0,11}"),
            offset in proptest::option::of((proptest::bool::ANY, 0u32..26, 0u32..61)),
            separator in proptest::sample::select(vec!['T', 't', ' ']),
            zulu in proptest::sample::select(vec!["Z", "z"]),
        ) {
            let (hour, minute, second) = time;
            let mut text = format!("{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}");
            if let Some(f) = &fraction {
                text.push('.');
                text.push_str(f);
            }
            match offset {
                None => text.push_str(zulu),
                Some((minus, h, m)) => {
                    text.push_str(&format!("{}{h:02}:{m:02}", if minus { '-' } else { '+' }));
                }
            }
            let chrono = DateTime::parse_from_rfc3339(&text)
                .ok()
                .map(|dt| (dt.timestamp(), dt.timestamp_subsec_nanos()));
            let fast = parse_timestamp(&text);
            if fast.is_some() {
                proptest::prop_assert_eq!(fast, chrono, "{}", text);
            }
            // The usual forms never leave the fast path.
            let usual = separator == 'T'
                && zulu == "Z"
                && second < 60
                && fraction.as_ref().map_or(true, |f| (1..=9).contains(&f.len()))
                && offset.map_or(true, |(_, h, m)| h < 24 && m < 60);
            if usual && chrono.is_some() {
                proptest::prop_assert!(fast.is_some(), "{}", text);
            }
        }

        #[test]
        fn event_names_are_normalised_as_the_compiler_does(name in "(\\PC|[ _A-Za-z0-9.-]){0,24}") {
            proptest::prop_assert_eq!(normalized_event_name(&name), normalize_event_name(&name));
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
