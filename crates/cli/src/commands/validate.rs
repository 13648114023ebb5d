//! `suanli validate train|serve FILE.csv`: the model against published measurements.

use super::format;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use suanli_perf::validate::{self, Report};
use suanli_perf::validate_serve;

/// The `after_help` examples of `validate KIND` on the validation table `FILE`: one plain run,
/// then one run with each of `--json`, `--cv` and `--fit`.
macro_rules! examples {
    ($kind:literal, $file:literal) => {
        examples!(@run concat!("suanli validate ", $kind, " data/validation/", $file))
    };
    (@run $run:expr) => {
        concat!(
            "Example:\n  ", $run,
            "\n  ", $run, " --json | jq .summary",
            "\n  ", $run, " --cv",
            "\n  ", $run, " --fit",
        )
    };
}

/// What to validate.
#[derive(Subcommand)]
#[command(
    after_help = "Examples:\n  suanli validate train data/validation/training-runs.csv\n  \
    suanli validate serve data/validation/inference-runs.csv"
)]
pub enum ValidateCommand {
    /// Training runs (schema: training-runs.csv of the validation tables).
    #[command(after_help = examples!("train", "training-runs.csv"))]
    Train(ValidateArgs),
    /// Inference runs (schema: inference-runs.csv of the validation tables).
    #[command(after_help = examples!("serve", "inference-runs.csv"))]
    Serve(ValidateArgs),
}

/// Arguments of a validate command.
#[derive(Args)]
pub struct ValidateArgs {
    /// CSV file of published runs.
    pub(super) file: PathBuf,
    /// Extra catalog TOML file or directory.
    #[arg(long)]
    catalog: Vec<PathBuf>,
    /// Print {"rows":[...],"summary":{...}} as JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// Print leave-one-source-out figures (each source's rows predicted with
    /// constants fitted without that source).
    #[arg(long)]
    pub(super) cv: bool,
    /// Refit the per-family constants on FILE and write them to --fit-out.
    #[arg(long)]
    pub(super) fit: bool,
    /// Where --fit writes the fitted table (rebuild suanli to use it); default
    /// crates/perf/data/fitted.toml for train, crates/perf/data/serving-fit.csv for serve.
    #[arg(long)]
    pub(super) fit_out: Option<PathBuf>,
}

/// Runs a validate command; exits 1 when a row could not be evaluated.
pub fn run(command: ValidateCommand) -> anyhow::Result<ExitCode> {
    let (args, serving) = match command {
        ValidateCommand::Train(args) => (args, false),
        ValidateCommand::Serve(args) => (args, true),
    };
    let catalog = super::plan::load_catalog(&args.catalog)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let in_file = |e: validate::TableError| anyhow::anyhow!("{}: {e}", args.file.display());
    if (args.cv || args.fit) && !serving {
        let rows = validate::read_training_runs(&text).map_err(in_file)?;
        let header = text.lines().next().unwrap_or_default();
        if rows.is_empty() || !header.split(',').any(|c| c.trim() == "seq_len") {
            anyhow::bail!(
                "{}: no rows to fit; give a file with the columns of \
                 data/validation/training-runs.csv",
                args.file.display()
            );
        }
        let fit_out = args
            .fit_out
            .clone()
            .unwrap_or_else(|| PathBuf::from("crates/perf/data/fitted.toml"));
        return super::validate_fit::run(&catalog, &rows, &args, &fit_out);
    }
    let report = if serving {
        let rows = validate_serve::read_inference_runs(&text).map_err(in_file)?;
        if args.fit {
            let fit_out = args
                .fit_out
                .clone()
                .unwrap_or_else(|| PathBuf::from("crates/perf/data/serving-fit.csv"));
            return super::validate_serve_fit::fit(&catalog, &rows, &fit_out, args.json);
        }
        if args.cv {
            return super::validate_serve_fit::cross_validate(&catalog, &rows, args.json);
        }
        validate_serve::validate_serving(&catalog, &rows)
    } else {
        let rows = validate::read_training_runs(&text).map_err(in_file)?;
        validate::validate_training(&catalog, &rows)
    };
    let (kind, other) = if serving {
        ("inference-runs.csv", "train")
    } else {
        ("training-runs.csv", "serve")
    };
    if report.summary.rows == 0 {
        anyhow::bail!(
            "{}: no rows to evaluate; give a file with the columns of data/validation/{kind}",
            args.file.display()
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if report.summary.evaluated == 0 {
        eprintln!(
            "error: {}: no row could be evaluated; is it a {kind}? (`suanli validate {other}` takes the other table)",
            args.file.display()
        );
    }
    Ok(if report.summary.evaluated == report.summary.rows {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the per-row table and the summary.
pub fn print_report(report: &Report) {
    let mut table = format::table(&[
        "id",
        "metric",
        "measured",
        "predicted",
        "error",
        "mode",
        "layout / reason",
    ]);
    let number = |v: Option<f64>| {
        v.map_or("-".to_string(), |x| {
            format!("{x:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
    };
    for row in &report.rows {
        table.add_row(vec![
            row.id.clone(),
            row.metric.clone(),
            number(row.measured),
            number(row.predicted.map(|p| (p * 100.0).round() / 100.0)),
            row.error_pct.map_or("-".into(), |e| format!("{e:+.1}%")),
            row.mode.to_string(),
            row.reason
                .clone()
                .or(row.layout.clone())
                .unwrap_or_default(),
        ]);
    }
    println!("{table}");
    let s = &report.summary;
    let pct = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.1}%"));
    println!(
        "{} rows, {} evaluated; median |error| {}, max |error| {}",
        s.rows,
        s.evaluated,
        pct(s.median_abs_error_pct),
        pct(s.max_abs_error_pct)
    );
    if s.evaluated < s.rows {
        println!(
            "{} rows could not be evaluated (see the reasons above)",
            s.rows - s.evaluated
        );
    }
}
