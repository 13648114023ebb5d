//! Cluster presets for the clusters behind the shipped traces, and [`load_cluster`], which takes
//! either a preset name or a cluster file (TOML, see [`cluster_file`], or a node-list CSV).
//!
//! | preset | accelerators | source |
//! |---|---|---|
//! | `gavel-36-36-36` | 36 V100 + 36 P100 + 36 K80 in 4-GPU servers | Gavel OSDI'20 simulations |
//! | `gavel-<v100>-<p100>-<k80>` | any multiple of 4 of each | Gavel `cluster_specs*.json` |
//! | `alibaba-2023` | 6,212 GPUs, 7 models, 1,213 GPU nodes | `openb_node_list_gpu_node.csv` |
//! | `alibaba-spot-2026` | 10,412 GPUs, 6 models, 4,278 nodes | `node_info_df.csv` |
//! | `tiresias-n32g4` ... | Tiresias simulator cluster specs | `tiresias/*.csv` |
//!
//! Topology defaults (documented in docs/traces.md): [`DEFAULT_NODES_PER_LEAF`] nodes under a
//! leaf switch and [`DEFAULT_LEAVES_PER_POD`] leaves under a pod, unless the source says
//! otherwise (the Tiresias specs give nodes per switch).

pub mod cluster_file;
mod node_lists;

use crate::workload::{ClusterSpec, PoolSpec};
use std::path::{Path, PathBuf};

pub use cluster_file::{parse_cluster_toml, to_cluster_toml};
pub use node_lists::{alibaba_2023_nodes, alibaba_spot_2026_nodes};

/// Nodes under one leaf switch when the source does not say (a 64-port leaf: 32 down, 32 up).
pub const DEFAULT_NODES_PER_LEAF: u32 = 32;
/// Leaf switches under one pod (spine group) when the source does not say.
pub const DEFAULT_LEAVES_PER_POD: u32 = 8;
/// GPUs per server in the Gavel paper's simulated and physical clusters.
pub const GAVEL_GPUS_PER_SERVER: u32 = 4;

/// The named presets, as listed in help and error messages.
pub const PRESET_NAMES: [&str; 9] = [
    "gavel-36-36-36",
    "gavel-300-300-300",
    "gavel-500-0-0",
    "alibaba-2023",
    "alibaba-spot-2026",
    "tiresias-n16g4",
    "tiresias-n32g4",
    "tiresias-n160g8",
    "tiresias-n256g8",
];

/// What can go wrong loading a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No preset has this name.
    #[error("unknown cluster preset {name:?}; presets: {known}")]
    UnknownPreset { name: String, known: String },
    /// No such file, and no preset of that name.
    #[error("{name:?} is neither a cluster file nor a preset; presets: {known}")]
    NotFound { name: String, known: String },
    /// The file exists but cannot be read.
    #[error("cannot read cluster file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file or preset parameters are not a valid cluster.
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    /// A node-list CSV has a bad row.
    #[error(transparent)]
    NodeList(#[from] crate::trace::TraceError),
}

/// The cluster of a preset name (see [`PRESET_NAMES`]; `gavel-V-P-K` takes any multiples of 4).
pub fn preset(name: &str) -> Result<ClusterSpec, ClusterError> {
    let unknown = || ClusterError::UnknownPreset {
        name: name.to_string(),
        known: preset_list(),
    };
    match name {
        "alibaba-2023" => Ok(alibaba_2023_nodes()?.into_cluster(name)),
        "alibaba-spot-2026" => Ok(alibaba_spot_2026_nodes()?.into_cluster(name)),
        "tiresias-n16g4" => tiresias(name, TIRESIAS_N16G4, "cluster_spec.csv"),
        "tiresias-n32g4" => tiresias(name, TIRESIAS_N32G4, "n32g4.csv"),
        "tiresias-n160g8" => tiresias(name, TIRESIAS_N160G8, "n160g8.csv"),
        "tiresias-n256g8" => tiresias(name, TIRESIAS_N256G8, "n256g8.csv"),
        _ => {
            let counts = name.strip_prefix("gavel-").ok_or_else(unknown)?;
            let counts: Vec<u32> = counts
                .split('-')
                .map(|count| count.parse().map_err(|_| unknown()))
                .collect::<Result<_, _>>()?;
            match counts[..] {
                [v100, p100, k80] => gavel(name, v100, p100, k80),
                _ => Err(unknown()),
            }
        }
    }
}

