//! One micro-batch on one device in a training step: its forward, backward and recomputed
//! kernels, its share of the logit layer, and the tensor-, context-, expert- and
//! pipeline-parallel traffic and activation offload it pays. `train::estimate` turns it into
//! the step.

use crate::collective::Collective;
use crate::kernels::{Device, LayerShape, LayerTime};
use crate::layout::{Layout, Recompute};
use crate::lora::{self, Workload};
use crate::train::{TrainSetup, exposed_s};
use crate::train_comm::Network;
use crate::xla;
use suanli_catalog::Precision;

/// Seconds one micro-batch costs one device.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MicroBatch {
    pub forward_s: f64,
    pub backward_s: f64,
    /// Forward kernels repeated by activation recomputation.
    pub recompute_s: f64,
    /// This stage's share of the logit layer (all of it without a pipeline, an average share
    /// of the last stage's with one).
    pub logits_s: f64,
    pub tp_comm_s: f64,
    pub cp_comm_s: f64,
    pub ep_comm_s: f64,
    /// Pipeline sends and receives.
    pub p2p_s: f64,
    /// Activation copies to and from the host not hidden behind compute.
    pub offload_s: f64,
}

impl MicroBatch {
    /// One micro-batch of `setup` in `layout` on `device`, its collectives over `net`.
    pub fn time(setup: &TrainSetup, layout: &Layout, device: &Device, net: &Network) -> Self {
        let layers = Layers::new(setup, layout, device);
        let (forward_s, backward_s) = passes_s(setup, layout, device, &layers);
        // Full recompute repeats the forward of the recomputed share of the layers (all, or
        // the block of `recompute_layers`, whose remaining layers store everything).
        let recompute_s = match layout.recompute {
            Recompute::None => 0.0,
            Recompute::Selective => layers.sum(|l| l.attention_fwd_s),
            Recompute::Full => layout.full_recompute_share(&setup.model) * forward_s,
        };
        // The last stage also runs the logit layer; with pp > 1 the stage imbalance shows in
        // the whole pipeline (Narayanan et al. 2021, section 3.2), spread here as an average.
        let logits_s = logits_s(setup, layout, device, layers.tokens) / layout.pp as f64;
        let (tp_comm_s, cp_comm_s, ep_comm_s) = parallel_comm_s(setup, layout, net, &layers);
        MicroBatch {
            forward_s,
            backward_s,
            recompute_s,
            logits_s,
            tp_comm_s,
            cp_comm_s,
            ep_comm_s,
            p2p_s: pipeline_p2p_s(setup, layout, net, layers.tokens),
            offload_s: offload_s(setup, layout, forward_s, backward_s + recompute_s),
        }
    }

    /// The micro-batch's whole time on its stage (what one pipeline bubble slot costs).
    pub fn total_s(&self) -> f64 {
        self.forward_s
            + self.backward_s
            + self.recompute_s
            + (self.tp_comm_s + self.cp_comm_s + self.ep_comm_s)
            + self.p2p_s
            + self.logits_s
    }
}

/// The layers one device holds: a dense and a mixture-of-experts layer's kernel times, how
/// many layers and which share of them are MoE, and the tokens of one micro-batch.
struct Layers {
    dense: LayerTime,
    moe: LayerTime,
    here: f64,
    moe_share: f64,
    tokens: f64,
}

impl Layers {
    fn new(setup: &TrainSetup, layout: &Layout, device: &Device) -> Layers {
        let model = &setup.model;
        let dense = shape(setup, layout, false).time(device);
        Layers {
            dense,
            moe: if model.moe.is_some() {
                shape(setup, layout, true).time(device)
            } else {
                dense
            },
            here: layout.layers_per_device(model) as f64,
            moe_share: model.moe_layers() as f64 / model.layers as f64,
            tokens: shape(setup, layout, false).tokens(),
        }
    }

    /// `part` summed over the device's layers.
    fn sum(&self, part: fn(&LayerTime) -> f64) -> f64 {
        self.here * ((1.0 - self.moe_share) * part(&self.dense) + self.moe_share * part(&self.moe))
    }
}

fn shape<'a>(setup: &'a TrainSetup, layout: &'a Layout, moe: bool) -> LayerShape<'a> {
    LayerShape {
        model: &setup.model,
        layout,
        seq_len: setup.seq_len,
        attention: setup.attention,
        moe,
    }
}

/// Forward and backward seconds of the device's layers, with LoRA's adapters and int8's
/// quantisation passes.
fn passes_s(setup: &TrainSetup, layout: &Layout, device: &Device, layers: &Layers) -> (f64, f64) {
    let mut forward_s = layers.sum(LayerTime::forward_s);
    let mut backward_s = layers.sum(LayerTime::backward_s);
    if let Workload::Lora { rank } = setup.workload {
        // Frozen GEMMs skip their weight gradient; adapters run forward and two backward GEMMs.
        let adapters_s = layers.here
            * lora::adapter_forward_s(device, &setup.model, rank, layers.tokens, layout.tp as f64);
        backward_s += 2.0 * adapters_s - layers.sum(|l| l.matmul_fwd_s);
        forward_s += adapters_s;
    }
    if setup.precision == Precision::Int8 {
        // The quantisation pass of both operands of every weight GEMM, forward; the backward's
        // data- and weight-gradient GEMMs quantise twice as many operands (the gradient dY
        // along two axes, the weight transposed, the input again), the same 2x rule as the
        // GEMMs themselves.
        let elements = layers.here
            * ((1.0 - layers.moe_share)
                * shape(setup, layout, false).weight_gemm_operand_elements()
                + layers.moe_share * shape(setup, layout, true).weight_gemm_operand_elements());
        let quantise_s = device.stream_s(
            elements * xla::AQT_BYTES_PER_OPERAND_ELEMENT,
            4.0 * layers.here,
        );
        forward_s += quantise_s;
        backward_s += 2.0 * quantise_s;
    }
    (forward_s, backward_s)
}

