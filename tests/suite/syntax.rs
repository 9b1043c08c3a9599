//! Integration tests: syntax. Text → AST shapes and spans, worded syntax errors, and a
//! property test that the parser never panics.
//!
//! Owns: the boundary `flowc::syntax::parse`. Must not: depend on the checker or formatter.

use flowc::syntax::ast::*;
use flowc::syntax::{parse, SyntaxError, SyntaxErrorKind};
use proptest::prelude::*;

// ───────────────────────────── helpers ─────────────────────────────

fn ok(text: &str) -> SourceFile {
    match parse(text) {
        Ok(file) => file,
        Err(error) => panic!("expected {text:?} to parse, got {error:#?}"),
    }
}

fn err(text: &str) -> SyntaxError {
    match parse(text) {
        Ok(file) => panic!("expected {text:?} to fail, got {file:#?}"),
        Err(error) => error,
    }
}

/// The text a span covers.
fn at(text: &str, span: Span) -> &str {
    &text[span.start..span.end]
}

/// The one flow of a file.
fn flow(text: &str) -> FlowDecl {
    match ok(text).items.into_iter().next() {
        Some(Item::Flow(flow)) => flow,
        other => panic!("expected a flow, got {other:#?}"),
    }
}

/// The steps of `flow f { when x \n STEPS }`.
fn steps(body: &str) -> Vec<StepKind> {
    flow(&format!("flow f {{\n  when x\n{body}\n}}\n"))
        .body
        .steps
        .into_iter()
        .map(|s| s.kind)
        .collect()
}

fn step(body: &str) -> StepKind {
    let mut all = steps(body);
    assert_eq!(all.len(), 1, "expected one step in {body:?}: {all:#?}");
    all.remove(0)
}

/// The header lines of `flow f { HEADER \n stop }`.
fn header(line: &str) -> HeaderKind {
    let flow = flow(&format!("flow f {{\n  {line}\n  stop\n}}\n"));
    assert_eq!(flow.body.header.len(), 1, "{line}");
    flow.body.header.into_iter().next().map(|h| h.kind).unwrap()
}

/// The body of `segment s = EXPR`, as an S-expression.
fn expr(text: &str) -> String {
    match ok(&format!("segment s = {text}\n"))
        .items
        .into_iter()
        .next()
    {
        Some(Item::Segment(segment)) => sexpr(&segment.body),
        other => panic!("expected a segment, got {other:#?}"),
    }
}

fn duration_expr(d: &DurationExpr) -> String {
    match d {
        DurationExpr::Literal(d) => d.to_string(),
        DurationExpr::Param(p) => format!("${}", p.name),
    }
}

fn dotted(event: &Ident, property: &[Ident]) -> String {
    let mut out = event.name.clone();
    for p in property {
        out.push('.');
        out.push_str(&p.name);
    }
    out
}

/// A compact, fully parenthesised rendering of an expression.
fn sexpr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Null => "null".into(),
        ExprKind::Number(n) => n.to_string(),
        ExprKind::String(s) => format!("{s:?}"),
        ExprKind::Duration(d) => d.to_string(),
        ExprKind::Percent(p) => format!("{p}%"),
        ExprKind::Time(t) => t.to_string(),
        ExprKind::List(items) => format!(
            "[{}]",
            items.iter().map(sexpr).collect::<Vec<_>>().join(" ")
        ),
        ExprKind::Path(p) => p.dotted(),
        ExprKind::Name(n) => n.name.clone(),
        ExprKind::SegmentCall { name, args } => {
            let args: Vec<String> = args
                .iter()
                .map(|a| match &a.name {
                    Some(n) => format!("{}: {}", n.name, sexpr(&a.value)),
                    None => sexpr(&a.value),
                })
                .collect();
            format!("({} {})", name.name, args.join(", "))
        }
        ExprKind::Exists(p) => format!("(exists {})", p.dotted()),
        ExprKind::CanReceive { channel, .. } => format!("(can_receive {})", channel.keyword()),
        ExprKind::Count {
            event,
            filter,
            within,
        } => {
            let mut out = format!("(count {}", event.name);
            if let Some(f) = filter {
                out += &format!(" where {}", sexpr(f));
            }
            if let Some(w) = within {
                out += &format!(" within {}", duration_expr(w));
            }
            out + ")"
        }
        ExprKind::Sum {
            event,
            property,
            within,
        } => match within {
            Some(w) => format!(
                "(sum {} within {})",
                dotted(event, property),
                duration_expr(w)
            ),
            None => format!("(sum {})", dotted(event, property)),
        },
        ExprKind::Last { event, property } => format!("(last {})", dotted(event, property)),
        ExprKind::Since { event } => format!("(since {})", event.name),
        ExprKind::Unary { op, operand } => {
            let op = match op {
                UnaryOp::Not => "not",
                UnaryOp::Neg => "-",
            };
            format!("({op} {})", sexpr(operand))
        }
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", op.symbol(), sexpr(lhs), sexpr(rhs))
        }
        ExprKind::In { needle, list } => format!("(in {} {})", sexpr(needle), sexpr(list)),
    }
}

fn names(block: &Block) -> Vec<String> {
    block
        .steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Send { message } => format!("send {}", message.name),
            StepKind::Stop => "stop".into(),
            other => format!("{other:?}"),
        })
        .collect()
}

// ───────────────────────────── declarations ─────────────────────────────

#[test]
fn use_stdlib_module() {
    let text = "use stdlib/consent\n";
    let file = ok(text);
    assert_eq!(file.uses.len(), 1);
    assert_eq!(file.uses[0].module.name, "consent");
    assert_eq!(at(text, file.uses[0].module.span), "consent");
    assert_eq!(at(text, file.uses[0].span), "use stdlib/consent");
    assert!(file.items.is_empty());
}

#[test]
fn segment_without_parameters() {
    let text = "segment vip = contact.plan == \"pro\"\n";
    let Some(Item::Segment(segment)) = ok(text).items.into_iter().next() else {
        panic!()
    };
    assert_eq!(segment.name.name, "vip");
    assert!(segment.params.is_empty());
    assert_eq!(sexpr(&segment.body), "(== contact.plan \"pro\")");
    assert_eq!(
        at(text, segment.span),
        "segment vip = contact.plan == \"pro\""
    );
}

#[test]
fn segment_with_parameters_and_continued_lines() {
    let text = "segment inactive(period: duration, min: number, label: string, on: bool) =\n    count(email_opened within period) == 0\n    and count(email_clicked within period) <= min\n";
    let Some(Item::Segment(segment)) = ok(text).items.into_iter().next() else {
        panic!()
    };
    let params: Vec<(&str, ParamType)> = segment
        .params
        .iter()
        .map(|p| (p.name.name.as_str(), p.ty))
        .collect();
    assert_eq!(
        params,
        [
            ("period", ParamType::Duration),
            ("min", ParamType::Number),
            ("label", ParamType::String),
            ("on", ParamType::Bool)
        ]
    );
    assert_eq!(at(text, segment.params[0].span), "period: duration");
    assert_eq!(at(text, segment.params[0].ty_span), "duration");
    assert_eq!(
        sexpr(&segment.body),
        "(and (== (count email_opened within $period) 0) (<= (count email_clicked within $period) min))"
    );
}

#[test]
fn the_stdlib_parses() {
    let text = include_str!("../../stdlib/consent.flow");
    let file = ok(text);
    assert!(!file.items.is_empty());
}

