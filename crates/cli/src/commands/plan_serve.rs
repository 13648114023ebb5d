//! `suanli plan serve`: latency, throughput and memory of serving a model on one deployment.

use super::format;
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use suanli_catalog::Precision;
use suanli_perf::serve::host::major_minor;
use suanli_perf::serve::scenario::{ChosenEngine, SGLANG, Scenario, TENSORRT_LLM, TGI, vllm_of};
use suanli_perf::serve::{self, PassTime, ServeEstimate, ServeSetup};

/// Examples shown by `suanli plan serve --help`.
pub const SERVE_EXAMPLES: &str = "Examples:
  suanli plan serve --model llama-3.1-70b --node p5.48xlarge --tp 4 --input-len 2048 \\
      --output-len 256
  suanli plan serve --model llama-3.1-70b --accelerator h100-sxm5-80gb --tp 4 \\
      --input-len 2048 --output-len 256 --precision fp8 --kv-precision fp8
  suanli plan serve --model llama-3.1-8b --accelerator l40s --input-len 512 --output-len 512 \\
      --batch 32 --json
  suanli plan serve --model llama-3.1-70b --input-len 2048 --output-len 256 --precision fp8 \\
      --rate 20 --ttft-slo 500ms --tpot-slo 50ms \\
      --accelerators h100-sxm5-80gb,h200-sxm-141gb,mi300x,l40s --price mi300x=1.9
  suanli plan serve --model llama-3.1-70b --accelerator h200-sxm-141gb --tp 1 --count 8 \
      --input-len 512 --output-len 290 --precision fp8 --scenario server \
      --ttft-p99 2s --tpot-p99 200ms
  suanli plan serve --model llama-3.1-70b --accelerator mi300x --tp 8 --input-len 128 \
      --output-len 2048 --precision fp8 --batch 3200 --scenario offline \
      --engine vllm --engine-version 0.10.2

With --scenario server --ttft-p99 2s --tpot-p99 200ms it finds the highest Poisson request
rate one deployment serves within both 99th-percentile limits (MLPerf Inference Server).
With --rate the command searches deployments (accelerator type, tp, pp, replicas, batch cap)
that meet both latency targets at that request rate and lists the cheapest. Default prices
(USD per accelerator-hour) are indicative 2025 on-demand prices; --price overrides them.
--engine picks the serving engine's scheduler (token budget, KV block size) and, for vLLM with
--engine-version, the host time it spends scheduling while the GPU waits (before 0.6, and
0.8-0.13, whose V1 engine scheduled synchronously until 0.14).";

