//! Integration tests: the engine through `simulate`, one scenario per rule of RUNTIME.md 2–3.
//! Each test is a project text and JSON Lines records in, the exact delivery lines out.

use flowc::compile::{self, CompiledProject};
use flowc::config::Config;
use flowc::engine::time::parse_instant;
use flowc::events;
use flowc::project::Project;
use flowc::simulate::{self, SimulateOptions, Simulation};
use std::path::PathBuf;

const EMAIL: &str = r#""email":"x@example.com","consent":{"email":true,"sms":true,"push":true}"#;

fn identify(contact: &str, time: &str, traits: &str) -> String {
    format!(
        r#"{{"type":"identify","userId":"{contact}","timestamp":"{time}","traits":{{{traits}}}}}"#
    )
}

fn track(contact: &str, time: &str, event: &str, properties: &str) -> String {
    format!(
        r#"{{"type":"track","userId":"{contact}","timestamp":"{time}","event":"{event}","properties":{{{properties}}}}}"#
    )
}

/// The project of one file.
fn load(flows: &str) -> Project {
    Project::from_sources(
        PathBuf::from("."),
        vec![(PathBuf::from("flows/main.flow"), flows.to_string())],
    )
}

fn compile_project(config: &str, flows: &str) -> CompiledProject {
    let project = load(flows);
    let errors: Vec<_> = flowc::check::check(&project)
        .into_iter()
        .filter(|d| d.severity == flowc::diagnostic::Severity::Error)
        .map(|d| simulate::describe_diagnostic(&project, &d))
        .collect();
    assert!(
        errors.is_empty(),
        "the test project has errors:\n{}",
        errors.join("\n")
    );
    let config = Config::parse(config).expect("config");
    compile::compile(&project, &config).unwrap_or_else(|d| panic!("compile: {d:?}"))
}

fn run_full(
    config: &str,
    flows: &str,
    records: &[String],
    until: Option<&str>,
    trace: bool,
) -> (CompiledProject, Simulation) {
    let compiled = compile_project(config, flows);
    let parsed = events::parse_jsonl(&records.join("\n")).expect("records");
    for record in &parsed {
        events::validate(record, &compiled.schemas).expect("schema");
    }
    let options = SimulateOptions {
        until: until.map(|u| parse_instant(u).expect("until")),
        trace,
        ..Default::default()
    };
    let sim = simulate::run(&compiled, parsed, &options);
    (compiled, sim)
}

fn run_with(config: &str, flows: &str, records: &[String], until: Option<&str>) -> Vec<String> {
    let (compiled, sim) = run_full(config, flows, records, until, false);
    sim.deliveries
        .iter()
        .map(|d| simulate::delivery_line(&compiled, d, false))
        .collect()
}

fn run(flows: &str, records: &[String]) -> Vec<String> {
    run_with("", flows, records, None)
}

fn line(
    time: &str,
    contact: &str,
    flow: &str,
    message: &str,
    channel: &str,
    reason: Option<&str>,
) -> String {
    match reason {
        None => format!(
            r#"{{"time":"{time}","contact":"{contact}","flow":"{flow}","message":"{message}","channel":"{channel}","status":"sent"}}"#
        ),
        Some(r) => format!(
            r#"{{"time":"{time}","contact":"{contact}","flow":"{flow}","message":"{message}","channel":"{channel}","status":"skipped","reason":"{r}"}}"#
        ),
    }
}

const MESSAGES: &str = r#"
message reminder: email {
    subject: "Your cart"
    body: "<p>Still thinking?</p>"
}
message promo: email {
    subject: "Offer"
    body: "<p>10% off</p>"
}
message text_ping: sms {
    body: "Hi"
}
message receipt: email transactional {
    subject: "Receipt"
    body: "<p>Thanks</p>"
}
"#;

fn with_messages(flows: &str) -> String {
    format!("{MESSAGES}\n{flows}")
}

