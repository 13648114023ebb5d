//! NeMo 2 `nemo llm pretrain` recipe overrides for a layout (field names from NeMo v2.4.0's
//! MegatronStrategy, MegatronMixedPrecision and PreTrainingDataModule, and Megatron-Core's
//! TransformerConfig and OptimizerConfig).

use super::{Export, ExportError, ExportInput, Framework};
use crate::layout::Recompute;
use suanli_catalog::Precision;

/// The NeMo 2 recipe (nemo/collections/llm/recipes/) that trains a catalog model, if any.
fn recipe(model_id: &str) -> Option<&'static str> {
    Some(match model_id {
        "llama-3-8b" => "llama3_8b",
        "llama-3-70b" => "llama3_70b",
        "llama-3.1-8b" => "llama31_8b",
        "llama-3.1-70b" => "llama31_70b",
        "llama-3.1-405b" => "llama31_405b",
        "mixtral-8x7b" => "mixtral_8x7b",
        "mixtral-8x22b" => "mixtral_8x22b",
        "gpt-3-175b" => "gpt3_175b",
        "deepseek-v3" => "deepseek_v3",
        _ => return None,
    })
}

fn python_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

/// The overrides as (dotted key, Python literal) pairs.
pub(super) fn overrides(input: &ExportInput) -> Result<Vec<(String, String)>, ExportError> {
    let m = input.model;
    let l = input.layout;
    let mut out = parallelism(input)?;
    out.push(("data.seq_length", input.seq_len.to_string()));
    out.push(("data.micro_batch_size", l.micro_batch.to_string()));
    out.push(("data.global_batch_size", input.global_batch.to_string()));
    out.push((
        "optim.config.use_distributed_optimizer",
        python_bool(l.zero >= 1).into(),
    ));
    memory(input, &mut out);
    precision(input.precision, &mut out)?;
    if recipe(&m.id).is_none() {
        out.push(("model.config.num_layers", m.layers.to_string()));
        out.push(("model.config.hidden_size", m.hidden.to_string()));
        out.push(("model.config.ffn_hidden_size", m.ffn.to_string()));
        out.push(("model.config.num_attention_heads", m.heads.to_string()));
        out.push(("model.config.num_query_groups", m.kv_heads.to_string()));
        out.push(("model.config.kv_channels", m.head_dim().to_string()));
    }
    Ok(out.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// Nodes, devices and the parallel sizes, with the last stage's layers where the layer count
/// does not divide evenly.
fn parallelism(input: &ExportInput) -> Result<Vec<(&'static str, String)>, ExportError> {
    let l = input.layout;
    let m = input.model;
    let mut out: Vec<(&str, String)> = vec![
        ("trainer.num_nodes", input.nodes().to_string()),
        ("trainer.devices", input.procs_per_node().to_string()),
        (
            "trainer.strategy.tensor_model_parallel_size",
            l.tp.to_string(),
        ),
        (
            "trainer.strategy.pipeline_model_parallel_size",
            l.pp.to_string(),
        ),
    ];
    let vpp = if l.vpp > 1 {
        super::layers_per_chunk(Framework::Nemo, input)?;
        l.vpp.to_string()
    } else {
        "None".into()
    };
    out.push(("trainer.strategy.virtual_pipeline_model_parallel_size", vpp));
    if l.vpp == 1 && l.pp > 1 && !m.layers.is_multiple_of(l.pp) {
        let rest = m.layers as i64 - m.layers.div_ceil(l.pp) as i64 * (l.pp as i64 - 1);
        if rest <= 0 {
            return Err(ExportError::UnevenChunks {
                framework: Framework::Nemo,
                layers: m.layers,
                pp: l.pp,
                vpp: l.vpp,
            });
        }
        out.push((
            "trainer.strategy.num_layers_in_last_pipeline_stage",
            rest.to_string(),
        ));
    }
    out.push(("trainer.strategy.context_parallel_size", l.cp.to_string()));
    out.push((
        "trainer.strategy.expert_model_parallel_size",
        l.ep.to_string(),
    ));
    out.push((
        "trainer.strategy.sequence_parallel",
        python_bool(l.sequence_parallel && l.tp > 1).into(),
    ));
    Ok(out)
}

/// Optimizer and activation offload, and activation recomputation.
fn memory(input: &ExportInput, out: &mut Vec<(&'static str, String)>) {
    let l = input.layout;
    if l.offload_optimizer {
        out.push(("optim.config.optimizer_cpu_offload", "True".into()));
    }
    if l.offload_activations {
        // Megatron-Core TransformerConfig: offload every layer's activations but the last.
        out.push(("model.config.cpu_offloading", "True".into()));
        out.push(("model.config.cpu_offloading_activations", "True".into()));
        out.push(("model.config.cpu_offloading_weights", "False".into()));
        out.push((
            "model.config.cpu_offloading_num_layers",
            (input.model.layers.saturating_sub(1)).to_string(),
        ));
    }
    match l.recompute {
        Recompute::None => out.push(("model.config.recompute_granularity", "None".into())),
        Recompute::Selective => {
            out.push(("model.config.recompute_granularity", "selective".into()))
        }
        Recompute::Full => {
            out.push(("model.config.recompute_granularity", "full".into()));
            let (method, layers) = match l.recompute_layers {
                Some(layers) => ("block", layers),
                None => ("uniform", 1),
            };
            out.push(("model.config.recompute_method", method.into()));
            out.push(("model.config.recompute_num_layers", layers.to_string()));
        }
    }
}

/// Mixed precision (bf16, fp16, or fp8 with delayed scaling); NeMo has no other.
fn precision(
    precision: Precision,
    out: &mut Vec<(&'static str, String)>,
) -> Result<(), ExportError> {
    match precision {
        Precision::Bf16 => out.push(("trainer.plugins.precision", "bf16-mixed".into())),
        Precision::Fp16 => out.push(("trainer.plugins.precision", "16-mixed".into())),
        Precision::Fp8 => {
            out.push(("trainer.plugins.precision", "bf16-mixed".into()));
            out.push(("trainer.plugins.fp8", "hybrid".into()));
            out.push(("trainer.plugins.fp8_recipe", "delayed".into()));
        }
        precision => {
            return Err(ExportError::Precision {
                framework: Framework::Nemo,
                precision,
            });
        }
    }
    Ok(())
}

pub(super) fn export(input: &ExportInput) -> Result<Export, ExportError> {
    let factory = recipe(&input.model.id);
    let mut lines = vec![format!(
        "nemo llm pretrain --factory {} -y",
        factory.unwrap_or("llama3_8b")
    )];
    for (key, value) in overrides(input)? {
        lines.push(format!("  {key}={value}"));
    }
    let mut notes = vec![format!(
        "NEMO_OVERRIDES holds the overrides above; srun starts one task per accelerator, or use \
         nemo-run's SlurmExecutor(nodes={}, ntasks_per_node={})",
        input.nodes(),
        input.procs_per_node()
    )];
    if factory.is_none() {
        notes.push(format!(
            "NeMo has no recipe for {}; the overrides set its shape on the llama3_8b recipe",
            input.model.id
        ));
    }
    if input.layout.zero >= 2 {
        notes.push(format!(
            "zero={}: use Megatron-FSDP, trainer.strategy.fsdp='megatron' with the ddp config's \
             data_parallel_sharding_strategy='{}'",
            input.layout.zero,
            if input.layout.zero == 2 {
                "optim_grads"
            } else {
                "optim_grads_params"
            }
        ));
    }
    Ok(Export {
        framework: Framework::Nemo,
        config: lines.join(" \\\n"),
        launch: vec![
            format!(
                "srun --nodes={} --ntasks-per-node={} --gpus-per-node={} \\",
                input.nodes(),
                input.procs_per_node(),
                input.procs_per_node()
            ),
            format!(
                "  nemo llm pretrain --factory {} -y $NEMO_OVERRIDES",
                factory.unwrap_or("llama3_8b")
            ),
        ],
        notes,
    })
}
