//! A DeepSpeed JSON config for a layout (keys from deepspeed/runtime/constants.py and the ZeRO,
//! activation-checkpointing and tensor-parallel config models at v0.16.4).

use super::{Export, ExportError, ExportInput, Framework};
use crate::layout::Recompute;
use serde_json::{Map, Value, json};
use suanli_catalog::Precision;

/// The config as a JSON object.
pub(super) fn config(input: &ExportInput) -> Result<Value, ExportError> {
    let l = input.layout;
    let mut config = Map::new();
    // DeepSpeed checks train_batch_size = micro * accumulation * data-parallel size.
    config.insert("train_batch_size".into(), json!(input.global_batch));
    config.insert(
        "train_micro_batch_size_per_gpu".into(),
        json!(l.micro_batch),
    );
    config.insert(
        "gradient_accumulation_steps".into(),
        json!(l.micro_batches(input.global_batch)),
    );
    match input.precision {
        Precision::Bf16 | Precision::Fp8 => {
            config.insert("bf16".into(), json!({ "enabled": true }));
        }
        Precision::Fp16 => {
            config.insert("fp16".into(), json!({ "enabled": true }));
        }
        Precision::Fp32 => {}
        precision => {
            return Err(ExportError::Precision {
                framework: Framework::Deepspeed,
                precision,
            });
        }
    }
    let mut zero = json!({ "stage": l.zero });
    if l.zero >= 1 && l.dp > 1 {
        zero["overlap_comm"] = json!(true);
        zero["contiguous_gradients"] = json!(true);
    }
    if l.offload_optimizer {
        zero["offload_optimizer"] = json!({ "device": "cpu", "pin_memory": true });
    }
    config.insert("zero_optimization".into(), zero);
    if l.recompute != Recompute::None {
        config.insert(
            "activation_checkpointing".into(),
            json!({
                "partition_activations": l.tp > 1,
                "contiguous_memory_optimization": false,
                "cpu_checkpointing": false,
            }),
        );
    }
    if l.tp > 1 {
        config.insert("tensor_parallel".into(), json!({ "autotp_size": l.tp }));
    }
    Ok(Value::Object(config))
}

pub(super) fn export(input: &ExportInput) -> Result<Export, ExportError> {
    let l = input.layout;
    let config = config(input)?;
    let mut notes = vec![];
    if l.pp > 1 {
        notes.push(format!(
            "pipeline stages are set in code: deepspeed.pipe.PipelineModule(num_stages={})",
            l.pp
        ));
    }
    if l.cp > 1 {
        notes.push(format!(
            "context parallelism is DeepSpeed-Ulysses in code: sequence_parallel_size={}",
            l.cp
        ));
    }
    if l.ep > 1 {
        notes.push(format!(
            "expert parallelism is set in code: deepspeed.moe.layer.MoE(ep_size={})",
            l.ep
        ));
    }
    if l.recompute != Recompute::None {
        notes.push(
            "activation checkpointing wraps layers in code with deepspeed.checkpointing.checkpoint"
                .into(),
        );
    }
    if input.precision == Precision::Fp8 {
        notes.push("fp8 GEMMs come from Transformer Engine layers in the model code".into());
    }
    Ok(Export {
        framework: Framework::Deepspeed,
        config: serde_json::to_string_pretty(&config).unwrap_or_default(),
        launch: input.torchrun("train.py --deepspeed --deepspeed_config ds_config.json"),
        notes,
    })
}
