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
//!     ..Default::default()
//! };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! suanli_server::run(config, listener, std::future::pending()).await
//! # }
//! ```

pub mod api;
pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod clusters;
pub mod conn;
pub mod console;
pub mod devices;
pub mod engine;
pub mod executor;
pub mod isolation;
pub mod metrics;
pub mod openapi;
pub mod slurm;
pub mod store;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::os::unix::fs::DirBuilderExt;

use tokio::net::TcpListener;

pub use engine::Engine;
pub use store::{SqlStore, Store};

/// How to run the server.
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    /// Logs, runs, the admin token and (without `database`) the SQLite file.
    pub data_dir: PathBuf,
    /// `postgres://...`; `None` means SQLite in `data_dir`.
    pub database: Option<String>,
    /// `TYPE:COUNT,...`; `None` means detect with the vendor tools.
    pub devices: Option<String>,
    /// Scheduling policy (see `suanli_sched::policy`).
    pub policy: String,
    /// Which OS users run jobs (as root: one per tenant by default).
    pub job_users: isolation::JobUsers,
    /// Tenant -> existing OS user, overriding the generated per-tenant user.
    pub tenant_users: std::collections::BTreeMap<String, String>,
    /// Root of the jobs' working directories; `None` means `DATA_DIR-work`.
    pub work_dir: Option<PathBuf>,
    /// Connection cap and timeouts of the HTTP listener.
    pub limits: conn::ConnLimits,
    /// Per-tenant admission limits (queued jobs, priority range).
    pub admission: engine::admission::AdmissionLimits,
    /// Models and accelerators goal jobs are planned with; `None` means the built-in catalog.
    pub catalog: Option<suanli_catalog::Catalog>,
}

/// What stops the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `error` is not a `#[source]`: the message already holds it, and the CLI prints the chain.
    #[error("data directory {path}: {error}")]
    DataDir { path: String, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Not a `#[source]`, like `DataDir`'s error.
    #[error("--devices: {0}")]
    Devices(devices::DevicesError),
    /// A Slurm cluster that cannot be reached or read at start.
    #[error("Slurm cluster `{cluster}`: {error}")]
    Slurm {
        cluster: String,
        error: slurm::SlurmError,
    },
    #[error("no pools: the local machine is left out and no Slurm cluster was given")]
    NoPools,
    /// Recovery from the store failed.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    Scheduler(#[from] suanli_sched::SchedError),
    #[error(transparent)]
    Isolation(#[from] isolation::IsolationError),
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

/// The tenant a fresh server creates for admin's jobs.
pub const DEFAULT_TENANT: &str = "default";

/// On first start (no user yet): creates the `admin` user, the `default` tenant and writes its token to
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
    // Like Slurm's default account and Kubernetes' default namespace: admin's jobs without
    // `--tenant` go here, so a fresh server runs a job with no other step.
    let tenant = store::Tenant {
        name: DEFAULT_TENANT.into(),
        created_at_s: now,
    };
    let entry = store::NewAuditEvent {
        target: format!("tenant {DEFAULT_TENANT}"),
        ..entry
    };
    store
        .change_audited(store::Change::CreateTenant(&tenant), &entry)
        .await?;
    let (secret, record) = auth::new_token("admin", now, None);
    store.insert_token(&record).await?;
    let path = data_dir.join("admin-token");
    write_secret(&path, &secret).map_err(|error| ServerError::DataDir {
        path: path.display().to_string(),
        error,
    })?;
    tracing::info!(path = %path.display(), "first start: created user `admin`; its token is in this file");
    Ok(())
}

/// Writes `secret` and a newline to `path`, readable by its owner only (0600), and syncs it: the
/// one writer of secret files (the admin token here, the CLI's saved credentials).
pub fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
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

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "local".into())
}

/// Runs the control plane on `listener` until `shutdown` completes, on the local machine.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_clusters(config, Executors::default(), listener, None, shutdown).await
}

/// As [`run`], and when `metrics` is given, serves `/metrics` there without a token, for a stock
/// Prometheus scraping over a private interface (the main listener keeps requiring one).
pub async fn run_with_metrics(
    config: ServerConfig,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_clusters(config, Executors::default(), listener, metrics, shutdown).await
}

