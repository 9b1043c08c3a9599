//! The texts of `flowc explain CODE`: what a code means, an example that triggers it, and how
//! to fix it. They live here, in code, next to the rules (see the doc comment of each rule in
//! `rules/` for the same in more words).
//!
//! Must not: be out of date with `diagnostic::Code` (a test explains every code).

use crate::diagnostic::Code;

/// `(why it matters, an example that triggers it, how to fix it)`.
fn parts(code: Code) -> (&'static str, &'static str, &'static str) {
    use Code::*;
    match code {
        Syntax => (
            "The text does not follow the grammar of the flow language. flowc says what it expected at that place.",
            "flow welcome {\n    when signed_up\n    wait soon          # a duration is expected\n}",
            "Write what the message says is expected (here a duration such as `2d`).",
        ),
        UnknownMessage => (
            "A `send` (or a template argument of type `message`) names a message that no file of the project declares.",
            "flow welcome {\n    when signed_up\n    send welcom_email\n}\nmessage welcome_email: email { subject: \"Hi\" body: \"Hello\" }",
            "Fix the name (flowc suggests the closest one), or declare the message.",
        ),
        UnknownSegment => (
            "A bare name in an expression, `when entering NAME` or `when every ... for NAME` is not a declared segment (nor a parameter).",
            "segment vip = count(order_completed) > 5\nflow f {\n    when entering vipp\n    send hello\n}",
            "Fix the name, declare the segment, or add the `use stdlib/...` that declares it.",
        ),
        UnknownTemplate => (
            "`flow NAME = TEMPLATE(...)` names a flow template that is not declared.",
            "use stdlib/cart\nflow cart = abandoned_kart(abandoned: cart_abandoned, reminder: r, daily: d, reminders: 2)",
            "Fix the template's name, or add the `use stdlib/...` that declares it.",
        ),
        UnknownPathRoot => (
            "A path starts with something other than `contact`, `trigger` or `event` (or `set` / `when anniversary of` names a path that is not a contact field).",
            "segment madrid = contcat.city == \"Madrid\"",
            "Start the path with `contact.`, `trigger.` or `event.`.",
        ),
        UnknownEventProperty => (
            "The event has a schema (`event NAME { ... }`) and a `trigger.`/`event.` path, `sum` or `last` names a property it does not declare.",
            "event cart_abandoned { cart_url: string  total: number }\nflow cart {\n    when cart_abandoned where trigger.totl > 50\n    send reminder\n}",
            "Fix the property's name, or add it to the schema.",
        ),
        DuplicateName => (
            "Segments, messages, flows, templates and events of every file (and of the stdlib modules used) share one namespace; a name is declared once. Parameters, fields and properties are also given once.",
            "segment vip = count(order_completed) > 5\nmessage vip: email { subject: \"Hi\" body: \"...\" }",
            "Rename one of the declarations.",
        ),
        UnknownMessageField => (
            "A message has a field its channel does not know. email: subject, body, text, from, reply_to, tracking; sms: body; push: title, body, url; webhook: url, method, body.",
            "message m: email {\n    subjet: \"Hi\"\n    body: \"...\"\n}",
            "Fix the field's name, or remove it.",
        ),
        MissingMessageField => (
            "A message lacks a field its channel requires. email: subject and body; sms: body; push: title and body; webhook: url.",
            "message m: email {\n    body: \"Hello\"\n}",
            "Add the missing field.",
        ),
        FileNotFound => (
            "`file(\"...\")` names a file that does not exist. Paths are relative to the project root (the folder with flowc.toml).",
            "message m: email {\n    subject: \"Hi\"\n    body: file(\"templates/welcom.html\")\n}",
            "Fix the path, or create the file.",
        ),
        TemplateSyntax => (
            "A `{{ ... }}` or `{% ... %}` template in a message (or its file) does not parse; it would fail for every contact at send time.",
            "message m: email {\n    subject: \"Hi {{ contact.first_name }\"\n    body: \"...\"\n}",
            "Close the expression (`}}`) or the block (`{% endif %}`) as the message says.",
        ),
        TypeMismatch => (
            "An operator or function gets a value of the wrong type: a count compared with a duration, a duration with a number, `and` between numbers. The engine would compute `null`, and a comparison with `null` is false.",
            "segment loyal = count(order_completed within 90d) > 3d",
            "Compare counts with numbers (`> 3`) and durations with durations (`since(order_completed) > 90d`).",
        ),
        SplitShares => (
            "The shares of a `split` must add up to exactly 100%: every contact falls in one arm.",
            "split {\n    50% { send a }\n    40% { send b }\n}",
            "Change the shares, or add an arm (possibly empty, a control group) with the rest.",
        ),
        WrongArguments => (
            "A segment or template is called with too many or too few arguments, an unknown parameter name, one given twice, or a value of the wrong kind.",
            "segment inactive(period: duration) = count(email_opened within period) == 0\nflow f {\n    when entering inactive(90)\n    send m\n}",
            "Give each parameter once, with a value of its type (`inactive(90d)`).",
        ),
        SegmentCycle => (
            "Segments refer to each other in a circle, so none has a meaning. The message shows the path of the cycle.",
            "segment a = b and count(order_completed) > 0\nsegment b = a",
            "Define one of the segments without the others.",
        ),
        Unreachable => (
            "Steps after `stop` (or after a step whose every branch stops) can never run.",
            "flow f {\n    when signed_up\n    stop\n    send welcome\n}",
            "Remove the steps, or move the `stop` into the branch where the flow should end.",
        ),
        ZeroWait => (
            "A `wait 0s` (or `up to 0s`, `when every 0d`) does nothing and usually hides a typo.",
            "flow f {\n    when signed_up\n    wait 0d\n    send welcome\n}",
            "Give a positive duration, or remove the step.",
        ),
        EmptyQuietHours => (
            "Quiet hours whose start equals their end are either empty or the whole day.",
            "policy {\n    quiet hours 21:00..21:00\n}",
            "Give the window a length (`quiet hours 21:00..08:00`), or remove the line.",
        ),
        FlowWithoutTrigger => (
            "A flow (or template) without a `when` line never starts.",
            "flow f {\n    only if can_receive(email)\n    send welcome\n}",
            "Add `when EVENT`, `when entering SEGMENT`, `when every DURATION for SEGMENT` or `when anniversary of contact.FIELD`.",
        ),
        EventPathOutsideWait => (
            "An `event.` path reads the last event a `wait for` received (or, in a `where` filter, the event being matched). Elsewhere no event has been received and the path is always null.",
            "flow f {\n    when cart_abandoned\n    if event.total > 50 { send big }\n}",
            "Use `trigger.` for the event that started the flow, or move the step into the block of a `wait for`.",
        ),
        UnknownStdlibModule => (
            "`use stdlib/NAME` names a module the stdlib does not ship.",
            "use stdlib/carts",
            "Fix the module name (the stdlib has birthday, browse, cart, consent, espresso, post_purchase, reactivation, rewards, welcome).",
        ),
        DuplicatePolicy => (
            "A project has at most one `policy` block (its lines apply to every flow).",
            "policy { quiet hours 21:00..08:00 }\npolicy { limit email 2 per 1d }",
            "Move the lines into one `policy` block.",
        ),
        UnknownEvent => (
            "An event name where one is expected is malformed.",
            "segment s = count(order_completed) > 0",
            "Write the event's name in lower case with `_`, as it is normalised (`Order Completed` is `order_completed`).",
        ),
        BadValue => (
            "A value is out of range: a time such as `25:00`, a share over 100%, a number too large, an unknown webhook method.",
            "quiet hours 21:00..25:00",
            "Write a value in range (times `00:00` to `23:59`).",
        ),
        UnknownTemplateVariable => (
            "A template reads a variable other than `contact`, `trigger`, `event`, `flow`, `message` (and `unsubscribe_url`); rendering would fail.",
            "message m: email {\n    subject: \"Hi {{ first_name }}\"\n    body: \"...\"\n}",
            "Read contact traits as `{{ contact.first_name }}` and event properties as `{{ trigger.NAME }}`.",
        ),
        DuplicateHeader => (
            "`only if`, `reentry`, `quiet hours`, `goal`, `holdout` and `on change` may appear once in a flow.",
            "flow f {\n    when signed_up\n    only if can_receive(email)\n    only if contact.country == \"ES\"\n    send welcome\n}",
            "Keep one line; join `only if` conditions with `and`.",
        ),
        HeaderAfterStep => (
            "Header lines (`when`, `only if`, `exit`, `reentry`, `quiet hours`, `goal`, `holdout`) apply to the whole flow, so they stand before the first step.",
            "flow f {\n    when signed_up\n    send welcome\n    exit on unsubscribed\n}",
            "Move the line above the first step.",
        ),
        MissingArmForEvent => (
            "In `wait for A or B ... { on A { } on B { } }` every awaited event needs one `on` arm, and each arm names an awaited event once.",
            "wait for order_completed or cart_emptied up to 2d {\n    on order_completed { stop }\n}",
            "Add the missing arm (it may be empty), or fix the arm's event.",
        ),
        EmptyFlow => (
            "A flow has no steps: contacts would enter and leave without anything happening.",
            "flow f {\n    when signed_up\n}",
            "Add a step such as `send MESSAGE`.",
        ),
        UnknownTemplateFilter => (
            "A template names a filter (`{{ contact.name | titel }}`, `{% filter ... %}`) or a test (`{% if x is definied %}`) that the template engine does not have. The template parses, but rendering fails for every contact who reaches the expression.",
            "message m: email {\n    subject: \"Hi {{ contact.first_name | titel }}\"\n    body: \"...\"\n}",
            "Use a filter or test the engine has (the help suggests the closest, here `title`); the Messages section of docs/language.md lists them.",
        ),
        InvalidConfig => (
            "The project's `flowc.toml` is not valid TOML, has a key flowc does not know, a value of the wrong type, or a `[defaults] timezone` that is not an IANA name. `flowc run` and `flowc simulate` would refuse to start.",
            "[defaults]\ntimezone = \"Europe/Madird\"",
            "Fix the line the error points at (the help suggests the closest timezone or lists the known keys).",
        ),
        DuplicateLabel => (
            "A `step NAME:` label names one step of a flow: `on change migrate` moves the instances waiting at the labelled step of the old version to the step with the same label in the new one. Two steps with one label would make that ambiguous.",
            "flow f {\n    when signed_up\n    step reminder: wait 1d\n    send first\n    step reminder: wait 2d\n    send second\n}",
            "Rename one of the labels (labels are per flow; two flows may use the same one).",
        ),
        StrandedInstances => (
            "With `on change migrate`, every instance of the old version moves to the new one: to the step with the same `step NAME:` label, or else to the step that `flowc diff` matches by its place. An instance waiting at a step the new version removed, that no label maps, would have nowhere to go. The new version is refused (by `flowc check --against OLD`, `flowc diff`, the daemon's hot reload and `flowc rollback`), and the running version goes on.",
            "# old: step first: wait 1d / send a / wait 2d / send b\nflow f {\n    when signed_up\n    on change migrate\n    step first: wait 1d\n    send a\n}",
            "Label the step in both versions so that a label maps it (`step NAME: wait 2d` in the old, the same label on the step that takes over in the new), or use `on change pin` (they finish on the old version) or `on change restart` (they end).",
        ),
        UnusedSendCheck => (
            "A flow sends a marketing message on a channel whose consent it never checks (`can_receive(CHANNEL)` in a header line, condition or segment) and it has no `exit on unsubscribed`. The engine skips such sends (`no_consent`), but the flow's timing and goal then count contacts it never could reach.",
            "flow promo {\n    when order_completed\n    send promo_sms\n}",
            "Add `only if can_receive(sms)` (or `exit if not can_receive(sms)`, or `exit on unsubscribed`); mark the message `transactional` if it answers the contact's own request.",
        ),
        UnusedSegment => (
            "A segment of the project is used by no flow, segment or template argument (stdlib segments are not reported).",
            "segment vip = count(order_completed) > 5   # nothing uses `vip`",
            "Use it, or remove it.",
        ),
        UnusedMessage => (
            "A message of the project is sent by no flow and given to no template.",
            "message old_promo: email { subject: \"...\" body: \"...\" }",
            "Send it, or remove it; a typo in a `send` is a common cause.",
        ),
        ExitOnTrigger => (
            "An `exit on` event also triggers the same flow. Exits are decided before triggers, so each such event ends the running instance and starts a new one: the flow starts over on every event, and its later steps run only for the last one. That is rarely what was meant.",
            "flow f {\n    when order_completed\n    exit on order_completed\n    send thanks\n}",
            "Remove one of the two lines, or tell the events apart with `where`.",
        ),
        LongWait => (
            "A wait longer than one year keeps instances alive for that long; such timing is better a separate flow.",
            "flow f {\n    when signed_up\n    wait 400d\n    send hello\n}",
            "Shorten the wait, or start a separate flow (`when anniversary of ...`, `when every ... for SEGMENT`).",
        ),
        EventNearSchema => (
            "Event names need no declaration, but when the project declares a schema for `cart_abandoned` and a flow waits for `cart_abandonned` (or a flow says `exit on unsubscribe` where the daemon records `unsubscribed`), the flow almost surely means the known event: as written it never matches a record.",
            "event cart_abandoned { cart_url: string }\nflow cart {\n    when cart_abandonned\n    send reminder\n}",
            "Fix the name (flowc suggests the declared one), or declare a schema for the new event.",
        ),
        SegmentAsEvent => (
            "In `wait for a where X or b up to D`, a name after `or` followed by `up to`, `where` or another `or` starts a second awaited event (LANGUAGE.md). When `b` is also a declared segment, the flow almost surely meant the condition `X or b`: as written it waits for an event named `b` that nothing sends, and the segment is never tested.",
            "segment vip = count(order_completed) > 5\nflow f {\n    when cart_abandoned\n    wait for order_completed where event.total > 50 or vip up to 2d\n}",
            "Put the condition in parentheses: `where (event.total > 50 or vip)`; if an event of that name is really meant, rename the segment.",
        ),
    }
}

/// The full text of `flowc explain CODE`.
pub fn text(code: Code) -> String {
    let (why, example, fix) = parts(code);
    let kind = match code.default_severity() {
        crate::diagnostic::Severity::Error => "error",
        crate::diagnostic::Severity::Warning => "warning",
    };
    let example: String = example.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "{code} ({kind}): {}\n\n{}\n\nExample:\n\n{example}\n{}\n",
        code.summary(),
        wrap(why, 96),
        wrap(&format!("How to fix it: {fix}"), 96)
    )
}

/// Breaks a paragraph into lines of at most `width` characters (a longer word stays whole).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_the_width() {
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc");
        assert_eq!(wrap("a verylongword", 4), "a\nverylongword");
    }
}
