//! A parallel layout (tp, pp, dp, cp, ep, ZeRO stage, micro-batch, interleaving, recompute), how
//! a user writes it, and whether it divides a model.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use suanli_catalog::Model;

pub use crate::layout_error::LayoutError;

/// Which activations the backward pass recomputes instead of storing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recompute {
    /// Store everything.
    None,
    /// Recompute the attention core only (Korthikanti et al. 2022, section 4.2).
    Selective,
    /// Store each layer's input only and recompute the whole forward pass.
    Full,
}

impl Recompute {
    /// Every mode.
    pub const ALL: [Recompute; 3] = [Recompute::None, Recompute::Selective, Recompute::Full];

    /// Name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Recompute::None => "none",
            Recompute::Selective => "selective",
            Recompute::Full => "full",
        }
    }
}

impl FromStr for Recompute {
    type Err = LayoutError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Recompute::ALL
            .into_iter()
            .find(|r| r.name() == text.trim().to_ascii_lowercase())
            .ok_or_else(|| LayoutError::UnknownRecompute { text: text.into() })
    }
}

/// How a training job is split over its accelerators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Layout {
    /// Tensor parallel size (Megatron-LM, Shoeybi et al. 2019).
    pub tp: u32,
    /// Pipeline parallel stages.
    pub pp: u32,
    /// Data parallel replicas.
    pub dp: u32,
    /// Context (sequence-dimension) parallel size.
    pub cp: u32,
    /// Expert parallel size; experts are spread over ep ranks taken from dp x cp.
    pub ep: u32,
    /// ZeRO stage 0..=3 (Rajbhandari et al. 2020), over the data-parallel group.
    pub zero: u8,
    /// Sequences per micro-batch.
    pub micro_batch: u32,
    /// Interleaved pipeline chunks per device (1 = plain 1F1B).
    pub vpp: u32,
    pub recompute: Recompute,
    /// With `recompute=full`, how many layers of each device's share recompute; the others
    /// store every activation (Megatron-LM `--recompute-method block --recompute-num-layers N`,
    /// NeMo `activations_checkpoint_method: block`). `None` = every layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recompute_layers: Option<u32>,
    /// Sequence parallelism in the tensor-parallel group (Korthikanti et al. 2022).
    pub sequence_parallel: bool,
    /// How the axes map onto the network: ranks are numbered tp fastest, then cp, then dp,
    /// then pp (Megatron-Core's default, `map=dp-inner`), or with pipeline stages inside data
    /// replicas (`map=pp-inner`: tp, cp, pp, dp), which keeps a pipeline's sends inside a
    /// scale-up domain (an NVL72 rack, a TPU slice) and puts the data-parallel traffic on the
    /// scale-out links.
    #[serde(default)]
    pub pp_inner: bool,
    /// Adam's fp32 master weights and moments live in host memory and the update runs on the
    /// CPU (ZeRO-Offload, Ren et al. 2021; Megatron-Core `--optimizer-cpu-offload`).
    #[serde(default)]
    pub offload_optimizer: bool,
    /// Each layer's saved activations are copied to host memory after its forward and back
    /// before its backward (Megatron-Core `--cpu-offloading`, Transformer Engine's CPU offload).
    #[serde(default)]
    pub offload_activations: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            tp: 1,
            pp: 1,
            dp: 1,
            cp: 1,
            ep: 1,
            zero: 1,
            micro_batch: 1,
            vpp: 1,
            recompute: Recompute::Selective,
            recompute_layers: None,
            pp_inner: false,
            sequence_parallel: false,
            offload_optimizer: false,
            offload_activations: false,
        }
    }
}

impl Layout {
    /// Accelerators the layout occupies.
    pub fn devices(&self) -> u64 {
        self.tp as u64 * self.pp as u64 * self.dp as u64 * self.cp as u64
    }

