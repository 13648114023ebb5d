//! Cluster state: pools of identical nodes under leaf switches and pods, the free accelerators
//! on each node, and which nodes are up. Placement lives in `placement.rs`.
//!
//! Every count the scheduler asks for per event is O(1) or O(log nodes): free accelerators per
//! pool, per leaf and per pod are kept up to date, and the up nodes of a pool with free
//! accelerators are indexed by free count (for best-fit) and histogrammed (for the minimum number
//! of nodes a gang needs).

use crate::free_index::FreeIndex;
use serde::{Deserialize, Serialize};

use crate::SchedError;

/// Index of a node in the cluster (dense, pool by pool in configuration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// Index of a pool in the cluster (configuration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PoolId(pub u32);

/// One pool of identical nodes, as configured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolConfig {
    pub name: String,
    /// Accelerator type id; a job's work names the types it can run on.
    pub accelerator: String,
    pub nodes: u32,
    pub accelerators_per_node: u32,
    /// Nodes under one leaf switch.
    pub nodes_per_leaf: u32,
    /// Leaf switches under one pod (spine) switch.
    pub leaves_per_pod: u32,
}

/// A node: `capacity` accelerators of its pool's type in one scale-up domain.
#[derive(Clone, Debug)]
pub struct Node {
    pub pool: PoolId,
    /// Global leaf switch index.
    pub leaf: u32,
    /// Global pod index.
    pub pod: u32,
    pub capacity: u32,
    pub free: u32,
    pub up: bool,
}

/// A pool with its running totals over up nodes.
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: String,
    pub accelerator: String,
    pub accelerators_per_node: u32,
    pub first_node: u32,
    pub node_count: u32,
    pub first_leaf: u32,
    pub leaf_count: u32,
    pub first_pod: u32,
    pub pod_count: u32,
    /// Free accelerators on up nodes.
    pub free: u32,
    /// Accelerators on up nodes.
    pub up_capacity: u32,
    /// Up nodes with free > 0, by free count (best-fit lookups).
    pub(crate) by_free: FreeIndex,
    /// `free_histogram[f]` = number of up nodes with exactly `f` free accelerators.
    pub(crate) free_histogram: Vec<u32>,
}

/// A leaf switch (or pod): the nodes under it and their free accelerators (up nodes only).
#[derive(Clone, Debug)]
pub struct Domain {
    pub first_node: u32,
    pub node_count: u32,
    pub free: u32,
}

/// The whole cluster.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub pools: Vec<Pool>,
    pub nodes: Vec<Node>,
    pub leaves: Vec<Domain>,
    pub pods: Vec<Domain>,
    /// Per leaf switch, the number of up nodes with each free count: leaf `l`'s count of nodes
    /// with `f` free is `leaf_free_histogram[l * histogram_stride + f]`. Lets placement rank a
    /// leaf's plan without visiting its nodes.
    pub(crate) leaf_free_histogram: Vec<u32>,
    /// Largest accelerators per node over the pools, plus one.
    pub(crate) histogram_stride: u32,
}

impl Cluster {
    /// Builds the cluster; every count must be positive.
    pub fn new(pools: &[PoolConfig]) -> Result<Self, SchedError> {
        if pools.is_empty() {
            return Err(SchedError::InvalidCluster(
                "a cluster needs at least one pool".into(),
            ));
        }
        let histogram_stride = pools
            .iter()
            .map(|p| p.accelerators_per_node)
            .max()
            .unwrap_or(0)
            + 1;
        let mut cluster = Cluster {
            pools: Vec::new(),
            nodes: Vec::new(),
            leaves: Vec::new(),
            pods: Vec::new(),
            leaf_free_histogram: Vec::new(),
            histogram_stride,
        };
        for (pool_index, config) in pools.iter().enumerate() {
            check_pool(config)?;
            cluster.add_pool(PoolId(pool_index as u32), config);
        }
        Ok(cluster)
    }

    /// Appends pool `pool`'s nodes, leaves and pods (all up and free) and the pool itself.
    fn add_pool(&mut self, pool: PoolId, config: &PoolConfig) {
        let histogram_stride = self.histogram_stride;
        let per_node = config.accelerators_per_node;
        let first_node = self.nodes.len() as u32;
        let first_leaf = self.leaves.len() as u32;
        let first_pod = self.pods.len() as u32;
        let nodes_per_pod = config.nodes_per_leaf * config.leaves_per_pod;
        for local in 0..config.nodes {
            let leaf = first_leaf + local / config.nodes_per_leaf;
            let pod = first_pod + local / nodes_per_pod;
            if local % config.nodes_per_leaf == 0 {
                self.leaves.push(Domain {
                    first_node: first_node + local,
                    node_count: 0,
                    free: 0,
                });
            }
            if local % nodes_per_pod == 0 {
                self.pods.push(Domain {
                    first_node: first_node + local,
                    node_count: 0,
                    free: 0,
                });
            }
            self.leaves[leaf as usize].node_count += 1;
            self.leaves[leaf as usize].free += per_node;
            let slot = (leaf * histogram_stride + per_node) as usize;
            if self.leaf_free_histogram.len() <= slot {
                self.leaf_free_histogram
                    .resize(((leaf + 1) * histogram_stride) as usize, 0);
            }
            self.leaf_free_histogram[slot] += 1;
            self.pods[pod as usize].node_count += 1;
            self.pods[pod as usize].free += per_node;
            self.nodes.push(Node {
                pool,
                leaf,
                pod,
                capacity: per_node,
                free: per_node,
                up: true,
            });
        }
        let mut free_histogram = vec![0; per_node as usize + 1];
        free_histogram[per_node as usize] = config.nodes;
        self.pools.push(Pool {
            name: config.name.clone(),
            accelerator: config.accelerator.clone(),
            accelerators_per_node: per_node,
            first_node,
            node_count: config.nodes,
            first_leaf,
            leaf_count: self.leaves.len() as u32 - first_leaf,
            first_pod,
            pod_count: self.pods.len() as u32 - first_pod,
            free: per_node * config.nodes,
            up_capacity: per_node * config.nodes,
            by_free: {
                let mut index = FreeIndex::new(first_node, config.nodes, per_node);
                for node in first_node..first_node + config.nodes {
                    index.insert(per_node, node);
                }
                index
            },
            free_histogram,
        });
    }

