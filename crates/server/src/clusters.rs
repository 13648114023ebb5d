//! Several executors under one engine (the local machine, Slurm clusters): each run goes to the
//! executor of the pool it was placed in, and its directory records which, so a restarted
//! server re-attaches to and stops it through the same one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::executor::{Adopted, ExecError, Executor, Launch};

/// The file in a run directory naming the cluster that runs it.
const CLUSTER_FILE: &str = "cluster";

/// One executor and the pools it runs.
pub struct Cluster {
    pub label: String,
    pub executor: Arc<dyn Executor>,
    pub pools: Vec<String>,
}

/// Routes runs to their pool's executor.
pub struct Clusters {
    clusters: Vec<Cluster>,
}

impl Clusters {
    /// Routes over `clusters`; the first one is the default for runs that name none (runs
    /// started before clusters existed are local).
    pub fn new(clusters: Vec<Cluster>) -> Clusters {
        Clusters { clusters }
    }

    fn for_run(&self, run_dir: &Path) -> Option<&Cluster> {
        let label = std::fs::read_to_string(run_dir.join(CLUSTER_FILE))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "local".into());
        self.clusters.iter().find(|c| c.label == label)
    }
}

#[async_trait::async_trait]
impl Executor for Clusters {
    fn name(&self) -> &'static str {
        "clusters"
    }

    async fn start(&self, launch: &Launch) -> Result<(), ExecError> {
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.pools.contains(&launch.pool))
            .ok_or_else(|| ExecError::Spawn {
                program: launch.command.first().cloned().unwrap_or_default(),
                source: std::io::Error::other(format!("no executor runs pool `{}`", launch.pool)),
            })?;
        let dir_error = |source| ExecError::RunDir {
            path: launch.run_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&launch.run_dir).map_err(dir_error)?;
        std::fs::write(launch.run_dir.join(CLUSTER_FILE), &cluster.label).map_err(dir_error)?;
        cluster.executor.start(launch).await
    }

    async fn adopt(&self, job_id: i64, attempt: u32, run_dir: &Path) -> Adopted {
        match self.for_run(run_dir) {
            Some(cluster) => cluster.executor.adopt(job_id, attempt, run_dir).await,
            // A cluster no longer configured: its run cannot be followed; it is requeued.
            None => Adopted::NeverStarted,
        }
    }

    async fn stop(&self, run_dir: &Path, grace: Duration) {
        if let Some(cluster) = self.for_run(run_dir) {
            cluster.executor.stop(run_dir, grace).await;
        }
    }

    async fn shutdown(&self) {
        for cluster in &self.clusters {
            cluster.executor.shutdown().await;
        }
    }

    fn nothing_queued(&self) {
        for cluster in &self.clusters {
            cluster.executor.nothing_queued();
        }
    }
}
