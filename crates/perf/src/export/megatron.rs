//! Megatron-LM `pretrain_gpt.py` flags for a layout and model (names from
//! megatron/training/arguments.py at core_v0.14.0).

use super::{Export, ExportError, ExportInput, Framework};
use crate::layout::Recompute;
use suanli_catalog::{Mlp, Precision};

type Arg = (&'static str, Option<String>);

fn flag(name: &'static str) -> Arg {
    (name, None)
}

fn value(name: &'static str, value: impl ToString) -> Arg {
    (name, Some(value.to_string()))
}

/// The parallel layout, batch and precision flags.
fn layout_args(input: &ExportInput) -> Result<Vec<Arg>, ExportError> {
    let l = input.layout;
    let layers = input.model.layers;
    let mut args = vec![
        value("--tensor-model-parallel-size", l.tp),
        value("--pipeline-model-parallel-size", l.pp),
        value("--context-parallel-size", l.cp),
        value("--expert-model-parallel-size", l.ep),
    ];
    if l.vpp > 1 {
        let per_chunk = super::layers_per_chunk(Framework::Megatron, input)?;
        args.push(value("--num-layers-per-virtual-pipeline-stage", per_chunk));
    } else if l.pp > 1 && !layers.is_multiple_of(l.pp) {
        // Megatron-LM gives every stage but the last ceil(layers/pp) layers and the last stage
        // the rest (Llama 3 405B: 126 layers on 16 stages, Dubey et al. 2024, section 3.3.2).
        let per_stage = layers.div_ceil(l.pp);
        let rest = layers as i64 - per_stage as i64 * (l.pp as i64 - 1);
        if rest <= 0 {
            return Err(ExportError::UnevenChunks {
                framework: Framework::Megatron,
                layers,
                pp: l.pp,
                vpp: l.vpp,
            });
        }
        args.push(value("--decoder-last-pipeline-num-layers", rest));
    }
    args.push(value("--micro-batch-size", l.micro_batch));
    args.push(value("--global-batch-size", input.global_batch));
    if l.sequence_parallel && l.tp > 1 {
        args.push(flag("--sequence-parallel"));
    }
    // The distributed optimizer shards optimizer states over the data-parallel group (ZeRO-1)
    // but keeps a full gradient buffer; Megatron-FSDP shards gradients (ZeRO-2) and parameters
    // too (ZeRO-3), as the plan's memory figures assume.
    match l.zero {
        0 => {}
        1 => args.push(flag("--use-distributed-optimizer")),
        stage => {
            args.push(flag("--use-megatron-fsdp"));
            let strategy = if stage == 2 {
                "optim_grads"
            } else {
                "optim_grads_params"
            };
            args.push(value("--data-parallel-sharding-strategy", strategy));
        }
    }
    if l.dp > 1 {
        args.push(flag("--overlap-grad-reduce"));
        if l.zero >= 1 {
            args.push(flag("--overlap-param-gather"));
        }
    }
    if l.offload_optimizer {
        args.push(flag("--optimizer-cpu-offload"));
    }
    match l.recompute {
        Recompute::None => {}
        Recompute::Selective => args.push(value("--recompute-granularity", "selective")),
        Recompute::Full => {
            args.push(value("--recompute-granularity", "full"));
            // A block of layers per stage, or every layer one at a time.
            match l.recompute_layers {
                Some(layers) => {
                    args.push(value("--recompute-method", "block"));
                    args.push(value("--recompute-num-layers", layers));
                }
                None => {
                    args.push(value("--recompute-method", "uniform"));
                    args.push(value("--recompute-num-layers", 1));
                }
            }
        }
    }
    match input.precision {
        Precision::Bf16 => args.push(flag("--bf16")),
        Precision::Fp16 => args.push(flag("--fp16")),
        Precision::Fp8 => {
            // FP8 GEMMs with bf16 master weights (Transformer Engine's hybrid E4M3/E5M2).
            args.push(flag("--bf16"));
            args.push(value("--fp8-format", "hybrid"));
            args.push(value("--fp8-recipe", "delayed"));
        }
        Precision::Fp32 => {}
        precision => {
            return Err(ExportError::Precision {
                framework: Framework::Megatron,
                precision,
            });
        }
    }
    Ok(args)
}

/// The model shape flags.
fn model_args(input: &ExportInput) -> Vec<Arg> {
    let m = input.model;
    let mut args = vec![
        value("--num-layers", m.layers),
        value("--hidden-size", m.hidden),
        value("--ffn-hidden-size", m.ffn),
        value("--num-attention-heads", m.heads),
    ];
    if m.kv_heads < m.heads && m.mla.is_none() {
        args.push(flag("--group-query-attention"));
        args.push(value("--num-query-groups", m.kv_heads));
    }
    if m.head_dim() * m.heads as u64 != m.hidden {
        args.push(value("--kv-channels", m.head_dim()));
    }
    args.push(value("--seq-length", input.seq_len));
    args.push(value(
        "--max-position-embeddings",
        m.max_seq_len.unwrap_or(input.seq_len).max(input.seq_len),
    ));
    if m.learned_positions {
        args.push(value("--position-embedding-type", "learned_absolute"));
    } else {
        args.push(value("--position-embedding-type", "rope"));
        args.push(value("--normalization", "RMSNorm"));
        args.push(flag("--disable-bias-linear"));
    }
    if m.mlp == Mlp::Swiglu {
        args.push(flag("--swiglu"));
    }
    if !m.tied_embeddings {
        args.push(flag("--untie-embeddings-and-output-weights"));
    }
    args.push(value("--vocab-size", m.vocab));
    if let Some(moe) = &m.moe {
        args.push(value("--num-experts", moe.experts));
        args.push(value("--moe-router-topk", moe.top_k));
        args.push(value("--moe-ffn-hidden-size", moe.expert_ffn));
        if moe.shared_experts > 0 {
            args.push(value(
                "--moe-shared-expert-intermediate-size",
                moe.shared_experts as u64 * moe.expert_ffn,
            ));
        }
        if moe.dense_layers > 0 {
            args.push(value(
                "--moe-layer-freq",
                format!(
                    "([0]*{}+[1]*{})",
                    moe.dense_layers,
                    m.layers - moe.dense_layers.min(m.layers)
                ),
            ));
        }
        args.push(flag("--moe-grouped-gemm"));
        args.push(value("--moe-token-dispatcher-type", "alltoall"));
    }
    if let Some(mla) = &m.mla {
        args.push(flag("--multi-latent-attention"));
        if let Some(q) = mla.q_lora_rank {
            args.push(value("--q-lora-rank", q));
        }
        args.push(value("--kv-lora-rank", mla.kv_lora_rank));
        args.push(value("--qk-head-dim", mla.qk_nope_head_dim));
        args.push(value("--qk-pos-emb-head-dim", mla.qk_rope_head_dim));
        args.push(value("--v-head-dim", mla.v_head_dim));
    }
    args
}

/// The whole argument list, one flag per element pair (flag, value).
pub(super) fn arguments(input: &ExportInput) -> Result<Vec<(String, Option<String>)>, ExportError> {
    let mut args = layout_args(input)?;
    args.extend(model_args(input));
    Ok(args
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect())
}

pub(super) fn export(input: &ExportInput) -> Result<Export, ExportError> {
    let args = arguments(input)?;
    let lines: Vec<String> = args
        .iter()
        .map(|(name, value)| match value {
            Some(value) if value.contains(['(', ')', '*', '[', ']']) => {
                format!("{name} '{value}'")
            }
            Some(value) => format!("{name} {value}"),
            None => name.clone(),
        })
        .collect();
    let launch = input.torchrun("pretrain_gpt.py $MEGATRON_ARGS $DATA_ARGS");
    Ok(Export {
        framework: Framework::Megatron,
        config: lines.join(" \\\n"),
        launch,
        notes: vec![
            "MEGATRON_ARGS holds the flags above; DATA_ARGS your data, tokenizer, optimizer \
             and schedule flags"
                .into(),
        ],
    })
}
