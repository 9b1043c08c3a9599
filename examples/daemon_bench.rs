//! The daemon's figures alone: a thin caller of `flowc::bench::daemon` (the measuring code
//! lives there; `flowc-bench --only daemon` runs the same sections).
//!
//! ```text
//! cargo build --release --bin flowc && cargo run --release --example daemon_bench -- [WAITING] [RUNS]
//! ```

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut options = flowc::bench::Options::full(root.join("tests/engine/bench"));
    options.sizes = vec![args.first().copied().unwrap_or(100_000)];
    options.runs = args.get(1).copied().unwrap_or(3);
    options.only = Some("daemon".into());
    options.verbose = true;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let binary = root.join("target").join(profile).join("flowc");
    let mut figures = Vec::new();
    match flowc::bench::daemon::run(&options, &binary, &mut |f| figures.extend(f)) {
        Ok(()) => println!("{}", flowc::bench::Report { figures }.table()),
        Err(e) => {
            eprintln!("error: {e} (build the binary first: cargo build --release --bin flowc)");
            std::process::exit(2);
        }
    }
}
