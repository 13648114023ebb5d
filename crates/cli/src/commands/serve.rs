//! `suanli serve`: runs the control plane on this machine.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where and how to serve.
#[derive(Args)]
#[command(after_help = "\
Examples:
  suanli serve                                          SQLite in ./suanli-data, devices detected
  suanli serve --data-dir /var/lib/suanli --listen 0.0.0.0:8080
  suanli serve --devices h100-sxm5-80gb:8               declare the local accelerators
  suanli serve --database postgres://suanli:pw@db/suanli
  suanli serve --metrics-listen 10.0.0.5:9464          /metrics for Prometheus, no token
  suanli serve --executor local,slurm --slurm-partition gpu   local pool and a Slurm cluster
  suanli serve --executor slurm --slurm-mode slurm --slurm-qos high   Slurm picks the nodes
  suanli serve --store 's3://models?endpoint=http://10.0.0.5:7480'   artefacts on S3 (keys from env)

On first start with an empty store the server creates the user `admin`, writes its token to
DATA_DIR/admin-token (mode 0600) and creates the tenant `default` that admin's jobs go to.
Commands run on this machine in the same directory use ./suanli-data/admin-token when
SUANLI_TOKEN is not set, so `suanli serve &` then `suanli job submit -- python3 train.py` needs
no other step. As root, jobs run as unprivileged users (one per tenant, or --run-as USER) in
DATA_DIR-work and cannot read DATA_DIR; not as root, the server runs jobs of one tenant only.
Jobs keep running if the server stops; a restarted server re-attaches to them.
Without --devices and without nvidia-smi, rocm-smi or npu-smi, the local
pool offers one `cpu` slot per core.")]
pub struct ServeArgs {
    /// Logs, runs, the admin token and the SQLite file.
    #[arg(long, default_value = "suanli-data")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// PostgreSQL URL instead of SQLite in the data directory.
    #[arg(long)]
    database: Option<String>,
    /// Local accelerators as TYPE:COUNT,... (default: detect).
    #[arg(long)]
    devices: Option<String>,
    /// Also serve /metrics here without a token, for a stock Prometheus; bind it to a private
    /// interface (the main address keeps requiring a token for /metrics).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Scheduling policy (the list below; `las` and `gavel` are older names).
    #[arg(long, default_value = "fifo", value_parser = super::simulate::policy_parser())]
    policy: String,
    /// Run every job as this existing unprivileged user (default as root: one user per
    /// tenant, `suanli-t-TENANT`, created on first use).
    #[arg(long, value_name = "USER")]
    run_as: Option<String>,
    /// Run TENANT's jobs as the existing USER (repeatable).
    #[arg(long, value_name = "TENANT=USER")]
    tenant_user: Vec<String>,
    /// Root of the jobs' working directories (default: DATA_DIR-work).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Most HTTP connections open at once; at the cap the longest-waiting one is closed.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    #[command(flatten)]
    slurm: super::serve_slurm::SlurmArgs,
    /// Artefact store: file:///DIR or s3://BUCKET?endpoint=http://HOST:PORT (default
    /// DATA_DIR/objects). S3 keys come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or
    /// `credentials=FILE`, never from this URL.
    #[arg(long)]
    store: Option<String>,
    /// File with the artefact master key (64 hex digits); else SUANLI_MASTER_KEY, else
    /// DATA_DIR/master-key (created on first start).
    #[arg(long)]
    master_key_file: Option<PathBuf>,
    /// The URL other nodes reach this server at (jobs get SUANLI_CHECKPOINT_URL under it);
    /// default SUANLI_PUBLIC_URL, else the listen address (with the host name for 0.0.0.0).
    #[arg(long)]
    public_url: Option<String>,
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUANLI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        args.slurm.executors()?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let mut tenant_users = std::collections::BTreeMap::new();
        for pair in &args.tenant_user {
            let (tenant, user) = pair.split_once('=').with_context(|| {
                format!("--tenant-user `{pair}`: give TENANT=USER, e.g. research=alice")
            })?;
            tenant_users.insert(tenant.to_string(), user.to_string());
        }
        let metrics = match &args.metrics_listen {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address} (--metrics-listen)"))?,
            ),
            None => None,
        };
        let config = suanli_server::ServerConfig {
            data_dir: args.data_dir,
            database: args.database,
            devices: args.devices,
            policy: args.policy,
            job_users: match args.run_as {
                Some(user) => suanli_server::isolation::JobUsers::Fixed(user),
                None => suanli_server::isolation::JobUsers::PerTenant,
            },
            tenant_users,
            work_dir: args.work_dir,
            limits: suanli_server::conn::ConnLimits {
                max_connections: args.max_connections,
                ..Default::default()
            },
            // Goal jobs are planned with the catalog every command uses (SUANLI_CATALOG).
            catalog: Some(
                super::plan::load_catalog(&[])
                    .context("loading the catalog for goal jobs (SUANLI_CATALOG)")?,
            ),
            ..Default::default()
        };
        // The flags win over SUANLI_STORE and SUANLI_MASTER_KEY_FILE.
        let from_env = suanli_server::artifacts::ArtifactConfig::from_env();
        let artifacts = suanli_server::artifacts::ArtifactConfig {
            store: args.store.or(from_env.store),
            master_key_file: args.master_key_file.or(from_env.master_key_file),
            public_url: args.public_url.or(from_env.public_url),
        };
        let executors = args.slurm.executors()?;
        suanli_server::serve_all(
            config,
            artifacts,
            executors,
            listener,
            metrics,
            shutdown_signal(),
        )
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
    tracing::info!("shutting down; running jobs keep running");
}
