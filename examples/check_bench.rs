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

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let lines: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(21);
    // The generator of the suite's `check` section (`flowc-bench --only check`).
    let sources = flowc::bench::check::sources(lines);
    let total_lines: usize = sources.iter().map(|(_, t)| t.lines().count()).sum();
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
