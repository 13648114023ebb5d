//! The suanli control plane: a multi-tenant job service that admits jobs against quotas, places
//! them with `suanli-sched` on the wall clock, runs them through an executor (local processes
//! today), restarts them from checkpoints, and records every change in a hash-chained audit log.
//!
//! ```no_run
//! # async fn example() -> Result<(), suanli_server::ServerError> {
//! let config = suanli_server::ServerConfig {
//!     data_dir: "/tmp/suanli".into(),
//!     database: None,
//!     devices: Some("h100-sxm5-80gb:8".into()),
//!     policy: "fifo".into(),
//! };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! suanli_server::run(config, listener, std::future::pending()).await
//! # }
//! ```

pub mod api;
pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod engine;
pub mod executor;
pub mod metrics;
pub mod openapi;
pub mod store;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::os::unix::fs::DirBuilderExt;

use tokio::net::TcpListener;

pub use engine::Engine;
pub use store::{SqlStore, Store};

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Logs, runs, the admin token and (without `database`) the SQLite file.
    pub data_dir: PathBuf,
    /// `postgres://...`; `None` means SQLite in `data_dir`.
    pub database: Option<String>,
    /// `TYPE:COUNT,...`; `None` means detect with the vendor tools.
    pub devices: Option<String>,
    /// Scheduling policy (see `suanli_sched::policy`).
    pub policy: String,
}

/// What stops the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("--devices: {0}")]
    Devices(String),
    #[error("{0}")]
    Engine(String),
    #[error("serving: {0}")]
    Serve(std::io::Error),
    #[error("artifact store: {0}")]
    Artifacts(#[from] artifacts::ArtifactError),
}

/// Opens the store named by the configuration.
pub async fn open_store(data_dir: &Path, database: Option<&str>) -> Result<SqlStore, ServerError> {
    match database {
        Some(url) => Ok(SqlStore::connect(url).await?),
        None => Ok(SqlStore::open_sqlite(&data_dir.join("suanli.db")).await?),
    }
}

/// On first start (no user yet): creates the `admin` user and writes its token to
/// `DIR/admin-token`, mode 0600.
async fn bootstrap(store: &dyn Store, data_dir: &Path) -> Result<(), ServerError> {
    if !store.is_empty().await? {
        return Ok(());
    }
    let now = engine::now_s();
    let admin = store::User {
        name: "admin".into(),
        tenant: None,
        role: store::Role::Admin,
        created_at_s: now,
    };
    let entry = store::NewAuditEvent {
        at_ms: now * 1000,
        actor: "server".into(),
        action: "bootstrap".into(),
        target: "user admin".into(),
        outcome: "created".into(),
    };
    store
        .change_audited(store::Change::CreateUser(&admin), &entry)
        .await?;
    let (secret, record) = auth::new_token("admin", now, None);
    store.insert_token(&record).await?;
    let path = data_dir.join("admin-token");
    write_secret(&path, &secret).map_err(|source| ServerError::DataDir {
        path: path.display().to_string(),
        source,
    })?;
    tracing::info!(path = %path.display(), "first start: created user `admin`; its token is in this file");
    Ok(())
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The local pool: declared, detected, or one `cpu` slot per core when neither finds anything.
fn local_devices(declared: Option<&str>) -> Result<Vec<devices::DeviceGroup>, ServerError> {
    if let Some(text) = declared {
        return devices::parse_devices(text).map_err(ServerError::Devices);
    }
    let detected = devices::detect();
    if !detected.is_empty() {
        tracing::info!(?detected, "detected accelerators");
        return Ok(detected);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    tracing::info!(
        cores,
        "no accelerators detected; offering one `cpu` slot per core"
    );
    Ok(vec![devices::DeviceGroup {
        accelerator: "cpu".into(),
        count: cores,
    }])
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "local".into())
}

/// Runs the control plane on `listener` until `shutdown` completes, with the artefact store
/// named by `SUANLI_STORE` / `SUANLI_MASTER_KEY_FILE` (see `artifacts::ArtifactConfig`).
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_with(
        config,
        artifacts::ArtifactConfig::from_env(),
        listener,
        shutdown,
    )
    .await
}

/// `run` with an explicit artefact store configuration.
pub async fn run_with(
    config: ServerConfig,
    artifact_config: artifacts::ArtifactConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Configuration errors first, before anything is created.
    let devices = local_devices(config.devices.as_deref())?;
    suanli_sched::policy::by_name(&config.policy)
        .map_err(|e| ServerError::Engine(e.to_string()))?;
    // Logs and the admin token live here: only the server's user may read it.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .map_err(|source| ServerError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
    let store: Arc<dyn Store> =
        Arc::new(open_store(&config.data_dir, config.database.as_deref()).await?);
    bootstrap(store.as_ref(), &config.data_dir).await?;
    let artifacts = Arc::new(artifacts::open(&artifact_config, &config.data_dir).await?);
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
    let executor = Arc::new(executor::LocalExecutor::new(events_tx));
    let mut engine = Engine::new(
        store.clone(),
        executor,
        &devices,
        &host_name(),
        &config.policy,
        &config.data_dir,
    )
    .map_err(ServerError::Engine)?;
    let address = listener.local_addr().map_err(ServerError::Serve)?;
    engine.checkpoint_base = Some(format!("http://{address}/api/v1/artifacts"));
    engine
        .recover()
        .await
        .map_err(|e| ServerError::Engine(e.to_string()))?;
    let engine = Arc::new(tokio::sync::Mutex::new(engine));
    tracing::info!(%address, store = store.kind(), data_dir = %config.data_dir.display(), "serving");

    let loop_engine = engine.clone();
    let control_loop = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                event = events_rx.recv() => {
                    let Some(event) = event else { break };
                    if let Err(error) = loop_engine.lock().await.on_exit(event).await {
                        tracing::error!(%error, job = event.job_id, "failed to record a run's end");
                    }
                }
                _ = tick.tick() => {
                    if let Err(error) = loop_engine.lock().await.schedule_pass().await {
                        tracing::error!(%error, "scheduling pass failed");
                    }
                }
            }
        }
    });
    let state = api::AppState {
        store,
        engine,
        data_dir: config.data_dir.clone(),
        artifacts,
    };
    let served = axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    control_loop.abort();
    served.map_err(ServerError::Serve)
}
