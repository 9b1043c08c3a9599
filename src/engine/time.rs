//! Calendar arithmetic on instants (Unix seconds) in a timezone: calendar units, times of day,
//! quiet-hour windows, anniversaries and schedule ticks.
//!
//! Owns: every rule about local time (DST gaps resolve to the first instant after the gap,
//! ambiguous local times to the earlier instant; 29 Feb anniversaries fall on 28 Feb in
//! non-leap years).
//! Must not: read the clock. Every function gets `now` from its caller.

use crate::compile::{Dur, QuietWindow};
use chrono::{
    DateTime, Datelike, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// An instant: whole seconds since the Unix epoch, UTC.
pub type Instant = i64;

/// `2026-03-01T10:00:00Z`.
pub fn format_instant(t: Instant) -> String {
    let mut text = String::with_capacity(20);
    push_instant(&mut text, t);
    text
}

/// Appends [`format_instant`] to `out`: digits by hand for years 0–9999 (delivery lines
/// print one per line; chrono's `format` parses its pattern on every call), chrono beyond.
pub fn push_instant(out: &mut String, t: Instant) {
    let days = t.div_euclid(86_400);
    let second = t.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        match DateTime::<Utc>::from_timestamp(t, 0) {
            Some(dt) => out.push_str(&dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            None => out.push_str(&t.to_string()),
        }
        return;
    }
    fn digits(out: &mut String, value: i64, width: u32) {
        for power in (0..width).rev() {
            let digit = (value / 10_i64.pow(power)) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
    }
    digits(out, year, 4);
    out.push('-');
    digits(out, month, 2);
    out.push('-');
    digits(out, day, 2);
    out.push('T');
    digits(out, second / 3600, 2);
    out.push(':');
    digits(out, second / 60 % 60, 2);
    out.push(':');
    digits(out, second % 60, 2);
    out.push('Z');
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 time to an instant (fractions of a second are dropped).
pub fn parse_instant(text: &str) -> Option<Instant> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|dt| dt.timestamp())
}

fn local(t: Instant, tz: Tz) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp(t, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .naive_local()
}

/// `local(t, tz).num_seconds_from_midnight()` from the UTC offset alone (one offset look-up,
/// no local date-time built): the local second of the day is the UTC one shifted by it.
fn local_second_of_day(t: Instant, tz: Tz) -> u32 {
    match DateTime::<Utc>::from_timestamp(t, 0) {
        Some(utc) => {
            let offset = tz.offset_from_utc_datetime(&utc.naive_utc()).fix();
            (t + i64::from(offset.local_minus_utc())).rem_euclid(86_400) as u32
        }
        None => local(t, tz).num_seconds_from_midnight(),
    }
}

/// The instant of a local date-time; in a DST gap, the first instant after the gap; when
/// ambiguous, the earlier one.
pub fn resolve_local(naive: NaiveDateTime, tz: Tz) -> Instant {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) => dt.timestamp(),
        LocalResult::Ambiguous(earliest, _) => earliest.timestamp(),
        LocalResult::None => {
            // A gap: step forward minute by minute (gaps are at most a few hours).
            let mut probe = naive;
            for _ in 0..(26 * 60) {
                probe += Duration::minutes(1);
                if let Some(dt) = tz.from_local_datetime(&probe).earliest() {
                    return dt.timestamp();
                }
            }
            naive.and_utc().timestamp()
        }
    }
}

/// `t + d`: fixed units add seconds; months and years are calendar units in `tz` (the day is
/// clamped to the end of a shorter month).
pub fn add(t: Instant, d: Dur, tz: Tz) -> Instant {
    match d {
        Dur::Seconds(s) => t.saturating_add(s),
        Dur::Months(m) => {
            let l = local(t, tz);
            let shifted = if m >= 0 {
                l.checked_add_months(Months::new(u32::try_from(m).unwrap_or(u32::MAX)))
            } else {
                l.checked_sub_months(Months::new(u32::try_from(-m).unwrap_or(u32::MAX)))
            };
            shifted.map_or(Instant::MAX / 2, |n| resolve_local(n, tz))
        }
    }
}

