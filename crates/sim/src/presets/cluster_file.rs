//! Cluster files in TOML: one `[[pool]]` table per pool of identical nodes.
//!
//! ```toml
//! name = "lab"                # optional; default: the file name without extension
//! nodes_per_leaf = 32         # optional default for every pool (32)
//! leaves_per_pod = 8          # optional default for every pool (8)
//!
//! [[pool]]
//! name = "h100"               # unique within the file
//! accelerator = "h100-sxm5-80gb"
//! nodes = 64
//! accelerators_per_node = 8
//! nodes_per_leaf = 16         # optional, overrides the file default
//! ```
//!
//! Unknown keys are errors, so a typo never silently falls back to a default.

use super::{ClusterError, DEFAULT_LEAVES_PER_POD, DEFAULT_NODES_PER_LEAF};
use crate::workload::{ClusterSpec, PoolSpec};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt::Write as _;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    name: Option<String>,
    nodes_per_leaf: Option<u32>,
    leaves_per_pod: Option<u32>,
    #[serde(default)]
    pool: Vec<PoolEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolEntry {
    name: String,
    accelerator: String,
    nodes: u32,
    accelerators_per_node: u32,
    nodes_per_leaf: Option<u32>,
    leaves_per_pod: Option<u32>,
}

/// Parses a cluster file; `file` names it in errors, `default_name` is used when the file has no
/// `name`.
pub fn parse_cluster_toml(
    text: &str,
    file: &str,
    default_name: &str,
) -> Result<ClusterSpec, ClusterError> {
    let invalid = |message: String| ClusterError::Invalid {
        file: file.to_string(),
        message,
    };
    let parsed: ClusterFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let file_nodes_per_leaf = parsed.nodes_per_leaf.unwrap_or(DEFAULT_NODES_PER_LEAF);
    let file_leaves_per_pod = parsed.leaves_per_pod.unwrap_or(DEFAULT_LEAVES_PER_POD);
    if parsed.pool.is_empty() {
        return Err(invalid(
            "no [[pool]] table; a cluster needs at least one pool with name, accelerator, \
             nodes and accelerators_per_node"
                .to_string(),
        ));
    }
    let accelerators: u64 = parsed
        .pool
        .iter()
        .map(|p| u64::from(p.nodes) * u64::from(p.accelerators_per_node))
        .sum();
    if accelerators > crate::limits::MAX_ACCELERATORS {
        return Err(invalid(format!(
            "the pools hold {accelerators} accelerators; at most {} are supported",
            crate::limits::MAX_ACCELERATORS
        )));
    }
    let mut names = HashSet::new();
    let mut pools = Vec::with_capacity(parsed.pool.len());
    for entry in parsed.pool {
        let pool = PoolSpec {
            nodes_per_leaf: entry.nodes_per_leaf.unwrap_or(file_nodes_per_leaf),
            leaves_per_pod: entry.leaves_per_pod.unwrap_or(file_leaves_per_pod),
            name: entry.name,
            accelerator: entry.accelerator,
            nodes: entry.nodes,
            accelerators_per_node: entry.accelerators_per_node,
        };
        if pool.name.trim().is_empty() || !names.insert(pool.name.clone()) {
            return Err(invalid(format!(
                "pool name {:?} is empty or used twice; expected a unique name per pool",
                pool.name
            )));
        }
        if pool.accelerator.trim().is_empty() {
            let pool_name = &pool.name;
            return Err(invalid(format!(
                "pool {pool_name}: accelerator is empty; expected a type id such as h100-sxm5-80gb"
            )));
        }
        for (key, value) in [
            ("nodes", pool.nodes),
            ("accelerators_per_node", pool.accelerators_per_node),
            ("nodes_per_leaf", pool.nodes_per_leaf),
            ("leaves_per_pod", pool.leaves_per_pod),
        ] {
            if value == 0 {
                let pool_name = &pool.name;
                return Err(invalid(format!(
                    "pool {pool_name}: {key} is 0, expected >= 1"
                )));
            }
        }
        pools.push(pool);
    }
    Ok(ClusterSpec {
        name: parsed.name.unwrap_or_else(|| default_name.to_string()),
        pools,
    })
}

/// Writes a cluster in the format [`parse_cluster_toml`] reads (every key explicit).
pub fn to_cluster_toml(cluster: &ClusterSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name = {}", toml_string(&cluster.name));
    for pool in &cluster.pools {
        let _ = writeln!(out, "\n[[pool]]");
        let _ = writeln!(out, "name = {}", toml_string(&pool.name));
        let _ = writeln!(out, "accelerator = {}", toml_string(&pool.accelerator));
        let _ = writeln!(out, "nodes = {}", pool.nodes);
        let _ = writeln!(
            out,
            "accelerators_per_node = {}",
            pool.accelerators_per_node
        );
        let _ = writeln!(out, "nodes_per_leaf = {}", pool.nodes_per_leaf);
        let _ = writeln!(out, "leaves_per_pod = {}", pool.leaves_per_pod);
    }
    out
}

/// A TOML basic string (serde-free, so the output key order stays as written above).
fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}