#[test]
fn message_fields_on_lines_or_with_commas() {
    let text = "message welcome: email {\n  subject: \"Hi {{ contact.name }}\"\n  body: file(\"templates/w.html\")\n  track: false\n}\nmessage receipt: sms transactional { body: \"Thanks \\\"you\\\"\\n\\tok \\\\\", }\n";
    let items = ok(text).items;
    let Item::Message(welcome) = &items[0] else {
        panic!()
    };
    assert_eq!(welcome.name.name, "welcome");
    assert_eq!(welcome.channel, Channel::Email);
    assert_eq!(at(text, welcome.channel_span), "email");
    assert!(!welcome.transactional);
    assert_eq!(welcome.fields.len(), 3);
    assert_eq!(welcome.fields[0].name.name, "subject");
    assert!(
        matches!(&welcome.fields[0].value, FieldValue::Text(s) if s.value == "Hi {{ contact.name }}")
    );
    assert!(
        matches!(&welcome.fields[1].value, FieldValue::File(s) if s.value == "templates/w.html")
    );
    assert!(matches!(
        &welcome.fields[2].value,
        FieldValue::Bool { value: false, .. }
    ));
    assert_eq!(
        at(text, welcome.fields[1].span),
        "body: file(\"templates/w.html\")"
    );
    assert_eq!(
        at(text, welcome.fields[0].value.span()),
        "\"Hi {{ contact.name }}\""
    );

    let Item::Message(receipt) = &items[1] else {
        panic!()
    };
    assert_eq!(receipt.channel, Channel::Sms);
    assert!(receipt.transactional);
    assert!(
        matches!(&receipt.fields[0].value, FieldValue::Text(s) if s.value == "Thanks \"you\"\n\tok \\")
    );
}

#[test]
fn message_fields_separated_by_commas_on_one_line() {
    let file = ok("message p: push { title: \"T\", body: \"B\", url: \"https://x\" }\n");
    let Item::Message(m) = &file.items[0] else {
        panic!()
    };
    assert_eq!(m.channel, Channel::Push);
    let names: Vec<&str> = m.fields.iter().map(|f| f.name.name.as_str()).collect();
    assert_eq!(names, ["title", "body", "url"]);
}

#[test]
fn empty_message_and_webhook() {
    let file = ok("message hook: webhook {\n}\n");
    let Item::Message(m) = &file.items[0] else {
        panic!()
    };
    assert_eq!(m.channel, Channel::Webhook);
    assert!(m.fields.is_empty());
}

#[test]
fn event_schema() {
    let text = "event order_placed {\n  total: number\n  coupon: string?\n  at: time, items: list, meta: object, gift: bool\n}\n";
    let Some(Item::Event(event)) = ok(text).items.into_iter().next() else {
        panic!()
    };
    assert_eq!(event.name.name, "order_placed");
    let props: Vec<(&str, PropertyType, bool)> = event
        .properties
        .iter()
        .map(|p| (p.name.name.as_str(), p.ty, p.optional))
        .collect();
    assert_eq!(
        props,
        [
            ("total", PropertyType::Number, false),
            ("coupon", PropertyType::String, true),
            ("at", PropertyType::Time, false),
            ("items", PropertyType::List, false),
            ("meta", PropertyType::Object, false),
            ("gift", PropertyType::Bool, false),
        ]
    );
    assert_eq!(at(text, event.properties[1].span), "coupon: string?");
    assert_eq!(at(text, event.properties[1].ty_span), "string");
}

#[test]
fn policy_lines() {
    let text =
        "policy {\n  quiet hours 21:00..08:00\n  limit email 3 per 1w\n  limit sms 1 per day\n}\n";
    let Some(Item::Policy(policy)) = ok(text).items.into_iter().next() else {
        panic!()
    };
    assert_eq!(policy.lines.len(), 3);
    let PolicyKind::QuietHours(q) = &policy.lines[0].kind else {
        panic!()
    };
    assert_eq!(
        (q.start.to_string(), q.end.to_string()),
        ("21:00".into(), "08:00".into())
    );
    let PolicyKind::Limit {
        channel,
        count,
        per,
        channel_span,
        count_span,
    } = &policy.lines[1].kind
    else {
        panic!()
    };
    assert_eq!(
        (*channel, *count, per.to_string()),
        (Channel::Email, 3, "1w".to_string())
    );
    assert_eq!(at(text, *channel_span), "email");
    assert_eq!(at(text, *count_span), "3");
    let PolicyKind::Limit { per, .. } = &policy.lines[2].kind else {
        panic!()
    };
    assert_eq!(per.to_string(), "1d");
    assert_eq!(at(text, policy.lines[1].span), "limit email 3 per 1w");
}

#[test]
fn flow_template_and_instance() {
    let text = "flow template nurture(msg: message, delay: duration, audience: segment, done: event) {\n  when entering audience\n  exit on done\n  wait delay\n  send msg\n}\nflow nurture_pro = nurture(msg: welcome, delay: 3d, audience: vip, done: order_placed)\n";
    let items = ok(text).items;
    let Item::FlowTemplate(template) = &items[0] else {
        panic!()
    };
    assert_eq!(template.name.name, "nurture");
    let types: Vec<ParamType> = template.params.iter().map(|p| p.ty).collect();
    assert_eq!(
        types,
        [
            ParamType::Message,
            ParamType::Duration,
            ParamType::Segment,
            ParamType::Event
        ]
    );
    assert!(
        matches!(&template.body.steps[0].kind, StepKind::Wait { duration: DurationExpr::Param(p) } if p.name == "delay")
    );
    let Item::FlowInstance(instance) = &items[1] else {
        panic!()
    };
    assert_eq!(instance.name.name, "nurture_pro");
    assert_eq!(instance.template.name, "nurture");
    let args: Vec<String> = instance
        .args
        .iter()
        .map(|a| format!("{}={}", a.name.as_ref().unwrap().name, sexpr(&a.value)))
        .collect();
    assert_eq!(
        args,
        [
            "msg=welcome",
            "delay=3d",
            "audience=vip",
            "done=order_placed"
        ]
    );
    assert_eq!(
        at(text, instance.args_span),
        "(msg: welcome, delay: 3d, audience: vip, done: order_placed)"
    );
    assert_eq!(at(text, instance.args[1].span), "delay: 3d");
    assert!(at(text, instance.span).starts_with("flow nurture_pro = nurture("));
}

#[test]
fn template_instance_arguments_over_several_lines() {
    let text = "flow a =\n  nurture(\n    msg: welcome,   # the message\n    delay: 3d,\n  )\n";
    let Some(Item::FlowInstance(instance)) = ok(text).items.into_iter().next() else {
        panic!()
    };
    assert_eq!(instance.args.len(), 2);
    assert_eq!(ok(text).comments[0].text, "# the message");
}

// ───────────────────────────── flow headers ─────────────────────────────

#[test]
fn when_event_with_and_without_filter() {
    let HeaderKind::WhenEvent { event, filter } = header("when signed_up") else {
        panic!()
    };
    assert_eq!(event.name, "signed_up");
    assert!(filter.is_none());
    let HeaderKind::WhenEvent { filter, .. } =
        header("when signed_up where trigger.source != \"import\"")
    else {
        panic!()
    };
    assert_eq!(sexpr(&filter.unwrap()), "(!= trigger.source \"import\")");
}

#[test]
fn several_when_lines() {
    let flow = flow(
        "flow f {\n  when a\n  when b where trigger.x > 1\n  when entering vip\n  send m\n}\n",
    );
    assert_eq!(flow.body.header.len(), 3);
    assert_eq!(flow.body.steps.len(), 1);
}

#[test]
fn when_entering_a_segment_with_arguments() {
    let HeaderKind::WhenEntering { segment } = header("when entering vip") else {
        panic!()
    };
    assert_eq!((segment.name.name.as_str(), segment.args.len()), ("vip", 0));
    let HeaderKind::WhenEntering { segment } = header("when entering inactive(30d)") else {
        panic!()
    };
    assert_eq!(sexpr(&segment.args[0].value), "30d");
    assert!(segment.args[0].name.is_none());
    let HeaderKind::WhenEntering { segment } = header("when entering inactive(period: 30 days)")
    else {
        panic!()
    };
    assert_eq!(segment.args[0].name.as_ref().unwrap().name, "period");
    assert_eq!(sexpr(&segment.args[0].value), "30d");
}

