//! The command line: every flag of every subcommand is declared here, in one place.
//!
//! Owns: argument parsing (clap) and dispatch to each command's module.
//! Must not: implement a command; each command lives with the stage it exposes
//! (`check::command`, `fmt::command`, ...), and returns an exit code.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: no errors (warnings allowed).
pub const EXIT_OK: u8 = 0;
/// Exit code: the input has errors (diagnostics, failed tests).
pub const EXIT_ERRORS: u8 = 1;
/// Exit code: the command could not run (bad path, unreadable file, bad flags).
pub const EXIT_CANNOT_RUN: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "flowc",
    version,
    about = "Marketing automation flows as code: check, simulate, test and run them",
    long_about = "flowc compiles `.flow` files (flows, segments, messages) and runs them.\n\n\
        Check a project in CI, simulate who gets what and when on a virtual clock, run flow \
        tests, and run the durable daemon that takes events from the shop.",
    after_help = "Examples:\n  flowc check flows/\n  flowc simulate . --events events.jsonl\n  flowc test .\n  flowc fmt --check"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a project for errors and warnings
    #[command(
        after_help = "Examples:\n  flowc check\n  flowc check shop/ --format json\n  flowc check --format github\n\nExit codes: 0 no errors (warnings allowed), 1 errors, 2 the command could not run."
    )]
    Check(CheckArgs),
    /// Format `.flow` files in the canonical layout
    #[command(
        after_help = "Examples:\n  flowc fmt                 # every .flow file under the current folder\n  flowc fmt flows/cart.flow\n  flowc fmt --check         # exit 1 if a file would change (for CI)"
    )]
    Fmt(FmtArgs),
    /// Show who gets what and when, on a virtual clock, for a file of events
    #[command(
        after_help = "Examples:\n  flowc simulate . --events events.jsonl\n  flowc simulate . --events events.jsonl --until 2026-04-01T00:00:00Z --trace\n  flowc simulate . --events events.jsonl --explain c1   # every decision about c1, with file:line"
    )]
    Simulate(SimulateArgs),
    /// Run the project's flow tests (tests/**/*.flowtest)
    #[command(
        after_help = "Examples:\n  flowc test\n  flowc test shop/ --filter cart\n  flowc test --trace        # why a failing case did what it did\n  flowc test --update       # accept what was delivered as the new expectation\n\nExit codes: 0 all passed, 1 a case failed, 2 the command could not run."
    )]
    Test(TestArgs),
    /// Write the compiled state machines as JSON
    #[command(after_help = "Examples:\n  flowc build --out build.json")]
    Build(BuildArgs),
    /// Draw one flow as a Mermaid or Graphviz diagram
    #[command(
        after_help = "Examples:\n  flowc graph abandoned_cart\n  flowc graph welcome --format dot | dot -Tsvg > welcome.svg"
    )]
    Graph(GraphArgs),
    /// Run the durable daemon: HTTP ingestion, timers, outbox, hot reload
    #[command(
        after_help = "Examples:\n  flowc run\n  flowc run shop/ --listen 127.0.0.1:8080 --data /var/lib/flowc\n  flowc run --dry-run deliveries.jsonl   # record decisions instead of sending\n  FLOWC_WRITE_KEY=wk_live_1 flowc run --listen 0.0.0.0:8080 --log-format json\n\nSIGTERM or SIGINT drains and exits 0. Exit codes: 0 stopped cleanly, 1 the project has errors, 2 the daemon could not start."
    )]
    Run(RunArgs),
    /// Create a working starter project
    #[command(after_help = "Examples:\n  flowc init my-shop && flowc test my-shop")]
    Init(InitArgs),
    /// Explain a diagnostic code
    #[command(after_help = "Examples:\n  flowc explain E0013")]
    Explain(ExplainArgs),
    /// Render one message and really send it, marked as a test, through the configured channel
    #[command(
        after_help = "Examples:\n  flowc send-test cart_reminder --to me@shop.example\n  flowc send-test cart_reminder --to me@shop.example --contact ana.json --trigger cart.json shop/\n  flowc send-test order_sms --to +34600000000\n\nThe subject (email), title (push) or text (SMS) starts with \"[TEST] \".\nExit codes: 0 sent, 1 the send or the rendering failed, 2 the command could not run."
    )]
    SendTest(SendTestArgs),
    /// Compare two versions of a project: what changed, and what it means for waiting contacts
    #[command(
        after_help = "Examples:\n  flowc diff old/ new/\n  flowc diff --git main             # the working tree against `main`\n  flowc diff --git HEAD~1 flows/ --format json\n  flowc diff old/ new/ --events events.jsonl --until 2026-03-02T00:00:00Z   # who waits where\n  flowc diff live/ edited/ --server http://127.0.0.1:8080 --admin-key $FLOWC_ADMIN_KEY   # who waits in the daemon now\n\nExit codes (like `diff`): 0 no semantic change, 1 changes, 2 the comparison could not be made (a version with errors, a bad path or revision).\nSee docs/changes.md for the JSON schema."
    )]
    Diff(DiffArgs),
    /// Run two versions of a project over the same events and report the deliveries that differ
    #[command(
        after_help = "Examples:\n  flowc backtest old/ new/ --events history.jsonl\n  flowc backtest old/ new/ --events history.jsonl --until 2026-04-01T00:00:00Z --format json\n\nExit codes (like `diff`): 0 the same deliveries, 1 some differ, 2 the comparison could not be made (a version with errors, a bad record)."
    )]
    Backtest(BacktestArgs),
    /// Explore every ordering of events within bounds and check the project's guarantees
    #[command(
        after_help = "Examples:\n  flowc verify\n  flowc verify flows/ --depth 5\n  flowc verify --counterexample bad.jsonl && flowc simulate --events bad.jsonl --trace\n\nExit codes: 0 every property holds within the bounds, 1 a counterexample was found (or the project has errors), 2 the command could not run."
    )]
    Verify(VerifyArgs),
    /// List every project version the daemon ever ran (hash, time, flows, which is live)
    #[command(
        after_help = "Examples:\n  flowc versions                      # reads the store of a stopped daemon\n  flowc versions shop/ --data /var/lib/flowc\n  flowc versions --server http://127.0.0.1:8080 --admin-key $FLOWC_ADMIN_KEY\n\nExit codes: 0 listed, 2 the store or the server could not be read."
    )]
    Versions(VersionsArgs),
    /// Make a stored version live again in a running daemon (through the hot-reload path)
    #[command(
        after_help = "Examples:\n  flowc rollback 3f9c2a --server http://127.0.0.1:8080 --admin-key $FLOWC_ADMIN_KEY\n\nRunning instances keep their own version; new entries use VERSION. The files on disk are not\nchanged: the next saved edit goes live as usual, and a restart runs the project on disk.\nExit codes: 0 live, 2 the version is unknown or could not be made live."
    )]
    Rollback(RollbackArgs),
    /// Write the daemon's stored event history as JSON Lines for `flowc simulate --events`
    #[command(
        after_help = "Examples:\n  flowc export-events --server http://127.0.0.1:8080 --admin-key $FLOWC_ADMIN_KEY --out history.jsonl\n  flowc export-events shop/ --since 2026-03-01T00:00:00Z --until 2026-04-01T00:00:00Z > march.jsonl\n  flowc backtest old/ new/ --events history.jsonl\n\nExit codes: 0 written, 2 the store or the server could not be read, or a bad --since/--until."
    )]
    ExportEvents(ExportEventsArgs),
    /// Render one message to the terminal or an HTML file, sending nothing
    #[command(
        after_help = "Examples:\n  flowc preview cart_reminder --contact ana.json --trigger cart.json\n  flowc preview cart_reminder --html /tmp/cart.html"
    )]
    Preview(PreviewArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    /// Rendered for a person, with the source and labels
    Human,
    /// One JSON object per diagnostic per line
    Json,
    /// GitHub Actions workflow annotations
    Github,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The project folder (or one .flow file)
    #[arg(default_value = ".")]
    pub project: PathBuf,
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
    pub format: DiagnosticFormat,
    /// Treat warnings as errors (exit 1 when there is any)
    #[arg(long)]
    pub deny_warnings: bool,
    /// The project folder of the version running now: also report (E0033) the waiting
    /// instances of OLD that an `on change migrate` of this version would strand
    #[arg(long, value_name = "OLD")]
    pub against: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Files or folders to format (default: the current folder)
    pub paths: Vec<PathBuf>,
    /// Change nothing; exit 1 and list the files that are not formatted
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The project folder
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// A JSON Lines file of Segment records
    #[arg(long)]
    pub events: PathBuf,
    /// Stop the virtual clock at this instant (RFC 3339)
    #[arg(long)]
    pub until: Option<String>,
    /// Also print entries, exits, timer firings and segment changes
    #[arg(long)]
    pub trace: bool,
    /// Add the rendered subject and body of each delivery
    #[arg(long)]
    pub render: bool,
    /// Instead of the deliveries, print every decision about this contact in time order, each
    /// with the `file:line` that decided it (see docs/changes.md)
    #[arg(long, value_name = "CONTACT")]
    pub explain: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The project folder
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// The address to listen on (overrides `[server] listen`)
    #[arg(long)]
    pub listen: Option<String>,
    /// The store directory (overrides `[store] path`)
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Send nothing: append each delivery decision to this JSON Lines file
    #[arg(long)]
    pub dry_run: Option<PathBuf>,
    /// Log format on standard error
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event
    Text,
    /// One JSON object per line
    Json,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The project folder
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// Run only the cases whose name contains this text
    #[arg(long)]
    pub filter: Option<String>,
    /// Show every entry, exit, timer and segment change of each failing case
    #[arg(long)]
    pub trace: bool,
    /// Rewrite the `expect` section of each failing case with what was delivered (review the
    /// change in git before you commit it)
    #[arg(long)]
    pub update: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The project folder
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// Write to this file instead of standard output
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The flow to draw
    pub flow: String,
    /// The project folder
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to create
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as E0013
    pub code: String,
}