/// Which executors a server drives besides (or instead of) the local machine.
#[derive(Clone, Debug, Default)]
pub struct Executors {
    /// Leave the local machine out (run only on the Slurm clusters).
    pub no_local: bool,
    pub slurm: Vec<slurm::SlurmConfig>,
}

/// Pools of a Slurm cluster as engine pools.
fn slurm_pools(
    executor: &slurm::SlurmExecutor,
    nodes: &[slurm::SlurmNode],
) -> Vec<engine::PoolSlot> {
    executor
        .pools()
        .iter()
        .map(|(name, pool)| {
            let total = pool.per_node * pool.nodes.len() as u32;
            let node_slots = pool
                .nodes
                .iter()
                .map(|n| {
                    let node = nodes.iter().find(|x| x.name == *n);
                    engine::NodeSlot {
                        name: n.clone(),
                        state: node.map_or("unknown".into(), |x| x.state.clone()),
                        // Health is applied through the executor's first node events.
                        up: true,
                        reason: node.map_or(String::new(), |x| x.reason.clone()),
                    }
                })
                .collect();
            engine::PoolSlot {
                name: name.clone(),
                node: executor.label().to_string(),
                accelerator: pool.accelerator.clone(),
                total,
                free: (0..total).collect(),
                up: true,
                executor: executor.label().to_string(),
                nodes: node_slots,
                per_node: pool.per_node,
                first_node: 0,
            }
        })
        .collect()
}

/// Runs the control plane over the local machine and/or Slurm clusters, with the artefact
/// store named by `SUANLI_STORE` / `SUANLI_MASTER_KEY_FILE` (see `artifacts::ArtifactConfig`).
pub async fn run_clusters(
    config: ServerConfig,
    executors: Executors,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let artifact_config = artifacts::ArtifactConfig::from_env();
    serve_all(
        config,
        artifact_config,
        executors,
        listener,
        metrics,
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
    serve_all(
        config,
        artifact_config,
        Executors::default(),
        listener,
        None,
        shutdown,
    )
    .await
}

/// Logs, the database and the admin token live in the data directory: only the server's user may
/// enter it, even if it existed before with looser permissions.
fn private_data_dir(data_dir: &Path) -> Result<(), ServerError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|error| ServerError::DataDir {
            path: data_dir.display().to_string(),
            error,
        })?;
    Ok(())
}

/// Which OS users run jobs, from the configuration.
fn job_isolation(config: &ServerConfig) -> Result<isolation::Isolation, ServerError> {
    let work_root = config
        .work_dir
        .clone()
        .unwrap_or_else(|| isolation::default_work_root(&config.data_dir));
    let isolation = isolation::Isolation::new(
        config.job_users.clone(),
        config.tenant_users.clone(),
        work_root,
    )?;
    if isolation.isolates() {
        tracing::info!("jobs: {}", isolation.describe());
    } else {
        tracing::warn!("jobs: {}", isolation.describe());
    }
    Ok(isolation)
}

/// The pools and executors: the local machine's (unless left out) and each Slurm cluster's.
async fn cluster_routes(
    devices: &[devices::DeviceGroup],
    executors: &Executors,
    data_dir: &Path,
    events_tx: tokio::sync::mpsc::UnboundedSender<executor::ExitEvent>,
    slurm_tx: tokio::sync::mpsc::UnboundedSender<slurm::SlurmEvent>,
) -> Result<(Vec<engine::PoolSlot>, Vec<clusters::Cluster>), ServerError> {
    let mut pools = engine::local_pools(devices, &host_name());
    let mut routes = vec![clusters::Cluster {
        label: "local".into(),
        executor: Arc::new(executor::LocalExecutor::new(events_tx)),
        pools: pools.iter().map(|p| p.name.clone()).collect(),
    }];
    for cluster in &executors.slurm {
        let (executor, nodes) =
            slurm::SlurmExecutor::connect(cluster.clone(), data_dir, slurm_tx.clone())
                .await
                .map_err(|error| ServerError::Slurm {
                    cluster: cluster.label.clone(),
                    error,
                })?;
        let cluster_pools = slurm_pools(&executor, &nodes);
        routes.push(clusters::Cluster {
            label: cluster.label.clone(),
            executor: executor.clone(),
            pools: cluster_pools.iter().map(|p| p.name.clone()).collect(),
        });
        pools.extend(cluster_pools);
    }
    if pools.is_empty() {
        return Err(ServerError::NoPools);
    }
    Ok((pools, routes))
}