#[test]
fn when_every_schedules() {
    let HeaderKind::WhenEvery {
        every,
        at: time,
        segment,
    } = header("when every day at 09:00 for espresso_lovers")
    else {
        panic!()
    };
    assert_eq!(duration_expr(&every), "1d");
    assert_eq!(time.unwrap().to_string(), "09:00");
    assert_eq!(segment.name.name, "espresso_lovers");
    let HeaderKind::WhenEvery {
        every, at: time, ..
    } = header("when every week for vip")
    else {
        panic!()
    };
    assert_eq!((duration_expr(&every), time), ("1w".to_string(), None));
    let HeaderKind::WhenEvery { every, segment, .. } =
        header("when every 4mo for inactive(period: 90d)")
    else {
        panic!()
    };
    assert_eq!(duration_expr(&every), "4mo");
    assert_eq!(segment.args.len(), 1);
}

#[test]
fn when_anniversary() {
    let HeaderKind::WhenAnniversary { field, at: time } =
        header("when anniversary of contact.birthday at 09:00")
    else {
        panic!()
    };
    assert_eq!(field.dotted(), "contact.birthday");
    assert_eq!(time.map(|t| (t.hour, t.minute)), Some((9, 0)));
    let HeaderKind::WhenAnniversary { at: time, .. } =
        header("when anniversary of contact.signup_date")
    else {
        panic!()
    };
    assert!(time.is_none());
}

#[test]
fn only_if_exit_and_reentry() {
    assert!(
        matches!(header("only if can_receive(email)"), HeaderKind::OnlyIf(e) if sexpr(&e) == "(can_receive email)")
    );
    assert!(matches!(
        header("reentry never"),
        HeaderKind::Reentry(Reentry::Never)
    ));
    assert!(matches!(
        header("reentry always"),
        HeaderKind::Reentry(Reentry::Always)
    ));
    assert!(
        matches!(header("reentry after 30d"), HeaderKind::Reentry(Reentry::After(d)) if duration_expr(&d) == "30d")
    );
    let HeaderKind::ExitOn { event, filter } = header("exit on unsubscribed") else {
        panic!()
    };
    assert_eq!(
        (event.name.as_str(), filter.is_none()),
        ("unsubscribed", true)
    );
    let HeaderKind::ExitOn { filter, .. } = header("exit on order_placed where event.total > 0")
    else {
        panic!()
    };
    assert_eq!(sexpr(&filter.unwrap()), "(> event.total 0)");
    assert!(
        matches!(header("exit if contact.deleted == true"), HeaderKind::ExitIf(e) if sexpr(&e) == "(== contact.deleted true)")
    );
}

#[test]
fn quiet_hours_goal_and_holdout() {
    let HeaderKind::QuietHours(q) = header("quiet hours 21:00..08:00") else {
        panic!()
    };
    assert_eq!(
        (q.start.hour, q.start.minute, q.end.hour, q.end.minute),
        (21, 0, 8, 0)
    );
    let HeaderKind::Goal {
        event,
        filter,
        within,
    } = header("goal order_placed within 7d")
    else {
        panic!()
    };
    assert_eq!(
        (
            event.name.as_str(),
            filter.is_none(),
            duration_expr(&within)
        ),
        ("order_placed", true, "7d".into())
    );
    let HeaderKind::Goal { filter, within, .. } =
        header("goal order_placed where event.total > 10 within 2 weeks")
    else {
        panic!()
    };
    assert_eq!(sexpr(&filter.unwrap()), "(> event.total 10)");
    assert_eq!(duration_expr(&within), "2w");
    let HeaderKind::Holdout(share) = header("holdout 10%") else {
        panic!()
    };
    assert_eq!(share.value, 10.0);
    let HeaderKind::Holdout(share) = header("holdout 12.5%") else {
        panic!()
    };
    assert_eq!(share.value, 12.5);
}

#[test]
fn header_lines_after_steps_still_parse_for_the_checker() {
    // The checker reports a header after a step (E0027); the parser keeps both, in order.
    let text = "flow f {\n  when a\n  send m\n  exit on b\n}\n";
    let flow = flow(text);
    assert_eq!(flow.body.header.len(), 2);
    assert!(flow.body.header[1].span.start > flow.body.steps[0].span.start);
}

// ───────────────────────────── steps ─────────────────────────────

#[test]
fn send_wait_and_stop() {
    let all = steps("  send welcome\n  wait 2 days\n  wait until 09:30\n  stop");
    assert!(matches!(&all[0], StepKind::Send { message } if message.name == "welcome"));
    assert!(matches!(&all[1], StepKind::Wait { duration } if duration_expr(duration) == "2d"));
    assert!(matches!(&all[2], StepKind::WaitUntil { time } if (time.hour, time.minute) == (9, 30)));
    assert!(matches!(&all[3], StepKind::Stop));
}

#[test]
fn statements_separated_by_semicolons() {
    let all = steps("  send a; wait 1h; send b");
    assert_eq!(all.len(), 3);
    let flow = flow("flow f { when x; send a }\n");
    assert_eq!((flow.body.header.len(), flow.body.steps.len()), (1, 1));
}

#[test]
fn wait_for_one_event_without_block() {
    let StepKind::WaitFor(wait) = step("  wait for email_opened up to 1h") else {
        panic!()
    };
    assert_eq!(wait.events.len(), 1);
    assert_eq!(wait.events[0].event.name, "email_opened");
    assert!(wait.events[0].filter.is_none());
    assert_eq!(duration_expr(&wait.timeout), "1h");
    assert!(matches!(wait.body, WaitForBody::None));
    assert!(wait.otherwise.is_none());
}

#[test]
fn wait_for_one_event_with_received_and_else_blocks() {
    let StepKind::WaitFor(wait) = step(
        "  wait for order_shipped where event.order_id == trigger.order_id up to 5d {\n    send shipped\n  } else {\n    send late\n  }",
    ) else {
        panic!()
    };
    assert_eq!(
        sexpr(wait.events[0].filter.as_ref().unwrap()),
        "(== event.order_id trigger.order_id)"
    );
    let WaitForBody::Received(received) = &wait.body else {
        panic!()
    };
    assert_eq!(names(received), ["send shipped"]);
    assert_eq!(names(wait.otherwise.as_ref().unwrap()), ["send late"]);
}

#[test]
fn wait_for_with_else_on_the_next_line_and_no_received_block() {
    let all =
        steps("  wait for a up to 1d {\n    send x\n  }\n  else {\n    send y\n  }\n  send z");
    assert_eq!(all.len(), 2);
    let StepKind::WaitFor(wait) = &all[0] else {
        panic!()
    };
    assert!(wait.otherwise.is_some());
    let StepKind::WaitFor(wait) = step("  wait for a up to 1d else { send y }") else {
        panic!()
    };
    assert!(matches!(wait.body, WaitForBody::None));
    assert_eq!(names(wait.otherwise.as_ref().unwrap()), ["send y"]);
}

#[test]
fn wait_for_several_events_with_arms() {
    let StepKind::WaitFor(wait) = step(
        "  wait for order_placed where event.total > 50 or cart_abandoned up to 2d {\n    on order_placed { send thanks }\n    on cart_abandoned {\n      stop\n    }\n  } else {\n    send nudge\n  }",
    ) else {
        panic!()
    };
    let events: Vec<&str> = wait.events.iter().map(|e| e.event.name.as_str()).collect();
    assert_eq!(events, ["order_placed", "cart_abandoned"]);
    assert_eq!(
        sexpr(wait.events[0].filter.as_ref().unwrap()),
        "(> event.total 50)"
    );
    assert!(wait.events[1].filter.is_none());
    let WaitForBody::Arms(arms) = &wait.body else {
        panic!("{:?}", wait.body)
    };
    assert_eq!(arms.len(), 2);
    assert_eq!(arms[0].event.name, "order_placed");
    assert_eq!(names(&arms[0].block), ["send thanks"]);
    assert_eq!(names(&arms[1].block), ["stop"]);
    assert_eq!(names(wait.otherwise.as_ref().unwrap()), ["send nudge"]);
}

