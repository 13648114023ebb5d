//! `suanli simulate`: replay a trace or a synthetic workload on a cluster under one or more
//! policies, and report completion times, queueing, utilisation, goodput and fairness.

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::format::style;
use suanli_sched::{SchedConfig, TenantConfig};
use suanli_sim::metrics::{RunResult, Summary};
use suanli_sim::report::{JsonReport, jobs_csv, summary_table, tenant_tables};
use suanli_sim::tenants::{check_against_cluster, load_tenants};
use suanli_sim::trace::{FitReport, TraceFormat, fit_to_cluster, read_trace};
use suanli_sim::workload::{ClusterSpec, TraceJob};
use suanli_sim::{CheckpointPolicy, FailureModel, SimConfig, plot, presets, synthetic};

/// Replay a workload on a cluster under scheduling policies.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  suanli simulate --cluster gavel-36-36-36 --trace crates/sim/data/gavel/seed0/ee9e8c.trace \\
      --compare fifo,las,gavel
  suanli simulate --synthetic jobs=100000,accelerators=16384 --policy backfill --failures llama3
  suanli simulate --cluster alibaba-2023 --trace crates/sim/data/alibaba-gpu-2023/openb_pod_list_default.csv --policy sjf \\
      --json --out results/")]
pub struct SimulateArgs {
    /// Cluster: a TOML file, an Alibaba node-list CSV, or a preset name (gavel-36-36-36,
    /// alibaba-2023, alibaba-spot-2026, tiresias-n32g4, ...).
    #[arg(long)]
    cluster: Option<String>,
    /// Job trace file.
    #[arg(long, conflicts_with = "synthetic")]
    trace: Option<PathBuf>,
    /// Trace format: gavel, tiresias, alibaba-gpu-2023 or suanli (guessed from the file if absent).
    #[arg(long, requires = "trace")]
    trace_format: Option<String>,
    /// Generated workload, e.g. `jobs=100000,accelerators=16384,load=0.9,profile=philly`; its
    /// cluster is used unless --cluster is given.
    #[arg(long)]
    synthetic: Option<String>,
    /// Scheduling policy (the list below; `las` and `gavel` are older names).
    #[arg(long, default_value = "fifo", conflicts_with = "compare", value_parser = policy_parser())]
    policy: String,
    /// Several policies on the same input, side by side: `fifo,backfill,las`.
    #[arg(long, value_delimiter = ',', value_parser = policy_parser())]
    compare: Vec<String>,
    /// Node failures: none, llama3 (per-GPU MTBF 50,700 h, 4 h repair) or `mtbf=50000h,repair=2h`.
    #[arg(long, default_value = "none")]
    failures: String,
    /// Checkpoint interval: `trace` (as the trace says), `young-daly`, or a duration like `30m`.
    #[arg(long, default_value = "trace")]
    checkpoint: String,
    /// Time to write one checkpoint, e.g. `2m`.
    #[arg(long, default_value = "0s")]
    checkpoint_cost: String,
    /// Time a restarted job needs before it computes again, e.g. `60s`.
    #[arg(long, default_value = "60s")]
    restart_delay: String,
    /// Tenants: a TOML file of `[[tenant]]` tables with `name`, `weight` and `guaranteed`
    /// accelerators per type (example: crates/sim/data/tenants/gavel-families.toml).
    #[arg(long)]
    tenants: Option<PathBuf>,
    /// Seed of the failure draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Directory for summary.json, jobs-<policy>.csv, jct-cdf.svg and utilisation.svg.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The scheduling policies' names (`suanli_sched::policy::NAMES`, then the older names in
/// `ALIASES`) for `--policy`: `--help` lists them and clap refuses any other name before a
/// command runs. The name is kept as given, since it labels the results (`jobs-gavel.csv`).
pub fn policy_parser() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    use suanli_sched::policy::{ALIASES, NAMES};
    let names = NAMES.iter().map(|name| PossibleValue::new(*name));
    let aliases = ALIASES
        .iter()
        .map(|(alias, to)| PossibleValue::new(*alias).help(format!("the same as {to}")));
    clap::builder::PossibleValuesParser::new(names.chain(aliases))
}