#[derive(Debug, Args)]
pub struct SendTestArgs {
    /// The message to send
    pub message: String,
    /// The project folder
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// Where to send it: an email address, a phone number or a push token (for a webhook
    /// message: the URL to call instead of its own)
    #[arg(long)]
    pub to: String,
    /// A JSON file of contact traits for the templates (`contact.*`)
    #[arg(long)]
    pub contact: Option<PathBuf>,
    /// A JSON file of the trigger event's properties (`trigger.*`)
    #[arg(long)]
    pub trigger: Option<PathBuf>,
    /// A JSON file of the last received event's properties (`event.*`)
    #[arg(long)]
    pub event: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The message to render
    pub message: String,
    /// The project folder
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// A JSON file of contact traits for the templates (`contact.*`)
    #[arg(long)]
    pub contact: Option<PathBuf>,
    /// A JSON file of the trigger event's properties (`trigger.*`)
    #[arg(long)]
    pub trigger: Option<PathBuf>,
    /// A JSON file of the last received event's properties (`event.*`)
    #[arg(long)]
    pub event: Option<PathBuf>,
    /// The address to show (default: the contact's)
    #[arg(long)]
    pub to: Option<String>,
    /// Write the HTML body of an email to this file instead of the terminal
    #[arg(long)]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChangeFormat {
    /// Markdown, for a person or a pull request comment
    Text,
    /// One JSON document with a `format_version` (docs/changes.md)
    Json,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old project folder (with `--git`: the project folder, default `.`)
    pub old: Option<PathBuf>,
    /// The new project folder
    pub new: Option<PathBuf>,
    /// Compare the project as it is at this git revision (OLD) with the working tree (NEW)
    #[arg(long, value_name = "REV")]
    pub git: Option<String>,
    #[arg(long, value_enum, default_value_t = ChangeFormat::Text)]
    pub format: ChangeFormat,
    /// Also report the contacts waiting at the end of a simulation of OLD over these events,
    /// and what happens to them
    #[arg(long, value_name = "FILE.jsonl")]
    pub events: Option<PathBuf>,
    /// With `--events`: stop that simulation here (RFC 3339)
    #[arg(long)]
    pub until: Option<String>,
    /// Contact ids shown per waiting step
    #[arg(long, default_value_t = 3)]
    pub examples: usize,
    /// Also report the contacts waiting right now in this running daemon (its admin API), and
    /// what happens to them
    #[arg(long, value_name = "URL", conflicts_with_all = ["events", "store"])]
    pub server: Option<String>,
    /// The admin key for `--server` (default: FLOWC_ADMIN_KEY)
    #[arg(long, value_name = "KEY")]
    pub admin_key: Option<String>,
    /// Also report the contacts waiting right now in this stopped daemon's store
    #[arg(long, value_name = "DIR", conflicts_with = "events")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The old project folder
    pub old: PathBuf,
    /// The new project folder
    pub new: PathBuf,
    /// A JSON Lines file of Segment records (the history)
    #[arg(long)]
    pub events: PathBuf,
    /// Stop the virtual clock of both runs here (RFC 3339)
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value_t = ChangeFormat::Text)]
    pub format: ChangeFormat,
    /// Example deliveries shown per flow, message and kind of change
    #[arg(long, default_value_t = 3)]
    pub examples: usize,
}