#[test]
fn wait_for_or_reads_the_next_event_only_before_where_up_to_or_or() {
    // `or b up to`: b is the next awaited event.
    let StepKind::WaitFor(wait) = step("  wait for a where x > 1 or b up to 2d") else {
        panic!()
    };
    assert_eq!(wait.events.len(), 2);
    // `or b where`: likewise, with its own filter.
    let StepKind::WaitFor(wait) = step("  wait for a where x or b where y or c up to 2d") else {
        panic!()
    };
    let events: Vec<(&str, Option<String>)> = wait
        .events
        .iter()
        .map(|e| (e.event.name.as_str(), e.filter.as_ref().map(sexpr)))
        .collect();
    assert_eq!(
        events,
        [
            ("a", Some("x".into())),
            ("b", Some("y".into())),
            ("c", None)
        ]
    );
    // A boolean `or` followed by something else stays a boolean `or`.
    let StepKind::WaitFor(wait) = step("  wait for a where x or y == 1 up to 2d") else {
        panic!()
    };
    assert_eq!(wait.events.len(), 1);
    assert_eq!(
        sexpr(wait.events[0].filter.as_ref().unwrap()),
        "(or x (== y 1))"
    );
    // In parentheses, `or` is always boolean.
    let StepKind::WaitFor(wait) = step("  wait for a where (vip or new) up to 2d") else {
        panic!()
    };
    assert_eq!(wait.events.len(), 1);
    assert_eq!(
        sexpr(wait.events[0].filter.as_ref().unwrap()),
        "(or vip new)"
    );
    // The next event may start a new line.
    let StepKind::WaitFor(wait) = step("  wait for a where x > 1\n      or b up to 2d") else {
        panic!()
    };
    assert_eq!(wait.events.len(), 2);
}

/// Regression (found by the fmt property test): an awaited event without a filter followed by
/// a line that starts with `or` was read as part of the previous filter, so `flowc fmt` could
/// not put one awaited event per line.
#[test]
fn wait_for_or_name_before_a_line_starting_with_or_is_the_next_event() {
    let StepKind::WaitFor(wait) =
        step("  wait for a where x > 1\n      or b\n      or c where y up to 2d")
    else {
        panic!()
    };
    let events: Vec<&str> = wait.events.iter().map(|e| e.event.name.as_str()).collect();
    assert_eq!(events, ["a", "b", "c"]);
    assert_eq!(sexpr(wait.events[0].filter.as_ref().unwrap()), "(> x 1)");
}

#[test]
fn if_else_if_else() {
    let StepKind::If { branches, otherwise } = step(
        "  if contact.vip { send a } else if contact.x in [\"a\", \"b\"] {\n    stop\n  }\n  else { send c }",
    ) else {
        panic!()
    };
    assert_eq!(branches.len(), 2);
    assert_eq!(sexpr(&branches[0].condition), "contact.vip");
    assert_eq!(
        sexpr(&branches[1].condition),
        "(in contact.x [\"a\" \"b\"])"
    );
    assert_eq!(names(&branches[1].block), ["stop"]);
    assert_eq!(names(otherwise.as_ref().unwrap()), ["send c"]);
    let StepKind::If {
        branches,
        otherwise,
    } = step("  if a {\n    send x\n  }")
    else {
        panic!()
    };
    assert_eq!((branches.len(), otherwise.is_none()), (1, true));
}

#[test]
fn braces_may_open_on_the_next_line() {
    let StepKind::If { otherwise, .. } =
        step("  if a\n  {\n    send x\n  }\n  else\n  {\n    send y\n  }")
    else {
        panic!()
    };
    assert!(otherwise.is_some());
    let flow = flow("flow f\n{\n  when x\n  send y\n}\n");
    assert_eq!(flow.body.steps.len(), 1);
}

#[test]
fn split_arms() {
    let text = "flow f {\n  when x\n  split {\n    50% { send a }\n    30% {\n      send b\n    }\n    20% { }\n  }\n}\n";
    let f = flow(text);
    let StepKind::Split { arms } = &f.body.steps[0].kind else {
        panic!()
    };
    let shares: Vec<f64> = arms.iter().map(|a| a.share.value).collect();
    assert_eq!(shares, [50.0, 30.0, 20.0]);
    assert_eq!(names(&arms[0].block), ["send a"]);
    assert_eq!(at(text, arms[0].span), "50% { send a }");
    assert_eq!(at(text, arms[0].share.span), "50%");
    assert!(arms[2].block.steps.is_empty());
    assert!(
        matches!(step("  split { 50% { send a } 50% { send b } }"), StepKind::Split { arms } if arms.len() == 2)
    );
}

#[test]
fn set_a_contact_field() {
    let StepKind::Set { field, value } = step("  set contact.score = contact.score + 2") else {
        panic!()
    };
    assert_eq!(field.dotted(), "contact.score");
    assert_eq!(sexpr(&value), "(+ contact.score 2)");
    let StepKind::Set { value, .. } = step("  set contact.tier =\n    \"gold\"") else {
        panic!()
    };
    assert_eq!(sexpr(&value), "\"gold\"");
}

#[test]
fn unsubscribe_targets() {
    for (word, target) in [
        ("email", UnsubscribeTarget::Channel(Channel::Email)),
        ("sms", UnsubscribeTarget::Channel(Channel::Sms)),
        ("push", UnsubscribeTarget::Channel(Channel::Push)),
        ("webhook", UnsubscribeTarget::Channel(Channel::Webhook)),
        ("all", UnsubscribeTarget::All),
    ] {
        let body = format!("  unsubscribe {word}");
        let text = format!("flow f {{\n  when x\n{body}\n}}\n");
        let flow = flow(&text);
        let StepKind::Unsubscribe {
            target: got,
            target_span,
        } = flow.body.steps[0].kind
        else {
            panic!()
        };
        assert_eq!(got, target);
        assert_eq!(at(&text, target_span), word);
    }
}

// ───────────────────────────── expressions ─────────────────────────────

#[test]
fn precedence_of_boolean_operators() {
    assert_eq!(expr("a or b and c"), "(or a (and b c))");
    assert_eq!(expr("a and b or c"), "(or (and a b) c)");
    // `not` binds tighter than `and` but looser than comparisons.
    assert_eq!(expr("not a == b"), "(not (== a b))");
    assert_eq!(expr("not a and b"), "(and (not a) b)");
    assert_eq!(expr("not not a"), "(not (not a))");
    assert_eq!(expr("a and not b or c"), "(or (and a (not b)) c)");
}

#[test]
fn precedence_of_arithmetic_and_comparisons() {
    assert_eq!(
        expr("a + b * c == d - e / f"),
        "(== (+ a (* b c)) (- d (/ e f)))"
    );
    assert_eq!(expr("a - b - c"), "(- (- a b) c)");
    assert_eq!(expr("-a * b"), "(* (- a) b)");
    assert_eq!(expr("(a + b) * c"), "(* (+ a b) c)");
    assert_eq!(
        expr("a < b and c <= d and e > f and g >= h and i != j"),
        "(and (and (and (and (< a b) (<= c d)) (> e f)) (>= g h)) (!= i j))"
    );
    assert_eq!(
        expr("contact.plan in [\"a\", \"b\"] and x"),
        "(and (in contact.plan [\"a\" \"b\"]) x)"
    );
    assert_eq!(expr("x + 1 in [2, 3]"), "(in (+ x 1) [2 3])");
}

#[test]
fn literals() {
    assert_eq!(expr("true"), "true");
    assert_eq!(expr("false"), "false");
    assert_eq!(expr("null"), "null");
    assert_eq!(expr("42"), "42");
    assert_eq!(expr("49.90"), "49.9");
    assert_eq!(expr("20%"), "20%");
    assert_eq!(expr("09:00"), "09:00");
    assert_eq!(
        expr("\"a \\\"b\\\" \\\\ \\n \\t\""),
        format!("{:?}", "a \"b\" \\ \n \t")
    );
    assert_eq!(expr("[]"), "[]");
    assert_eq!(expr("[1, 2,]"), "[1 2]");
}

