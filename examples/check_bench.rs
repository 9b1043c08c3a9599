//! `flowc check` benchmark: generates a project of about 10,000 lines of realistic flows in
//! memory (event schemas, segments with parameters, messages with templates, flows with
//! every kind of step, template instantiations on the stdlib) and measures, as medians:
//! parsing and checking the whole project, checking alone, and the re-check after one file
//! is edited (that file parsed again, then the project checked).
//!
//! `cargo run --release --example check_bench -- [LINES] [RUNS]`; with
//! `CHECK_BENCH_WRITE=DIR` the project is also written to DIR, for `time flowc check DIR`.

use flowc::project::Project;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One file of about 100 lines, numbered `n` (names are unique across files).
fn file(n: usize) -> String {
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

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let lines: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(21);
    let mut sources = Vec::new();
    let mut total_lines = 0;
    let mut n = 0;
    while total_lines < lines {
        let text = file(n);
        total_lines += text.lines().count();
        sources.push((PathBuf::from(format!("flows/batch_{n:03}.flow")), text));
        n += 1;
    }
    if let Some(dir) = std::env::var_os("CHECK_BENCH_WRITE") {
        // Also write the project out, to time the binary: `time flowc check DIR`.
        let dir = PathBuf::from(dir);
        for (path, text) in &sources {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().expect("a folder")).expect("create folder");
            std::fs::write(full, text).expect("write");
        }
    }
    let root = PathBuf::from("/nonexistent-bench-root");
    let project = Project::from_sources(root.clone(), sources.clone());
    let diagnostics = flowc::check::check(&project);
    let (errors, warnings) = flowc::check::counts(&diagnostics);
    assert_eq!(errors, 0, "{:#?}", diagnostics.first());
    println!(
        "{} files, {total_lines} lines, {} units with the stdlib; {errors} errors, {warnings} warnings",
        sources.len(),
        project.units.len()
    );

    let mut full = Vec::new();
    let mut check_only = Vec::new();
    let mut recheck = Vec::new();
    for run in 0..runs {
        let t = Instant::now();
        let project = Project::from_sources(root.clone(), sources.clone());
        let d = flowc::check::check(&project);
        full.push(t.elapsed());
        assert_eq!(flowc::check::counts(&d).0, 0);

        let t = Instant::now();
        let d = flowc::check::check(&project);
        check_only.push(t.elapsed());
        assert_eq!(flowc::check::counts(&d).0, 0);

        // Edit one file (a different one each run): parse it again, check the project.
        let mut edited = project.clone();
        let index = run % sources.len();
        let t = Instant::now();
        let unit = &mut edited.units[index];
        unit.text = unit.text.replace("wait 2w", "wait 3w");
        unit.ast = flowc::syntax::parse(&unit.text).ok();
        let d = flowc::check::check(&edited);
        recheck.push(t.elapsed());
        assert_eq!(flowc::check::counts(&d).0, 0);
    }
    println!("median of {runs} runs:");
    println!(
        "  parse + check, whole project: {:.1} ms",
        median(full).as_secs_f64() * 1e3
    );
    println!(
        "  check only (already parsed):  {:.1} ms",
        median(check_only).as_secs_f64() * 1e3
    );
    println!(
        "  re-check after editing one file (parse it + check): {:.1} ms",
        median(recheck).as_secs_f64() * 1e3
    );
}
