//! `suanli plan train`: estimate one layout or search for the best ones.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use suanli_catalog::{Accelerator, Catalog, NodeShape, Precision};
use suanli_perf::fit;
use suanli_perf::lora::Workload;
use suanli_perf::search::{self, Constraints};
use suanli_perf::train::{self, TrainEstimate, TrainSetup};
use suanli_perf::{AttentionImpl, LayoutError, LayoutSpec};

/// What to plan.
#[derive(Subcommand)]
#[command(
    after_help = "Examples:\n  suanli plan train --model llama-3.1-70b --accelerator h100 --count 512 --tokens 2T\n  \
    suanli plan serve --model llama-3.1-70b --accelerator h100 --tp 4 --input-len 2048 --output-len 256"
)]
pub enum PlanCommand {
    /// Plan a training run: parallel layout, step time, memory, MFU, days, energy and cost.
    #[command(after_help = TRAIN_EXAMPLES)]
    Train(TrainArgs),
    /// Plan serving: TTFT, TPOT, throughput, KV-cache capacity and memory of a deployment.
    #[command(after_help = super::plan_serve::SERVE_EXAMPLES)]
    Serve(super::plan_serve::ServeArgs),
}

const TRAIN_EXAMPLES: &str = "Examples:
  suanli plan train --model llama-3.1-70b --accelerator h100-sxm5-80gb --count 512 --tokens 2T
  suanli plan train --model llama-3.1-405b --accelerator h100 --count 16384 --seq-len 8192 \\
      --global-batch 2048 --top 3
  suanli plan train --model gpt-3-175b --accelerator a100-sxm4-80gb --count 1024 \\
      --layout tp=8,pp=8,mb=1,vpp=3,recompute=selective --price-per-hour 1.8 --json
  suanli plan train --model ./config.json --accelerator mi300x --count 64
  suanli plan train --model llama-3.1-8b --node p5.48xlarge --count 64     accelerator, per node, NICs
  suanli plan train --model llama-2-70b --accelerator h100 --count 8 --seq-len 8192 \\
      --global-batch 8 --precision fp8 --workload lora --lora-rank 16
  suanli plan train --model llama-3.1-70b --accelerator h100 --count 512 --export megatron

Every plan carries its accelerator family's error band (cross-validated on published runs) or
says that no published run backs it.";

/// Arguments of `suanli plan train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Catalog model id or alias, a Hugging Face config.json, or a TOML file with one [[model]].
    #[arg(long)]
    model: String,
    /// Accelerator catalog id or alias (see `suanli catalog accelerators`).
    #[arg(long, required_unless_present = "node")]
    accelerator: Option<String>,
    /// Node shape from `suanli catalog nodes` (e.g. p5.48xlarge, dgx-h100): sets the
    /// accelerator, accelerators per node and NIC bandwidth.
    #[arg(long)]
    node: Option<String>,
    /// Number of accelerators.
    #[arg(long)]
    count: u64,
    /// Accelerators per node [default: the accelerator's usual server].
    #[arg(long)]
    per_node: Option<u32>,
    /// Scale-out bandwidth per accelerator in GB/s, one direction [default: catalog].
    #[arg(long)]
    scaleout_gb_per_s: Option<f64>,
    /// Tokens per sequence, e.g. 4096 or 8k (= 8192).
    #[arg(long, default_value = "4096", value_parser = crate::units::parse_tokens_binary, allow_hyphen_values = true)]
    seq_len: u64,
    /// Global batch per optimizer step: tokens with a unit (16M, 16M tokens: binary suffixes,
    /// Llama 3's 16M = 2048 x 8192) or sequences (2048, 2048 seqs). Moved to the nearest size
    /// the layout divides, with a line saying so [default: after published batches for the
    /// model's size (GPT-3, Gopher, Llama 3, DeepSeek-V3), at least one sequence per 8
    /// accelerators].
    #[arg(long, value_parser = super::plan_batch::parse_global_batch, allow_hyphen_values = true, conflicts_with = "global_batch_seqs")]
    global_batch: Option<super::plan_batch::BatchSpec>,
    /// Global batch in sequences per optimizer step, e.g. 2048.
    #[arg(long, value_parser = crate::units::parse_whole_count, allow_hyphen_values = true)]
    global_batch_seqs: Option<u64>,
    /// Token budget, e.g. 2T, 300B, 1.5e12: adds days, accelerator-hours, energy and cost.
    #[arg(long, value_parser = crate::units::parse_count, allow_hyphen_values = true)]
    tokens: Option<f64>,
    /// Math precision.
    #[arg(long, default_value = "bf16")]
    precision: Precision,
    /// What trains: pretrain (every weight) or lora (frozen base, adapters on qkv and output).
    #[arg(long, default_value = "pretrain")]
    workload: String,
    /// LoRA adapter rank (with --workload lora).
    #[arg(long)]
    lora_rank: Option<u32>,
    /// Oversubscription of the scale-out fabric's upper tier (1 = non-blocking).
    #[arg(long, default_value_t = 1.0)]
    oversubscription: f64,
    /// Evaluate this layout, e.g. tp=8,pp=16,dp=128,cp=1,ep=1,zero=1,mb=1,vpp=1,recompute=selective
    /// (dp follows from the count when left out; sp defaults to on when tp>1; map=pp-inner puts
    /// pipeline stages inside data replicas in rank order, map=dp-inner is Megatron's default;
    /// offload=optimizer keeps Adam's states in host memory and updates on the CPU,
    /// offload=activations (pp=1) copies saved activations to the host, offload=both).
    #[arg(long)]
    layout: Option<String>,
    /// How many layouts a search shows.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// US dollars per accelerator-hour, for the cost figure (indicative prices: the USD/h column
    /// of `suanli catalog accelerators`); `--price` works too.
    #[arg(long, alias = "price")]
    price_per_hour: Option<f64>,
    /// Attention implementation: flash (fused, causal) or unfused.
    #[arg(long, default_value = "flash", value_parser = parse_attention)]
    attention: AttentionImpl,
    /// Extra catalog TOML file or directory (accelerators, nodes, models).
    #[arg(long)]
    catalog: Vec<PathBuf>,
    /// Print the best layout as a launch-ready config: megatron, nemo, torchtitan or deepspeed.
    #[arg(long)]
    export: Option<suanli_perf::export::Framework>,
    /// Print the whole estimate as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    time: super::plan_time::TimeArgs,
}

