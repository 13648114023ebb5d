//! `suanli plan serve`: latency, throughput and memory of serving a model on one deployment.

use super::format;
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use suanli_catalog::Precision;
use suanli_perf::serve::{self, PassTime, ServeEstimate, ServeSetup};

/// Examples shown by `suanli plan serve --help`.
pub const SERVE_EXAMPLES: &str = "Examples:
  suanli plan serve --model llama-3.1-70b --accelerator h100-sxm5-80gb --tp 4 \\
      --input-len 2048 --output-len 256 --precision fp8 --kv-precision fp8
  suanli plan serve --model llama-3.1-8b --accelerator l40s --input-len 512 --output-len 512 \\
      --batch 32 --json";

/// Arguments of `suanli plan serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Catalog model id or alias, a Hugging Face config.json, or a TOML file with one [[model]].
    #[arg(long)]
    model: String,
    /// Accelerator catalog id or alias (see `suanli catalog accelerators`).
    #[arg(long)]
    accelerator: String,
    /// Accelerators in total; replicas = count / (tp x pp) [default: tp x pp].
    #[arg(long)]
    count: Option<u64>,
    /// Tensor-parallel size of a replica [default: the smallest power of two that fits].
    #[arg(long)]
    tp: Option<u32>,
    /// Pipeline-parallel size of a replica.
    #[arg(long, default_value_t = 1)]
    pp: u32,
    /// Prompt tokens per request.
    #[arg(long)]
    input_len: u64,
    /// Generated tokens per request.
    #[arg(long)]
    output_len: u64,
    /// Concurrent sequences per replica [default: the largest that fits].
    #[arg(long)]
    batch: Option<u64>,
    /// Weight precision: fp16, bf16, fp8, int8 or int4.
    #[arg(long, default_value = "bf16")]
    precision: Precision,
    /// KV-cache precision [default: fp8 with fp8 weights, otherwise bf16].
    #[arg(long)]
    kv_precision: Option<Precision>,
    /// Accelerators per node [default: the accelerator's usual server].
    #[arg(long)]
    per_node: Option<u32>,
    /// Extra catalog TOML file or directory (accelerators, nodes, models).
    #[arg(long)]
    catalog: Vec<PathBuf>,
    /// Print the whole estimate as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `suanli plan serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let catalog = super::plan::load_catalog(&args.catalog)?;
    let model = catalog.resolve_model(&args.model)?;
    let accelerator = catalog.accelerator(&args.accelerator)?.clone();
    if args.input_len == 0 || args.output_len == 0 {
        bail!("--input-len and --output-len must be at least 1");
    }
    if args.pp == 0 || args.tp == Some(0) || args.batch == Some(0) {
        bail!("--tp, --pp and --batch must be at least 1");
    }
    let mut setup = ServeSetup::new(model, accelerator, args.input_len, args.output_len);
    setup.pp = args.pp;
    setup.weight_precision = args.precision;
    setup.kv_precision = args.kv_precision.unwrap_or(match args.precision {
        Precision::Fp8 | Precision::Fp16 | Precision::Bf16 => args.precision,
        _ => Precision::Bf16,
    });
    setup.batch = args.batch;
    if let Some(per_node) = args.per_node {
        if per_node == 0 {
            bail!("--per-node must be at least 1");
        }
        setup.per_node = per_node;
    }
    let estimate = match args.tp {
        Some(tp) => {
            setup.tp = tp;
            serve::estimate(&setup)?
        }
        None => smallest_fitting_tp(&mut setup, args.count)?,
    };
    let per_replica = setup.devices_per_replica();
    let count = args.count.unwrap_or(per_replica);
    if !count.is_multiple_of(per_replica) {
        bail!(
            "--count {count} is not a multiple of tp x pp = {per_replica}; use a multiple such as {}",
            per_replica * (count / per_replica).max(1)
        );
    }
    setup.replicas = u32::try_from(count / per_replica)?;
    let estimate = if setup.replicas > 1 {
        serve::estimate(&setup)?
    } else {
        estimate
    };
    if args.json {
        let value = serde_json::json!({ "setup": setup, "estimate": estimate });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_estimate(&setup, &estimate);
    }
    Ok(ExitCode::SUCCESS)
}

