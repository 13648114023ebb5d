//! Launch-ready plans: a chosen layout written in the terms of Megatron-LM, NeMo 2, torchtitan
//! or DeepSpeed, plus the srun/torchrun line that starts it on the plan's node count.
//!
//! Flag and key names follow the projects' own argument parsers at the versions named in
//! `crates/perf/data/export/` (Megatron-LM core_v0.14.0, NeMo v2.4.0, torchtitan v0.2.2,
//! DeepSpeed v0.16.4); the tests check every emitted name against those lists.

mod deepspeed;
mod megatron;
mod nemo;
mod torchtitan;

use crate::layout::Layout;
use std::fmt;
use std::str::FromStr;
use suanli_catalog::{Model, Precision};

/// A training framework a plan can be exported to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    /// Megatron-LM `pretrain_gpt.py` command-line flags.
    Megatron,
    /// NeMo 2 `nemo llm pretrain` recipe overrides.
    Nemo,
    /// torchtitan TOML job config.
    Torchtitan,
    /// DeepSpeed JSON config.
    Deepspeed,
}

impl Framework {
    /// Every framework, in help order.
    pub const ALL: [Framework; 4] = [
        Framework::Megatron,
        Framework::Nemo,
        Framework::Torchtitan,
        Framework::Deepspeed,
    ];

    /// Name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Framework::Megatron => "megatron",
            Framework::Nemo => "nemo",
            Framework::Torchtitan => "torchtitan",
            Framework::Deepspeed => "deepspeed",
        }
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Framework {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_lowercase();
        Framework::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not an export format; use megatron, nemo, torchtitan or deepspeed"
                )
            })
    }
}

/// What an export needs: the model, the chosen layout and the run's shape.
#[derive(Clone, Copy, Debug)]
pub struct ExportInput<'a> {
    pub model: &'a Model,
    pub layout: &'a Layout,
    pub precision: Precision,
    pub seq_len: u64,
    /// Sequences per optimizer step.
    pub global_batch: u64,
    /// Accelerators in the job.
    pub count: u64,
    /// Accelerators per node.
    pub per_node: u32,
}

impl ExportInput<'_> {
    /// Nodes the job spans.
    pub fn nodes(&self) -> u64 {
        self.count.div_ceil(self.per_node.max(1) as u64)
    }

    /// Processes (one per accelerator) on each node.
    pub fn procs_per_node(&self) -> u64 {
        self.count.min(self.per_node.max(1) as u64)
    }

    /// The srun line that starts one torchrun per node, and the torchrun line itself.
    fn torchrun(&self, program: &str) -> Vec<String> {
        vec![
            format!(
                "srun --nodes={} --ntasks-per-node=1 --gpus-per-node={} \\",
                self.nodes(),
                self.procs_per_node()
            ),
            format!(
                "  torchrun --nnodes={} --nproc-per-node={} --rdzv-backend=c10d \
                 --rdzv-endpoint=$MASTER_ADDR:29500 {program}",
                self.nodes(),
                self.procs_per_node()
            ),
        ]
    }
}

/// A plan in one framework's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    pub framework: Framework,
    /// The framework's own configuration text: flags, overrides, TOML or JSON.
    pub config: String,
    /// Shell lines that start the job on the plan's nodes.
    pub launch: Vec<String>,
    /// What the format cannot say and must be set elsewhere (model code, launcher).
    pub notes: Vec<String>,
}

/// A layout the framework cannot express.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExportError {
    #[error(
        "{framework} cannot split {layers} layers over pp={pp} x vpp={vpp} chunks: it needs \
         layers divisible by pp*vpp; choose vpp so that pp*vpp divides {layers}"
    )]
    UnevenChunks {
        framework: Framework,
        layers: u32,
        pp: u32,
        vpp: u32,
    },
    #[error(
        "{framework} has no {precision} training mode; plan with --precision bf16, fp16 or fp8"
    )]
    Precision {
        framework: Framework,
        precision: Precision,
    },
    #[error(
        "{framework} has no flag for CPU activation offloading; export with nemo \
         (model.config.cpu_offloading) or plan with offload=none or offload=optimizer"
    )]
    ActivationOffload { framework: Framework },
}

/// Writes the plan in `framework`'s terms.
pub fn export(framework: Framework, input: &ExportInput) -> Result<Export, ExportError> {
    if input.layout.offload_activations && framework != Framework::Nemo {
        return Err(ExportError::ActivationOffload { framework });
    }
    match framework {
        Framework::Megatron => megatron::export(input),
        Framework::Nemo => nemo::export(input),
        Framework::Torchtitan => torchtitan::export(input),
        Framework::Deepspeed => deepspeed::export(input),
    }
}

/// Layers in each pipeline chunk when pp*vpp chunks divide the model evenly.
fn layers_per_chunk(framework: Framework, input: &ExportInput) -> Result<u32, ExportError> {
    let layout = input.layout;
    let chunks = layout.pp * layout.vpp;
    if !input.model.layers.is_multiple_of(chunks) {
        return Err(ExportError::UnevenChunks {
            framework,
            layers: input.model.layers,
            pp: layout.pp,
            vpp: layout.vpp,
        });
    }
    Ok(input.model.layers / chunks)
}

#[cfg(test)]
mod tests;