#[test]
fn abandoned_cart_exit_at_the_same_instant_as_a_reminder() {
    let flows = with_messages(
        "flow abandoned_cart {
    when cart_abandoned
    exit on order_completed
    wait 1h
    send reminder
    wait 1d
    send reminder
}",
    );
    let records = [
        identify("c1", "2026-03-01T09:00:00Z", EMAIL),
        identify("c2", "2026-03-01T09:00:00Z", EMAIL),
        track(
            "c1",
            "2026-03-01T10:00:00Z",
            "Cart Abandoned",
            r#""cart_url":"u""#,
        ),
        track("c2", "2026-03-01T10:00:00Z", "cart_abandoned", ""),
        // The order lands at the instant the reminder is due: the exit wins.
        track("c2", "2026-03-01T11:00:00Z", "Order Completed", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T11:00:00Z",
                "c1",
                "abandoned_cart",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-02T11:00:00Z",
                "c1",
                "abandoned_cart",
                "reminder",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn exit_between_reminders_stops_the_second() {
    let flows = with_messages(
        "flow abandoned_cart {
    when cart_abandoned
    exit on order_completed where event.cart_id == trigger.cart_id
    wait 1h
    send reminder
    wait 1d
    send reminder
}",
    );
    let records = [
        identify("c1", "2026-03-01T09:00:00Z", EMAIL),
        track(
            "c1",
            "2026-03-01T10:00:00Z",
            "cart_abandoned",
            r#""cart_id":"a""#,
        ),
        // A different cart does not stop it.
        track(
            "c1",
            "2026-03-01T12:00:00Z",
            "order_completed",
            r#""cart_id":"b""#,
        ),
        track(
            "c1",
            "2026-03-02T10:59:59Z",
            "order_completed",
            r#""cart_id":"a""#,
        ),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![line(
            "2026-03-01T11:00:00Z",
            "c1",
            "abandoned_cart",
            "reminder",
            "email",
            None
        )]
    );
}

#[test]
fn double_opt_in_with_transactional_reminders() {
    let flows = r#"
message confirm: email transactional {
    subject: "Confirm your address"
    body: "<a href='x'>confirm</a>"
}
message welcome: email {
    subject: "Welcome"
    body: "<p>Hello</p>"
}
flow double_opt_in {
    when signed_up
    send confirm
    wait for email_confirmed up to 2d {
        send welcome
    } else {
        send confirm
        wait for email_confirmed up to 3d {
            send welcome
        }
    }
}
"#;
    let records = [
        // d1 confirms the next day; consent arrives with the confirmation.
        identify("d1", "2026-03-01T10:00:00Z", r#""email":"d1@example.com""#),
        track("d1", "2026-03-01T10:00:00Z", "signed_up", ""),
        identify("d1", "2026-03-02T09:00:00Z", r#""consent":{"email":true}"#),
        track("d1", "2026-03-02T09:00:00Z", "email_confirmed", ""),
        // d2 never confirms: one reminder, then nothing.
        identify("d2", "2026-03-01T10:00:00Z", r#""email":"d2@example.com""#),
        track("d2", "2026-03-01T10:00:00Z", "signed_up", ""),
        // d3 has no address.
        track("d3", "2026-03-01T10:00:00Z", "signed_up", ""),
        // d4 unsubscribed from everything: transactional mail stops too.
        identify("d4", "2026-03-01T09:00:00Z", r#""email":"d4@example.com""#),
        track(
            "d4",
            "2026-03-01T09:30:00Z",
            "unsubscribed",
            r#""channel":"all""#,
        ),
        track("d4", "2026-03-01T10:00:00Z", "signed_up", ""),
        // d5 unsubscribed from email marketing only: confirmations still go out.
        identify("d5", "2026-03-01T09:00:00Z", r#""email":"d5@example.com""#),
        track(
            "d5",
            "2026-03-01T09:30:00Z",
            "unsubscribed",
            r#""channel":"email""#,
        ),
        track("d5", "2026-03-01T10:00:00Z", "signed_up", ""),
        track("d5", "2026-03-01T11:00:00Z", "email_confirmed", ""),
    ];
    assert_eq!(
        run(flows, &records),
        vec![
            line(
                "2026-03-01T10:00:00Z",
                "d1",
                "double_opt_in",
                "confirm",
                "email",
                None
            ),
            line(
                "2026-03-01T10:00:00Z",
                "d2",
                "double_opt_in",
                "confirm",
                "email",
                None
            ),
            line(
                "2026-03-01T10:00:00Z",
                "d3",
                "double_opt_in",
                "confirm",
                "email",
                Some("no_address")
            ),
            line(
                "2026-03-01T10:00:00Z",
                "d4",
                "double_opt_in",
                "confirm",
                "email",
                Some("unsubscribed")
            ),
            line(
                "2026-03-01T10:00:00Z",
                "d5",
                "double_opt_in",
                "confirm",
                "email",
                None
            ),
            line(
                "2026-03-01T11:00:00Z",
                "d5",
                "double_opt_in",
                "welcome",
                "email",
                Some("no_consent")
            ),
            line(
                "2026-03-02T09:00:00Z",
                "d1",
                "double_opt_in",
                "welcome",
                "email",
                None
            ),
            line(
                "2026-03-03T10:00:00Z",
                "d2",
                "double_opt_in",
                "confirm",
                "email",
                None
            ),
            line(
                "2026-03-03T10:00:00Z",
                "d3",
                "double_opt_in",
                "confirm",
                "email",
                Some("no_address")
            ),
            line(
                "2026-03-03T10:00:00Z",
                "d4",
                "double_opt_in",
                "confirm",
                "email",
                Some("unsubscribed")
            ),
        ]
    );
}

#[test]
fn consent_reasons_come_in_the_contract_order() {
    let flows = with_messages(
        "flow ping {
    when poke
    send reminder
}",
    );
    let records = [
        identify("a", "2026-03-01T09:00:00Z", r#""consent":{"email":true}"#),
        track("a", "2026-03-01T10:00:00Z", "poke", ""),
        identify("b", "2026-03-01T09:00:00Z", r#""email":"b@x""#),
        track("b", "2026-03-01T10:00:00Z", "poke", ""),
        identify("c", "2026-03-01T09:00:00Z", EMAIL),
        track(
            "c",
            "2026-03-01T09:30:00Z",
            "unsubscribed",
            r#""channel":"email""#,
        ),
        track("c", "2026-03-01T10:00:00Z", "poke", ""),
        // Consent given again after the unsubscribe: mail may go out again.
        identify("c", "2026-03-01T11:00:00Z", r#""consent":{"email":true}"#),
        track("c", "2026-03-01T12:00:00Z", "poke", ""),
        // An unsubscribe of another channel does not matter.
        identify("d", "2026-03-01T09:00:00Z", EMAIL),
        track(
            "d",
            "2026-03-01T09:30:00Z",
            "unsubscribed",
            r#""channel":"sms""#,
        ),
        track("d", "2026-03-01T10:00:00Z", "poke", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T10:00:00Z",
                "a",
                "ping",
                "reminder",
                "email",
                Some("no_address")
            ),
            line(
                "2026-03-01T10:00:00Z",
                "b",
                "ping",
                "reminder",
                "email",
                Some("no_consent")
            ),
            line(
                "2026-03-01T10:00:00Z",
                "c",
                "ping",
                "reminder",
                "email",
                Some("unsubscribed")
            ),
            line(
                "2026-03-01T10:00:00Z",
                "d",
                "ping",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-01T12:00:00Z",
                "c",
                "ping",
                "reminder",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn win_back_enters_exactly_90_days_after_the_last_order() {
    let flows = with_messages(
        "segment lapsed = count(order_completed) > 0 and count(order_completed within 90d) == 0
segment quiet_since = since(order_completed) > 90d
flow win_back {
    when entering lapsed
    send promo
}
flow win_back_since {
    when entering quiet_since
    send reminder
}",
    );
    let records = [
        identify("w1", "2026-01-01T12:00:00Z", EMAIL),
        track("w1", "2026-01-01T12:00:00Z", "order_completed", ""),
        identify("w2", "2026-01-01T12:00:00Z", EMAIL),
        track("w2", "2026-01-01T12:00:00Z", "order_completed", ""),
        track("w2", "2026-03-15T08:30:00Z", "order_completed", ""),
    ];
    // No `--until`: the run goes on while a segment window edge is pending.
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-04-01T12:00:00Z",
                "w1",
                "win_back",
                "promo",
                "email",
                None
            ),
            line(
                "2026-04-01T12:00:01Z",
                "w1",
                "win_back_since",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-06-13T08:30:00Z",
                "w2",
                "win_back",
                "promo",
                "email",
                None
            ),
            line(
                "2026-06-13T08:30:01Z",
                "w2",
                "win_back_since",
                "reminder",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn entering_a_segment_by_traits_fires_on_identify() {
    let flows = with_messages(
        "segment vip = contact.tier == \"gold\"
flow vip_welcome {
    when entering vip
    send promo
}",
    );
    let records = [
        identify(
            "v",
            "2026-03-01T10:00:00Z",
            &format!("{EMAIL},\"tier\":\"silver\""),
        ),
        identify("v", "2026-03-02T10:00:00Z", r#""tier":"gold""#),
        identify("v", "2026-03-03T10:00:00Z", r#""tier":"silver""#),
        identify("v", "2026-03-04T10:00:00Z", r#""tier":"gold""#),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-02T10:00:00Z",
                "v",
                "vip_welcome",
                "promo",
                "email",
                None
            ),
            line(
                "2026-03-04T10:00:00Z",
                "v",
                "vip_welcome",
                "promo",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn quiet_hours_in_three_timezones() {
    let flows = with_messages(
        "policy {
    quiet hours 21:00..08:00
}
flow browse_abandonment {
    when product_viewed
    wait 1h
    send reminder
}",
    );
    let records = [
        identify(
            "madrid",
            "2026-03-02T20:00:00Z",
            &format!("{EMAIL},\"timezone\":\"Europe/Madrid\""),
        ),
        identify(
            "new_york",
            "2026-03-02T20:00:00Z",
            &format!("{EMAIL},\"timezone\":\"America/New_York\""),
        ),
        identify(
            "tokyo",
            "2026-03-02T20:00:00Z",
            &format!("{EMAIL},\"timezone\":\"Asia/Tokyo\""),
        ),
        track("madrid", "2026-03-02T20:30:00Z", "product_viewed", ""),
        track("new_york", "2026-03-02T20:30:00Z", "product_viewed", ""),
        track("tokyo", "2026-03-02T20:30:00Z", "product_viewed", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            // 16:30 in New York: no quiet hours.
            line(
                "2026-03-02T21:30:00Z",
                "new_york",
                "browse_abandonment",
                "reminder",
                "email",
                None
            ),
            // 06:30 in Tokyo: deferred to 08:00 local.
            line(
                "2026-03-02T23:00:00Z",
                "tokyo",
                "browse_abandonment",
                "reminder",
                "email",
                None
            ),
            // 22:30 in Madrid: deferred to 08:00 local the next morning.
            line(
                "2026-03-03T07:00:00Z",
                "madrid",
                "browse_abandonment",
                "reminder",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn quiet_hours_flow_line_wins_deferral_is_decided_late_and_the_next_wait_counts_from_the_send() {
    let flows = with_messages(
        "policy {
    quiet hours 21:00..08:00
}
flow nudges {
    when viewed
    exit on bought
    quiet hours 22:00..07:00
    send reminder
    wait 1h
    send promo
}",
    );
    let records = [
        identify("a", "2026-03-01T20:00:00Z", EMAIL),
        // 21:30 is quiet for the policy but not for the flow's own line.
        track("a", "2026-03-01T20:30:00Z", "viewed", ""),
        identify("b", "2026-03-01T20:00:00Z", EMAIL),
        track("b", "2026-03-01T23:00:00Z", "viewed", ""),
        // Consent withdrawn during the deferral: decided at 07:00.
        track(
            "b",
            "2026-03-02T01:00:00Z",
            "unsubscribed",
            r#""channel":"email""#,
        ),
        identify("c", "2026-03-01T20:00:00Z", EMAIL),
        track("c", "2026-03-01T23:00:00Z", "viewed", ""),
        // An exit during the deferral cancels it.
        track("c", "2026-03-02T06:59:59Z", "bought", ""),
        identify("d", "2026-03-01T20:00:00Z", EMAIL),
        track("d", "2026-03-01T23:00:00Z", "viewed", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T20:30:00Z",
                "a",
                "nudges",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-01T21:30:00Z",
                "a",
                "nudges",
                "promo",
                "email",
                None
            ),
            line(
                "2026-03-02T07:00:00Z",
                "b",
                "nudges",
                "reminder",
                "email",
                Some("unsubscribed")
            ),
            line(
                "2026-03-02T07:00:00Z",
                "d",
                "nudges",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-02T08:00:00Z",
                "b",
                "nudges",
                "promo",
                "email",
                Some("unsubscribed")
            ),
            line(
                "2026-03-02T08:00:00Z",
                "d",
                "nudges",
                "promo",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn transactional_sends_ignore_quiet_hours_and_caps() {
    let flows = with_messages(
        "policy {
    quiet hours 21:00..08:00
    limit email 1 per 24h
}
flow orders {
    when order_placed
    send receipt
    send promo
    send receipt
}",
    );
    let records = [
        identify("t", "2026-03-01T09:00:00Z", EMAIL),
        track("t", "2026-03-01T23:00:00Z", "order_placed", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T23:00:00Z",
                "t",
                "orders",
                "receipt",
                "email",
                None
            ),
            line(
                "2026-03-02T08:00:00Z",
                "t",
                "orders",
                "promo",
                "email",
                None
            ),
            line(
                "2026-03-02T08:00:00Z",
                "t",
                "orders",
                "receipt",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn daily_schedule_with_reentry_limits() {
    let flows = r#"
message espresso_tip: email {
    subject: "Espresso tip"
    body: "<p>Try a ristretto</p>"
}
segment espresso_lovers = count(espresso_bought within 30d) >= 3
flow espresso_weekly {
    when every day at 09:00 for espresso_lovers
    reentry after 7d
    send espresso_tip
}
"#;
    let records = [
        identify("e1", "2026-03-01T10:00:00Z", EMAIL),
        track("e1", "2026-03-01T10:00:00Z", "espresso_bought", ""),
        track("e1", "2026-03-01T10:01:00Z", "espresso_bought", ""),
        track("e1", "2026-03-01T10:02:00Z", "espresso_bought", ""),
        identify("e2", "2026-03-01T10:00:00Z", EMAIL),
        track("e2", "2026-03-01T10:00:00Z", "espresso_bought", ""),
        track("e2", "2026-03-01T11:00:00Z", "espresso_bought", ""),
        // e2's third purchase makes it a member from the 5th.
        track("e2", "2026-03-04T12:00:00Z", "espresso_bought", ""),
    ];
    assert_eq!(
        run_with("", flows, &records, Some("2026-03-12T23:59:59Z")),
        vec![
            line(
                "2026-03-02T09:00:00Z",
                "e1",
                "espresso_weekly",
                "espresso_tip",
                "email",
                None
            ),
            line(
                "2026-03-05T09:00:00Z",
                "e2",
                "espresso_weekly",
                "espresso_tip",
                "email",
                None
            ),
            line(
                "2026-03-09T09:00:00Z",
                "e1",
                "espresso_weekly",
                "espresso_tip",
                "email",
                None
            ),
            line(
                "2026-03-12T09:00:00Z",
                "e2",
                "espresso_weekly",
                "espresso_tip",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn schedule_ticks_in_the_project_timezone_and_reentry_never() {
    let flows = r#"
message tip: email {
    subject: "Tip"
    body: "<p>tip</p>"
}
segment everyone = true
flow once {
    when every day at 09:00 for everyone
    reentry never
    send tip
}
"#;
    let records = [identify("p", "2026-03-01T10:00:00Z", EMAIL)];
    assert_eq!(
        run_with(
            "[defaults]\ntimezone = \"Europe/Madrid\"\n",
            flows,
            &records,
            Some("2026-03-05T00:00:00Z")
        ),
        vec![line(
            "2026-03-02T08:00:00Z",
            "p",
            "once",
            "tip",
            "email",
            None
        )]
    );
}

/// The contacts a schedule's tick at `now` visits (the store's history index), and, by brute
/// force, the contacts whose history holds an occurrence of an event the segment needs that is
/// still inside its lifetime at `now`.
fn tick_audience(
    compiled: &CompiledProject,
    sim: &mut Simulation,
    now: &str,
) -> (Vec<String>, Vec<String>) {
    let now = parse_instant(now).expect("time");
    let schedules = simulate::first_schedule_ticks(compiled, chrono_tz::UTC, 0);
    let events = simulate::tick_requires(compiled, &schedules[0].1).expect("a requirement");
    let watch = sim.store.watch_history(&events);
    let indexed = sim
        .store
        .watched(watch, now)
        .iter()
        .map(|c| c.to_string())
        .collect();
    let counts = |e: &flowc::engine::PastEvent| {
        events
            .iter()
            .any(|(id, life)| *id == e.event && life.map_or(true, |l| e.time + l > now))
    };
    let holding = sim
        .store
        .states()
        .filter(|(_, s)| s.history.iter().any(counts))
        .map(|(c, _)| c.to_string())
        .collect();
    (indexed, holding)
}

#[test]
fn schedule_of_a_segment_without_event_requirement_visits_every_contact() {
    // No occurrence is needed to be a member (`== 0`, and a trait): every contact is a
    // candidate at every tick, including those with no history at all.
    let flows = r#"
message tip: email {
    subject: "Tip"
    body: "<p>tip</p>"
}
segment quiet_gold = contact.plan == "gold" and count(product_viewed within 7d) == 0
flow gold_tip {
    when every day at 09:00 for quiet_gold
    reentry never
    send tip
}
"#;
    let gold = format!(r#"{EMAIL},"plan":"gold""#);
    let records = [
        identify("g1", "2026-03-01T10:00:00Z", &gold),
        identify("g2", "2026-03-01T10:00:00Z", &gold),
        track("g2", "2026-03-01T10:00:00Z", "product_viewed", ""),
        identify("g3", "2026-03-01T10:00:00Z", EMAIL),
        // g3 becomes gold later, by a trait alone.
        identify("g3", "2026-03-03T12:00:00Z", &gold),
        identify("n1", "2026-03-01T10:00:00Z", EMAIL),
    ];
    let compiled = compile_project("", flows);
    let schedules = simulate::first_schedule_ticks(&compiled, chrono_tz::UTC, 0);
    assert_eq!(simulate::tick_requires(&compiled, &schedules[0].1), None);
    assert_eq!(
        run_with("", flows, &records, Some("2026-03-12T00:00:00Z")),
        vec![
            line(
                "2026-03-02T09:00:00Z",
                "g1",
                "gold_tip",
                "tip",
                "email",
                None
            ),
            line(
                "2026-03-04T09:00:00Z",
                "g3",
                "gold_tip",
                "tip",
                "email",
                None
            ),
            // The view of 03-01 10:00 is inside `within 7d` at 03-08 09:00, out at 03-09.
            line(
                "2026-03-09T09:00:00Z",
                "g2",
                "gold_tip",
                "tip",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn schedule_candidates_follow_history_gained_and_expired() {
    // Only contacts whose history holds `espresso_bought` of the last 3 days (and 2 of
    // margin) are visited by a tick: `a` gains it, loses it (its history pruned at its next record), and gains it
    // again; `c`'s ages out of the window while its history still holds it; `b` never has it.
    let flows = r#"
message tip: email {
    subject: "Tip"
    body: "<p>tip</p>"
}
segment recent_buyers = count(espresso_bought within 3d) >= 1
flow nudge {
    when every day at 09:00 for recent_buyers
    reentry always
    send tip
}
"#;
    let records = [
        identify("a", "2026-03-01T10:00:00Z", EMAIL),
        identify("b", "2026-03-01T10:00:00Z", EMAIL),
        identify("c", "2026-03-01T10:00:00Z", EMAIL),
        track("c", "2026-03-01T11:00:00Z", "espresso_bought", ""),
        track("a", "2026-03-02T12:00:00Z", "espresso_bought", ""),
        identify("a", "2026-03-08T10:00:00Z", EMAIL),
        track("a", "2026-03-10T08:00:00Z", "espresso_bought", ""),
    ];
    let nudge = |time: &str, contact: &str| line(time, contact, "nudge", "tip", "email", None);
    let first_week = vec![
        nudge("2026-03-02T09:00:00Z", "c"),
        nudge("2026-03-03T09:00:00Z", "a"),
        nudge("2026-03-03T09:00:00Z", "c"),
        nudge("2026-03-04T09:00:00Z", "a"),
        nudge("2026-03-04T09:00:00Z", "c"),
        nudge("2026-03-05T09:00:00Z", "a"),
    ];
    // Both purchases count at the tick of 03-04.
    let (compiled, mut sim) = run_full("", flows, &records, Some("2026-03-04T10:00:00Z"), false);
    let (indexed, holding) = tick_audience(&compiled, &mut sim, "2026-03-04T09:00:00Z");
    assert_eq!(indexed, vec!["a", "c"]);
    assert_eq!(indexed, holding);

    let (compiled, mut sim) = run_full("", flows, &records, Some("2026-03-09T00:00:00Z"), false);
    let lines: Vec<String> = sim
        .deliveries
        .iter()
        .map(|d| simulate::delivery_line(&compiled, d, false))
        .collect();
    assert_eq!(lines, first_week);
    // `espresso_bought` is kept 3 days; the index keeps a contact 2 days longer (a calendar
    // window can be longer than its seconds across a change of UTC offset). `a`'s purchase
    // was pruned at its identify of 03-08; `c`'s is still in its history (its last change was
    // the tick of 03-04) but out of the window since 03-04 11:00, and out of the index since
    // 03-06 11:00, so the ticks from 03-07 on do not visit it.
    assert!(sim.store.get("c").is_some_and(|s| !s.history.is_empty()));
    assert!(sim.store.get("a").is_some_and(|s| s.history.is_empty()));
    let (indexed, holding) = tick_audience(&compiled, &mut sim, "2026-03-08T09:00:00Z");
    assert!(indexed.is_empty(), "{indexed:?}");
    assert_eq!(indexed, holding);

    let (compiled, mut sim) = run_full("", flows, &records, Some("2026-03-12T23:59:59Z"), false);
    let mut expected = first_week;
    expected.extend([
        nudge("2026-03-10T09:00:00Z", "a"),
        nudge("2026-03-11T09:00:00Z", "a"),
        nudge("2026-03-12T09:00:00Z", "a"),
    ]);
    let lines: Vec<String> = sim
        .deliveries
        .iter()
        .map(|d| simulate::delivery_line(&compiled, d, false))
        .collect();
    assert_eq!(lines, expected);
    let (indexed, holding) = tick_audience(&compiled, &mut sim, "2026-03-12T09:00:00Z");
    assert_eq!(indexed, vec!["a"]);
    assert_eq!(indexed, holding);
}

#[test]
fn correlated_order_follow_ups_with_two_concurrent_orders() {
    let flows = r#"
message shipped_notice: email transactional {
    subject: "Order {{ trigger.order_id }} shipped"
    body: "<p>On its way</p>"
}
message delay_apology: email {
    subject: "Sorry"
    body: "<p>It is late</p>"
}
flow order_follow_up {
    when order_placed
    reentry always
    wait for order_shipped where event.order_id == trigger.order_id up to 5d {
        send shipped_notice
    } else {
        send delay_apology
    }
}
"#;
    let records = [
        identify("o", "2026-03-01T09:00:00Z", EMAIL),
        track(
            "o",
            "2026-03-01T10:00:00Z",
            "order_placed",
            r#""order_id":"A""#,
        ),
        track(
            "o",
            "2026-03-01T11:00:00Z",
            "order_placed",
            r#""order_id":"B""#,
        ),
        track(
            "o",
            "2026-03-01T12:00:00Z",
            "order_placed",
            r#""order_id":"C""#,
        ),
        track(
            "o",
            "2026-03-02T09:00:00Z",
            "order_shipped",
            r#""order_id":"B""#,
        ),
        track(
            "o",
            "2026-03-03T09:00:00Z",
            "order_shipped",
            r#""order_id":"A""#,
        ),
        // A second shipment of A finds nobody waiting.
        track(
            "o",
            "2026-03-04T09:00:00Z",
            "order_shipped",
            r#""order_id":"A""#,
        ),
    ];
    assert_eq!(
        run(flows, &records),
        vec![
            line(
                "2026-03-02T09:00:00Z",
                "o",
                "order_follow_up",
                "shipped_notice",
                "email",
                None
            ),
            line(
                "2026-03-03T09:00:00Z",
                "o",
                "order_follow_up",
                "shipped_notice",
                "email",
                None
            ),
            line(
                "2026-03-06T12:00:00Z",
                "o",
                "order_follow_up",
                "delay_apology",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn wait_for_several_events_first_wins() {
    let flows = with_messages(
        "flow survey {
    when delivered
    wait for reviewed or returned where event.reason != \"size\" up to 3d {
        on reviewed {
            send promo
        }
        on returned {
            send text_ping
        }
    } else {
        send reminder
    }
}",
    );
    let records = [
        identify(
            "r1",
            "2026-03-01T09:00:00Z",
            &format!("{EMAIL},\"phone\":\"+34\""),
        ),
        track("r1", "2026-03-01T10:00:00Z", "delivered", ""),
        track(
            "r1",
            "2026-03-01T12:00:00Z",
            "returned",
            r#""reason":"broken""#,
        ),
        track("r1", "2026-03-01T13:00:00Z", "reviewed", ""),
        identify("r2", "2026-03-01T09:00:00Z", EMAIL),
        track("r2", "2026-03-01T10:00:00Z", "delivered", ""),
        track(
            "r2",
            "2026-03-01T11:00:00Z",
            "returned",
            r#""reason":"size""#,
        ),
        track("r2", "2026-03-01T12:00:00Z", "reviewed", ""),
        identify("r3", "2026-03-01T09:00:00Z", EMAIL),
        track("r3", "2026-03-01T10:00:00Z", "delivered", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T12:00:00Z",
                "r1",
                "survey",
                "text_ping",
                "sms",
                None
            ),
            line(
                "2026-03-01T12:00:00Z",
                "r2",
                "survey",
                "promo",
                "email",
                None
            ),
            line(
                "2026-03-04T10:00:00Z",
                "r3",
                "survey",
                "reminder",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn birthdays_in_several_timezones_including_29_february() {
    let flows = r#"
message happy_birthday: email {
    subject: "Happy birthday"
    body: "<p>Cake</p>"
}
flow birthday {
    when anniversary of contact.birthday at 09:00
    send happy_birthday
}
"#;
    let records = [
        identify(
            "madrid",
            "2026-03-01T10:00:00Z",
            &format!("{EMAIL},\"timezone\":\"Europe/Madrid\",\"birthday\":\"1990-03-05\""),
        ),
        identify(
            "la",
            "2026-03-01T10:00:00Z",
            &format!("{EMAIL},\"timezone\":\"America/Los_Angeles\",\"birthday\":\"1985-03-05\""),
        ),
        identify(
            "tokyo",
            "2026-03-01T10:00:00Z",
            &format!("{EMAIL},\"timezone\":\"Asia/Tokyo\",\"birthday\":\"1980-03-05\""),
        ),
        identify(
            "leap",
            "2026-03-01T10:00:00Z",
            &format!("{EMAIL},\"birthday\":\"1992-02-29\""),
        ),
        identify(
            "bad",
            "2026-03-01T10:00:00Z",
            &format!("{EMAIL},\"birthday\":\"soon\""),
        ),
        identify(
            "no_tz",
            "2026-03-01T10:00:00Z",
            &format!("{EMAIL},\"timezone\":\"Mars/Olympus\",\"birthday\":\"2000-03-06\""),
        ),
    ];
    let (compiled, sim) = run_full("", flows, &records, Some("2027-03-01T00:00:00Z"), false);
    let lines: Vec<String> = sim
        .deliveries
        .iter()
        .map(|d| simulate::delivery_line(&compiled, d, false))
        .collect();
    assert_eq!(
        lines,
        vec![
            line(
                "2026-03-05T00:00:00Z",
                "tokyo",
                "birthday",
                "happy_birthday",
                "email",
                None
            ),
            line(
                "2026-03-05T08:00:00Z",
                "madrid",
                "birthday",
                "happy_birthday",
                "email",
                None
            ),
            line(
                "2026-03-05T17:00:00Z",
                "la",
                "birthday",
                "happy_birthday",
                "email",
                None
            ),
            // An unknown timezone falls back to the project default (UTC).
            line(
                "2026-03-06T09:00:00Z",
                "no_tz",
                "birthday",
                "happy_birthday",
                "email",
                None
            ),
            line(
                "2027-02-28T09:00:00Z",
                "leap",
                "birthday",
                "happy_birthday",
                "email",
                None
            ),
        ]
    );
    let warnings: Vec<&str> = sim
        .trace
        .iter()
        .filter(|t| t.kind == flowc::engine::TraceKind::Warning)
        .map(|t| t.text.as_str())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`contact.birthday` = \"soon\" is not a YYYY-MM-DD date")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown timezone `Mars/Olympus`")),
        "{warnings:?}"
    );
}

#[test]
fn birthdays_without_until_do_not_run_forever() {
    let flows = r#"
message happy_birthday: email {
    subject: "Happy birthday"
    body: "<p>Cake</p>"
}
flow birthday {
    when anniversary of contact.birthday at 09:00
    send happy_birthday
}
"#;
    let records = [identify(
        "x",
        "2026-03-01T10:00:00Z",
        &format!("{EMAIL},\"birthday\":\"1990-03-05\""),
    )];
    assert!(run(flows, &records).is_empty());
}

#[test]
fn frequency_caps_across_flows() {
    let flows = with_messages(
        "policy {
    limit email 1 per 24h
}
flow a_welcome {
    when signed_up
    send reminder
    wait 24h
    send reminder
}
flow b_promo {
    when signed_up
    send promo
    wait 23h
    send promo
}",
    );
    let records = [
        identify("f", "2026-03-01T10:00:00Z", EMAIL),
        track("f", "2026-03-01T10:00:00Z", "signed_up", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T10:00:00Z",
                "f",
                "a_welcome",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-01T10:00:00Z",
                "f",
                "b_promo",
                "promo",
                "email",
                Some("frequency_cap")
            ),
            line(
                "2026-03-02T09:00:00Z",
                "f",
                "b_promo",
                "promo",
                "email",
                Some("frequency_cap")
            ),
            // Exactly 24h later the first send has left the window (`now - D < t`).
            line(
                "2026-03-02T10:00:00Z",
                "f",
                "a_welcome",
                "reminder",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn skipped_sends_do_not_count_toward_caps() {
    let flows = with_messages(
        "policy {
    limit sms 1 per 1d
}
flow texts {
    when poke
    send text_ping
    wait 1h
    send text_ping
}",
    );
    let records = [
        identify("s", "2026-03-01T09:00:00Z", r#""consent":{"sms":true}"#),
        track("s", "2026-03-01T10:00:00Z", "poke", ""),
        identify("s", "2026-03-01T10:30:00Z", r#""phone":"+34600000000""#),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T10:00:00Z",
                "s",
                "texts",
                "text_ping",
                "sms",
                Some("no_address")
            ),
            line(
                "2026-03-01T11:00:00Z",
                "s",
                "texts",
                "text_ping",
                "sms",
                None
            ),
        ]
    );
}

#[test]
fn holdout_entrants_appear_once_at_their_first_send() {
    let flows = with_messages(
        "flow control_all {
    when signed_up
    holdout 100%
    goal order_completed within 7d
    wait 1h
    send reminder
    wait 1h
    send promo
}",
    );
    let records = [
        identify("h", "2026-03-01T09:00:00Z", EMAIL),
        track("h", "2026-03-01T10:00:00Z", "signed_up", ""),
        track("h", "2026-03-03T10:00:00Z", "order_completed", ""),
    ];
    let (compiled, sim) = run_full("", &flows, &records, None, true);
    let lines: Vec<String> = sim
        .deliveries
        .iter()
        .map(|d| simulate::delivery_line(&compiled, d, false))
        .collect();
    assert_eq!(
        lines,
        vec![line(
            "2026-03-01T11:00:00Z",
            "h",
            "control_all",
            "reminder",
            "email",
            Some("holdout")
        )]
    );
    assert_eq!(
        sim.conversions.len(),
        1,
        "the holdout's conversion is counted"
    );
}

#[test]
fn holdout_share_is_deterministic_per_contact_and_flow() {
    let flows = with_messages(
        "flow half {
    when signed_up
    holdout 30%
    send reminder
}",
    );
    let mut records = Vec::new();
    for i in 0..400 {
        records.push(identify(&format!("c{i}"), "2026-03-01T09:00:00Z", EMAIL));
        records.push(track(
            &format!("c{i}"),
            "2026-03-01T10:00:00Z",
            "signed_up",
            "",
        ));
    }
    let first = run(&flows, &records);
    assert_eq!(first, run(&flows, &records));
    assert_eq!(first.len(), 400);
    let held = first.iter().filter(|l| l.contains("holdout")).count();
    assert!((80..160).contains(&held), "{held} of 400 held out for 30%");
    for (i, l) in first.iter().enumerate() {
        let contact = l
            .split("\"contact\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default();
        let expect_holdout = flowc::engine::stable_bucket(contact, "half", "holdout") < 3000;
        assert_eq!(l.contains("holdout"), expect_holdout, "line {i}: {l}");
    }
}

#[test]
fn split_is_deterministic_per_contact() {
    let flows = with_messages(
        "flow ab {
    when signed_up
    split {
        50% {
            send reminder
        }
        50% {
            send promo
        }
    }
}",
    );
    let mut records = Vec::new();
    for i in 0..200 {
        records.push(identify(&format!("s{i}"), "2026-03-01T09:00:00Z", EMAIL));
        records.push(track(
            &format!("s{i}"),
            "2026-03-01T10:00:00Z",
            "signed_up",
            "",
        ));
    }
    let first = run(&flows, &records);
    assert_eq!(first, run(&flows, &records));
    let a = first.iter().filter(|l| l.contains("\"reminder\"")).count();
    assert!((70..130).contains(&a), "{a} of 200 in arm A");
    // The same contact gets the same arm on a second entry.
    let again = [
        identify("s1", "2026-03-01T09:00:00Z", EMAIL),
        track("s1", "2026-03-01T10:00:00Z", "signed_up", ""),
        track("s1", "2026-03-05T10:00:00Z", "signed_up", ""),
    ];
    let lines = run(&flows, &again);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].contains("reminder"), lines[1].contains("reminder"));
}

#[test]
fn message_id_dedupe() {
    let flows = with_messages(
        "flow ping {
    when poke
    reentry always
    send reminder
}",
    );
    let with_id = |t: &str, id: &str| {
        format!(
            r#"{{"type":"track","userId":"m","timestamp":"{t}","event":"poke","messageId":"{id}"}}"#
        )
    };
    let records = [
        identify("m", "2026-03-01T09:00:00Z", EMAIL),
        with_id("2026-03-01T10:00:00Z", "m-1"),
        with_id("2026-03-01T10:00:00Z", "m-1"),
        with_id("2026-03-01T11:00:00Z", "m-1"),
        with_id("2026-03-01T12:00:00Z", "m-2"),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T10:00:00Z",
                "m",
                "ping",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-01T12:00:00Z",
                "m",
                "ping",
                "reminder",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn entry_rules_default_never_and_after() {
    let flows = with_messages(
        "flow default_rule {
    when poke
    send reminder
    wait 2h
}
flow never_again {
    when poke
    reentry never
    send promo
}
flow after_a_day {
    when poke
    only if trigger.ok == true
    reentry after 1d
    send receipt
}",
    );
    let records = [
        identify("e", "2026-03-01T09:00:00Z", EMAIL),
        track("e", "2026-03-01T10:00:00Z", "poke", r#""ok":true"#),
        // Active instance of default_rule: ignored; after_a_day: too soon.
        track("e", "2026-03-01T11:00:00Z", "poke", r#""ok":true"#),
        // default_rule is done (its wait ended at 12:00); only if false for after_a_day.
        track("e", "2026-03-02T10:00:00Z", "poke", r#""ok":false"#),
        track("e", "2026-03-02T10:00:01Z", "poke", r#""ok":true"#),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T10:00:00Z",
                "e",
                "after_a_day",
                "receipt",
                "email",
                None
            ),
            line(
                "2026-03-01T10:00:00Z",
                "e",
                "default_rule",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-01T10:00:00Z",
                "e",
                "never_again",
                "promo",
                "email",
                None
            ),
            line(
                "2026-03-02T10:00:00Z",
                "e",
                "default_rule",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-02T10:00:01Z",
                "e",
                "after_a_day",
                "receipt",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn exit_if_is_checked_before_every_step() {
    let flows = with_messages(
        "flow nurture {
    when signed_up
    exit if contact.customer == true
    send reminder
    wait 1d
    send promo
}",
    );
    let records = [
        identify("x", "2026-03-01T09:00:00Z", EMAIL),
        track("x", "2026-03-01T10:00:00Z", "signed_up", ""),
        identify("x", "2026-03-01T12:00:00Z", r#""customer":true"#),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![line(
            "2026-03-01T10:00:00Z",
            "x",
            "nurture",
            "reminder",
            "email",
            None
        )]
    );
}

#[test]
fn if_set_and_unsubscribe_steps() {
    let flows = with_messages(
        "flow onboarding {
    when signed_up
    if trigger.plan == \"pro\" and count(signed_up) >= 1 {
        set contact.segment_name = \"pro\"
        send promo
    } else if trigger.plan == null {
        send text_ping
    } else {
        unsubscribe email
        send reminder
    }
    if contact.segment_name == \"pro\" {
        send receipt
    }
    stop
}",
    );
    let records = [
        identify("p", "2026-03-01T09:00:00Z", EMAIL),
        track("p", "2026-03-01T10:00:00Z", "signed_up", r#""plan":"pro""#),
        identify("f", "2026-03-01T09:00:00Z", EMAIL),
        track("f", "2026-03-01T10:00:00Z", "signed_up", r#""plan":"free""#),
        identify("n", "2026-03-01T09:00:00Z", EMAIL),
        track("n", "2026-03-01T10:00:00Z", "signed_up", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T10:00:00Z",
                "f",
                "onboarding",
                "reminder",
                "email",
                Some("unsubscribed")
            ),
            // `trigger.plan == null` is false: a comparison with null is false.
            line(
                "2026-03-01T10:00:00Z",
                "n",
                "onboarding",
                "reminder",
                "email",
                Some("unsubscribed")
            ),
            line(
                "2026-03-01T10:00:00Z",
                "p",
                "onboarding",
                "promo",
                "email",
                None
            ),
            line(
                "2026-03-01T10:00:00Z",
                "p",
                "onboarding",
                "receipt",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn wait_until_uses_the_contact_timezone() {
    let flows = with_messages(
        "flow morning {
    when poke
    wait until 09:00
    send reminder
    wait until 09:00
    send promo
}",
    );
    let records = [
        identify(
            "m",
            "2026-03-01T00:00:00Z",
            &format!("{EMAIL},\"timezone\":\"America/New_York\""),
        ),
        track("m", "2026-03-01T10:00:00Z", "poke", ""),
    ];
    // 05:00 in New York: 09:00 local is 14:00Z; the second `wait until` is already there.
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T14:00:00Z",
                "m",
                "morning",
                "promo",
                "email",
                None
            ),
            line(
                "2026-03-01T14:00:00Z",
                "m",
                "morning",
                "reminder",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn calendar_months_follow_the_contact_timezone() {
    let flows = with_messages(
        "flow monthly {
    when poke
    wait 1mo
    send reminder
}",
    );
    let records = [
        identify(
            "m",
            "2026-01-01T00:00:00Z",
            &format!("{EMAIL},\"timezone\":\"Europe/Madrid\""),
        ),
        track("m", "2026-03-15T09:00:00Z", "poke", ""),
        identify("u", "2026-01-01T00:00:00Z", EMAIL),
        track("u", "2026-01-31T09:00:00Z", "poke", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-02-28T09:00:00Z",
                "u",
                "monthly",
                "reminder",
                "email",
                None
            ),
            // 10:00 local before the DST change, 10:00 local after it.
            line(
                "2026-04-15T08:00:00Z",
                "m",
                "monthly",
                "reminder",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn events_and_schema_validation() {
    let flows = with_messages(
        "event order_placed {
    order_id: string
    total: number?
}
flow orders {
    when order_placed where trigger.total > 100
    send receipt
}",
    );
    let compiled = compile_project("", &flows);
    let ok = events::parse_jsonl(&track(
        "a",
        "2026-03-01T10:00:00Z",
        "Order Placed",
        r#""order_id":"1","total":150"#,
    ))
    .unwrap();
    assert!(events::validate(&ok[0], &compiled.schemas).is_ok());
    let bad = events::parse_jsonl(&format!(
        "{}\n{}",
        identify("a", "2026-03-01T09:00:00Z", ""),
        track(
            "a",
            "2026-03-01T10:00:00Z",
            "order_placed",
            r#""order_id":7"#
        )
    ))
    .unwrap();
    let error = events::validate(&bad[1], &compiled.schemas).unwrap_err();
    assert_eq!(error.line, 2);
    assert!(
        error.reason.contains("`order_id`") && error.reason.contains("string"),
        "{error}"
    );
    let missing = events::parse_jsonl(&track(
        "a",
        "2026-03-01T10:00:00Z",
        "order_placed",
        r#""total":1"#,
    ))
    .unwrap();
    assert!(events::validate(&missing[0], &compiled.schemas)
        .unwrap_err()
        .reason
        .contains("requires property `order_id`"));
}

#[test]
fn compiled_flows_have_stable_content_hashes() {
    let flows = with_messages(
        "flow a {
    when poke
    send reminder
}
flow b {
    when poke
    send promo
}",
    );
    let one = compile_project("", &flows);
    let two = compile_project("", &flows);
    assert_eq!(one.flows[0].hash, two.flows[0].hash);
    assert_ne!(one.flows[0].hash, one.flows[1].hash);
    assert_eq!(one.flows[0].hash.len(), 64);
    let json = serde_json::to_string(&one).unwrap();
    let back: CompiledProject = serde_json::from_str(&json).unwrap();
    assert_eq!(back, one);
}

#[test]
fn template_flows_are_expanded_with_their_arguments() {
    let flows = with_messages(
        "segment inactive(period: duration) = count(visited within period) == 0 and count(visited) > 0
flow template nudge(trigger_event: event, wait_for: duration, note: message) {
    when trigger_event
    wait wait_for
    send note
}
flow cart_nudge = nudge(trigger_event: cart_abandoned, wait_for: 2h, note: reminder)
flow gone = nudge(trigger_event: left, wait_for: 1d, note: promo)
flow lapsed_visitors {
    when entering inactive(10d)
    send promo
}",
    );
    let records = [
        identify("t", "2026-03-01T09:00:00Z", EMAIL),
        track("t", "2026-03-01T10:00:00Z", "cart_abandoned", ""),
        track("t", "2026-03-01T10:00:00Z", "visited", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T12:00:00Z",
                "t",
                "cart_nudge",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-11T10:00:00Z",
                "t",
                "lapsed_visitors",
                "promo",
                "email",
                None
            ),
        ]
    );
}

#[test]
fn contact_state_stays_small() {
    let flows = with_messages(
        "flow abandoned_cart {
    when cart_abandoned
    exit on order_completed
    wait 1h
    send reminder
    wait 1d
    send reminder
}",
    );
    let records = [
        identify("c1", "2026-03-01T09:00:00Z", EMAIL),
        track(
            "c1",
            "2026-03-01T10:00:00Z",
            "cart_abandoned",
            r#""cart_url":"https://shop.example/cart/9""#,
        ),
    ];
    let (_, sim) = run_full("", &flows, &records, Some("2026-03-01T10:30:00Z"), false);
    let state = sim.store.get("c1").unwrap();
    assert_eq!(state.instances.len(), 1);
    let size = serde_json::to_vec(state).unwrap().len();
    assert!(size < 400, "a waiting contact serialises to {size} bytes");
}

// ----- the `flowc` binary -----

fn write_project(flows: &str, events: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("flows")).expect("mkdir");
    std::fs::write(dir.path().join("flows/main.flow"), flows).expect("write flow");
    std::fs::write(dir.path().join("events.jsonl"), events).expect("write events");
    dir
}

fn flowc(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_flowc"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run flowc")
}

const CART: &str = "message reminder: email {
    subject: \"Hi {{ contact.first_name }}\"
    body: \"<p>Your cart</p>\"
}
flow abandoned_cart {
    when cart_abandoned
    exit on order_completed
    wait 1h
    send reminder
}
";

#[test]
fn cli_simulate_prints_the_delivery_lines() {
    let events = [
        identify(
            "c1",
            "2026-03-01T09:00:00Z",
            &format!("{EMAIL},\"first_name\":\"Ana\""),
        ),
        track("c1", "2026-03-01T10:00:00Z", "Cart Abandoned", ""),
    ]
    .join("\n");
    let dir = write_project(CART, &events);
    let output = flowc(dir.path(), &["simulate", ".", "--events", "events.jsonl"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "{}\n",
            line(
                "2026-03-01T11:00:00Z",
                "c1",
                "abandoned_cart",
                "reminder",
                "email",
                None
            )
        )
    );
    let traced = flowc(
        dir.path(),
        &[
            "simulate",
            ".",
            "--events",
            "events.jsonl",
            "--trace",
            "--render",
        ],
    );
    assert!(traced.status.success());
    let stdout = String::from_utf8_lossy(&traced.stdout);
    assert!(
        stdout.contains(r#""rendered":{"subject":"Hi Ana","body":"<p>Your cart</p>"}"#),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&traced.stderr);
    assert!(
        stderr.contains("c1 abandoned_cart entered: when `cart_abandoned`: entered"),
        "{stderr}"
    );
    assert!(stderr.contains("completed"), "{stderr}");
}

#[test]
fn cli_simulate_bad_line_names_the_line_and_simulates_nothing() {
    let events = format!(
        "{}\n{{\"type\":\"track\",\"userId\":\"c1\"\n",
        identify("c1", "2026-03-01T09:00:00Z", EMAIL)
    );
    let dir = write_project(CART, &events);
    let output = flowc(dir.path(), &["simulate", ".", "--events", "events.jsonl"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("events.jsonl: line 2: not valid JSON"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was simulated"), "{stderr}");
}

#[test]
fn cli_simulate_reads_a_file_that_starts_with_a_byte_order_mark() {
    // Excel and many Windows tools save UTF-8 with a BOM: the first line must still be read.
    let events = format!(
        "\u{feff}{}\n{}\n",
        identify("c1", "2026-03-01T09:00:00Z", EMAIL),
        track("c1", "2026-03-01T10:00:00Z", "cart_abandoned", "")
    );
    let dir = write_project(CART, &events);
    let with_bom = flowc(dir.path(), &["simulate", ".", "--events", "events.jsonl"]);
    assert!(
        with_bom.status.success(),
        "{}",
        String::from_utf8_lossy(&with_bom.stderr)
    );
    std::fs::write(
        dir.path().join("plain.jsonl"),
        events.trim_start_matches('\u{feff}'),
    )
    .unwrap();
    let plain = flowc(dir.path(), &["simulate", ".", "--events", "plain.jsonl"]);
    assert!(!with_bom.stdout.is_empty());
    assert_eq!(with_bom.stdout, plain.stdout);
}

#[test]
fn cli_simulate_record_without_timestamp_is_an_error() {
    let events = "{\"type\":\"track\",\"userId\":\"c1\",\"event\":\"cart_abandoned\"}\n";
    let dir = write_project(CART, events);
    let output = flowc(dir.path(), &["simulate", ".", "--events", "events.jsonl"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1: `timestamp` is missing"));
}

#[test]
fn cli_simulate_cannot_run_without_its_inputs() {
    let dir = write_project(CART, "");
    let missing = flowc(dir.path(), &["simulate", ".", "--events", "nope.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
    let bad_until = flowc(
        dir.path(),
        &[
            "simulate",
            ".",
            "--events",
            "events.jsonl",
            "--until",
            "tomorrow",
        ],
    );
    assert_eq!(bad_until.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_until.stderr)
        .contains("`--until tomorrow` is not an RFC 3339 time"));
}

#[test]
fn cli_build_writes_state_machines_with_hashes() {
    let dir = write_project(CART, "");
    let output = flowc(dir.path(), &["build", ".", "--out", "build.json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("build.json")).unwrap())
            .unwrap();
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["flows"][0]["name"], "abandoned_cart");
    assert_eq!(json["flows"][0]["hash"].as_str().unwrap().len(), 64);
    assert!(json["flows"][0]["states"].as_array().unwrap().len() >= 3);
}

#[test]
fn behaviour_functions_sum_last_exists_and_in() {
    let flows = with_messages(
        "flow loyal {
    when order_completed
    reentry always
    if sum(order_completed.total within 30d) > 100 and last(order_completed.city) in [\"Madrid\", \"Lima\"] and exists(contact.email) {
        send promo
    }
}",
    );
    let records = [
        identify("l", "2026-03-01T09:00:00Z", EMAIL),
        track(
            "l",
            "2026-03-01T10:00:00Z",
            "order_completed",
            r#""total":60,"city":"Madrid""#,
        ),
        track(
            "l",
            "2026-03-02T10:00:00Z",
            "order_completed",
            r#""total":60,"city":"Paris""#,
        ),
        track(
            "l",
            "2026-03-03T10:00:00Z",
            "order_completed",
            r#""total":10,"city":"Lima""#,
        ),
        // The first two orders have left the 30-day window.
        track(
            "l",
            "2026-04-01T10:00:00Z",
            "order_completed",
            r#""total":10,"city":"Lima""#,
        ),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![line(
            "2026-03-03T10:00:00Z",
            "l",
            "loyal",
            "promo",
            "email",
            None
        )]
    );
}

#[test]
fn unsubscribed_without_a_channel_means_all_and_webhooks_need_no_consent() {
    let flows = r#"
message crm_sync: webhook {
    url: "https://crm.example/hook"
    body: "{}"
}
message receipt: email transactional {
    subject: "Receipt"
    body: "<p>Thanks</p>"
}
flow sync {
    when poke
    reentry always
    send crm_sync
    send receipt
}
"#;
    let records = [
        identify("w", "2026-03-01T09:00:00Z", r#""email":"w@x""#),
        track("w", "2026-03-01T10:00:00Z", "poke", ""),
        track("w", "2026-03-01T11:00:00Z", "Unsubscribed", ""),
        track("w", "2026-03-01T12:00:00Z", "poke", ""),
    ];
    assert_eq!(
        run(flows, &records),
        vec![
            line(
                "2026-03-01T10:00:00Z",
                "w",
                "sync",
                "crm_sync",
                "webhook",
                None
            ),
            line(
                "2026-03-01T10:00:00Z",
                "w",
                "sync",
                "receipt",
                "email",
                None
            ),
            line(
                "2026-03-01T12:00:00Z",
                "w",
                "sync",
                "crm_sync",
                "webhook",
                Some("unsubscribed")
            ),
            line(
                "2026-03-01T12:00:00Z",
                "w",
                "sync",
                "receipt",
                "email",
                Some("unsubscribed")
            ),
        ]
    );
}

#[test]
fn until_stops_the_clock_and_later_records_are_not_applied() {
    let flows = with_messages(
        "flow later {
    when poke
    wait 2d
    send promo
}",
    );
    let records = [
        identify("u", "2026-03-01T09:00:00Z", EMAIL),
        track("u", "2026-03-01T10:00:00Z", "poke", ""),
        identify("v", "2026-03-01T09:00:00Z", EMAIL),
        track("v", "2026-03-05T10:00:00Z", "poke", ""),
    ];
    assert_eq!(
        run_with("", &flows, &records, Some("2026-03-03T10:00:00Z")),
        vec![line(
            "2026-03-03T10:00:00Z",
            "u",
            "later",
            "promo",
            "email",
            None
        )]
    );
    assert!(run_with("", &flows, &records, Some("2026-03-03T09:59:59Z")).is_empty());
}

#[test]
fn trace_says_why() {
    let flows = with_messages(
        "segment fan = count(order_completed) >= 2
flow cart {
    when cart_abandoned
    exit on order_completed
    goal order_completed within 2d
    wait 1h
    send reminder
}
flow fans {
    when entering fan
    send promo
}",
    );
    let records = [
        identify("t", "2026-03-01T09:00:00Z", EMAIL),
        track("t", "2026-03-01T10:00:00Z", "cart_abandoned", ""),
        track("t", "2026-03-01T10:10:00Z", "cart_abandoned", ""),
        track("t", "2026-03-01T10:30:00Z", "order_completed", ""),
        track("t", "2026-03-01T10:40:00Z", "order_completed", ""),
    ];
    let (compiled, sim) = run_full("", &flows, &records, None, true);
    let trace: Vec<String> = sim
        .trace
        .iter()
        .map(|e| simulate::trace_line(&compiled, e))
        .collect();
    let text = trace.join("\n");
    for expected in [
        "2026-03-01T10:00:00Z t cart entered: when `cart_abandoned`: entered (flows/main.flow:",
        "2026-03-01T10:10:00Z t cart not_entered: when `cart_abandoned`: not entered, an instance is already active",
        "2026-03-01T10:30:00Z t cart exited: exit on `order_completed`",
        "2026-03-01T10:30:00Z t cart goal: goal `order_completed` reached",
        "2026-03-01T10:40:00Z t segment: entered segment `fan`",
        "2026-03-01T10:40:00Z t fans entered: when entering `fan`: entered",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const FLOWS: &str = "message reminder: email {
    subject: \"Your cart\"
    body: \"<p>Still thinking?</p>\"
}
policy {
    quiet hours 22:00..07:00
    limit email 2 per 1d
}
flow abandoned_cart {
    when cart_abandoned
    exit on order_completed
    wait 1h
    send reminder
    wait 1d
    send reminder
}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// Records with distinct timestamps give the same deliveries in any file order, and the
        /// output is sorted by (time, contact, flow, message).
        #[test]
        fn file_order_does_not_matter(
            events in proptest::collection::vec((0u8..3, 0u8..3, 0u32..(5 * 24 * 60)), 1..30),
            seed in any::<u64>(),
        ) {
            let base = parse_instant("2026-03-01T00:00:00Z").unwrap();
            let mut records = Vec::new();
            for contact in ["a", "b", "c"] {
                records.push(identify(contact, "2026-02-28T00:00:00Z", EMAIL));
            }
            for (index, (contact, kind, minute)) in events.iter().enumerate() {
                // Distinct instants: minute plus the index in seconds.
                let t = flowc::engine::time::format_instant(base + i64::from(*minute) * 60 + index as i64);
                let contact = ["a", "b", "c"][*contact as usize];
                let event = ["cart_abandoned", "order_completed", "cart_abandoned"][*kind as usize];
                records.push(track(contact, &t, event, ""));
            }
            let first = run(FLOWS, &records);
            let mut shuffled = records.clone();
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(&first, &run(FLOWS, &shuffled));
            let mut sorted = first.clone();
            sorted.sort();
            prop_assert_eq!(first, sorted);
        }
    }
}

/// Every folder of `tests/engine/cases/` is a project with `events.jsonl`, an optional
/// `until.txt`, and `expected.jsonl` (the exact output of `flowc simulate`).
/// `UPDATE_EXPECT=1 cargo test cases` rewrites the expectations.
#[test]
fn cases() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engine/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    for dir in dirs {
        let mut flows = String::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("flows"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            flows.push_str(&std::fs::read_to_string(file).unwrap());
            flows.push('\n');
        }
        let compiled = compile_project("", &flows);
        let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
        let until = std::fs::read_to_string(dir.join("until.txt"))
            .ok()
            .map(|u| parse_instant(u.trim()).unwrap());
        let options = SimulateOptions {
            until,
            ..Default::default()
        };
        let sim = simulate::run_jsonl(&compiled, &events, &options).unwrap();
        let actual: String = simulate::delivery_lines(&compiled, &sim)
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        let expected_path = dir.join("expected.jsonl");
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        assert_eq!(actual, expected, "case {}", dir.display());
    }
}

#[test]
fn a_segment_call_passed_to_a_template_works_in_when_entering() {
    let compiled = compile_project(
        "",
        "use stdlib/consent

message m: email { subject: \"s\", body: \"b\" }

flow template t(audience: segment, offer: message) {
    when entering audience
    exit on unsubscribed
    send offer
}

flow f = t(audience: inactive(90d), offer: m)
",
    );
    let flow = &compiled.flows[compiled.flow_id("f").unwrap().index()];
    let compile::Trigger::Entering(segment) = &flow.triggers[0] else {
        panic!("{:?}", flow.triggers);
    };
    assert_eq!(compiled.segments[segment.index()].name, "inactive(90d)");
}

#[test]
fn set_consent_true_gives_consent_again_after_an_unsubscribe() {
    let flows = with_messages(
        "flow confirm {
    when email_confirmed
    set contact.consent.email = true
    send reminder
}",
    );
    let records = [
        identify("c1", "2026-03-01T09:00:00Z", EMAIL),
        track(
            "c1",
            "2026-03-01T09:30:00Z",
            "unsubscribed",
            r#""channel":"email""#,
        ),
        track("c1", "2026-03-01T10:00:00Z", "email_confirmed", ""),
        // An unsubscribe of another channel never blocked email.
        identify("c2", "2026-03-01T09:00:00Z", EMAIL),
        track(
            "c2",
            "2026-03-01T09:30:00Z",
            "unsubscribed",
            r#""channel":"sms""#,
        ),
        track("c2", "2026-03-01T10:00:00Z", "email_confirmed", ""),
    ];
    assert_eq!(
        run(&flows, &records),
        vec![
            line(
                "2026-03-01T10:00:00Z",
                "c1",
                "confirm",
                "reminder",
                "email",
                None
            ),
            line(
                "2026-03-01T10:00:00Z",
                "c2",
                "confirm",
                "reminder",
                "email",
                None
            ),
        ]
    );
}
