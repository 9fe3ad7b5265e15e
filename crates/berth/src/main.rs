//! The `berth` binary: command line, configuration, wiring of the concrete
//! backends into the domain, the HTTP server, and orderly shutdown. This is
//! the only place that knows which storage implementations are in use.

mod config;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use berth_api::{ApiSettings, AppState};
use berth_core::audit::Audit;
use berth_core::catalog::Catalog;
use berth_core::events::EventBus;
use berth_core::identity::Identity;
use berth_core::members::Members;
use berth_core::ports::BlobStore;
use berth_core::registry::{Registry, RegistryConfig};
use berth_core::robots::Robots;
use berth_core::settings::Settings;
use berth_core::tokens::TokenKeys;
use berth_core::users::Users;
use clap::{Parser, Subcommand};
use config::{Config, LogFormat};
use tokio::sync::watch;
use tower::Layer;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A Harbor-compatible container registry in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the registry server.
    Serve {
        /// A TOML configuration file; BERTH_* environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Writes the bound address to this file once the server accepts
        /// connections (useful with BERTH_LISTEN=127.0.0.1:0).
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
}

/// glibc raises its mmap threshold as large blocks are freed, after which
/// the 1 MiB upload buffers come from arenas that are never returned to the
/// system. A fixed threshold keeps large buffers in their own mappings,
/// released on free, so RSS falls back after a burst of pushes.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, ready_file } => {
            let env: BTreeMap<String, String> = std::env::vars().collect();
            let cfg = match Config::load(config.as_deref(), &env) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("berth: configuration error: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            init_logging(&cfg);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("berth: cannot start the runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve(cfg, ready_file)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "berth stopped");
                    eprintln!("berth: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn open_blobs(cfg: &Config) -> Result<Arc<dyn BlobStore>, String> {
    if let Some(path) = cfg.storage_url.strip_prefix("file://") {
        Ok(Arc::new(
            berth_blob::FsBlobStore::open(PathBuf::from(path)).map_err(|e| e.to_string())?,
        ))
    } else {
        Ok(Arc::new(
            berth_blob::S3BlobStore::from_url(&cfg.storage_url).map_err(|e| e.to_string())?,
        ))
    }
}

