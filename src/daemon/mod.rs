//! `flowc run`: the durable daemon.
//!
//! Owns: start-up (configuration with flag and environment overrides, the loopback-only rule
//! without a write key, opening the store, carrying states over to the running version),
//! wiring the core thread ([`core`]), the outbox ([`outbox`]), hot reload ([`reload`]), the
//! metrics ([`metrics`]) and the HTTP server (`crate::server`), and the graceful stop on
//! SIGTERM/SIGINT (stop taking requests, finish what is in flight, commit, exit 0).
//! Must not: own semantics (the engine does) or name sled (the store does).
//!
//! Exit codes: 0 stopped cleanly; 1 the project has errors; 2 the daemon could not start (bad
//! flags or configuration, the store cannot be opened, the address cannot be bound).

pub mod admin;
pub mod archive;
pub mod core;
pub mod metrics;
pub mod outbox;
pub mod reload;
pub mod retention;
pub mod trace;
pub mod versions;

use crate::cli::{LogFormat, RunArgs, EXIT_CANNOT_RUN, EXIT_ERRORS, EXIT_OK};
use crate::compile::CompiledProject;
use crate::config::Config;
use crate::events::{Record, RecordKind};
use crate::store::sled::SledStore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// One loaded project version.
#[derive(Debug)]
pub struct Loaded {
    pub compiled: CompiledProject,
    pub config: Config,
    /// SHA-256 of the compiled project's JSON: the version.
    pub hash: String,
    pub root: PathBuf,
    /// Its flows and source files, stored as a version when it goes live.
    pub snapshot: archive::Snapshot,
}

/// Loads, checks and compiles a project (the path `flowc simulate` uses); the diagnostics as
/// text when it has errors.
pub fn load(root: &Path) -> Result<Loaded, String> {
    let project = crate::project::Project::load(root).map_err(|e| e.to_string())?;
    let config = Config::load(&project.root).map_err(|e| e.to_string())?;
    let diagnostics = crate::check::check(&project);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.severity == crate::diagnostic::Severity::Error)
        .map(|d| crate::simulate::describe_diagnostic(&project, d))
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let compiled = crate::compile::compile(&project, &config).map_err(|diagnostics| {
        diagnostics
            .iter()
            .map(|d| crate::simulate::describe_diagnostic(&project, d))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let hash = {
        use sha2::Digest;
        let json = serde_json::to_vec(&compiled).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(&json))
    };
    let snapshot = archive::Snapshot {
        flows: compiled
            .flows
            .iter()
            .map(|f| archive::FlowVersion {
                name: f.name.clone(),
                hash: f.hash.clone(),
            })
            .collect(),
        files: archive::snapshot_files(&project.root),
    };
    Ok(Loaded {
        compiled,
        config,
        hash,
        root: project.root.clone(),
        snapshot,
    })
}

/// One applied record as the history log keeps it: MessagePack, a positional array
/// (`StoredRecord`), well under half the JSON line. [`history_value`] reads it back (and the
/// JSON lines that stores written before this format hold).
pub fn record_bytes(record: &Record) -> Vec<u8> {
    rmp_serde::to_vec(&StoredRecord::of(record)).unwrap_or_else(|_| record_json(record))
}

/// One applied record as a line of the history log's JSON form (Segment shape).
pub fn record_json(record: &Record) -> Vec<u8> {
    serde_json::to_vec(&StoredRecord::of(record).into_object()).unwrap_or_default()
}

/// A stored history record as its JSON object (Segment shape, as [`record_json`] writes it),
/// whichever form it was stored in.
pub fn history_value(bytes: &[u8]) -> Option<serde_json::Value> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes).ok();
    }
    let stored: StoredRecord = rmp_serde::from_slice(bytes).ok()?;
    Some(serde_json::Value::Object(stored.into_object()))
}

/// A history record in the compact form of [`record_bytes`] (field order is the format).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRecord {
    identify: bool,
    contact: String,
    event: String,
    time: i64,
    nanos: u32,
    message_id: Option<String>,
    traits: serde_json::Map<String, serde_json::Value>,
    properties: serde_json::Map<String, serde_json::Value>,
}

impl StoredRecord {
    fn of(record: &Record) -> StoredRecord {
        StoredRecord {
            identify: record.kind == RecordKind::Identify,
            contact: record.contact.clone(),
            event: record.event.clone(),
            time: record.time,
            nanos: record.nanos,
            message_id: record.message_id.clone(),
            traits: record.traits.clone(),
            properties: record.properties.clone(),
        }
    }