    /// Checks that the layout divides the model, the cluster and the batch; the error says
    /// what does not divide and what would.
    pub fn check(
        &self,
        model: &Model,
        devices: u64,
        seq_len: u64,
        global_batch: u64,
    ) -> Result<(), LayoutError> {
        if [
            self.tp,
            self.pp,
            self.dp,
            self.cp,
            self.ep,
            self.micro_batch,
            self.vpp,
        ]
        .contains(&0)
        {
            return Err(LayoutError::ZeroSize);
        }
        if self.zero > 3 {
            return Err(LayoutError::ZeroStage { zero: self.zero });
        }
        if self.devices() != devices {
            return Err(LayoutError::DeviceCount {
                tp: self.tp,
                pp: self.pp,
                dp: self.dp,
                cp: self.cp,
                product: self.devices(),
                devices,
            });
        }
        self.check_model(model)?;
        if !seq_len.is_multiple_of(2 * self.cp as u64) && self.cp > 1 {
            return Err(LayoutError::ContextSeqLen {
                cp: self.cp,
                seq_len,
            });
        }
        self.check_experts(model)?;
        let per_step = self.dp as u64 * self.micro_batch as u64;
        if !global_batch.is_multiple_of(per_step) {
            return Err(LayoutError::GlobalBatch {
                global_batch,
                dp: self.dp,
                micro_batch: self.micro_batch,
                per_step,
            });
        }
        if self.vpp > 1
            && !self
                .micro_batches(global_batch)
                .is_multiple_of(self.pp as u64)
        {
            return Err(LayoutError::InterleavingMicroBatches {
                vpp: self.vpp,
                micro_batches: self.micro_batches(global_batch),
                pp: self.pp,
            });
        }
        Ok(())
    }

    /// The rules that tie tp, pp, vpp, recompute and offload to the model's heads and layers.
    fn check_model(&self, model: &Model) -> Result<(), LayoutError> {
        if !model.heads.is_multiple_of(self.tp) {
            return Err(LayoutError::TpHeads {
                tp: self.tp,
                heads: model.heads,
            });
        }
        if self.tp > model.kv_heads && !self.tp.is_multiple_of(model.kv_heads) {
            return Err(LayoutError::TpKvSplit {
                tp: self.tp,
                kv_heads: model.kv_heads,
            });
        }
        if self.tp <= model.kv_heads && !model.kv_heads.is_multiple_of(self.tp) {
            return Err(LayoutError::TpKvHeads {
                tp: self.tp,
                kv_heads: model.kv_heads,
            });
        }
        let chunks = self.pp * self.vpp;
        if chunks > model.layers {
            return Err(LayoutError::TooManyChunks {
                pp: self.pp,
                vpp: self.vpp,
                chunks,
                layers: model.layers,
            });
        }
        if let Some(layers) = self.recompute_layers {
            let here = self.layers_per_device(model);
            if self.recompute != Recompute::Full {
                return Err(LayoutError::RecomputeLayersNeedFull { layers });
            }
            if layers == 0 || layers > here {
                return Err(LayoutError::RecomputeLayersRange { layers, here });
            }
        }
        if self.offload_activations && self.pp > 1 {
            return Err(LayoutError::OffloadActivationsPipeline);
        }
        if self.vpp > 1 && self.pp == 1 {
            return Err(LayoutError::VppNeedsPipeline);
        }
        Ok(())
    }

    /// Expert parallelism: ep divides the experts and the dp x cp group it is drawn from.
    fn check_experts(&self, model: &Model) -> Result<(), LayoutError> {
        match &model.moe {
            Some(moe) => {
                if moe.experts % self.ep != 0 {
                    return Err(LayoutError::EpExperts {
                        ep: self.ep,
                        experts: moe.experts,
                    });
                }
                if !(self.dp * self.cp).is_multiple_of(self.ep) {
                    return Err(LayoutError::EpGroup {
                        ep: self.ep,
                        dp_cp: self.dp * self.cp,
                    });
                }
                Ok(())
            }
            None if self.ep > 1 => Err(LayoutError::EpDense { ep: self.ep }),
            None => Ok(()),
        }
    }

    /// Layers on the most loaded device: stages need not be equal (Llama 3 405B ran 126 layers
    /// on 16 stages), so the slowest chunk holds ceil(layers / (pp * vpp)).
    pub fn layers_per_device(&self, model: &Model) -> u32 {
        self.vpp * model.layers.div_ceil(self.pp * self.vpp)
    }

    /// Share of each device's layers whose whole forward pass is recomputed: 1 under
    /// `recompute=full`, `recompute_layers / layers_per_device` when only a block of layers
    /// recomputes, 0 otherwise.
    pub fn full_recompute_share(&self, model: &Model) -> f64 {
        match (self.recompute, self.recompute_layers) {
            (Recompute::Full, None) => 1.0,
            (Recompute::Full, Some(layers)) => {
                let here = self.layers_per_device(model).max(1);
                layers.min(here) as f64 / here as f64
            }
            _ => 0.0,
        }
    }