/// Arguments of `suanli plan serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Catalog model id or alias, a Hugging Face config.json, or a TOML file with one [[model]].
    #[arg(long)]
    pub(super) model: String,
    /// Accelerator catalog id or alias (see `suanli catalog accelerators`).
    #[arg(long, required_unless_present_any = ["rate", "node"])]
    pub(super) accelerator: Option<String>,
    /// Node shape from `suanli catalog nodes` (e.g. p5.48xlarge, dgx-h100): sets the
    /// accelerator, accelerators per node and NIC bandwidth, as in `plan train`.
    #[arg(long)]
    pub(super) node: Option<String>,
    /// NIC bandwidth per accelerator of --node, GB/s.
    #[arg(skip)]
    pub(super) node_nic_gb_per_s: Option<f64>,
    /// Accelerators in total; replicas = count / (tp x pp) [default: tp x pp].
    #[arg(long)]
    pub(super) count: Option<u64>,
    /// Tensor-parallel size of a replica [default: the smallest power of two that fits].
    #[arg(long)]
    pub(super) tp: Option<u32>,
    /// Pipeline-parallel size of a replica.
    #[arg(long, default_value_t = 1)]
    pub(super) pp: u32,
    /// Expert-parallel size inside the tensor-parallel group (mixture-of-experts models;
    /// divides tp).
    #[arg(long, default_value_t = 1)]
    pub(super) ep: u32,
    /// Prompt tokens per request.
    #[arg(long)]
    pub(super) input_len: u64,
    /// Generated tokens per request.
    #[arg(long)]
    pub(super) output_len: u64,
    /// Concurrent sequences per replica [default: the largest that fits].
    #[arg(long)]
    pub(super) batch: Option<u64>,
    /// Weight precision: fp16, bf16, fp8, int8 or int4.
    #[arg(long, default_value = "bf16")]
    pub(super) precision: Precision,
    /// KV-cache precision [default: fp8 with fp8 weights, otherwise bf16].
    #[arg(long)]
    pub(super) kv_precision: Option<Precision>,
    /// Accelerators per node [default: the accelerator's usual server].
    #[arg(long)]
    pub(super) per_node: Option<u32>,
    /// Extra catalog TOML file or directory (accelerators, nodes, models).
    #[arg(long)]
    pub(super) catalog: Vec<PathBuf>,
    /// Print the whole estimate as JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// Search deployments for this many requests per second (needs --ttft-slo and --tpot-slo).
    #[arg(
        long,
        requires_all = ["ttft_slo", "tpot_slo"],
        conflicts_with_all = ["tp", "pp", "ep", "count", "batch"]
    )]
    pub(super) rate: Option<f64>,
    /// 99th-percentile time-to-first-token target under load, with its unit: 500ms or 2s.
    #[arg(long, visible_alias = "ttft-p99", value_parser = crate::units::parse_positive_duration_s, allow_hyphen_values = true)]
    pub(super) ttft_slo: Option<f64>,
    /// 99th-percentile time-per-output-token target under load, with its unit: 200ms.
    #[arg(long, visible_alias = "tpot-p99", value_parser = crate::units::parse_positive_duration_s, allow_hyphen_values = true)]
    pub(super) tpot_slo: Option<f64>,
    /// How requests arrive: offline (largest batch), server or interactive (the highest
    /// Poisson rate within --ttft-p99 and --tpot-p99), single-stream (one at a time).
    #[arg(long, conflicts_with = "rate")]
    pub(super) scenario: Option<Scenario>,
    /// Accelerator types to search, comma-separated [default: --accelerator, or every
    /// accelerator with a default price].
    #[arg(long, value_delimiter = ',')]
    pub(super) accelerators: Vec<String>,
    /// Prices per accelerator-hour, e.g. h100-sxm5-80gb=2.5,mi300x=2.
    #[arg(long, value_delimiter = ',', value_parser = parse_price)]
    pub(super) price: Vec<(String, f64)>,
    /// Largest tp x pp of one replica in the search.
    #[arg(long, default_value_t = 16)]
    pub(super) max_devices_per_replica: u32,
    /// How many deployments the search shows.
    #[arg(long, default_value_t = 5)]
    pub(super) top: usize,
    /// Serving engine: its scheduler's token budget, KV block size and host time.
    #[arg(long, value_enum, default_value_t = EngineName::TensorrtLlm)]
    pub(super) engine: EngineName,
    /// vLLM version (e.g. 0.10.2): before 0.6 and 0.8-0.13 schedule while the GPU waits
    /// [default: the current release].
    #[arg(long, requires = "engine")]
    pub(super) engine_version: Option<String>,
}

/// The serving engines `--engine` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineName {
    TensorrtLlm,
    Vllm,
    Sglang,
    Tgi,
}

/// The engine the arguments name, with its host time resolved.
pub(super) fn chosen_engine(
    args: &ServeArgs,
    catalog: &suanli_catalog::Catalog,
) -> anyhow::Result<ChosenEngine> {
    let engine = match args.engine {
        EngineName::TensorrtLlm => TENSORRT_LLM,
        EngineName::Vllm => vllm_of(args.engine_version.as_deref()),
        EngineName::Sglang => SGLANG,
        EngineName::Tgi => TGI,
    };
    if let Some(version) = &args.engine_version {
        if args.engine != EngineName::Vllm {
            bail!(
                "--engine-version selects among vLLM's schedulers; {}'s properties here do \
                 not depend on it: drop --engine-version or use --engine vllm",
                engine.name
            );
        }
        if version.len() > 32 || major_minor(version).is_none() {
            bail!(
                "`{}` is not a vLLM version; write major.minor[.patch], e.g. 0.10.2",
                super::client::printable(version)
            );
        }
    }
    Ok(ChosenEngine::resolve(engine, catalog)?)
}

/// Parses `id=dollars`.
fn parse_price(text: &str) -> anyhow::Result<(String, f64)> {
    let parsed = text
        .split_once('=')
        .and_then(|(id, price)| Some((id.trim().to_string(), price.trim().parse::<f64>().ok()?)));
    match parsed {
        Some((id, price)) if !id.is_empty() && price >= 0.0 && price.is_finite() => Ok((id, price)),
        _ => bail!(
            "`{text}` is not a price; write accelerator=dollars per hour, e.g. h100-sxm5-80gb=2.5"
        ),
    }
}

