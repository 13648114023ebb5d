//! Node lists shipped with the traces, turned into pools: Alibaba PAI 2023
//! (`openb_node_list_gpu_node.csv`: `sn,cpu_milli,memory_mib,gpu,model`), Alibaba spot 2026
//! (`node_info_df.csv`: `gpu_model,gpu_capacity_num,cpu_num,node_name`) and the Tiresias cluster
//! specs (`num_switch,num_node_p_switch,num_gpu_p_node,...`).
//!
//! Nodes with the same GPU model and GPU count form one pool named `<type>-x<gpus>`; nodes
//! without GPUs are skipped and counted.

use super::{DEFAULT_LEAVES_PER_POD, DEFAULT_NODES_PER_LEAF};
use crate::trace::TraceError;
use crate::trace::alibaba::type_id;
use crate::trace::table::{Columns, Row, for_each_row};
use crate::workload::{ClusterSpec, PoolSpec};
use std::collections::BTreeMap;

const ALIBABA_2023_GPU_NODES: &str =
    include_str!("../../data/alibaba-gpu-2023/openb_node_list_gpu_node.csv");
const ALIBABA_SPOT_2026_NODES: &str = include_str!("../../data/alibaba-spot-2026/node_info_df.csv");

/// Nodes counted by (accelerator type id, GPUs per node).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeList {
    /// Nodes per (accelerator type id, GPUs per node).
    pub nodes_by_shape: BTreeMap<(String, u32), u32>,
    /// Nodes listed with no GPU.
    pub cpu_only_nodes: u32,
    /// Set by a Tiresias spec: nodes per switch and switches; `None` for node lists.
    pub topology: Option<(u32, u32)>,
}

impl NodeList {
    /// GPUs in all listed nodes.
    pub fn total_gpus(&self) -> u64 {
        let gpus = |((_, per_node), nodes): (&(String, u32), &u32)| {
            u64::from(*per_node) * u64::from(*nodes)
        };
        self.nodes_by_shape.iter().map(gpus).sum()
    }

    /// One pool per node shape, with the default topology.
    pub fn into_cluster(self, name: &str) -> ClusterSpec {
        let (nodes_per_leaf, leaves_per_pod) = self
            .topology
            .unwrap_or((DEFAULT_NODES_PER_LEAF, DEFAULT_LEAVES_PER_POD));
        let pools = self
            .nodes_by_shape
            .into_iter()
            .map(|((accelerator, per_node), nodes)| PoolSpec {
                name: format!("{accelerator}-x{per_node}"),
                accelerator,
                nodes,
                accelerators_per_node: per_node,
                nodes_per_leaf,
                leaves_per_pod,
            })
            .collect();
        ClusterSpec {
            name: name.to_string(),
            pools,
        }
    }

    fn add(&mut self, model: &str, per_node: u32) {
        if per_node == 0 {
            self.cpu_only_nodes += 1;
        } else {
            *self
                .nodes_by_shape
                .entry((type_id(model), per_node))
                .or_default() += 1;
        }
    }
}

/// The 1,213 GPU nodes (6,212 GPUs) of Alibaba PAI's 2023 cluster.
pub fn alibaba_2023_nodes() -> Result<NodeList, TraceError> {
    parse_node_list(ALIBABA_2023_GPU_NODES, "openb_node_list_gpu_node.csv")
}

/// The 4,278 nodes (10,412 GPUs) of Alibaba's 2026 spot GPU cluster.
pub fn alibaba_spot_2026_nodes() -> Result<NodeList, TraceError> {
    parse_node_list(ALIBABA_SPOT_2026_NODES, "node_info_df.csv")
}

/// Parses any of the three layouts, told apart by the header.
pub fn parse_node_list(text: &str, file: &str) -> Result<NodeList, TraceError> {
    let header = text.lines().next().unwrap_or("");
    let mut list = NodeList::default();
    if header.contains("gpu_capacity_num") {
        let columns = Columns {
            required: &["gpu_model", "gpu_capacity_num"],
            optional: &["cpu_num", "node_name"],
            reject_unknown: false,
        };
        for_each_row(text, file, &columns, |row| {
            let per_node = gpus(row, "gpu_capacity_num")?;
            list.add(&model(row, "gpu_model", per_node)?, per_node);
            Ok(())
        })?;
    } else if header.contains("num_gpu_p_node") {
        let columns = Columns {
            required: &["num_switch", "num_node_p_switch", "num_gpu_p_node"],
            optional: &["num_cpu_p_node", "mem_p_node"],
            reject_unknown: false,
        };
        for_each_row(text, file, &columns, |row| {
            let expected = "a whole number > 0";
            let switches: u32 = row.parse("num_switch", expected)?;
            let nodes_per_switch: u32 = row.parse("num_node_p_switch", expected)?;
            let per_node: u32 = row.parse("num_gpu_p_node", expected)?;
            if switches == 0 || nodes_per_switch == 0 || per_node == 0 {
                return Err(row.error("num_switch", "whole numbers > 0 in every column"));
            }
            let accelerator = (super::TIRESIAS_ACCELERATOR.to_string(), per_node);
            *list.nodes_by_shape.entry(accelerator).or_default() += switches * nodes_per_switch;
            list.topology = Some((nodes_per_switch, switches));
            Ok(())
        })?;
    } else {
        let columns = Columns {
            required: &["gpu", "model"],
            optional: &["sn", "cpu_milli", "memory_mib"],
            reject_unknown: false,
        };
        for_each_row(text, file, &columns, |row| {
            let per_node = gpus(row, "gpu")?;
            list.add(&model(row, "model", per_node)?, per_node);
            Ok(())
        })?;
    }
    Ok(list)
}

fn gpus(row: &Row<'_>, column: &str) -> Result<u32, TraceError> {
    row.parse(column, "a whole number of GPUs >= 0")
}

fn model(row: &Row<'_>, column: &str, per_node: u32) -> Result<String, TraceError> {
    let model = row.text(column);
    if per_node > 0 && (model.is_empty() || model == "nan") {
        return Err(row.error(column, "a GPU model name on a node with GPUs"));
    }
    Ok(model.to_string())
}