/// `t - d`, the inverse of [`add`].
pub fn sub(t: Instant, d: Dur, tz: Tz) -> Instant {
    match d {
        Dur::Seconds(s) => t.saturating_sub(s),
        Dur::Months(m) => add(t, Dur::Months(-m), tz),
    }
}

/// The first instant `now` at which an occurrence at `t` has left the window of
/// `count(... within d)`, i.e. the first `now` with `sub(now, d) >= t` (the bound is
/// `now - d < t`). For fixed units and most calendar cases that is `add(t, d)`; when the month
/// addition clamped the day (31 Jan + 1mo = 28 Feb), `now - d` stays before `t` until the
/// next month begins, so the edge is a later local midnight.
pub fn window_exit(t: Instant, d: Dur, tz: Tz) -> Instant {
    let mut edge = add(t, d, tz);
    for _ in 0..4 {
        if sub(edge, d, tz) >= t {
            return edge;
        }
        edge = next_time_of_day(edge, 0, tz, false);
    }
    edge
}

/// The first instant at local time `minute_of_day` that is at or after `t` (`inclusive`) or
/// strictly after it.
pub fn next_time_of_day(t: Instant, minute_of_day: u16, tz: Tz, inclusive: bool) -> Instant {
    let l = local(t, tz);
    let time = NaiveTime::from_hms_opt(
        u32::from(minute_of_day / 60),
        u32::from(minute_of_day % 60),
        0,
    )
    .unwrap_or(NaiveTime::MIN);
    let mut date = l.date();
    for _ in 0..3 {
        let candidate = resolve_local(date.and_time(time), tz);
        if candidate > t || (inclusive && candidate == t) {
            return candidate;
        }
        date = date.succ_opt().unwrap_or(date);
    }
    t + 86_400
}

/// When `t` falls inside the quiet window (start inclusive, end exclusive, local time), the
/// instant the window ends; `None` outside it.
pub fn quiet_until(t: Instant, window: QuietWindow, tz: Tz) -> Option<Instant> {
    let second = local_second_of_day(t, tz);
    let start = u32::from(window.start) * 60;
    let end = u32::from(window.end) * 60;
    let quiet = if start < end {
        second >= start && second < end
    } else {
        second >= start || second < end
    };
    quiet.then(|| next_time_of_day(t, window.end, tz, false))
}

/// A `YYYY-MM-DD` date (a longer RFC 3339 date-time is accepted by its date part).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let b = text.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let number = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<u32>().ok());
        if let (Some(y), Some(m), Some(d)) = (number(0..4), number(5..7), number(8..10)) {
            return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|dt| dt.date_naive())
        })
}

/// The first anniversary of `date` at local `minute_of_day` that is at or after `t`
/// (`inclusive`) or strictly after it. 29 February falls on 28 February in non-leap years.
pub fn next_anniversary(
    date: NaiveDate,
    minute_of_day: u16,
    tz: Tz,
    t: Instant,
    inclusive: bool,
) -> Instant {
    let year = local(t, tz).year();
    let time = NaiveTime::from_hms_opt(
        u32::from(minute_of_day / 60),
        u32::from(minute_of_day % 60),
        0,
    )
    .unwrap_or(NaiveTime::MIN);
    for y in (year - 1)..=(year + 2) {
        let day = NaiveDate::from_ymd_opt(y, date.month(), date.day())
            .or_else(|| NaiveDate::from_ymd_opt(y, date.month(), date.day().saturating_sub(1)));
        let Some(day) = day else { continue };
        let candidate = resolve_local(day.and_time(time), tz);
        if candidate > t || (inclusive && candidate == t) {
            return candidate;
        }
    }
    Instant::MAX / 2
}

