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
  suanli serve --executor local,slurm --slurm-partition gpu   local pool and a Slurm cluster
  suanli serve --executor slurm --slurm-mode slurm --slurm-qos high   Slurm picks the nodes

On first start with an empty store the server creates the user `admin` and writes its token to
DATA_DIR/admin-token (mode 0600). Jobs keep running if the server stops; a restarted server
re-attaches to them. Without --devices and without nvidia-smi, rocm-smi or npu-smi, the local
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
    /// Scheduling policy: fifo, backfill, sjf, las, fair or gavel.
    #[arg(long, default_value = "fifo")]
    policy: String,
    #[command(flatten)]
    slurm: super::serve_slurm::SlurmArgs,
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
        let config = suanli_server::ServerConfig {
            data_dir: args.data_dir,
            database: args.database,
            devices: args.devices,
            policy: args.policy,
        };
        let executors = args.slurm.executors()?;
        suanli_server::run_clusters(config, executors, listener, shutdown_signal()).await?;
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