/// The logit layer of one micro-batch on the last stage: a (tokens x h) by (h x V/tp) GEMM
/// forward, two backward, plus the fp32 softmax cross-entropy over the logits.
fn logits_s(setup: &TrainSetup, layout: &Layout, device: &Device, tokens: f64) -> f64 {
    let model = &setup.model;
    let passes = match setup.workload {
        Workload::Pretrain => 3.0,
        Workload::Lora { .. } => 2.0,
    };
    passes
        * device.gemm_s(
            tokens,
            model.vocab as f64 / layout.tp as f64,
            model.hidden as f64,
        )
        + device.stream_s(tokens * model.vocab as f64 / layout.tp as f64 * 12.0, 3.0)
}

/// Tensor-, context- and expert-parallel seconds of one micro-batch.
fn parallel_comm_s(
    setup: &TrainSetup,
    layout: &Layout,
    net: &Network,
    layers: &Layers,
) -> (f64, f64, f64) {
    let model = &setup.model;
    let (tokens, hidden) = (layers.tokens, model.hidden as f64);
    // Tensor parallel: two all-reduces per layer forward and two backward (Shoeybi et al.
    // 2019, Figure 4), or the same bytes as all-gather + reduce-scatter pairs with sequence
    // parallelism (Korthikanti et al. 2022, section 4.2.2); full recompute repeats the forward
    // pair.
    let tp_bytes = tokens * hidden * 2.0;
    let tp_calls = 4.0 + 2.0 * layout.full_recompute_share(model);
    let tp_total_s = layers.here * tp_calls * net.tp.time_s(Collective::AllReduce, tp_bytes);
    // With sequence parallelism, Transformer Engine splits the all-gather/reduce-scatter into
    // chunks pipelined with the neighbouring GEMMs (userbuffers, `--tp-comm-overlap`).
    let tp_s = if setup.tp_overlap && layout.sequence_parallel {
        exposed_s(layers.sum(|l| l.matmul_fwd_s * 3.0), tp_total_s)
    } else {
        tp_total_s
    };

    // Context parallel: a ring passes each rank's K and V blocks to the other cp-1 ranks,
    // overlapped block by block with the attention core (see `context_parallel_exposed_s`).
    let kv_width = match &model.mla {
        Some(mla) => (mla.kv_lora_rank + mla.qk_rope_head_dim) as f64,
        None => 2.0 * (model.kv_heads as f64 * model.head_dim() as f64) / layout.tp as f64,
    };
    let cp_s = crate::train_comm::context_parallel_exposed_s(
        &net.cp,
        layout.cp,
        tokens * kv_width * 2.0,
        layers.sum(|l| l.attention_fwd_s),
        layers.sum(|l| l.attention_bwd_s),
        layers.here,
    );

    // Expert parallel: dispatch and combine all-to-all per MoE layer forward, again backward
    // (Lepikhin et al. 2020, GShard, section 2.2).
    let ep_s = match &model.moe {
        Some(moe) if layout.ep > 1 => {
            let bytes = tokens * moe.top_k as f64 * hidden * 2.0 * crate::train_comm::EP_IMBALANCE;
            layers.here * layers.moe_share * 4.0 * net.ep.time_s(Collective::AllToAll, bytes)
        }
        _ => 0.0,
    };
    (tp_s, cp_s, ep_s)
}

/// Pipeline: each micro-batch sends its activations forward and its gradients back at every
/// chunk boundary; with sequence parallelism only 1/tp of them crosses (the scatter/gather
/// optimisation of Narayanan et al. 2021, section 4.1).
fn pipeline_p2p_s(setup: &TrainSetup, layout: &Layout, net: &Network, tokens: f64) -> f64 {
    if layout.pp == 1 {
        return 0.0;
    }
    let bytes = tokens * setup.model.hidden as f64 * 2.0 / layout.tp as f64;
    2.0 * layout.vpp as f64 * net.pp.point_to_point_s(bytes, net.pp_crosses_nodes)
}

/// Activation offload: the stored activations go to the host during the forward and come back
/// during the backward, each copy overlapped with that pass (Megatron-Core `--cpu-offloading`).
fn offload_s(setup: &TrainSetup, layout: &Layout, forward_s: f64, backward_s: f64) -> f64 {
    if !layout.offload_activations {
        return 0.0;
    }
    let (link_gb_per_s, _) = crate::memory_train::host_bandwidths_gb_per_s(&setup.accelerator.id);
    let copy_s =
        crate::memory_train::offloaded_activation_bytes(setup, layout) / (link_gb_per_s * 1e9);
    exposed_s(forward_s, copy_s) + exposed_s(backward_s, copy_s)
}