/// Runs `suanli plan serve`.
pub fn run(mut args: ServeArgs) -> anyhow::Result<ExitCode> {
    let catalog = super::plan::load_catalog(&args.catalog)?;
    if let Some(name) = &args.node {
        let node = catalog.node(name)?;
        let accelerator = catalog.accelerator(&node.accelerator)?.id.clone();
        if let Some(given) = &args.accelerator
            && catalog.accelerator(given)?.id != accelerator
        {
            bail!(
                "--node {} holds {accelerator}, not {given}; drop --accelerator or pick another node",
                node.id
            );
        }
        args.accelerator = Some(accelerator);
        args.per_node = args.per_node.or(Some(node.accelerators_per_node.max(1)));
        args.node_nic_gb_per_s = Some(node.nic_gb_per_s_per_accelerator);
    }
    let model = catalog.resolve_model(&args.model)?;
    if args.input_len == 0 || args.output_len == 0 {
        bail!("--input-len and --output-len must be at least 1");
    }
    if args.rate.is_some() {
        return super::plan_serve_search::run(&args, &catalog, model);
    }
    if let Some(scenario) = args.scenario {
        return super::plan_serve_scenario::run(&args, &catalog, model, scenario);
    }
    let Some(name) = &args.accelerator else {
        bail!("--accelerator is required without --rate");
    };
    let accelerator = catalog.accelerator(name)?.clone();
    if args.pp == 0 || args.tp == Some(0) || args.batch == Some(0) {
        bail!("--tp, --pp and --batch must be at least 1");
    }
    let engine = chosen_engine(&args, &catalog)?;
    let mut setup = ServeSetup::new(model, accelerator, args.input_len, args.output_len);
    engine.apply(&mut setup);
    setup.pp = args.pp;
    setup.ep = args.ep;
    setup.weight_precision = args.precision;
    setup.kv_precision = kv_precision(&args);
    setup.batch = args.batch;
    if let Some(per_node) = args.per_node {
        if per_node == 0 {
            bail!("--per-node must be at least 1");
        }
        setup.per_node = per_node;
    }
    if let Some(nic_gb_per_s) = args.node_nic_gb_per_s {
        setup.scaleout_gb_per_s = nic_gb_per_s;
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
        let value =
            serde_json::json!({ "setup": setup, "engine": engine.engine, "estimate": estimate });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_estimate(&setup, &estimate);
        if let Some(line) = engine_line(&engine) {
            println!("{line}");
        }
        println!(
            "{}",
            super::plan_serve_scenario::error_band(&setup.accelerator.id)
        );
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

/// The KV-cache precision: as given, or the weight precision when it is fp8 or 16-bit, else bf16.
pub(super) fn kv_precision(args: &ServeArgs) -> Precision {
    args.kv_precision.unwrap_or(match args.precision {
        Precision::Fp8 | Precision::Fp16 | Precision::Bf16 => args.precision,
        _ => Precision::Bf16,
    })
}

/// What the engine charges for host scheduling, where it charges anything.
pub(super) fn engine_line(engine: &ChosenEngine) -> Option<String> {
    let host = engine.engine.host?;
    Some(format!(
        "engine {}: host scheduling {:.1} us per sequence per decode step, GPU idle ({})",
        engine.engine.name,
        engine.host_s_per_sequence * 1e6,
        host.source()
    ))
}

pub(super) fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1e3)
}

fn pass_rows(table: &mut comfy_table::Table, name: &str, pass: &PassTime) {
    for (kind, value) in [
        ("weight GEMMs", pass.matmul_s),
        ("attention", pass.attention_s),
        ("element-wise", pass.elementwise_s),
        ("tensor-parallel all-reduce", pass.tp_comm_s),
        ("pipeline sends", pass.pp_comm_s),
    ]
    .into_iter()
    // Only engines that schedule while the GPU waits spend host time.
    .chain((pass.host_s > 0.0).then_some(("host scheduling (GPU idle)", pass.host_s)))
    {
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
        "{} on {} x {} (tp={}, pp={}, ep={}, {} replica{}), weights {}, KV cache {}",
        setup.model.name,
        e.devices,
        setup.accelerator.name,
        setup.tp,
        setup.pp,
        setup.ep,
        setup.replicas,
        if setup.replicas == 1 { "" } else { "s" },
        setup.weight_precision,
        setup.kv_precision
    );
    if e.gemm_precision != setup.weight_precision {
        println!(
            "{} has no {} GEMMs: weights are dequantised into {} GEMMs (weight-only)",
            setup.accelerator.id, setup.weight_precision, e.gemm_precision
        );
    }
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
    let memory = format::memory_table(&[
        ("weights", m.weights_bytes),
        ("KV cache (batch at full length)", m.kv_cache_bytes),
        ("activations", m.activations_bytes),
        ("runtime reserve", m.reserve_bytes),
        ("total", m.total_bytes),
        ("capacity", m.capacity_bytes),
    ]);
    println!("{time}\n{memory}");
}