#[test]
fn durations_in_every_spelling() {
    for (text, canonical) in [
        ("30s", "30s"),
        ("15min", "15min"),
        ("1h", "1h"),
        ("2d", "2d"),
        ("1w", "1w"),
        ("4mo", "4mo"),
        ("1y", "1y"),
        ("2 days", "2d"),
        ("1 day", "1d"),
        ("1 hour", "1h"),
        ("3 hours", "3h"),
        ("10 minutes", "10min"),
        ("1 minute", "1min"),
        ("5 seconds", "5s"),
        ("1 second", "1s"),
        ("2 weeks", "2w"),
        ("1 week", "1w"),
        ("6 months", "6mo"),
        ("1 month", "1mo"),
        ("2 years", "2y"),
        ("1 year", "1y"),
        ("2 d", "2d"),
    ] {
        assert_eq!(
            expr(&format!("since(x) > {text}")),
            format!("(> (since x) {canonical})"),
            "{text}"
        );
    }
    let StepKind::Wait {
        duration: DurationExpr::Literal(d),
    } = step("  wait 90 minutes")
    else {
        panic!()
    };
    assert_eq!((d.amount, d.unit), (90, DurationUnit::Minutes));
}

#[test]
fn behaviour_functions() {
    assert_eq!(expr("count(order_placed)"), "(count order_placed)");
    assert_eq!(
        expr("count(order_placed where event.total > 10 within 30d) >= 2"),
        "(>= (count order_placed where (> event.total 10) within 30d) 2)"
    );
    assert_eq!(
        expr("count(email_opened within 7 days)"),
        "(count email_opened within 7d)"
    );
    assert_eq!(
        expr("sum(order_placed.total within 365d) > 500"),
        "(> (sum order_placed.total within 365d) 500)"
    );
    assert_eq!(
        expr("sum(order_placed.items.price)"),
        "(sum order_placed.items.price)"
    );
    assert_eq!(
        expr("last(order_placed.total) == 3"),
        "(== (last order_placed.total) 3)"
    );
    assert_eq!(
        expr("since(order_placed) > 90d"),
        "(> (since order_placed) 90d)"
    );
    assert_eq!(expr("exists(contact.phone)"), "(exists contact.phone)");
    assert_eq!(expr("can_receive(sms)"), "(can_receive sms)");
}

#[test]
fn segment_calls_names_and_paths() {
    assert_eq!(expr("vip and inactive(30d)"), "(and vip (inactive 30d))");
    assert_eq!(
        expr("inactive(period: 30d, min: 2)"),
        "(inactive period: 30d, min: 2)"
    );
    assert_eq!(
        expr("contact.address.city == trigger.city"),
        "(== contact.address.city trigger.city)"
    );
    assert_eq!(expr("event.total"), "event.total");
}

#[test]
fn keywords_are_not_names_in_expressions() {
    for keyword in ["and", "or", "not", "in", "where", "within"] {
        err(&format!("segment s = {keyword}\n"));
    }
    // ... but names may start with them.
    assert_eq!(
        expr("order and notice or index"),
        "(or (and order notice) index)"
    );
    assert_eq!(expr("within_days"), "within_days");
}

#[test]
fn expressions_continue_over_lines() {
    // After an operator, before a line starting with an operator, inside parentheses and
    // brackets, with comments and blank lines in between.
    assert_eq!(expr("a and\n  b"), "(and a b)");
    assert_eq!(expr("a\n  and b\n  or c"), "(or (and a b) c)");
    assert_eq!(expr("a\n\n  # why\n  and b"), "(and a b)");
    assert_eq!(expr("(a\n  or # because\n  b\n)"), "(or a b)");
    assert_eq!(expr("x in [\n  1,\n  2,\n]"), "(in x [1 2])");
    assert_eq!(
        expr("count(\n  order_placed\n  within 3d\n)"),
        "(count order_placed within 3d)"
    );
    assert_eq!(expr("a\n  == 1"), "(== a 1)");
    assert_eq!(expr("a +\n 1 -\n 2"), "(- (+ a 1) 2)");
    // A line break elsewhere ends the statement.
    err("segment s = a b\n");
    let file = ok("segment s = a\nsegment t = b\n");
    assert_eq!(file.items.len(), 2);
}

#[test]
fn duration_parameters_in_segments_and_templates() {
    let Some(Item::Segment(segment)) =
        ok("segment quiet(period: duration) = count(email_opened within period) == 0\n")
            .items
            .into_iter()
            .next()
    else {
        panic!()
    };
    assert_eq!(
        sexpr(&segment.body),
        "(== (count email_opened within $period) 0)"
    );
    let text = "flow template t(d: duration, s: segment) {\n  when every d for s\n  reentry after d\n  goal x within d\n  wait for y up to d\n}\n";
    let Some(Item::FlowTemplate(template)) = ok(text).items.into_iter().next() else {
        panic!()
    };
    assert!(
        matches!(&template.body.header[0].kind, HeaderKind::WhenEvery { every: DurationExpr::Param(p), .. } if p.name == "d")
    );
    // Outside a declaration with that parameter, a name is not a duration.
    let error = err("segment s = count(x within period) == 0\n");
    assert_eq!(
        error.message,
        "expected a duration such as `2d`, found `period`"
    );
}

// ───────────────────────────── lexical ─────────────────────────────

#[test]
fn comments_are_collected_in_order_and_not_inside_strings() {
    let text = "# top\nmessage m: email { # after brace\n  subject: \"Issue #5 \\\"# not\\\" a comment\" # real\n}\n#last";
    let file = ok(text);
    let comments: Vec<&str> = file.comments.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(comments, ["# top", "# after brace", "# real", "#last"]);
    for comment in &file.comments {
        assert_eq!(at(text, comment.span), comment.text);
    }
    let Item::Message(m) = &file.items[0] else {
        panic!()
    };
    assert!(
        matches!(&m.fields[0].value, FieldValue::Text(s) if s.value == "Issue #5 \"# not\" a comment")
    );
}

#[test]
fn blank_lines_comments_crlf_and_empty_files() {
    assert!(ok("").items.is_empty());
    assert!(ok("\n\n# only a comment\n\n").items.is_empty());
    let text = "flow f {\r\n  # c\r\n\r\n  when x\r\n  send y\r\n}\r\n";
    let f = flow(text);
    assert_eq!(f.body.steps.len(), 1);
    assert_eq!(ok(text).comments[0].text, "# c");
    assert_eq!(ok("segment a = b").items.len(), 1, "no final line break");
}

// ───────────────────────────── spans ─────────────────────────────

#[test]
fn spans_of_items_steps_and_blocks() {
    let text = "flow welcome {\n  when signed_up\n  send hello\n  if contact.vip {\n    stop\n  } else {\n    wait 1d\n  }\n}\n";
    let file = ok(text);
    let Item::Flow(f) = &file.items[0] else {
        panic!()
    };
    assert_eq!(at(text, file.items[0].span()), text.trim_end());
    assert_eq!(at(text, f.name.span), "welcome");
    assert_eq!(at(text, f.body.span), &text[13..text.len() - 1]);
    assert_eq!(at(text, f.body.header[0].span), "when signed_up");
    assert_eq!(at(text, f.body.steps[0].span), "send hello");
    let StepKind::Send { message } = &f.body.steps[0].kind else {
        panic!()
    };
    assert_eq!(at(text, message.span), "hello");
    assert_eq!(
        at(text, f.body.steps[1].span),
        "if contact.vip {\n    stop\n  } else {\n    wait 1d\n  }"
    );
    let StepKind::If {
        branches,
        otherwise,
    } = &f.body.steps[1].kind
    else {
        panic!()
    };
    assert_eq!(at(text, branches[0].block.span), "{\n    stop\n  }");
    assert_eq!(
        at(text, otherwise.as_ref().unwrap().span),
        "{\n    wait 1d\n  }"
    );
    assert_eq!(
        at(text, otherwise.as_ref().unwrap().steps[0].span),
        "wait 1d"
    );
}