async fn serve(cfg: Config, ready_file: Option<PathBuf>) -> Result<(), String> {
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", cfg.data_dir.display()))?;
    let meta = berth_meta::open(&cfg.database_url.0)
        .await
        .map_err(|e| e.to_string())?;
    let blobs = open_blobs(&cfg).await?;
    tracing::info!(
        database = meta.kind(),
        storage = blobs.kind(),
        "storage opened"
    );

    let events = EventBus::default();
    let settings = Arc::new(Settings::new(meta.clone(), events.clone()));
    let token_keys = load_token_key(&cfg)?;
    let identity = Arc::new(Identity::new(
        meta.clone(),
        settings.clone(),
        events.clone(),
        token_keys,
    ));
    if let Some(generated) = identity
        .ensure_admin(cfg.admin_password.as_ref().map(|s| s.0.as_str()))
        .await
        .map_err(|e| e.to_string())?
    {
        // Printed once, on first start only; it is never stored in clear.
        eprintln!("\n  berth: created user \"admin\" with the generated password: {generated}\n  (set BERTH_ADMIN_PASSWORD to choose it; this is shown only once)\n");
        tracing::warn!("created the admin user with a generated password (printed above, once)");
    }
    let admin = meta
        .user_by_name("admin")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the admin user is missing")?;

    let registry = Arc::new(Registry::new(
        meta.clone(),
        blobs.clone(),
        events.clone(),
        RegistryConfig {
            max_manifest_bytes: cfg.max_manifest_bytes,
            blob_touch_after: cfg.gc_time_window / 2,
            ..RegistryConfig::default()
        },
    ));
    let catalog = Arc::new(Catalog::new(
        meta.clone(),
        blobs.clone(),
        events.clone(),
        settings.clone(),
    ));
    catalog
        .ensure_default_project(admin.id)
        .await
        .map_err(|e| e.to_string())?;

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let gc = Arc::new(berth_core::gc::Gc::new(meta.clone(), cfg.gc_time_window));
    let retention = Arc::new(berth_core::retention::Retention::new(meta.clone()));
    let purge_audit = Arc::new(berth_core::audit_purge::PurgeAudit::new(meta.clone()));
    let state = AppState {
        registry,
        catalog,
        identity,
        users: Arc::new(Users::new(meta.clone(), settings.clone(), events.clone())),
        members: Arc::new(Members::new(meta.clone(), events.clone())),
        robots: Arc::new(Robots::new(meta.clone(), settings.clone(), events.clone())),
        audit: Arc::new(Audit::new(meta.clone())),
        quotas: Arc::new(berth_core::quotas::Quotas::new(
            meta.clone(),
            events.clone(),
        )),
        gc: gc.clone(),
        immutability: Arc::new(berth_core::immutable::Immutability::new(meta.clone())),
        retention: retention.clone(),
        purge_audit: purge_audit.clone(),
        storage_requests: Arc::new(berth_core::storage_requests::StorageRequests::new(
            meta.clone(),
            events.clone(),
        )),
        config: settings.clone(),
        settings: Arc::new(ApiSettings {
            external_url: cfg.external_url.clone(),
            storage_provider: blobs.kind().to_owned(),
            version: format!("v{}-berth", env!("CARGO_PKG_VERSION")),
        }),
    };
    // Requests in flight, which background jobs pace themselves around.
    let foreground = berth_core::load::Foreground::default();
    let app = tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash().layer(
        berth_api::app(state.clone(), berth_ui::router(state)).layer(
            axum::middleware::from_fn_with_state(foreground.clone(), berth_api::count_requests),
        ),
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let recorder = tokio::spawn(berth_core::stats::run_pull_recorder(
        meta.clone(),
        events.clone(),
        stop_rx.clone(),
    ));
    let auditor = tokio::spawn(berth_core::audit::run_audit_recorder(
        meta.clone(),
        settings.clone(),
        events.clone(),
        stop_rx.clone(),
    ));
    // Background work: one worker per process, named so that several
    // nodes sharing a database tell their tasks apart.
    let worker_name = format!("{}:{}", hostname(), std::process::id());
    let worker = berth_core::jobs::Worker::new(
        meta.clone(),
        vec![
            Arc::new(berth_core::purge::UploadPurge::new(
                meta.clone(),
                blobs.clone(),
            )),
            Arc::new(berth_core::gc::GarbageCollector::new(
                meta.clone(),
                blobs.clone(),
                events.clone(),
                foreground.clone(),
            )),
            Arc::new(berth_core::retention::RetentionRunner::new(
                meta.clone(),
                events.clone(),
                foreground.clone(),
            )),
            Arc::new(berth_core::audit_purge::AuditLogPurger::new(
                meta.clone(),
                foreground.clone(),
            )),
        ],
        worker_name,
    );
    let mut worker_stop = stop_rx.clone();
    let worker = tokio::spawn(worker.run(async move {
        let _ = worker_stop.changed().await;
    }));
    let scheduler = tokio::spawn(berth_core::schedule::run_scheduler(
        meta.clone(),
        vec![
            gc as Arc<dyn berth_core::schedule::Scheduled>,
            retention as Arc<dyn berth_core::schedule::Scheduled>,
            purge_audit as Arc<dyn berth_core::schedule::Scheduled>,
        ],
        std::time::Duration::from_secs(1),
        stop_rx.clone(),
    ));
    let purge_schedule = (!cfg.upload_purge_interval.is_zero()).then(|| {
        tokio::spawn(berth_core::purge::run_upload_purge_schedule(
            berth_core::jobs::Jobs::new(meta.clone()),
            meta.clone(),
            cfg.upload_purge_interval,
            cfg.upload_purge_age,
            stop_rx,
        ))
    });

    if let Some(path) = &ready_file {
        std::fs::write(path, local.to_string())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    tracing::info!(addr = %local, startup_ms = started.elapsed().as_millis() as u64, "listening");
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| e.to_string())?;
    let _ = stop_tx.send(true);
    let _ = recorder.await;
    let _ = auditor.await;
    let _ = worker.await;
    let _ = scheduler.await;
    if let Some(s) = purge_schedule {
        let _ = s.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// This machine's name, for naming job workers.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "berth".into())
}

/// The registry-token signing key: read from `token_key_file`, or created
/// there (mode 0600) on first start. Several nodes must share one file.
fn load_token_key(cfg: &Config) -> Result<TokenKeys, String> {
    let path = &cfg.token_key_file;
    let pem = match std::fs::read_to_string(path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pem = TokenKeys::generate_pem().map_err(|e| e.to_string())?;
            write_private(path, &pem)
                .map_err(|e| format!("cannot write the token key {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "created the registry token signing key");
            pem
        }
        Err(e) => return Err(format!("cannot read the token key {}: {e}", path.display())),
    };
    TokenKeys::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
