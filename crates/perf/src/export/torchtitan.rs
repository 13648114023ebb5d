//! A torchtitan TOML job config for a layout (keys from torchtitan/config/job_config.py at
//! v0.2.2).

use super::{Export, ExportError, ExportInput, Framework};
use crate::layout::Recompute;
use suanli_catalog::Precision;

pub(super) fn export(input: &ExportInput) -> Result<Export, ExportError> {
    let l = input.layout;
    let mut toml = String::from("[parallelism]\n");
    // torchtitan shards with FSDP2 (parameters, gradients and optimizer states: ZeRO-3) and
    // replicates with DDP; keeping parameters gathered after the forward pass is ZeRO-2.
    let (replicate, shard, reshard) = match l.zero {
        0 => (l.dp, 1, None),
        1 | 2 => (1, l.dp, Some("never")),
        _ => (1, l.dp, Some("always")),
    };
    toml += &format!("data_parallel_replicate_degree = {replicate}\n");
    toml += &format!("data_parallel_shard_degree = {shard}\n");
    if let Some(reshard) = reshard {
        toml += &format!("fsdp_reshard_after_forward = \"{reshard}\"\n");
    }
    toml += &format!("tensor_parallel_degree = {}\n", l.tp);
    toml += &format!("pipeline_parallel_degree = {}\n", l.pp);
    if l.pp > 1 {
        let schedule = if l.vpp > 1 { "Interleaved1F1B" } else { "1F1B" };
        toml += &format!("pipeline_parallel_schedule = \"{schedule}\"\n");
        toml += &format!("pipeline_parallel_microbatch_size = {}\n", l.micro_batch);
        if l.vpp > 1 {
            let per_chunk = super::layers_per_chunk(Framework::Torchtitan, input)?;
            toml += &format!("pipeline_parallel_layers_per_stage = {per_chunk}\n");
        }
    }
    toml += &format!("context_parallel_degree = {}\n", l.cp);
    toml += &format!("expert_parallel_degree = {}\n", l.ep);

    toml += "\n[training]\n";
    toml += &format!("seq_len = {}\n", input.seq_len);
    toml += &format!("global_batch_size = {}\n", input.global_batch);
    if l.offload_optimizer {
        // FSDP2's CPU offload moves parameters and gradients too: more than the plan assumes,
        // so device memory only falls further.
        toml += "enable_cpu_offload = true\n";
    }
    // Sequences each data-parallel rank takes per step; torchtitan accumulates gradients when
    // this exceeds what one forward pass holds.
    toml += &format!(
        "local_batch_size = {}\n",
        input.global_batch / l.dp.max(1) as u64
    );
    let param_dtype = match input.precision {
        Precision::Bf16 | Precision::Fp8 => "bfloat16",
        Precision::Fp32 => "float32",
        precision => {
            return Err(ExportError::Precision {
                framework: Framework::Torchtitan,
                precision,
            });
        }
    };
    toml += &format!("mixed_precision_param = \"{param_dtype}\"\n");

    toml += "\n[activation_checkpoint]\n";
    toml += &format!(
        "mode = \"{}\"\n",
        match l.recompute {
            Recompute::None => "none",
            Recompute::Selective => "selective",
            Recompute::Full => "full",
        }
    );
    if l.recompute == Recompute::Selective {
        toml += "selective_ac_option = \"op\"\n";
    }
    let mut notes = vec![
        "torchtitan always uses sequence parallelism with tensor parallelism".to_string(),
        "set [model] name and flavor to the model's torchtitan definition".to_string(),
    ];
    if let Some(layers) = l.recompute_layers {
        notes.push(format!(
            "torchtitan has no block recompute: every layer recomputes, where the plan \
             recomputes {layers} per device and stores the rest"
        ));
    }
    if input.precision == Precision::Fp8 {
        toml += "\n[model]\nconverters = [\"quantize.linear.float8\"]\n";
        notes.push("fp8 uses torchao float8 linears (the quantize.linear.float8 converter)".into());
    }
    Ok(Export {
        framework: Framework::Torchtitan,
        config: toml,
        launch: input.torchrun("-m torchtitan.train --job.config_file suanli.toml"),
        notes,
    })
}