#[test]
fn spans_of_expressions() {
    let text = "segment s = not (contact.a == 1) and count(x within 2 days) > 3 or -y * 2\n";
    let Some(Item::Segment(segment)) = ok(text).items.into_iter().next() else {
        panic!()
    };
    let body = &segment.body;
    assert_eq!(
        at(text, body.span),
        "not (contact.a == 1) and count(x within 2 days) > 3 or -y * 2"
    );
    let ExprKind::Binary {
        lhs: and,
        rhs: product,
        ..
    } = &body.kind
    else {
        panic!()
    };
    assert_eq!(at(text, product.span), "-y * 2");
    let ExprKind::Binary {
        lhs: not,
        rhs: compare,
        ..
    } = &and.kind
    else {
        panic!()
    };
    assert_eq!(at(text, not.span), "not (contact.a == 1)");
    let ExprKind::Unary { operand: paren, .. } = &not.kind else {
        panic!()
    };
    assert_eq!(
        at(text, paren.span),
        "(contact.a == 1)",
        "parentheses widen the span"
    );
    let ExprKind::Binary { lhs: count, .. } = &compare.kind else {
        panic!()
    };
    assert_eq!(at(text, count.span), "count(x within 2 days)");
    let ExprKind::Count {
        event,
        within: Some(DurationExpr::Literal(d)),
        ..
    } = &count.kind
    else {
        panic!()
    };
    assert_eq!(at(text, event.span), "x");
    assert_eq!(at(text, d.span), "2 days");
}

#[test]
fn spans_of_wait_for_parts() {
    let text = "flow f {\n  when x\n  wait for a where event.v > 1 or b up to 2d {\n    on a { stop }\n    on b { stop }\n  }\n}\n";
    let f = flow(text);
    let StepKind::WaitFor(wait) = &f.body.steps[0].kind else {
        panic!()
    };
    assert_eq!(at(text, wait.events[0].span), "a where event.v > 1");
    assert_eq!(at(text, wait.events[1].span), "b");
    assert_eq!(at(text, wait.timeout.span()), "2d");
    let WaitForBody::Arms(arms) = &wait.body else {
        panic!()
    };
    assert_eq!(at(text, arms[1].span), "on b { stop }");
    let path_span = match &wait.events[0].filter.as_ref().unwrap().kind {
        ExprKind::Binary { lhs, .. } => lhs.span,
        _ => panic!(),
    };
    assert_eq!(at(text, path_span), "event.v");
}

#[test]
fn spans_are_byte_offsets_with_non_ascii_text() {
    let text = "message m: email { subject: \"Grüße 🎉\" }\nsegment s = contact.name == \"José\"\n";
    let file = ok(text);
    let Item::Segment(s) = &file.items[1] else {
        panic!()
    };
    assert_eq!(at(text, s.span), "segment s = contact.name == \"José\"");
}

// ───────────────────────────── values out of range ─────────────────────────────

#[test]
fn times_shares_and_durations_out_of_range() {
    let text = "flow f {\n  when x\n  wait until 25:00\n}\n";
    let error = err(text);
    assert_eq!(error.kind, SyntaxErrorKind::OutOfRange);
    assert_eq!(at(text, error.span), "25:00");
    assert!(
        error.message.contains("`25:00` is not a time of day"),
        "{}",
        error.message
    );
    assert_eq!(
        err("policy { quiet hours 21:60..08:00 }\n").kind,
        SyntaxErrorKind::OutOfRange
    );
    let error = err("flow f {\n  when x\n  holdout 150%\n}\n");
    assert_eq!(error.kind, SyntaxErrorKind::OutOfRange);
    assert!(error.message.contains("150%"));
    let error = err("flow f {\n  when x\n  wait 99999999999999999999999d\n}\n");
    assert_eq!(error.kind, SyntaxErrorKind::OutOfRange);
    assert!(error.message.contains("too long"));
    assert_eq!(
        err("flow f {\n  when x\n  wait 9999999999y\n}\n").kind,
        SyntaxErrorKind::OutOfRange
    );
    assert_eq!(
        err("policy { limit email 99999999999 per 1d }\n").kind,
        SyntaxErrorKind::OutOfRange
    );
}

// ───────────────────────────── syntax errors ─────────────────────────────

/// A rule name from the grammar must never reach a person.
fn assert_worded(error: &SyntaxError) {
    for word in [
        "kw_",
        "_decl",
        "EOI",
        "eol",
        "Rule",
        "operand",
        "infix",
        "flow_line",
        "wait_filter",
        "lbrace",
    ] {
        assert!(
            !error.message.contains(word),
            "rule name `{word}` in {:?}",
            error.message
        );
        assert!(
            !error.label.contains(word),
            "rule name `{word}` in {:?}",
            error.label
        );
    }
    assert!(error.help.is_some(), "no help for {:?}", error.message);
}

#[test]
fn error_expected_a_duration() {
    let text = "flow f {\n  when x\n  wait soon\n}\n";
    let error = err(text);
    assert_eq!(
        error.message,
        "expected a duration such as `2d`, found `soon`"
    );
    assert_eq!(at(text, error.span), "soon");
    assert_worded(&error);
}

#[test]
fn error_expected_a_step() {
    let text = "flow f {\n  when x\n  sned hello\n}\n";
    let error = err(text);
    assert!(error.message.starts_with(
        "expected a header line such as `when`, or a step such as `send`, `wait` or `if`"
    ));
    assert!(error.message.ends_with("found `sned`"));
    assert_eq!(at(text, error.span), "sned");
    assert_worded(&error);
    let error = err("flow f {\n  when x\n  if a {\n    sned hello\n  }\n}\n");
    assert_eq!(
        error.message,
        "expected a step such as `send`, `wait` or `if`, found `sned`"
    );
}

#[test]
fn error_wait_for_without_up_to() {
    let text = "flow f {\n  when x\n  wait for order_placed\n  send y\n}\n";
    let error = err(text);
    assert_eq!(
        error.message,
        "expected `up to` and a duration after the awaited event, found the end of the line"
    );
    // At the end of the `wait for` line, not on the next line.
    assert_eq!(
        error.span.start,
        text.find("order_placed\n").unwrap() + "order_placed".len()
    );
    assert!(error
        .help
        .as_deref()
        .unwrap()
        .contains("wait for order_placed up to 2d"));
    let error = err("flow f {\n  when x\n  wait for a where event.x > 1 or b { stop }\n}\n");
    assert!(
        error.message.starts_with("expected `up to` and a duration"),
        "{}",
        error.message
    );
    assert_worded(&error);
}

#[test]
fn error_ambiguous_m() {
    for body in [
        "  wait 2m",
        "  wait 2 m",
        "  if since(x) > 2m { stop }",
        "  wait for a up to 2m",
    ] {
        let text = format!("flow f {{\n  when x\n{body}\n}}\n");
        let error = err(&text);
        let help = error.help.clone().unwrap();
        assert!(
            help.contains("`2min`") && help.contains("`2mo`"),
            "{body}: {help}"
        );
        assert!(
            at(&text, error.span).starts_with('2'),
            "{body}: {:?}",
            at(&text, error.span)
        );
        assert_worded(&error);
    }
}

#[test]
fn error_unknown_duration_unit() {
    for (body, unit) in [
        ("  wait 2 dayz", "dayz"),
        ("  wait 3hrs", "hrs"),
        ("  wait for a up to 2 weeeks { stop }", "weeeks"),
        ("  reentry after 7 dys", "dys"),
    ] {
        let text = format!("flow f {{\n  when x\n{body}\n}}\n");
        let error = err(&text);
        assert_eq!(
            error.message,
            format!("expected a unit of time such as `d` or `days`, found `{unit}`"),
            "{body}"
        );
        assert_eq!(at(&text, error.span), unit, "{body}");
        assert!(error.help.clone().unwrap().contains("`2 days`"), "{body}");
        assert_worded(&error);
    }
    // A known unit is not blamed.
    let error = err("flow f {\n  when x\n  wait 2 days stop\n}\n");
    assert!(!error.message.contains("unit"), "{}", error.message);
}

#[test]
fn error_misspelt_transactional() {
    let error = err("message m: email transactionl {\n  body: \"x\"\n}\n");
    assert_eq!(
        error.message,
        "expected `{` or `transactional`, found `transactionl`"
    );
    assert!(error.help.clone().unwrap().contains("`transactional`"));
    assert!(!error.help.clone().unwrap().contains("steps"));
    assert_worded(&error);
}