/// Where an admin command reads: a running daemon's admin API, or a stopped daemon's store.
#[derive(Debug, Args)]
pub struct AdminSource {
    /// A running daemon's base URL (its admin API), e.g. http://127.0.0.1:8080
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The admin key for `--server` (default: FLOWC_ADMIN_KEY)
    #[arg(long, value_name = "KEY")]
    pub admin_key: Option<String>,
    /// The store directory of a stopped daemon (default: the project's `[store] path`)
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    pub data: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// The project folder (to find its store)
    #[arg(default_value = ".")]
    pub project: PathBuf,
    #[command(flatten)]
    pub source: AdminSource,
    /// `text` for people, `json` for scripts (the document of `GET /v1/versions`)
    #[arg(long, value_enum, default_value = "text")]
    pub format: ChangeFormat,
}

#[derive(Debug, Args)]
pub struct ExportEventsArgs {
    /// The project folder (to find its store)
    #[arg(default_value = ".")]
    pub project: PathBuf,
    #[command(flatten)]
    pub source: AdminSource,
    /// Only records with a timestamp at or after this instant (RFC 3339)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only records with a timestamp before this instant (RFC 3339)
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Write here instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The version's hash (or its first characters, at least 4)
    pub version: String,
    /// The running daemon's base URL
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The admin key (default: FLOWC_ADMIN_KEY)
    #[arg(long, value_name = "KEY")]
    pub admin_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The project folder
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// How many inputs (events and timer firings) one explored history has at most
    #[arg(long, default_value_t = 5)]
    pub depth: usize,
    /// A wait must be able to end within this many days
    #[arg(long, default_value_t = 366)]
    pub horizon_days: i64,
    #[arg(long, value_enum, default_value_t = ChangeFormat::Text)]
    pub format: ChangeFormat,
    /// Write the first counterexample here, as events for `flowc simulate --events`
    #[arg(long, value_name = "FILE.jsonl")]
    pub counterexample: Option<PathBuf>,
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check(args) => crate::check::command::run(&args),
        Command::Fmt(args) => crate::fmt::command(&args),
        Command::Explain(args) => crate::check::command::explain(&args),
        Command::Simulate(args) => crate::simulate::command(&args),
        Command::Build(args) => crate::build::command(&args),
        Command::Test(args) => crate::testing::command(&args),
        Command::Graph(args) => crate::graph::command(&args),
        Command::Run(args) => crate::daemon::command(&args),
        Command::Init(args) => crate::init::command(&args),
        Command::SendTest(args) => crate::channels::command::send_test(&args),
        Command::Preview(args) => crate::channels::command::preview(&args),
        Command::Diff(args) => crate::changes::command::diff(&args),
        Command::Backtest(args) => crate::changes::command::backtest(&args),
        Command::Verify(args) => crate::changes::command::verify(&args),
        Command::Versions(args) => crate::daemon::admin::versions(&args),
        Command::Rollback(args) => crate::daemon::admin::rollback(&args),
        Command::ExportEvents(args) => crate::daemon::admin::export_events(&args),
    };
    ExitCode::from(code)
}