fn parse_attention(text: &str) -> anyhow::Result<AttentionImpl> {
    match text {
        "flash" => Ok(AttentionImpl::Flash),
        "unfused" => Ok(AttentionImpl::Unfused),
        _ => bail!("`{text}` is not an attention implementation; use flash or unfused"),
    }
}

/// Loads the built-in catalog plus the user's files.
pub fn load_catalog(extra: &[PathBuf]) -> anyhow::Result<Catalog> {
    let env = std::env::var_os(suanli_catalog::ENV_VAR);
    // The catalog error already names the file and the cause; keep it one line.
    Catalog::load(extra, env.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs a plan command.
pub fn run(command: PlanCommand) -> anyhow::Result<ExitCode> {
    match command {
        PlanCommand::Train(args) => run_train(args),
        PlanCommand::Serve(args) => super::plan_serve::run(args),
    }
}

fn run_train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let (mut setup, mut notes) = train_setup(&args)?;
    let validation = fit::validation_of(&setup.accelerator, fit::Fitted::builtin());

    let estimates = match &args.layout {
        Some(text) => {
            let estimate = evaluate_layout(&mut setup, text, &mut notes)?;
            print_notes(&args, &notes);
            vec![estimate]
        }
        None => {
            notes.extend(super::plan_batch::fit_to_search(
                &mut setup,
                &Constraints::default(),
            ));
            print_notes(&args, &notes);
            let found = search::search(&setup, &Constraints::default(), args.top)?;
            if !args.json && args.export.is_none() {
                println!(
                    "searched {} valid layouts, {} fit in memory; the {} fastest:",
                    found.valid_layouts,
                    found.fitting_layouts,
                    found.top.len()
                );
            }
            found.top
        }
    };
    if let Some(framework) = args.export {
        return super::plan_export::print(framework, &setup, &estimates[0]);
    }
    let times = (estimates.iter())
        .map(|e| super::plan_time::time_to_train(&args.time, &setup, e))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.json {
        let value = serde_json::json!({
            "setup": setup,
            "estimates": estimates,
            "fits": estimates.iter().map(|e| e.memory.fits()).collect::<Vec<_>>(),
            "time_to_train": times,
            "notes": notes,
            "family": validation.family,
            "uncertainty_pct": validation.uncertainty_pct,
            "validated_rows": validation.validated_rows,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    if estimates.len() > 1 {
        println!("{}", super::plan_print::ranking_table(&estimates));
    }
    super::plan_print::print_estimate(&setup, &estimates[0]);
    if let Some(time) = &times[0] {
        let measured = suanli_perf::reliability::failure_rate(&setup.accelerator.id);
        println!(
            "{}",
            super::plan_time::describe(time, measured.measured_on_family)
        );
    }
    println!("{}", uncertainty_line(&validation));
    Ok(ExitCode::SUCCESS)
}

/// The training setup the flags describe, and notes on what was chosen for the user.
fn train_setup(args: &TrainArgs) -> anyhow::Result<(TrainSetup, Vec<String>)> {
    let catalog = load_catalog(&args.catalog)?;
    let model = catalog.resolve_model(&args.model)?;
    let (accelerator, node) = accelerator_and_node(&catalog, args)?;
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    if args.seq_len == 0 {
        bail!("--seq-len must be at least 1");
    }
    let mut setup = TrainSetup::new(model, accelerator, args.count);
    if let Some(node) = &node {
        setup.per_node = node.accelerators_per_node.max(1);
        setup.scaleout_gb_per_s = node.nic_gb_per_s_per_accelerator;
    }
    if let Some(per_node) = args.per_node {
        if per_node == 0 {
            bail!("--per-node must be at least 1");
        }
        setup.per_node = per_node;
    }
    if let Some(bandwidth) = args.scaleout_gb_per_s {
        // 0 or NaN made every cross-node transfer take NaN seconds and ranked a NaN layout first.
        if !(bandwidth.is_finite() && bandwidth > 0.0) {
            bail!(
                "--scaleout-gb-per-s must be a positive number of GB/s, e.g. 25 or 50; got {bandwidth}"
            );
        }
        setup.scaleout_gb_per_s = bandwidth;
    }
    setup.seq_len = args.seq_len;
    let batch_spec = match (args.global_batch, args.global_batch_seqs) {
        (_, Some(seqs)) => Some(super::plan_batch::BatchSpec::Sequences(seqs)),
        (spec, None) => spec,
    };
    let (global_batch, batch_note) = super::plan_batch::resolve(batch_spec, &setup)?;
    setup.global_batch = global_batch;
    let notes: Vec<String> = batch_note.into_iter().collect();
    setup.precision = args.precision;
    setup.tokens_total = args.tokens;
    setup.price_per_hour = args.price_per_hour;
    setup.attention = args.attention;
    setup.tp_overlap = args.attention == AttentionImpl::Flash;
    setup.workload = Workload::parse(Some(&args.workload), args.lora_rank)
        .map_err(|e| anyhow::anyhow!("--workload/--lora-rank: {e}"))?;
    if !(args.oversubscription.is_finite() && (1.0..=64.0).contains(&args.oversubscription)) {
        bail!("--oversubscription must be between 1 and 64 (1 = non-blocking fat tree)");
    }
    setup.oversubscription = args.oversubscription;
    super::plan_checks::check_batch(&setup)?;
    for warning in super::plan_checks::setup_warnings(&setup) {
        eprintln!("warning: {warning}");
    }
    Ok((setup, notes))
}

/// The accelerator of `--accelerator` or `--node` (which must agree when both are given), and the
/// node.
fn accelerator_and_node(
    catalog: &Catalog,
    args: &TrainArgs,
) -> anyhow::Result<(Accelerator, Option<NodeShape>)> {
    let node = match &args.node {
        Some(name) => Some(catalog.node(name)?.clone()),
        None => None,
    };
    let accelerator = match (&args.accelerator, &node) {
        (Some(name), Some(node)) => {
            let accelerator = catalog.accelerator(name)?;
            if accelerator.id != node.accelerator {
                bail!(
                    "--node {} holds {}, not {}; drop --accelerator or pick another node",
                    node.id,
                    node.accelerator,
                    accelerator.id
                );
            }
            accelerator.clone()
        }
        (Some(name), None) => catalog.accelerator(name)?.clone(),
        (None, Some(node)) => catalog.accelerator(&node.accelerator)?.clone(),
        (None, None) => bail!("give --accelerator or --node"),
    };
    Ok((accelerator, node))
}

/// The plan's error band, or the warning that no published run backs it.
fn uncertainty_line(v: &fit::Validation) -> String {
    if v.validated_rows == 0 {
        format!(
            "unvalidated: no published run on {}; unvalidated families miss by up to {:.0}% in \
             cross-validation (conservative constants used)",
            v.family, v.uncertainty_pct
        )
    } else {
        format!(
            "uncertainty: ±{:.0}% ({} family, cross-validated on {} published runs)",
            v.uncertainty_pct, v.family, v.validated_rows
        )
    }
}

/// Prints the lines saying what the planner chose for the user (not with --json or --export,
/// whose output is machine-read; --json carries them as `notes`).
fn print_notes(args: &TrainArgs, notes: &[String]) {
    if !args.json && args.export.is_none() {
        for note in notes {
            println!("note: {note}");
        }
    }
}

fn evaluate_layout(
    setup: &mut TrainSetup,
    text: &str,
    notes: &mut Vec<String>,
) -> anyhow::Result<TrainEstimate> {
    let spec: LayoutSpec = text
        .parse()
        .map_err(|e: LayoutError| anyhow::anyhow!("--layout: {e}"))?;
    let layout = spec
        .resolve(setup.count)
        .map_err(|e| anyhow::anyhow!("--layout: {e}"))?;
    notes.extend(super::plan_batch::fit_to_layout(setup, &layout));
    layout
        .check(&setup.model, setup.count, setup.seq_len, setup.global_batch)
        .map_err(|e| anyhow::anyhow!("--layout {layout}: {e}"))?;
    for warning in super::plan_checks::layout_warnings(setup, &layout) {
        eprintln!("warning: --layout {warning}");
    }
    train::estimate(setup, &layout).context("cannot estimate this layout")
}