#[test]
fn error_trigger_keyword_without_the_rest() {
    // `when entering` alone is a forgotten segment, not an event named `entering`.
    for (line, expected) in [
        ("when entering", "a segment name"),
        ("when every", "a duration"),
        ("when anniversary", "`of`"),
    ] {
        for comment in ["", "  # a comment"] {
            let text = format!("flow f {{\n  {line}{comment}\n  stop\n}}\n");
            let error = err(&text);
            assert!(
                error.message.contains(expected) && error.message.contains("end of the line"),
                "{line}{comment}: {}",
                error.message
            );
            // At the end of the code, before the comment.
            assert_eq!(error.span.start, text.find(line).unwrap() + line.len());
            assert_worded(&error);
        }
    }
}

#[test]
fn error_where_after_a_segment_trigger() {
    for line in [
        "when entering vip where contact.x == 1",
        "when every day for vip where contact.x == 1",
    ] {
        let text = format!("flow f {{\n  {line}\n  stop\n}}\n");
        let error = err(&text);
        assert_eq!(at(&text, error.span), "where", "{line}");
        assert!(
            error.help.clone().unwrap().contains("`only if CONDITION`"),
            "{line}"
        );
        assert_worded(&error);
    }
}

#[test]
fn error_c_style_logic_operators() {
    for (op, word) in [("&&", "and"), ("||", "or")] {
        let text = format!("flow f {{\n  when x where trigger.a == 1 {op} trigger.b == 2\n}}\n");
        let error = err(&text);
        let help = error.help.clone().unwrap();
        assert!(help.contains(&format!("write `{word}`")), "{op}: {help}");
        assert_worded(&error);
    }
}

#[test]
fn error_single_quoted_string() {
    let text = "message m: email {\n  subject: 'Hello'\n}\n";
    let error = err(text);
    assert!(
        error.message.ends_with("found `'Hello'`"),
        "{}",
        error.message
    );
    assert_eq!(at(text, error.span), "'Hello'");
    assert!(error.help.unwrap().contains("double quotes: `\"Hello\"`"));
}

#[test]
fn error_single_equals_in_a_condition() {
    let text = "flow f {\n  when x\n  if contact.plan = \"pro\" { stop }\n}\n";
    let error = err(text);
    assert_eq!(at(text, error.span), "=");
    assert!(error.help.unwrap().contains("`==`"));
    let error = err("segment s = contact.plan = \"pro\"\n");
    assert!(error.help.unwrap().contains("`==`"));
}

#[test]
fn error_upper_case_names() {
    let text = "flow f {\n  when Order Completed\n  stop\n}\n";
    let error = err(text);
    assert_eq!(at(text, error.span), "Order");
    assert!(error.message.contains("an event name"), "{}", error.message);
    assert!(error.help.unwrap().contains("`order_completed`"));
    let error = err("flow f {\n  when orderCompleted\n  stop\n}\n");
    assert!(error.help.unwrap().contains("`order_completed`"));
    // A name followed by `)` or `,` still gets its lower-case spelling.
    let error = err("segment s = count(Order_Completed) > 1\n");
    assert!(
        error.help.clone().unwrap().contains("`order_completed`"),
        "{:?}",
        error.help
    );
    let error = err("segment s = count(Order Completed) > 1\n");
    assert!(error.help.unwrap().contains("`order_completed`"));
    let error = err("flow Welcome {\n  when x\n}\n");
    assert!(error.message.contains("a flow name"), "{}", error.message);
    assert!(error.help.unwrap().contains("`welcome`"));
}

#[test]
fn error_else_not_after_a_closing_brace() {
    let text = "flow f {\n  when x\n  send y\n  else { stop }\n}\n";
    let error = err(text);
    assert_eq!(
        error.message,
        "`else` must follow the `}` of an `if` or a `wait for`"
    );
    assert_eq!(at(text, error.span), "else");
    assert_worded(&error);
}

#[test]
fn error_missing_closing_brace() {
    let text = "flow a {\n  when x\n  if y {\n    send z\n\nflow b {\n  when x\n}\n";
    let error = err(text);
    assert_eq!(
        error.message,
        "expected `}` to close the block opened on line 3, found `flow`"
    );
    assert_eq!(error.related.len(), 1);
    assert_eq!(
        error.related[0].0,
        Span::new(text.find("y {").unwrap() + 2, text.find("y {").unwrap() + 3)
    );
    let text = "flow a {\n  when x\n  send y\n";
    let error = err(text);
    assert_eq!(
        error.message,
        "expected `}` to close the block opened on line 1, found the end of the file"
    );
    assert_eq!(error.related[0].0, Span::new(7, 8));
    assert_worded(&error);
}

#[test]
fn error_unclosed_and_bad_strings() {
    let error = err("message m: email {\n  subject: \"Hello\n}\n");
    assert_eq!(error.message, "this text is not closed");
    let error = err("message m: email {\n  subject: \"a\\qb\"\n}\n");
    assert_eq!(error.message, "unknown escape `\\q` in text");
}

#[test]
fn error_messages_for_other_common_slips() {
    let cases: &[(&str, &str)] = &[
        ("message m: email {\n  subject \"hi\"\n}\n", "expected `:`, found `\"hi\"`"),
        ("message m: mail {\n}\n", "expected a channel (`email`, `sms`, `push` or `webhook`), found `mail`"),
        ("message m: email {\n  subject: hi\n}\n", "found `hi`"),
        ("flow f {\n  when x\n  wait 3d stop\n}\n", "expected the end of the line, found `stop`"),
        ("flow f {\n  when x\n  unsubscribe mail\n}\n", "found `mail`"),
        ("flow f {\n  when x\n  set x = 1\n}\n", "expected a field such as `contact.plan`, found `x`"),
        ("flow f {\n  when x where\n}\n", "expected a value or condition"),
        ("segment s = count(x wher y)\n", "expected `)`, `within` or `where`, found `wher`"),
        ("segment s = (a or b\nsegment t = c\n", "expected `)`, found `segment`"),
        ("event e {\n  total: integer\n}\n", "expected a property type such as `string`, found `integer`"),
        ("use consent\n", "found `consent`"),
        ("}\n", "this `}` closes no block"),
        ("flow f\n", "expected `{` or `=`, found the end of the line"),
        ("flow f {\n  when x\n  split { 50% { stop } 50% }\n}\n", "expected `{`, found `}`"),
        ("flow f {\n  when x\n  wait for a or b up to 1d {\n    on a { stop }\n    send c\n  }\n}\n", "found `send`"),
        ("flow f {\n  when every soon for s\n}\n", "expected a duration such as `2d`, found `soon`"),
        ("policy {\n  quiet hours 21:00 08:00\n}\n", "expected `..` between two times, found `08:00`"),
    ];
    for (text, expected) in cases {
        let error = err(text);
        assert!(
            error.message.contains(expected),
            "{text:?}: got {:?}, want {expected:?}",
            error.message
        );
        assert_worded(&error);
        assert!(error.span.end <= text.len());
    }
}

#[test]
fn error_quoted_names_and_decimal_durations() {
    let error = err("flow f {\n  when x\n  send \"welcome\"\n}\n");
    assert!(
        error.message.contains("a message name"),
        "{}",
        error.message
    );
    assert_eq!(
        error.help.unwrap(),
        "names are written without quotes: `welcome`"
    );
    let error = err("flow f {\n  when x\n  wait 1.5h\n}\n");
    assert_eq!(error.label, "expected a duration here");
    assert!(error.help.unwrap().contains("whole numbers"));
    let error = err("flow f {\n  when x\n  exit when y\n}\n");
    assert_eq!(error.message, "expected `if` or `on`, found `when`");
    assert!(error.help.unwrap().contains("`exit on EVENT`"));
}