/// Runs the command.
pub fn run(args: SimulateArgs) -> Result<ExitCode> {
    let policies = if args.compare.is_empty() {
        vec![args.policy.clone()]
    } else {
        args.compare.clone()
    };
    // The flags' errors before the workload is read.
    let config = sim_config(&args, Vec::new())?;
    let (cluster, jobs, fit) = load_workload(&args)?;
    if jobs.is_empty() {
        let reason = fit
            .unrunnable
            .first()
            .map_or("the workload is empty".to_string(), |(id, why)| {
                format!("job {id}: {why}")
            });
        bail!(
            "none of the {} jobs can run on {} ({reason}); pick a cluster with their accelerator types and gang sizes",
            fit.unrunnable.len(),
            cluster.name
        );
    }
    let tenants = match &args.tenants {
        Some(path) => load_tenant_file(path, &cluster, &jobs)?,
        None => Vec::new(),
    };
    let config = SimConfig {
        tenants: tenants.clone(),
        ..config
    };
    let mut runs = Vec::new();
    for policy in &policies {
        let config = SimConfig {
            policy: policy.clone(),
            ..config.clone()
        };
        runs.push(run_one(&cluster, &jobs, &config)?);
    }
    // Jobs the cluster can never hold were set aside before the replay: they count as rejected.
    let summaries: Vec<Summary> = runs
        .iter()
        .map(|run| {
            let mut summary = Summary::of(run);
            summary.jobs_rejected += fit.unrunnable.len();
            summary
        })
        .collect();
    let accelerators = presets::total_accelerators(&cluster);
    let report = JsonReport {
        cluster: &cluster.name,
        accelerators,
        seed: args.seed,
        tenants: &tenants,
        runs: &summaries,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &runs, jobs.len(), fit.unrunnable.len());
    }
    if let Some(dir) = &args.out {
        let subject = format!("{} on {}", workload_name(&args), cluster.name);
        write_outputs(dir, &report, &runs, &subject)?;
        eprintln!(
            "wrote summary.json, jobs-<policy>.csv, jct-cdf.svg and utilisation.svg to {}",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's configuration from the flags (the policy is set per run).
fn sim_config(args: &SimulateArgs, tenants: Vec<TenantConfig>) -> Result<SimConfig> {
    let duration = |flag: &str, text: &str| {
        suanli_sim::failures::parse_duration_s(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    Ok(SimConfig {
        policy: String::new(),
        failures: FailureModel::parse(&args.failures).map_err(anyhow::Error::msg)?,
        checkpoint: CheckpointPolicy::parse(&args.checkpoint).map_err(anyhow::Error::msg)?,
        checkpoint_cost_s: duration("checkpoint-cost", &args.checkpoint_cost)?,
        seed: args.seed,
        sched: SchedConfig {
            restart_delay_s: duration("restart-delay", &args.restart_delay)?,
            ..SchedConfig::default()
        },
        tenants,
    })
}

/// The runs for a person: what was replayed, the summary table, what the runs say about
/// contention, and the tenants' shares.
fn print_report(report: &JsonReport<'_>, runs: &[RunResult], runnable: usize, unrunnable: usize) {
    println!(
        "{} jobs on {} ({} accelerators)",
        runnable + unrunnable,
        report.cluster,
        report.accelerators
    );
    if unrunnable > 0 {
        println!("{unrunnable} jobs rejected: the cluster can never hold them (reasons on stderr)");
    }
    println!("{}", style(&mut summary_table(report.runs)));
    let short = super::sim_busy::short_arrivals(report.runs);
    let idle = match short {
        Some(_) => None,
        None => super::sim_busy::no_contention(report.runs, report.cluster),
    };
    let notes = [super::sim_busy::describe(runs), idle, short];
    for line in notes.into_iter().flatten() {
        println!("{line}");
    }
    print_tenants(report.runs, report.tenants);
}

/// The workload's name for plot titles: the trace's file name or the synthetic spec.
fn workload_name(args: &SimulateArgs) -> String {
    match (&args.trace, &args.synthetic) {
        (Some(path), _) => path.file_name().map_or(path.display().to_string(), |n| {
            n.to_string_lossy().into_owned()
        }),
        (None, Some(spec)) => format!("synthetic {spec}"),
        (None, None) => "workload".to_string(),
    }
}

/// Most tenants the text report lists one by one; `--json` always has them all.
const MAX_TENANT_ROWS: usize = 40;

/// The fairness table, when there is more than one tenant.
fn print_tenants(summaries: &[Summary], tenants: &[TenantConfig]) {
    let count = summaries.first().map_or(0, |s| s.tenants.len());
    if count > MAX_TENANT_ROWS {
        println!("{count} tenants; per-tenant figures are in --json");
    } else if count > 1 || !tenants.is_empty() {
        for (heading, mut table) in tenant_tables(summaries, tenants) {
            println!("{heading}");
            println!("{}", style(&mut table));
        }
    }
}

/// The tenant file, checked against the cluster; warns about tenants no job belongs to.
fn load_tenant_file(
    path: &Path,
    cluster: &ClusterSpec,
    jobs: &[TraceJob],
) -> Result<Vec<TenantConfig>> {
    let tenants = load_tenants(path)?;
    check_against_cluster(&tenants, cluster, &path.display().to_string())?;
    let in_trace: BTreeSet<&str> = jobs.iter().map(|j| j.spec.tenant.as_str()).collect();
    for tenant in &tenants {
        if !in_trace.contains(tenant.name.as_str()) {
            let known: Vec<&str> = in_trace.iter().copied().take(10).collect();
            eprintln!(
                "warning: tenant `{}` of {} has no job in the workload (its tenants include {})",
                tenant.name,
                path.display(),
                known.join(", ")
            );
        }
    }
    Ok(tenants)
}

/// The cluster and jobs from --trace or --synthetic.
fn load_workload(args: &SimulateArgs) -> Result<(ClusterSpec, Vec<TraceJob>, FitReport)> {
    let cluster_arg = args.cluster.as_deref();
    match (&args.trace, &args.synthetic) {
        (Some(path), None) => {
            let Some(cluster_name) = cluster_arg else {
                bail!(
                    "--trace needs --cluster <file|preset> to replay on, e.g. --cluster gavel-36-36-36"
                );
            };
            let cluster = presets::load_cluster(cluster_name)?;
            let format = match &args.trace_format {
                Some(name) => Some(name.parse::<TraceFormat>().map_err(anyhow::Error::msg)?),
                None => None,
            };
            let trace = read_trace(path, format)?;
            eprintln!(
                "read {} ({}): {}",
                path.display(),
                trace.format,
                trace.report
            );
            let (jobs, fit) = fit_to_cluster(trace.jobs, &cluster);
            eprintln!("fitted to {}: {fit}", cluster.name);
            Ok((cluster, jobs, fit))
        }
        (None, Some(spec)) => {
            let workload = synthetic::from_spec(spec)?;
            let cluster = match cluster_arg {
                Some(name) => presets::load_cluster(name)?,
                None => workload.cluster,
            };
            let (jobs, fit) = fit_to_cluster(workload.jobs, &cluster);
            if !fit.unrunnable.is_empty() {
                eprintln!("fitted to {}: {fit}", cluster.name);
            }
            Ok((cluster, jobs, fit))
        }
        _ => bail!(
            "give a workload: --trace <file> (with --cluster) or --synthetic jobs=1000,accelerators=512"
        ),
    }
}

/// One policy's run with a progress bar on stderr (hidden when stderr is not a terminal).
fn run_one(cluster: &ClusterSpec, jobs: &[TraceJob], config: &SimConfig) -> Result<RunResult> {
    let bar = ProgressBar::with_draw_target(Some(jobs.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} jobs done ({elapsed})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(config.policy.clone());
    let mut report = |done: u64, _total: u64| bar.set_position(done);
    let result = suanli_sim::simulate(cluster, jobs, config, Some(&mut report));
    bar.finish_and_clear();
    result.with_context(|| format!("policy {}", config.policy))
}

fn write_outputs(
    dir: &Path,
    report: &JsonReport<'_>,
    runs: &[RunResult],
    subject: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create --out directory {}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write("summary.json", &serde_json::to_string_pretty(report)?)?;
    for run in runs {
        write(&format!("jobs-{}.csv", run.policy), &jobs_csv(run)?)?;
    }
    write(
        "jct-cdf.svg",
        &plot::jct_cdf_svg(runs, subject).map_err(anyhow::Error::msg)?,
    )?;
    write(
        "utilisation.svg",
        &plot::utilisation_svg(runs, subject).map_err(anyhow::Error::msg)?,
    )?;
    Ok(())
}