    /// The Segment-shaped JSON object.
    fn into_object(self) -> serde_json::Map<String, serde_json::Value> {
        let mut object = serde_json::Map::new();
        object.insert(
            "type".into(),
            if self.identify { "identify" } else { "track" }.into(),
        );
        object.insert("userId".into(), self.contact.into());
        if !self.identify {
            object.insert("event".into(), self.event.into());
        }
        let stamp = chrono::DateTime::from_timestamp(self.time, self.nanos)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default();
        object.insert("timestamp".into(), stamp.into());
        if let Some(id) = self.message_id {
            object.insert("messageId".into(), id.into());
        }
        if !self.traits.is_empty() {
            object.insert("traits".into(), self.traits.into());
        }
        if !self.properties.is_empty() {
            object.insert("properties".into(), self.properties.into());
        }
        object
    }
}

/// The resolved settings of one daemon.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub write_keys: Vec<String>,
    pub admin_key: Option<String>,
    pub dry_run: Option<PathBuf>,
    /// Bytes of one request body at most (after gzip decoding too).
    pub max_body_bytes: usize,
    /// Records of one batch at most.
    pub max_batch_records: usize,
    /// Concurrent sends.
    pub send_concurrency: usize,
}

/// Flags over `flowc.toml` over defaults; environment variables over secrets.
pub fn settings(args: &RunArgs, loaded: &Loaded) -> Result<Settings, String> {
    let config = &loaded.config;
    let listen_text = args
        .listen
        .clone()
        .unwrap_or_else(|| config.server.listen.clone());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        format!("`{listen_text}` is not an address to listen on such as `127.0.0.1:8080`")
    })?;
    let data = match &args.data {
        Some(d) => d.clone(),
        None => loaded.root.join(&config.store.path),
    };
    let write_keys: Vec<String> = match std::env::var("FLOWC_WRITE_KEY") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect(),
        _ => config.server.write_keys.clone(),
    };
    let admin_key = std::env::var("FLOWC_ADMIN_KEY")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| config.server.admin_key.clone());
    if write_keys.is_empty() && !listen.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on `{listen}` without a write key: anyone could send events; set `[server] write_keys` or FLOWC_WRITE_KEY, or listen on 127.0.0.1"
        ));
    }
    Ok(Settings {
        listen,
        data,
        write_keys,
        admin_key,
        dry_run: args.dry_run.clone(),
        max_body_bytes: config.server.max_body_bytes.unwrap_or(4 * 1024 * 1024),
        max_batch_records: config.server.max_batch_records.unwrap_or(10_000),
        send_concurrency: config.server.send_concurrency.unwrap_or(8).max(1),
    })
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOWC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

/// `flowc run`.
pub fn command(args: &RunArgs) -> u8 {
    init_logs(args.log_format);
    let loaded = match load(&args.project) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(diagnostics = %e, "the project does not check; nothing was started");
            eprintln!("{e}");
            return if args.project.exists() {
                EXIT_ERRORS
            } else {
                EXIT_CANNOT_RUN
            };
        }
    };
    let settings = match settings(args, &loaded) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    match start(loaded, settings) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            EXIT_CANNOT_RUN
        }
    }
}