/// The control plane with everything explicit: artefact store, executors, metrics listener.
pub async fn serve_all(
    config: ServerConfig,
    artifact_config: artifacts::ArtifactConfig,
    executors: Executors,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Configuration errors first, before anything is created.
    let devices = if executors.no_local {
        Vec::new()
    } else {
        let builtin = suanli_catalog::Catalog::builtin();
        let catalog = config.catalog.as_ref().unwrap_or(&builtin);
        devices::local(config.devices.as_deref(), catalog).map_err(ServerError::Devices)?
    };
    suanli_sched::policy::by_name(&config.policy)?;
    let address = listener.local_addr().map_err(ServerError::Serve)?;
    let checkpoint_base =
        artifacts::checkpoint_base(artifact_config.public_url.as_deref(), address, &host_name())?;
    private_data_dir(&config.data_dir)?;
    let isolation = job_isolation(&config)?;
    let store: Arc<dyn Store> =
        Arc::new(open_store(&config.data_dir, config.database.as_deref()).await?);
    bootstrap(store.as_ref(), &config.data_dir).await?;
    let artifacts = Arc::new(artifacts::open(&artifact_config, &config.data_dir).await?);
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let (slurm_tx, slurm_rx) = tokio::sync::mpsc::unbounded_channel();
    let (pools, routes) =
        cluster_routes(&devices, &executors, &config.data_dir, events_tx, slurm_tx).await?;
    let executor = Arc::new(clusters::Clusters::new(routes));
    let mut engine = Engine::with_pools(
        store.clone(),
        executor.clone(),
        pools,
        &config.policy,
        &config.data_dir,
    )?;
    engine.set_isolation(Arc::new(isolation));
    engine.admission = config.admission;
    if let Some(catalog) = config.catalog {
        engine.catalog = Arc::new(catalog);
    }
    engine.checkpoint_base = Some(checkpoint_base);
    engine.recover().await?;
    let catalog = engine.catalog.clone();
    let engine = Arc::new(tokio::sync::Mutex::new(engine));
    tracing::info!(%address, store = store.kind(), data_dir = %config.data_dir.display(), "serving");

    let (stop_loop, stop) = tokio::sync::watch::channel(false);
    let reports = engine::control::Reports {
        exits: events_rx,
        slurm: slurm_rx,
    };
    let control_loop = tokio::spawn(engine::control::control_loop(
        engine.clone(),
        reports,
        stop.clone(),
    ));
    let state = api::AppState {
        store,
        catalog,
        engine,
        data_dir: config.data_dir.clone(),
        artifacts,
    };
    let listener = conn::GuardedListener::new(listener, config.limits);
    serve_http(state, listener, metrics, (stop_loop, stop), shutdown).await?;
    if let Err(error) = control_loop.await {
        tracing::error!(%error, "control loop panicked");
    }
    executor::Executor::shutdown(executor.as_ref()).await;
    Ok(())
}

/// Serves the API and console on `listener` (and `/metrics` on `metrics`) until `shutdown`; the
/// control loop is told to stop through `stop` the moment shutdown begins.
async fn serve_http(
    state: api::AppState,
    listener: conn::GuardedListener,
    metrics: Option<TcpListener>,
    (stop_loop, stop): (
        tokio::sync::watch::Sender<bool>,
        tokio::sync::watch::Receiver<bool>,
    ),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let scrape = metrics.map(|metrics| {
        let router = axum::Router::new()
            .route("/metrics", axum::routing::get(metrics::metrics))
            .with_state(state.clone());
        let mut stop = stop.clone();
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        tokio::spawn(async move {
            axum::serve(metrics, router)
                .with_graceful_shutdown(stopped)
                .await
        })
    });
    let api_router = api::router(state.clone());
    let app = api_router.clone().merge(console::router(state, api_router));
    // Graceful: on shutdown the loop stops starting runs at once and applies the run ends
    // already reported while requests in flight finish; then every task returns.
    let shutdown = async move {
        shutdown.await;
        let _ = stop_loop.send(true);
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(scrape) = scrape {
        let _ = scrape.await;
    }
    served.map_err(ServerError::Serve)
}
