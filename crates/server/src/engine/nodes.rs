//! Node failures and repairs, driven through `Scheduler::on_node_failure` and `on_node_repair`.

use super::{Engine, EngineError};

impl Engine {
    /// Marks a pool's node failed: its runs are stopped and requeued by the scheduler (they
    /// restart from their checkpoint elsewhere or when the node is back), and nothing is placed
    /// on it until `node_up`. Returns the jobs that were stopped.
    pub async fn node_down(&mut self, pool: &str) -> Result<Vec<i64>, EngineError> {
        let index = self.pool_index(pool)?;
        if !self.pools[index].up {
            return Ok(Vec::new());
        }
        // Every node of the pool (a local pool is one node).
        let mut killed = Vec::new();
        let now_s = self.now_s() as u64;
        for node in self.pool_nodes(index) {
            killed.extend(
                self.scheduler
                    .on_node_failure(node, now_s)
                    .map_err(|e| EngineError::WrongState(e.to_string()))?,
            );
        }
        self.pools[index].up = false;
        let mut stopped = Vec::new();
        for sched_id in killed {
            let Some(&id) = self.by_sched.get(&sched_id.0) else {
                continue;
            };
            self.preempt_run(id, format!("node {pool} failed")).await?;
            stopped.push(id);
        }
        self.schedule_pass().await?;
        Ok(stopped)
    }

    /// Returns a failed node to service.
    pub async fn node_up(&mut self, pool: &str) -> Result<(), EngineError> {
        let index = self.pool_index(pool)?;
        let now_s = self.now_s() as u64;
        for node in self.pool_nodes(index) {
            self.scheduler
                .on_node_repair(node, now_s)
                .map_err(|e| EngineError::WrongState(e.to_string()))?;
        }
        self.pools[index].up = true;
        self.schedule_pass().await
    }

    /// The scheduler's ids of a pool's nodes.
    fn pool_nodes(&self, index: usize) -> Vec<suanli_sched::NodeId> {
        let pool = &self.pools[index];
        let count = pool.nodes.len().max(1) as u32;
        (pool.first_node..pool.first_node + count)
            .map(suanli_sched::NodeId)
            .collect()
    }

    fn pool_index(&self, pool: &str) -> Result<usize, EngineError> {
        self.pools
            .iter()
            .position(|p| p.name == pool || p.accelerator == pool)
            .ok_or_else(|| {
                let known: Vec<&str> = self.pools.iter().map(|p| p.name.as_str()).collect();
                EngineError::NotFound(format!("pool `{pool}` (known: {})", known.join(", ")))
            })
    }
}