    /// Micro-batches each pipeline runs per optimizer step.
    pub fn micro_batches(&self, global_batch: u64) -> u64 {
        global_batch / (self.dp as u64 * self.micro_batch as u64)
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tp={},pp={},dp={},cp={},ep={},zero={},mb={},vpp={},recompute={}{}{}{}{}",
            self.tp,
            self.pp,
            self.dp,
            self.cp,
            self.ep,
            self.zero,
            self.micro_batch,
            self.vpp,
            self.recompute.name(),
            match self.recompute_layers {
                Some(layers) => format!(",recompute_layers={layers}"),
                None => String::new(),
            },
            if self.sequence_parallel {
                ",sp=true"
            } else {
                ""
            },
            if self.pp_inner { ",map=pp-inner" } else { "" },
            match (self.offload_optimizer, self.offload_activations) {
                (true, true) => ",offload=both",
                (true, false) => ",offload=optimizer",
                (false, true) => ",offload=activations",
                (false, false) => "",
            }
        )
    }
}

/// A layout as written on the command line, with `dp` and `sp` optional: `dp` follows from the
/// accelerator count, and sequence parallelism defaults to on whenever tp > 1.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayoutSpec {
    pub layout: Layout,
    pub dp_given: bool,
    pub sp_given: bool,
}

impl LayoutSpec {
    /// Completes the layout for `devices` accelerators.
    pub fn resolve(&self, devices: u64) -> Result<Layout, LayoutError> {
        let mut layout = self.layout;
        let model_parallel = layout.tp as u64 * layout.pp as u64 * layout.cp as u64;
        if !self.dp_given {
            if model_parallel == 0 || !devices.is_multiple_of(model_parallel) {
                return Err(LayoutError::ModelParallelDevices {
                    model_parallel,
                    devices,
                });
            }
            layout.dp = (devices / model_parallel) as u32;
        }
        if !self.sp_given {
            layout.sequence_parallel = layout.tp > 1;
        }
        Ok(layout)
    }
}

impl FromStr for LayoutSpec {
    type Err = LayoutError;

    /// Parses `tp=8,pp=16,dp=128,cp=1,ep=1,zero=1,mb=1,vpp=1,recompute=selective,sp=true`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut spec = LayoutSpec::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| LayoutError::NotKeyValue { part: part.into() })?;
            let number = || -> Result<u32, LayoutError> {
                value
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| LayoutError::NotWholeNumber {
                        key: key.into(),
                        value: value.into(),
                    })
            };
            let l = &mut spec.layout;
            match key.trim() {
                "tp" => l.tp = number()?,
                "pp" => l.pp = number()?,
                "dp" => {
                    l.dp = number()?;
                    spec.dp_given = true;
                }
                "cp" => l.cp = number()?,
                "ep" => l.ep = number()?,
                "zero" => l.zero = number()?.min(255) as u8,
                "mb" | "micro_batch" => l.micro_batch = number()?,
                "vpp" => l.vpp = number()?,
                "recompute" => l.recompute = value.parse()?,
                "recompute_layers" => l.recompute_layers = Some(number()?),
                "sp" | "sequence_parallel" => {
                    l.sequence_parallel = match value.trim() {
                        "true" | "1" | "on" => true,
                        "false" | "0" | "off" => false,
                        _ => {
                            return Err(LayoutError::SequenceParallel {
                                value: value.into(),
                            });
                        }
                    };
                    spec.sp_given = true;
                }
                "offload" => {
                    (l.offload_optimizer, l.offload_activations) = match value.trim() {
                        "none" => (false, false),
                        "optimizer" | "opt" => (true, false),
                        "activations" | "act" => (false, true),
                        "both" => (true, true),
                        _ => {
                            return Err(LayoutError::Offload {
                                value: value.into(),
                            });
                        }
                    }
                }
                "map" => {
                    l.pp_inner = match value.trim() {
                        "dp-inner" => false,
                        "pp-inner" => true,
                        _ => {
                            return Err(LayoutError::Map {
                                value: value.into(),
                            });
                        }
                    }
                }
                other => {
                    return Err(LayoutError::UnknownKey { key: other.into() });
                }
            }
        }
        Ok(spec)
    }
}
