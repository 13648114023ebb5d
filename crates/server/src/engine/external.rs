//! Pools that span several nodes (a Slurm cluster's) beside the local one, and what an external
//! engine reports: its view of a run (notes), a run's end with its reason, a node's health.

use suanli_sched::NodeId;

use super::{Engine, EngineError, PoolSlot};
use crate::devices::DeviceGroup;
use crate::slurm::{Health, SlurmEvent};
use crate::store::JobState;

/// One node of a multi-node pool, as its engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSlot {
    pub name: String,
    /// The engine's own word (`idle`, `drained`, `down*`).
    pub state: String,
    pub up: bool,
    pub reason: String,
}

/// One pool per declared accelerator type on this machine.
pub fn local_pools(devices: &[DeviceGroup], node: &str) -> Vec<PoolSlot> {
    devices
        .iter()
        .map(|group| PoolSlot {
            name: format!("local-{}", group.accelerator),
            node: node.to_string(),
            accelerator: group.accelerator.clone(),
            total: group.count,
            free: (0..group.count).collect(),
            up: true,
            executor: "local".into(),
            nodes: Vec::new(),
            per_node: group.count,
            first_node: 0,
        })
        .collect()
}

/// Numbers the pools' nodes as the scheduler does (pool by pool) and returns its pool configs.
pub(super) fn number_nodes(pools: &mut [PoolSlot]) -> Vec<suanli_sched::PoolConfig> {
    let mut next = 0;
    pools
        .iter_mut()
        .map(|p| {
            let nodes = p.nodes.len().max(1) as u32;
            p.first_node = next;
            next += nodes;
            suanli_sched::PoolConfig {
                name: p.name.clone(),
                accelerator: p.accelerator.clone(),
                nodes,
                accelerators_per_node: p.per_node.max(1),
                nodes_per_leaf: nodes,
                leaves_per_pod: 1,
            }
        })
        .collect()
}

/// Free devices on the nodes the scheduler allocated, `count` on each; any free device when a
/// node has fewer free than the scheduler believes (after a re-attach placed runs elsewhere).
pub(super) fn pick_devices(slot: &PoolSlot, allocation: &[(NodeId, u32)]) -> Vec<u32> {
    let per_node = slot.per_node.max(1);
    let mut devices = Vec::new();
    let mut short = 0;
    for &(node, count) in allocation {
        let local = node.0.saturating_sub(slot.first_node);
        let range = local * per_node..(local + 1) * per_node;
        let on_node: Vec<u32> = slot
            .free
            .range(range)
            .copied()
            .take(count as usize)
            .collect();
        short += count as usize - on_node.len();
        devices.extend(on_node);
    }
    let extra: Vec<u32> = slot
        .free
        .iter()
        .filter(|d| !devices.contains(d))
        .copied()
        .take(short)
        .collect();
    devices.extend(extra);
    devices.sort_unstable();
    devices
}

/// The node names holding `devices`: the pool's node for a local pool.
pub(super) fn node_names(slot: &PoolSlot, devices: &[u32]) -> String {
    if slot.nodes.is_empty() {
        return slot.node.clone();
    }
    let mut names: Vec<&str> = Vec::new();
    for device in devices {
        if let Some(node) = slot.nodes.get((device / slot.per_node.max(1)) as usize)
            && !names.contains(&node.name.as_str())
        {
            names.push(&node.name);
        }
    }
    names.join(",")
}

impl Engine {
    /// Applies a batch of reports with one scheduling pass at the end (a poll often reports
    /// many ends at once; a pass per end would rescan the queue for each). The batch's job
    /// writes and the pass's starts are stored in one transaction, before the pass launches.
    pub async fn on_slurm_events(&mut self, events: Vec<SlurmEvent>) -> Result<(), EngineError> {
        let owner = self.begin_deferred();
        let result = self.apply_slurm_events(events).await;
        let flushed = self.end_deferred(owner).await;
        result.and(flushed)
    }

    async fn apply_slurm_events(&mut self, events: Vec<SlurmEvent>) -> Result<(), EngineError> {
        for event in events {
            self.apply_slurm_event(event).await?;
        }
        self.schedule_pass().await
    }

    /// Applies what a Slurm cluster reported; an end is followed by a scheduling pass.
    pub async fn on_slurm_event(&mut self, event: SlurmEvent) -> Result<(), EngineError> {
        let ended = matches!(event, SlurmEvent::Ended { .. });
        self.apply_slurm_event(event).await?;
        if ended {
            self.schedule_pass().await?;
        }
        Ok(())
    }

    /// Applies one report, without a scheduling pass.
    async fn apply_slurm_event(&mut self, event: SlurmEvent) -> Result<(), EngineError> {
        match event {
            SlurmEvent::Note {
                job_id,
                attempt,
                text,
                nodes,
            } => {
                let Some(mut job) = self.active.get(&job_id).cloned() else {
                    return Ok(());
                };
                let current = job.state == JobState::Running
                    && job.run.as_ref().is_some_and(|r| r.attempt == attempt);
                if !current || job.run.as_ref().is_some_and(|r| r.cancel_requested) {
                    return Ok(());
                }
                if let (Some(nodes), Some(run)) = (nodes, job.run.as_mut()) {
                    run.node = nodes;
                }
                job.reason = text;
                self.save(job).await
            }
            SlurmEvent::Ended {
                job_id,
                attempt,
                exit_code,
                note,
            } => {
                self.finish_run(job_id, attempt, exit_code, Some(note))
                    .await
            }
            SlurmEvent::Node {
                pool,
                node,
                health,
                state,
                reason,
            } => {
                self.set_node_health(&pool, node, health, state, reason)
                    .await
            }
        }
    }

    /// A node of a multi-node pool changed health: a node that is no longer up (down, drained
    /// or draining) has its runs stopped and requeued, to restart from their checkpoints on
    /// nodes that are up; a node back up takes work again.
    async fn set_node_health(
        &mut self,
        pool: &str,
        node: usize,
        health: Health,
        state: String,
        reason: String,
    ) -> Result<(), EngineError> {
        let Some(index) = self.pools.iter().position(|p| p.name == pool) else {
            return Ok(());
        };
        let slot = &mut self.pools[index];
        let Some(entry) = slot.nodes.get_mut(node) else {
            return Ok(());
        };
        let was_up = entry.up;
        let up = health == Health::Up;
        *entry = NodeSlot {
            name: entry.name.clone(),
            state,
            up,
            reason,
        };
        let id = NodeId(slot.first_node + node as u32);
        let name = entry.name.clone();
        let now_s = self.now_s() as u64;
        if was_up && !up {
            let killed = self
                .scheduler
                .on_node_failure(id, now_s)
                .map_err(|e| EngineError::WrongState(e.to_string()))?;
            for sched_id in killed {
                if let Some(&job) = self.by_sched.get(&sched_id.0) {
                    tracing::info!(job, node = %name, "node left service; requeueing its run");
                    self.preempt_run(job, format!("node {name} of {pool} is {health:?}"))
                        .await?;
                }
            }
        } else if !was_up && up {
            self.scheduler
                .on_node_repair(id, now_s)
                .map_err(|e| EngineError::WrongState(e.to_string()))?;
        }
        self.schedule_pass().await
    }
}
