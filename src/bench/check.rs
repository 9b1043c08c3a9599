//! The `check` section of the suite: a generated project of realistic flows (event schemas,
//! segments with parameters, messages with `{{ ... }}` templates, flows with every kind of
//! step, instantiations of `stdlib/cart`), parsed and checked whole, checked alone, and
//! re-checked after one file is edited. `examples/check_bench.rs` uses the same generator.
//!
//! Must not: write files (the project is built in memory with `Project::from_sources`).

use super::{size_label_lines, Figure, Options};
use crate::project::Project;
use std::path::PathBuf;
use std::time::Instant as Clock;

/// Files of about 100 lines each until the project has at least `lines` lines, named
/// `flows/batch_NNN.flow` (names are unique across files).
pub fn sources(lines: usize) -> Vec<(PathBuf, String)> {
    let mut sources = Vec::new();
    let mut total = 0;
    let mut n = 0;
    while total < lines {
        let text = file(n);
        total += text.lines().count();
        sources.push((PathBuf::from(format!("flows/batch_{n:03}.flow")), text));
        n += 1;
    }
    sources
}

/// One file of about 100 lines, numbered `n` (names are unique across files).
pub fn file(n: usize) -> String {
    format!(
        r#"# Generated flows, batch {n}.
use stdlib/consent
use stdlib/cart

event cart_abandoned_{n} {{
    cart_url: string
    total: number
    items: list?
}}

event order_completed_{n} {{
    order_id: string
    total: number
}}

segment vip_{n} = sum(order_completed_{n}.total within 365d) >= 500
    or count(order_completed_{n}) > 10

segment lapsed_{n}(period: duration) =
    count(order_completed_{n}) > 0
    and since(order_completed_{n}) > period
    and can_receive(email)

segment local_{n}(country: string) = contact.country == country and contact.language in ["es", "ca"]

message cart_email_{n}: email {{
    subject: "You left {{{{ trigger.items | length }}}} items, {{{{ contact.first_name | default('friend') }}}}"
    body: "<p>Your cart of {{{{ trigger.total }}}} EUR: <a href=\"{{{{ trigger.cart_url }}}}\">back</a></p>"
}}

message cart_sms_{n}: sms {{
    body: "Your cart is waiting: {{{{ trigger.cart_url }}}}"
}}

message thanks_{n}: email transactional {{
    subject: "Order {{{{ trigger.order_id }}}} confirmed"
    body: "<p>Thank you!</p>"
}}

message come_back_{n}: email {{
    subject: "We miss you"
    body: "<p>10% off.</p>"
}}

message daily_{n}: email {{
    subject: "Still thinking?"
    body: "<p>{{{{ trigger.cart_url }}}}</p>"
}}

flow cart_{n} {{
    when cart_abandoned_{n} where trigger.total >= 20
    only if can_receive(email) or can_receive(sms)
    reentry after 1d
    exit on order_completed_{n}
    quiet hours 21:00..08:00

    wait 1h
    split {{
        70% {{ send cart_email_{n} }}
        30% {{ send cart_sms_{n} }}
    }}
    wait for order_completed_{n} where event.total > 0 up to 2d {{
        set contact.recovered = event.order_id
        stop
    }} else {{
        if vip_{n} and trigger.total * 2 > 100 {{
            send cart_sms_{n}
        }} else if local_{n}("ES") {{
            send cart_email_{n}
        }}
    }}
}}

flow orders_{n} {{
    when order_completed_{n}
    reentry always
    send thanks_{n}
}}

flow win_back_{n} {{
    when entering lapsed_{n}(90d)
    exit if not can_receive(email)
    send come_back_{n}
    wait 2w
    unsubscribe email
}}

flow cart_template_{n} = abandoned_cart(
    abandoned: cart_abandoned_{n},
    reminder: cart_email_{n},
    daily: daily_{n},
    reminders: 2,
)
"#
    )
}

/// Parse + check of the whole project, check alone, and re-check after editing one file
/// (that file parsed again, then the project checked), `options.runs` times each.
pub fn section(options: &Options, lines: usize) -> Result<Vec<Figure>, super::BenchError> {
    let sources = sources(lines);
    let total_lines: usize = sources.iter().map(|(_, t)| t.lines().count()).sum();
    let bytes: usize = sources.iter().map(|(_, t)| t.len()).sum();
    let root = PathBuf::from("/nonexistent-bench-root");
    let project = Project::from_sources(root.clone(), sources.clone());
    let (errors, _) = crate::check::counts(&crate::check::check(&project));
    if errors > 0 {
        return Err(super::BenchError(format!(
            "the generated check project has {errors} errors"
        )));
    }
    let size = size_label_lines(total_lines);
    let (mut whole, mut check_only, mut recheck) = (Vec::new(), Vec::new(), Vec::new());
    let mut edited_lines = 0;
    for run in 0..options.runs.max(1) {
        let began = Clock::now();
        let project = Project::from_sources(root.clone(), sources.clone());
        let diagnostics = crate::check::check(&project);
        whole.push(began.elapsed().as_secs_f64());
        let failed = crate::check::counts(&diagnostics).0;

        let began = Clock::now();
        let diagnostics = crate::check::check(&project);
        check_only.push(began.elapsed().as_secs_f64());
        let failed = failed + crate::check::counts(&diagnostics).0;

        // Edit one file (another one each run): parse it again, check the project.
        let mut edited = project.clone();
        let index = run % sources.len();
        let began = Clock::now();
        let unit = &mut edited.units[index];
        unit.text = unit.text.replace("wait 2w", "wait 3w");
        unit.ast = crate::syntax::parse(&unit.text).ok();
        edited_lines = unit.text.lines().count();
        let diagnostics = crate::check::check(&edited);
        recheck.push(began.elapsed().as_secs_f64());
        if failed + crate::check::counts(&diagnostics).0 > 0 {
            return Err(super::BenchError(
                "the generated check project has errors after an edit".to_string(),
            ));
        }
    }
    let rate = |seconds: &[f64], per: f64| -> Vec<f64> {
        seconds.iter().map(|s| per / s.max(1e-9)).collect()
    };
    let ms = |seconds: &[f64]| -> Vec<f64> { seconds.iter().map(|s| s * 1e3).collect() };
    Ok(vec![
        Figure::new(
            "check",
            "parse + check of the whole project",
            &size,
            "lines/s",
            rate(&whole, total_lines as f64),
        ),
        Figure::new(
            "check",
            "parse + check of the whole project",
            &size,
            "MB/s",
            rate(&whole, bytes as f64 / 1e6),
        ),
        Figure::new(
            "check",
            "parse + check of the whole project, time",
            &size,
            "ms",
            ms(&whole),
        ),
        Figure::new(
            "check",
            "check only (files already parsed), time",
            &size,
            "ms",
            ms(&check_only),
        ),
        Figure::new(
            "check",
            "re-check after editing one file (it parsed again, the project checked), time",
            &size,
            "ms",
            ms(&recheck),
        ),
        Figure::new(
            "check",
            "re-check after editing one file, project lines checked",
            &size,
            "lines/s",
            rate(&recheck, total_lines as f64),
        ),
        Figure::new(
            "check",
            "project lines",
            &size,
            "lines",
            vec![total_lines as f64],
        ),
        Figure::new(
            "check",
            "project files",
            &size,
            "files",
            vec![sources.len() as f64],
        ),
        Figure::new(
            "check",
            "project size",
            &size,
            "kB",
            vec![bytes as f64 / 1e3],
        ),
        Figure::new(
            "check",
            "edited file lines",
            &size,
            "lines",
            vec![edited_lines as f64],
        ),
    ])
}