/// A cluster from a file path (`.toml`, or an Alibaba node-list `.csv`) or, when no such file
/// exists, a preset name.
pub fn load_cluster(path_or_preset: &str) -> Result<ClusterSpec, ClusterError> {
    let path = Path::new(path_or_preset);
    if !path.is_file() {
        return match preset(path_or_preset) {
            Ok(cluster) => Ok(cluster),
            Err(ClusterError::UnknownPreset { .. }) => Err(ClusterError::NotFound {
                name: path_or_preset.to_string(),
                known: preset_list(),
            }),
            Err(other) => Err(other),
        };
    }
    let text = std::fs::read_to_string(path).map_err(|source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("cluster");
    if path.extension().is_some_and(|ext| ext == "csv") {
        let nodes = node_lists::parse_node_list(&text, path_or_preset)?;
        return Ok(nodes.into_cluster(stem));
    }
    parse_cluster_toml(&text, path_or_preset, stem)
}

fn preset_list() -> String {
    format!("{} (or gavel-<v100>-<p100>-<k80>)", PRESET_NAMES.join(", "))
}

/// Gavel's 4-GPU servers, one pool per type; a count of 0 gives no pool.
fn gavel(name: &str, v100: u32, p100: u32, k80: u32) -> Result<ClusterSpec, ClusterError> {
    let mut pools = Vec::new();
    for (accelerator, count) in [("v100", v100), ("p100", p100), ("k80", k80)] {
        if !count.is_multiple_of(GAVEL_GPUS_PER_SERVER) {
            return Err(ClusterError::Invalid {
                file: name.to_string(),
                message: format!(
                    "{count} {accelerator} is not a multiple of {GAVEL_GPUS_PER_SERVER} \
                     (Gavel's servers hold {GAVEL_GPUS_PER_SERVER} GPUs)"
                ),
            });
        }
        if count > 0 {
            pools.push(pool(
                accelerator,
                accelerator,
                count / GAVEL_GPUS_PER_SERVER,
                GAVEL_GPUS_PER_SERVER,
            ));
        }
    }
    if pools.is_empty() {
        return Err(ClusterError::Invalid {
            file: name.to_string(),
            message: "a cluster needs at least one GPU".to_string(),
        });
    }
    Ok(ClusterSpec {
        name: name.to_string(),
        pools,
    })
}

const TIRESIAS_N16G4: &str = include_str!("../../data/tiresias/cluster_spec.csv");
const TIRESIAS_N32G4: &str = include_str!("../../data/tiresias/n32g4.csv");
const TIRESIAS_N160G8: &str = include_str!("../../data/tiresias/n160g8.csv");
const TIRESIAS_N256G8: &str = include_str!("../../data/tiresias/n256g8.csv");

/// A Tiresias spec: `num_switch` leaves (all in one pod) of `num_node_p_switch` nodes of
/// `num_gpu_p_node` GPUs. The files name no GPU model, so the type is [`TIRESIAS_ACCELERATOR`].
fn tiresias(name: &str, spec_csv: &str, file: &str) -> Result<ClusterSpec, ClusterError> {
    Ok(node_lists::parse_node_list(spec_csv, file)?.into_cluster(name))
}

/// Accelerator type of the Tiresias presets, whose specs name no GPU model.
pub const TIRESIAS_ACCELERATOR: &str = "gpu";

/// A pool with the default topology.
fn pool(name: &str, accelerator: &str, nodes: u32, per_node: u32) -> PoolSpec {
    PoolSpec {
        name: name.to_string(),
        accelerator: accelerator.to_string(),
        nodes,
        accelerators_per_node: per_node,
        nodes_per_leaf: DEFAULT_NODES_PER_LEAF,
        leaves_per_pod: DEFAULT_LEAVES_PER_POD,
    }
}

/// Accelerators in a cluster.
pub fn total_accelerators(cluster: &ClusterSpec) -> u64 {
    cluster
        .pools
        .iter()
        .map(|p| u64::from(p.nodes) * u64::from(p.accelerators_per_node))
        .sum()
}