    /// Total accelerators, up or down.
    pub fn total_accelerators(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.capacity)).sum()
    }

    /// Accelerators on up nodes.
    pub fn up_accelerators(&self) -> u64 {
        self.pools.iter().map(|p| u64::from(p.up_capacity)).sum()
    }

    /// Free accelerators on up nodes.
    pub fn free_accelerators(&self) -> u64 {
        self.pools.iter().map(|p| u64::from(p.free)).sum()
    }

    /// The node, or an error naming the valid range.
    pub fn node(&self, node: NodeId) -> Result<&Node, SchedError> {
        self.nodes
            .get(node.0 as usize)
            .ok_or(SchedError::UnknownNode {
                node: node.0,
                nodes: self.nodes.len() as u32,
            })
    }

    fn unindex(&mut self, node: u32) {
        let n = &self.nodes[node as usize];
        if !n.up {
            return;
        }
        let (free, pool, leaf, pod) = (n.free, n.pool.0 as usize, n.leaf as usize, n.pod as usize);
        let p = &mut self.pools[pool];
        p.free -= free;
        p.free_histogram[free as usize] -= 1;
        if free > 0 {
            p.by_free.remove(free, node);
        }
        self.leaves[leaf].free -= free;
        self.leaf_free_histogram[leaf * self.histogram_stride as usize + free as usize] -= 1;
        self.pods[pod].free -= free;
    }

    fn index(&mut self, node: u32) {
        let n = &self.nodes[node as usize];
        if !n.up {
            return;
        }
        let (free, pool, leaf, pod) = (n.free, n.pool.0 as usize, n.leaf as usize, n.pod as usize);
        let p = &mut self.pools[pool];
        p.free += free;
        p.free_histogram[free as usize] += 1;
        if free > 0 {
            p.by_free.insert(free, node);
        }
        self.leaves[leaf].free += free;
        self.leaf_free_histogram[leaf * self.histogram_stride as usize + free as usize] += 1;
        self.pods[pod].free += free;
    }

    /// Takes `count` accelerators on a node.
    pub(crate) fn allocate(&mut self, node: NodeId, count: u32) {
        debug_assert!(self.nodes[node.0 as usize].up, "allocating on a down node");
        debug_assert!(
            self.nodes[node.0 as usize].free >= count,
            "allocating more than is free"
        );
        self.unindex(node.0);
        self.nodes[node.0 as usize].free -= count;
        self.index(node.0);
    }

    /// Gives back `count` accelerators on a node (up or down).
    pub(crate) fn release(&mut self, node: NodeId, count: u32) {
        self.unindex(node.0);
        let n = &mut self.nodes[node.0 as usize];
        n.free += count;
        debug_assert!(n.free <= n.capacity, "releasing more than the node holds");
        self.index(node.0);
    }

    /// Marks a node down; its free accelerators leave the totals.
    pub(crate) fn set_down(&mut self, node: NodeId) {
        self.unindex(node.0);
        let pool = self.nodes[node.0 as usize].pool.0 as usize;
        self.pools[pool].up_capacity -= self.nodes[node.0 as usize].capacity;
        self.nodes[node.0 as usize].up = false;
    }

    /// Marks a node up again.
    pub(crate) fn set_up(&mut self, node: NodeId) {
        let n = &mut self.nodes[node.0 as usize];
        n.up = true;
        let (pool, capacity) = (n.pool.0 as usize, n.capacity);
        self.pools[pool].up_capacity += capacity;
        self.index(node.0);
    }
}

/// A pool's sizes are all at least 1.
fn check_pool(config: &PoolConfig) -> Result<(), SchedError> {
    for (field, value) in [
        ("nodes", config.nodes),
        ("accelerators_per_node", config.accelerators_per_node),
        ("nodes_per_leaf", config.nodes_per_leaf),
        ("leaves_per_pod", config.leaves_per_pod),
    ] {
        if value == 0 {
            return Err(SchedError::InvalidCluster(format!(
                "pool `{}`: `{field}` is 0; it must be at least 1",
                config.name
            )));
        }
    }
    Ok(())
}
