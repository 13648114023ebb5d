//! Accelerator datasheet figures and the network a device sits on.

use crate::Precision;
use serde::{Deserialize, Serialize};

/// How sure we are of a row's figures (the sources are in each entry's `source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

/// Dense (not sparse) peak math rates in TFLOP/s (TOP/s for int8); `None` = not supported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DenseTflops {
    pub fp32: Option<f64>,
    pub bf16: Option<f64>,
    pub fp16: Option<f64>,
    pub fp8: Option<f64>,
    pub int8: Option<f64>,
    pub int4: Option<f64>,
    pub fp4: Option<f64>,
}

/// The scale-up domain (NVLink, Infinity Fabric, HCCS, ICI) a device belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleUp {
    /// Link name, e.g. "NVLink4".
    pub link: String,
    /// Devices that reach each other at full scale-up bandwidth (8 on an HGX board).
    pub domain_size: u32,
    /// Per-device scale-up bandwidth, both directions added, in GB/s (the datasheet figure).
    pub bandwidth_gb_per_s_bidir: f64,
    /// Dimensions of the torus the scale-up links form across a slice (TPU v4/v5p ICI 3, v5e/v6e
    /// ICI and Trainium NeuronLink 2); absent for a switch (NVSwitch, UB) or a full mesh
    /// (Infinity Fabric, Gaudi RoCE), where every device reaches every other in one hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torus_dims: Option<u32>,
    /// Largest slice the scale-up links join, devices (TPU v5p: 8960); a job up to this size
    /// runs inside one scale-up domain, larger jobs join slices over the scale-out network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_slice: Option<u32>,
    /// Whether the domain is a full mesh of point-to-point links, the bandwidth split evenly
    /// over one link group per peer (MI300X-class Infinity Fabric boards: 7 links per GPU;
    /// Gaudi: 21 RoCE ports, 3 per peer; Atlas 800T A2: 7 HCCS links): a group of k of the
    /// domain's n devices drives only the k - 1 link groups to its peers. False for a switch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_mesh: bool,
}

impl ScaleUp {
    /// Bandwidth in one direction per device, GB/s: what a ring step can push.
    pub fn bandwidth_gb_per_s_unidir(&self) -> f64 {
        self.bandwidth_gb_per_s_bidir / 2.0
    }
}

/// One accelerator type with its datasheet figures and their source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accelerator {
    /// Catalog id, lower-case kebab: `h100-sxm5-80gb`.
    pub id: String,
    /// Other names that resolve to this accelerator (`h100`, `H100-SXM5-80GB`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Display name.
    pub name: String,
    pub vendor: String,
    pub form_factor: String,
    pub memory_type: String,
    /// Device memory in GB (10^9 bytes).
    pub memory_gb: f64,
    /// Device memory bandwidth in TB/s (10^12 bytes/s).
    pub memory_bandwidth_tb_per_s: f64,
    /// Dense peak rates per precision.
    pub dense_tflops: DenseTflops,
    pub scaleup: ScaleUp,
    /// Default scale-out (inter-node) bandwidth per device, one direction, GB/s.
    pub scaleout_gb_per_s: f64,
    /// Devices per node in the usual server (8 for HGX).
    pub default_per_node: u32,
    /// Thermal design power in watts, if published.
    pub tdp_w: Option<f64>,
    pub confidence: Confidence,
    /// Where the datasheet figures come from.
    pub source: String,
    /// Where the scale-up domain, node and scale-out figures come from.
    #[serde(default)]
    pub network_source: String,
    #[serde(default)]
    pub notes: String,
}

impl Accelerator {
    /// Dense peak for a math precision in FLOP/s, if the device supports it.
    pub fn peak_flops_per_s(&self, precision: Precision) -> Option<f64> {
        let t = &self.dense_tflops;
        let tflops = match precision {
            Precision::Fp32 => t.fp32,
            Precision::Bf16 => t.bf16.or(t.fp16),
            Precision::Fp16 => t.fp16.or(t.bf16),
            Precision::Fp8 => t.fp8,
            Precision::Int8 => t.int8,
            Precision::Int4 => t.int4,
            Precision::Fp4 => t.fp4,
        };
        tflops.map(|x| x * 1e12)
    }

    /// Device memory in bytes.
    pub fn memory_bytes(&self) -> f64 {
        self.memory_gb * 1e9
    }

    /// Memory bandwidth in bytes/s.
    pub fn memory_bandwidth_bytes_per_s(&self) -> f64 {
        self.memory_bandwidth_tb_per_s * 1e12
    }
}

/// A server shape: how many accelerators share a node and its NICs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeShape {
    /// Catalog id: `dgx-h100`.
    pub id: String,
    /// Other names that resolve to this node shape (`p4d.24xlarge`).
    #[serde(default)]
    pub aliases: Vec<String>,
    pub name: String,
    /// Accelerator catalog id.
    pub accelerator: String,
    pub accelerators_per_node: u32,
    /// Scale-out NIC bandwidth per accelerator, one direction, GB/s (400 Gb/s NDR = 50).
    pub nic_gb_per_s_per_accelerator: f64,
    pub source: String,
    /// What is inferred rather than published, and other caveats.
    #[serde(default)]
    pub notes: String,
}