fn start(loaded: Loaded, settings: Settings) -> Result<(), String> {
    let mut config = loaded.config.clone();
    config.server.listen = settings.listen.to_string();
    let mut store = SledStore::open_with(
        &settings.data,
        loaded.config.store.compression.unwrap_or(false),
    )
    .map_err(|e| e.to_string())?;
    // States are kept in the ids of the project that wrote them: carry them over, keeping
    // old flow versions that still have running instances.
    let mut loaded = loaded;
    let previous = match store.meta("project").map_err(|e| e.to_string())? {
        Some(bytes) => match serde_json::from_slice::<CompiledProject>(&bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, "the stored project version cannot be read; states are used as they are");
                None
            }
        },
        None => None,
    };
    let previous = previous.unwrap_or_else(|| loaded.compiled.clone());
    // The project changed while the daemon was stopped: the same rules as a hot reload.
    if let Some(diagnostics) = reload::refusal(&previous, &loaded) {
        return Err(format!(
            "the project would strand instances waiting in the stored version:\n{diagnostics}"
        ));
    }
    let (merged, n) = reload::carry_over(&mut store, &previous, &loaded.compiled, core::wall_now())
        .map_err(|e| e.to_string())?;
    if n > 0 {
        tracing::info!(
            contacts = n,
            "states carried over to the project's current version"
        );
    }
    loaded.compiled = merged;
    let loaded = Arc::new(loaded);
    let key_file = loaded.root.join(".flowc").join("signing.key");
    let signer = crate::channels::signer_from_config(&config, Some(&key_file))?;
    let links = crate::channels::Links::from_config(&config, signer.clone());
    let metrics = Arc::new(metrics::Metrics::default());
    let (core_tx, core_rx) = std::sync::mpsc::channel::<core::Command>();
    let senders: Arc<RwLock<Arc<dyn crate::channels::Sender>>> =
        Arc::new(RwLock::new(crate::channels::senders_from_config(&config)?));
    let dispatch = match &settings.dry_run {
        Some(path) => {
            let report_tx = core_tx.clone();
            core::Dispatch::DryRun {
                writer: outbox::DryRunWriter::start(
                    outbox::DryRun::open(path)?,
                    move |batch, result| {
                        let _ = report_tx.send(core::Command::DryRunWritten(batch, result));
                    },
                ),
                busy: false,
            }
        }
        None => {
            let report_tx = core_tx.clone();
            core::Dispatch::Send {
                workers: outbox::Workers::start(
                    settings.send_concurrency,
                    senders.clone(),
                    move |done| {
                        let _ = report_tx.send(core::Command::Sent(done));
                    },
                    metrics.clone(),
                ),
                in_flight: Default::default(),
            }
        }
    };
    let current = Arc::new(RwLock::new(loaded.clone()));
    let on_reload = {
        let current = current.clone();
        let senders = senders.clone();
        Box::new(move |next: &Arc<Loaded>| {
            if let Ok(s) = crate::channels::senders_from_config(&next.config) {
                if let Ok(mut slot) = senders.write() {
                    *slot = s;
                }
            }
            if let Ok(mut slot) = current.write() {
                *slot = next.clone();
            }
        })
    };
    let reader = store.reader();
    let windows = retention::Windows::from_config(&config.store);
    store.set_dedupe_window(windows.dedupe);
    retention::start(store.compactor(), windows, metrics.clone());
    let core = core::Core::new(
        store,
        loaded.clone(),
        metrics.clone(),
        dispatch,
        links,
        crate::channels::RetryPolicy::from_config(&config),
        on_reload,
    )?;
    let core_thread = std::thread::Builder::new()
        .name("flowc-core".into())
        .spawn({
            let own = core_tx.clone();
            move || core.run(core_rx, own)
        })
        .map_err(|e| format!("cannot start the core: {e}"))?;
    let _watcher = reload::watch(
        loaded.root.clone(),
        loaded.hash.clone(),
        core_tx.clone(),
        metrics.clone(),
    )
    .map_err(|e| tracing::warn!("{e}; hot reload is off"))
    .ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let state = crate::server::AppState {
        core: core_tx.clone(),
        write_keys: Arc::new(settings.write_keys.clone()),
        admin_key: settings.admin_key.clone().map(Arc::new),
        reader,
        metrics: metrics.clone(),
        current: current.clone(),
        max_body_bytes: settings.max_body_bytes,
        max_batch_records: settings.max_batch_records,
        started: std::time::Instant::now(),
    };
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("cannot listen on `{}`: {e}", settings.listen))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        tracing::info!(
            listen = %local,
            data = %settings.data.display(),
            version = %loaded.hash,
            dry_run = settings.dry_run.as_ref().map(|p| p.display().to_string()),
            write_keys = settings.write_keys.len(),
            "flowc run: listening"
        );
        let app = crate::server::router(state, signer);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
        });
        shutdown_signal().await;
        let _ = stop_tx.send(());
        // Requests in flight get their answer; a client that keeps a connection open does
        // not hold the stop back for more than 10 s.
        match tokio::time::timeout(std::time::Duration::from_secs(10), server).await {
            Ok(Ok(result)) => result.map_err(|e| format!("server: {e}")),
            Ok(Err(e)) => Err(format!("server: {e}")),
            Err(_) => {
                tracing::warn!("connections still open 10 s after the signal; stopping anyway");
                Ok(())
            }
        }
    });
    tracing::info!("stopping: no new requests; finishing what is in flight");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let _ = core_tx.send(core::Command::Shutdown(done_tx));
    let core_stopped = done_rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .is_ok();
    drop(core_tx);
    if core_stopped {
        let _ = core_thread.join();
    } else {
        tracing::error!(
            "the core did not stop within 20 s; exiting (what is committed is durable)"
        );
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    tracing::info!("stopped");
    served
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