/// Tries tp = 1, 2, 4, ... up to the count (or the scale-up domain) and keeps the first that
/// holds the weights and at least one sequence.
fn smallest_fitting_tp(
    setup: &mut ServeSetup,
    count: Option<u64>,
) -> anyhow::Result<ServeEstimate> {
    let limit = match count {
        Some(count) => (count / setup.pp as u64).max(1),
        None => setup.accelerator.scaleup.domain_size.max(setup.per_node) as u64,
    };
    let mut tp = 1u32;
    let mut last_error = None;
    while tp as u64 <= limit {
        setup.tp = tp;
        match serve::estimate(setup) {
            Ok(estimate) => return Ok(estimate),
            Err(error) => last_error = Some(error),
        }
        tp *= 2;
    }
    match last_error {
        Some(error) => bail!("{error} (tried tp=1 to {})", tp / 2),
        None => bail!("--count must be at least tp x pp = {}", setup.pp),
    }
}

fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1e3)
}

fn pass_rows(table: &mut comfy_table::Table, name: &str, pass: &PassTime) {
    for (kind, value) in [
        ("weight GEMMs", pass.matmul_s),
        ("attention", pass.attention_s),
        ("element-wise", pass.elementwise_s),
        ("tensor-parallel all-reduce", pass.tp_comm_s),
        ("pipeline sends", pass.pp_comm_s),
    ] {
        table.add_row(vec![
            name.to_string(),
            kind.to_string(),
            ms(value),
            format!(
                "{:.1}%",
                value / pass.total_s.max(f64::MIN_POSITIVE) * 100.0
            ),
        ]);
    }
}

fn print_estimate(setup: &ServeSetup, e: &ServeEstimate) {
    println!(
        "{} on {} x {} (tp={}, pp={}, {} replica{}), weights {}, KV cache {}",
        setup.model.name,
        e.devices,
        setup.accelerator.name,
        setup.tp,
        setup.pp,
        setup.replicas,
        if setup.replicas == 1 { "" } else { "s" },
        setup.weight_precision,
        setup.kv_precision
    );
    println!(
        "{} input + {} output tokens, batch {} per replica{}",
        setup.input_len,
        setup.output_len,
        e.batch,
        if setup.batch.is_none() {
            " (the largest that fits)"
        } else {
            ""
        }
    );
    println!(
        "TTFT {}   TPOT {}   end-to-end {}   output tokens/s {} total, {} per device",
        ms(e.ttft_s),
        ms(e.tpot_s),
        format::seconds(e.e2e_latency_s),
        format::si(e.output_tokens_per_s_total),
        format::si(e.output_tokens_per_s_per_device)
    );
    let m = &e.memory;
    println!(
        "KV cache: {:.0} KB per token ({}), capacity {} tokens = {} sequences of {} tokens per replica",
        e.kv_bytes_per_token / 1e3,
        setup.model.attention_kind(),
        format::si(m.kv_capacity_tokens as f64),
        m.max_sequences,
        setup.input_len + setup.output_len
    );
    let mut time = format::table(&["phase", "work", "time", "share"]);
    pass_rows(&mut time, "prefill (1 request)", &e.prefill);
    pass_rows(&mut time, "decode step", &e.decode);
    let mut memory = format::table(&["memory per device", "GB"]);
    for (name, value) in [
        ("weights", m.weights_bytes),
        ("KV cache (batch at full length)", m.kv_cache_bytes),
        ("activations", m.activations_bytes),
        ("runtime reserve", m.reserve_bytes),
        ("total", m.total_bytes),
        ("capacity", m.capacity_bytes),
    ] {
        memory.add_row(vec![name.to_string(), format!("{:.1}", value / 1e9)]);
    }
    println!("{time}\n{memory}");
}