/// The first schedule tick strictly after `start` for `when every EVERY [at HH:MM]`, in `tz`.
/// With `at`, ticks fall at that local time; without it, whole-day periods tick at local
/// midnight and shorter ones at multiples of the period since local midnight.
pub fn first_tick(every: Dur, at: Option<u16>, tz: Tz, start: Instant) -> Instant {
    match (every, at) {
        (_, Some(minute)) => next_time_of_day(start, minute, tz, false),
        (Dur::Seconds(s), None) if s > 0 && s < 86_400 => {
            let midnight = resolve_local(local(start, tz).date().and_time(NaiveTime::MIN), tz);
            let k = (start - midnight).div_euclid(s) + 1;
            midnight + k * s
        }
        _ => next_time_of_day(start, 0, tz, false),
    }
}

/// The tick after `tick`: whole days keep the local time of day across DST changes.
pub fn next_tick(every: Dur, tz: Tz, tick: Instant) -> Instant {
    match every {
        Dur::Seconds(s) if s > 0 && s % 86_400 == 0 => {
            let l = local(tick, tz);
            resolve_local(l + Duration::days(s / 86_400), tz)
        }
        Dur::Seconds(s) => tick + s.max(1),
        months => add(tick, months, tz).max(tick + 1),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_instant_matches_chrono() {
        let chrono = |t: i64| match chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0) {
            Some(dt) => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            None => t.to_string(),
        };
        let mut t: i64 = -62_167_219_200 - 86_400 * 400;
        while t < 253_402_300_800 + 86_400 * 400 {
            assert_eq!(super::format_instant(t), chrono(t), "{t}");
            t += 86_399 * 7 + 3_601;
        }
        for t in [
            0,
            -1,
            1,
            951_782_400,
            1_709_164_800,
            i64::MAX,
            i64::MIN,
            1 << 40,
        ] {
            assert_eq!(super::format_instant(t), chrono(t), "{t}");
        }
    }

    use super::*;

    fn at(text: &str) -> Instant {
        parse_instant(text).unwrap()
    }

    #[test]
    fn months_are_calendar_months_clamped() {
        let utc = chrono_tz::UTC;
        assert_eq!(
            format_instant(add(at("2026-01-31T10:00:00Z"), Dur::Months(1), utc)),
            "2026-02-28T10:00:00Z"
        );
        assert_eq!(
            format_instant(add(at("2024-02-29T10:00:00Z"), Dur::Months(12), utc)),
            "2025-02-28T10:00:00Z"
        );
        let madrid: Tz = "Europe/Madrid".parse().unwrap();
        // 09:00 local in winter (UTC+1) → 09:00 local in summer (UTC+2).
        assert_eq!(
            format_instant(add(at("2026-03-01T08:00:00Z"), Dur::Months(1), madrid)),
            "2026-04-01T07:00:00Z"
        );
    }

    #[test]
    fn a_clamped_month_leaves_the_window_when_the_next_month_begins() {
        let utc = chrono_tz::UTC;
        let madrid: Tz = "Europe/Madrid".parse().unwrap();
        let exit = |t: &str, d: Dur, tz: Tz| format_instant(window_exit(at(t), d, tz));
        assert_eq!(
            exit("2026-01-15T10:00:00Z", Dur::Months(1), utc),
            "2026-02-15T10:00:00Z"
        );
        // 31 Jan + 1mo = 28 Feb, but at 28 Feb 10:00 `now - 1mo` is 28 Jan: still inside.
        assert_eq!(
            exit("2026-01-31T10:00:00Z", Dur::Months(1), utc),
            "2026-03-01T00:00:00Z"
        );
        // Local midnight: 1 May 00:00 CEST.
        assert_eq!(
            exit("2026-03-31T10:00:00Z", Dur::Months(1), madrid),
            "2026-04-30T22:00:00Z"
        );
        assert_eq!(
            exit("2026-01-31T10:00:00Z", Dur::Seconds(86_400), utc),
            "2026-02-01T10:00:00Z"
        );
    }

    #[test]
    fn time_of_day_at_or_after() {
        let utc = chrono_tz::UTC;
        assert_eq!(
            format_instant(next_time_of_day(
                at("2026-03-01T09:00:00Z"),
                9 * 60,
                utc,
                true
            )),
            "2026-03-01T09:00:00Z"
        );
        assert_eq!(
            format_instant(next_time_of_day(
                at("2026-03-01T09:00:00Z"),
                9 * 60,
                utc,
                false
            )),
            "2026-03-02T09:00:00Z"
        );
        assert_eq!(
            format_instant(next_time_of_day(
                at("2026-03-01T09:00:01Z"),
                9 * 60,
                utc,
                true
            )),
            "2026-03-02T09:00:00Z"
        );
    }

    #[test]
    fn dst_gap_resolves_after_the_gap() {
        let madrid: Tz = "Europe/Madrid".parse().unwrap();
        // 2026-03-29 02:30 does not exist in Madrid; 03:00 local = 01:00Z.
        let t = next_time_of_day(at("2026-03-29T00:00:00Z"), 2 * 60 + 30, madrid, true);
        assert_eq!(format_instant(t), "2026-03-29T01:00:00Z");
    }

    #[test]
    fn quiet_windows_wrap_midnight() {
        let utc = chrono_tz::UTC;
        let w = QuietWindow {
            start: 21 * 60,
            end: 8 * 60,
        };
        assert_eq!(
            quiet_until(at("2026-03-01T23:00:00Z"), w, utc)
                .map(format_instant)
                .as_deref(),
            Some("2026-03-02T08:00:00Z")
        );
        assert_eq!(
            quiet_until(at("2026-03-01T02:00:00Z"), w, utc)
                .map(format_instant)
                .as_deref(),
            Some("2026-03-01T08:00:00Z")
        );
        assert_eq!(
            quiet_until(at("2026-03-01T21:00:00Z"), w, utc)
                .map(format_instant)
                .as_deref(),
            Some("2026-03-02T08:00:00Z")
        );
        assert_eq!(quiet_until(at("2026-03-01T08:00:00Z"), w, utc), None);
        assert_eq!(quiet_until(at("2026-03-01T20:59:59Z"), w, utc), None);
    }

    #[test]
    fn the_local_second_of_the_day_matches_the_local_date_time() {
        let zones: [Tz; 5] = [
            chrono_tz::UTC,
            "Europe/Madrid".parse().unwrap(),
            "America/New_York".parse().unwrap(),
            "Asia/Kolkata".parse().unwrap(),
            "Australia/Lord_Howe".parse().unwrap(),
        ];
        for tz in zones {
            // Every 7,777 s over two years, DST changes included, and instants far away.
            let mut t = at("2025-01-01T00:00:00Z");
            while t < at("2027-01-01T00:00:00Z") {
                assert_eq!(
                    local_second_of_day(t, tz),
                    local(t, tz).num_seconds_from_midnight()
                );
                t += 7_777;
            }
            for t in [i64::MIN, -1, 0, i64::MAX, -62_167_219_200, 253_402_300_799] {
                assert_eq!(
                    local_second_of_day(t, tz),
                    local(t, tz).num_seconds_from_midnight()
                );
            }
        }
    }

    #[test]
    fn leap_day_anniversary() {
        let utc = chrono_tz::UTC;
        let d = parse_date("1992-02-29").unwrap();
        assert_eq!(
            format_instant(next_anniversary(
                d,
                9 * 60,
                utc,
                at("2026-01-01T00:00:00Z"),
                true
            )),
            "2026-02-28T09:00:00Z"
        );
        assert_eq!(
            format_instant(next_anniversary(
                d,
                9 * 60,
                utc,
                at("2027-03-01T00:00:00Z"),
                true
            )),
            "2028-02-29T09:00:00Z"
        );
    }

    #[test]
    fn ticks() {
        let utc = chrono_tz::UTC;
        let day = Dur::Seconds(86_400);
        let first = first_tick(day, Some(9 * 60), utc, at("2026-03-01T09:00:00Z"));
        assert_eq!(format_instant(first), "2026-03-02T09:00:00Z");
        assert_eq!(
            format_instant(next_tick(day, utc, first)),
            "2026-03-03T09:00:00Z"
        );
        assert_eq!(
            format_instant(first_tick(
                Dur::Seconds(6 * 3600),
                None,
                utc,
                at("2026-03-01T07:00:00Z")
            )),
            "2026-03-01T12:00:00Z"
        );
    }
}