#[test]
fn error_labels_cover_the_token_not_a_point() {
    let text = "flow f {\n  when x\n  wait soonish\n}\n";
    let error = err(text);
    assert_eq!(at(text, error.span), "soonish");
    assert!(!error.label.is_empty());
    // At the end of a line there is no token: a point.
    let error = err("flow f {\n  when x\n  wait\n}\n");
    assert!(error.span.is_empty());
    assert_eq!(error.label, "the line ends here");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!("segment s = {}a{}\n", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(err(&text).kind, SyntaxErrorKind::TooDeep);
    let text = format!("segment s = {}a\n", "not ".repeat(5000));
    assert_eq!(err(&text).kind, SyntaxErrorKind::TooDeep);
    let text = format!("segment s = {}a\n", "- ".repeat(5000));
    assert_eq!(err(&text).kind, SyntaxErrorKind::TooDeep);
    let text = format!("segment s = a{}\n", " + a".repeat(5000));
    assert_eq!(err(&text).kind, SyntaxErrorKind::TooDeep);
    let mut text = "flow f {\n when x\n".to_string();
    for _ in 0..200 {
        text.push_str("if a {\n");
    }
    assert_eq!(err(&text).kind, SyntaxErrorKind::TooDeep);
    // Modest nesting is fine.
    let text = format!("segment s = {}a{}\n", "(".repeat(30), ")".repeat(30));
    ok(&text);
}

// ───────────────────────────── properties ─────────────────────────────

/// A valid file with every construct, the seed of the mutation test.
const EVERYTHING: &str = r#"# Every construct of the language.
use stdlib/consent

segment vip = contact.plan == "pro" and count(order_placed within 90d) >= 3
segment quiet(period: duration) =
    count(email_opened within period) == 0
    and not exists(contact.phone) or since(order_placed) > 2 weeks

message welcome: email {
  subject: "Welcome, {{ contact.first_name }}!"  # shown in the inbox
  body: file("templates/welcome.html")
  track: false
}
message receipt: sms transactional { body: "Thanks \"friend\"\n" }

event order_placed {
  total: number
  coupon: string?
}

policy {
  quiet hours 21:00..08:00
  limit email 3 per 1w
}

flow welcome_series {
  when signed_up where trigger.source != "import"
  when entering quiet(30d)
  when every day at 09:00 for vip
  when anniversary of contact.birthday at 09:00
  only if can_receive(email)
  reentry after 30d
  exit on unsubscribed
  exit if contact.deleted == true
  quiet hours 22:00..07:30
  goal order_placed where event.total > 10 within 7d
  holdout 10%

  send welcome
  wait 2 days
  wait until 09:00
  wait for order_placed where event.total > 50 or cart_abandoned up to 2d {
    on order_placed { send receipt }
    on cart_abandoned {
      stop
    }
  } else {
    send welcome
  }
  if not contact.vip == true { send welcome } else if contact.x in ["a", "b"] {
    set contact.score = contact.score + 2 * -last(order_placed.total)
  }
  else { unsubscribe all }
  split {
    50% { send welcome }
    50% { stop }
  }
}

flow template nurture(msg: message, delay: duration) {
  when entering vip
  wait delay
  send msg
}

flow nurture_pro = nurture(msg: welcome, delay: 3d)
"#;

#[test]
fn the_seed_file_parses() {
    let file = ok(EVERYTHING);
    assert_eq!(file.items.len(), 9);
    assert_eq!(file.comments.len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn parse_never_panics_on_flow_like_text(
        words in proptest::collection::vec(
            prop_oneof![
                Just("flow"), Just("when"), Just("wait"), Just("for"), Just("up"), Just("to"), Just("{"), Just("}"),
                Just("("), Just(")"), Just("["), Just("]"), Just("\n"), Just("or"), Just("and"), Just("not"),
                Just("where"), Just("2d"), Just("09:00"), Just("50%"), Just("\""), Just("#"), Just("x"), Just("=="),
                Just("="), Just("-"), Just("else"), Just("if"), Just("send"), Just("split"), Just(","), Just(":"),
                Just("segment"), Just("message"), Just("email"), Just("count"), Just("contact.a"), Just(";"),
            ],
            0..60,
        )
    ) {
        let text = words.join(" ");
        if let Err(error) = parse(&text) {
            prop_assert!(error.span.start <= error.span.end && error.span.end <= text.len());
            prop_assert!(!error.message.is_empty());
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_valid_files(
        cut in 0usize..EVERYTHING.len(),
        position in 0usize..EVERYTHING.len(),
        insert in "\\PC{0,3}",
        delete in 0usize..4,
    ) {
        // Truncated.
        let truncated = &EVERYTHING[..floor(EVERYTHING, cut)];
        let _ = parse(truncated);
        // A few characters replaced.
        let start = floor(EVERYTHING, position);
        let end = floor(EVERYTHING, (start + delete).min(EVERYTHING.len()));
        let mutated = format!("{}{}{}", &EVERYTHING[..start], insert, &EVERYTHING[end..]);
        if let Err(error) = parse(&mutated) {
            prop_assert!(error.span.end <= mutated.len());
            prop_assert!(mutated.is_char_boundary(error.span.start) && mutated.is_char_boundary(error.span.end));
        }
    }
}

fn floor(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[test]
fn spans_end_at_the_last_token_not_at_trailing_spaces_or_comments() {
    let text = "flow f {\n  when x   # why\n  wait for a where y > 1   # c\n  or b up to 1d  \n  send m # hi\n}\nsegment s = a and b   # end\n";
    let file = ok(text);
    let Item::Flow(f) = &file.items[0] else {
        panic!()
    };
    assert_eq!(at(text, f.body.header[0].span), "when x");
    let StepKind::WaitFor(wait) = &f.body.steps[0].kind else {
        panic!()
    };
    assert_eq!(at(text, wait.events[0].span), "a where y > 1");
    assert_eq!(at(text, wait.events[1].span), "b");
    assert_eq!(
        at(text, f.body.steps[0].span),
        "wait for a where y > 1   # c\n  or b up to 1d"
    );
    assert_eq!(at(text, f.body.steps[1].span), "send m");
    let Item::Segment(s) = &file.items[1] else {
        panic!()
    };
    assert_eq!(at(text, s.span), "segment s = a and b");
    assert_eq!(at(text, s.body.span), "a and b");
    assert_eq!(file.comments.len(), 4);
}

/// `cargo test --release --test tests parse_ten_thousand_lines -- --ignored --nocapture`
/// prints how long 10,000 lines take (the target is well under 100 ms in release mode).
#[test]
#[ignore = "a measurement, not a check; run it in release mode"]
fn parse_ten_thousand_lines() {
    let mut text = String::new();
    let mut copy = 0;
    while text.lines().count() < 10_000 {
        let renamed = EVERYTHING
            .replace("\nflow ", &format!("\nflow f{copy}_"))
            .replace("\nsegment ", &format!("\nsegment s{copy}_"))
            .replace("\nmessage ", &format!("\nmessage m{copy}_"));
        text.push_str(&renamed);
        copy += 1;
    }
    let start = std::time::Instant::now();
    let file = ok(&text);
    println!(
        "{} lines, {} declarations: {:?}",
        text.lines().count(),
        file.items.len(),
        start.elapsed()
    );
}

#[test]
fn a_trailing_and_before_a_new_declaration_points_at_the_and() {
    let text = "segment a = contact.x == 1 and\n\nflow f {\n    when signed_up\n    only if a\n    stop\n}\n";
    let e = err(text);
    let end = text.find(" and\n").expect("and") + 4;
    assert_eq!(e.span, Span::new(end, end));
    assert_eq!(e.message, "the condition ends with `and`");
    assert_eq!(e.label, "this `and` has nothing after it");
    assert_eq!(
        e.help.as_deref(),
        Some("finish the condition or remove `and`")
    );
}

#[test]
fn a_trailing_or_before_a_step_is_an_error_not_a_segment_named_stop() {
    let text =
        "flow f {\n    when signed_up\n    only if contact.x == 1 or  # which?\n    stop\n}\n";
    let e = err(text);
    let end = text.find(" or ").expect("or") + 3;
    assert_eq!(e.span, Span::new(end, end));
    assert_eq!(e.label, "this `or` has nothing after it");
    assert_eq!(
        e.help.as_deref(),
        Some("finish the condition or remove `or`")
    );
}

#[test]
fn a_condition_continued_after_and_still_parses() {
    ok("segment a = contact.x == 1 and\n    contact.y == 2\n");
    ok("segment a = contact.x == 1 and  # more\n\n    not contact.stopped\n");
    ok("message m: email {\n    subject: \"this and\"\n    body: \"or\"\n}\n");
}
