//! `flowc-bench`: the benchmark suite in one command (docs/performance.md).
//!
//! `cargo run --release --bin flowc-bench -- [--quick] [--runs N] [--only SECTION]`
//! `cargo run --release --bin flowc-bench -- --write-jsonl FILE --contacts N [--seed S]`
//!
//! Owns: the command line of the suite, the counting allocator behind the RAM figures, and
//! finding (or building) the release `flowc` binary for the end-to-end figure.
//! Must not: measure anything itself (`flowc::bench` does) or be called by `flowc`.

use clap::Parser;
use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The allocator `flowc` runs on (mimalloc, see src/main.rs), counting live bytes (relaxed
/// atomics: about a nanosecond per call).
struct Counting;

static LIVE: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
        MiMalloc.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        MiMalloc.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as u64, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        MiMalloc.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> u64 {
    LIVE.load(Ordering::Relaxed)
}

#[derive(Parser, Debug)]
#[command(
    name = "flowc-bench",
    about = "The flowc benchmark suite (docs/performance.md)"
)]
struct Args {
    /// Smoke mode: every section on a few hundred contacts, one run (seconds; CI runs it).
    #[arg(long)]
    quick: bool,
    /// Runs per figure; the median is reported.
    #[arg(long)]
    runs: Option<usize>,
    /// Only the sections whose name contains this (engine, timers, flows, simulate, binary,
    /// check).
    #[arg(long)]
    only: Option<String>,
    /// Contact counts for the engine, state and timer sections (comma-separated).
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Contact counts for `flowc simulate` in process (comma-separated).
    #[arg(long, value_delimiter = ',')]
    simulate_sizes: Option<Vec<usize>>,
    /// Lines of the generated projects of the `check` section (comma-separated).
    #[arg(long, value_delimiter = ',')]
    check_lines: Option<Vec<usize>>,
    /// The seed of the workload generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The `flowc` binary to time (default: the release binary next to this one, built
    /// with `cargo build --release --bin flowc` when missing or older).
    #[arg(long)]
    flowc: Option<PathBuf>,
    /// Do not time the real binary.
    #[arg(long)]
    no_binary: bool,
    /// Write the workload as JSON Lines to this file and stop.
    #[arg(long, value_name = "FILE")]
    write_jsonl: Option<PathBuf>,
    /// Contacts of the workload written by `--write-jsonl`.
    #[arg(long, default_value_t = 10_000)]
    contacts: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let project = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engine/bench");
    if let Some(path) = &args.write_jsonl {
        let workload = flowc::bench::Workload::shop(args.contacts, args.seed);
        let written = std::fs::File::create(path).and_then(|file| {
            let mut writer = std::io::BufWriter::new(file);
            let lines = flowc::bench::workload::write_jsonl(&workload, &mut writer)?;
            std::io::Write::flush(&mut writer)?;
            Ok(lines)
        });
        return match written {
            Ok(lines) => {
                eprintln!(
                    "wrote {lines} lines for {} contacts to {}; run `flowc simulate {} --events {}`",
                    args.contacts,
                    path.display(),
                    project.display(),
                    path.display()
                );
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                std::process::ExitCode::from(2)
            }
        };
    }
    let mut options = if args.quick {
        flowc::bench::Options::quick(project)
    } else {
        flowc::bench::Options::full(project)
    };
    if let Some(runs) = args.runs {
        options.runs = runs;
    }
    if let Some(sizes) = args.sizes {
        options.sizes = sizes;
    }
    if let Some(sizes) = args.simulate_sizes {
        options.simulate_sizes = sizes;
    }
    if let Some(lines) = args.check_lines {
        options.check_lines = lines;
    }
    options.seed = args.seed;
    options.only = args.only;
    options.allocated = Some(live_bytes);
    options.verbose = true;
    if !args.no_binary {
        options.flowc_binary = args.flowc.or_else(sibling_flowc);
    }
    eprintln!(
        "flowc-bench: {} run(s) per figure, sizes {:?}, simulate sizes {:?}{}",
        options.runs,
        options.sizes,
        options.simulate_sizes,
        if cfg!(debug_assertions) {
            " (a debug build: use --release for figures)"
        } else {
            ""
        }
    );
    match flowc::bench::run(&options) {
        Ok(report) => {
            println!("{}", report.table());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The `flowc` next to this binary, built by cargo when it is missing or older than us.
fn sibling_flowc() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let flowc = me.with_file_name(format!("flowc{}", std::env::consts::EXE_SUFFIX));
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let stale = match (modified(&flowc), modified(&me)) {
        (Some(theirs), Some(ours)) => theirs < ours,
        _ => true,
    };
    if stale {
        if let Some(cargo) = std::env::var_os("CARGO") {
            let mut command = std::process::Command::new(cargo);
            command.args(["build", "--quiet", "--bin", "flowc"]);
            if !cfg!(debug_assertions) {
                command.arg("--release");
            }
            eprintln!("flowc-bench: building the flowc binary");
            let _ = command.status();
        }
    }
    flowc.exists().then_some(flowc)
}
